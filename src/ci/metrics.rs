//! Coverage and test metrics of a pull request, from the stored CI uploads: the report's
//! `coverage` and `tests` sections, as JSON the report embeds as is.
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
use sqlx::SqlitePool;

use super::store::{self, FileLines, StoredUpload};
use super::upload::pct;

/// Ancestors walked when looking for the base.
const MAX_BASE_DEPTH: i64 = 1000;
/// Rows of the missing-lines table and of the failures list.
const MAX_LISTED: usize = 20;

/// Merged line coverage: path → line → covered.
#[derive(Debug, Default)]
pub struct Merged {
    files: HashMap<String, HashMap<u32, bool>>,
}

impl Merged {
    pub fn add(&mut self, lines: &FileLines) {
        for (path, (covered, missed)) in lines {
            let file = self.files.entry(path.clone()).or_default();
            for l in missed {
                file.entry(*l).or_insert(false);
            }
            for l in covered {
                file.insert(*l, true);
            }
        }
    }

    /// `(covered, coverable)`.
    pub fn totals(&self) -> (u64, u64) {
        self.files.values().fold((0, 0), |(c, t), f| {
            (
                c + f.values().filter(|v| **v).count() as u64,
                t + f.len() as u64,
            )
        })
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
        let Some(file) = merged.files.get(path) else {
            continue;
        };
        let mut miss = Vec::new();
        for l in lines {
            match file.get(l) {
                Some(true) => {
                    covered += 1;
                    coverable += 1;
                }
                Some(false) => {
                    coverable += 1;
                    miss.push(*l);
                }
                None => {}
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

async fn merge(pool: &SqlitePool, uploads: &[&StoredUpload]) -> sqlx::Result<Merged> {
    let mut m = Merged::default();
    for u in uploads {
        m.add(&store::coverage(pool, u.id).await?);
    }
    Ok(m)
}

/// The report's coverage section (see the module docs for its shape).
pub async fn coverage_section(
    pool: &SqlitePool,
    repo: &str,
    head_sha: &str,
    base_ref: &str,
    pr_added: &[(String, Vec<u32>)],
    agent_added: &[(String, Vec<u32>)],
) -> sqlx::Result<Option<Value>> {
    let repo = repo.to_ascii_lowercase();
    let head_sha = head_sha.to_ascii_lowercase();
    let uploads = store::uploads(pool, &repo, &head_sha, false).await?;
    if uploads.is_empty() {
        return Ok(None);
    }
    let all: Vec<&StoredUpload> = uploads.iter().collect();
    let merged = merge(pool, &all).await?;
    let (hc, ht) = merged.totals();

    let mut by_flag: BTreeMap<&str, Vec<&StoredUpload>> = BTreeMap::new();
    for u in &uploads {
        for f in &u.flags {
            by_flag.entry(f.as_str()).or_default().push(u);
        }
    }
    let mut flags = Vec::new();
    for (flag, ups) in by_flag {
        let (c, t) = merge(pool, &ups).await?.totals();
        flags.push(json!({"flag": flag, "covered": c, "coverable": t, "pct": pct(c, t)}));
    }

    let branch = base_ref.strip_prefix("refs/heads/").unwrap_or(base_ref);
    let (base, base_note, delta) = match find_base(pool, &repo, &head_sha, branch).await? {
        Ok((sha, distance)) => {
            let ups = store::uploads(pool, &repo, &sha, false).await?;
            let refs: Vec<&StoredUpload> = ups.iter().collect();
            let (bc, bt) = merge(pool, &refs).await?.totals();
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
            json!({"path": path, "count": lines.len(), "lines": store::encode_lines(lines)})
        })
        .collect();

    Ok(Some(json!({
        "head": {"sha": head_sha, "covered": hc, "coverable": ht, "pct": pct(hc, ht),
                 "uploads": uploads.len()},
        "flags": flags,
        "base": base,
        "base_note": base_note,
        "delta_pp": delta,
        "patch": ratio(pc, pt),
        "agent_patch": agent_patch,
        "missing": missing,
        "missing_more": missing_more,
        "complete": runs_complete(pool, &repo, &head_sha).await?,
    })))
}

/// The nearest ancestor of head on `branch` with a coverage upload, and how many commits
/// back it is; or why there is none.
async fn find_base(
    pool: &SqlitePool,
    repo: &str,
    head_sha: &str,
    branch: &str,
) -> sqlx::Result<Result<(String, i64), String>> {
    let prefix = format!("{repo}@");
    let git_ref = format!("refs/heads/{branch}");
    let rows: Vec<(String, i64, bool, bool)> = sqlx::query_as(
        "WITH RECURSIVE anc(key, depth) AS ( \
           SELECT ?1, 0 \
           UNION \
           SELECT l.to_key, anc.depth + 1 FROM links l JOIN anc \
             ON l.from_kind = 'commit' AND l.from_key = anc.key AND l.relation = 'parent' \
           WHERE anc.depth < ?2 \
         ), \
         nearest AS ( \
           SELECT substr(key, length(?3) + 1) AS sha, min(depth) AS depth FROM anc \
           WHERE depth > 0 AND substr(key, 1, length(?3)) = ?3 GROUP BY key \
         ) \
         SELECT n.sha, n.depth, \
           EXISTS (SELECT 1 FROM ci_uploads u WHERE u.repo = ?4 AND u.sha = n.sha AND u.format <> 'junit'), \
           EXISTS (SELECT 1 FROM commit_refs r WHERE r.repo = ?4 AND r.sha = n.sha AND r.ref = ?5) \
             OR EXISTS (SELECT 1 FROM ci_uploads u WHERE u.repo = ?4 AND u.sha = n.sha AND u.ref = ?5) \
         FROM nearest n ORDER BY n.depth, n.sha",
    )
    .bind(format!("{prefix}{head_sha}"))
    .bind(MAX_BASE_DEPTH)
    .bind(&prefix)
    .bind(repo)
    .bind(&git_ref)
    .fetch_all(pool)
    .await?;
    let short = &head_sha[..head_sha.len().min(7)];
    if rows.is_empty() {
        return Ok(Err(format!(
            "the ancestry of {short} is not known (no push of it has been received), so there is no base to compare with"
        )));
    }
    if let Some((sha, depth, _, _)) = rows.iter().find(|r| r.2 && r.3) {
        return Ok(Ok((sha.clone(), *depth)));
    }
    let on_branch = rows.iter().filter(|r| r.3).count();
    Ok(Err(if on_branch == 0 {
        format!("no known ancestor of {short} is on {branch}")
    } else {
        format!(
            "none of the {on_branch} known ancestors of {short} on {branch} has a coverage upload"
        )
    }))
}

/// Whether every workflow run with uploads at this commit has completed.
async fn runs_complete(pool: &SqlitePool, repo: &str, sha: &str) -> sqlx::Result<bool> {
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT DISTINCT run_id, attempt FROM ci_uploads WHERE repo = ?1 AND sha = ?2) u \
         WHERE NOT EXISTS (SELECT 1 FROM ci_runs r WHERE r.kind = 'workflow_run' AND r.id = u.run_id \
           AND r.attempt = u.attempt AND r.repo = ?1 AND r.status = 'completed')",
    )
    .bind(repo)
    .bind(sha)
    .fetch_one(pool)
    .await?;
    Ok(open == 0)
}

/// Every result of each test at a commit: name → (run, attempt, upload, outcome, file, message).
type Results = BTreeMap<String, Vec<(i64, i64, i64, String, Option<String>, Option<String>)>>;

async fn test_results(pool: &SqlitePool, repo: &str, sha: &str) -> sqlx::Result<Results> {
    let mut out = Results::new();
    for u in store::uploads(pool, repo, sha, true).await? {
        for (name, file, outcome, message) in store::test_cases(pool, u.id).await? {
            out.entry(name)
                .or_default()
                .push((u.run_id, u.attempt, u.id, outcome, file, message));
        }
    }
    Ok(out)
}

fn is_failure(outcome: &str) -> bool {
    outcome == "failed" || outcome == "errored"
}

/// Each test's final result: highest attempt, then latest upload.
fn finals(
    results: &Results,
) -> BTreeMap<&str, &(i64, i64, i64, String, Option<String>, Option<String>)> {
    results
        .iter()
        .filter_map(|(name, rs)| {
            rs.iter()
                .max_by_key(|r| (r.1, r.2))
                .map(|r| (name.as_str(), r))
        })
        .collect()
}

/// The report's tests section (see the module docs for its shape).
pub async fn tests_section(
    pool: &SqlitePool,
    repo: &str,
    head_sha: &str,
    base_sha: Option<&str>,
) -> sqlx::Result<Option<Value>> {
    let repo = repo.to_ascii_lowercase();
    let head_sha = head_sha.to_ascii_lowercase();
    let results = test_results(pool, &repo, &head_sha).await?;
    if results.is_empty() {
        return Ok(None);
    }
    let head = finals(&results);
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for (name, r) in &head {
        match r.3.as_str() {
            "passed" => passed += 1,
            "skipped" => skipped += 1,
            _ => {
                failed += 1;
                let message = r.5.as_deref().map(|m| {
                    let first = m.lines().next().unwrap_or("");
                    first.chars().take(200).collect::<String>()
                });
                failures.push(json!({"name": name, "file": r.4, "message": message}));
            }
        }
    }
    let failures_more = failures.len().saturating_sub(MAX_LISTED);
    failures.truncate(MAX_LISTED);

    let flaky: Vec<&str> = results
        .iter()
        .filter(|(_, rs)| {
            rs.iter().any(|f| {
                is_failure(&f.3)
                    && rs
                        .iter()
                        .any(|p| p.3 == "passed" && p.0 == f.0 && p.1 > f.1)
            })
        })
        .map(|(n, _)| n.as_str())
        .collect();

    let base_results = match base_sha {
        Some(b) => Some(test_results(pool, &repo, &b.to_ascii_lowercase()).await?)
            .filter(|r| !r.is_empty()),
        None => None,
    };
    let newly_failing = base_results.as_ref().map(|base| {
        let base = finals(base);
        head.iter()
            .filter(|(name, r)| {
                is_failure(&r.3) && !base.get(*name).is_some_and(|b| is_failure(&b.3))
            })
            .map(|(name, _)| *name)
            .collect::<BTreeSet<&str>>()
    });

    Ok(Some(json!({
        "total": head.len(),
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "failures": failures,
        "failures_more": failures_more,
        "newly_failing": newly_failing,
        "flaky": flaky,
        "base": base_results.as_ref().and(base_sha),
        "complete": runs_complete(pool, &repo, &head_sha).await?,
    })))
}

/// Line numbers, in the new file, of a unified diff's added lines (a GitHub patch: hunks
/// only, or a whole `git diff` of one file). Lines outside hunks are ignored.
pub fn added_lines(patch: &str) -> Vec<u32> {
    let mut out = Vec::new();
    // (next new-file line, old lines left, new lines left) inside a hunk.
    let mut hunk: Option<(u32, u32, u32)> = None;
    for line in patch.lines() {
        if let Some((next, old_left, new_left)) = hunk.as_mut()
            && (*old_left > 0 || *new_left > 0)
        {
            match line.as_bytes().first() {
                Some(b'+') => {
                    out.push(*next);
                    *next = next.saturating_add(1);
                    *new_left = new_left.saturating_sub(1);
                }
                Some(b'-') => *old_left = old_left.saturating_sub(1),
                Some(b'\\') => {}
                // Context (an empty line is a context line whose space was trimmed).
                _ => {
                    *next = next.saturating_add(1);
                    *old_left = old_left.saturating_sub(1);
                    *new_left = new_left.saturating_sub(1);
                }
            }
            continue;
        }
        if line.starts_with("@@") {
            hunk = parse_hunk_header(line);
        }
    }
    out
}

/// `@@ -a[,b] +c[,d] @@ …` → (c, b, d); a count left out is 1.
fn parse_hunk_header(line: &str) -> Option<(u32, u32, u32)> {
    let mut parts = line.split_whitespace().skip(1);
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let range = |s: &str| -> Option<(u32, u32)> {
        match s.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((s.parse().ok()?, 1)),
        }
    };
    let (_, old_count) = range(old)?;
    let (start, new_count) = range(new)?;
    Some((start, old_count, new_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_follow_the_hunks() {
        let patch = "@@ -1,3 +1,4 @@\n a\n-b\n+B\n+C\n c\n@@ -10 +11,2 @@\n-x\n+y\n+z\n\\ No newline at end of file\n";
        assert_eq!(added_lines(patch), vec![2, 3, 11, 12]);
        // A whole git diff: headers outside hunks are not added lines.
        let diff = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+one\n+two\ndiff --git a/g b/g\n+++ b/g\n@@ -5,2 +5,2 @@\n keep\n-old\n+new\n";
        assert_eq!(added_lines(diff), vec![1, 2, 6]);
        assert!(added_lines("").is_empty());
        assert!(added_lines("@@ garbage @@\n+x\n").is_empty());
    }

    #[test]
    fn patch_coverage_counts_coverable_added_lines() {
        let mut m = Merged::default();
        let mut lines = FileLines::new();
        lines.insert("a.rs".into(), (vec![1, 2, 3], vec![4, 5]));
        m.add(&lines);
        // Another upload covers line 4.
        let mut more = FileLines::new();
        more.insert("a.rs".into(), (vec![4], vec![]));
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

    /// `cargo test --release --lib ci::metrics::tests::bench_patch_coverage -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_patch_coverage() {
        use std::fmt::Write as _;
        use std::time::Instant;
        // 100 files × 1,000 coverable lines at head; a diff adding 5,000 lines over 50 files.
        let mut m = Merged::default();
        let mut lines = FileLines::new();
        for f in 0..100 {
            let covered: Vec<u32> = (1..=1000).filter(|l| l % 7 != 0).collect();
            let missed: Vec<u32> = (1..=1000).filter(|l| l % 7 == 0).collect();
            lines.insert(format!("src/m{f}.rs"), (covered, missed));
        }
        m.add(&lines);
        let mut patches = Vec::new();
        for f in 0..50 {
            let mut p = String::from("@@ -1,50 +1,150 @@\n");
            for l in 0..150 {
                let _ = writeln!(p, "{}line {l}", if l % 3 == 0 { ' ' } else { '+' });
            }
            let _ = writeln!(p, "@@ -400,0 +500,0 @@");
            patches.push((format!("src/m{f}.rs"), p));
        }
        let rounds = 20;
        let started = Instant::now();
        let mut total = 0;
        for _ in 0..rounds {
            let added: Vec<(String, Vec<u32>)> = patches
                .iter()
                .map(|(p, patch)| (p.clone(), added_lines(patch)))
                .collect();
            total = added.iter().map(|(_, l)| l.len()).sum::<usize>();
            let (c, t, missing) = patch_coverage(&m, &added);
            assert!(c > 0 && t > c && !missing.is_empty());
        }
        let per = started.elapsed() / rounds;
        assert_eq!(total, 5000);
        println!(
            "patch coverage of a {total}-line diff over 100k coverable lines: {per:?} per report (diff parsing included)"
        );
    }
}
