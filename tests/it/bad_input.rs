//! Bad input gets the right code and a message naming the problem, stores nothing,
//! and leaves the server healthy.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::{Value, json};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;

use super::common::{TestApp, fixture};

async fn nothing_stored_and_healthy(app: &TestApp) {
    for table in ["spans", "log_events", "metric_points", "sessions"] {
        assert_eq!(app.count(table).await, 0, "{table} must stay empty");
    }
    let resp = app
        .client
        .get(format!("{}/healthz", app.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// A gRPC codec sending bytes as they are: messages no client library would send.
#[derive(Clone, Default)]
struct Raw;
impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}
impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

fn traces_pb() -> Vec<u8> {
    serde_json::from_slice::<ExportTraceServiceRequest>(&fixture("claude-code-traces.json"))
        .unwrap()
        .encode_to_vec()
}

#[tokio::test]
async fn garbage_protobuf_is_400_naming_the_message() {
    let mut app = TestApp::spawn().await;
    let resp = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            b"\xff\xff\xff garbage".to_vec(),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let status = tracelink::otlp::status::RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(
        status.message.contains("ExportTraceServiceRequest"),
        "{}",
        status.message
    );
    nothing_stored_and_healthy(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_and_bad_ids_are_400() {
    let mut app = TestApp::spawn().await;
    let resp = app
        .post(
            "/v1/logs",
            "application/json",
            b"{\"resourceLogs\": [".to_vec(),
            &[],
        )
        .await;
    let (status, msg) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(msg.contains("OTLP/JSON ExportLogsServiceRequest"), "{msg}");

    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "00000000000000000000000000000000", "spanId": "0102030405060708", "name": "x"}
    ]}]}]});
    let resp = app
        .post(
            "/v1/traces",
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    let (status, msg) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(msg.contains("trace id must not be all zeros"), "{msg}");
    nothing_stored_and_healthy(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn some_bad_spans_are_a_partial_success() {
    let mut app = TestApp::spawn().await;
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "good",
         "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7e", "name": "short id"}
    ]}]}]});
    let resp = app
        .post(
            "/v1/traces",
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    // int64 may be a JSON number or string in OTLP/JSON.
    assert_eq!(
        body["partialSuccess"]["rejectedSpans"]
            .to_string()
            .trim_matches('"'),
        "1"
    );
    let msg = body["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("\"short id\": span id must be 8 bytes, got 4"),
        "{msg}"
    );
    assert_eq!(app.stored("traces").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn unreadable_numbers_are_left_out_and_reported() {
    let mut app = TestApp::spawn().await;
    let body = json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "codex_cli_rs"}}]},
      "scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1795169300455000000", "attributes": [
            {"key": "event.name", "value": {"stringValue": "codex.sse_event"}},
            {"key": "event.kind", "value": {"stringValue": "response.completed"}},
            {"key": "conversation.id", "value": {"stringValue": "conv-1"}},
            {"key": "model", "value": {"stringValue": "gpt-5"}},
            {"key": "input_token_count", "value": {"stringValue": "12O40"}},
            {"key": "output_token_count", "value": {"stringValue": "936"}}]}]}]}]});
    let resp = app
        .post(
            "/v1/logs",
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let msg = body["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("1 attribute values could not be read"),
        "{msg}"
    );
    let s = app.session("conv-1").await;
    assert_eq!(
        s["tokens"]["input"], 0,
        "the malformed count is not guessed"
    );
    assert_eq!(s["tokens"]["output"], 936);
    app.stop().await;
}

