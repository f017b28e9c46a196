//! Walks OTLP export requests and turns them into a [`Batch`]: one pass over the records,
//! attributes read in place, one owned string per stored name and per session.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use sha2::{Digest, Sha256};

mod metrics;
pub use metrics::metrics;

use super::util::repository_name;
use super::{Agent, MetricFact, SESSION_KEYS, detect, genai};
use crate::agents::attrs::{Reader, Unreadable, body_str, get_str, select_json};
use crate::facts::Signal;
use crate::facts::{Additive, Contribution, Mentions};
use crate::ids::{SessionId, SpanId, TraceId};
use crate::store::batch::{Batch, LogRow, PointFact, PointRow, SessionInfo, SpanRow};

/// Attributes that identify the session or its user: kept once on the session row,
/// not repeated on every record.
const IDENTITY_KEYS: &[&str] = &[
    "session.id",
    "conversation.id",
    "gen_ai.conversation.id",
    "user.id",
    "user.email",
    "user.account_uuid",
    "user.account_id",
    "organization.id",
    "app.version",
    "terminal.type",
    "installation.id",
    "interactive",
    "auth_type",
    "auth_mode",
    "originator",
    "slug",
    "event.name",
    "event.timestamp",
];

/// Attributes carrying prompt, message or tool content: never stored.
const CONTENT_KEYS: &[&str] = &[
    "prompt",
    "user_prompt",
    "message.content",
    "tool.input",
    "tool.output",
    "tool_input",
    // Claude Code's tool details (OTEL_LOG_TOOL_DETAILS): shell commands and arguments;
    // the commit id and file paths they yield are read at ingest, never kept.
    "tool_parameters",
    "bash_command",
    "command",
    "tool_output",
    "tool_result",
    "output",
    "arguments",
    "function_args",
    "metadata",
    "error",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.system_instructions",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

/// Longest string attribute value kept in a stored record.
const MAX_STORED_VALUE: usize = 512;

fn keep_agent_attr(key: &str, v: &Value) -> bool {
    if IDENTITY_KEYS.contains(&key) || CONTENT_KEYS.contains(&key) {
        return false;
    }
    match v {
        Value::StringValue(s) => s.len() <= MAX_STORED_VALUE,
        Value::ArrayValue(_) | Value::KvlistValue(_) | Value::BytesValue(_) => false,
        _ => true,
    }
}

/// Spans of services that are not agents keep only what joins them to code and CI.
fn keep_other_attr(key: &str, v: &Value) -> bool {
    (key.starts_with("vcs.") || key.starts_with("cicd."))
        && matches!(v, Value::StringValue(s) if s.len() <= MAX_STORED_VALUE)
}

fn nanos(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn resource_attrs(r: &Option<Resource>) -> &[KeyValue] {
    r.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[])
}

/// Per-request session table: one [`SessionInfo`] per session key.
#[derive(Default)]
struct Sessions {
    index: HashMap<String, usize>,
}

impl Sessions {
    fn get(&mut self, batch: &mut Batch, key: &str) -> Option<usize> {
        if let Some(i) = self.index.get(key) {
            return Some(*i);
        }
        let id = SessionId::parse(key)?;
        let i = batch.sessions.len();
        batch.sessions.push(SessionInfo::new(id));
        self.index.insert(key.to_string(), i);
        Some(i)
    }
}

/// Who emitted a record: a known vendor, or an agent known only by the gen_ai conventions.
#[derive(Clone, Copy)]
enum Emitter {
    Vendor(&'static Agent),
    GenAi,
}

fn session_key<'a>(reader: &Reader<'a>) -> Option<&'a str> {
    SESSION_KEYS.iter().find_map(|k| reader.str(k))
}

