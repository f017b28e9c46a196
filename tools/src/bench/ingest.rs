//! `tracelink-dev bench ingest` measures OTLP span ingest end to end (OTLP/HTTP protobuf
//! and OTLP/gRPC into a child `tracelink serve` pinned to one core) against the SQLite
//! writer's own ceiling; run it with `cargo build --release -p tracelink -p tracelink-dev`
//! and `./target/release/tracelink-dev bench ingest`.
//!
//! Every phase prints figures; nothing is asserted. The phases:
//!
//! 1. Generate realistic non-agent spans (HTTP server spans with client/internal children,
//!    mixed-type attributes) with a deterministic xorshift PRNG, and pre-encode every
//!    export request with prost, so the timed region only sends.
//! 2. OTLP/HTTP protobuf: a fresh child server and database, `--concurrency` keep-alive
//!    HTTP/1.1 connections driven by a minimal client on a current-thread runtime.
//! 3. OTLP/gRPC: another fresh child server and database, `--concurrency` tasks sharing
//!    one tonic channel.
//! 4. Ceilings, in this process pinned to the server core: the same rows (normalised
//!    beforehand) through [`tracelink::store::writer`] with no OTLP in front, and raw
//!    multi-row `INSERT`s of plain 1 KB rows (one per span) through sqlx with the same
//!    pragmas — the rate durable ingest must reach (issue 14).

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use tracelink::store::batch::Batch;
use tracelink::store::writer::SubmitError;
use tracelink::telemetry::Telemetry;

use super::{HttpConn, ServerChild, pin, taskset_available};

#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Spans sent per transport.
    #[arg(long, default_value_t = 200_000)]
    pub spans: usize,
    /// Spans in one export request.
    #[arg(long, default_value_t = 100)]
    pub spans_per_request: usize,
    /// Attributes on every span.
    #[arg(long, default_value_t = 20)]
    pub attributes: usize,
    /// Concurrent client requests (connections for HTTP, tasks for gRPC and the ceiling).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// CPU core the server (and the ceiling phases) is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// CPU core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_core: usize,
    /// Directory for the databases (default: a fresh temporary directory, removed afterwards).
    #[arg(long)]
    pub db_dir: Option<PathBuf>,
}

/// Backoff after the server refuses a request because its write queue is full.
const BACKOFF: Duration = Duration::from_millis(50);
/// Longest a single request may take before the benchmark gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Write queue capacity for the writer ceiling (the server's default).
const QUEUE_CAPACITY: usize = 256;
/// Rows per statement and per transaction for the raw-insert ceiling, and each row's size.
const RAW_ROWS_PER_STATEMENT: usize = 100;
const RAW_ROW_BYTES: usize = 1024;
const RAW_ROWS_PER_TX: usize = 6400;

