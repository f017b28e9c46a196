//! CI uploads: the coverage and test reports that workflows send, read into one model.
//!
//! Five formats, one parser each, all streaming (a report is read once, front to back,
//! and never held whole in memory as a tree):
//!
//! | format | file | written by |
//! | --- | --- | --- |
//! | [`Format::Lcov`] | [`lcov`] | coverage.py `coverage lcov`, istanbul/jest/c8, lcov/geninfo, grcov, cargo-llvm-cov |
//! | [`Format::Cobertura`] | [`cobertura`] | coverage.py `coverage xml`, istanbul/jest, gcovr |
//! | [`Format::Jacoco`] | [`jacoco`] | the JaCoCo Maven/Gradle plugins |
//! | [`Format::GoCover`] | [`gocover`] | `go test -coverprofile` |
//! | [`Format::Junit`] | [`junit`] | pytest, jest-junit, cargo-nextest, Maven Surefire, mocha |
//!
//! And two formats of line records — which lines of a commit an agent wrote — read by
//! [`lines`]: [`Format::GitAi`] (git-ai's authorship notes) and [`Format::AgentTrace`]
//! (Cursor's Agent Trace).
//!
//! The format is [`detect`]ed from the first bytes of the content, never from the file
//! name. Paths come out of [`parse`] as the report wrote them (Cobertura's `<source>`
//! already joined on); [`paths`] turns them into repository-relative paths and says which
//! ones it could not place ([`LineCoverage::normalise_paths`]).
//!
//! A report that cannot be read is a [`ParseError`] naming the format and, where it
//! has one, the line of the report where reading stopped: what the upload endpoint
//! answers with its 422 (together with the file's name, which only it knows).
//!
//! XML safety: quick-xml never fetches or expands anything beyond the five predefined
//! entities and character references; a document whose DTD declares entities is refused,
//! and a reference to any other entity is an error.

pub mod binding;
pub mod cobertura;
pub mod context;
pub mod gocover;
pub mod jacoco;
pub mod junit;
pub mod lcov;
pub mod lines;
pub mod oidc;
pub mod paths;
pub mod upload;
mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use crate::line_set::{LineSet, LineSetBuilder};

/// A report format tracelink reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Lcov,
    Cobertura,
    Jacoco,
    GoCover,
    Junit,
    /// A git-ai authorship note behind its `git-ai-note <sha>` line ([`lines`]).
    GitAi,
    /// Cursor's Agent Trace records ([`lines`]).
    AgentTrace,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Lcov,
        Format::Cobertura,
        Format::Jacoco,
        Format::GoCover,
        Format::Junit,
        Format::GitAi,
        Format::AgentTrace,
    ];

    /// The formats of line records rather than reports.
    pub const LINE_RECORDS: [Format; 2] = [Format::GitAi, Format::AgentTrace];

    /// The name used in messages, the API and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Lcov => "lcov",
            Format::Cobertura => "cobertura",
            Format::Jacoco => "jacoco",
            Format::GoCover => "go",
            Format::Junit => "junit",
            Format::GitAi => "git-ai",
            Format::AgentTrace => "agent-trace",
        }
    }

    /// The inverse of [`Format::as_str`].
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Line coverage of a set of files: per path, the coverable lines and the covered ones,
/// as ranges ([`LineSet`]): what a report says is held in memory in proportion to the
/// report, never to the lines it names (a Go block naming 100,000 lines is one range).
///
/// A line is coverable when a report lists it, covered when a report saw it run (hits
/// above 0): hit counts themselves are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineCoverage {
    pub files: BTreeMap<String, FileCoverage>,
}

/// The coverage of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCoverage {
    /// Covered lines (a subset of `coverable`).
    pub covered: LineSet,
    pub coverable: LineSet,
}

impl FileCoverage {
    /// Coverable lines not covered.
    pub fn missed(&self) -> LineSet {
        self.coverable.difference(&self.covered)
    }

    /// `(covered, coverable)` lines.
    pub fn totals(&self) -> (u64, u64) {
        (self.covered.len(), self.coverable.len())
    }

    /// No coverable line.
    pub fn is_empty(&self) -> bool {
        self.coverable.is_empty()
    }

