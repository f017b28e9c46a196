//! Gemini CLI (Google). Metrics `gemini_cli.*` in cumulative temporality; events named
//! in full in `event.name`. Every API call is logged twice (`gemini_cli.api_response`
//! and a `gen_ai.client.inference.operation.details` twin): usage is read from the
//! former only. Gemini's `input` includes cached tokens; `thought` tokens are reported
//! beside `output` and are added to it (gen_ai semantics). The resource's
//! `service.version` is the Node.js version, so no agent version is taken from it.

use super::util::{json_number, mention_file};
use super::{Agent, MetricFact, MetricRule, RecordRule};
use crate::agents::attrs::Reader;
use crate::facts::{Contribution, Counter, FileAction, TokenKinds};

const INPUT: TokenKinds = TokenKinds::INPUT;
const CACHE: TokenKinds = TokenKinds::CACHE_READ;
const OUTPUT: TokenKinds = TokenKinds::OUTPUT;
const THOUGHT: TokenKinds = TokenKinds::OUTPUT.and(TokenKinds::REASONING);
/// Tokens of tool-use prompts are input the model read.
const TOOL: TokenKinds = TokenKinds::INPUT;

const EDIT_TOOLS: &[&str] = &["replace", "write_file", "edit"];
const READ_TOOLS: &[&str] = &["read_file", "read_many_files"];

pub static AGENT: Agent = Agent {
    name: "gemini-cli",
    prefixes: &["gemini_cli."],
    service_names: &["gemini-cli"],
    scope_names: &["gemini-cli"],
    version_attr: Some("cli.version"),
    version_from_resource: false,
    metrics: &[
        MetricRule {
            name: "gemini_cli.token.usage",
            fact: MetricFact::Tokens {
                type_attr: "type",
                model_attr: "model",
                types: &[
                    ("input", INPUT),
                    ("output", OUTPUT),
                    ("cache", CACHE),
                    ("thought", THOUGHT),
                    ("tool", TOOL),
                ],
            },
        },
        MetricRule {
            name: "gemini_cli.api.request.count",
            fact: MetricFact::Counter(Counter::LlmRequests),
        },
        MetricRule {
            name: "gemini_cli.api.error.count",
            fact: MetricFact::Counter(Counter::Errors),
        },
        MetricRule {
            name: "gemini_cli.tool.call.count",
            fact: MetricFact::Counter(Counter::ToolInvocations),
        },
        MetricRule {
            name: "gemini_cli.lines.changed",
            fact: MetricFact::CounterByAttr {
                attr: "type",
                values: &[
                    ("added", Counter::LinesAdded),
                    ("removed", Counter::LinesRemoved),
                ],
            },
        },
    ],
    events: &[
        RecordRule {
            name: "gemini_cli.api_response",
            apply: api_response,
        },
        RecordRule {
            name: "gemini_cli.api_error",
            apply: api_error,
        },
        RecordRule {
            name: "gemini_cli.tool_call",
            apply: tool_call,
        },
        RecordRule {
            name: "gemini_cli.user_prompt",
            apply: prompt,
        },
    ],
    spans: &[],
};

fn api_response(r: &Reader<'_>, c: &mut Contribution) {
    let a = &mut c.additive;
    a.add(Counter::LlmRequests, 1.0);
    if r.int("status_code")
        .is_some_and(|s| !(200..300).contains(&s))
    {
        a.add(Counter::Errors, 1.0);
    }
    crate::agents::request_timing(r, a);
    let model = r.str("model").unwrap_or("unknown");
    for (key, kinds) in [
        ("input_token_count", INPUT),
        ("cached_content_token_count", CACHE),
        ("output_token_count", OUTPUT),
        ("thoughts_token_count", THOUGHT),
        ("tool_token_count", TOOL),
    ] {
        if let Some(n) = r.int(key) {
            a.add_tokens(model, kinds, n);
        }
    }
}

fn api_error(r: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::LlmRequests, 1.0);
    c.additive.add(Counter::Errors, 1.0);
    crate::agents::request_timing(r, &mut c.additive);
}

fn prompt(_: &Reader<'_>, c: &mut Contribution) {
    c.additive.add(Counter::Prompts, 1.0);
}

fn tool_call(r: &Reader<'_>, c: &mut Contribution) {
    let a = &mut c.additive;
    a.add(Counter::ToolInvocations, 1.0);
    crate::agents::tool_timing(r, a);
    let decision = r.str("decision");
    if matches!(decision, Some("reject" | "cancel")) {
        a.add(Counter::ToolRejections, 1.0);
    } else if r.flag("success") == Some(false) {
        a.add(Counter::ToolFailures, 1.0);
    }
    // The diffStat: lines the model wrote, and lines the user changed in the proposal.
    if let Some(meta) = r
        .str("metadata")
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
    {
        for (field, counter) in [
            ("model_added_lines", Counter::LinesAdded),
            ("model_removed_lines", Counter::LinesRemoved),
            ("user_added_lines", Counter::UserLinesAdded),
            ("user_removed_lines", Counter::UserLinesRemoved),
        ] {
            if let Some(n) = json_number(&meta, field) {
                a.add(counter, n);
            }
        }
    }
    let tool = r.str("function_name").unwrap_or("");
    if let Some(path) = r
        .field("function_args", "file_path")
        .or_else(|| r.field("function_args", "absolute_path"))
    {
        if EDIT_TOOLS.contains(&tool) && r.flag("success") != Some(false) {
            mention_file(&mut c.mentions, &path, FileAction::Modified);
        } else if READ_TOOLS.contains(&tool) {
            mention_file(&mut c.mentions, &path, FileAction::Read);
        }
    }
}
