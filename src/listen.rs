//! The HTTP listener (HTTP/1.1). Slow or stalled clients must not hold the service:
//! headers must arrive within a timeout (also for a client that sends nothing, and for
//! an idle keep-alive connection), a request — its body included — must be read and
//! answered within another, and connections are capped below the descriptor limit: one
//! over the cap is closed at once, so it holds no descriptor. `axum::serve` has none of
//! these. (hyper-util's version-detecting `auto` builder is not used: with a header
//! timeout set, a request it had already read waited for the timeout.)

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

/// How long a connection and a request may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// From a connection's start (or its last answer) to a request's complete headers.
    pub header_timeout: Duration,
    /// From a request's headers to its answer, its body read on the way.
    pub request_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` says so, then lets open connections finish
/// (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 (OTLP/HTTP, the API and webhooks; a TLS terminator in front speaks it
    // too); gRPC has its own listener.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, or the peer left: wait a little, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // At the cap: closed at once.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let timeout = limits.request_timeout;
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                let req = req.map(axum::body::Body::new);
                match tokio::time::timeout(timeout, app.call(req)).await {
                    Ok(answer) => answer,
                    Err(_) => Ok::<_, Infallible>(too_slow(timeout)),
                }
            }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn too_slow(timeout: Duration) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({
            "error": format!("the request was not read and answered within {} s", timeout.as_secs())
        })),
    )
        .into_response()
}
