//! Agent telemetry in the forms agents send today, through the real OTLP/HTTP endpoint:
//!
//! - Claude Code 2.1 `tool_result` events with `OTEL_LOG_TOOL_DETAILS=1` (the commit as
//!   `vcs.ref.head.revision`, `tool_parameters` carrying `bash_command` and an
//!   abbreviated `git_commit_id`) and `OTEL_METRICS_INCLUDE_REPOSITORY=true`
//!   (`vcs.repository.url.full` on the resource) — written from Anthropic's "Monitoring"
//!   page (docs.anthropic.com/en/docs/claude-code/monitoring-usage, event attributes) and
//!   the OpenTelemetry VCS semantic conventions (`vcs.ref.head.*`, `vcs.repository.*`);
//! - `tool_parameters` as a `kvlistValue`, as a collector's JSON-parsing processor leaves
//!   it;
//! - gen_ai spans with the pre-rename usage names (`gen_ai.usage.prompt_tokens`,
//!   `completion_tokens`, `cache_read_input_tokens`) and numbers sent as strings, per the
//!   OpenTelemetry GenAI semantic conventions' history (semantic-conventions v1.26 →
//!   v1.27 renamed prompt/completion to input/output).

use serde_json::{Value, json};

use super::common::TestApp;
use super::links::{kv, linked};
use super::reports::{Commit, REPO, SECRET, ZERO, deliver, push};

const FULL: &str = "7f3a9c1e2b4d5f60718293a4b5c6d7e8f9012345";
const TWIN: &str = "7f3a9c1ffffffffffffffffffffffffffffffff0";
const OTHER: &str = "0badc0de00000000000000000000000000000000";

fn commit<'a>(sha: &'a str, at: &'a str) -> Commit<'a> {
    Commit {
        sha,
        message: "Retry with backoff",
        at,
        email: "dev@acme.example",
        login: "dev",
        files: &["src/retry.rs"],
    }
}

/// A Claude Code 2.1 `tool_result` event; `params` is the `tool_parameters` value.
fn tool_result(
    session: &str,
    params: Value,
    head: Option<&str>,
    repository: Option<&str>,
) -> Value {
    let mut resource = vec![kv("service.name", "claude-code")];
    if let Some(r) = repository {
        resource.push(kv("vcs.repository.url.full", r));
    }
    let mut attrs = vec![
        kv("event.name", "tool_result"),
        kv("session.id", session),
        kv("user.email", "dev@acme.example"),
        kv("tool_name", "Bash"),
        kv("success", "true"),
        json!({"key": "tool_parameters", "value": params}),
    ];
    if let Some(h) = head {
        attrs.push(kv("vcs.ref.head.revision", h));
        attrs.push(kv("vcs.ref.head.name", "retry"));
        attrs.push(kv("vcs.ref.head.type", "branch"));
    }
    json!({"resourceLogs": [{"resource": {"attributes": resource},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": [{
            "timeUnixNano": "1763632800000000000",
            "body": {"stringValue": "claude_code.tool_result"},
            "attributes": attrs}]}]}]})
}

async fn post(app: &TestApp, path: &str, body: &Value) -> Value {
    let r = app
        .post(path, "application/json", body.to_string().into_bytes(), &[])
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap_or(Value::Null)
}

