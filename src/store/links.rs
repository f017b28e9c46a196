//! Stored session → commit links (`authored`), and reads of the links table.

use super::{query, query_as, query_scalar};
use sqlx::AnyConnection;

use super::{Conn, Db, Result, Tx, placeholders};

/// One session → commit link as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthoredLink {
    pub session_key: String,
    /// Commit key `owner/repo@sha`.
    pub commit: String,
    /// `trace`, `event`, `coauthor` or `window`.
    pub evidence: &'static str,
    pub confidence: f64,
    /// What the evidence was, in words.
    pub detail: String,
    /// For an inherited (`merged`) link, the SHA of the commit it was inherited from.
    pub original: Option<String>,
}

/// A stored session → commit link of one repository, as readers show it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredLink {
    pub session_key: String,
    /// The session's row, when the session is still stored.
    pub session_row: Option<i64>,
    /// Commit key `owner/repo@sha`.
    pub commit_key: String,
    pub evidence: String,
    pub confidence: f64,
    pub detail: String,
    pub original: Option<String>,
    pub first_seen_ns: i64,
}

/// A queued relink: a session whose facts changed at `touched_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedSession {
    pub session_id: i64,
    pub touched_ns: i64,
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
    /// For an inherited (`merged`) link, the SHA it was inherited from.
    pub original: Option<String>,
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
        // What became of the sessions' commits is kept with their analytics facts:
        // the sessions linked before and after are counted again.
        for key in commits {
            queue_authors(&mut *conn, key, now_ns).await?;
        }
        for key in commits {
            let keep: Vec<&str> = links
                .iter()
                .filter(|l| &l.commit == key)
                .map(|l| l.session_key.as_str())
                .collect();
            let mut q = query(format!(
                "DELETE FROM links WHERE to_kind = 'commit' AND to_key = ? AND from_kind = 'session' \
                 AND relation = 'authored' AND from_key NOT IN ({})",
                placeholders(keep.len())
            ))
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
            query(
                "INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, confidence, \
                 first_seen_ns, detail, original) VALUES ('session', ?, 'commit', ?, 'authored', ?, ?, ?, ?, ?) \
                 ON CONFLICT (from_kind, from_key, relation, to_kind, to_key) DO UPDATE SET \
                 evidence = excluded.evidence, confidence = excluded.confidence, \
                 detail = excluded.detail, original = excluded.original",
            )
            .bind(&l.session_key)
            .bind(&l.commit)
            .bind(l.evidence)
            .bind(l.confidence)
            .bind(now_ns)
            .bind(&l.detail)
            .bind(&l.original)
            .execute(&mut *conn)
            .await?;
        }
        for key in commits {
            queue_authors(&mut *conn, key, now_ns).await?;
        }
        Ok(())
    }

    /// The oldest queued relinks, at most `limit`.
    pub async fn queued_relinks(&mut self, limit: i64) -> Result<Vec<QueuedSession>> {
        query_as(
            "SELECT session_id, touched_ns FROM link_queue ORDER BY touched_ns, session_id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.conn())
        .await
    }

    /// Takes done relinks off the queue, unless a session was touched again since.
    pub async fn relinks_done(&mut self, done: &[QueuedSession]) -> Result<()> {
        for d in done {
            query("DELETE FROM link_queue WHERE session_id = ? AND touched_ns <= ?")
                .bind(d.session_id)
                .bind(d.touched_ns)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }
}

/// Which sessions `tracelink relink` links again.
#[derive(Debug, Clone, Default)]
pub struct RelinkFilter {
    /// Sessions of this repository (lower case), and those naming none.
    pub repo: Option<String>,
    /// Sessions active at or after this time (ns).
    pub since_ns: Option<i64>,
}

impl Conn {
    /// Queues every session `filter` matches for linking again (after the identities
    /// file, the grace period or a rule changed); returns how many. The publisher
    /// drains the queue: it relinks what they may have produced and re-queues the
    /// reports that changes.
    pub async fn queue_relink_all(&mut self, filter: &RelinkFilter, now_ns: i64) -> Result<u64> {
        queue_matching(&mut self.conn, filter, now_ns).await
    }
}

/// What [`Conn::relink_on_new_rules`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesChanged {
    /// The version the stored links were computed with (`None`: before versions).
    pub from: Option<i64>,
    /// Sessions queued to be linked again.
    pub queued: u64,
}

impl Conn {
    /// When the stored links were computed with other link rules than `version`, queues
    /// every session to be linked again and records `version`, in one transaction (so a
    /// start that stops half-way queues again next time). `None` when nothing changed.
    pub async fn relink_on_new_rules(
        &mut self,
        version: i64,
        now_ns: i64,
    ) -> Result<Option<RulesChanged>> {
        // Reads, then writes.
        let mut tx = self.begin_write().await?;
        let from: Option<i64> = query_scalar("SELECT version FROM link_rules WHERE id = 1")
            .fetch_optional(tx.conn())
            .await?;
        if from == Some(version) {
            return Ok(None);
        }
        let queued = queue_matching(tx.conn(), &RelinkFilter::default(), now_ns).await?;
        query(
            "INSERT INTO link_rules (id, version) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        )
        .bind(version)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Some(RulesChanged { from, queued }))
    }
}

