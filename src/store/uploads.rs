//! CI uploads (`migrations/0004_ci_uploads.sql`): what the single writer stores for an
//! upload, and what the metrics read back.
//!
//! An upload's files are written in one transaction with their links to the graph: each
//! file is a node `upload:<id>` linked `from_run` to its CI run
//! (`workflow_run:<run_id>:<attempt>`) and `for_commit` to its commit (`owner/repo@sha`).
//! A file already stored for the same (repository, run, attempt, job, SHA-256 digest) is
//! skipped: a repeated upload stores nothing new.
//!
//! Line sets are kept as ascending ranges (`"1-5,8,10-20"`, [`LineSet::encode`]), in the
//! database and in memory alike: nothing here holds a line per line.

use super::{query, query_as, query_scalar, text};
use std::collections::BTreeMap;

use sqlx::AnyConnection;

use super::writer::Written;
use super::{Db, Result};
use crate::ids::node;
use crate::line_set::LineSet;

/// What one uploaded file holds, parsed and normalised.
#[derive(Debug, Clone)]
pub enum FileContent {
    /// Per source path: covered lines and coverable lines not covered.
    Coverage {
        covered: i64,
        coverable: i64,
        files: Vec<(String, LineSet, LineSet)>,
    },
    Tests(Vec<TestCaseRow>),
    /// Line records (git-ai notes, Agent Trace): agent-written lines per commit and file.
    Lines(Vec<super::line_records::LineRecordRow>),
}

/// One test case of a JUnit report, in report order.
#[derive(Debug, Clone)]
pub struct TestCaseRow {
    pub suite: Option<String>,
    pub classname: Option<String>,
    pub name: String,
    pub file: Option<String>,
    /// `passed`, `failed`, `errored` or `skipped`.
    pub outcome: &'static str,
    pub duration_s: Option<f64>,
    pub message: Option<String>,
}

/// One file of an upload.
#[derive(Debug, Clone)]
pub struct UploadFile {
    pub name: String,
    pub format: &'static str,
    /// SHA-256 of the file's bytes, hex.
    pub digest: String,
    pub size_bytes: i64,
    pub content: FileContent,
}

impl UploadFile {
    /// What the file holds in memory, to bound an upload: line ranges of coverage and
    /// of line records, test cases.
    pub fn entries(&self) -> u64 {
        match &self.content {
            FileContent::Coverage { files, .. } => files
                .iter()
                .map(|(_, hit, missed)| (hit.ranges().len() + missed.ranges().len()) as u64)
                .sum(),
            FileContent::Tests(t) => t.len() as u64,
            FileContent::Lines(rows) => rows.iter().map(|r| r.lines.ranges().len() as u64).sum(),
        }
    }
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
    /// When the reports of the pull requests this upload's commit is in fall due (its
    /// receipt plus the comment debounce): a new report file changes them.
    pub report_due_ns: i64,
    pub files: Vec<UploadFile>,
}

/// `(passed, failed, skipped)` of a test report; errors count as failures.
fn test_counts(tests: &[TestCaseRow]) -> (i64, i64, i64) {
    tests
        .iter()
        .fold((0, 0, 0), |(p, f, s), t| match t.outcome {
            "passed" => (p + 1, f, s),
            "skipped" => (p, f, s + 1),
            _ => (p, f + 1, s),
        })
}