    /// The ranges held: what the file costs in memory.
    pub fn ranges(&self) -> usize {
        self.covered.ranges().len() + self.coverable.ranges().len()
    }

    fn merge(&mut self, other: &FileCoverage) {
        self.covered = self.covered.union(&other.covered);
        self.coverable = self.coverable.union(&other.coverable);
    }
}

impl LineCoverage {
    /// `(covered, coverable)` lines over all files.
    pub fn totals(&self) -> (u64, u64) {
        self.files.values().fold((0, 0), |(c, t), f| {
            let (fc, ft) = f.totals();
            (c + fc, t + ft)
        })
    }

    /// `(covered, coverable)` lines of one file; `(0, 0)` when the file is absent.
    pub fn file_totals(&self, path: &str) -> (u64, u64) {
        self.files.get(path).map_or((0, 0), FileCoverage::totals)
    }

    /// The ranges held over all files.
    pub fn ranges(&self) -> usize {
        self.files.values().map(FileCoverage::ranges).sum()
    }

    /// Merges another report into this one: a line is coverable, or covered, when either
    /// says so.
    pub fn merge(&mut self, other: &LineCoverage) {
        for (path, file) in &other.files {
            self.files.entry(path.clone()).or_default().merge(file);
        }
    }

    /// Rewrites every path to be repository-relative ([`paths::normalise_with`]).
    ///
    /// Files whose paths land on the same relative path are merged. Paths that cannot
    /// be placed in the repository are dropped from the coverage and returned, sorted,
    /// so that the caller can report them.
    pub fn normalise_paths(
        self,
        repo: &str,
        workspace: Option<&str>,
    ) -> (LineCoverage, Vec<String>) {
        let mut out = LineCoverage::default();
        let mut unmatched = Vec::new();
        for (path, file) in self.files {
            match paths::normalise_with(&path, repo, workspace) {
                Ok(rel) => match out.files.entry(rel) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(file);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(&file),
                },
                Err(_) => unmatched.push(path),
            }
        }
        (out, unmatched)
    }
}

/// A report's coverage while it is read: each file's lines gathered by
/// [`LineSetBuilder`]s, in any order ([`CoverageBuilder::open`], [`CoverageBuilder::close`]),
/// the ranges held counted against a most ([`parse_within`]).
pub(crate) struct CoverageBuilder {
    files: BTreeMap<String, OpenFile>,
    /// Ranges the builders hold now, over all files.
    held: u64,
    max: u64,
}

impl Default for CoverageBuilder {
    fn default() -> Self {
        CoverageBuilder::within(u64::MAX)
    }
}

/// More ranges held than a report may hold: the most allowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverLimit(pub u64);

impl OverLimit {
    /// The error at a place in the report (`at`, from the parser, names the line).
    pub(crate) fn at(self, at: ParseError) -> ParseError {
        ParseError {
            message: format!("more than {} line ranges and test cases", self.0),
            over_limit: true,
            ..at
        }
    }
}

/// A file whose lines are being read, taken out of its [`CoverageBuilder`] so that adding
/// a line does not look the path up again.
pub(crate) struct OpenFile {
    pub path: String,
    covered: LineSetBuilder,
    coverable: LineSetBuilder,
    /// The builder's count of ranges held, this file's included, while it is open.
    held: u64,
    max: u64,
}

impl OpenFile {
    /// A coverable line and its hits.
    pub fn add(&mut self, line: u32, hits: u64) -> Result<(), OverLimit> {
        self.add_range(line, line, hits)
    }

    /// Coverable lines `start..=end`, all with `hits`.
    pub fn add_range(&mut self, start: u32, end: u32, hits: u64) -> Result<(), OverLimit> {
        let before = self.ranges_held();
        self.coverable.insert_range(start, end);
        if hits > 0 {
            self.covered.insert_range(start, end);
        }
        self.held = (self.held + self.ranges_held()).saturating_sub(before);
        if self.held > self.max {
            return Err(OverLimit(self.max));
        }
        Ok(())
    }

    fn ranges_held(&self) -> u64 {
        (self.covered.held() + self.coverable.held()) as u64
    }

    fn build(self) -> FileCoverage {
        FileCoverage {
            covered: self.covered.build(),
            coverable: self.coverable.build(),
        }
    }
}

