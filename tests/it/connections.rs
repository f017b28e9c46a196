//! Slow and stalled clients cannot hold the service: headers must arrive in time (idle
//! keep-alive connections end the same way), a request's body must be read in time, and
//! connections are capped; `/healthz` keeps answering.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::common::TestApp;

fn addr(app: &TestApp) -> String {
    app.http.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; what it said before, if anything.
async fn until_closed(mut s: TcpStream) -> String {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_and_trickled_bodies_are_cut_off() {
    let mut app = TestApp::spawn_with(|a| {
        a.header_timeout_secs = 1;
        a.request_timeout_secs = 1;
    })
    .await;
    // A client that never sends a byte.
    let s = TcpStream::connect(addr(&app)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), until_closed(s))
        .await
        .expect("a silent connection is closed after the header timeout");
    // Headers that never end.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), until_closed(s))
        .await
        .expect("the connection is closed after the header timeout");

    // A body trickled at a byte every 300 ms.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    let trickle = async {
        for _ in 0..20 {
            if s.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        until_closed(s).await
    };
    let answer = tokio::time::timeout(Duration::from_secs(8), trickle)
        .await
        .expect("the request is answered or cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    app.stop().await;
}

/// At the cap, the connection waiting longest for a request is closed to make room:
/// clients that never send one cannot keep `/healthz` out. When every connection is
/// inside a request, a new one is closed at once, holding no descriptor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_stalled_connections_make_room_and_busy_ones_do_not() {
    let mut app = TestApp::spawn_with(|a| {
        a.header_timeout_secs = 30;
        a.request_timeout_secs = 30;
        a.max_connections = 4;
    })
    .await;
    let healthz = || async {
        app.client
            .get(format!("{}/healthz", app.http))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    // Every slot taken by a client that never sends a request.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(TcpStream::connect(addr(&app)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // /healthz answers at once, long before the header timeout: the oldest stalled
    // connection made room (and was closed, holding nothing).
    assert!(healthz().await, "/healthz answered at the cap");
    let oldest = stalled.remove(0);
    let said = tokio::time::timeout(Duration::from_secs(2), until_closed(oldest))
        .await
        .expect("the oldest stalled connection was closed");
    assert!(said.is_empty(), "{said}");
    drop(stalled);

    // Every slot inside a request (a body that never finishes): nothing to close, so a
    // new connection is closed at once.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let extra = TcpStream::connect(addr(&app)).await.unwrap();
    let said = tokio::time::timeout(Duration::from_secs(2), until_closed(extra))
        .await
        .expect("closed at once");
    assert!(said.is_empty(), "{said}");
    drop(busy);
    app.stop().await;
}

/// Memory for request bodies is bounded whatever the number of clients: bodies being
/// read hold their share of a budget (four largest bodies); past it, 429 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_bytes_in_flight_are_bounded() {
    let mut app = TestApp::spawn_with(|a| a.max_body_bytes = 4096).await;
    // Four clients announce 4 KiB bodies and send none: the budget is taken.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 4096\r\n\r\n",
        )
        .await
        .unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = app
        .post("/v1/traces", "application/x-protobuf", Vec::new(), &[])
        .await;
    assert_eq!(resp.status(), 429, "refused while the budget is taken");
    assert_eq!(resp.headers()["retry-after"], "1");
    // The stalled clients leave: the budget is free again.
    drop(stalled);
    let started = tokio::time::Instant::now();
    loop {
        let resp = app
            .post("/v1/traces", "application/x-protobuf", Vec::new(), &[])
            .await;
        if resp.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

fn grpc_addr(app: &TestApp) -> String {
    app.grpc.trim_start_matches("http://").to_string()
}

/// The HTTP/2 client preface every gRPC connection starts with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The gRPC listener cuts stalled clients off too: a connection that sends no HTTP/2
/// preface (or only part of it) within the header timeout is closed, and so is one that
/// sends the preface and then answers no keep-alive ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_grpc_connections_are_cut_off() {
    let mut app = TestApp::spawn_with(|a| a.header_timeout_secs = 1).await;
    let s = TcpStream::connect(grpc_addr(&app)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), until_closed(s))
        .await
        .expect("a silent connection is closed after the handshake timeout");

    let mut s = TcpStream::connect(grpc_addr(&app)).await.unwrap();
    s.write_all(&PREFACE[..10]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), until_closed(s))
        .await
        .expect("half a preface is closed after the handshake timeout");

    let mut s = TcpStream::connect(grpc_addr(&app)).await.unwrap();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap(); // an empty SETTINGS frame
    tokio::time::timeout(Duration::from_secs(8), until_closed(s))
        .await
        .expect("a peer that answers no keep-alive ping is closed");
    app.stop().await;
}

/// gRPC connections are capped: forty clients that connect and send nothing (ten times
/// the cap) hold at most the cap, the silent longest closed to make room, and a real
/// exporter still gets in and is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connections_are_capped_and_stalled_ones_make_room() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

    let mut app = TestApp::spawn_with(|a| {
        a.header_timeout_secs = 30;
        a.max_grpc_connections = 4;
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..40 {
        stalled.push(TcpStream::connect(grpc_addr(&app)).await.unwrap());
    }
    // Every slot is held by a stalled client; the exporter's connection makes room.
    let mut client = tokio::time::timeout(
        Duration::from_secs(5),
        TraceServiceClient::connect(app.grpc.clone()),
    )
    .await
    .expect("connected at the cap")
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        client.export(ExportTraceServiceRequest::default()),
    )
    .await
    .expect("answered at the cap")
    .unwrap();

    // The server closed all but the cap's worth (less the exporter's slot), long
    // before the 30 s handshake timeout.
    let mut watching = tokio::task::JoinSet::new();
    for s in stalled {
        watching.spawn(async move {
            tokio::time::timeout(Duration::from_secs(3), until_closed(s))
                .await
                .is_err()
        });
    }
    let mut still_open = 0;
    while let Some(open) = watching.join_next().await {
        if open.unwrap() {
            still_open += 1;
        }
    }
    assert!(
        still_open <= 3,
        "{still_open} stalled connections held open"
    );
    drop(client);
    app.stop().await;
}