fn fill_identity(info: &mut SessionInfo, emitter: Emitter, reader: &Reader<'_>) {
    if info.agent.is_none() {
        info.agent = Some(match emitter {
            Emitter::Vendor(a) => a.name.to_string(),
            Emitter::GenAi => genai::agent_name(reader),
        });
    }
    if info.agent_version.is_none() {
        let version = match emitter {
            Emitter::Vendor(a) => a.version_attr.and_then(|k| reader.str(k)).or_else(|| {
                a.version_from_resource
                    .then(|| get_str(reader.resource, "service.version"))
                    .flatten()
            }),
            Emitter::GenAi => get_str(reader.resource, "service.version"),
        };
        info.agent_version = version.map(str::to_string);
    }
    if info.user_id.is_none() {
        info.user_id = [
            "user.account_uuid",
            "user.account_id",
            "user.id",
            "enduser.id",
        ]
        .iter()
        .find_map(|k| reader.str(k))
        .map(str::to_string);
    }
    if info.user_email.is_none() {
        info.user_email = reader.str("user.email").map(str::to_string);
    }
    if info.organization.is_none() {
        info.organization = reader.str("organization.id").map(str::to_string);
    }
    if info.repository.is_none() {
        info.repository = ["vcs.repository.name", "vcs.repository.url.full"]
            .iter()
            .find_map(|k| reader.str(k))
            .and_then(repository_name);
    }
    if info.headless.is_none() {
        info.headless = headless(reader);
    }
    // `vcs.ref.head.name` names a branch unless `vcs.ref.head.type` says it is a tag.
    if info.branch.is_none()
        && reader
            .str("vcs.ref.head.type")
            .is_none_or(|t| t == "branch")
    {
        info.branch = reader
            .str("vcs.ref.head.name")
            .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b))
            .filter(|b| !b.is_empty() && b.len() <= 255)
            .map(str::to_string);
    }
}

/// Longest tool or MCP server name kept.
const MAX_WORKFLOW_NAME: usize = 128;

/// Notes the tool, MCP server, skill, sub-agent and slash command a record names,
/// each once per session:
/// - tool: Claude Code's and Codex's `tool_name`, Gemini CLI's `function_name`, Droid's
///   `tool.name`, the gen_ai `gen_ai.tool.name`;
/// - MCP server: `mcp_server`, `mcp.server`, `mcp_server_name`, and Claude Code's
///   `mcp__<server>__<tool>` tool names;
/// - skill: Claude Code's `skill_name` (tool span), `skill.name` (metrics), or the
///   `skill_name` in a Skill tool's `tool_parameters`;
/// - sub-agent: Claude Code's `subagent_type` (tool span), `agent.name` (metrics), or
///   the `subagent_type` in a Task tool's `tool_parameters`;
/// - command: Claude Code's `command_name` on a `user_prompt` (a slash command).
fn note_workflows(info: &mut SessionInfo, reader: &Reader<'_>) {
    let attr = |keys: &[&str]| keys.iter().find_map(|k| get_str(reader.attrs, k));
    let tool = attr(&[
        "tool_name",
        "function_name",
        "tool.name",
        "gen_ai.tool.name",
    ]);
    let mcp = attr(&["mcp_server", "mcp.server", "mcp_server_name"]).or_else(|| {
        tool.and_then(|t| t.strip_prefix("mcp__"))
            .and_then(|rest| rest.split("__").next())
    });
    // The JSON `tool_parameters` is parsed only for the two tools that name a workflow.
    let parameter = |tool_names: &[&str], field: &str| {
        tool.filter(|t| tool_names.contains(t))
            .and_then(|_| reader.field("tool_parameters", field))
    };
    let skill = attr(&["skill_name", "skill.name"])
        .map(str::to_string)
        .or_else(|| parameter(&["Skill"], "skill_name"));
    let subagent = attr(&["subagent_type", "agent.name"])
        .map(str::to_string)
        .or_else(|| parameter(&["Task", "Agent"], "subagent_type"));
    let command = attr(&["command_name"]);
    for (kind, name) in [
        ("tool", tool),
        ("mcp", mcp),
        ("skill", skill.as_deref()),
        ("subagent", subagent.as_deref()),
        ("command", command),
    ] {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            continue;
        };
        if name.len() > MAX_WORKFLOW_NAME
            || info.workflows.len() >= crate::store::batch::MAX_WORKFLOWS
            || info.workflows.iter().any(|(k, n)| *k == kind && n == name)
        {
            continue;
        }
        info.workflows.push((kind, name.to_string()));
    }
}

/// Whether the session ran headless, as its telemetry says: an `interactive` attribute
/// (Gemini CLI sends it; any agent can through `OTEL_RESOURCE_ATTRIBUTES`) decides; else
/// Codex's `originator` (`codex_exec` and the SDKs are headless, the TUI and the editor
/// extensions are not); else a CI run's `cicd.pipeline.*` resource attribute makes it
/// headless. `None`: nothing says (Claude Code and Droid export no such attribute).
fn headless(reader: &Reader<'_>) -> Option<bool> {
    let on_resource = Reader {
        attrs: reader.resource,
        resource: &[],
        rejected: reader.rejected,
    };
    if let Some(interactive) = reader
        .flag("interactive")
        .or_else(|| on_resource.flag("interactive"))
    {
        return Some(!interactive);
    }
    if let Some(o) = reader.str("originator") {
        let o = o.to_ascii_lowercase();
        if o.contains("exec") || o.contains("sdk") {
            return Some(true);
        }
        if o.starts_with("codex_") {
            return Some(false);
        }
    }
    reader
        .resource
        .iter()
        .any(|kv| kv.key.starts_with("cicd.pipeline."))
        .then_some(true)
}

