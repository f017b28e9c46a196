//! JUnit XML test reports, in the variants real runners write:
//!
//! - pytest `--junitxml`: `<testsuites><testsuite name="pytest">`, `classname` is the
//!   module, the failure text is in a `message` attribute with `&#10;` newlines;
//! - jest-junit: one `<testsuite>` per `describe`, `<failure>` with no `message`, the text
//!   is the element's content;
//! - cargo-nextest: `<testsuite name=<binary>>`, `<failure message type>` plus
//!   `<system-out>`/`<system-err>`; ignored tests are not written;
//! - Maven Surefire (`TEST-*.xml`): a bare `<testsuite>` root with `<properties>`,
//!   CDATA stack traces, and `<flakyFailure>`/`<rerunFailure>` for reruns (a test with
//!   only flaky failures passed);
//! - mocha: the `xunit` reporter (bare `<testsuite>`, `file` on each case) and
//!   mocha-junit-reporter (`file` on the suite, nested suites flattened).
//!
//! Suites may nest; each case takes the name of its innermost suite and, when it has no
//! `file` of its own, the nearest suite's `file`. A case's outcome is its worst child:
//! `<error>` over `<failure>` over `<skipped>`. Counts in suite attributes are not trusted;
//! the cases are counted.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::xml::XmlReader;
use super::{Format, Outcome, ParseError, TestCase};

const FORMAT: Format = Format::Junit;

/// The longest failure message kept, in bytes; longer ones are cut with `…`.
pub const MESSAGE_MAX: usize = 8 * 1024;

struct Suite {
    name: Option<String>,
    file: Option<String>,
}

/// The `<failure>`, `<error>` or `<skipped>` being read.
struct Verdict {
    element: &'static str,
    /// Set when the element has a `message` attribute; its text is then not needed.
    has_message: bool,
    text: String,
}

