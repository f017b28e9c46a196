//! What one record says about its session, in tracelink's words (DESIGN.md §3).
//!
//! A record contributes *additive* facts (counters, tokens), which count only when the
//! record is stored for the first time, and *idempotent* facts (identity, times, traces,
//! commits, files), which may be applied any number of times.

use std::fmt::Write as _;

use crate::ids::CommitSha;

/// The additive quantities tracelink keeps per session. The names are stored in
/// `session_counters.counter` and appear in the session JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    CostUsd,
    ActiveSeconds,
    LlmRequests,
    Errors,
    Prompts,
    ToolInvocations,
    ToolFailures,
    ToolRejections,
    McpToolInvocations,
    ToolExecutionMs,
    EditsAccepted,
    EditsRejected,
    LinesAdded,
    LinesRemoved,
    UserLinesAdded,
    UserLinesRemoved,
    LinesModified,
    FilesRead,
    FilesModified,
    Commits,
    PullRequests,
    /// Milliseconds spent on model API requests (their `duration_ms`).
    RequestMs,
    /// Model API requests that were retries (`attempt` above 1).
    Retries,
}

impl Counter {
    pub const ALL: [Counter; 23] = [
        Counter::CostUsd,
        Counter::ActiveSeconds,
        Counter::LlmRequests,
        Counter::Errors,
        Counter::Prompts,
        Counter::ToolInvocations,
        Counter::ToolFailures,
        Counter::ToolRejections,
        Counter::McpToolInvocations,
        Counter::ToolExecutionMs,
        Counter::EditsAccepted,
        Counter::EditsRejected,
        Counter::LinesAdded,
        Counter::LinesRemoved,
        Counter::UserLinesAdded,
        Counter::UserLinesRemoved,
        Counter::LinesModified,
        Counter::FilesRead,
        Counter::FilesModified,
        Counter::Commits,
        Counter::PullRequests,
        Counter::RequestMs,
        Counter::Retries,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Counter::CostUsd => "cost_usd",
            Counter::ActiveSeconds => "active_seconds",
            Counter::LlmRequests => "llm_requests",
            Counter::Errors => "errors",
            Counter::Prompts => "prompts",
            Counter::ToolInvocations => "tool_invocations",
            Counter::ToolFailures => "tool_failures",
            Counter::ToolRejections => "tool_rejections",
            Counter::McpToolInvocations => "mcp_tool_invocations",
            Counter::ToolExecutionMs => "tool_execution_ms",
            Counter::EditsAccepted => "edits_accepted",
            Counter::EditsRejected => "edits_rejected",
            Counter::LinesAdded => "lines_added",
            Counter::LinesRemoved => "lines_removed",
            Counter::UserLinesAdded => "user_lines_added",
            Counter::UserLinesRemoved => "user_lines_removed",
            Counter::LinesModified => "lines_modified",
            Counter::FilesRead => "files_read",
            Counter::FilesModified => "files_modified",
            Counter::Commits => "commits_reported",
            Counter::PullRequests => "pull_requests_reported",
            Counter::RequestMs => "request_ms",
            Counter::Retries => "retries",
        }
    }

    pub fn parse(s: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Which normalised token fields a vendor's token type adds to (DESIGN.md §3: `input`
/// includes cache reads and writes, `output` includes reasoning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenKinds(pub u8);

impl TokenKinds {
    pub const INPUT: TokenKinds = TokenKinds(1);
    pub const OUTPUT: TokenKinds = TokenKinds(2);
    pub const CACHE_READ: TokenKinds = TokenKinds(4);
    pub const CACHE_CREATION: TokenKinds = TokenKinds(8);
    pub const REASONING: TokenKinds = TokenKinds(16);
    pub const NONE: TokenKinds = TokenKinds(0);

    pub const fn and(self, other: TokenKinds) -> TokenKinds {
        TokenKinds(self.0 | other.0)
    }
}

/// Normalised token counts: `[input, output, cache_read, cache_creation, reasoning]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens(pub [i64; 5]);

impl Tokens {
    pub fn add(&mut self, kinds: TokenKinds, n: i64) {
        for (bit, slot) in self.0.iter_mut().enumerate() {
            if kinds.0 & (1 << bit) != 0 {
                *slot += n;
            }
        }
    }

    pub fn merge(&mut self, other: &Tokens) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }
}

/// Additive facts of one record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Additive {
    pub counters: Vec<(Counter, f64)>,
    /// Tokens attributed to one model.
    pub tokens: Option<(String, Tokens)>,
}

impl Additive {
    pub fn add(&mut self, counter: Counter, value: f64) {
        if let Some(slot) = self.counters.iter_mut().find(|(c, _)| *c == counter) {
            slot.1 += value;
        } else {
            self.counters.push((counter, value));
        }
    }

    pub fn add_tokens(&mut self, model: &str, kinds: TokenKinds, n: i64) {
        match &mut self.tokens {
            Some((_, t)) => t.add(kinds, n),
            None => {
                let mut t = Tokens::default();
                t.add(kinds, n);
                self.tokens = Some((model.to_string(), t));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.tokens.as_ref().is_none_or(|(_, t)| t.is_zero())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileAction {
    Read,
    Modified,
}

impl FileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::Read => "read",
            FileAction::Modified => "modified",
        }
    }
}

/// Idempotent facts a record adds to its session besides identity and times.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mentions {
    pub commits: Vec<(CommitSha, &'static str)>,
    /// Abbreviated SHAs (lowercase hex, 7 to 39 digits).
    pub abbreviated: Vec<String>,
    pub files: Vec<(String, FileAction)>,
    pub repository: Option<String>,
}

impl Mentions {
    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
            && self.abbreviated.is_empty()
            && self.files.is_empty()
            && self.repository.is_none()
    }
}

/// Everything an adapter derives from one record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contribution {
    pub additive: Additive,
    pub mentions: Mentions,
}

/// The OTLP signal a record came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The name stored as a counter's source, and used in `/metrics` labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ranges_round_trip() {
        let lines = [1, 2, 3, 5, 7, 8, 100];
        let s = encode_lines(lines);
        assert_eq!(s, "1-3,5,7-8,100");
        // Read back as ranges (the stored form is the same).
        let back = crate::line_set::LineSet::decode(&s);
        assert_eq!(back.lines().collect::<Vec<_>>(), lines);
        assert_eq!(back.encode(), s);
        assert_eq!(encode_lines([]), "");
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
