//! The real OpenTelemetry Rust SDK and its OTLP exporter, over each transport, against a
//! running server: spans following the gen_ai conventions become a session, and a
//! flushed export is already committed when the flush returns.

use std::time::Duration;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig,
    WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};

use super::common::TestApp;

/// Bounds every export attempt, so a server that never answers fails the test.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds the whole emit-and-flush step, retries included.
const FLUSH_DEADLINE: Duration = Duration::from_secs(60);

const MODEL: &str = "claude-sonnet-4-6";
/// `(input, output)` tokens of each chat span.
const CHATS: [(i64, i64); 3] = [(1000, 200), (1500, 300), (2500, 50)];
const TOOLS: [&str; 2] = ["Read", "Bash"];
/// Chat spans, tool spans and the unrelated root span.
const SPANS_SENT: i64 = (CHATS.len() + TOOLS.len() + 1) as i64;

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("acme-agent")
        .with_attribute(KeyValue::new("service.version", "1.2.3"))
        .build()
}

/// Emits an unrelated root span with the gen_ai spans of one conversation under it, on the
/// calling thread, and returns the trace id (hex).
fn emit_spans(provider: &SdkTracerProvider, conversation: &'static str) -> String {
    let tracer = provider.tracer("acme-agent");
    let root = tracer
        .span_builder("handle_request")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", "POST")])
        .start(&tracer);
    let trace_id = root.span_context().trace_id().to_string();
    let cx = Context::current_with_span(root);
    for (i, (input, output)) in CHATS.into_iter().enumerate() {
        let mut span = tracer
            .span_builder(format!("chat {MODEL}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", "anthropic"),
                KeyValue::new("gen_ai.request.model", MODEL),
                KeyValue::new("gen_ai.conversation.id", conversation),
                KeyValue::new("gen_ai.usage.input_tokens", input),
                KeyValue::new("gen_ai.usage.output_tokens", output),
            ])
            .start_with_context(&tracer, &cx);
        if let Some(tool) = TOOLS.get(i) {
            let tool_cx = cx.with_span(span);
            tracer
                .span_builder(format!("execute_tool {tool}"))
                .with_kind(SpanKind::Internal)
                .with_attributes([
                    KeyValue::new("gen_ai.operation.name", "execute_tool"),
                    KeyValue::new("gen_ai.tool.name", *tool),
                    KeyValue::new("gen_ai.tool.call.id", format!("call-{i}")),
                    KeyValue::new("gen_ai.conversation.id", conversation),
                ])
                .start_with_context(&tracer, &tool_cx)
                .end();
            tool_cx.span().end();
        } else {
            span.end();
        }
    }
    cx.span().end();
    trace_id
}

