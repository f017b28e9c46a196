//! Line records (`migrations/0008_line_records.sql`): which lines of a commit agents
//! wrote, as uploaded git-ai notes and Agent Trace documents say, stored by the single
//! writer inside an upload's transaction and read back by the reports.
//!
//! Rows are keyed by (repository, commit, path, agent, model); a file's lines are kept as
//! ascending ranges ([`LineSet`]), in memory as in the database. A new upload of a commit's records from one source
//! replaces that source's rows of the commit, so the newest note wins and the same one
//! sent again changes nothing.

use super::{query, query_as};
use std::collections::{BTreeMap, BTreeSet};

use sqlx::AnyConnection;

use super::{Db, Result, placeholders};
use crate::line_set::LineSet;

/// One stored row to write: a file's agent-written lines of one commit, by one agent and
/// model.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRecordRow {
    pub sha: String,
    pub path: String,
    pub agent: String,
    /// `""` when the document names no model.
    pub model: String,
    /// Sorted, distinct.
    pub sessions: Vec<String>,
    pub lines: LineSet,
}

/// Writes an upload's line records (inside the writer's transaction): for each commit
/// named, the rows of `source` are replaced by these.
pub(super) async fn write(
    conn: &mut AnyConnection,
    repo: &str,
    source: &str,
    upload_id: i64,
    rows: &[LineRecordRow],
    received_ns: i64,
) -> Result<()> {
    let commits: BTreeSet<&str> = rows.iter().map(|r| r.sha.as_str()).collect();
    for sha in commits {
        query("DELETE FROM line_records WHERE repo = ? AND sha = ? AND source = ?")
            .bind(repo)
            .bind(sha)
            .bind(source)
            .execute(&mut *conn)
            .await?;
    }
    for r in rows {
        // Another source's row for the same key gives way: the newest upload wins.
        query(
            "INSERT INTO line_records (repo, sha, path, agent, model, source, sessions, lines, \
             upload_id, received_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (repo, sha, path, agent, model) DO UPDATE SET source = excluded.source, \
             sessions = excluded.sessions, lines = excluded.lines, upload_id = excluded.upload_id, \
             received_ns = excluded.received_ns",
        )
        .bind(repo)
        .bind(&r.sha)
        .bind(&r.path)
        .bind(&r.agent)
        .bind(&r.model)
        .bind(source)
        .bind(r.sessions.join(","))
        .bind(r.lines.encode())
        .bind(upload_id)
        .bind(received_ns)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The agent-written lines of one commit: path → lines (every agent's), and the agents
/// named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitLines {
    pub files: BTreeMap<String, LineSet>,
    pub agents: Vec<String>,
}

impl Db {
    /// The line records of these commits of `repo`: SHA → its agent-written lines.
    /// Commits without records are absent.
    pub async fn line_records(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<BTreeMap<String, CommitLines>> {
        let mut out: BTreeMap<String, CommitLines> = BTreeMap::new();
        // One query per 500 commits (a report asks for all of a PR's commits).
        for chunk in shas.chunks(500) {
            let mut q = query_as::<(String, String, String, String)>(format!(
                "SELECT sha, path, agent, lines FROM line_records WHERE repo = ? AND sha IN ({}) \
                 ORDER BY sha, path, agent, model",
                placeholders(chunk.len())
            ))
            .bind(repo);
            for sha in chunk {
                q = q.bind(sha);
            }
            for (sha, path, agent, lines) in q.fetch_all(&self.pool).await? {
                let c = out.entry(sha).or_default();
                let file = c.files.entry(path).or_default();
                *file = file.union(&LineSet::decode(&lines));
                c.agents.push(agent);
            }
        }
        for c in out.values_mut() {
            c.agents.sort();
            c.agents.dedup();
        }
        Ok(out)
    }
}