// ---------------------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------------------

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    if args.spans == 0 || args.spans_per_request == 0 || args.concurrency == 0 {
        bail!("--spans, --spans-per-request and --concurrency must be at least 1");
    }
    let exe = super::tracelink_binary()?;
    let me = std::process::id();
    let pinning = taskset_available();
    if !pinning {
        eprintln!("warning: `taskset` is not available; the server and the client run unpinned");
    }
    let pin_self = |core: usize| {
        if pinning && let Err(e) = pin(me, core) {
            eprintln!("warning: could not pin this process to core {core}: {e:#}");
        }
    };
    let server_core = pinning.then_some(args.server_core);
    pin_self(args.client_core);

    let dirs = BenchDirs::new(args.db_dir.clone())?;
    let clk_tck = clock_ticks_per_second();

    // Everything the timed regions need is built here, outside them.
    let generated = Instant::now();
    let requests = generate(&args);
    let generate_time = generated.elapsed();
    let payloads: Vec<Vec<u8>> = requests.iter().map(|r| r.encode_to_vec()).collect();
    let payload_bytes: usize = payloads.iter().map(Vec::len).sum();
    let started = Instant::now();
    for p in &payloads {
        ExportTraceServiceRequest::decode(&p[..]).context("decoding a generated request")?;
    }
    let decode_time = started.elapsed();
    let started = Instant::now();
    let batches: Vec<Batch> = requests.iter().map(tracelink::agents::traces).collect();
    let normalise_time = started.elapsed();
    let stored_rows: usize = batches.iter().map(|b| b.spans.len()).sum();
    if stored_rows != args.spans {
        eprintln!(
            "warning: normalisation kept {stored_rows} of {} spans",
            args.spans
        );
    }
    let payloads = Arc::new(payloads);
    let n_requests = payloads.len();

    println!(
        "tracelink bench ingest: {} spans, {} spans/request, {} attributes/span, {} concurrent, {}",
        args.spans,
        args.spans_per_request,
        args.attributes,
        args.concurrency,
        match server_core {
            Some(c) => format!("server pinned to core {c}"),
            None => "server unpinned".to_string(),
        }
    );
    println!(
        "payload: {n_requests} requests, {:.1} KiB/request, {:.1} MB protobuf in total; generated in {:.2} s; client pinned to core {}; databases in {}",
        payload_bytes as f64 / n_requests as f64 / 1024.0,
        payload_bytes as f64 / 1e6,
        generate_time.as_secs_f64(),
        if pinning {
            args.client_core.to_string()
        } else {
            "-".to_string()
        },
        dirs.root.display(),
    );

    // Transport 1: OTLP/HTTP protobuf.
    let db = dirs.fresh("http-protobuf")?;
    let http = {
        let payloads = payloads.clone();
        let concurrency = args.concurrency;
        measure_transport(
            &exe,
            &db,
            server_core,
            clk_tck,
            args.spans,
            move |_, http| http_load(http, payloads, concurrency),
        )
        .context("OTLP/HTTP phase")?
    };

    // Transport 2: OTLP/gRPC. The requests are moved into the client, so none is cloned
    // in the timed region; a retried request is decoded again from its payload.
    let db = dirs.fresh("grpc")?;
    let grpc = {
        let payloads = payloads.clone();
        let concurrency = args.concurrency;
        measure_transport(
            &exe,
            &db,
            server_core,
            clk_tck,
            args.spans,
            move |grpc, _| grpc_load(grpc, requests, payloads, concurrency),
        )
        .context("OTLP/gRPC phase")?
    };

    // Ceilings, in this process on the server core.
    pin_self(args.server_core);
    let raw = {
        let db = dirs.fresh("ceiling-raw")?;
        current_thread()?.block_on(raw_ceiling(&db, stored_rows))
    };
    let writer = {
        let db = dirs.fresh("ceiling-writer")?;
        current_thread()?.block_on(writer_ceiling(&db, batches, args.concurrency))
    };
    pin_self(args.client_core);
    let (raw_rows, raw_time) = raw.context("raw sqlx insert ceiling")?;
    let (writer, writer_commits) = writer.context("writer ceiling")?;

    // The table.
    println!(
        "{:<15} {:>9} {:>7} {:>6} {:>7} {:>7} {:>13} {:>8} {:>9} {:>9}",
        "transport",
        "spans/s",
        "req/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "peak RSS MiB",
        "retries",
        "srv CPU%",
        "cli CPU%"
    );
    for (name, t) in [("http/protobuf", &http), ("grpc", &grpc)] {
        let secs = t.load.wall.as_secs_f64();
        println!(
            "{:<15} {:>9.0} {:>7.1} {:>6.1} {:>7.2} {:>7.2} {:>13} {:>8} {:>9} {:>9}",
            name,
            args.spans as f64 / secs,
            n_requests as f64 / secs,
            payload_bytes as f64 / 1e6 / secs,
            ms(t.load.percentile(50.0)),
            ms(t.load.percentile(99.0)),
            t.peak_rss_kib
                .map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
            t.load.retries,
            percent(t.server_cpu),
            percent(t.client_cpu),
        );
    }
    let ceiling = stored_rows as f64 / writer.wall.as_secs_f64();
    println!(
        "ceiling (writer, no OTLP)       spans/s {:>9.0}   ({:.2} s; per request p50 {:.2} ms, p99 {:.2} ms)",
        ceiling,
        writer.wall.as_secs_f64(),
        ms(writer.percentile(50.0)),
        ms(writer.percentile(99.0)),
    );
    println!(
        "ceiling (raw 1 KB row inserts)  rows/s  {:>9.0}   ({:.2} s; {RAW_ROWS_PER_STATEMENT} rows/statement, {RAW_ROWS_PER_TX} rows/transaction)",
        raw_rows as f64 / raw_time.as_secs_f64(),
        raw_time.as_secs_f64(),
    );
    let raw_rate = raw_rows as f64 / raw_time.as_secs_f64();
    println!(
        "ratio http/ceiling {:.0}%  grpc/ceiling {:.0}%  http/raw rows {:.2}  grpc/raw rows {:.2}",
        100.0 * args.spans as f64 / http.load.wall.as_secs_f64() / ceiling,
        100.0 * args.spans as f64 / grpc.load.wall.as_secs_f64() / ceiling,
        args.spans as f64 / http.load.wall.as_secs_f64() / raw_rate,
        args.spans as f64 / grpc.load.wall.as_secs_f64() / raw_rate,
    );
    for (name, commits, wall) in [
        ("http/protobuf", http.commits, http.load.wall),
        ("grpc", grpc.commits, grpc.load.wall),
        ("writer ceiling", writer_commits, writer.wall),
    ] {
        println!("writer, {name:<15} {}", Commits::describe(commits, wall));
    }
    let per_req = |d: Duration| ms(d) / n_requests as f64;
    println!(
        "per request, one core: protobuf decode {:.3} ms, normalise {:.3} ms, writer ceiling {:.3} ms, raw inserts {:.3} ms",
        per_req(decode_time),
        per_req(normalise_time),
        per_req(writer.wall),
        per_req(raw_time),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percent(v: Option<f64>) -> String {
    v.map_or("?".to_string(), |v| format!("{:.0}%", v * 100.0))
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a tokio runtime")
}

/// One transport's figures.
struct TransportRun {
    load: Load,
    peak_rss_kib: Option<u64>,
    /// Share of one core the server used while the client ran.
    server_cpu: Option<f64>,
    /// Share of one core this process used while the client ran.
    client_cpu: Option<f64>,
    /// The server writer's transactions over the whole run.
    commits: Option<Commits>,
}

/// Starts a child server on a fresh database, drives `client` against it on a
/// current-thread runtime, then reads the server's peak RSS and stops it.
fn measure_transport<F, Fut>(
    exe: &Path,
    db: &Path,
    core: Option<usize>,
    clk_tck: f64,
    spans: usize,
    client: F,
) -> anyhow::Result<TransportRun>
where
    F: FnOnce(SocketAddr, SocketAddr) -> Fut,
    Fut: Future<Output = anyhow::Result<Load>>,
{
    let server = ServerChild::start(exe, db, core)?;
    let rt = current_thread()?;
    let server_pid = server.pid.to_string();
    let (srv0, cli0) = (cpu_ticks(&server_pid), cpu_ticks("self"));
    let started = Instant::now();
    let load = rt.block_on(client(server.grpc, server.http))?;
    let elapsed = started.elapsed().as_secs_f64();
    let (srv1, cli1) = (cpu_ticks(&server_pid), cpu_ticks("self"));
    let commits = match rt.block_on(server_metrics(server.http)) {
        Ok(text) => Commits::parse(&text),
        Err(e) => {
            eprintln!("warning: reading the server's /metrics: {e:#}");
            None
        }
    };
    let share =
        |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / clk_tck / elapsed);
    // Dropping the runtime closes the client's connections: a gRPC channel left open
    // on a runtime nobody drives never answers the server's GOAWAY, and the server's
    // graceful shutdown would wait for it.
    drop(rt);
    let peak_rss_kib = server.stop()?;
    match current_thread()?.block_on(count_spans(db)) {
        Ok(n) if n == spans as i64 => {}
        Ok(n) => eprintln!(
            "warning: {} holds {n} spans after the run, {spans} were sent",
            db.display()
        ),
        Err(e) => eprintln!("warning: counting the stored spans: {e:#}"),
    }
    Ok(TransportRun {
        load,
        peak_rss_kib,
        server_cpu: share(srv0, srv1),
        client_cpu: share(cli0, cli1),
        commits,
    })
}

