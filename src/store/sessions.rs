//! Session facts as stored: one row per session, and what belongs to it (counters and
//! tokens per signal, commits and traces it names, files it touched), loaded for many
//! sessions at once. How these become the session the API shows is
//! [`crate::metrics::sessions`].

use super::query_as;
use std::collections::HashMap;

use super::{Db, Result, placeholders};

/// A session's own row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub session_key: String,
    pub agent: Option<String>,
    pub agent_version: Option<String>,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub organization: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub started_ns: Option<i64>,
    pub ended_ns: Option<i64>,
    /// 1: it ran headless, 0: interactively; `None`: its telemetry does not say.
    pub headless: Option<i64>,
}

/// One counter as one signal reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterRow {
    /// `metrics`, `logs` or `traces`.
    pub source: String,
    pub counter: String,
    pub value: f64,
}

/// Tokens of one model as one signal reported them: input, output, cache read, cache
/// creation, reasoning.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub source: String,
    pub model: String,
    pub tokens: [i64; 5],
}

/// What belongs to a session besides its row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Related {
    pub counters: Vec<CounterRow>,
    pub tokens: Vec<TokenRow>,
    /// Commits its telemetry names, by SHA.
    pub commits: Vec<String>,
    pub traces: Vec<Vec<u8>>,
    /// Distinct files it modified.
    pub files_modified: i64,
}

/// A session with everything that belongs to it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub row: SessionRow,
    pub related: Related,
}

const SESSION_COLUMNS: &str = "id, session_key, agent, agent_version, user_id, user_email, \
     organization, repository, branch, started_ns, ended_ns, headless";

/// Filters of `GET /api/v1/sessions`.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub repository: Option<String>,
    /// Matches the user's email or ID.
    pub user: Option<String>,
    pub agent: Option<String>,
    pub since_ns: Option<i64>,
    pub limit: u32,
    /// Continue after this `(started_ns, id)`.
    pub after: Option<(i64, i64)>,
}

pub struct Page {
    pub sessions: Vec<SessionRecord>,
    pub next: Option<(i64, i64)>,
}

impl Db {
    /// One session by its key, or `None`.
    pub async fn session(&self, key: &str) -> Result<Option<SessionRecord>> {
        let row: Option<SessionRow> = query_as(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_key = ?"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(self.records(vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    /// Sessions newest first, paginated by `(started, id)`.
    pub async fn sessions_page(&self, f: &ListFilter) -> Result<Page> {
        let mut sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE 1 = 1");
        if f.repository.is_some() {
            sql.push_str(" AND repository = ?");
        }
        if f.user.is_some() {
            sql.push_str(" AND (user_email = ? OR user_id = ?)");
        }
        if f.agent.is_some() {
            // As given, or folded the way reports print names ("Claude Code").
            sql.push_str(" AND agent IN (?, ?)");
        }
        if f.since_ns.is_some() {
            sql.push_str(" AND coalesce(started_ns, 0) >= ?");
        }
        if f.after.is_some() {
            sql.push_str(" AND (coalesce(started_ns, 0), id) < (?, ?)");
        }
        sql.push_str(" ORDER BY coalesce(started_ns, 0) DESC, id DESC LIMIT ?");
        let mut q = query_as::<SessionRow>(sql);
        if let Some(r) = &f.repository {
            q = q.bind(r);
        }
        if let Some(u) = &f.user {
            q = q.bind(u).bind(u);
        }
        if let Some(a) = &f.agent {
            q = q.bind(a).bind(crate::ids::agent_id(a).into_owned());
        }
        if let Some(s) = f.since_ns {
            q = q.bind(s);
        }
        if let Some((started, id)) = f.after {
            q = q.bind(started).bind(id);
        }
        q = q.bind(i64::from(f.limit) + 1);
        let mut rows = q.fetch_all(&self.pool).await?;
        let next = if rows.len() > f.limit as usize {
            rows.truncate(f.limit as usize);
            rows.last().map(|r| (r.started_ns.unwrap_or(0), r.id))
        } else {
            None
        };
        let sessions = self.records(rows).await?;
        Ok(Page { sessions, next })
    }

    /// Many sessions by key, in the order given (unknown keys left out).
    pub async fn sessions_by_key(&self, keys: &[&str]) -> Result<Vec<SessionRecord>> {
        let mut rows: Vec<SessionRow> = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let mut q = query_as::<SessionRow>(format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_key IN ({})",
                placeholders(chunk.len())
            ));
            for k in chunk {
                q = q.bind(*k);
            }
            rows.extend(q.fetch_all(&self.pool).await?);
        }
        rows.sort_by_key(|r| keys.iter().position(|k| *k == r.session_key));
        self.records(rows).await
    }

