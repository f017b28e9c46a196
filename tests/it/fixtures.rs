//! Every vendor fixture, sent over each transport and encoding, yields the totals the
//! fixtures' README documents (normalised to gen_ai token semantics).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::Value;

use super::common::{TestApp, expected_totals, fixture};

/// Every vendor fixture, in the order the tests send them.
pub const FILES: &[&str] = &[
    "claude-code-metrics.json",
    "claude-code-logs.json",
    "claude-code-traces.json",
    "gemini-cli-metrics.json",
    "gemini-cli-logs.json",
    "codex-logs.json",
    "droid-metrics.json",
    "droid-traces.json",
];

#[derive(Clone, Copy, Debug)]
enum Transport {
    HttpJson,
    HttpJsonGzip,
    HttpProtobuf,
    Grpc,
}

fn signal(file: &str) -> &'static str {
    if file.ends_with("-metrics.json") {
        "metrics"
    } else if file.ends_with("-logs.json") {
        "logs"
    } else {
        "traces"
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body).unwrap();
    enc.finish().unwrap()
}

fn protobuf(file: &str, json: &[u8]) -> Vec<u8> {
    match signal(file) {
        "metrics" => serde_json::from_slice::<ExportMetricsServiceRequest>(json)
            .unwrap()
            .encode_to_vec(),
        "logs" => serde_json::from_slice::<ExportLogsServiceRequest>(json)
            .unwrap()
            .encode_to_vec(),
        _ => serde_json::from_slice::<ExportTraceServiceRequest>(json)
            .unwrap()
            .encode_to_vec(),
    }
}

async fn send(app: &TestApp, file: &str, transport: Transport) {
    let json = fixture(file);
    let path = format!("/v1/{}", signal(file));
    let resp = match transport {
        Transport::HttpJson => app.post(&path, "application/json", json, &[]).await,
        Transport::HttpJsonGzip => {
            app.post(
                &path,
                "application/json",
                gzip(&json),
                &[("content-encoding", "gzip")],
            )
            .await
        }
        Transport::HttpProtobuf => {
            app.post(&path, "application/x-protobuf", protobuf(file, &json), &[])
                .await
        }
        Transport::Grpc => {
            let endpoint = app.grpc.clone();
            match signal(file) {
                "metrics" => {
                    let req: ExportMetricsServiceRequest = serde_json::from_slice(&json).unwrap();
                    let mut c = MetricsServiceClient::connect(endpoint).await.unwrap();
                    let r = c.export(req).await.expect("grpc export").into_inner();
                    assert!(r.partial_success.is_none(), "{file}: {r:?}");
                }
                "logs" => {
                    let req: ExportLogsServiceRequest = serde_json::from_slice(&json).unwrap();
                    let mut c = LogsServiceClient::connect(endpoint).await.unwrap();
                    let r = c.export(req).await.expect("grpc export").into_inner();
                    assert!(r.partial_success.is_none(), "{file}: {r:?}");
                }
                _ => {
                    let req: ExportTraceServiceRequest = serde_json::from_slice(&json).unwrap();
                    let mut c = TraceServiceClient::connect(endpoint).await.unwrap();
                    let r = c.export(req).await.expect("grpc export").into_inner();
                    assert!(r.partial_success.is_none(), "{file}: {r:?}");
                }
            }
            return;
        }
    };
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, 200, "{file} over {transport:?}: {body:?}");
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn assert_tokens(session: &Value, model: &str, want: [i64; 5]) {
    let t = &session["tokens_by_model"][model];
    let got = [
        n(&t["input"]),
        n(&t["output"]),
        n(&t["cache_read"]),
        n(&t["cache_creation"]),
        n(&t["reasoning"]),
    ];
    assert_eq!(
        got, want,
        "{model} tokens [input, output, cache_read, cache_creation, reasoning]"
    );
}