/// Stores an upload's new files (inside the writer's transaction).
pub(super) async fn write(conn: &mut AnyConnection, u: &UploadBatch) -> Result<Written> {
    let mut written = Written::default();
    for f in &u.files {
        let (covered, coverable, passed, failed, skipped) = match &f.content {
            FileContent::Coverage {
                covered, coverable, ..
            } => (Some(*covered), Some(*coverable), None, None, None),
            FileContent::Tests(t) => {
                let (p, fl, s) = test_counts(t);
                (None, None, Some(p), Some(fl), Some(s))
            }
            FileContent::Lines(_) => (None, None, None, None, None),
        };
        let id: Option<i64> = query_scalar(
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
        .bind(text(&u.job).as_ref())
        .bind(u.pr_number)
        .bind(text(&u.flags).as_ref())
        .bind(text(&f.name).as_ref())
        .bind(f.format)
        .bind(&f.digest)
        .bind(f.size_bytes)
        .bind(covered)
        .bind(coverable)
        .bind(passed)
        .bind(failed)
        .bind(skipped)
        .bind(u.received_ns)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(id) = id else {
            written.duplicates += 1;
            continue;
        };
        written.inserted += 1;
        match &f.content {
            FileContent::Coverage { files, .. } => write_coverage(conn, id, files).await?,
            FileContent::Tests(t) => write_tests(conn, id, t).await?,
            FileContent::Lines(rows) => {
                super::line_records::write(conn, &u.repo, f.format, id, rows, u.received_ns).await?
            }
        }
        let from = format!("upload:{id}");
        let run = node::run("workflow_run", u.run_id, u.attempt);
        let commit = node::commit_str(&u.repo, &u.sha);
        for (relation, to_kind, to_key) in [
            ("from_run", "ci_run", run),
            ("for_commit", "commit", commit),
        ] {
            query(
                "INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, \
                 confidence, first_seen_ns) VALUES ('upload', ?, ?, ?, ?, 'upload', 1.0, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&from)
            .bind(to_kind)
            .bind(to_key)
            .bind(relation)
            .bind(u.received_ns)
            .execute(&mut *conn)
            .await?;
        }
    }
    if written.inserted > 0 {
        // Coverage, tests or line records of a commit change the reports of the pull
        // requests it is in; queued in the same transaction, so none is left behind.
        let prs = super::nodes::pulls_containing(conn, Some(&u.repo), std::slice::from_ref(&u.sha))
            .await?;
        super::reports::enqueue(conn, &prs, u.received_ns, u.report_due_ns).await?;
    }
    Ok(written)
}

async fn write_coverage(
    conn: &mut AnyConnection,
    id: i64,
    files: &[(String, LineSet, LineSet)],
) -> Result<()> {
    // A file without coverable lines (an empty `__init__.py`) adds nothing.
    for (path, covered, missed) in files {
        if covered.is_empty() && missed.is_empty() {
            continue;
        }
        query("INSERT INTO ci_coverage (upload_id, path, covered, missed) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(text(path).as_ref())
            .bind(covered.encode())
            .bind(missed.encode())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn write_tests(conn: &mut AnyConnection, id: i64, tests: &[TestCaseRow]) -> Result<()> {
    for (i, t) in tests.iter().enumerate() {
        let q = query(
            "INSERT INTO ci_test_cases (upload_id, position, suite, classname, name, file, outcome, \
             duration_s, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(i as i64)
        .bind(t.suite.as_deref().map(text).as_deref())
        .bind(t.classname.as_deref().map(text).as_deref())
        .bind(text(&t.name).as_ref())
        .bind(t.file.as_deref().map(text).as_deref())
        .bind(t.outcome);
        super::bind_f64(q, t.duration_s)
            .bind(t.message.as_deref().map(text).as_deref())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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

/// Per path: covered lines and coverable lines not covered, of one upload.
pub type FileLines = BTreeMap<String, (LineSet, LineSet)>;

/// One stored test case, named `classname::name` (else `suite::name`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCase {
    pub name: String,
    pub file: Option<String>,
    pub outcome: String,
    pub message: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CaseRow {
    suite: Option<String>,
    classname: Option<String>,
    name: String,
    file: Option<String>,
    outcome: String,
    message: Option<String>,
}

/// An ancestor of a commit (through `parent` links), for choosing a coverage base.
#[derive(Debug, Clone, PartialEq)]
pub struct AncestorRow {
    pub sha: String,
    /// Commits back from the starting commit (1: a parent).
    pub depth: i64,
    pub has_coverage: bool,
    /// Pushed to the branch, or uploaded from it.
    pub on_branch: bool,
}

impl Db {
    /// The coverage uploads (`tests` false) or test uploads (`tests` true) of a commit
    /// (line records are neither).
    pub async fn uploads(&self, repo: &str, sha: &str, tests: bool) -> Result<Vec<StoredUpload>> {
        let sql = if tests {
            "SELECT id, run_id, attempt, ref, flags FROM ci_uploads WHERE repo = ? AND sha = ? AND format = 'junit' ORDER BY id"
        } else {
            "SELECT id, run_id, attempt, ref, flags FROM ci_uploads WHERE repo = ? AND sha = ? AND format NOT IN ('junit', 'git-ai', 'agent-trace') ORDER BY id"
        };
        let rows: Vec<(i64, i64, i64, String, String)> = query_as(sql)
            .bind(repo)
            .bind(sha)
            .fetch_all(&self.pool)
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

    /// The line coverage of one upload.
    pub async fn coverage(&self, upload_id: i64) -> Result<FileLines> {
        let rows: Vec<(String, String, String)> =
            query_as("SELECT path, covered, missed FROM ci_coverage WHERE upload_id = ?")
                .bind(upload_id)
                .fetch_all(&self.pool)
                .await?;
        let mut out = FileLines::new();
        for (path, covered, missed) in rows {
            out.insert(path, (LineSet::decode(&covered), LineSet::decode(&missed)));
        }
        Ok(out)
    }

    /// The test cases of one upload, in report order.
    pub async fn test_cases(&self, upload_id: i64) -> Result<Vec<StoredCase>> {
        let rows: Vec<CaseRow> = query_as(
            "SELECT suite, classname, name, file, outcome, message FROM ci_test_cases \
             WHERE upload_id = ? ORDER BY position",
        )
        .bind(upload_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let CaseRow {
                    suite,
                    classname,
                    name,
                    file,
                    outcome,
                    message,
                } = r;
                let name = match classname.or(suite).filter(|s| !s.is_empty()) {
                    Some(prefix) => format!("{prefix}::{name}"),
                    None => name,
                };
                StoredCase {
                    name,
                    file,
                    outcome,
                    message,
                }
            })
            .collect())
    }

    /// The ancestors of `head_sha` up to `max_depth` commits back, nearest first, each
    /// with whether it has a coverage upload and whether it is on `git_ref`.
    pub async fn coverage_ancestors(
        &self,
        repo: &str,
        head_sha: &str,
        git_ref: &str,
        max_depth: i64,
    ) -> Result<Vec<AncestorRow>> {
        let prefix = format!("{repo}@");
        let rows: Vec<(String, i64, i64, i64)> = query_as(
            "WITH RECURSIVE anc(key, depth) AS ( \
               SELECT CAST(CAST(?1 AS text_c) AS TEXT), 0 \
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
               CASE WHEN EXISTS (SELECT 1 FROM ci_uploads u WHERE u.repo = ?4 AND u.sha = n.sha \
                 AND u.format NOT IN ('junit', 'git-ai', 'agent-trace')) THEN 1 ELSE 0 END, \
               CASE WHEN EXISTS (SELECT 1 FROM commit_refs r WHERE r.repo = ?4 AND r.sha = n.sha AND r.ref = ?5) \
                 OR EXISTS (SELECT 1 FROM ci_uploads u WHERE u.repo = ?4 AND u.sha = n.sha AND u.ref = ?5) \
                 THEN 1 ELSE 0 END \
             FROM nearest n ORDER BY n.depth, n.sha",
        )
        .bind(node::commit_str(repo, head_sha))
        .bind(max_depth)
        .bind(&prefix)
        .bind(repo)
        .bind(git_ref)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(sha, depth, has_coverage, on_branch)| AncestorRow {
                sha,
                depth,
                has_coverage: has_coverage != 0,
                on_branch: on_branch != 0,
            })
            .collect())
    }

    /// Whether every workflow run with uploads at this commit has completed.
    pub async fn upload_runs_complete(&self, repo: &str, sha: &str) -> Result<bool> {
        let open: i64 = query_scalar(
            "SELECT count(*) FROM (SELECT DISTINCT run_id, attempt FROM ci_uploads WHERE repo = ?1 AND sha = ?2) u \
             WHERE NOT EXISTS (SELECT 1 FROM ci_runs r WHERE r.kind = 'workflow_run' AND r.id = u.run_id \
               AND r.attempt = u.attempt AND r.repo = ?1 AND r.status = 'completed')",
        )
        .bind(repo)
        .bind(sha)
        .fetch_one(&self.pool)
        .await?;
        Ok(open == 0)
    }
}