/// Runs SDK work that blocks (span export, flush, shutdown) on a blocking thread of the
/// test's runtime, where the exporters' async clients find the runtime, bounded in time.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::time::timeout(FLUSH_DEADLINE, tokio::task::spawn_blocking(work))
        .await
        .expect("SDK emit and flush finish in time")
        .expect("SDK thread does not panic")
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The conversation is one gen_ai session with the spans' counts and token sums.
async fn assert_conversation(app: &TestApp, conversation: &str, trace_id: &str) {
    let s = app.session(conversation).await;
    assert_eq!(s["session_id"], conversation);
    assert_eq!(s["agent"], "acme-agent", "agent is the service.name: {s}");
    assert_eq!(
        s["agent_version"], "1.2.3",
        "agent version is the service.version"
    );
    assert_eq!(s["llm_requests"], 3, "one per chat span: {s}");
    assert_eq!(s["tool_invocations"], 2, "one per execute_tool span: {s}");
    assert_eq!(s["counters"]["llm_requests"]["source"], "traces");
    let input: i64 = CHATS.iter().map(|c| c.0).sum();
    let output: i64 = CHATS.iter().map(|c| c.1).sum();
    assert_eq!(n(&s["tokens"]["input"]), input, "{s}");
    assert_eq!(n(&s["tokens"]["output"]), output, "{s}");
    assert_eq!(s["models"], json!([MODEL]));
    assert_eq!(n(&s["tokens_by_model"][MODEL]["input"]), input);
    assert_eq!(n(&s["tokens_by_model"][MODEL]["output"]), output);
    assert_eq!(s["trace_ids"], json!([trace_id]), "the spans' one trace");
    assert!(
        s["started_at"].is_string() && s["ended_at"].is_string(),
        "{s}"
    );
    assert_eq!(
        app.stored("traces").await,
        SPANS_SENT,
        "every span, the unrelated one too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_grpc_gzip_traces_metrics_and_logs() {
    let mut app = TestApp::spawn().await;
    // Tonic exporters are built inside the runtime; the SDK's batch processor, periodic
    // reader and batch log processor then export from their own threads.
    let spans = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&app.grpc)
        .with_compression(Compression::Gzip)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .expect("span exporter");
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource())
        .build();
    let metrics = MetricExporter::builder()
        .with_tonic()
        .with_endpoint(&app.grpc)
        .with_compression(Compression::Gzip)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .expect("metric exporter");
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics)
        .with_resource(resource())
        .build();
    let logs = LogExporter::builder()
        .with_tonic()
        .with_endpoint(&app.grpc)
        .with_compression(Compression::Gzip)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .expect("log exporter");
    let logger_provider = SdkLoggerProvider::builder()
        .with_batch_exporter(logs)
        .with_resource(resource())
        .build();

    let trace_id = blocking(move || {
        let trace_id = emit_spans(&tracer_provider, "sdk-conv-grpc");

        // gen_ai.client.token.usage, for a conversation of its own so its tokens are
        // told apart from the spans'.
        let meter = meter_provider.meter("acme-agent");
        let usage = meter
            .u64_histogram("gen_ai.client.token.usage")
            .with_unit("{token}")
            .build();
        for (kind, value) in [
            ("input", 700),
            ("input", 300),
            ("output", 90),
            ("output", 10),
        ] {
            usage.record(
                value,
                &[
                    KeyValue::new("gen_ai.operation.name", "chat"),
                    KeyValue::new("gen_ai.provider.name", "anthropic"),
                    KeyValue::new("gen_ai.request.model", MODEL),
                    KeyValue::new("gen_ai.token.type", kind),
                    KeyValue::new("gen_ai.conversation.id", "sdk-metrics-grpc"),
                ],
            );
        }

        // A gen_ai event of the traced conversation, without usage.
        let logger = logger_provider.logger("acme-agent");
        let mut record = logger.create_log_record();
        record.set_event_name("gen_ai.client.inference.operation.details");
        record.set_body(AnyValue::from("chat completed"));
        record.add_attribute("gen_ai.conversation.id", "sdk-conv-grpc");
        record.add_attribute("gen_ai.operation.name", "chat");
        record.add_attribute("gen_ai.request.model", MODEL);
        logger.emit(record);

        tracer_provider.force_flush().expect("span flush");
        meter_provider.force_flush().expect("metric flush");
        logger_provider.force_flush().expect("log flush");
        tracer_provider.shutdown().expect("tracer shutdown");
        // Shutdown collects once more: the same cumulative totals must not count twice.
        meter_provider.shutdown().expect("meter shutdown");
        logger_provider.shutdown().expect("logger shutdown");
        trace_id
    })
    .await;

    assert_conversation(&app, "sdk-conv-grpc", &trace_id).await;

    let m = app.session("sdk-metrics-grpc").await;
    assert_eq!(m["agent"], "acme-agent", "{m}");
    assert_eq!(n(&m["tokens_by_model"][MODEL]["input"]), 1000, "{m}");
    assert_eq!(n(&m["tokens_by_model"][MODEL]["output"]), 100, "{m}");
    assert_eq!(n(&m["tokens"]["input"]), 1000);
    assert_eq!(n(&m["tokens"]["output"]), 100);
    assert!(app.count("metric_points").await > 0);

    assert_eq!(app.stored("logs").await, 1);
    let events = app
        .db()
        .session_events("sdk-conv-grpc")
        .await
        .expect("log events");
    assert_eq!(events, ["gen_ai.client.inference.operation.details"]);

    app.stop().await;
}

/// One HTTP test: a simple span processor exports each span as it ends, from a blocking
/// thread of the runtime (the async reqwest client needs one).
async fn http_round_trip(protocol: Protocol, conversation: &'static str) {
    let mut app = TestApp::spawn().await;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{}/v1/traces", app.http))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .expect("span exporter");
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource())
        .build();

    let trace_id = blocking(move || {
        let trace_id = emit_spans(&provider, conversation);
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
        trace_id
    })
    .await;

    assert_conversation(&app, conversation, &trace_id).await;
    assert_eq!(app.stored("logs").await, 0);
    assert_eq!(app.count("metric_points").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_http_protobuf_traces() {
    http_round_trip(Protocol::HttpBinary, "sdk-conv-http-protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_http_json_traces() {
    http_round_trip(Protocol::HttpJson, "sdk-conv-http-json").await;
}
