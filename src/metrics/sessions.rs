//! A session as the API and the reports show it, from its stored facts.
//!
//! Agents report the same quantity on several signals (Claude Code's cost is a metric,
//! a log attribute and a span attribute). Each signal's counters are kept apart, and
//! each counter is read from the first signal that reported it, in the order
//! metrics, logs, traces: never added across signals. Tokens are read from the best
//! signal that reported any. Cost is the agent's own figure when it reports one, else
//! estimated from the price table (and marked so).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::facts::{Counter, Tokens};
use crate::ids::encode_hex;
use crate::pricing::PriceTable;
use crate::store::sessions::SessionRecord;

fn rfc3339(ns: Option<i64>) -> Option<String> {
    crate::time::rfc3339(ns, chrono::SecondsFormat::Millis)
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
    /// The branch its telemetry names (the first one seen).
    pub branch: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// `interactive` or `headless` (a script, an SDK, CI), when its telemetry says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
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

fn source_rank(s: &str) -> usize {
    SOURCES
        .iter()
        .position(|x| *x == s)
        .unwrap_or(SOURCES.len())
}

/// The session the API shows, from its stored row and facts.
pub fn view(prices: &PriceTable, record: SessionRecord) -> SessionView {
    let SessionRecord { row, related: rel } = record;
    let key = row.session_key;
    let (agent, agent_version, user_id, user_email) =
        (row.agent, row.agent_version, row.user_id, row.user_email);
    let mode = row
        .headless
        .map(|h| if h != 0 { "headless" } else { "interactive" });
    let (organization, repository, branch, started, ended) = (
        row.organization,
        row.repository,
        row.branch,
        row.started_ns,
        row.ended_ns,
    );

    let counter_rows = rel.counters;
    let mut counters: BTreeMap<&'static str, (usize, CounterView)> = BTreeMap::new();
    for crate::store::sessions::CounterRow {
        source,
        counter,
        value,
    } in &counter_rows
    {
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
    let best = token_rows.iter().map(|r| source_rank(&r.source)).min();
    let mut by_model: BTreeMap<String, Tokens> = BTreeMap::new();
    for r in &token_rows {
        if Some(source_rank(&r.source)) == best {
            by_model
                .entry(r.model.clone())
                .or_default()
                .merge(&Tokens(r.tokens));
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
        branch,
        started_at: rfc3339(started),
        ended_at: rfc3339(ended),
        mode,
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