#[tokio::test]
async fn truncated_gzip_is_400() {
    let mut app = TestApp::spawn().await;
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&traces_pb()).unwrap();
    let mut gz = enc.finish().unwrap();
    gz.truncate(gz.len() / 2);
    let resp = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            gz,
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let status = tracelink::otlp::status::RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert!(status.message.contains("gzip"), "{}", status.message);
    nothing_stored_and_healthy(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_content_type_and_encoding_are_415() {
    let mut app = TestApp::spawn().await;
    let resp = app.post("/v1/traces", "text/plain", traces_pb(), &[]).await;
    let (status, msg) = error_of(resp).await;
    assert_eq!(status, 415);
    assert!(msg.contains("text/plain"), "{msg}");
    let resp = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            traces_pb(),
            &[("content-encoding", "br")],
        )
        .await;
    assert_eq!(resp.status(), 415);
    nothing_stored_and_healthy(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_compressed_or_inflated() {
    let mut app = TestApp::spawn_with(|a| a.max_body_bytes = 4096).await;
    let body = traces_pb();
    assert!(body.len() > 4096);
    let resp = app
        .post("/v1/traces", "application/x-protobuf", body.clone(), &[])
        .await;
    assert_eq!(resp.status(), 413);
    // Answered as every OTLP error: a google.rpc.Status in the request's encoding.
    assert_eq!(
        resp.headers()["content-type"],
        "application/x-protobuf",
        "not axum's text/plain"
    );
    let status = tracelink::otlp::status::RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert!(
        status.message.contains("limit of 4096 bytes"),
        "{}",
        status.message
    );
    let big_json =
        serde_json::to_vec(&json!({"resourceSpans": [], "pad": "x".repeat(8192)})).unwrap();
    let resp = app
        .post("/v1/traces", "application/json", big_json, &[])
        .await;
    let (code, msg) = error_of(resp).await;
    assert_eq!(code, 413);
    assert!(msg.contains("limit of 4096 bytes"), "{msg}");
    // A small gzip body that inflates past the limit (a zip bomb) is refused too.
    use std::io::Write;
    let bomb = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "x",
        "attributes": [{"key": "k", "value": {"stringValue": "a".repeat(1 << 20)}}]}]}]}]});
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bomb.to_string().as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    assert!(gz.len() < 4096);
    let resp = app
        .post(
            "/v1/traces",
            "application/json",
            gz,
            &[("content-encoding", "gzip")],
        )
        .await;
    let status = resp.status();
    let msg = resp.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(status, 413, "{msg}");
    assert!(msg.contains("exceeds the limit of 4096 bytes"), "{msg}");
    // gRPC refuses a message over the limit before decoding it.
    let req: ExportTraceServiceRequest =
        serde_json::from_slice(&fixture("claude-code-traces.json")).unwrap();
    let mut c = TraceServiceClient::connect(app.grpc.clone()).await.unwrap();
    let err = c.export(req).await.unwrap_err();
    // Not retryable: RESOURCE_EXHAUSTED without RetryInfo (OUT_OF_RANGE would make an
    // OTLP client send the same oversized batch again).
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.details().is_empty(), "no RetryInfo");
    nothing_stored_and_healthy(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let mut app = TestApp::spawn_with(|a| {
        a.ingest_tokens = vec!["old-token".parse().unwrap(), "new-token".parse().unwrap()];
        a.read_tokens = vec!["read-token".parse().unwrap()];
    })
    .await;
    let resp = app
        .post("/v1/traces", "application/x-protobuf", traces_pb(), &[])
        .await;
    assert_eq!(resp.status(), 401);
    let resp = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            traces_pb(),
            &[("authorization", "Bearer wrong")],
        )
        .await;
    assert_eq!(resp.status(), 401);
    let (status, _) = app.get_json("/api/v1/sessions").await;
    assert_eq!(status, 401, "the query API needs a token too");
    // Scopes: the token every laptop holds to send telemetry cannot read, and a read
    // token cannot send.
    let read = |token: &'static str| {
        app.client
            .get(format!("{}/api/v1/sessions", app.http))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(read("new-token").await.unwrap().status(), 401);
    assert_eq!(read("read-token").await.unwrap().status(), 200);
    let resp = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            traces_pb(),
            &[("authorization", "Bearer read-token")],
        )
        .await;
    assert_eq!(resp.status(), 401, "a read token cannot send");

    let req: ExportTraceServiceRequest =
        serde_json::from_slice(&fixture("claude-code-traces.json")).unwrap();
    let mut c = TraceServiceClient::connect(app.grpc.clone()).await.unwrap();
    let err = c.export(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    nothing_stored_and_healthy(&app).await;

    // Either of the configured tokens works (rotation), on both transports.
    let resp = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            traces_pb(),
            &[("authorization", "Bearer new-token")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let mut r = tonic::Request::new(req);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::from_static("Bearer old-token"),
    );
    c.export(r).await.expect("authorised gRPC export");
    assert_eq!(app.stored("traces").await, 64);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_answers_429_with_retry_after() {
    let mut app = TestApp::spawn_with(|a| {
        a.queue_capacity = 1;
    })
    .await;
    // Another process holding the write lock stalls the writer: one request is in
    // the writer, one waits in the queue, the rest must be refused at once.
    let blocker = tracelink::store::testing::WriteLock::acquire(&app.location())
        .await
        .unwrap();

    let mut pending = Vec::new();
    for n in 0..6u8 {
        let (client, url) = (app.client.clone(), format!("{}/v1/traces", app.http));
        let mut req: ExportTraceServiceRequest =
            serde_json::from_slice(&fixture("claude-code-traces.json")).unwrap();
        // Distinct spans per request.
        for rs in &mut req.resource_spans {
            for ss in &mut rs.scope_spans {
                for s in &mut ss.spans {
                    s.trace_id[0] = n + 1;
                }
            }
        }
        pending.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("content-type", "application/x-protobuf")
                .body(req.encode_to_vec())
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry)
        }));
    }
    // Refusals come back while the writer is still stalled.
    let mut refused = 0;
    let mut waiting = Vec::new();
    for p in pending {
        if p.is_finished() {
            let (status, retry) = p.await.unwrap();
            assert_eq!(status, 429);
            assert_eq!(retry.as_deref(), Some("1"));
            refused += 1;
        } else {
            waiting.push(p);
        }
    }
    let mut tries = 0;
    while waiting.len() > 2 && tries < 2000 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (done, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|p| p.is_finished());
        for p in done {
            let (status, retry) = p.await.unwrap();
            assert_eq!(status, 429);
            assert_eq!(retry.as_deref(), Some("1"));
            refused += 1;
        }
        waiting = rest;
        tries += 1;
    }
    assert!(
        refused >= 4,
        "with one request writing and one queued, the others are refused ({refused})"
    );
    blocker.release().await.unwrap();
    let mut accepted = 0;
    for p in waiting {
        let (status, _) = p.await.unwrap();
        assert_eq!(
            status, 200,
            "queued requests are stored once the writer resumes"
        );
        accepted += 1;
    }
    assert_eq!(app.stored("traces").await, 64 * accepted);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "tracelink_requests_refused_total{{signal=\"traces\"}} {refused}"
        )),
        "{metrics}"
    );
    app.stop().await;
}

