//! Acknowledged means durable: a child `tracelink serve` killed with SIGKILL while
//! requests are in flight keeps every span it acknowledged.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;

use super::common::TestDb;
use tracelink::config::ServeArgs;
use tracelink::ids::{SpanId, TraceId};
use tracelink::server::Server;

/// A span's (trace ID, span ID).
pub type SpanKey = ([u8; 16], [u8; 8]);

/// An export of 100 plain spans whose trace IDs carry `n` (shared with `replicas`).
pub fn request(n: u32) -> (ExportTraceServiceRequest, Vec<SpanKey>) {
    let mut ids = Vec::new();
    let spans = (0..100u32)
        .map(|i| {
            let mut trace = [0u8; 16];
            trace[..4].copy_from_slice(&n.to_be_bytes());
            trace[15] = 1;
            let mut span = [0u8; 8];
            span[..4].copy_from_slice(&i.to_be_bytes());
            span[7] = 1;
            ids.push((trace, span));
            Span {
                trace_id: trace.to_vec(),
                span_id: span.to_vec(),
                name: format!("GET /widgets/{i}"),
                start_time_unix_nano: 1_795_165_334_312_000_000,
                end_time_unix_nano: 1_795_165_334_412_000_000,
                ..Default::default()
            }
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (req, ids)
}

/// `tracelink serve` in a child process on loopback ports; returns it and its HTTP address.
async fn serve_child(db: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(db)
        .env("TRACELINK_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tracelink serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
    let line = lines.next_line().await.unwrap().expect("listening line");
    let http = line
        .split("http=")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDb::new(dir.path()).await;
    let db = database.location.clone();
    let (mut child, http) = serve_child(&database.arg()).await;

    let acked: Arc<Mutex<Vec<SpanKey>>> = Arc::default();
    let enough = Arc::new(Notify::new());
    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    for w in 0..4u32 {
        let (acked, enough, client, http) =
            (acked.clone(), enough.clone(), client.clone(), http.clone());
        workers.push(tokio::spawn(async move {
            for k in 0..1000u32 {
                let (req, ids) = request(w * 1000 + k);
                let sent = client
                    .post(format!("http://{http}/v1/traces"))
                    .header("content-type", "application/x-protobuf")
                    .body(req.encode_to_vec())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        let mut a = acked.lock().unwrap();
                        a.extend(ids);
                        if a.len() >= 3000 {
                            enough.notify_one();
                        }
                    }
                    // Refused (429) or cut off by the kill: not acknowledged, not promised.
                    _ => {}
                }
            }
        }));
    }
    enough.notified().await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 3000);

    // Restart on the same file: every acknowledged span is there.
    let server = Server::start(&ServeArgs::ephemeral(db.clone()))
        .await
        .expect("restarts on the killed database");
    let stored = server.db.stored_rows("traces").await.unwrap();
    assert!(
        stored as usize >= acked.len(),
        "{stored} stored < {} acknowledged",
        acked.len()
    );
    let ids = server.db.span_ids().await.unwrap();
    for (trace, span) in &acked {
        let found = ids.contains(&(TraceId(*trace), SpanId(*span)));
        assert!(found, "acknowledged span {trace:?}/{span:?} lost");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_flushes_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDb::new(dir.path()).await;
    let db = database.location.clone();
    let server = Server::start(&ServeArgs::ephemeral(db.clone()))
        .await
        .unwrap();
    let http = server.http_addr;
    let client = reqwest::Client::new();
    let mut sent = 0;
    for n in 0..20 {
        let (req, _) = request(n);
        let r = client
            .post(format!("http://{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(req.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        sent += 100;
    }
    server.shutdown().await.unwrap();
    let again = Server::start(&ServeArgs::ephemeral(db)).await.unwrap();
    let stored = again.db.stored_rows("traces").await.unwrap();
    assert_eq!(stored, sent);
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_after_flushing() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDb::new(dir.path()).await;
    let db = database.location.clone();
    let (mut child, http) = serve_child(&database.arg()).await;
    // A client that keeps its connection open must not hold the shutdown.
    let client = reqwest::Client::new();
    for n in 0..10 {
        let (req, _) = request(n);
        let r = client
            .post(format!("http://{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(req.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("stops within the grace period")
        .unwrap();
    assert!(status.success(), "clean exit: {status}");
    let server = Server::start(&ServeArgs::ephemeral(db)).await.unwrap();
    let stored = server.db.stored_rows("traces").await.unwrap();
    assert_eq!(stored, 1000);
    server.shutdown().await.unwrap();
    drop(client);
}
