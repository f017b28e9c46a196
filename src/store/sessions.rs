//! Reading session facts: one session, or a page of sessions, as the API returns them.
//!
//! Agents report the same quantity on several signals (Claude Code's cost is a metric,
//! a log attribute and a span attribute). Each signal's counters are kept apart, and
//! each counter is read from the first signal that reported it, in the order
//! metrics, logs, traces: never added across signals.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{AssertSqlSafe, SqlitePool};

use crate::agents::facts::{Counter, Tokens};
use crate::ids::encode_hex;
use crate::pricing::PriceTable;
use crate::store::placeholders;

fn rfc3339(ns: Option<i64>) -> Option<String> {
    crate::store::rfc3339(ns, chrono::SecondsFormat::Millis)
}

/// Sources in order of preference.
const SOURCES: [&str; 3] = ["metrics", "logs", "traces"];

#[derive(Debug, Serialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenView {
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_creation: i64,
    pub reasoning: i64,
}

impl From<Tokens> for TokenView {
    fn from(t: Tokens) -> Self {
        let [input, output, cache_read, cache_creation, reasoning] = t.0;
        Self {
            input,
            output,
            cache_read,
            cache_creation,
            reasoning,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: Option<String>,
    pub email: Option<String>,
}

/// A session as `GET /api/v1/sessions/{id}` returns it. Unknown values are `null`.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub session_id: String,
    pub agent: Option<String>,
    pub agent_version: Option<String>,
    pub user: UserView,
    pub organization: Option<String>,
    pub repository: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub active_seconds: Option<f64>,
    pub models: Vec<String>,
    pub tokens: Option<TokenView>,
    pub tokens_by_model: BTreeMap<String, TokenView>,
    pub cost_usd: Option<f64>,
    pub cost_estimated: bool,
    pub llm_requests: Option<i64>,
    pub errors: Option<i64>,
    pub prompts: Option<i64>,
    pub tool_invocations: Option<i64>,
    pub tool_failures: Option<i64>,
    pub tool_rejections: Option<i64>,
    pub lines_added: Option<i64>,
    pub lines_removed: Option<i64>,
    pub user_lines_added: Option<i64>,
    pub user_lines_removed: Option<i64>,
    pub lines_modified: Option<i64>,
    pub files_read: Option<i64>,
    pub files_modified: Option<i64>,
    pub commits_reported: Option<i64>,
    pub pull_requests_reported: Option<i64>,
    pub commits: Vec<String>,
    pub trace_ids: Vec<String>,
    /// Every counter with the signal it was read from, for auditing.
    pub counters: BTreeMap<&'static str, CounterView>,
}

#[derive(Debug, Serialize, Clone, Copy)]
pub struct CounterView {
    pub value: f64,
    pub source: &'static str,
}

type SessionRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

const SESSION_COLUMNS: &str = "id, session_key, agent, agent_version, user_id, user_email, \
     organization, repository, started_ns, ended_ns";

/// One session by its key, or `None`.
pub async fn get(
    pool: &SqlitePool,
    prices: &PriceTable,
    key: &str,
) -> Result<Option<SessionView>, sqlx::Error> {
    let row: Option<SessionRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_key = ?"
    )))
    .bind(key)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => Ok(views(pool, prices, vec![row]).await?.pop()),
        None => Ok(None),
    }
}

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
    pub sessions: Vec<SessionView>,
    pub next: Option<(i64, i64)>,
}

/// Sessions newest first, paginated by `(started, id)`.
pub async fn list(
    pool: &SqlitePool,
    prices: &PriceTable,
    f: &ListFilter,
) -> Result<Page, sqlx::Error> {
    let mut sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE 1 = 1");
    if f.repository.is_some() {
        sql.push_str(" AND repository = ?");
    }
    if f.user.is_some() {
        sql.push_str(" AND (user_email = ? OR user_id = ?)");
    }
    if f.agent.is_some() {
        sql.push_str(" AND agent = ?");
    }
    if f.since_ns.is_some() {
        sql.push_str(" AND coalesce(started_ns, 0) >= ?");
    }
    if f.after.is_some() {
        sql.push_str(" AND (coalesce(started_ns, 0), id) < (?, ?)");
    }
    sql.push_str(" ORDER BY coalesce(started_ns, 0) DESC, id DESC LIMIT ?");
    let mut q = sqlx::query_as::<_, SessionRow>(AssertSqlSafe(sql));
    if let Some(r) = &f.repository {
        q = q.bind(r);
    }
    if let Some(u) = &f.user {
        q = q.bind(u).bind(u);
    }
    if let Some(a) = &f.agent {
        q = q.bind(a);
    }
    if let Some(s) = f.since_ns {
        q = q.bind(s);
    }
    if let Some((started, id)) = f.after {
        q = q.bind(started).bind(id);
    }
    q = q.bind(i64::from(f.limit) + 1);
    let mut rows = q.fetch_all(pool).await?;
    let next = if rows.len() > f.limit as usize {
        rows.truncate(f.limit as usize);
        rows.last().map(|r| (r.8.unwrap_or(0), r.0))
    } else {
        None
    };
    let sessions = views(pool, prices, rows).await?;
    Ok(Page { sessions, next })
}

