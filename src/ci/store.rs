//! CI uploads in SQLite (`migrations/0004_ci_uploads.sql`): what the single writer stores
//! for an upload, and what the metrics read back.
//!
//! An upload's files are written in one transaction with their links to the graph: each
//! file is a node `upload:<id>` linked `from_run` to its CI run
//! (`workflow_run:<run_id>:<attempt>`) and `for_commit` to its commit (`owner/repo@sha`).
//! A file already stored for the same (repository, run, attempt, job, SHA-256 digest) is
//! skipped: a repeated upload stores nothing new.
//!
//! Line sets are kept as ascending ranges (`"1-5,8,10-20"`, [`encode_lines`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{LineCoverage, TestCase};
use crate::store::writer::Written;

/// What one uploaded file holds, parsed and normalised.
#[derive(Debug, Clone)]
pub enum Content {
    Coverage(LineCoverage),
    Tests(Vec<TestCase>),
}

/// One file of an upload.
#[derive(Debug, Clone)]
pub struct UploadFile {
    pub name: String,
    pub format: super::Format,
    /// SHA-256 of the file's bytes, hex.
    pub digest: String,
    pub size_bytes: i64,
    pub content: Content,
}

/// An upload as the writer stores it: the run's context and its files.
#[derive(Debug, Clone)]
pub struct UploadBatch {
    pub repo: String,
    pub sha: String,
    pub git_ref: String,
    pub run_id: i64,
    pub attempt: i64,
    pub job: String,
    pub pr_number: Option<i64>,
    /// Sorted, comma-separated.
    pub flags: String,
    pub received_ns: i64,
    pub files: Vec<UploadFile>,
}

