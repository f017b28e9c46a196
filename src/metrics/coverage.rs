//! Coverage and test metrics of a pull request, from the stored CI uploads (loaded by
//! [`crate::impact`]): the report's `coverage` and `tests` sections, as JSON the report
//! embeds as is. Pure functions over the rows the store loads.
//!
//! Coverage is by line. Uploads of one commit are merged: a line is coverable when any
//! upload lists it, covered when any upload saw it run. Percentages have two decimals.
//!
//! [`coverage_section`] → `None` when the head commit has no coverage upload, else:
//!
//! ```json
//! {
//!   "head":  {"sha": "…", "covered": 120, "coverable": 150, "pct": 80.0, "uploads": 2},
//!   "flags": [{"flag": "unit", "covered": 100, "coverable": 150, "pct": 66.67}],
//!   "base":  {"sha": "…", "ref": "main", "distance": 3, "covered": 130, "coverable": 150, "pct": 86.67},
//!   "base_note": null,
//!   "delta_pp": -6.67,
//!   "patch":       {"covered": 8, "coverable": 10, "pct": 80.0},
//!   "agent_patch": {"covered": 3, "coverable": 5, "pct": 60.0},
//!   "missing": [{"path": "src/a.rs", "count": 2, "lines": "12-13"}],
//!   "missing_more": 0,
//!   "complete": true
//! }
//! ```
//!
//! - `base` is the nearest ancestor of head (following `parent` links) that is on the
//!   base branch (pushed to `refs/heads/<base_ref>`, or uploaded from that ref) and has a
//!   coverage upload; `distance` counts commits back from head. When there is none,
//!   `base` and `delta_pp` are `null` and `base_note` says why; nothing is guessed.
//! - `patch` counts the PR's added lines that the merged head coverage lists (coverable)
//!   and sees run (covered); `pct` is `null` when no added line is coverable.
//!   `agent_patch` is the same for agent-attributed added lines (`null` when there are
//!   none).
//! - `missing`: files with coverable added lines not covered, most missing first (ties
//!   by path), at most 20 (`missing_more` counts the rest); `lines` are ranges of new-file
//!   line numbers (`"12-15,20"`).
//! - `complete` is true when every workflow run with uploads at head has completed
//!   (`ci_runs`, kind `workflow_run`); until then more uploads may come, and a fall in
//!   coverage should not be announced. Uploads from CI without workflow_run events (static
//!   tokens) never complete.
//!
//! [`tests_section`] → `None` when head has no test report, else:
//!
//! ```json
//! {
//!   "total": 12, "passed": 9, "failed": 2, "skipped": 1,
//!   "failures": [{"name": "calc.CalcTest::subtracts", "file": "src/x.py", "message": "…"}],
//!   "failures_more": 0,
//!   "newly_failing": ["calc.CalcTest::subtracts"],
//!   "flaky": ["calc.CalcTest::talksToClock"],
//!   "base": "…",
//!   "complete": true
//! }
//! ```
//!
//! A test is named `classname::name` (else `suite::name`). Its outcome at a commit is its
//! result in the highest attempt (then the latest upload); `failed` counts errors too.
//! `flaky`: failed in one attempt of a run and passed in a later attempt of the same run,
//! at the same commit. `newly_failing`: failing at head and not failing at `base` (new
//! tests included); `null` when there is no base or it has no test report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::facts::encode_lines;
use crate::line_set::LineSet;
use crate::store::uploads::{AncestorRow, FileLines, StoredCase, StoredUpload};

/// `part / whole` as a percentage with two decimals; `None` for an empty whole.
pub fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

/// Ancestors walked when looking for the base.
pub const MAX_BASE_DEPTH: i64 = 1000;
/// Rows of the missing-lines table and of the failures list.
const MAX_LISTED: usize = 20;

/// Merged line coverage: path → (covered, coverable) lines, as ranges.
#[derive(Debug, Default)]
pub struct Merged {
    files: HashMap<String, (LineSet, LineSet)>,
}

impl Merged {
    pub fn add(&mut self, lines: &FileLines) {
        for (path, (covered, missed)) in lines {
            let (c, t) = self.files.entry(path.clone()).or_default();
            *c = c.union(covered);
            *t = t.union(&covered.union(missed));
        }
    }

    /// `(covered, coverable)`.
    pub fn totals(&self) -> (u64, u64) {
        self.files
            .values()
            .fold((0, 0), |(c, t), (fc, ft)| (c + fc.len(), t + ft.len()))
    }
}

