//! Stored session → commit links (`authored`), and reads of the links table.

use sqlx::AssertSqlSafe;

use super::{Db, Result, Tx, placeholders};

/// One session → commit link as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthoredLink {
    pub session_key: String,
    /// Commit key `owner/repo@sha`.
    pub commit: String,
    /// `trace`, `event`, `coauthor` or `window`.
    pub evidence: &'static str,
    pub confidence: f64,
}

/// A link as the table holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LinkRow {
    pub from_kind: String,
    pub from_key: String,
    pub to_kind: String,
    pub to_key: String,
    pub relation: String,
    pub evidence: String,
    pub confidence: f64,
}

impl Tx<'_> {
    /// Makes `links` the stored `authored` links of these commits (keys
    /// `owner/repo@sha`): links no longer found are removed, new ones inserted, and those
    /// that stay keep when they were first seen.
    pub async fn replace_authored_links(
        &mut self,
        commits: &[String],
        links: &[AuthoredLink],
        now_ns: i64,
    ) -> Result<()> {
        let conn = self.conn();
        for key in commits {
            let keep: Vec<&str> = links
                .iter()
                .filter(|l| &l.commit == key)
                .map(|l| l.session_key.as_str())
                .collect();
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM links WHERE to_kind = 'commit' AND to_key = ? AND from_kind = 'session' \
                 AND relation = 'authored' AND from_key NOT IN ({})",
                placeholders(keep.len())
            )))
            .bind(key);
            for k in &keep {
                q = q.bind(*k);
            }
            if keep.is_empty() {
                // `NOT IN ('')`: no session key is empty, so every link goes.
                q = q.bind("");
            }
            q.execute(&mut *conn).await?;
        }
        for l in links {
            sqlx::query(
                "INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, confidence, first_seen_ns) \
                 VALUES ('session', ?, 'commit', ?, 'authored', ?, ?, ?) \
                 ON CONFLICT (from_kind, from_key, relation, to_kind, to_key) DO UPDATE SET \
                 evidence = excluded.evidence, confidence = excluded.confidence",
            )
            .bind(&l.session_key)
            .bind(&l.commit)
            .bind(l.evidence)
            .bind(l.confidence)
            .bind(now_ns)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

impl Db {
    /// The stored `authored` links of these sessions, every commit they reach.
    pub async fn links_of_sessions(&self, keys: &[&str]) -> Result<Vec<LinkRow>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            let mut q = sqlx::query_as::<_, LinkRow>(AssertSqlSafe(format!(
                "SELECT from_kind, from_key, to_kind, to_key, relation, evidence, confidence FROM links \
                 WHERE from_kind = 'session' AND relation = 'authored' AND from_key IN ({}) \
                 ORDER BY from_key, to_key",
                placeholders(chunk.len())
            )));
            for k in chunk {
                q = q.bind(*k);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Every link from nodes of `from_kind` with this relation, ordered.
    pub async fn links_by_relation(&self, from_kind: &str, relation: &str) -> Result<Vec<LinkRow>> {
        sqlx::query_as(
            "SELECT from_kind, from_key, to_kind, to_key, relation, evidence, confidence FROM links \
             WHERE from_kind = ? AND relation = ? ORDER BY from_key, to_key",
        )
        .bind(from_kind)
        .bind(relation)
        .fetch_all(&self.pool)
        .await
    }
}