/// Stores an upload's new files (inside the writer's transaction).
pub async fn write(
    tx: &mut Transaction<'_, Sqlite>,
    u: &UploadBatch,
) -> Result<Written, sqlx::Error> {
    let mut written = Written::default();
    for f in &u.files {
        let (covered, coverable, passed, failed, skipped) = match &f.content {
            Content::Coverage(c) => {
                let (cov, total) = c.totals();
                (Some(cov as i64), Some(total as i64), None, None, None)
            }
            Content::Tests(t) => {
                let (p, fl, s) = test_counts(t);
                (None, None, Some(p), Some(fl), Some(s))
            }
        };
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO ci_uploads (repo, sha, ref, run_id, attempt, job, pr_number, flags, file_name, \
             format, digest, size_bytes, covered, coverable, passed, failed, skipped, received_ns) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (repo, run_id, attempt, job, digest) DO NOTHING RETURNING id",
        )
        .bind(&u.repo)
        .bind(&u.sha)
        .bind(&u.git_ref)
        .bind(u.run_id)
        .bind(u.attempt)
        .bind(&u.job)
        .bind(u.pr_number)
        .bind(&u.flags)
        .bind(&f.name)
        .bind(f.format.as_str())
        .bind(&f.digest)
        .bind(f.size_bytes)
        .bind(covered)
        .bind(coverable)
        .bind(passed)
        .bind(failed)
        .bind(skipped)
        .bind(u.received_ns)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(id) = id else {
            written.duplicates += 1;
            continue;
        };
        written.inserted += 1;
        match &f.content {
            Content::Coverage(c) => write_coverage(tx, id, c).await?,
            Content::Tests(t) => write_tests(tx, id, t).await?,
        }
        let node = format!("upload:{id}");
        let run = crate::github::plan::run_key("workflow_run", u.run_id, u.attempt);
        let commit = format!("{}@{}", u.repo, u.sha);
        for (relation, to_kind, to_key) in [
            ("from_run", "ci_run", run),
            ("for_commit", "commit", commit),
        ] {
            sqlx::query(
                "INSERT OR IGNORE INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, \
                 confidence, first_seen_ns) VALUES ('upload', ?, ?, ?, ?, 'upload', 1.0, ?)",
            )
            .bind(&node)
            .bind(to_kind)
            .bind(to_key)
            .bind(relation)
            .bind(u.received_ns)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(written)
}

/// `(passed, failed, skipped)`; errors count as failures.
pub fn test_counts(tests: &[TestCase]) -> (i64, i64, i64) {
    use super::Outcome::*;
    tests
        .iter()
        .fold((0, 0, 0), |(p, f, s), t| match t.outcome {
            Passed => (p + 1, f, s),
            Failed | Errored => (p, f + 1, s),
            Skipped => (p, f, s + 1),
        })
}

async fn write_coverage(
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
    c: &LineCoverage,
) -> Result<(), sqlx::Error> {
    // A file without coverable lines (an empty `__init__.py`) adds nothing.
    for (path, lines) in c.files.iter().filter(|(_, l)| !l.is_empty()) {
        let covered = encode_lines(lines.iter().filter(|(_, h)| **h > 0).map(|(l, _)| *l));
        let missed = encode_lines(lines.iter().filter(|(_, h)| **h == 0).map(|(l, _)| *l));
        sqlx::query(
            "INSERT INTO ci_coverage (upload_id, path, covered, missed) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(path)
        .bind(covered)
        .bind(missed)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn write_tests(
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
    tests: &[TestCase],
) -> Result<(), sqlx::Error> {
    for (i, t) in tests.iter().enumerate() {
        sqlx::query(
            "INSERT INTO ci_test_cases (upload_id, position, suite, classname, name, file, outcome, \
             duration_s, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(i as i64)
        .bind(t.suite.as_deref())
        .bind(t.classname.as_deref())
        .bind(&t.name)
        .bind(t.file.as_deref())
        .bind(t.outcome.as_str())
        .bind(t.duration_s)
        .bind(t.message.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Ascending line numbers as ranges: `[1,2,3,5]` → `"1-3,5"`.
pub fn encode_lines(lines: impl IntoIterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = if a == b {
            write!(out, "{a}")
        } else {
            write!(out, "{a}-{b}")
        };
    };
    for l in lines {
        run = match run {
            Some((a, b)) if l == b.saturating_add(1) => Some((a, l)),
            Some(r) => {
                flush(&mut out, r);
                Some((l, l))
            }
            None => Some((l, l)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

/// The inverse of [`encode_lines`]; anything unreadable is skipped.
pub fn decode_lines(s: &str, out: &mut Vec<u32>) {
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            out.extend(a..=b.max(a));
        }
    }
}

/// One stored upload of a commit, as the metrics read it.
#[derive(Debug, Clone)]
pub struct StoredUpload {
    pub id: i64,
    pub run_id: i64,
    pub attempt: i64,
    pub git_ref: String,
    pub flags: Vec<String>,
}

/// The coverage and test uploads of a commit.
pub async fn uploads(
    pool: &SqlitePool,
    repo: &str,
    sha: &str,
    tests: bool,
) -> sqlx::Result<Vec<StoredUpload>> {
    let sql = if tests {
        "SELECT id, run_id, attempt, ref, flags FROM ci_uploads WHERE repo = ? AND sha = ? AND format = 'junit' ORDER BY id"
    } else {
        "SELECT id, run_id, attempt, ref, flags FROM ci_uploads WHERE repo = ? AND sha = ? AND format <> 'junit' ORDER BY id"
    };
    let rows: Vec<(i64, i64, i64, String, String)> = sqlx::query_as(sql)
        .bind(repo)
        .bind(sha)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, run_id, attempt, git_ref, flags)| StoredUpload {
            id,
            run_id,
            attempt,
            git_ref,
            flags: flags
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
        })
        .collect())
}

/// Per path: covered lines and coverable lines not covered, of one upload.
pub type FileLines = BTreeMap<String, (Vec<u32>, Vec<u32>)>;

/// The line coverage of one upload.
pub async fn coverage(pool: &SqlitePool, upload_id: i64) -> sqlx::Result<FileLines> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT path, covered, missed FROM ci_coverage WHERE upload_id = ?")
            .bind(upload_id)
            .fetch_all(pool)
            .await?;
    let mut out = FileLines::new();
    for (path, covered, missed) in rows {
        let (mut c, mut m) = (Vec::new(), Vec::new());
        decode_lines(&covered, &mut c);
        decode_lines(&missed, &mut m);
        out.insert(path, (c, m));
    }
    Ok(out)
}

/// One stored test case: `(name, file, outcome, message)`.
pub type StoredCase = (String, Option<String>, String, Option<String>);

/// The test cases of one upload, named `classname::name` (else `suite::name`).
pub async fn test_cases(pool: &SqlitePool, upload_id: i64) -> sqlx::Result<Vec<StoredCase>> {
    let rows: Vec<(
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        String,
        Option<String>,
    )> = sqlx::query_as(
        "SELECT suite, classname, name, file, outcome, message FROM ci_test_cases \
             WHERE upload_id = ? ORDER BY position",
    )
    .bind(upload_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(suite, classname, name, file, outcome, message)| {
            let name = match classname.or(suite).filter(|s| !s.is_empty()) {
                Some(prefix) => format!("{prefix}::{name}"),
                None => name,
            };
            (name, file, outcome, message)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ranges_round_trip() {
        let lines = [1, 2, 3, 5, 7, 8, 100];
        let s = encode_lines(lines);
        assert_eq!(s, "1-3,5,7-8,100");
        let mut back = Vec::new();
        decode_lines(&s, &mut back);
        assert_eq!(back, lines);
        assert_eq!(encode_lines([]), "");
        let mut none = Vec::new();
        decode_lines("", &mut none);
        decode_lines("x,3-y", &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn a_100k_line_report_stays_small() {
        // Long covered stretches broken by a missed line every 50.
        let covered = (1..=100_000u32).filter(|l| l % 50 != 0);
        let s = encode_lines(covered);
        // As one number per line it would be about 590 KB.
        assert!(s.len() < 30_000, "{} bytes", s.len());
    }
}