/// [`Conn::queue_relink_all`] inside a writer transaction.
pub(super) async fn queue_matching(
    conn: &mut AnyConnection,
    filter: &RelinkFilter,
    now_ns: i64,
) -> Result<u64> {
    Ok(query(
        "INSERT INTO link_queue (session_id, touched_ns) \
         SELECT id, ?3 FROM sessions WHERE (?1 IS NULL OR repository = ?1 OR repository IS NULL) \
         AND (?2 IS NULL OR coalesce(ended_ns, started_ns, created_ns) >= ?2) \
         ON CONFLICT (session_id) DO UPDATE SET touched_ns = excluded.touched_ns",
    )
    .bind(filter.repo.as_deref())
    .bind(filter.since_ns)
    .bind(now_ns)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Queues these sessions for linking again; the OTLP writer calls it in the transaction
/// that stores their telemetry.
pub(super) async fn queue_relink(
    conn: &mut AnyConnection,
    session_ids: &[i64],
    now_ns: i64,
) -> Result<()> {
    queue_sessions(conn, "link_queue", session_ids, now_ns).await
}

/// Queues for analytics the sessions that authored the commits whose keys lie in
/// `[from, to]` (one commit: the same key twice), so that their facts say anew what
/// became of their commits.
pub(super) async fn queue_authors_between(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
    now_ns: i64,
) -> Result<()> {
    query(
        "INSERT INTO analytics_queue (session_id, touched_ns) \
         SELECT DISTINCT s.id, ? FROM links l JOIN sessions s ON s.session_key = l.from_key \
         WHERE l.to_kind = 'commit' AND l.to_key >= ? AND l.to_key <= ? \
         AND l.relation = 'authored' AND l.from_kind = 'session' \
         ON CONFLICT (session_id) DO UPDATE SET touched_ns = excluded.touched_ns",
    )
    .bind(now_ns)
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// [`queue_authors_between`] of one commit (`owner/name@sha`).
pub(super) async fn queue_authors(conn: &mut AnyConnection, key: &str, now_ns: i64) -> Result<()> {
    queue_authors_between(conn, key, key, now_ns).await
}

/// Queues sessions in a queue table of `(session_id, touched_ns)` (`link_queue`,
/// `analytics_queue`), as touched at `now_ns`.
pub(super) async fn queue_sessions(
    conn: &mut AnyConnection,
    table: &'static str,
    session_ids: &[i64],
    now_ns: i64,
) -> Result<()> {
    for chunk in session_ids.chunks(400) {
        let mut q = query(format!(
            "INSERT INTO {table} (session_id, touched_ns) VALUES {} \
             ON CONFLICT (session_id) DO UPDATE SET touched_ns = excluded.touched_ns",
            vec!["(?, ?)"; chunk.len()].join(", ")
        ));
        for id in chunk {
            q = q.bind(id).bind(now_ns);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Db {
    /// The stored links of these commits of `repo`, by commit then session.
    pub async fn authored_links(&self, repo: &str, shas: &[String]) -> Result<Vec<StoredLink>> {
        let mut out = Vec::new();
        for chunk in shas.chunks(500) {
            let mut q = query_as::<StoredLink>(format!(
                "SELECT l.from_key AS session_key, s.id AS session_row, l.to_key AS commit_key, l.evidence, \
                 l.confidence, l.detail, l.original, l.first_seen_ns FROM links l \
                 LEFT JOIN sessions s ON s.session_key = l.from_key \
                 WHERE l.to_kind = 'commit' AND l.relation = 'authored' AND l.from_kind = 'session' \
                 AND l.to_key IN ({}) ORDER BY l.to_key, l.from_key",
                placeholders(chunk.len())
            ));
            for sha in chunk {
                q = q.bind(crate::ids::node::commit_str(repo, sha));
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// How many relinks are queued.
    pub async fn relinks_queued(&self) -> Result<i64> {
        query_scalar("SELECT count(*) FROM link_queue")
            .fetch_one(&self.pool)
            .await
    }

    /// The stored `authored` links of these sessions, every commit they reach.
    pub async fn links_of_sessions(&self, keys: &[&str]) -> Result<Vec<LinkRow>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            let mut q = query_as::<LinkRow>(format!(
                "SELECT from_kind, from_key, to_kind, to_key, relation, evidence, confidence, original FROM links \
                 WHERE from_kind = 'session' AND relation = 'authored' AND from_key IN ({}) \
                 ORDER BY from_key, to_key",
                placeholders(chunk.len())
            ));
            for k in chunk {
                q = q.bind(*k);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Every link from nodes of `from_kind` with this relation, ordered.
    pub async fn links_by_relation(&self, from_kind: &str, relation: &str) -> Result<Vec<LinkRow>> {
        query_as(
            "SELECT from_kind, from_key, to_kind, to_key, relation, evidence, confidence, original FROM links \
             WHERE from_kind = ? AND relation = ? ORDER BY from_key, to_key",
        )
        .bind(from_kind)
        .bind(relation)
        .fetch_all(&self.pool)
        .await
    }
}