impl CoverageBuilder {
    /// A builder that holds at most `max` ranges.
    pub(crate) fn within(max: u64) -> Self {
        CoverageBuilder {
            files: BTreeMap::new(),
            held: 0,
            max,
        }
    }

    pub(crate) fn open(&mut self, path: String) -> OpenFile {
        let mut file = self.files.remove(&path).unwrap_or(OpenFile {
            path,
            covered: LineSetBuilder::default(),
            coverable: LineSetBuilder::default(),
            held: 0,
            max: 0,
        });
        file.held = self.held;
        file.max = self.max;
        file
    }

    pub(crate) fn close(&mut self, file: OpenFile) {
        self.held = file.held;
        self.files.insert(file.path.clone(), file);
    }

    pub(crate) fn finish(self) -> LineCoverage {
        LineCoverage {
            files: self
                .files
                .into_iter()
                .map(|(path, f)| (path, f.build()))
                .collect(),
        }
    }
}

/// How one test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Passed,
    /// An assertion failed (`<failure>`).
    Failed,
    /// The test could not run to its assertion: set-up, an unexpected exception (`<error>`).
    Errored,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Errored => "errored",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One `<testcase>` of a JUnit report.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The innermost enclosing `<testsuite name>`.
    pub suite: Option<String>,
    pub classname: Option<String>,
    pub name: String,
    /// The test's source file, when the runner writes one (on the case or its suite).
    pub file: Option<String>,
    pub duration_s: Option<f64>,
    pub outcome: Outcome,
    /// For failures, errors and skips: the `message` attribute, else the element's text
    /// (capped at [`junit::MESSAGE_MAX`] bytes).
    pub message: Option<String>,
}

/// Rewrites each test's `file` to be repository-relative ([`paths::normalise_with`]).
///
/// A file that cannot be placed in the repository is cleared; the distinct paths that
/// could not be placed are returned, sorted, so that the caller can report them.
pub fn normalise_test_files(
    tests: &mut [TestCase],
    repo: &str,
    workspace: Option<&str>,
) -> Vec<String> {
    let mut unmatched = std::collections::BTreeSet::new();
    for t in tests.iter_mut() {
        if let Some(file) = t.file.take() {
            match paths::normalise_with(&file, repo, workspace) {
                Ok(rel) => t.file = Some(rel),
                Err(_) => {
                    unmatched.insert(file);
                }
            }
        }
    }
    unmatched.into_iter().collect()
}

/// What one report file says.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Coverage(LineCoverage),
    Tests(Vec<TestCase>),
    /// Lines agents wrote, per commit and file.
    Lines(Vec<lines::LineRecord>),
}

/// A report that cannot be read: which format, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub format: Format,
    /// 1-based line of the report where reading stopped, when known.
    pub line: Option<u64>,
    pub message: String,
    /// The report holds more than it may ([`parse_within`]): too large, not unreadable.
    pub over_limit: bool,
}

impl ParseError {
    pub(crate) fn new(format: Format, line: Option<u64>, message: impl Into<String>) -> Self {
        ParseError {
            format,
            line,
            message: message.into(),
            over_limit: false,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {}: {}", self.format, line, self.message),
            None => write!(f, "{}: {}", self.format, self.message),
        }
    }
}

/// Says which format a report is in from its first bytes (a few KB are plenty), or
/// `None` when it is none of the seven.
pub fn detect(head: &[u8]) -> Option<Format> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &head[start..];
    if let Some(f) = lines::detect(head) {
        return Some(f);
    }
    if head.starts_with(b"<") {
        return xml::detect_root(head);
    }
    if head.starts_with(b"mode:") {
        return Some(Format::GoCover);
    }
    // lcov: the first record starts with a test name or a source file.
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or(head);
    if first_line.starts_with(b"TN:") || first_line.starts_with(b"SF:") {
        return Some(Format::Lcov);
    }
    None
}

/// Reads a whole report of a known format.
pub fn parse(reader: impl BufRead, format: Format) -> Result<Report, ParseError> {
    parse_within(reader, format, u64::MAX)
}

