//! The gRPC listener's connections (HTTP/2, served by tonic): capped, and stalled ones
//! closed, as the HTTP listener's are ([`super`]).
//!
//! [`incoming`] accepts connections for `serve_with_incoming`, at most
//! [`GrpcLimits::max_connections`] open at once. A connection must send the HTTP/2 client
//! preface within the handshake timeout (a client that connects and sends nothing, or
//! trickles, is closed); after the handshake, tonic's HTTP/2 keep-alive pings it every
//! interval and closes it when a ping is not answered in time (see [`crate::server`]), so
//! a peer that stops reading or writing leaves. At the cap, the connection that has been
//! silent longest is closed to make room — one still in its handshake first (oldest
//! first), else the one whose last bytes are oldest: a live exporter answers the
//! keep-alive pings, so it is never silent for long — and the new one is served.

use std::collections::BTreeMap;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The HTTP/2 client preface: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
const PREFACE_LEN: u64 = 24;

/// How the gRPC listener bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct GrpcLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// From a connection's start to its HTTP/2 preface.
    pub handshake_timeout: Duration,
}

/// What the listener knows of an open connection.
struct Open {
    /// Bytes read so far reached the preface.
    handshaken: Arc<AtomicBool>,
    /// Milliseconds from the listener's start to the connection's last bytes read.
    last_read_ms: Arc<AtomicU64>,
    close: Arc<Notify>,
}

/// Open connections by age (ids only grow).
struct Registry {
    open: Mutex<BTreeMap<u64, Open>>,
    started: Instant,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Closes the connection silent longest (one in its handshake first); whether there
    /// was one.
    fn close_most_silent(&self) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let quietest = open
            .iter()
            .min_by_key(|(id, o)| {
                (
                    o.handshaken.load(Ordering::Acquire),
                    o.last_read_ms.load(Ordering::Acquire),
                    **id,
                )
            })
            .map(|(id, _)| *id);
        match quietest.and_then(|id| open.remove(&id)) {
            Some(o) => {
                o.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }
}

/// How long a new connection waits for the slot of one closed to make room.
const MAKE_ROOM: Duration = Duration::from_millis(200);

/// The connections of `listener`, capped and watched, for tonic's
/// `serve_with_incoming_shutdown`; accepting ends when `stop` says so or tonic stops
/// asking.
pub fn incoming(
    listener: TcpListener,
    limits: GrpcLimits,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(1);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let registry = Arc::new(Registry {
        open: Mutex::new(BTreeMap::new()),
        started: Instant::now(),
    });
    tokio::spawn(async move {
        let mut next_id: u64 = 0;
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors, or the peer left: wait a little, keep serving.
                        tracing::warn!(error = %e, "accepting a gRPC connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
                _ = tx.closed() => break,
            };
            let permit = match permits.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) if registry.close_most_silent() => {
                    match tokio::time::timeout(MAKE_ROOM, permits.clone().acquire_owned()).await {
                        Ok(Ok(p)) => p,
                        _ => continue,
                    }
                }
                Err(_) => continue,
            };
            next_id += 1;
            let conn = Conn::new(stream, next_id, permit, registry.clone(), limits);
            if tx.send(Ok(conn)).await.is_err() {
                break;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// An accepted gRPC connection: its stream, its slot under the cap, and the watch kept on
/// it. Dropping it (tonic does when the connection ends) frees the slot.
pub struct Conn {
    stream: TcpStream,
    id: u64,
    registry: Arc<Registry>,
    _permit: OwnedSemaphorePermit,
    read: u64,
    handshaken: Arc<AtomicBool>,
    last_read_ms: Arc<AtomicU64>,
    /// Until the preface has arrived.
    handshake_deadline: Option<Pin<Box<Sleep>>>,
    closed: Pin<Box<tokio::sync::futures::OwnedNotified>>,
    /// Closed to make room (or timed out): every later read and write fails.
    aborted: Option<io::ErrorKind>,
}

impl Conn {
    fn new(
        stream: TcpStream,
        id: u64,
        permit: OwnedSemaphorePermit,
        registry: Arc<Registry>,
        limits: GrpcLimits,
    ) -> Conn {
        let _ = stream.set_nodelay(true);
        let handshaken = Arc::new(AtomicBool::new(false));
        let last_read_ms = Arc::new(AtomicU64::new(registry.now_ms()));
        let close = Arc::new(Notify::new());
        if let Ok(mut open) = registry.open.lock() {
            open.insert(
                id,
                Open {
                    handshaken: handshaken.clone(),
                    last_read_ms: last_read_ms.clone(),
                    close: close.clone(),
                },
            );
        }
        Conn {
            stream,
            id,
            registry,
            _permit: permit,
            read: 0,
            handshaken,
            last_read_ms,
            handshake_deadline: Some(Box::pin(tokio::time::sleep(limits.handshake_timeout))),
            closed: Box::pin(close.notified_owned()),
            aborted: None,
        }
    }

    /// Whether the connection is to end: closed to make room, or its handshake too slow.
    fn check(&mut self, cx: &mut Context<'_>) -> Result<(), io::Error> {
        if self.aborted.is_none() && self.closed.as_mut().poll(cx).is_ready() {
            self.aborted = Some(io::ErrorKind::ConnectionAborted);
        }
        if self.aborted.is_none()
            && let Some(deadline) = self.handshake_deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.aborted = Some(io::ErrorKind::TimedOut);
        }
        match self.aborted {
            Some(kind) => Err(io::Error::new(
                kind,
                if kind == io::ErrorKind::TimedOut {
                    "no HTTP/2 preface within the handshake timeout"
                } else {
                    "closed to make room for a new connection"
                },
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.last_read_ms
                .store(this.registry.now_ms(), Ordering::Release);
            this.read = this.read.saturating_add(n as u64);
            if this.read >= PREFACE_LEN && this.handshake_deadline.take().is_some() {
                this.handshaken.store(true, Ordering::Release);
            }
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}