/// Reads a JUnit report of at most `max_cases` test cases.
pub(super) fn parse(reader: impl BufRead, max_cases: u64) -> Result<Vec<TestCase>, ParseError> {
    let mut xml = XmlReader::new(reader, FORMAT);
    let mut buf = Vec::with_capacity(1024);
    let mut cases = Vec::new();
    let mut suites: Vec<Suite> = Vec::new();
    let mut case: Option<TestCase> = None;
    let mut verdict: Option<Verdict> = None;
    let mut depth = 0u32;
    let mut seen_root = false;
    loop {
        let (e, empty) = match xml.next(&mut buf)? {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                match e.local_name().as_ref() {
                    "testsuite" => {
                        suites.pop();
                    }
                    "testcase" => {
                        if let Some(c) = case.take() {
                            cases.push(c);
                        }
                    }
                    name => {
                        if let Some(v) = verdict.take_if(|v| v.element == name) {
                            finish_verdict(&mut case, v);
                        }
                    }
                }
                continue;
            }
            Event::Text(t) => {
                if let Some(v) = verdict.as_mut().filter(|v| !v.has_message) {
                    push_capped(&mut v.text, &t.xml10_content());
                }
                continue;
            }
            Event::CData(t) => {
                if let Some(v) = verdict.as_mut().filter(|v| !v.has_message) {
                    push_capped(&mut v.text, &t.xml10_content());
                }
                continue;
            }
            Event::GeneralRef(r) => {
                let text = xml.resolve_ref(&r)?;
                if let Some(v) = verdict.as_mut().filter(|v| !v.has_message) {
                    push_capped(&mut v.text, &text);
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = e.local_name();
        let name = name.as_ref();
        if !seen_root {
            if name != "testsuites" && name != "testsuite" {
                return Err(xml.error(format!(
                    "root element is <{name}>, not <testsuites> or <testsuite>"
                )));
            }
            seen_root = true;
        }
        if !empty {
            depth += 1;
        }
        match name {
            "testsuite" => {
                if case.is_some() {
                    return Err(xml.error("<testsuite> inside a <testcase>"));
                }
                if !empty {
                    suites.push(Suite {
                        name: xml.attr(&e, "name")?.map(|s| s.into_owned()),
                        file: xml.attr(&e, "file")?.map(|s| s.into_owned()),
                    });
                }
            }
            "testcase" => {
                if case.is_some() {
                    return Err(xml.error("<testcase> inside a <testcase>"));
                }
                if cases.len() as u64 >= max_cases {
                    return Err(super::OverLimit(max_cases).at(xml.error(String::new())));
                }
                let c = start_case(&xml, &e, &suites)?;
                if empty {
                    cases.push(c);
                } else {
                    case = Some(c);
                }
            }
            "failure" | "error" | "skipped" if case.is_some() && verdict.is_none() => {
                let element = match name {
                    "failure" => "failure",
                    "error" => "error",
                    _ => "skipped",
                };
                let message = xml.attr(&e, "message")?.filter(|m| !m.trim().is_empty());
                let v = Verdict {
                    element,
                    has_message: message.is_some(),
                    text: message.map(|m| cap(&m)).unwrap_or_default(),
                };
                if empty {
                    finish_verdict(&mut case, v);
                } else {
                    verdict = Some(v);
                }
            }
            _ => {}
        }
    }
    if !seen_root {
        return Err(xml.error_at_end("no <testsuites> or <testsuite> element"));
    }
    if depth > 0 {
        return Err(xml.error_at_end("the document ends inside an element (truncated?)"));
    }
    Ok(cases)
}

fn start_case<R: BufRead>(
    xml: &XmlReader<R>,
    e: &BytesStart<'_>,
    suites: &[Suite],
) -> Result<TestCase, ParseError> {
    let name = xml.required_attr(e, "name")?.into_owned();
    let file = match xml.attr(e, "file")? {
        Some(f) => Some(f.into_owned()),
        None => suites.iter().rev().find_map(|s| s.file.clone()),
    };
    let duration_s = match xml.attr(e, "time")? {
        None => None,
        Some(t) => parse_seconds(&t).map_err(|()| {
            xml.error(format!(
                "time={} is not a number of seconds",
                super::shown(t.as_bytes())
            ))
        })?,
    };
    Ok(TestCase {
        suite: suites.last().and_then(|s| s.name.clone()),
        classname: xml.attr(e, "classname")?.map(|s| s.into_owned()),
        name,
        file,
        duration_s,
        outcome: Outcome::Passed,
        message: None,
    })
}

/// Seconds as runners write them: `0.004`, `0`, `1,234.5` (Surefire before 3.0 grouped
/// thousands); an empty value is no duration.
fn parse_seconds(t: &str) -> Result<Option<f64>, ()> {
    let t = t.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let n: f64 = if t.contains(',') {
        t.replace(',', "").parse().map_err(|_| ())?
    } else {
        t.parse().map_err(|_| ())?
    };
    if n.is_finite() && n >= 0.0 {
        Ok(Some(n))
    } else {
        Err(())
    }
}

fn finish_verdict(case: &mut Option<TestCase>, v: Verdict) {
    let Some(c) = case.as_mut() else { return };
    let outcome = match v.element {
        "error" => Outcome::Errored,
        "failure" => Outcome::Failed,
        _ => Outcome::Skipped,
    };
    if severity(outcome) > severity(c.outcome) {
        c.outcome = outcome;
        let text = v.text.trim();
        c.message = (!text.is_empty()).then(|| text.to_owned());
    }
}

fn severity(o: Outcome) -> u8 {
    match o {
        Outcome::Passed => 0,
        Outcome::Skipped => 1,
        Outcome::Failed => 2,
        Outcome::Errored => 3,
    }
}

fn cap(s: &str) -> String {
    let mut out = String::new();
    push_capped(&mut out, s);
    out
}

fn push_capped(out: &mut String, s: &str) {
    if out.len() >= MESSAGE_MAX {
        return;
    }
    let room = MESSAGE_MAX - out.len();
    if s.len() <= room {
        out.push_str(s);
    } else {
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&s[..end]);
        out.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{fixture, parse_err, tests};
    use super::*;

    fn count(cases: &[TestCase], o: Outcome) -> usize {
        cases.iter().filter(|c| c.outcome == o).count()
    }

    fn counts(cases: &[TestCase]) -> [usize; 4] {
        [
            count(cases, Outcome::Passed),
            count(cases, Outcome::Failed),
            count(cases, Outcome::Errored),
            count(cases, Outcome::Skipped),
        ]
    }

    fn only(cases: &[TestCase], o: Outcome) -> &TestCase {
        let found: Vec<_> = cases.iter().filter(|c| c.outcome == o).collect();
        assert_eq!(found.len(), 1, "{o:?}");
        found[0]
    }

    #[test]
    fn pytest_junit_matches_pytest_summary() {
        // pytest: "1 failed, 4 passed, 1 skipped, 1 error".
        let cases = tests(&fixture("pytest-junit.xml"));
        assert_eq!(counts(&cases), [4, 1, 1, 1]);
        let failed = only(&cases, Outcome::Failed);
        assert_eq!(failed.name, "test_clamp_wrong");
        assert_eq!(failed.classname.as_deref(), Some("tests.test_ops"));
        assert_eq!(failed.suite.as_deref(), Some("pytest"));
        assert_eq!(failed.duration_s, Some(0.001));
        let msg = failed.message.as_deref().unwrap_or_default();
        assert!(
            msg.starts_with("AssertionError: clamp should keep 11\nassert 10 == 11"),
            "{msg}"
        );
        let errored = only(&cases, Outcome::Errored);
        assert_eq!(errored.name, "test_with_db");
        assert!(
            errored
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("RuntimeError: database is down")
        );
        let skipped = only(&cases, Outcome::Skipped);
        assert_eq!(skipped.message.as_deref(), Some("whisper is not ready"));
    }

    #[test]
    fn jest_junit_takes_the_message_from_the_text() {
        // jest: "Tests: 1 failed, 1 skipped, 3 passed, 5 total".
        let cases = tests(&fixture("jest-junit.xml"));
        assert_eq!(counts(&cases), [3, 1, 0, 1]);
        let failed = only(&cases, Outcome::Failed);
        assert_eq!(failed.name, "Cart applies a discount");
        assert_eq!(failed.suite.as_deref(), Some("Cart"));
        let msg = failed.message.as_deref().unwrap_or_default();
        assert!(
            msg.starts_with("Error: expect(received).toBe(expected)"),
            "{msg}"
        );
        assert!(msg.contains("Expected: 9\nReceived: 10"), "{msg}");
        assert!(msg.contains("new Promise (<anonymous>)"), "{msg}");
        assert_eq!(
            only(&cases, Outcome::Skipped).name,
            "strings capitalize handles empty strings"
        );
    }

    #[test]
    fn nextest_junit_matches_nextest_summary() {
        // nextest: "2 tests run: 1 passed, 1 failed, 1 skipped" (the ignored test is not in
        // the JUnit file).
        let cases = tests(&fixture("nextest-junit.xml"));
        assert_eq!(counts(&cases), [1, 1, 0, 0]);
        let failed = only(&cases, Outcome::Failed);
        assert_eq!(failed.name, "tests::doubles_three_wrongly");
        assert_eq!(failed.suite.as_deref(), Some("nx"));
        let msg = failed.message.as_deref().unwrap_or_default();
        assert!(
            msg.starts_with("thread 'tests::doubles_three_wrongly' ("),
            "{msg}"
        );
        assert!(msg.ends_with("panicked at src/lib.rs:16:9"), "{msg}");
    }

    #[test]
    fn surefire_report_counts_flaky_as_passed() {
        // Hand-written in Surefire 3's shape: tests=5 errors=1 failures=1 skipped=1, plus a
        // test that failed once and passed on rerun.
        let cases = tests(&fixture("TEST-com.acme.demo.CalcTest.xml"));
        assert_eq!(counts(&cases), [2, 1, 1, 1]);
        let failed = only(&cases, Outcome::Failed);
        assert_eq!(failed.name, "subtracts");
        assert_eq!(failed.classname.as_deref(), Some("com.acme.demo.CalcTest"));
        assert_eq!(
            failed.message.as_deref(),
            Some("expected: <1> but was: <2>")
        );
        assert_eq!(
            only(&cases, Outcome::Errored).message.as_deref(),
            Some("/ by zero")
        );
        let flaky = cases.iter().find(|c| c.name == "talksToClock");
        assert_eq!(flaky.map(|c| c.outcome), Some(Outcome::Passed));
    }

    #[test]
    fn mocha_junit_reporter_nested_suites_and_suite_files() {
        // mocha: "3 passing, 1 pending, 1 failing"; mocha-junit-reporter leaves the pending
        // test out unless asked (its <testsuites skipped="1"> header still counts it).
        let cases = tests(&fixture("mocha-junit.xml"));
        assert_eq!(counts(&cases), [3, 1, 0, 0]);
        let failed = only(&cases, Outcome::Failed);
        assert_eq!(failed.name, "Cart (mocha) counts items");
        assert_eq!(
            failed.file.as_deref(),
            Some("/tmp/fx/js10/mtest/cart.spec.js")
        );
        let msg = failed.message.as_deref().unwrap_or_default();
        assert!(msg.starts_with("expected two items"), "{msg}");
        let nested = cases
            .iter()
            .find(|c| c.name == "Cart (mocha) totals sums prices");
        assert_eq!(nested.and_then(|c| c.suite.as_deref()), Some("totals"));
    }

    #[test]
    fn mocha_xunit_reporter_hex_references_and_files() {
        // mocha --reporter xunit: same run; the failure is <failure> with text only.
        let cases = tests(&fixture("mocha-xunit.xml"));
        assert_eq!(counts(&cases), [3, 1, 0, 1]);
        let failed = only(&cases, Outcome::Failed);
        assert_eq!(failed.name, "counts items");
        assert_eq!(
            failed.file.as_deref(),
            Some("/tmp/fx/js/mtest/cart.spec.js")
        );
        let msg = failed.message.as_deref().unwrap_or_default();
        assert!(
            msg.contains("at Context.<anonymous> (mtest/cart.spec.js:16:12)"),
            "{msg}"
        );
    }

    #[test]
    fn worst_child_wins_and_long_messages_are_capped() {
        let long = "x".repeat(MESSAGE_MAX * 2);
        let doc = format!(
            "<testsuites><testsuite name=\"s\"><testcase name=\"a\"><skipped/><error message=\"boom\"/></testcase><testcase name=\"b\" time=\"1,234.5\"><failure>{long}</failure></testcase></testsuite></testsuites>"
        );
        let cases = tests(doc.as_bytes());
        assert_eq!(cases[0].outcome, Outcome::Errored);
        assert_eq!(cases[0].message.as_deref(), Some("boom"));
        assert_eq!(cases[1].duration_s, Some(1234.5));
        assert!(
            cases[1]
                .message
                .as_ref()
                .is_some_and(|m| m.len() <= MESSAGE_MAX + 3)
        );
        let cases = tests(b"<testsuite><testcase name=\"c\" time=\"\"/></testsuite>");
        assert_eq!(cases[0].duration_s, None);
    }

    #[test]
    fn malformed_junit_names_format_and_line() {
        let full = fixture("jest-junit.xml");
        let text = String::from_utf8_lossy(&full);
        let cut = text.find("Received: 10").unwrap_or(full.len() / 2);
        let cut = &full[..cut];
        let e = parse_err(cut, FORMAT);
        assert_eq!(e.format, Format::Junit);
        let last_line = cut.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        assert_eq!(e.line, Some(last_line), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("junit line {last_line}: ")),
            "{e}"
        );

        let doc = "<testsuite name=\"s\">\n<testcase name=\"a\" time=\"fast\"/>\n</testsuite>";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("time"), "{e}");

        let doc = "<testsuite name=\"s\">\n<testcase classname=\"c\"/>\n</testsuite>";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("name"), "{e}");

        let doc = "<testsuite>\n<testcase name=\"a\">\n</testsuite>";
        assert_eq!(parse_err(doc.as_bytes(), FORMAT).line, Some(3));

        let doc =
            "<testsuite>\n<testcase name=\"a\"><failure>&bogus;</failure></testcase></testsuite>";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("&bogus;"), "{e}");

        let e = parse_err(b"<coverage/>", FORMAT);
        assert!(e.message.contains("<coverage>"), "{e}");
        let e = parse_err(b"", FORMAT);
        assert!(e.message.contains("no <testsuites>"), "{e}");
    }
}