/// `gzip(a) ‖ gzip(b)` is one valid gzip stream (RFC 1952): every member is read, so
/// nothing acknowledged is dropped.
#[tokio::test]
async fn every_member_of_a_multi_member_gzip_body_is_read() {
    use std::io::Write;
    let mut app = TestApp::spawn().await;
    let gz = |body: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(body).unwrap();
        enc.finish().unwrap()
    };
    // Two halves of the fixture's spans, each a request of its own, one body.
    let all: ExportTraceServiceRequest =
        serde_json::from_slice(&fixture("claude-code-traces.json")).unwrap();
    let total: usize = all
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert!(total >= 2, "the fixture has spans to split");
    let mut first = all.clone();
    let mut second = all.clone();
    for rs in &mut first.resource_spans {
        for ss in &mut rs.scope_spans {
            let half = ss.spans.len() / 2;
            ss.spans.truncate(half);
        }
    }
    for rs in &mut second.resource_spans {
        for ss in &mut rs.scope_spans {
            let half = ss.spans.len() / 2;
            ss.spans.drain(..half);
        }
    }
    // Protobuf messages concatenate into their merge: the two members make the whole.
    let mut body = gz(&first.encode_to_vec());
    body.extend(gz(&second.encode_to_vec()));
    let resp = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            body,
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.stored("traces").await,
        total as i64,
        "both members stored"
    );
    app.stop().await;
}