async fn count_spans(db: &Path) -> anyhow::Result<i64> {
    let db = tracelink::store::Db::open_read_only(db).await?;
    let n = db.stored_rows("traces").await;
    db.close().await;
    Ok(n?)
}

/// The benchmark's databases: one fresh subdirectory per phase.
struct BenchDirs {
    root: PathBuf,
    /// Removed on drop when the benchmark created it.
    owned: bool,
}

impl BenchDirs {
    fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        match dir {
            Some(root) => {
                std::fs::create_dir_all(&root)
                    .with_context(|| format!("creating {}", root.display()))?;
                Ok(Self { root, owned: false })
            }
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let root = std::env::temp_dir().join(format!(
                    "tracelink-bench-{}-{nanos:08x}",
                    std::process::id()
                ));
                std::fs::create_dir(&root)
                    .with_context(|| format!("creating {}", root.display()))?;
                Ok(Self { root, owned: true })
            }
        }
    }

    /// `<root>/<phase>/bench.db`, in a directory that must not exist yet.
    fn fresh(&self, phase: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(phase);
        std::fs::create_dir(&dir).with_context(|| {
            format!(
                "creating {} (it must not exist: pass an empty --db-dir)",
                dir.display()
            )
        })?;
        Ok(dir.join("bench.db"))
    }
}

