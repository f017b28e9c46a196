//! Vendor adapters: each coding agent's OTLP names turned into session facts.
//!
//! One file per vendor holds its tables (metric, event and span names → facts); this
//! module walks an export request, finds each record's agent and session, applies the
//! agent's table and builds the [`Batch`] the store writes. Records of no known agent
//! fall back to the OpenTelemetry gen_ai conventions ([`genai`]).

pub mod attrs;
pub mod claude_code;
pub mod codex;
pub mod droid;
pub mod gemini_cli;
pub mod genai;
mod normalise;

pub use normalise::{logs, metrics, traces};

use crate::agents::attrs::Reader;
use crate::facts::{Contribution, Counter, TokenKinds};

/// A coding agent as tracelink recognises it in telemetry.
pub struct Agent {
    /// The name tracelink reports (`claude-code`, `gemini-cli`, `codex`, `droid`).
    pub name: &'static str,
    /// Prefixes of the agent's metric, event and span names.
    pub prefixes: &'static [&'static str],
    /// `service.name` values the agent's SDK sets on its resource.
    pub service_names: &'static [&'static str],
    /// Instrumentation scope names.
    pub scope_names: &'static [&'static str],
    /// Record attribute carrying the agent's version; when absent, the resource's
    /// `service.version` is used if `version_from_resource`.
    pub version_attr: Option<&'static str>,
    pub version_from_resource: bool,
    pub metrics: &'static [MetricRule],
    pub events: &'static [RecordRule],
    pub spans: &'static [RecordRule],
}

pub struct MetricRule {
    pub name: &'static str,
    pub fact: MetricFact,
}

/// What a metric's points mean.
pub enum MetricFact {
    /// Every increment adds to one counter (a histogram adds its sum).
    Counter(Counter),
    /// The increment adds to the counter the attribute's value names; other values are ignored.
    CounterByAttr {
        attr: &'static str,
        values: &'static [(&'static str, Counter)],
    },
    /// Token counts by type and model.
    Tokens {
        type_attr: &'static str,
        model_attr: &'static str,
        types: &'static [(&'static str, TokenKinds)],
    },
    /// A gauge naming the session's repository.
    Repository { attr: &'static str },
}

/// A log event or span name and what one record of it contributes.
pub struct RecordRule {
    pub name: &'static str,
    pub apply: fn(&Reader<'_>, &mut Contribution),
}

/// Every vendor adapter, most specific first.
pub static AGENTS: &[&Agent] = &[
    &claude_code::AGENT,
    &gemini_cli::AGENT,
    &codex::AGENT,
    &droid::AGENT,
];

/// Attributes naming a session, in order of preference (record first, then resource).
pub const SESSION_KEYS: &[&str] = &["session.id", "conversation.id", "gen_ai.conversation.id"];

/// A tool call's execution time (`duration_ms`), where the record says.
pub(crate) fn tool_timing(r: &Reader<'_>, a: &mut crate::facts::Additive) {
    if let Some(ms) = r.num("duration_ms").filter(|ms| *ms >= 0.0) {
        a.add(Counter::ToolExecutionMs, ms);
    }
}

/// A model API request's time (`duration_ms`) and whether it was a retry (`attempt`
/// above 1), where the record says.
pub(crate) fn request_timing(r: &Reader<'_>, a: &mut crate::facts::Additive) {
    if let Some(ms) = r.num("duration_ms").filter(|ms| *ms >= 0.0) {
        a.add(Counter::RequestMs, ms);
    }
    if let Some(attempt) = r.int("attempt") {
        a.add(Counter::Retries, if attempt > 1 { 1.0 } else { 0.0 });
    }
}

/// Finds the agent that emitted a record, from its name, scope and resource.
pub fn detect(name: &str, scope: &str, service_name: Option<&str>) -> Option<&'static Agent> {
    AGENTS
        .iter()
        .copied()
        .find(|a| a.prefixes.iter().any(|p| name.starts_with(p)))
        .or_else(|| {
            AGENTS
                .iter()
                .copied()
                .find(|a| a.scope_names.contains(&scope))
        })
        .or_else(|| {
            let service = service_name?;
            AGENTS
                .iter()
                .copied()
                .find(|a| a.service_names.contains(&service))
        })
}

impl Agent {
    pub fn metric(&self, name: &str) -> Option<&'static MetricFact> {
        self.metrics
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.fact)
    }

    pub fn event(&self, name: &str) -> Option<&'static RecordRule> {
        self.events.iter().find(|r| r.name == name)
    }

    pub fn span(&self, name: &str) -> Option<&'static RecordRule> {
        self.spans.iter().find(|r| r.name == name)
    }
}

/// Shared helpers for the vendor tables.
pub(crate) mod util {
    use crate::facts::{FileAction, Mentions};
    use crate::ids::CommitSha;

    pub fn json_number(v: &serde_json::Value, field: &str) -> Option<f64> {
        match v.get(field)? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A commit the record names: a full SHA, or an abbreviated one (7 to 39 hex
    /// digits), which links only where it names exactly one commit of the session's
    /// repository ([`crate::graph::links`]).
    pub fn mention_commit(m: &mut Mentions, sha: &str, evidence: &'static str) {
        let sha = sha.trim();
        if let Ok(full) = CommitSha::parse(sha) {
            if !m.commits.iter().any(|(s, _)| *s == full) {
                m.commits.push((full, evidence));
            }
        } else if (7..40).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            let prefix = sha.to_ascii_lowercase();
            if !m.abbreviated.contains(&prefix) {
                m.abbreviated.push(prefix);
            }
        }
    }

    pub fn mention_file(m: &mut Mentions, path: &str, action: FileAction) {
        let path = path.trim();
        if path.is_empty() || path.len() > 1024 {
            return;
        }
        if !m.files.iter().any(|(p, a)| p == path && *a == action) {
            m.files.push((path.to_string(), action));
        }
    }

    /// `owner/name` (lower case, as GitHub compares them) from a repository name or a git
    /// remote URL.
    pub fn repository_name(s: &str) -> Option<String> {
        let s = s.trim().trim_end_matches('/');
        let s = s.strip_suffix(".git").unwrap_or(s);
        let tail = match s.rsplit_once(':') {
            Some((head, tail)) if !head.contains('/') || head.starts_with("git@") => tail,
            _ => s,
        };
        let parts: Vec<&str> = tail.rsplit('/').take(2).collect();
        match parts.as_slice() {
            [name, owner] if !name.is_empty() && !owner.is_empty() && !owner.contains(':') => {
                Some(format!("{owner}/{name}").to_ascii_lowercase())
            }
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn repository_names_from_remotes() {
            for (input, want) in [
                ("acme/widgets", "acme/widgets"),
                ("Acme/Widgets", "acme/widgets"),
                ("git@github.com:acme/widgets.git", "acme/widgets"),
                ("https://github.com/acme/widgets", "acme/widgets"),
                ("https://github.com/acme/widgets.git/", "acme/widgets"),
            ] {
                assert_eq!(repository_name(input).as_deref(), Some(want), "{input}");
            }
            assert_eq!(repository_name("widgets"), None);
        }
    }
}
