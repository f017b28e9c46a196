//! Claude Code (Anthropic). Metrics `claude_code.*` (delta), events
//! `claude_code.<event>` (the `event.name` attribute holds the bare name), beta spans
//! `claude_code.interaction` / `.llm_request` / `.tool`.
//! Anthropic's `input` tokens exclude cache reads and writes; they are added here so
//! `input` follows the gen_ai conventions.

use super::util::{mention_commit, mention_file};
use super::{Agent, MetricFact, MetricRule, RecordRule};
use crate::agents::attrs::Reader;
use crate::facts::{Contribution, Counter, FileAction, TokenKinds};

const INPUT: TokenKinds = TokenKinds::INPUT;
const CACHE_READ: TokenKinds = TokenKinds::INPUT.and(TokenKinds::CACHE_READ);
const CACHE_CREATION: TokenKinds = TokenKinds::INPUT.and(TokenKinds::CACHE_CREATION);
const OUTPUT: TokenKinds = TokenKinds::OUTPUT;

/// Tools whose successful use modifies the file named by `file_path`.
const EDIT_TOOLS: &[&str] = &["Edit", "Write", "MultiEdit", "NotebookEdit"];

pub static AGENT: Agent = Agent {
    name: "claude-code",
    prefixes: &["claude_code."],
    service_names: &["claude-code"],
    scope_names: &[
        "com.anthropic.claude_code",
        "com.anthropic.claude_code.events",
        "com.anthropic.claude_code.tracing",
    ],
    version_attr: Some("app.version"),
    version_from_resource: true,
    metrics: &[
        MetricRule {
            name: "claude_code.token.usage",
            fact: MetricFact::Tokens {
                type_attr: "type",
                model_attr: "model",
                types: &[
                    ("input", INPUT),
                    ("output", OUTPUT),
                    ("cacheRead", CACHE_READ),
                    ("cacheCreation", CACHE_CREATION),
                ],
            },
        },
        MetricRule {
            name: "claude_code.cost.usage",
            fact: MetricFact::Counter(Counter::CostUsd),
        },
        MetricRule {
            name: "claude_code.lines_of_code.count",
            fact: MetricFact::CounterByAttr {
                attr: "type",
                values: &[
                    ("added", Counter::LinesAdded),
                    ("removed", Counter::LinesRemoved),
                ],
            },
        },
        MetricRule {
            name: "claude_code.commit.count",
            fact: MetricFact::Counter(Counter::Commits),
        },
        MetricRule {
            name: "claude_code.pull_request.count",
            fact: MetricFact::Counter(Counter::PullRequests),
        },
        MetricRule {
            name: "claude_code.active_time.total",
            fact: MetricFact::Counter(Counter::ActiveSeconds),
        },
        MetricRule {
            name: "claude_code.code_edit_tool.decision",
            fact: MetricFact::CounterByAttr {
                attr: "decision",
                values: &[
                    ("accept", Counter::EditsAccepted),
                    ("reject", Counter::EditsRejected),
                ],
            },
        },
    ],
    events: &[
        RecordRule {
            name: "claude_code.api_request",
            apply: api_request,
        },
        RecordRule {
            name: "claude_code.api_error",
            apply: api_error,
        },
        RecordRule {
            name: "claude_code.tool_result",
            apply: tool_result,
        },
        RecordRule {
            name: "claude_code.user_prompt",
            apply: prompt,
        },
    ],
    spans: &[
        RecordRule {
            name: "claude_code.llm_request",
            apply: api_request,
        },
        RecordRule {
            name: "claude_code.tool",
            apply: tool_span,
        },
        RecordRule {
            name: "claude_code.tool.execution",
            apply: tool_execution_span,
        },
        RecordRule {
            name: "claude_code.interaction",
            apply: prompt,
        },
    ],
};

/// One API request's usage and cost: the `api_request` event or the `llm_request` span.
fn api_request(r: &Reader<'_>, c: &mut Contribution) {
    let a = &mut c.additive;
    a.add(Counter::LlmRequests, 1.0);
    if let Some(cost) = r.num("cost_usd") {
        a.add(Counter::CostUsd, cost);
    }
    if r.flag("success") == Some(false) {
        a.add(Counter::Errors, 1.0);
    }
    crate::agents::request_timing(r, a);
    let model = r.str("model").unwrap_or("unknown");
    for (key, kinds) in [
        ("input_tokens", INPUT),
        ("output_tokens", OUTPUT),
        ("cache_read_tokens", CACHE_READ),
        ("cache_creation_tokens", CACHE_CREATION),
    ] {
        if let Some(n) = r.int(key) {
            a.add_tokens(model, kinds, n);
        }
    }
}

fn api_error(_: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::Errors, 1.0);
}

fn prompt(_: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::Prompts, 1.0);
}

fn tool_result(r: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::ToolInvocations, 1.0);
    crate::agents::tool_timing(r, &mut c.additive);
    let rejected = r.str("decision_type") == Some("reject");
    if rejected {
        c.additive.add(Counter::ToolRejections, 1.0);
    } else if r.flag("success") == Some(false) {
        c.additive.add(Counter::ToolFailures, 1.0);
    }
    // The commit a tool made: `tool_parameters.git_commit_id` (abbreviated when the
    // commit is not HEAD), and since 2.1 with OTEL_LOG_TOOL_DETAILS=1 the full
    // `vcs.ref.head.revision` — evidence only when the tool committed (it names a commit
    // id, or its command is a `git commit`), since HEAD is also where a session started.
    let commit_id = r.field("tool_parameters", "git_commit_id");
    let committed = commit_id.is_some()
        || r.field("tool_parameters", "bash_command")
            .is_some_and(|cmd| cmd.contains("git commit"));
    let head = r
        .str("vcs.ref.head.revision")
        .filter(|h| commit_id.as_deref().is_none_or(|id| h.starts_with(id)));
    match (committed, head, commit_id.as_deref()) {
        (true, Some(h), _) => mention_commit(&mut c.mentions, h, "event"),
        (_, _, Some(id)) => mention_commit(&mut c.mentions, id, "event"),
        _ => {}
    }
    let tool = r.str("tool_name").unwrap_or("");
    if let Some(path) = r.field("tool_input", "file_path") {
        if EDIT_TOOLS.contains(&tool) && !rejected && r.flag("success") != Some(false) {
            mention_file(&mut c.mentions, &path, FileAction::Modified);
        } else if tool == "Read" {
            mention_file(&mut c.mentions, &path, FileAction::Read);
        }
    }
}

fn tool_span(r: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::ToolInvocations, 1.0);
    if r.str("tool_name") == Some("Read")
        && let Some(path) = r.str("file_path")
    {
        mention_file(&mut c.mentions, path, FileAction::Read);
    }
}

fn tool_execution_span(r: &Reader<'_>, c: &mut Contribution) {
    crate::agents::tool_timing(r, &mut c.additive);
    if r.flag("success") == Some(false) {
        c.additive.add(Counter::ToolFailures, 1.0);
    }
}