impl Drop for BenchDirs {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = std::fs::remove_dir_all(&self.root)
        {
            eprintln!("warning: removing {}: {e}", self.root.display());
        }
    }
}

pub(super) fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// User + system CPU time of a process (`self` or a pid), in clock ticks.
pub(super) fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

// ---------------------------------------------------------------------------------------
// Load generation
// ---------------------------------------------------------------------------------------

/// What one client phase measured.
struct Load {
    /// First send to last acknowledged response.
    wall: Duration,
    /// Per request, first attempt to acknowledgement (backoffs included), sorted.
    latencies: Vec<Duration>,
    /// Attempts refused because the server's write queue was full.
    retries: u64,
}

impl Load {
    /// Nearest-rank percentile.
    fn percentile(&self, p: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.latencies[rank.clamp(1, n) - 1]
    }
}

/// What one worker task measured.
#[derive(Default)]
struct WorkerLoad {
    latencies: Vec<Duration>,
    retries: u64,
    last_ack: Option<Instant>,
}

async fn collect(
    started: Instant,
    workers: Vec<tokio::task::JoinHandle<anyhow::Result<WorkerLoad>>>,
) -> anyhow::Result<Load> {
    let mut load = Load {
        wall: Duration::ZERO,
        latencies: Vec::new(),
        retries: 0,
    };
    let mut last = started;
    for w in workers {
        let w = w.await.context("a load task panicked")??;
        load.latencies.extend(w.latencies);
        load.retries += w.retries;
        if let Some(t) = w.last_ack {
            last = last.max(t);
        }
    }
    load.wall = last.duration_since(started);
    load.latencies.sort_unstable();
    Ok(load)
}

/// The server's own Prometheus text from `/metrics`.
async fn server_metrics(addr: SocketAddr) -> anyhow::Result<String> {
    let mut conn = HttpConn::connect(addr).await?;
    let (status, body) =
        tokio::time::timeout(REQUEST_TIMEOUT, conn.request("GET", "/metrics", &[]))
            .await
            .context("GET /metrics timed out")??;
    if status != 200 {
        bail!("GET /metrics: HTTP {status}");
    }
    Ok(String::from_utf8_lossy(body).into_owned())
}