/// Patch coverage of a set of added lines: `(covered, coverable, missing per file)`.
pub fn patch_coverage(
    merged: &Merged,
    added: &[(String, Vec<u32>)],
) -> (u64, u64, Vec<(String, Vec<u32>)>) {
    let (mut covered, mut coverable) = (0, 0);
    let mut missing = Vec::new();
    for (path, lines) in added {
        let Some((hit, lists)) = merged.files.get(path) else {
            continue;
        };
        let mut miss = Vec::new();
        for &l in lines {
            if hit.contains(l) {
                covered += 1;
                coverable += 1;
            } else if lists.contains(l) {
                coverable += 1;
                miss.push(l);
            }
        }
        if !miss.is_empty() {
            miss.sort_unstable();
            miss.dedup();
            missing.push((path.clone(), miss));
        }
    }
    (covered, coverable, missing)
}

fn ratio(covered: u64, coverable: u64) -> Value {
    json!({"covered": covered, "coverable": coverable, "pct": pct(covered, coverable)})
}

fn merge<'a>(lines: impl IntoIterator<Item = &'a FileLines>) -> Merged {
    let mut m = Merged::default();
    for l in lines {
        m.add(l);
    }
    m
}

/// What the coverage section is computed from.
pub struct CoverageInputs<'a> {
    pub head_sha: &'a str,
    /// The head commit's coverage uploads, each with its lines.
    pub head: &'a [(StoredUpload, FileLines)],
    /// The base branch (without `refs/heads/`).
    pub branch: &'a str,
    /// The chosen base (SHA, distance, its uploads' lines), or why there is none.
    pub base: Result<(String, i64, Vec<FileLines>), String>,
    pub pr_added: &'a [(String, Vec<u32>)],
    pub agent_added: &'a [(String, Vec<u32>)],
    /// Every workflow run with uploads at head has completed.
    pub complete: bool,
}

/// The report's coverage section (see the module docs for its shape); `None` when the
/// head commit has no coverage upload.
pub fn coverage_section(inp: CoverageInputs<'_>) -> Option<Value> {
    let CoverageInputs {
        head_sha,
        head,
        branch,
        base,
        pr_added,
        agent_added,
        complete,
    } = inp;
    if head.is_empty() {
        return None;
    }
    let merged = merge(head.iter().map(|(_, l)| l));
    let (hc, ht) = merged.totals();

    let mut by_flag: BTreeMap<&str, Vec<&FileLines>> = BTreeMap::new();
    for (u, lines) in head {
        for f in &u.flags {
            by_flag.entry(f.as_str()).or_default().push(lines);
        }
    }
    let mut flags = Vec::new();
    for (flag, lines) in by_flag {
        let (c, t) = merge(lines).totals();
        flags.push(json!({"flag": flag, "covered": c, "coverable": t, "pct": pct(c, t)}));
    }

    let (base, base_note, delta) = match base {
        Ok((sha, distance, lines)) => {
            let (bc, bt) = merge(&lines).totals();
            let delta = match (ht, bt) {
                (0, _) | (_, 0) => None,
                _ => Some(
                    ((hc as f64 / ht as f64 - bc as f64 / bt as f64) * 10_000.0).round() / 100.0,
                ),
            };
            (
                json!({"sha": sha, "ref": branch, "distance": distance, "covered": bc,
                       "coverable": bt, "pct": pct(bc, bt)}),
                Value::Null,
                delta,
            )
        }
        Err(note) => (Value::Null, Value::String(note), None),
    };

    let (pc, pt, missing) = patch_coverage(&merged, pr_added);
    let agent_patch = if agent_added.iter().any(|(_, l)| !l.is_empty()) {
        let (ac, at, _) = patch_coverage(&merged, agent_added);
        ratio(ac, at)
    } else {
        Value::Null
    };
    let mut missing = missing;
    missing.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    let missing_more = missing.len().saturating_sub(MAX_LISTED);
    let missing: Vec<Value> = missing
        .into_iter()
        .take(MAX_LISTED)
        .map(|(path, lines)| {
            json!({"path": path, "count": lines.len(), "lines": encode_lines(lines)})
        })
        .collect();

    Some(json!({
        "head": {"sha": head_sha, "covered": hc, "coverable": ht, "pct": pct(hc, ht),
                 "uploads": head.len()},
        "flags": flags,
        "base": base,
        "base_note": base_note,
        "delta_pp": delta,
        "patch": ratio(pc, pt),
        "agent_patch": agent_patch,
        "missing": missing,
        "missing_more": missing_more,
        "complete": complete,
    }))
}