/// One valid document of the expected shape per body: an array where the spec has an
/// object, or data after a webhook payload or an upload context, is refused.
#[tokio::test]
async fn only_one_document_of_the_expected_shape_is_accepted() {
    let mut app =
        TestApp::spawn_with(|a| a.webhook_secrets = vec!["s3cret".parse().unwrap()]).await;
    let resp = app
        .post("/v1/traces", "application/json", b"[[[{}]]]".to_vec(), &[])
        .await;
    let (status, msg) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(msg.contains("one JSON object"), "{msg}");

    let payload = std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("webhooks/payloads/push.1.json"),
    )
    .unwrap();
    for (id, tail) in [("trailing", &b"}}}garbage"[..]), ("twice", &payload[..])] {
        let mut body = payload.clone();
        body.extend_from_slice(tail);
        let resp = app.deliver("s3cret", "push", id, &body).await;
        assert_eq!(resp.status(), 400, "{id}");
        let b: Value = resp.json().await.unwrap();
        assert!(
            b["error"]
                .as_str()
                .unwrap_or_default()
                .contains("after the JSON document"),
            "{id}: {b}"
        );
    }
    let (_, failed) = app.get_json("/api/v1/deliveries?status=failed").await;
    assert_eq!(
        failed["deliveries"].as_array().map(Vec::len),
        Some(2),
        "{failed}"
    );
    nothing_stored_and_healthy(&app).await;
    app.stop().await;
}

/// An upload whose context part has data after its JSON object is refused, naming it.
#[tokio::test]
async fn an_upload_context_with_trailing_data_is_400() {
    use super::ci_upload::{STATIC_TOKEN, app_with_issuer, ci_fixture, context, fake_issuer};
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let ctx = context("c0ffee0000000000000000000000000000000001", 7, 1, &[]);
    let boundary = "----tracelink-trailing";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"context\"\r\nContent-Type: application/json\r\n\r\n{ctx}garbage\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"coverage.xml\"\r\n\r\n"
    )
    .into_bytes();
    body.extend(ci_fixture("coverage.xml"));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let auth = format!("Bearer {STATIC_TOKEN}");
    let resp = app
        .post(
            "/api/v1/ci/uploads",
            &format!("multipart/form-data; boundary={boundary}"),
            body,
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let b: Value = resp.json().await.unwrap();
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("after the JSON object"),
        "{b}"
    );
    assert_eq!(app.count("ci_uploads").await, 0);
    app.stop().await;
}

/// Every API error is JSON naming the problem, also for an unreadable query or path.
#[tokio::test]
async fn unreadable_query_and_path_parameters_are_json_400() {
    let mut app = TestApp::spawn().await;
    for path in [
        "/api/v1/sessions?limit=abc",
        "/api/v1/deliveries?limit=-1x",
        "/api/v1/repos/acme/widgets/pulls/abc/report",
        "/api/v1/repos/acme/widgets/pulls/abc",
    ] {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(
            !msg.is_empty(),
            "{path}: a JSON error naming the problem: {body}"
        );
    }
    let (_, body) = app.get_json("/api/v1/sessions?limit=abc").await;
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    app.stop().await;
}

/// Listening beyond loopback with ingest or reads open needs saying so; `/metrics`
/// answers loopback clients, or a metrics token when one is set.
#[tokio::test]
async fn exposure_beyond_loopback_is_explicit_and_metrics_are_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = tracelink::config::ServeArgs::ephemeral(dir.path().join("t.db"));
    args.http_listen = "0.0.0.0:0".parse().unwrap();
    let refused = tracelink::server::Server::start(&args)
        .await
        .err()
        .expect("an open server beyond loopback is refused");
    let msg = format!("{refused:#}");
    assert!(msg.contains("--allow-unauthenticated"), "{msg}");
    assert!(msg.contains("ingest") && msg.contains("reads"), "{msg}");
    // With both scopes' tokens it starts; so does an explicit opt-out.
    args.ingest_tokens = vec!["i".parse().unwrap()];
    args.read_tokens = vec!["r".parse().unwrap()];
    let server = tracelink::server::Server::start(&args)
        .await
        .expect("starts");
    server.shutdown().await.unwrap();
    args.ingest_tokens.clear();
    args.allow_unauthenticated = true;
    let server = tracelink::server::Server::start(&args)
        .await
        .expect("starts");
    server.shutdown().await.unwrap();

    // /metrics: a loopback client gets it; with a token set, the token is needed.
    let mut app = TestApp::spawn().await;
    let resp = app
        .client
        .get(format!("{}/metrics", app.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.stop().await;
    let mut app = TestApp::spawn_with(|a| a.metrics_token = Some("m".parse().unwrap())).await;
    let url = format!("{}/metrics", app.http);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 401);
    let resp = app.client.get(&url).bearer_auth("m").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

/// An OIDC token that is not valid yet (`nbf` in the future, beyond the leeway) is
/// refused.
#[tokio::test]
async fn an_oidc_token_not_valid_yet_is_refused() {
    use super::ci_upload::{
        app_with_issuer, ci_fixture, claims, context, fake_issuer, now, sign, upload,
    };
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let mut c = claims(&issuer.uri(), "Acme/Widgets");
    c["nbf"] = serde_json::json!(now() + 3600);
    let token = sign(&c);
    let ctx = context("c0ffee0000000000000000000000000000000001", 7, 1, &[]);
    let cov = ci_fixture("coverage.xml");
    let (status, body) = upload(&app, Some(&token), Some(&ctx), &[("coverage.xml", &cov)]).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not valid yet"),
        "{body}"
    );
    assert_eq!(app.count("ci_uploads").await, 0);
    app.stop().await;
}