fn source_rank(s: &str) -> usize {
    SOURCES
        .iter()
        .position(|x| *x == s)
        .unwrap_or(SOURCES.len())
}

/// What belongs to a session besides its row, loaded for many sessions at once.
#[derive(Default)]
struct Related {
    counters: Vec<(String, String, f64)>,
    tokens: Vec<(String, String, i64, i64, i64, i64, i64)>,
    commits: Vec<String>,
    traces: Vec<Vec<u8>>,
    files_modified: i64,
}

/// Five queries for any number of sessions (in chunks), instead of five per session.
async fn load_related(
    pool: &SqlitePool,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Related>, sqlx::Error> {
    let mut out: std::collections::HashMap<i64, Related> = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let ph = placeholders(chunk.len());
        let mut q = sqlx::query_as::<_, (i64, String, String, f64)>(AssertSqlSafe(format!(
            "SELECT session_id, source, counter, value FROM session_counters WHERE session_id IN ({ph})"
        )));
        for id in chunk {
            q = q.bind(id);
        }
        for (id, source, counter, value) in q.fetch_all(pool).await? {
            out.entry(id)
                .or_default()
                .counters
                .push((source, counter, value));
        }
        let mut q = sqlx::query_as::<_, (i64, String, String, i64, i64, i64, i64, i64)>(
            AssertSqlSafe(format!(
                "SELECT session_id, source, model, input, output, cache_read, cache_creation, reasoning \
                 FROM session_tokens WHERE session_id IN ({ph}) ORDER BY model"
            )),
        );
        for id in chunk {
            q = q.bind(id);
        }
        for (id, source, model, i, o, cr, cc, r) in q.fetch_all(pool).await? {
            out.entry(id)
                .or_default()
                .tokens
                .push((source, model, i, o, cr, cc, r));
        }
        let mut q = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(format!(
            "SELECT session_id, sha FROM session_commits WHERE session_id IN ({ph}) ORDER BY sha"
        )));
        for id in chunk {
            q = q.bind(id);
        }
        for (id, sha) in q.fetch_all(pool).await? {
            out.entry(id).or_default().commits.push(sha);
        }
        let mut q = sqlx::query_as::<_, (i64, Vec<u8>)>(AssertSqlSafe(format!(
            "SELECT session_id, trace_id FROM session_traces WHERE session_id IN ({ph}) ORDER BY trace_id"
        )));
        for id in chunk {
            q = q.bind(id);
        }
        for (id, t) in q.fetch_all(pool).await? {
            out.entry(id).or_default().traces.push(t);
        }
        let mut q = sqlx::query_as::<_, (i64, i64)>(AssertSqlSafe(format!(
            "SELECT session_id, count(*) FROM session_files WHERE action = 'modified' \
             AND session_id IN ({ph}) GROUP BY session_id"
        )));
        for id in chunk {
            q = q.bind(id);
        }
        for (id, n) in q.fetch_all(pool).await? {
            out.entry(id).or_default().files_modified = n;
        }
    }
    Ok(out)
}

/// Many sessions by key, in the order given (unknown keys left out).
pub async fn get_many(
    pool: &SqlitePool,
    prices: &PriceTable,
    keys: &[&str],
) -> Result<Vec<SessionView>, sqlx::Error> {
    let mut rows: Vec<SessionRow> = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut q = sqlx::query_as::<_, SessionRow>(AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_key IN ({})",
            placeholders(chunk.len())
        )));
        for k in chunk {
            q = q.bind(*k);
        }
        rows.extend(q.fetch_all(pool).await?);
    }
    rows.sort_by_key(|r| keys.iter().position(|k| *k == r.1));
    views(pool, prices, rows).await
}