fn event(key: &str) -> Vec<(String, String)> {
    vec![(key.to_string(), "event".to_string())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_names_its_commits_in_every_form_it_sends() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    deliver(
        &app,
        "push",
        "p1",
        &push(
            "refs/heads/retry",
            ZERO,
            &[commit(FULL, "2026-11-20T10:00:00Z")],
        ),
    )
    .await;
    app.applied(1).await;

    // 2.1 with tool details: a kvlist `tool_parameters` (a collector parsed it) with an
    // abbreviated id, and the full SHA on `vcs.ref.head.revision`.
    let params = json!({"kvlistValue": {"values": [
        kv("bash_command", "git commit -m 'Retry with backoff'"),
        kv("git_commit_id", &FULL[..7]),
    ]}});
    post(
        &app,
        "/v1/logs",
        &tool_result(
            "claude-head",
            params,
            Some(FULL),
            Some("https://github.com/acme/widgets"),
        ),
    )
    .await;
    assert_eq!(linked(&app, FULL).await, event("claude-head"));
    let s = app.session("claude-head").await;
    assert_eq!(s["repository"], "acme/widgets", "{s}");
    assert_eq!(s["branch"], "retry", "{s}");
    // What the tool ran is read, never stored.
    let stored = app.db().raw_records().await.unwrap().join("\n");
    assert!(
        stored.contains("tool_result"),
        "the event is kept: {stored}"
    );
    assert!(
        !stored.contains("git commit"),
        "no command line is kept: {stored}"
    );
    assert!(!stored.contains("bash_command"), "{stored}");

    // A HEAD on a tool that did not commit is where the session stands, not evidence.
    let params = json!({"stringValue": json!({"bash_command": "cargo test"}).to_string()});
    post(
        &app,
        "/v1/logs",
        &tool_result(
            "claude-stands",
            params,
            Some(FULL),
            Some("https://github.com/acme/widgets"),
        ),
    )
    .await;
    assert_eq!(linked(&app, FULL).await, event("claude-head"));
    // What the tools ran is read, never stored (the JSON string form included).
    let stored = app.db().raw_records().await.unwrap().join("\n");
    assert_eq!(app.stored("logs").await, 2, "both events kept");
    for command in ["git commit", "cargo test", "bash_command"] {
        assert!(!stored.contains(command), "{command} is not kept: {stored}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abbreviated_sha_links_only_while_it_names_one_commit_of_the_repository() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    let abbreviated = |id: &str| json!({"stringValue": json!({"git_commit_id": id, "bash_command": "git log"}).to_string()});
    // The telemetry first: the commit arrives later.
    post(
        &app,
        "/v1/logs",
        &tool_result(
            "claude-abbrev",
            abbreviated("7f3a9c1"),
            None,
            Some("git@github.com:acme/widgets.git"),
        ),
    )
    .await;
    // The same abbreviation from a session whose repository is unknown: never a link.
    post(
        &app,
        "/v1/logs",
        &tool_result("claude-nowhere", abbreviated("7f3a9c1"), None, None),
    )
    .await;
    deliver(
        &app,
        "push",
        "p1",
        &push(
            "refs/heads/retry",
            ZERO,
            &[commit(FULL, "2026-11-20T10:00:00Z")],
        ),
    )
    .await;
    app.applied(1).await;
    assert_eq!(linked(&app, FULL).await, event("claude-abbrev"));
    let (_, c) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{FULL}"))
        .await;
    assert!(
        c["sessions"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("7f3a9c1"),
        "{c}"
    );

    // A second commit with the same prefix: the abbreviation names neither any more.
    deliver(
        &app,
        "push",
        "p2",
        &push(
            "refs/heads/other",
            ZERO,
            &[commit(TWIN, "2026-11-20T11:00:00Z")],
        ),
    )
    .await;
    app.applied(2).await;
    assert_eq!(linked(&app, FULL).await, vec![]);
    assert_eq!(linked(&app, TWIN).await, vec![]);
    // Unrelated commits are untouched.
    deliver(
        &app,
        "push",
        "p3",
        &push(
            "refs/heads/third",
            ZERO,
            &[commit(OTHER, "2026-11-20T12:00:00Z")],
        ),
    )
    .await;
    app.applied(3).await;
    assert_eq!(linked(&app, OTHER).await, vec![]);
    app.stop().await;
}

/// A gen_ai span as an older SDK sends it: `prompt_tokens` / `completion_tokens`, the
/// underscored cache name, numbers as strings (one a decimal), and one garbage value.
#[tokio::test]
async fn gen_ai_usage_under_old_names_and_any_encoding() {
    let mut app = TestApp::spawn().await;
    let span = |id: u32, attrs: Vec<Value>| {
        json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": format!("{id:0>16x}"),
            "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": "1763632800000000000", "endTimeUnixNano": "1763632801000000000",
            "attributes": attrs})
    };
    let body = json!({"resourceSpans": [{"resource": {"attributes": [kv("service.name", "acme-agent")]},
    "scopeSpans": [{"scope": {"name": "acme-agent"}, "spans": [
        span(1, vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.conversation.id", "conv-old-names"),
            kv("gen_ai.request.model", "gpt-4o"),
            json!({"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "420"}}),
            kv("gen_ai.usage.completion_tokens", "1200.0"),
            kv("gen_ai.usage.cache_read_input_tokens", "100"),
        ]),
        span(2, vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.conversation.id", "conv-old-names"),
            kv("gen_ai.request.model", "gpt-4o"),
            json!({"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": 80.0}}),
            kv("gen_ai.usage.output_tokens", "n/a"),
        ]),
    ]}]}]});
    let reply = post(&app, "/v1/traces", &body).await;
    let message = reply["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("gen_ai.usage.output_tokens (1)"),
        "the refused value is named: {reply}"
    );
    assert!(message.contains("records were kept"), "{reply}");
    let s = app.session("conv-old-names").await;
    assert_eq!(s["tokens"]["input"], 500, "{s}");
    assert_eq!(s["tokens"]["output"], 1200, "{s}");
    assert_eq!(s["tokens"]["cache_read"], 100, "{s}");
    assert_eq!(s["llm_requests"], 2, "both records kept: {s}");
    app.stop().await;
}

/// A gen_ai `invoke_agent` span names its repository and the commit it made through
/// `vcs.*` (OpenTelemetry VCS conventions): the session gets the repository and an exact
/// link. Copilot's `github.copilot.git.commit_sha` is the commit the session started
/// from: never evidence that it made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_agent_spans_name_repository_and_commit_but_a_starting_commit_is_no_evidence() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    deliver(
        &app,
        "push",
        "p1",
        &push(
            "refs/heads/retry",
            ZERO,
            &[
                commit(FULL, "2026-11-20T10:00:00Z"),
                commit(OTHER, "2026-11-20T10:05:00Z"),
            ],
        ),
    )
    .await;
    app.applied(1).await;
    let span = |conversation: &str, attrs: Vec<Value>| {
        let mut all = vec![
            kv("gen_ai.operation.name", "invoke_agent"),
            kv("gen_ai.conversation.id", conversation),
            kv("gen_ai.agent.name", "acme-agent"),
        ];
        all.extend(attrs);
        json!({"resourceSpans": [{"resource": {"attributes": [kv("service.name", "acme-agent")]},
            "scopeSpans": [{"scope": {"name": "acme-agent"}, "spans": [{
                "traceId": format!("{:0>32x}", conversation.len()), "spanId": "00000000000000a1",
                "name": "invoke_agent acme-agent", "kind": 1,
                "startTimeUnixNano": "1763632800000000000", "endTimeUnixNano": "1763633100000000000",
                "attributes": all}]}]}]})
    };
    post(
        &app,
        "/v1/traces",
        &span(
            "conv-invoke",
            vec![
                kv("vcs.repository.url.full", "https://github.com/acme/widgets"),
                kv("vcs.ref.head.name", "retry"),
                kv("vcs.ref.head.revision", FULL),
            ],
        ),
    )
    .await;
    post(
        &app,
        "/v1/traces",
        &span(
            "conv-copilot",
            vec![
                kv("vcs.repository.url.full", "https://github.com/acme/widgets"),
                kv("github.copilot.git.commit_sha", OTHER),
            ],
        ),
    )
    .await;
    assert_eq!(linked(&app, FULL).await, event("conv-invoke"));
    assert_eq!(linked(&app, OTHER).await, vec![]);
    let s = app.session("conv-invoke").await;
    assert_eq!(s["repository"], "acme/widgets", "{s}");
    assert_eq!(s["branch"], "retry", "{s}");
    // A session naming no branch has none.
    assert_eq!(app.session("conv-copilot").await["branch"], Value::Null);
    app.stop().await;
}
