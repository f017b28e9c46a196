//! Any agent instrumented with the OpenTelemetry gen_ai semantic conventions
//! (`gen_ai.usage.*`, `gen_ai.request.model`, `gen_ai.conversation.id`,
//! `gen_ai.client.token.usage`). Used when no vendor adapter claims a record.

use super::MetricFact;
use crate::agents::attrs::Reader;
use crate::facts::{Contribution, Counter, FileAction, TokenKinds};

static TOKEN_USAGE: MetricFact = MetricFact::Tokens {
    type_attr: "gen_ai.token.type",
    model_attr: "gen_ai.request.model",
    // `prompt` / `completion`: the token types before the conventions' rename.
    types: &[
        ("input", TokenKinds::INPUT),
        ("output", TokenKinds::OUTPUT),
        ("prompt", TokenKinds::INPUT),
        ("completion", TokenKinds::OUTPUT),
    ],
};

/// The agent name for a gen_ai session: `gen_ai.agent.name`, else the service name.
pub fn agent_name(reader: &Reader<'_>) -> String {
    reader
        .str("gen_ai.agent.name")
        .or_else(|| reader.str("service.name"))
        .unwrap_or("gen_ai")
        .to_string()
}

pub fn metric(name: &str) -> Option<&'static MetricFact> {
    (name == "gen_ai.client.token.usage").then_some(&TOKEN_USAGE)
}

/// Token usage attributes by kind, newest name first: the conventions renamed
/// `prompt_tokens` / `completion_tokens` to `input_tokens` / `output_tokens`, and the
/// cache attributes have had both dotted and underscored forms. One name is read per
/// kind (the first present), so an exporter sending both never counts twice.
const USAGE: &[(&[&str], TokenKinds)] = &[
    (
        &["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"],
        TokenKinds::INPUT,
    ),
    (
        &[
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
        ],
        TokenKinds::OUTPUT,
    ),
    (
        &[
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
        ],
        TokenKinds::CACHE_READ,
    ),
    (
        &[
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
        ],
        TokenKinds::CACHE_CREATION,
    ),
    (
        &[
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
        ],
        TokenKinds::REASONING,
    ),
];

/// Whether a record carries token usage under any name.
fn has_usage(reader: &Reader<'_>) -> bool {
    USAGE[..2]
        .iter()
        .flat_map(|(names, _)| names.iter())
        .any(|n| reader.value(n).is_some())
}

/// Usage of one model call, per the conventions: `input_tokens` includes cached input.
fn usage(reader: &Reader<'_>, c: &mut Contribution) {
    let model = reader
        .str("gen_ai.response.model")
        .or_else(|| reader.str("gen_ai.request.model"))
        .unwrap_or("unknown");
    for (names, kinds) in USAGE {
        if let Some(name) = names.iter().find(|n| reader.value(n).is_some())
            && let Some(n) = reader.int(name)
        {
            c.additive.add_tokens(model, *kinds, n);
        }
    }
}

/// A span is a gen_ai record when it names a gen_ai operation, usage or conversation.
pub fn span(reader: &Reader<'_>, c: &mut Contribution) -> bool {
    let op = reader.str("gen_ai.operation.name");
    let has_usage = has_usage(reader);
    if op.is_none() && !has_usage && reader.str("gen_ai.conversation.id").is_none() {
        return false;
    }
    files(reader, c);
    match op {
        Some("execute_tool") => {
            c.additive.add(Counter::ToolInvocations, 1.0);
            if reader.str("error.type").is_some() {
                c.additive.add(Counter::ToolFailures, 1.0);
            }
        }
        Some("chat" | "generate_content" | "text_completion" | "embeddings") => {
            c.additive.add(Counter::LlmRequests, 1.0);
            if reader.str("error.type").is_some() {
                c.additive.add(Counter::Errors, 1.0);
            }
            usage(reader, c);
        }
        _ if has_usage => {
            c.additive.add(Counter::LlmRequests, 1.0);
            usage(reader, c);
        }
        _ => {}
    }
    true
}

/// Log events following the conventions (`gen_ai.*` event names, or usage attributes).
pub fn event(name: &str, reader: &Reader<'_>, c: &mut Contribution) -> bool {
    let has_usage = has_usage(reader);
    if !name.starts_with("gen_ai.") && !has_usage && reader.str("gen_ai.conversation.id").is_none()
    {
        return false;
    }
    files(reader, c);
    if has_usage {
        c.additive.add(Counter::LlmRequests, 1.0);
        usage(reader, c);
    }
    true
}

/// A file the record names (`code.file.path`) is a file the session worked on: the
/// window rule requires a commit to touch one of them.
fn files(reader: &Reader<'_>, c: &mut Contribution) {
    if let Some(path) = reader.str("code.file.path") {
        super::util::mention_file(&mut c.mentions, path, FileAction::Modified);
    }
}
