//! Stored session → commit links (`authored`), and reads of the links table by node.

use super::{Db, Result, Tx};

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
    /// Replaces the stored `authored` links of these commits (keys `owner/repo@sha`)
    /// with `links`.
    pub async fn replace_authored_links(
        &mut self,
        commits: &[String],
        links: &[AuthoredLink],
        now_ns: i64,
    ) -> Result<()> {
        let conn = self.conn();
        for key in commits {
            sqlx::query(
                "DELETE FROM links WHERE to_kind = 'commit' AND to_key = ? AND from_kind = 'session' AND relation = 'authored'",
            )
            .bind(key)
            .execute(&mut *conn)
            .await?;
        }
        for l in links {
            sqlx::query(
                "INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, confidence, first_seen_ns) \
                 VALUES ('session', ?, 'commit', ?, 'authored', ?, ?, ?) \
                 ON CONFLICT (from_kind, from_key, relation, to_kind, to_key) DO UPDATE SET \
                 evidence = excluded.evidence, confidence = excluded.confidence, first_seen_ns = excluded.first_seen_ns",
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