/// List filters match what users see: `?repo=` in any case (as the commit and PR
/// endpoints), `?agent=` by id or by the name reports print.
#[tokio::test]
async fn session_filters_match_what_reports_print() {
    let mut app = TestApp::spawn().await;
    let body = super::links::session(
        "conv-filters",
        &[1_763_632_800_000_000_000],
        &[],
        Some("https://github.com/Acme/Widgets"),
    );
    let r = app
        .post(
            "/v1/traces",
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    for query in [
        "repo=acme/widgets",
        "repo=ACME/Widgets",
        "agent=acme-agent",
        "agent=Acme Agent",
    ] {
        let (status, page) = app.get_json(&format!("/api/v1/sessions?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(
            page["sessions"].as_array().map(Vec::len),
            Some(1),
            "{query}: {page}"
        );
    }
    let (_, page) = app.get_json("/api/v1/sessions?agent=Claude Code").await;
    assert_eq!(page["sessions"].as_array().map(Vec::len), Some(0));
    app.stop().await;
}

/// A Go coverprofile names line ranges: 45 bytes can claim 100,000 lines. The
/// reproduction of issue 13 (500 such blocks, 24 KB; once 50 million line entries and
/// 1.4 GB) is stored as what it is — one range per block, in memory and in the database —
/// and reports read it as ranges.
#[tokio::test]
async fn go_coverage_blocks_stay_ranges() {
    use super::ci_upload::{STATIC_TOKEN, app_with_issuer, context, fake_issuer, upload};
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let sha = "c0ffee0000000000000000000000000000000001";
    let ctx = context(sha, 7, 1, &[]);
    let mut amp = String::from("mode: set\n");
    for i in 0..500 {
        amp.push_str(&format!(
            "github.com/acme/widgets/f{i}.go:1.1,100000.1 1 1\n"
        ));
    }
    assert!(amp.len() < 32 * 1024);
    let (status, body) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&ctx),
        &[("amp.out", amp.as_bytes())],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["files"][0]["lines"]["coverable"], 50_000_000, "{body}");
    assert_eq!(body["files"][0]["lines"]["covered"], 50_000_000, "{body}");

    // Stored and read back as one range per file.
    let uploads = app.db().uploads("acme/widgets", sha, false).await.unwrap();
    assert_eq!(uploads.len(), 1);
    let files = app.db().coverage(uploads[0].id).await.unwrap();
    assert_eq!(files.len(), 500);
    for (path, (covered, missed)) in &files {
        assert_eq!(covered.ranges(), &[(1, 100_000)], "{path}");
        assert!(missed.is_empty(), "{path}");
    }

    // A block ending beyond any source file is refused, naming the bound and the line.
    let far = b"mode: set\ngithub.com/acme/widgets/f.go:1.1,4000000000.1 1 1\n";
    let ctx = context(sha, 8, 1, &[]);
    let (status, body) = upload(&app, Some(STATIC_TOKEN), Some(&ctx), &[("far.out", far)]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["line"], 2, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("beyond line 5000000"),
        "{body}"
    );
    assert_eq!(app.count("ci_uploads").await, 1, "nothing half-written");
    app.stop().await;
}

