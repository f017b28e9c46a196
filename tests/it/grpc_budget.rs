//! OTLP/gRPC shares the bound on body bytes in flight with OTLP/HTTP: a request takes its
//! message's length from the budget once the message's 5-byte prefix is in, and with the
//! budget taken it gets RESOURCE_EXHAUSTED with RetryInfo before its message is buffered
//! or decoded. Requests held open take the budget here; nothing depends on timing.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::codegen::tokio_stream::{self, StreamExt};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use super::common::{TestApp, fixture};

/// The bodies' limit in these tests (the fixture's export fits): the budget is four of
/// them, 1 MiB.
const MAX_BODY: usize = 256 * 1024;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Bytes that are no `ExportTraceServiceRequest` (field 1 as a number): decoding them
/// is INVALID_ARGUMENT, so any other answer was given before decoding.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAnExport {
    #[prost(uint64, tag = "1")]
    resource_spans: u64,
    #[prost(bytes = "vec", tag = "2")]
    padding: Vec<u8>,
}

async fn channel(app: &TestApp) -> Channel {
    tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Sends a message that is no export request, of about `size` bytes; the answer.
async fn probe(channel: &Channel, size: usize) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let msg = NotAnExport {
        resource_spans: 1,
        padding: vec![0; size],
    };
    grpc.unary(
        tonic::Request::new(msg),
        tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT),
        ProstCodec::<NotAnExport, ExportTraceServiceResponse>::default(),
    )
    .await
    .expect_err("no export request")
}

/// An export whose message (a body limit's share) is sent but whose call never ends:
/// it holds its share until the server answers it or the task is aborted.
fn stall(channel: &Channel) -> JoinHandle<Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    tokio::spawn(async move {
        grpc.ready().await.unwrap();
        let msg = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                schema_url: "x".repeat(MAX_BODY - 512),
                ..Default::default()
            }],
        };
        let messages = tokio_stream::once(msg).chain(tokio_stream::pending());
        grpc.client_streaming(
            tonic::Request::new(messages),
            tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT),
            ProstCodec::<ExportTraceServiceRequest, ExportTraceServiceResponse>::default(),
        )
        .await
        .expect_err("a stalled call is only ever refused")
    })
}

/// Keeps four stalled exports open — sending one again when the server refused it, as
/// it does when a probe held a share at that moment — until a 1 KiB probe is refused.
async fn take_the_budget(channel: &Channel) -> (Vec<JoinHandle<Status>>, Status) {
    let mut stalls: Vec<_> = (0..4).map(|_| stall(channel)).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for s in &mut stalls {
            if s.is_finished() {
                *s = stall(channel);
            }
        }
        let answer = probe(channel, 0).await;
        if answer.code() == Code::ResourceExhausted {
            return (stalls, answer);
        }
        assert_eq!(answer.code(), Code::InvalidArgument, "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled exports never took the budget"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Probes until one is admitted and decoded (INVALID_ARGUMENT).
async fn until_admitted(channel: &Channel) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = probe(channel, 0).await;
        if answer.code() == Code::InvalidArgument {
            return;
        }
        assert_eq!(answer.code(), Code::ResourceExhausted, "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the budget was never given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `google.rpc.RetryInfo` a refusal carries, if any.
fn asks_to_retry(status: &Status) -> bool {
    tracelink::otlp::status::RpcStatus::decode(status.details()).is_ok_and(|s| {
        s.details
            .iter()
            .any(|d| d.type_url == "type.googleapis.com/google.rpc.RetryInfo")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_budget_taken_grpc_refuses_before_decoding_and_recovers() {
    let mut app = TestApp::spawn_with(|a| a.max_body_bytes = MAX_BODY).await;
    let channel = channel(&app).await;
    let (stalls, refused) = take_the_budget(&channel).await;
    // Not decoded: garbage would be INVALID_ARGUMENT.
    assert!(asks_to_retry(&refused), "with RetryInfo: {refused:?}");
    // An oversized message takes no share: it is refused as too large, not retryable.
    let oversized = probe(&channel, MAX_BODY + 1).await;
    assert_eq!(oversized.code(), Code::ResourceExhausted, "{oversized}");
    assert!(!asks_to_retry(&oversized), "no RetryInfo: {oversized:?}");
    // The budget is the one OTLP/HTTP takes from.
    let resp = app
        .post("/v1/traces", "application/x-protobuf", Vec::new(), &[])
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");

    // The stalled clients leave: their shares are given back.
    for s in stalls {
        s.abort();
    }
    until_admitted(&channel).await;
    let req: ExportTraceServiceRequest =
        serde_json::from_slice(&fixture("claude-code-traces.json")).unwrap();
    TraceServiceClient::new(channel)
        .export(req)
        .await
        .expect("an export after the budget is given back");
    assert_eq!(app.stored("traces").await, 64);
    app.stop().await;
}

/// OTLP/HTTP bodies being read take from the same budget: gRPC is refused while they
/// hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bodies_in_flight_refuse_grpc_too() {
    let mut app = TestApp::spawn_with(|a| a.max_body_bytes = MAX_BODY).await;
    let channel = channel(&app).await;
    let addr = app.http.trim_start_matches("http://").to_string();
    let announce = async || {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(
            format!(
                "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {MAX_BODY}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        s
    };
    // Four bodies announced and not sent; one refused (a probe held a share when it
    // arrived) has its answer waiting and is announced again.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(announce().await);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        for s in &mut held {
            let waiting = s
                .try_read(&mut [0; 1])
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock);
            if !waiting {
                *s = announce().await;
            }
        }
        let answer = probe(&channel, 0).await;
        if answer.code() == Code::ResourceExhausted {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the announced bodies never took the budget: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(asks_to_retry(&refused), "with RetryInfo: {refused:?}");
    drop(held);
    until_admitted(&channel).await;
    app.stop().await;
}

/// A unary export carries one message: a second, which would be buffered beyond the
/// share the first one's length took, is INVALID_ARGUMENT and nothing is stored.
#[tokio::test]
async fn a_second_message_in_an_export_is_invalid_argument() {
    let mut app = TestApp::spawn_with(|a| a.max_body_bytes = MAX_BODY).await;
    let mut grpc = tonic::client::Grpc::new(channel(&app).await);
    grpc.ready().await.unwrap();
    let req: ExportTraceServiceRequest =
        serde_json::from_slice(&fixture("claude-code-traces.json")).unwrap();
    let err = grpc
        .client_streaming(
            tonic::Request::new(tokio_stream::iter([req.clone(), req])),
            tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT),
            ProstCodec::<ExportTraceServiceRequest, ExportTraceServiceResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("one message"), "{err}");
    assert_eq!(app.stored("traces").await, 0);
    app.stop().await;
}

/// A stalled export cannot hold its share for ever: it is cut off at the request
/// timeout, and the budget is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_export_is_cut_off_at_the_request_timeout() {
    let mut app = TestApp::spawn_with(|a| {
        a.max_body_bytes = MAX_BODY;
        a.request_timeout_secs = 1;
    })
    .await;
    let channel = channel(&app).await;
    let (stalls, _) = take_the_budget(&channel).await;
    for s in stalls {
        let cut = tokio::time::timeout(Duration::from_secs(10), s)
            .await
            .expect("cut off")
            .unwrap();
        assert_eq!(cut.code(), Code::Cancelled, "{cut}");
    }
    until_admitted(&channel).await;
    app.stop().await;
}