fn apply_mentions(info: &mut SessionInfo, m: Mentions) {
    for c in m.commits {
        if !info.commits.iter().any(|(s, _)| *s == c.0) {
            info.commits.push(c);
        }
    }
    for a in m.abbreviated {
        if !info.abbreviated.contains(&a) {
            info.abbreviated.push(a);
        }
    }
    for f in m.files {
        if !info.files.contains(&f) {
            info.files.push(f);
        }
    }
    if info.repository.is_none() {
        info.repository = m.repository;
    }
}

fn boxed(a: Additive) -> Option<Box<Additive>> {
    (!a.is_empty()).then(|| Box::new(a))
}

/// Spans → rows. Agent spans feed their session's facts; other spans are stored for the
/// trace joins (CI runs) with only their `vcs.*` / `cicd.*` attributes.
pub fn traces(req: &ExportTraceServiceRequest) -> Batch {
    let mut batch = Batch::new(Signal::Traces);
    let mut sessions = Sessions::default();
    let unreadable = Unreadable::default();
    for rs in &req.resource_spans {
        let resource = resource_attrs(&rs.resource);
        let service = get_str(resource, "service.name");
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().map_or("", |s| s.name.as_str());
            for span in &ss.spans {
                let ids = TraceId::try_from(&span.trace_id[..]).and_then(|t| {
                    let s = SpanId::try_from(&span.span_id[..])?;
                    let p = if span.parent_span_id.is_empty() {
                        None
                    } else {
                        Some(SpanId::try_from(&span.parent_span_id[..])?)
                    };
                    Ok((t, s, p))
                });
                let (trace_id, span_id, parent_id) = match ids {
                    Ok(ids) => ids,
                    Err(e) => {
                        batch.reject(|| format!("span {:?}: {e}", span.name));
                        continue;
                    }
                };
                let reader = Reader {
                    attrs: &span.attributes,
                    resource,
                    rejected: &unreadable,
                };
                let mut contrib = Contribution::default();
                let emitter = match detect(&span.name, scope, service) {
                    Some(agent) => {
                        if let Some(rule) = agent.span(&span.name) {
                            (rule.apply)(&reader, &mut contrib);
                        }
                        Some(Emitter::Vendor(agent))
                    }
                    None => genai::span(&reader, &mut contrib).then_some(Emitter::GenAi),
                };
                let start_ns = nanos(span.start_time_unix_nano);
                let end_ns = nanos(span.end_time_unix_nano);
                let mut session = None;
                if let Some(emitter) = emitter {
                    if let Some(sha) = reader.str("vcs.ref.head.revision") {
                        super::util::mention_commit(&mut contrib.mentions, sha, "event");
                    }
                    let key = session_key(&reader);
                    session = match key {
                        Some(k) => sessions.get(&mut batch, k),
                        None => sessions.get(&mut batch, &trace_id.to_hex()),
                    };
                    if let Some(i) = session {
                        let info = &mut batch.sessions[i];
                        fill_identity(info, emitter, &reader);
                        note_workflows(info, &reader);
                        info.saw(start_ns);
                        info.saw(end_ns);
                        if !info.traces.contains(&trace_id) {
                            info.traces.push(trace_id);
                        }
                        apply_mentions(info, std::mem::take(&mut contrib.mentions));
                    }
                }
                let attrs = if emitter.is_some() {
                    select_json(&span.attributes, keep_agent_attr)
                } else {
                    select_json(&span.attributes, keep_other_attr)
                };
                batch.spans.push(SpanRow {
                    trace_id,
                    span_id,
                    parent_id,
                    session,
                    name: span.name.clone(),
                    kind: span.kind,
                    start_ns,
                    end_ns,
                    status: span.status.as_ref().map_or(0, |s| s.code),
                    attrs,
                    additive: if session.is_some() {
                        boxed(contrib.additive)
                    } else {
                        None
                    },
                });
                batch.accepted += 1;
            }
        }
    }
    batch.unreadable_values = unreadable.total();
    batch.unreadable_keys = unreadable.take();
    batch
}