/// Bytes that are no protobuf message, over gRPC: INVALID_ARGUMENT (tonic's INTERNAL
/// would tell clients to retry), and nothing stored.
#[tokio::test]
async fn garbage_over_grpc_is_invalid_argument() {
    let mut app = TestApp::spawn().await;
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let err = grpc
        .unary::<Vec<u8>, Vec<u8>, Raw>(
            tonic::Request::new(vec![0xff, 0xff, 0xff, 0x0f]),
            path,
            Raw,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    nothing_stored_and_healthy(&app).await;
    app.stop().await;
}

/// Admission comes before reading and decoding: with the write queue full, a request
/// whose body is not even a message gets 429 with Retry-After (HTTP) or
/// RESOURCE_EXHAUSTED with RetryInfo (gRPC), not the 400 decoding would give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_before_decoding() {
    let mut app = TestApp::spawn_with(|a| {
        a.queue_capacity = 1;
    })
    .await;
    let blocker = tracelink::store::testing::WriteLock::acquire(&app.location())
        .await
        .unwrap();
    // One request in the stalled writer, one in the queue.
    let mut pending = Vec::new();
    for _ in 0..2 {
        let (client, url) = (app.client.clone(), format!("{}/v1/traces", app.http));
        let body = traces_pb();
        pending.push(tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let garbage = || {
        app.post(
            "/v1/traces",
            "application/x-protobuf",
            b"\xff\xff\xff\x0f".to_vec(),
            &[],
        )
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let resp = loop {
        let resp = garbage().await;
        if resp.status() == 429 || tokio::time::Instant::now() > deadline {
            break resp;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(resp.status(), 429, "refused before decoding");
    assert_eq!(resp.headers()["retry-after"], "1");
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let err = grpc
        .unary::<Vec<u8>, Vec<u8>, Raw>(
            tonic::Request::new(vec![0xff, 0xff, 0xff, 0x0f]),
            path,
            Raw,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(!err.details().is_empty(), "with RetryInfo");
    blocker.release().await.unwrap();
    for p in pending {
        assert_eq!(p.await.unwrap().unwrap(), 200);
    }
    app.stop().await;
}

/// OTLP strings are any UTF-8, NUL included, which PostgreSQL's text cannot hold: an
/// agent sending one in a session's attributes is stored (as U+FFFD, on both engines
/// alike), never refused or failed.
#[tokio::test]
async fn a_nul_in_an_attribute_is_stored_as_a_replacement_character() {
    let mut app = TestApp::spawn().await;
    let mut logs: Value = serde_json::from_slice(&fixture("claude-code-logs.json")).unwrap();
    for rl in logs["resourceLogs"].as_array_mut().unwrap() {
        for sl in rl["scopeLogs"].as_array_mut().unwrap() {
            for lr in sl["logRecords"].as_array_mut().unwrap() {
                for a in lr["attributes"].as_array_mut().unwrap() {
                    if a["key"] == "user.email" {
                        a["value"] = json!({"stringValue": "dev\u{0}@acme.example"});
                    }
                }
            }
        }
    }
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            serde_json::to_vec(&logs).unwrap(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let session = app.session("82c3495f-998e-457a-875a-8643b934dd9c").await;
    assert_eq!(
        session["user"]["email"], "dev\u{FFFD}@acme.example",
        "{session}"
    );
    app.stop().await;
}

/// A webhook string holding U+0000 (JSON's `\u0000`) is applied like any other, stored
/// as U+FFFD on both engines: on PostgreSQL, whose text cannot hold it, it would
/// otherwise fail the delivery again at every retry.
#[tokio::test]
async fn a_nul_in_a_commit_message_is_applied() {
    use super::reports::{Commit, SECRET, ZERO, deliver, push};
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    let commits = [Commit {
        sha: "4444444444444444444444444444444444444444",
        message: "Fix\u{0} the retry",
        at: "2026-11-20T09:13:48Z",
        email: "dev@acme.example",
        login: "dev",
        files: &["src/\u{0}retry.ts"],
    }];
    deliver(
        &app,
        "push",
        "nul",
        &push("refs/heads/retry", ZERO, &commits),
    )
    .await;
    app.applied(1).await;
    let rows = app.dump("commits", &[]).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("'Fix\u{FFFD} the retry'"), "{rows:?}");
    let files = app.dump("commit_files", &[]).await;
    assert!(files[0].contains("'src/\u{FFFD}retry.ts'"), "{files:?}");
    let (status, failed) = app.get_json("/api/v1/deliveries?status=failed").await;
    assert_eq!(status, 200);
    assert_eq!(
        failed["deliveries"].as_array().map(Vec::len),
        Some(0),
        "{failed}"
    );
    app.stop().await;
}