/// The nearest ancestor of head on `branch` with a coverage upload, and how many commits
/// back it is; or why there is none. `ancestors` are head's, nearest first.
pub fn choose_base(
    ancestors: &[AncestorRow],
    head_sha: &str,
    branch: &str,
) -> Result<(String, i64), String> {
    let short = &head_sha[..head_sha.len().min(7)];
    if ancestors.is_empty() {
        return Err(format!(
            "the ancestry of {short} is not known (no push of it has been received), so there is no base to compare with"
        ));
    }
    if let Some(r) = ancestors.iter().find(|r| r.has_coverage && r.on_branch) {
        return Ok((r.sha.clone(), r.depth));
    }
    let on_branch = ancestors.iter().filter(|r| r.on_branch).count();
    Err(if on_branch == 0 {
        format!("no known ancestor of {short} is on {branch}")
    } else {
        format!(
            "none of the {on_branch} known ancestors of {short} on {branch} has a coverage upload"
        )
    })
}

/// One result of a test at a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub run_id: i64,
    pub attempt: i64,
    pub upload_id: i64,
    pub outcome: String,
    pub file: Option<String>,
    pub message: Option<String>,
}

/// Every result of each test at a commit: name → results.
pub type Results = BTreeMap<String, Vec<TestResult>>;

/// Gathers the test cases of a commit's test uploads by test name.
pub fn test_results(uploads: &[(StoredUpload, Vec<StoredCase>)]) -> Results {
    let mut out = Results::new();
    for (u, cases) in uploads {
        for c in cases {
            out.entry(c.name.clone()).or_default().push(TestResult {
                run_id: u.run_id,
                attempt: u.attempt,
                upload_id: u.id,
                outcome: c.outcome.clone(),
                file: c.file.clone(),
                message: c.message.clone(),
            });
        }
    }
    out
}

fn is_failure(outcome: &str) -> bool {
    outcome == "failed" || outcome == "errored"
}

/// Each test's final result: highest attempt, then latest upload.
fn finals(results: &Results) -> BTreeMap<&str, &TestResult> {
    results
        .iter()
        .filter_map(|(name, rs)| {
            rs.iter()
                .max_by_key(|r| (r.attempt, r.upload_id))
                .map(|r| (name.as_str(), r))
        })
        .collect()
}

/// The report's tests section (see the module docs for its shape); `None` when head has
/// no test report. `base` is the coverage base's SHA and results, when it has any.
pub fn tests_section(
    results: &Results,
    base: Option<(&str, &Results)>,
    complete: bool,
) -> Option<Value> {
    if results.is_empty() {
        return None;
    }
    let head = finals(results);
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for (name, r) in &head {
        match r.outcome.as_str() {
            "passed" => passed += 1,
            "skipped" => skipped += 1,
            _ => {
                failed += 1;
                let message = r.message.as_deref().map(|m| {
                    let first = m.lines().next().unwrap_or("");
                    first.chars().take(200).collect::<String>()
                });
                failures.push(json!({"name": name, "file": r.file, "message": message}));
            }
        }
    }
    let failures_more = failures.len().saturating_sub(MAX_LISTED);
    failures.truncate(MAX_LISTED);

    let flaky: Vec<&str> = results
        .iter()
        .filter(|(_, rs)| {
            rs.iter().any(|f| {
                is_failure(&f.outcome)
                    && rs.iter().any(|p| {
                        p.outcome == "passed" && p.run_id == f.run_id && p.attempt > f.attempt
                    })
            })
        })
        .map(|(n, _)| n.as_str())
        .collect();

    let base_results = base.filter(|(_, r)| !r.is_empty());
    let newly_failing = base_results.map(|(_, base)| {
        let base = finals(base);
        head.iter()
            .filter(|(name, r)| {
                is_failure(&r.outcome) && !base.get(*name).is_some_and(|b| is_failure(&b.outcome))
            })
            .map(|(name, _)| *name)
            .collect::<BTreeSet<&str>>()
    });

    Some(json!({
        "total": head.len(),
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "failures": failures,
        "failures_more": failures_more,
        "newly_failing": newly_failing,
        "flaky": flaky,
        "base": base_results.map(|(sha, _)| sha),
        "complete": complete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_coverage_counts_coverable_added_lines() {
        let mut m = Merged::default();
        let mut lines = FileLines::new();
        lines.insert(
            "a.rs".into(),
            (LineSet::from_ranges([(1, 3)]), LineSet::from_lines([4, 5])),
        );
        m.add(&lines);
        // Another upload covers line 4.
        let mut more = FileLines::new();
        more.insert(
            "a.rs".into(),
            (LineSet::from_lines([4]), LineSet::default()),
        );
        m.add(&more);
        assert_eq!(m.totals(), (4, 5));
        let added = vec![
            ("a.rs".to_string(), vec![2, 4, 5, 9]),
            ("b.rs".to_string(), vec![1]),
        ];
        let (c, t, missing) = patch_coverage(&m, &added);
        assert_eq!((c, t), (2, 3));
        assert_eq!(missing, vec![("a.rs".to_string(), vec![5])]);
    }
}