/// The writer's transactions, from its Prometheus histograms.
#[derive(Clone, Copy)]
struct Commits {
    count: f64,
    requests: f64,
    seconds: f64,
}

impl Commits {
    fn parse(text: &str) -> Option<Self> {
        let value = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        };
        Some(Commits {
            count: value("tracelink_commit_batch_requests_count")?,
            requests: value("tracelink_commit_batch_requests_sum")?,
            seconds: value("tracelink_commit_latency_seconds_sum")?,
        })
    }

    fn describe(commits: Option<Commits>, wall: Duration) -> String {
        match commits {
            Some(c) if c.count > 0.0 => format!(
                "{:.0} commits, {:.1} requests/commit, {:.2} ms/commit, busy {:.0}% of wall",
                c.count,
                c.requests / c.count,
                c.seconds * 1e3 / c.count,
                100.0 * c.seconds / wall.as_secs_f64()
            ),
            _ => "no commit figures".to_string(),
        }
    }
}

async fn http_load(
    addr: SocketAddr,
    payloads: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> anyhow::Result<Load> {
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(HttpConn::connect(addr).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = conns
        .into_iter()
        .map(|mut conn| {
            let payloads = payloads.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut w = WorkerLoad::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = payloads.get(i) else { break };
                    let sent = Instant::now();
                    loop {
                        let (status, resp) = tokio::time::timeout(REQUEST_TIMEOUT, conn.post(body))
                            .await
                            .with_context(|| format!("request {i} timed out"))?
                            .with_context(|| format!("request {i}"))?;
                        match status {
                            200 => break,
                            429 => {
                                w.retries += 1;
                                tokio::time::sleep(BACKOFF).await;
                            }
                            other => bail!(
                                "request {i}: HTTP {other}: {}",
                                String::from_utf8_lossy(resp).escape_debug()
                            ),
                        }
                    }
                    let now = Instant::now();
                    w.latencies.push(now - sent);
                    w.last_ack = Some(now);
                }
                Ok(w)
            })
        })
        .collect();
    collect(started, workers).await
}

