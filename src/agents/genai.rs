//! Any agent instrumented with the OpenTelemetry gen_ai semantic conventions
//! (`gen_ai.usage.*`, `gen_ai.request.model`, `gen_ai.conversation.id`,
//! `gen_ai.client.token.usage`). Used when no vendor adapter claims a record.

use super::MetricFact;
use crate::agents::attrs::Reader;
use crate::facts::{Contribution, Counter, FileAction, TokenKinds};

static TOKEN_USAGE: MetricFact = MetricFact::Tokens {
    type_attr: "gen_ai.token.type",
    model_attr: "gen_ai.request.model",
    types: &[("input", TokenKinds::INPUT), ("output", TokenKinds::OUTPUT)],
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

/// Usage of one model call, per the conventions: `input_tokens` includes cached input.
fn usage(reader: &Reader<'_>, c: &mut Contribution) {
    let model = reader
        .str("gen_ai.response.model")
        .or_else(|| reader.str("gen_ai.request.model"))
        .unwrap_or("unknown");
    for (key, kinds) in [
        ("gen_ai.usage.input_tokens", TokenKinds::INPUT),
        ("gen_ai.usage.output_tokens", TokenKinds::OUTPUT),
        (
            "gen_ai.usage.cache_read.input_tokens",
            TokenKinds::CACHE_READ,
        ),
        (
            "gen_ai.usage.cache_creation.input_tokens",
            TokenKinds::CACHE_CREATION,
        ),
        (
            "gen_ai.usage.reasoning.output_tokens",
            TokenKinds::REASONING,
        ),
    ] {
        if let Some(n) = reader.int(key) {
            c.additive.add_tokens(model, kinds, n);
        }
    }
}

/// A span is a gen_ai record when it names a gen_ai operation, usage or conversation.
pub fn span(reader: &Reader<'_>, c: &mut Contribution) -> bool {
    let op = reader.str("gen_ai.operation.name");
    let has_usage = reader.value("gen_ai.usage.input_tokens").is_some()
        || reader.value("gen_ai.usage.output_tokens").is_some();
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
    let has_usage = reader.value("gen_ai.usage.input_tokens").is_some()
        || reader.value("gen_ai.usage.output_tokens").is_some();
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