/// A log record's event name: the `event.name` attribute, qualified by the body when an
/// agent writes the bare name there (Claude Code: `api_request` / `claude_code.api_request`).
fn event_name<'a>(
    attrs: &'a [KeyValue],
    event_name_field: &'a str,
    body: Option<&'a str>,
) -> &'a str {
    let name = get_str(attrs, "event.name").unwrap_or("");
    if !name.is_empty() {
        if !name.contains('.')
            && let Some(b) = body
            && b.len() > name.len()
            && b.ends_with(name)
            && b[..b.len() - name.len()].ends_with('.')
        {
            return b;
        }
        return name;
    }
    if !event_name_field.is_empty() {
        return event_name_field;
    }
    match body {
        Some(b) if b.len() <= 128 && !b.contains(' ') => b,
        _ => "",
    }
}

fn event_time(record_time: u64, observed: u64, attrs: &[KeyValue]) -> i64 {
    if record_time > 0 {
        return nanos(record_time);
    }
    if let Some(ts) = get_str(attrs, "event.timestamp")
        && let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts)
        && let Some(ns) = t.timestamp_nanos_opt()
    {
        return ns;
    }
    nanos(observed)
}

fn digest16(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

fn resource_digest(r: &Option<Resource>) -> [u8; 16] {
    digest16(&[&r.as_ref().map(|r| r.encode_to_vec()).unwrap_or_default()])
}

/// Log records → rows. A record's identity is a digest of its resource and content, so
/// the same record sent twice is stored and counted once.
pub fn logs(req: &ExportLogsServiceRequest) -> Batch {
    let mut batch = Batch::new(Signal::Logs);
    let mut sessions = Sessions::default();
    let unreadable = Unreadable::default();
    for rl in &req.resource_logs {
        let resource = resource_attrs(&rl.resource);
        let service = get_str(resource, "service.name");
        let rdigest = resource_digest(&rl.resource);
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref().map_or("", |s| s.name.as_str());
            for rec in &sl.log_records {
                let trace_id = match rec.trace_id.len() {
                    0 => None,
                    _ => match TraceId::try_from(&rec.trace_id[..]) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            batch.reject(|| format!("log record: {e}"));
                            continue;
                        }
                    },
                };
                let span_id = match rec.span_id.len() {
                    0 => None,
                    _ => match SpanId::try_from(&rec.span_id[..]) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            batch.reject(|| format!("log record: {e}"));
                            continue;
                        }
                    },
                };
                let body = body_str(rec.body.as_ref());
                let name = event_name(&rec.attributes, &rec.event_name, body);
                let reader = Reader {
                    attrs: &rec.attributes,
                    resource,
                    rejected: &unreadable,
                };
                let mut contrib = Contribution::default();
                let emitter = match detect(name, scope, service) {
                    Some(agent) => {
                        if let Some(rule) = agent.event(name) {
                            (rule.apply)(&reader, &mut contrib);
                        }
                        Some(Emitter::Vendor(agent))
                    }
                    None => genai::event(name, &reader, &mut contrib).then_some(Emitter::GenAi),
                };
                let time_ns = event_time(
                    rec.time_unix_nano,
                    rec.observed_time_unix_nano,
                    &rec.attributes,
                );
                let mut session = None;
                if let Some(emitter) = emitter {
                    session = match (session_key(&reader), trace_id) {
                        (Some(k), _) => sessions.get(&mut batch, k),
                        (None, Some(t)) => sessions.get(&mut batch, &t.to_hex()),
                        (None, None) => None,
                    };
                    if let Some(i) = session {
                        let info = &mut batch.sessions[i];
                        fill_identity(info, emitter, &reader);
                        note_workflows(info, &reader);
                        info.saw(time_ns);
                        if let Some(t) = trace_id
                            && !info.traces.contains(&t)
                        {
                            info.traces.push(t);
                        }
                        apply_mentions(info, std::mem::take(&mut contrib.mentions));
                    }
                }
                let digest = digest16(&[&rdigest, scope.as_bytes(), &rec.encode_to_vec()]);
                batch.logs.push(LogRow {
                    digest,
                    session,
                    time_ns,
                    event: name.to_string(),
                    trace_id,
                    span_id,
                    attrs: if emitter.is_some() {
                        select_json(&rec.attributes, keep_agent_attr)
                    } else {
                        select_json(&rec.attributes, keep_other_attr)
                    },
                    additive: if session.is_some() {
                        boxed(contrib.additive)
                    } else {
                        None
                    },
                });
                batch.accepted += 1;
            }
        }
    }
    batch.unreadable_values = unreadable.total();
    batch.unreadable_keys = unreadable.take();
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    fn mode(attrs: &[KeyValue], resource: &[KeyValue]) -> Option<bool> {
        let rejected = Unreadable::default();
        headless(&Reader {
            attrs,
            resource,
            rejected: &rejected,
        })
    }

    #[test]
    fn a_session_is_headless_when_its_telemetry_says_so() {
        // Gemini CLI's `interactive`, as a boolean or (some exporters) a string.
        assert_eq!(
            mode(&[kv("interactive", Value::BoolValue(false))], &[]),
            Some(true)
        );
        assert_eq!(mode(&[kv("interactive", s("True"))], &[]), Some(false));
        // Codex: the TUI and the editor extension, `codex exec` and the SDK.
        assert_eq!(
            mode(&[kv("originator", s("codex_cli_rs"))], &[]),
            Some(false)
        );
        assert_eq!(
            mode(&[kv("originator", s("codex_vscode"))], &[]),
            Some(false)
        );
        assert_eq!(mode(&[kv("originator", s("codex_exec"))], &[]), Some(true));
        assert_eq!(
            mode(&[kv("originator", s("codex_sdk_ts"))], &[]),
            Some(true)
        );
        assert_eq!(
            mode(&[], &[kv("interactive", s("false"))]),
            Some(true),
            "OTEL_RESOURCE_ATTRIBUTES=interactive=false"
        );
        // A CI run, whatever the agent.
        assert_eq!(
            mode(&[], &[kv("cicd.pipeline.run.id", s("1234"))]),
            Some(true)
        );
        // `interactive` wins over the CI marker (a person debugging in a CI shell).
        assert_eq!(
            mode(
                &[kv("interactive", Value::BoolValue(true))],
                &[kv("cicd.pipeline.name", s("ci"))]
            ),
            Some(false)
        );
        // Claude Code and Droid say nothing.
        assert_eq!(mode(&[kv("terminal.type", s("vscode"))], &[]), None);
        assert_eq!(mode(&[kv("originator", s("someone_else"))], &[]), None);
    }

    #[test]
    fn tools_and_mcp_servers_are_noted_once_each() {
        let mut info = SessionInfo::new(SessionId::parse("s-1").unwrap());
        let rejected = Unreadable::default();
        for attrs in [
            vec![kv("tool_name", s("Bash"))],
            vec![kv("tool_name", s("Bash"))],
            vec![kv("tool_name", s("mcp__github__create_issue"))],
            vec![
                kv("tool.name", s("get_issue")),
                kv("mcp.server", s("linear")),
            ],
            vec![kv("tool_name", s("shell")), kv("mcp_server", s(""))],
            vec![kv("function_name", s(&"x".repeat(129)))],
            vec![
                kv("tool_name", s("Skill")),
                kv("tool_parameters", s(r#"{"skill_name":"pdf"}"#)),
            ],
            vec![
                kv("tool_name", s("Task")),
                kv("tool_parameters", s(r#"{"subagent_type":"code-reviewer"}"#)),
            ],
            // The same sub-agent named by a metric's attribute counts once.
            vec![
                kv("agent.name", s("code-reviewer")),
                kv("skill.name", s("xlsx")),
            ],
            // A Bash call's parameters name no workflow.
            vec![
                kv("tool_name", s("Bash")),
                kv("tool_parameters", s(r#"{"skill_name":"not-a-skill"}"#)),
            ],
            vec![
                kv("event.name", s("user_prompt")),
                kv("command_name", s("review")),
            ],
        ] {
            note_workflows(
                &mut info,
                &Reader {
                    attrs: &attrs,
                    resource: &[],
                    rejected: &rejected,
                },
            );
        }
        let got: Vec<(&str, &str)> = info
            .workflows
            .iter()
            .map(|(k, n)| (*k, n.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("tool", "Bash"),
                ("tool", "mcp__github__create_issue"),
                ("mcp", "github"),
                ("tool", "get_issue"),
                ("mcp", "linear"),
                ("tool", "shell"),
                ("tool", "Skill"),
                ("skill", "pdf"),
                ("tool", "Task"),
                ("subagent", "code-reviewer"),
                ("skill", "xlsx"),
                ("command", "review"),
            ]
        );
    }
}