async fn assert_documented_totals(app: &TestApp) {
    let totals = expected_totals();

    // Claude Code: Anthropic's input excludes cache reads and writes; normalised input adds them.
    let t = &totals["claude-code"];
    let s = app.session(t["session_id"].as_str().unwrap()).await;
    assert_eq!(s["agent"], "claude-code");
    assert_eq!(s["agent_version"], t["service_version"]);
    assert_eq!(s["user"]["email"], t["user_email"]);
    assert_eq!(s["started_at"], t["start"]);
    for (model, tk) in t["tokens_by_model"].as_object().unwrap() {
        let (i, o, cr, cc) = (
            n(&tk["input"]),
            n(&tk["output"]),
            n(&tk["cacheRead"]),
            n(&tk["cacheCreation"]),
        );
        assert_tokens(&s, model, [i + cr + cc, o, cr, cc, 0]);
    }
    assert_eq!(s["cost_usd"].as_f64(), t["cost_usd"].as_f64());
    assert_eq!(s["cost_estimated"], false);
    assert_eq!(s["llm_requests"], t["api_requests"]);
    assert_eq!(s["lines_added"], t["lines_added"]);
    assert_eq!(s["lines_removed"], t["lines_removed"]);
    assert_eq!(s["commits_reported"], t["commits"]);
    assert_eq!(s["pull_requests_reported"], t["pull_requests"]);
    assert_eq!(s["tool_invocations"], t["tool_calls"]);
    assert_eq!(s["tool_failures"], t["tool_calls_failed"]);
    assert_eq!(s["tool_rejections"], t["tool_calls_rejected"]);
    assert_eq!(s["prompts"], t["prompts"]);
    let active =
        t["active_time_s"]["user"].as_f64().unwrap() + t["active_time_s"]["cli"].as_f64().unwrap();
    assert!((s["active_seconds"].as_f64().unwrap() - active).abs() < 1e-6);
    assert_eq!(s["commits"], t["commit_shas"]);
    assert_eq!(
        s["counters"]["edits_accepted"]["value"].as_f64(),
        t["edit_decisions"]["accept"].as_f64()
    );
    assert_eq!(
        s["trace_ids"].as_array().unwrap().len() as i64,
        n(&t["traces"])
    );
    for tp in t["commit_traceparents"].as_object().unwrap().values() {
        let trace = tp.as_str().unwrap().split('-').nth(1).unwrap();
        assert!(
            s["trace_ids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == trace),
            "trace {trace} of a commit's TRACEPARENT belongs to the session"
        );
    }

    // Gemini CLI: cumulative metrics count once; input includes cache; thought adds to output.
    let t = &totals["gemini-cli"];
    let s = app.session(t["session_id"].as_str().unwrap()).await;
    assert_eq!(s["agent"], "gemini-cli");
    assert_eq!(s["user"]["email"], t["user_email"]);
    assert_eq!(s["started_at"], t["start"]);
    assert_eq!(s["ended_at"], t["end"]);
    for (model, tk) in t["tokens_by_model"].as_object().unwrap() {
        let thought = n(&tk["thought"]);
        assert_tokens(
            &s,
            model,
            [
                n(&tk["input"]) + n(&tk["tool"]),
                n(&tk["output"]) + thought,
                n(&tk["cache"]),
                0,
                thought,
            ],
        );
    }
    assert_eq!(s["llm_requests"], t["api_requests"]);
    assert_eq!(s["lines_added"], t["lines"]["model_added"]);
    assert_eq!(s["lines_removed"], t["lines"]["model_removed"]);
    assert_eq!(s["user_lines_added"], t["lines"]["user_added"]);
    assert_eq!(s["user_lines_removed"], t["lines"]["user_removed"]);
    assert_eq!(s["tool_invocations"], t["tool_calls"]);
    assert_eq!(s["prompts"], t["prompts"]);
    assert_eq!(s["commits"], serde_json::json!([]));
    assert_eq!(
        s["cost_estimated"], true,
        "no cost reported: estimated from prices"
    );
    assert!(s["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(s["active_seconds"], Value::Null);

    // Codex: logs only, times from event.timestamp, OpenAI usage semantics.
    let t = &totals["codex"];
    let s = app.session(t["conversation_id"].as_str().unwrap()).await;
    assert_eq!(s["agent"], "codex");
    assert_eq!(s["user"]["email"], t["user_email"]);
    assert_eq!(s["user"]["id"], t["user_account_id"]);
    let tk = &t["tokens"];
    assert_tokens(
        &s,
        t["model"].as_str().unwrap(),
        [
            n(&tk["input_token_count"]) + n(&tk["tool_token_count"]),
            n(&tk["output_token_count"]),
            n(&tk["cached_token_count"]),
            0,
            n(&tk["reasoning_token_count"]),
        ],
    );
    assert_eq!(s["llm_requests"], t["api_requests"]);
    assert_eq!(s["tool_invocations"], t["tool_calls"]);
    assert_eq!(s["prompts"], t["prompts"]);
    let patch = &t["patch_lines_derivable_from_apply_patch_arguments"];
    assert_eq!(s["lines_added"], patch["added"]);
    assert_eq!(s["lines_removed"], patch["removed"]);
    assert_eq!(s["cost_estimated"], true);
    assert!(s["started_at"].as_str().unwrap() >= t["start"].as_str().unwrap());
    assert!(s["ended_at"].as_str().unwrap() <= t["end"].as_str().unwrap());

    // Droid: no tokens, no cost, lines modified without a split, repository from metadata.
    let t = &totals["droid"];
    let s = app.session(t["session_id"].as_str().unwrap()).await;
    assert_eq!(s["agent"], "droid");
    assert_eq!(s["user"]["id"], t["user_id"]);
    assert_eq!(s["organization"], t["organization_id"]);
    assert_eq!(s["repository"], t["repository_from_repo_metadata"]);
    assert_eq!(s["started_at"], t["start"]);
    assert_eq!(s["tokens"], Value::Null);
    assert_eq!(s["cost_usd"], Value::Null);
    assert_eq!(s["files_read"], t["files_read"]);
    assert_eq!(s["files_modified"], t["files_modified"]);
    assert_eq!(s["lines_modified"], t["lines_modified"]);
    assert_eq!(s["lines_added"], Value::Null);
    assert_eq!(s["commits_reported"], t["commits"]);
    assert_eq!(s["pull_requests_reported"], t["pull_requests"]);
    assert_eq!(s["tool_invocations"], t["tool_invocations"]);
    assert_eq!(
        s["counters"]["mcp_tool_invocations"]["value"].as_f64(),
        t["mcp_tool_invocations"].as_f64()
    );
    assert_eq!(
        s["counters"]["tool_execution_ms"]["value"].as_f64(),
        t["tool_execution_ms_sum"].as_f64()
    );
    assert_eq!(s["prompts"], t["user_messages"]);
    assert_eq!(
        s["trace_ids"].as_array().unwrap().len() as i64,
        n(&t["traces"])
    );

    let (status, list) = app.get_json("/api/v1/sessions").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            t["session_id"].as_str().unwrap(),
            totals["codex"]["conversation_id"].as_str().unwrap(),
            totals["gemini-cli"]["session_id"].as_str().unwrap(),
            totals["claude-code"]["session_id"].as_str().unwrap(),
        ],
        "newest first"
    );
}

async fn fixtures_over(transport: Transport) {
    let mut app = TestApp::spawn().await;
    for f in FILES {
        send(&app, f, transport).await;
    }
    assert_documented_totals(&app).await;
    // A re-sent export (a retry after a lost response) counts nothing twice.
    for f in FILES {
        send(&app, f, transport).await;
    }
    assert_documented_totals(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn fixtures_yield_documented_totals_over_http_json() {
    fixtures_over(Transport::HttpJson).await;
}

#[tokio::test]
async fn fixtures_yield_documented_totals_over_http_json_gzip() {
    fixtures_over(Transport::HttpJsonGzip).await;
}

#[tokio::test]
async fn fixtures_yield_documented_totals_over_http_protobuf() {
    fixtures_over(Transport::HttpProtobuf).await;
}

#[tokio::test]
async fn fixtures_yield_documented_totals_over_grpc() {
    fixtures_over(Transport::Grpc).await;
}

#[tokio::test]
async fn arrival_order_does_not_change_the_facts() {
    let mut app = TestApp::spawn().await;
    for f in FILES.iter().rev() {
        send(&app, f, Transport::HttpProtobuf).await;
    }
    assert_documented_totals(&app).await;
    app.stop().await;
}

/// Per-person views are off unless asked for: the `?user=` filter is refused.
#[tokio::test]
async fn filtering_by_person_needs_people_on() {
    let mut app = TestApp::spawn().await;
    send(&app, FILES[0], Transport::HttpJson).await;
    let (status, body) = app.get_json("/api/v1/sessions?user=dev@acme.example").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--people on"),
        "{body}"
    );
    let (status, _) = app.get_json("/api/v1/sessions?agent=codex").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn session_list_filters_and_paginates() {
    let mut app = TestApp::spawn_with(|a| a.people = tracelink::config::OnOff::On).await;
    for f in FILES {
        send(&app, f, Transport::HttpJson).await;
    }
    let (_, by_agent) = app.get_json("/api/v1/sessions?agent=codex").await;
    assert_eq!(by_agent["sessions"].as_array().unwrap().len(), 1);
    let (_, by_repo) = app.get_json("/api/v1/sessions?repo=acme/widgets").await;
    assert_eq!(by_repo["sessions"][0]["agent"], "droid");
    let (_, by_user) = app.get_json("/api/v1/sessions?user=dev@acme.example").await;
    assert_eq!(by_user["sessions"].as_array().unwrap().len(), 3);
    let (_, since) = app
        .get_json("/api/v1/sessions?since=2026-11-20T10:00:00Z")
        .await;
    assert_eq!(since["sessions"].as_array().unwrap().len(), 2);

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .get_json(&format!("/api/v1/sessions?limit=1&cursor={cursor}"))
            .await;
        assert_eq!(status, 200);
        for s in page["sessions"].as_array().unwrap() {
            seen.push(s["session_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "every session once: {seen:?}");

    let (status, body) = app.get_json("/api/v1/sessions?since=yesterday").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("since"));
    let (status, body) = app.get_json("/api/v1/sessions/no-such-session").await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("no-such-session"));
    app.stop().await;
}

/// The first half of every scope's records, as a request of its own.
fn first_half(file: &str, json: &[u8]) -> Vec<u8> {
    match signal(file) {
        "logs" => {
            let mut req: ExportLogsServiceRequest = serde_json::from_slice(json).unwrap();
            for scope in req.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs) {
                scope.log_records.truncate(scope.log_records.len() / 2);
            }
            req.encode_to_vec()
        }
        "traces" => {
            let mut req: ExportTraceServiceRequest = serde_json::from_slice(json).unwrap();
            for scope in req
                .resource_spans
                .iter_mut()
                .flat_map(|r| &mut r.scope_spans)
            {
                scope.spans.truncate(scope.spans.len() / 2);
            }
            req.encode_to_vec()
        }
        _ => protobuf(file, json),
    }
}

/// A retry that carries records already stored beside new ones (an exporter that
/// batched differently the second time) stores and counts only the new ones.
#[tokio::test]
async fn a_partly_resent_export_counts_only_its_new_records() {
    let mut app = TestApp::spawn().await;
    for f in FILES {
        let half = first_half(f, &fixture(f));
        let r = app
            .post(
                &format!("/v1/{}", signal(f)),
                "application/x-protobuf",
                half,
                &[],
            )
            .await;
        assert_eq!(r.status(), 200, "{f}");
    }
    let records = app.count("raw_records").await;
    for f in FILES {
        send(&app, f, Transport::HttpProtobuf).await;
    }
    assert_documented_totals(&app).await;
    // Each request that brought something new is one record; a pure repeat none.
    assert!(app.count("raw_records").await > records);
    let before = app.count("raw_records").await;
    for f in FILES {
        send(&app, f, Transport::HttpProtobuf).await;
    }
    assert_eq!(
        app.count("raw_records").await,
        before,
        "a repeat keeps nothing"
    );
    assert_documented_totals(&app).await;
    app.stop().await;
}
