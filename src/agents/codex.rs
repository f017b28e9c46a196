//! OpenAI Codex CLI (`service.name` `codex_cli_rs`). Logs only, through the Rust
//! `tracing` bridge: `timeUnixNano` may be 0 (the time is in `event.timestamp`), trace
//! and span IDs empty, numbers often strings. OpenAI usage semantics already follow
//! gen_ai: input includes cached tokens, output includes reasoning tokens. Codex reports
//! no line counts; they are counted from `apply_patch` arguments.

use super::util::mention_file;
use super::{Agent, RecordRule};
use crate::agents::attrs::Reader;
use crate::facts::{Contribution, Counter, FileAction, TokenKinds};

pub static AGENT: Agent = Agent {
    name: "codex",
    prefixes: &["codex."],
    service_names: &["codex_cli_rs", "codex-cli", "codex_exec", "codex"],
    scope_names: &[],
    version_attr: Some("app.version"),
    version_from_resource: true,
    metrics: &[],
    events: &[
        RecordRule {
            name: "codex.api_request",
            apply: api_request,
        },
        RecordRule {
            name: "codex.sse_event",
            apply: sse_event,
        },
        RecordRule {
            name: "codex.tool_result",
            apply: tool_result,
        },
        RecordRule {
            name: "codex.tool_decision",
            apply: tool_decision,
        },
        RecordRule {
            name: "codex.user_prompt",
            apply: prompt,
        },
    ],
    spans: &[],
};

fn api_request(r: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::LlmRequests, 1.0);
    crate::agents::request_timing(r, &mut c.additive);
    let status = r.int("http.response.status_code");
    if status.is_some_and(|s| !(200..300).contains(&s)) || r.str("error.message").is_some() {
        c.additive.add(Counter::Errors, 1.0);
    }
}

fn sse_event(r: &Reader<'_>, c: &mut Contribution) {
    match r.str("event.kind") {
        // Only the record carrying usage counts; its twin without counts is the raw event.
        Some("response.completed") if r.value("input_token_count").is_some() => {
            let model = r.str("model").unwrap_or("unknown");
            for (key, kinds) in [
                ("input_token_count", TokenKinds::INPUT),
                ("cached_token_count", TokenKinds::CACHE_READ),
                ("output_token_count", TokenKinds::OUTPUT),
                ("reasoning_token_count", TokenKinds::REASONING),
                ("tool_token_count", TokenKinds::INPUT),
            ] {
                if let Some(n) = r.int(key) {
                    c.additive.add_tokens(model, kinds, n);
                }
            }
        }
        Some("response.failed") => c.additive.add(Counter::Errors, 1.0),
        _ => {}
    }
}

fn prompt(_: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::Prompts, 1.0);
}

fn tool_decision(r: &Reader<'_>, c: &mut Contribution) {
    if matches!(r.str("decision"), Some("denied" | "abort")) {
        c.additive.add(Counter::ToolRejections, 1.0);
    }
}

fn tool_result(r: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::ToolInvocations, 1.0);
    crate::agents::tool_timing(r, &mut c.additive);
    let ok = r.flag("success") != Some(false);
    if !ok {
        c.additive.add(Counter::ToolFailures, 1.0);
    }
    if r.str("tool_name") == Some("apply_patch")
        && ok
        && let Some(patch) = r.str("arguments")
    {
        let stat = patch_stat(patch);
        c.additive.add(Counter::LinesAdded, stat.added as f64);
        c.additive.add(Counter::LinesRemoved, stat.removed as f64);
        for path in stat.files {
            mention_file(&mut c.mentions, path, FileAction::Modified);
        }
    }
}

pub struct PatchStat<'a> {
    pub added: u64,
    pub removed: u64,
    pub files: Vec<&'a str>,
}

/// Counts the lines an `apply_patch` envelope adds and removes, and the files it touches.
pub fn patch_stat(patch: &str) -> PatchStat<'_> {
    let mut stat = PatchStat {
        added: 0,
        removed: 0,
        files: Vec::new(),
    };
    for line in patch.lines() {
        if let Some(header) = line.strip_prefix("*** ") {
            for prefix in ["Update File: ", "Add File: ", "Delete File: ", "Move to: "] {
                if let Some(path) = header.strip_prefix(prefix) {
                    stat.files.push(path.trim());
                }
            }
        } else if line.starts_with('+') {
            stat.added += 1;
        } else if line.starts_with('-') {
            stat.removed += 1;
        }
    }
    stat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_patch_lines_are_counted() {
        let patch = "*** Begin Patch\n*** Update File: src/a.ts\n@@ x\n-old\n+new\n+more\n*** Add File: b.md\n+hi\n*** End Patch\n";
        let s = patch_stat(patch);
        assert_eq!((s.added, s.removed), (3, 1));
        assert_eq!(s.files, vec!["src/a.ts", "b.md"]);
    }
}