async fn grpc_load(
    addr: SocketAddr,
    requests: Vec<ExportTraceServiceRequest>,
    payloads: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> anyhow::Result<Load> {
    let client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .with_context(|| format!("connecting to the gRPC server at {addr}"))?;
    let queue = Arc::new(Mutex::new(
        requests.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let started = Instant::now();
    let workers = (0..concurrency)
        .map(|_| {
            let mut client = client.clone();
            let queue = queue.clone();
            let payloads = payloads.clone();
            tokio::spawn(async move {
                let mut w = WorkerLoad::default();
                loop {
                    let next = queue
                        .lock()
                        .map_err(|_| anyhow!("the request queue lock is poisoned"))?
                        .pop_front();
                    let Some((i, mut req)) = next else { break };
                    let sent = Instant::now();
                    loop {
                        let result = tokio::time::timeout(REQUEST_TIMEOUT, client.export(req))
                            .await
                            .with_context(|| format!("request {i} timed out"))?;
                        match result {
                            Ok(_) => break,
                            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                                w.retries += 1;
                                tokio::time::sleep(BACKOFF).await;
                                let payload = payloads
                                    .get(i)
                                    .with_context(|| format!("no payload for request {i}"))?;
                                req = ExportTraceServiceRequest::decode(&payload[..])
                                    .context("decoding a request to retry it")?;
                            }
                            Err(s) => bail!("request {i}: gRPC {:?}: {}", s.code(), s.message()),
                        }
                    }
                    let now = Instant::now();
                    w.latencies.push(now - sent);
                    w.last_ack = Some(now);
                }
                Ok(w)
            })
        })
        .collect();
    collect(started, workers).await
}

// ---------------------------------------------------------------------------------------
// Ceilings
// ---------------------------------------------------------------------------------------

/// The normalised batches through the service's own writer, `concurrency` submitters.
async fn writer_ceiling(
    db: &Path,
    batches: Vec<Batch>,
    concurrency: usize,
) -> anyhow::Result<(Load, Option<Commits>)> {
    let store = tracelink::store::open(db).await?;
    let telemetry = Arc::new(Telemetry::default());
    let capacity = QUEUE_CAPACITY.max(concurrency);
    let (handle, writer) =
        tracelink::store::writer::spawn(store.writer, capacity, telemetry.clone());
    let queue = Arc::new(Mutex::new(batches.into_iter().collect::<VecDeque<_>>()));
    let started = Instant::now();
    let workers = (0..concurrency)
        .map(|_| {
            let handle = handle.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut w = WorkerLoad::default();
                loop {
                    let next = queue
                        .lock()
                        .map_err(|_| anyhow!("the batch queue lock is poisoned"))?
                        .pop_front();
                    let Some(batch) = next else { break };
                    let sent = Instant::now();
                    // The queue holds more jobs than there are submitters, so it is
                    // never full here; a refusal would be a benchmark bug.
                    match handle.submit(batch).await {
                        Ok(_) => {}
                        Err(e @ SubmitError::Overloaded(_)) => {
                            bail!("the writer queue refused a batch: {e}")
                        }
                        Err(e) => bail!("{e}"),
                    }
                    let now = Instant::now();
                    w.latencies.push(now - sent);
                    w.last_ack = Some(now);
                }
                Ok(w)
            })
        })
        .collect();
    let load = collect(started, workers).await;
    drop(handle);
    writer.await.context("the writer task")?;
    store.db.close().await;
    Ok((load?, Commits::parse(&telemetry.render(0, capacity))))
}

/// Plain ~1 KB rows, one per span, as multi-row INSERTs on a plain connection with the
/// store's pragmas into a table of their own (`id INTEGER PRIMARY KEY, body BLOB`): the
/// rate at which this machine's SQLite stores rows of that size, which durable ingest is
/// measured against. Returns the rows inserted and the time taken.
async fn raw_ceiling(db: &Path, rows: usize) -> anyhow::Result<(u64, Duration)> {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
        .disable_statement_logging()
        .connect()
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    sqlx::query("CREATE TABLE ceiling_rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .execute(&mut conn)
        .await?;
    // Distinct, incompressible-ish bodies (SQLite does not compress, but be honest).
    let mut rng = XorShift::new(0x1cb);
    let bodies: Vec<Vec<u8>> = (0..rows)
        .map(|_| {
            (0..RAW_ROW_BYTES / 8)
                .flat_map(|_| rng.next().to_le_bytes())
                .collect()
        })
        .collect();
    const HEAD: &str = "INSERT INTO ceiling_rows (id, body) VALUES ";
    let full = values_sql(HEAD, 2, RAW_ROWS_PER_STATEMENT);
    let mut inserted = 0;
    let started = Instant::now();
    let mut id = 0i64;
    for tx_rows in bodies.chunks(RAW_ROWS_PER_TX) {
        let mut tx = conn.begin().await?;
        for chunk in tx_rows.chunks(RAW_ROWS_PER_STATEMENT) {
            let sql = if chunk.len() == RAW_ROWS_PER_STATEMENT {
                full.clone()
            } else {
                values_sql(HEAD, 2, chunk.len())
            };
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for body in chunk {
                id += 1;
                q = q.bind(id).bind(&body[..]);
            }
            inserted += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
    }
    let elapsed = started.elapsed();
    conn.close().await?;
    Ok((inserted, elapsed))
}

/// `head`, then `rows` groups of `columns` placeholders, then `ON CONFLICT DO NOTHING`
/// (a span already stored is skipped, as the writer does).
fn values_sql(head: &str, columns: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(", "));
    let mut sql = String::with_capacity(head.len() + rows * (one.len() + 2) + 24);
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&one);
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

// ---------------------------------------------------------------------------------------
// Span generation
// ---------------------------------------------------------------------------------------

/// xorshift64: deterministic, fast, never zero.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(mix64(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The splitmix64 finaliser: a bijection on u64 that maps only 0 to 0, so distinct
/// non-zero counters give distinct, random-looking, non-zero IDs.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn kv(key: impl Into<String>, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::StringValue(v.into())
}