    /// Many sessions by row id, with their facts (unknown ids left out; any order).
    pub async fn sessions_by_id(&self, ids: &[i64]) -> Result<Vec<SessionRecord>> {
        let mut rows: Vec<SessionRow> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = query_as::<SessionRow>(format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE id IN ({})",
                placeholders(chunk.len())
            ));
            for id in chunk {
                q = q.bind(*id);
            }
            rows.extend(q.fetch_all(&self.pool).await?);
        }
        self.records(rows).await
    }

    /// The names of a session's stored log events, oldest first (read from its raw
    /// records, so empty once those are past `--retain-raw`).
    pub async fn session_events(&self, key: &str) -> Result<Vec<String>> {
        let records: Vec<super::raw::Stored> = query_as(
            "SELECT r.id, r.format, r.body FROM sessions s \
             JOIN record_sessions rs ON rs.session_id = s.id \
             JOIN raw_records r ON r.id = rs.record_id \
             WHERE s.session_key = ? AND r.signal = 'logs' ORDER BY r.id",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        let mut seen = std::collections::HashSet::new();
        let mut events = Vec::new();
        for stored in records {
            let r = stored.open()?;
            for l in &r.logs {
                if r.session(l.session) == Some(key) && seen.insert(l.digest.clone()) {
                    events.push((l.time_ns, l.event.clone()));
                }
            }
        }
        events.sort();
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }

    async fn records(&self, rows: Vec<SessionRow>) -> Result<Vec<SessionRecord>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut related = self.load_related(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| SessionRecord {
                related: related.remove(&row.id).unwrap_or_default(),
                row,
            })
            .collect())
    }

    /// Five queries for any number of sessions (in chunks), instead of five per session.
    async fn load_related(&self, ids: &[i64]) -> Result<HashMap<i64, Related>> {
        let pool = &self.pool;
        let mut out: HashMap<i64, Related> = HashMap::new();
        for chunk in ids.chunks(500) {
            let ph = placeholders(chunk.len());
            let mut q = query_as::<(i64, String, String, f64)>(format!(
                "SELECT session_id, source, counter, value FROM session_counters WHERE session_id IN ({ph}) \
                 ORDER BY session_id, source, counter"
            ));
            for id in chunk {
                q = q.bind(id);
            }
            for (id, source, counter, value) in q.fetch_all(pool).await? {
                out.entry(id).or_default().counters.push(CounterRow {
                    source,
                    counter,
                    value,
                });
            }
            let mut q = query_as::<(i64, String, String, i64, i64, i64, i64, i64)>(format!(
                "SELECT session_id, source, model, input, output, cache_read, cache_creation, reasoning \
                     FROM session_tokens WHERE session_id IN ({ph}) ORDER BY model, source, session_id"
            ));
            for id in chunk {
                q = q.bind(id);
            }
            for (id, source, model, i, o, cr, cc, r) in q.fetch_all(pool).await? {
                out.entry(id).or_default().tokens.push(TokenRow {
                    source,
                    model,
                    tokens: [i, o, cr, cc, r],
                });
            }
            let mut q = query_as::<(i64, String)>(format!(
                "SELECT session_id, sha FROM session_commits WHERE session_id IN ({ph}) ORDER BY sha"
            ));
            for id in chunk {
                q = q.bind(id);
            }
            for (id, sha) in q.fetch_all(pool).await? {
                out.entry(id).or_default().commits.push(sha);
            }
            let mut q = query_as::<(i64, Vec<u8>)>(format!(
                "SELECT session_id, trace_id FROM session_traces WHERE session_id IN ({ph}) ORDER BY trace_id"
            ));
            for id in chunk {
                q = q.bind(id);
            }
            for (id, t) in q.fetch_all(pool).await? {
                out.entry(id).or_default().traces.push(t);
            }
            let mut q = query_as::<(i64, i64)>(format!(
                "SELECT session_id, count(*) FROM session_files WHERE action = 'modified' \
                 AND session_id IN ({ph}) GROUP BY session_id"
            ));
            for id in chunk {
                q = q.bind(id);
            }
            for (id, n) in q.fetch_all(pool).await? {
                out.entry(id).or_default().files_modified = n;
            }
        }
        Ok(out)
    }
}