/// Reads a whole report of a known format, holding at most `max_entries` line ranges of
/// coverage or test cases while it reads (line records are bounded by their own caps,
/// [`lines::MAX_RANGES`]); beyond, an error marked [`ParseError::over_limit`].
pub fn parse_within(
    reader: impl BufRead,
    format: Format,
    max_entries: u64,
) -> Result<Report, ParseError> {
    let cov = || CoverageBuilder::within(max_entries);
    match format {
        Format::Lcov => lcov::parse(reader, cov()).map(Report::Coverage),
        Format::Cobertura => cobertura::parse(reader, cov()).map(Report::Coverage),
        Format::Jacoco => jacoco::parse(reader, cov()).map(Report::Coverage),
        Format::GoCover => gocover::parse(reader, cov()).map(Report::Coverage),
        Format::Junit => junit::parse(reader, max_entries).map(Report::Tests),
        Format::GitAi => lines::parse_git_ai(reader).map(Report::Lines),
        Format::AgentTrace => lines::parse_agent_trace(reader).map(Report::Lines),
    }
}

/// Parses a decimal unsigned integer written with ASCII digits only.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// As [`parse_u64`], for line numbers.
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

/// Shortens `s` for an error message.
pub(crate) fn shown(s: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(s);
    let text = text.trim_end_matches(['\r', '\n']);
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}…")
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    /// Reads a committed fixture from `tests/fixtures/ci/`.
    pub fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/ci/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn coverage(bytes: &[u8], format: Format) -> LineCoverage {
        match parse(bytes, format) {
            Ok(Report::Coverage(c)) => c,
            other => panic!("expected coverage, got {other:?}"),
        }
    }

    pub fn tests(bytes: &[u8]) -> Vec<TestCase> {
        match parse(bytes, Format::Junit) {
            Ok(Report::Tests(t)) => t,
            other => panic!("expected tests, got {other:?}"),
        }
    }

    pub fn parse_err(bytes: &[u8], format: Format) -> ParseError {
        match parse(bytes, format) {
            Err(e) => e,
            Ok(r) => panic!("expected an error, got {r:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{fixture, parse_err};
    use super::*;

    #[test]
    fn detects_every_fixture_from_content() {
        let cases = [
            ("coverage.lcov", Format::Lcov),
            ("jest-lcov.info", Format::Lcov),
            ("coverage.xml", Format::Cobertura),
            ("jest-cobertura.xml", Format::Cobertura),
            ("gcovr-cobertura.xml", Format::Cobertura),
            ("jacoco.xml", Format::Jacoco),
            ("coverage.out", Format::GoCover),
            ("pytest-junit.xml", Format::Junit),
            ("jest-junit.xml", Format::Junit),
            ("nextest-junit.xml", Format::Junit),
            ("mocha-junit.xml", Format::Junit),
            ("mocha-xunit.xml", Format::Junit),
            ("TEST-com.acme.demo.CalcTest.xml", Format::Junit),
        ];
        for (name, want) in cases {
            let bytes = fixture(name);
            let head = &bytes[..bytes.len().min(4096)];
            assert_eq!(detect(head), Some(want), "{name}");
        }
    }

    #[test]
    fn detect_refuses_what_it_does_not_read() {
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"   \n"), None);
        assert_eq!(detect(b"{\"coverage\": 1}"), None);
        assert_eq!(detect(b"<html><body/></html>"), None);
        // Clover XML also has a <coverage> root.
        assert_eq!(
            detect(b"<?xml version=\"1.0\"?><coverage generated=\"1\" clover=\"4.4.1\"><project/></coverage>"),
            None
        );
        assert_eq!(
            detect(b"\xEF\xBB\xBF  SF:a.c\nDA:1,1\n"),
            Some(Format::Lcov)
        );
        // A head cut in the middle of the root tag is still recognised or refused, never a panic.
        assert_eq!(detect(b"<?xml version=\"1.0\"?>\n<testsuites na"), None);
        assert_eq!(detect(b"<testsuite name=\"x\">"), Some(Format::Junit));
    }

    #[test]
    fn error_display_names_format_and_line() {
        let e = ParseError::new(Format::Lcov, Some(7), "DA line count is not a number");
        assert_eq!(e.to_string(), "lcov line 7: DA line count is not a number");
        let e = ParseError::new(Format::GoCover, None, "empty profile");
        assert_eq!(e.to_string(), "go: empty profile");
    }

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.as_str()), Some(f));
        }
        assert_eq!(Format::GoCover.as_str(), "go");
    }

    /// Coverage of `(path, line, hits)` entries, as a parser gathers it.
    fn cov(entries: &[(&str, u32, u64)]) -> LineCoverage {
        let mut b = CoverageBuilder::default();
        for &(path, line, hits) in entries {
            let mut f = b.open(path.to_string());
            f.add(line, hits).unwrap();
            b.close(f);
        }
        b.finish()
    }

    #[test]
    fn merge_unions_lines_and_totals_count_them() {
        let mut a = cov(&[("a.rs", 1, 1), ("a.rs", 2, 0)]);
        let b = cov(&[("a.rs", 2, 3), ("a.rs", 3, 0), ("b.rs", 1, 0)]);
        a.merge(&b);
        assert_eq!(a.files["a.rs"].covered, LineSet::from_lines([1, 2]));
        assert_eq!(a.files["a.rs"].missed(), LineSet::from_lines([3]));
        assert_eq!(a.file_totals("a.rs"), (2, 3));
        assert_eq!(a.file_totals("b.rs"), (0, 1));
        assert_eq!(a.file_totals("missing.rs"), (0, 0));
        assert_eq!(a.totals(), (2, 4));
    }

    #[test]
    fn parse_within_stops_at_the_ranges_it_may_hold() {
        // Hit and missed lines alternate: every covered line is a range of its own.
        let mut lcov = String::from("SF:a.c\n");
        for l in 1..=1000 {
            lcov.push_str(&format!("DA:{l},{}\n", l % 2));
        }
        lcov.push_str("end_of_record\n");
        let whole = parse(lcov.as_bytes(), Format::Lcov).unwrap();
        let Report::Coverage(c) = whole else {
            panic!("coverage")
        };
        assert_eq!(c.ranges(), 501);
        let e = parse_within(lcov.as_bytes(), Format::Lcov, 100).unwrap_err();
        assert!(e.over_limit, "{e}");
        assert_eq!(e.line, Some(200), "{e}");
        assert_eq!(
            e.to_string(),
            "lcov line 200: more than 100 line ranges and test cases"
        );
        // Unreadable is not too large.
        assert!(!parse_err(b"SF:a.c\nDA:x,1\n", Format::Lcov).over_limit);
    }

    #[test]
    fn a_range_is_held_as_one_range() {
        let mut b = CoverageBuilder::default();
        let mut f = b.open("a.go".into());
        f.add_range(1, 100_000, 1).unwrap();
        f.add_range(50, 200_000, 0).unwrap();
        b.close(f);
        let c = b.finish();
        assert_eq!(c.file_totals("a.go"), (100_000, 200_000));
        assert_eq!(c.ranges(), 2);
        assert_eq!(c.files["a.go"].missed().ranges(), &[(100_001, 200_000)]);
    }

    #[test]
    fn test_files_are_normalised_and_unmatched_ones_reported() {
        let mut cases = testutil::tests(&fixture("mocha-junit.xml"));
        let unmatched = normalise_test_files(&mut cases, "acme/demo", Some("/tmp/fx/js10"));
        assert!(unmatched.is_empty());
        assert!(
            cases
                .iter()
                .all(|c| c.file.as_deref() == Some("mtest/cart.spec.js"))
        );

        let mut cases = testutil::tests(&fixture("mocha-xunit.xml"));
        let unmatched = normalise_test_files(&mut cases, "acme/demo", None);
        assert_eq!(unmatched, vec!["/tmp/fx/js/mtest/cart.spec.js".to_string()]);
        assert!(cases.iter().all(|c| c.file.is_none()));
    }

    #[test]
    fn normalise_paths_merges_and_reports_unmatched() {
        let c = cov(&[
            ("/home/runner/work/demo/demo/src/a.py", 1, 1),
            ("./src/a.py", 1, 0),
            ("./src/a.py", 2, 0),
            ("/opt/elsewhere/b.py", 1, 0),
        ]);
        let (c, unmatched) = c.normalise_paths("acme/demo", None);
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.file_totals("src/a.py"), (1, 2));
        assert_eq!(unmatched, vec!["/opt/elsewhere/b.py".to_string()]);
    }
}