const SERVICES: &[&str] = &["widgets-api", "orders-api", "checkout-web", "inventory-svc"];
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/widgets/{id}"),
    ("GET", "/api/widgets"),
    ("POST", "/api/widgets"),
    ("PUT", "/api/widgets/{id}"),
    ("GET", "/api/orders/{id}"),
    ("POST", "/api/orders"),
    ("GET", "/api/customers/{id}/orders"),
    ("DELETE", "/api/carts/{id}/items/{item}"),
    ("GET", "/healthz"),
];
const CHILDREN: &[(&str, i32)] = &[
    ("SELECT widgets", SpanKind::Client as i32),
    ("SELECT orders", SpanKind::Client as i32),
    ("INSERT order_lines", SpanKind::Client as i32),
    ("redis GET", SpanKind::Client as i32),
    ("GET inventory-svc /stock/{sku}", SpanKind::Client as i32),
    ("serialize response", SpanKind::Internal as i32),
    ("authorize", SpanKind::Internal as i32),
    ("render template", SpanKind::Internal as i32),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
];

/// The span's attributes: HTTP semantic conventions first, then app-specific ones.
fn attributes(rng: &mut XorShift, n: usize, method: &str, route: &str) -> Vec<KeyValue> {
    let id = rng.below(1_000_000);
    let status = *rng.pick(&[200i64, 200, 200, 200, 201, 204, 304, 404, 500]);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let a = match i {
            0 => kv("http.request.method", s(method)),
            1 => kv(
                "url.path",
                s(route
                    .replace("{id}", &id.to_string())
                    .replace("{item}", "7")),
            ),
            2 => kv("url.scheme", s("https")),
            3 => kv("server.address", s("api.shop.example.com")),
            4 => kv("server.port", Value::IntValue(443)),
            5 => kv("http.route", s(route)),
            6 => kv("http.response.status_code", Value::IntValue(status)),
            7 => kv("network.protocol.version", s("1.1")),
            8 => kv("user_agent.original", s(*rng.pick(USER_AGENTS))),
            9 => kv(
                "client.address",
                s(format!(
                    "10.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                )),
            ),
            10 => kv(
                "http.request.body.size",
                Value::IntValue(rng.below(4096) as i64),
            ),
            11 => kv(
                "http.response.body.size",
                Value::IntValue(rng.below(65536) as i64),
            ),
            12 => kv("thread.id", Value::IntValue(rng.below(64) as i64)),
            13 => kv("code.function.name", s("widgets::handlers::handle")),
            14 => kv("db.system.name", s("postgresql")),
            15 => kv("cache.hit", Value::BoolValue(rng.below(2) == 0)),
            16 => kv(
                "feature_flag.new_pricing",
                Value::BoolValue(rng.below(10) == 0),
            ),
            17 => kv("sampling.rate", Value::DoubleValue(0.25)),
            18 => kv(
                "app.queue.wait_ms",
                Value::DoubleValue((rng.unit() * 5000.0).round() / 1000.0),
            ),
            19 => kv("tenant.id", s(format!("tenant-{:04}", rng.below(500)))),
            _ if i % 3 == 0 => kv(
                format!("app.extra.counter_{i}"),
                Value::IntValue(rng.below(100_000) as i64),
            ),
            _ => kv(
                format!("app.extra.label_{i}"),
                s(format!("value-{:x}", rng.next() & 0xffff_ffff)),
            ),
        };
        out.push(a);
    }
    out
}

fn resource(rng: &mut XorShift) -> Resource {
    let service = *rng.pick(SERVICES);
    let pod = format!(
        "{service}-7d9f8c{:x}-{:05x}",
        rng.below(16),
        rng.below(1 << 20)
    );
    Resource {
        attributes: vec![
            kv("service.name", s(service)),
            kv("service.namespace", s("shop")),
            kv("service.version", s("1.14.2")),
            kv("service.instance.id", s(pod.clone())),
            kv("deployment.environment.name", s("production")),
            kv("host.name", s(format!("node-{:02}", rng.below(24)))),
            kv("host.arch", s("amd64")),
            kv("os.type", s("linux")),
            kv("k8s.namespace.name", s("shop")),
            kv("k8s.pod.name", s(pod)),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.language", s("rust")),
            kv("telemetry.sdk.version", s("0.31.0")),
        ],
        ..Default::default()
    }
}

/// Every request the benchmark sends: `spans` spans in requests of `spans_per_request`,
/// each span unique by (trace id, span id) across the whole stream.
pub(super) fn generate(args: &IngestArgs) -> Vec<ExportTraceServiceRequest> {
    // 2025-01-01T00:00:00Z: traces start 3 ms apart from here.
    const BASE_NS: u64 = 1_735_689_600_000_000_000;
    let mut rng = XorShift::new(0x7472_6163_656c_696e);
    let mut trace_n: u64 = 0;
    let mut span_n: u64 = 0;
    let mut left = args.spans;
    let mut out = Vec::with_capacity(args.spans.div_ceil(args.spans_per_request));
    while left > 0 {
        let in_request = left.min(args.spans_per_request);
        left -= in_request;
        let mut spans = Vec::with_capacity(in_request);
        while spans.len() < in_request {
            // A trace of 1..=8 spans: a server root and its client/internal children.
            let size = (1 + rng.below(8) as usize).min(in_request - spans.len());
            trace_n += 1;
            let mut trace_id = Vec::with_capacity(16);
            trace_id.extend_from_slice(&mix64(trace_n).to_be_bytes());
            trace_id.extend_from_slice(&rng.next().to_be_bytes());
            let (method, route) = *rng.pick(ROUTES);
            let root_start = BASE_NS + trace_n * 3_000_000 + rng.below(1_000_000);
            let root_len = 1_000_000 + rng.below(200_000_000);
            let mut ids: Vec<Vec<u8>> = Vec::with_capacity(size);
            for k in 0..size {
                span_n += 1;
                let span_id = mix64(span_n).to_be_bytes().to_vec();
                let (name, kind, parent, start, end) = if k == 0 {
                    (
                        format!("{method} {route}"),
                        SpanKind::Server as i32,
                        Vec::new(),
                        root_start,
                        root_start + root_len,
                    )
                } else {
                    let (name, kind) = *rng.pick(CHILDREN);
                    let parent = ids[rng.below(ids.len() as u64) as usize].clone();
                    let offset = rng.below(root_len / 2);
                    let len = 1 + rng.below(root_len - offset);
                    let start = root_start + offset;
                    (name.to_string(), kind, parent, start, start + len)
                };
                let roll = rng.below(100);
                let status = match roll {
                    0 => Status {
                        code: StatusCode::Error as i32,
                        message: "upstream timed out".to_string(),
                    },
                    1..=20 => Status {
                        code: StatusCode::Ok as i32,
                        message: String::new(),
                    },
                    _ => Status::default(),
                };
                spans.push(Span {
                    trace_id: trace_id.clone(),
                    span_id: span_id.clone(),
                    parent_span_id: parent,
                    flags: 0x101,
                    name,
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes: attributes(&mut rng, args.attributes, method, route),
                    status: Some(status),
                    ..Default::default()
                });
                ids.push(span_id);
            }
        }
        out.push(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource(&mut rng)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "opentelemetry-instrumentation-axum".to_string(),
                        version: "0.9.0".to_string(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".to_string(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".to_string(),
            }],
        });
    }
    out
}
