//! The HTTP listener (HTTP/1.1). Slow or stalled clients must not hold the service:
//! headers must arrive within a timeout (also for a client that sends nothing, and for
//! an idle keep-alive connection), a request — its body included — must be read and
//! answered within another, and connections are capped below the descriptor limit. At
//! the cap, the connection that has waited longest without sending a request (stalled
//! in its headers, or idle between requests) is closed to make room: slow clients
//! cannot keep `/healthz` or a real exporter out for the header timeout. When every
//! open connection is inside a request, a new one is closed at once, holding no
//! descriptor. `axum::serve` has none of these. (hyper-util's version-detecting `auto` builder is not used: with a header
//! timeout set, a request it had already read waited for the timeout.)

pub mod grpc;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
use tokio::sync::{Notify, Semaphore, watch};
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

/// An open connection: whether it is inside a request, and how to close it.
struct Open {
    busy: Arc<AtomicBool>,
    close: Arc<Notify>,
}

/// Open connections by age (ids only grow).
#[derive(Default)]
struct Registry(Mutex<BTreeMap<u64, Open>>);

impl Registry {
    /// Closes the oldest connection waiting for a request's headers; whether one was.
    fn close_oldest_waiting(&self) -> bool {
        let Ok(mut open) = self.0.lock() else {
            return false;
        };
        let oldest = open
            .iter()
            .find(|(_, o)| !o.busy.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| open.remove(&id)) {
            Some(o) => {
                o.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn insert(&self, id: u64, o: Open) {
        if let Ok(mut open) = self.0.lock() {
            open.insert(id, o);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.0.lock() {
            open.remove(&id);
        }
    }
}

/// How long a new connection waits for the slot of one closed to make room.
const MAKE_ROOM: Duration = Duration::from_millis(200);

/// Serves `app` on `listener` until `stop` says so, then lets open connections finish
/// (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let registry = Arc::new(Registry::default());
    let mut next_id: u64 = 0;
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
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            // At the cap: room is made by closing the longest-waiting idle connection;
            // with none, this one is closed at once.
            Err(_) if registry.close_oldest_waiting() => {
                match tokio::time::timeout(MAKE_ROOM, permits.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => continue,
                }
            }
            Err(_) => continue,
        };
        next_id += 1;
        let id = next_id;
        let busy = Arc::new(AtomicBool::new(false));
        let close = Arc::new(Notify::new());
        registry.insert(
            id,
            Open {
                busy: busy.clone(),
                close: close.clone(),
            },
        );
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let timeout = limits.request_timeout;
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            let busy = busy.clone();
            busy.store(true, Ordering::Release);
            async move {
                let req = req.map(axum::body::Body::new);
                let answer = match tokio::time::timeout(timeout, app.call(req)).await {
                    Ok(answer) => answer,
                    Err(_) => Ok::<_, Infallible>(too_slow(timeout)),
                };
                // Answered: waiting for the next request's headers again.
                busy.store(false, Ordering::Release);
                answer
            }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
        let registry = registry.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                // Closed to make room for a new connection.
                _ = close.notified() => {}
            }
            registry.remove(id);
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