async fn views(
    pool: &SqlitePool,
    prices: &PriceTable,
    rows: Vec<SessionRow>,
) -> Result<Vec<SessionView>, sqlx::Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut related = load_related(pool, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let rel = related.remove(&row.0).unwrap_or_default();
            view(prices, row, rel)
        })
        .collect())
}

fn view(prices: &PriceTable, row: SessionRow, rel: Related) -> SessionView {
    let (
        _id,
        key,
        agent,
        agent_version,
        user_id,
        user_email,
        organization,
        repository,
        started,
        ended,
    ) = row;

    let counter_rows = rel.counters;
    let mut counters: BTreeMap<&'static str, (usize, CounterView)> = BTreeMap::new();
    for (source, counter, value) in &counter_rows {
        let Some(c) = Counter::parse(counter) else {
            continue;
        };
        let rank = source_rank(source);
        let source = SOURCES.get(rank).copied().unwrap_or("other");
        let entry = counters
            .entry(c.as_str())
            .or_insert((usize::MAX, CounterView { value: 0.0, source }));
        if rank < entry.0 {
            *entry = (
                rank,
                CounterView {
                    value: *value,
                    source,
                },
            );
        }
    }
    let counters: BTreeMap<&'static str, CounterView> =
        counters.into_iter().map(|(k, (_, v))| (k, v)).collect();
    let num = |c: Counter| counters.get(c.as_str()).map(|v| v.value);
    let int = |c: Counter| num(c).map(|v| v.round() as i64);

    let token_rows = rel.tokens;
    let best = token_rows.iter().map(|r| source_rank(&r.0)).min();
    let mut by_model: BTreeMap<String, Tokens> = BTreeMap::new();
    for (source, model, i, o, cr, cc, r) in &token_rows {
        if Some(source_rank(source)) == best {
            by_model
                .entry(model.clone())
                .or_default()
                .merge(&Tokens([*i, *o, *cr, *cc, *r]));
        }
    }
    let total = by_model.values().fold(None, |acc: Option<Tokens>, t| {
        let mut sum = acc.unwrap_or_default();
        sum.merge(t);
        Some(sum)
    });

    let (cost_usd, cost_estimated) = match num(Counter::CostUsd) {
        // Summed in floating point: round away the noise below a micro-dollar.
        Some(c) => (Some((c * 1e9).round() / 1e9), false),
        None if !by_model.is_empty() => {
            let estimate: Option<f64> = by_model.iter().map(|(m, t)| prices.cost(m, t)).sum();
            (
                estimate.map(|c| (c * 1e9).round() / 1e9),
                estimate.is_some(),
            )
        }
        None => (None, false),
    };

    let commits = rel.commits;
    let traces = rel.traces;
    let files_modified =
        int(Counter::FilesModified).or((rel.files_modified > 0).then_some(rel.files_modified));

    SessionView {
        session_id: key,
        agent,
        agent_version,
        user: UserView {
            id: user_id,
            email: user_email,
        },
        organization,
        repository,
        started_at: rfc3339(started),
        ended_at: rfc3339(ended),
        active_seconds: num(Counter::ActiveSeconds),
        models: by_model.keys().cloned().collect(),
        tokens: total.map(TokenView::from),
        tokens_by_model: by_model
            .into_iter()
            .map(|(m, t)| (m, TokenView::from(t)))
            .collect(),
        cost_usd,
        cost_estimated,
        llm_requests: int(Counter::LlmRequests),
        errors: int(Counter::Errors),
        prompts: int(Counter::Prompts),
        tool_invocations: int(Counter::ToolInvocations),
        tool_failures: int(Counter::ToolFailures),
        tool_rejections: int(Counter::ToolRejections),
        lines_added: int(Counter::LinesAdded),
        lines_removed: int(Counter::LinesRemoved),
        user_lines_added: int(Counter::UserLinesAdded),
        user_lines_removed: int(Counter::UserLinesRemoved),
        lines_modified: int(Counter::LinesModified),
        files_read: int(Counter::FilesRead),
        files_modified,
        commits_reported: int(Counter::Commits),
        pull_requests_reported: int(Counter::PullRequests),
        commits,
        trace_ids: traces.iter().map(|t| encode_hex(t)).collect(),
        counters,
    }
}
