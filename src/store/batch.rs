//! The decoded, normalised content of one OTLP request, as the writer stores it.

use crate::facts::{Additive, Counter, FileAction, Signal, TokenKinds};
use crate::ids::{CommitSha, SessionId, SpanId, TraceId};

/// Idempotent facts about one session gathered from one request.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    pub key: SessionId,
    pub agent: Option<String>,
    pub agent_version: Option<String>,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub organization: Option<String>,
    pub repository: Option<String>,
    /// The branch it worked on, as its telemetry names it.
    pub branch: Option<String>,
    /// Whether it ran headless (a script, an SDK, CI) rather than with a person at the
    /// terminal; `None`: its telemetry does not say.
    pub headless: Option<bool>,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    pub traces: Vec<TraceId>,
    pub commits: Vec<(CommitSha, &'static str)>,
    /// Abbreviated SHAs the session's telemetry names.
    pub abbreviated: Vec<String>,
    pub files: Vec<(String, FileAction)>,
    /// The tools and MCP servers its telemetry names: `(kind, name)`, kind `tool` or
    /// `mcp`, each once (at most [`MAX_WORKFLOWS`]).
    pub workflows: Vec<(&'static str, String)>,
}

/// The most tools and MCP servers kept per session and request.
pub const MAX_WORKFLOWS: usize = 64;

impl SessionInfo {
    pub fn new(key: SessionId) -> Self {
        Self {
            key,
            agent: None,
            agent_version: None,
            user_id: None,
            user_email: None,
            organization: None,
            repository: None,
            branch: None,
            headless: None,
            first_ns: None,
            last_ns: None,
            traces: Vec::new(),
            commits: Vec::new(),
            abbreviated: Vec::new(),
            files: Vec::new(),
            workflows: Vec::new(),
        }
    }

    /// Widens the session's time range to include `ns` (0 means "unknown").
    pub fn saw(&mut self, ns: i64) {
        if ns <= 0 {
            return;
        }
        self.first_ns = Some(self.first_ns.map_or(ns, |f| f.min(ns)));
        self.last_ns = Some(self.last_ns.map_or(ns, |l| l.max(ns)));
    }
}

pub struct SpanRow {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_id: Option<SpanId>,
    /// Index into [`Batch::sessions`].
    pub session: Option<usize>,
    pub name: String,
    pub kind: i32,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status: i32,
    pub attrs: Option<String>,
    pub additive: Option<Box<Additive>>,
}

pub struct LogRow {
    pub digest: [u8; 16],
    pub session: Option<usize>,
    pub time_ns: i64,
    pub event: String,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub attrs: Option<String>,
    pub additive: Option<Box<Additive>>,
}

/// What a metric point's increment means for its session.
#[derive(Clone, Debug, PartialEq)]
pub enum PointFact {
    Counter(Counter),
    Tokens { model: String, kinds: TokenKinds },
}

pub struct PointRow {
    pub series: [u8; 16],
    pub start_ns: i64,
    pub time_ns: i64,
    pub session: Option<usize>,
    pub metric: String,
    /// The point's value (a histogram's sum); for a cumulative series the running total.
    pub value: f64,
    /// A histogram's count.
    pub count: Option<i64>,
    pub cumulative: bool,
    pub attrs: Option<String>,
    pub fact: Option<PointFact>,
}

/// One request's worth of records, ready for the writer.
pub struct Batch {
    pub signal: Signal,
    pub sessions: Vec<SessionInfo>,
    pub spans: Vec<SpanRow>,
    pub logs: Vec<LogRow>,
    pub points: Vec<PointRow>,
    /// Records (spans, log records, data points) accepted for storage.
    pub accepted: u64,
    /// Records refused, with the first reason.
    pub rejected: u64,
    /// Values inside accepted records that could not be read and were left out.
    pub unreadable_values: u64,
    /// `(attribute, count)` of the values left out.
    pub unreadable_keys: Vec<(String, u64)>,
    pub first_error: Option<String>,
    /// The request's raw record ([`super::raw::seal`]), compressed by the request's own
    /// task before the batch is queued; the writer seals it itself when it is missing.
    pub raw: Option<super::raw::Sealed>,
}

impl Batch {
    pub fn new(signal: Signal) -> Self {
        Self {
            signal,
            sessions: Vec::new(),
            spans: Vec::new(),
            logs: Vec::new(),
            points: Vec::new(),
            accepted: 0,
            rejected: 0,
            unreadable_values: 0,
            unreadable_keys: Vec::new(),
            first_error: None,
            raw: None,
        }
    }

    pub fn reject(&mut self, why: impl FnOnce() -> String) {
        self.rejected += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty() && self.points.is_empty()
    }
}
