//! `tracelink-dev bench load`: what OTLP/HTTP ingest keeps up under overload, and whether
//! `/healthz` answers while slow connections are held at a descriptor limit (issue 13).
//!
//! 1. **Calibration**: the rate `bench ingest`'s HTTP phase reaches — 8 keep-alive
//!    connections sending 100-span protobuf exports back to back — without a 429 (with
//!    fewer connections if there were any), unless `--rate` gives it. That rate is 1×.
//! 2. **1× and 2×**, each on a fresh server and database: `--clients` exporters offer
//!    their share of the rate on schedule, one export at a time on a keep-alive
//!    connection, as an OpenTelemetry SDK's batch processor does: a 429 or 503 is retried
//!    after its `Retry-After`, and batches waiting past `--client-queue` are dropped,
//!    oldest first. Goodput is the spans acknowledged within the phase per second;
//!    latency runs from an export's first send to its acknowledgement, waits for
//!    `Retry-After` included; peak RSS is the server's `VmHWM`. Every span sent is new
//!    to the database (a fresh number is written into its trace id).
//! 3. **Slow connections**: a fresh server whose descriptor limit is lowered with
//!    `prlimit --pid`, `--slow-connections` clients opened at once and held — half
//!    stalled in their headers, half trickling a body — each sending a byte a second,
//!    and `/healthz` probed on a new connection every 100 ms while they are held.
//!
//! The server is pinned to `--server-core` (it is started under `taskset -c`, so all its
//! threads are), this process to `--client-core` (`taskset -a -p`: every thread of it).
//! Nothing is asserted: the figures are printed beside the goals.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ingest::{clock_ticks_per_second, cpu_ticks};
use super::pool::Pool;
use super::{HttpConn, ServerChild, pin, taskset_available};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Spans per second taken as 1× (default: calibrated as `bench ingest` sends).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Seconds of load at each of 1× and 2×.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds of the calibration.
    #[arg(long, default_value_t = 10)]
    pub calibrate_seconds: u64,
    /// Exporters offering the load, each on its own connection (enough to offer 2×
    /// while many wait out a `Retry-After`).
    #[arg(long, default_value_t = 400)]
    pub clients: usize,
    /// Batches an exporter keeps while it waits; older ones are dropped (an SDK's
    /// default queue of 2,048 spans is 20 batches of 100).
    #[arg(long, default_value_t = 20)]
    pub client_queue: u64,
    /// Spans in one export request.
    #[arg(long, default_value_t = 100)]
    pub spans_per_request: usize,
    /// Attributes on every span.
    #[arg(long, default_value_t = 20)]
    pub attributes: usize,
    /// Slow connections held in the last phase.
    #[arg(long, default_value_t = 1100)]
    pub slow_connections: usize,
    /// The server's descriptor limit in the last phase.
    #[arg(long, default_value_t = 1024)]
    pub fd_limit: u64,
    /// Seconds the slow connections are held while `/healthz` is probed.
    #[arg(long, default_value_t = 20)]
    pub slow_seconds: u64,
    /// Only the slow-connection phase.
    #[arg(long)]
    pub slow_only: bool,
    /// CPU core the server is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// CPU core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_core: usize,
}

/// Connections of `bench ingest`'s HTTP phase, the calibration's starting point.
const CALIBRATION_CONNECTIONS: usize = 8;
/// Written over the first 8 bytes of every generated trace id, and replaced per send.
const MARK: [u8; 8] = *b"\xa7TLBENCH";
/// The wait when a refusal names none.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// A `/healthz` probe slower than this failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Body length a trickling slow client announces.
const TRICKLED_BODY: usize = 64 * 1024;

pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.spans_per_request == 0 || args.seconds == 0 {
        bail!("--clients, --spans-per-request and --seconds must be at least 1");
    }
    let exe = super::tracelink_binary()?;
    let pinning = taskset_available();
    if pinning {
        pin(std::process::id(), args.client_core)?;
    } else {
        eprintln!("warning: `taskset` is not available; the server and the client run unpinned");
    }
    let core = pinning.then_some(args.server_core);
    raise_own_fd_limit(args.slow_connections as u64 + 256);
    let dirs = Dirs::new()?;
    let pool = Arc::new(Pool::new(MARK, args.spans_per_request, args.attributes)?);
    println!(
        "tracelink bench load: OTLP/HTTP protobuf, {} spans/request, {} attributes/span, {:.1} KiB/request; {}",
        args.spans_per_request,
        args.attributes,
        pool.mean_bytes() / 1024.0,
        if pinning {
            format!(
                "server pinned to core {} (taskset -c), load generator to core {} (taskset -a -p)",
                args.server_core, args.client_core
            )
        } else {
            "unpinned".to_string()
        }
    );

    if !args.slow_only {
        offered_load(&exe, &dirs, core, &args, &pool)?;
    }
    let slow = held_slow(&exe, &dirs.fresh("slow")?, core, &args)?;
    slow.print(&args);
    Ok(())
}

/// Calibration, then 1× and 2×.
fn offered_load(
    exe: &Path,
    dirs: &Dirs,
    core: Option<usize>,
    args: &LoadArgs,
    pool: &Arc<Pool>,
) -> anyhow::Result<()> {
    let rate = match args.rate {
        Some(r) => {
            println!("1× = {r} spans/s (--rate)");
            f64::from(r)
        }
        None => calibrate(exe, &dirs.fresh("calibration")?, core, args, pool)?,
    };
    let mut phases = Vec::new();
    for (name, factor) in [("1×", 1.0), ("2×", 2.0)] {
        let db = dirs.fresh(&format!("load-{factor}x"))?;
        let figures = offer(exe, &db, core, args, pool, rate * factor)
            .with_context(|| format!("the {name} phase"))?;
        phases.push((name, figures));
    }
    println!(
        "{:<4} {:>10} {:>10} {:>6} {:>8} {:>8} {:>13} {:>7} {:>9} {:>8} {:>8} {:>8}",
        "load",
        "offered/s",
        "goodput/s",
        "of 1×",
        "p50 ms",
        "p99 ms",
        "peak RSS MiB",
        "429s",
        "dropped",
        "unacked",
        "srv CPU",
        "gen CPU"
    );
    let base = phases[0].1.goodput;
    let percent = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{:.0}%", v * 100.0));
    for (name, p) in &phases {
        println!(
            "{:<4} {:>10.0} {:>10.0} {:>5.0}% {:>8.1} {:>8.1} {:>13} {:>7} {:>9} {:>8} {:>8} {:>8}",
            name,
            p.offered,
            p.goodput,
            100.0 * p.goodput / base,
            ms(p.p50),
            ms(p.p99),
            mib(p.peak_rss_kib),
            p.refusals,
            p.dropped_spans,
            p.unacked,
            percent(p.server_cpu),
            percent(p.client_cpu),
        );
    }
    println!(
        "(goodput: spans acknowledged within the {} s per second; p50/p99: first send to acknowledgement, Retry-After waits included; dropped: spans the exporters' queues let go; unacked: exports unanswered when the phase ended)",
        args.seconds
    );
    let double = &phases[1].1;
    let share = double.goodput / base;
    let rss = double.peak_rss_kib.map(|k| k as f64 / 1024.0);
    println!(
        "goals at 2×: goodput ≥ 80% of 1× — {} ({:.0}%); peak RSS ≤ 512 MiB — {} ({} MiB)",
        met(share >= 0.8),
        share * 100.0,
        rss.map_or("unknown", |r| met(r <= 512.0)),
        mib(double.peak_rss_kib),
    );
    if double.conn_errors + phases[0].1.conn_errors > 0 {
        println!(
            "connections lost and reopened by the clients: 1× {}, 2× {}",
            phases[0].1.conn_errors, double.conn_errors
        );
    }

    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a tokio runtime")
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One slow client and 1,100 of them need descriptors of their own.
fn raise_own_fd_limit(needed: u64) {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok())
        });
    if soft.is_some_and(|s| s >= needed) {
        return;
    }
    let ok = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={needed}:"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "warning: could not raise this process's descriptor limit to {needed}; some slow connections may fail to open"
        );
    }
}

/// The phases' databases, each in a fresh directory under one temporary root.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new() -> anyhow::Result<Self> {
        let root =
            std::env::temp_dir().join(format!("tracelink-bench-load-{}", std::process::id()));
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Self { root })
    }

    fn fresh(&self, phase: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(phase);
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir.join("bench.db"))
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// Calibration: as `bench ingest` sends
// ---------------------------------------------------------------------------------------

fn calibrate(
    exe: &Path,
    db: &Path,
    core: Option<usize>,
    args: &LoadArgs,
    pool: &Arc<Pool>,
) -> anyhow::Result<f64> {
    let secs = args.calibrate_seconds.max(1);
    let mut connections = CALIBRATION_CONNECTIONS;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let server = ServerChild::start(exe, db.with_extension(format!("{attempt}")), core)?;
        let rt = runtime()?;
        let (acked, refused) = rt.block_on(back_to_back(server.http, pool, connections, secs))?;
        drop(rt);
        server.stop()?;
        let rate = acked as f64 / secs as f64;
        println!(
            "calibration: {connections} connections sending back to back for {secs} s: {rate:.0} spans/s acknowledged, {refused} refused with 429"
        );
        if refused == 0 || connections == 1 {
            if refused > 0 {
                eprintln!("warning: even one connection was refused; 1× is its rate");
            }
            println!("1× = {rate:.0} spans/s");
            return Ok(rate);
        }
        connections /= 2;
    }
}

/// `connections` keep-alive connections sending for `secs`; spans acknowledged and
/// refusals.
async fn back_to_back(
    addr: SocketAddr,
    pool: &Arc<Pool>,
    connections: usize,
    secs: u64,
) -> anyhow::Result<(u64, u64)> {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = HttpConn::connect(addr).await?;
                let mut buf = Vec::new();
                let (mut acked, mut refused) = (0u64, 0u64);
                loop {
                    pool.next(&mut buf);
                    let Ok(answer) = tokio::time::timeout_at(end, conn.post(&buf)).await else {
                        break;
                    };
                    match answer?.0 {
                        200 => acked += pool.spans_per_request,
                        429 | 503 => {
                            refused += 1;
                            let wait = conn.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
                            tokio::time::sleep_until(end.min(tokio::time::Instant::now() + wait))
                                .await;
                        }
                        other => bail!("HTTP {other} during the calibration"),
                    }
                }
                Ok((acked, refused))
            })
        })
        .collect();
    let (mut acked, mut refused) = (0, 0);
    for t in tasks {
        let (a, r) = t.await.context("a calibration task panicked")??;
        acked += a;
        refused += r;
    }
    Ok((acked, refused))
}

// ---------------------------------------------------------------------------------------
// Offered load
// ---------------------------------------------------------------------------------------

/// One phase of offered load.
struct Offered {
    offered: f64,
    goodput: f64,
    p50: Duration,
    p99: Duration,
    peak_rss_kib: Option<u64>,
    refusals: u64,
    dropped_spans: u64,
    /// Exports still unacknowledged (waiting or retrying) when the phase ended.
    unacked: u64,
    conn_errors: u64,
    /// Shares of a core the server and this process used.
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

/// What one exporter saw.
#[derive(Default)]
struct Exporter {
    acked_spans: u64,
    latencies: Vec<Duration>,
    refusals: u64,
    dropped: u64,
    unacked: u64,
    conn_errors: u64,
}

/// An exporter's schedule: its batches fall due every `every` from `first`.
#[derive(Clone, Copy)]
struct Schedule {
    first: tokio::time::Instant,
    every: Duration,
    end: tokio::time::Instant,
}

impl Schedule {
    /// Batches due by `now`.
    fn due(&self, now: tokio::time::Instant) -> u64 {
        if now < self.first {
            return 0;
        }
        ((now - self.first).as_secs_f64() / self.every.as_secs_f64()) as u64 + 1
    }

    fn due_at(&self, n: u64) -> tokio::time::Instant {
        self.first + self.every.mul_f64(n as f64)
    }
}

fn offer(
    exe: &Path,
    db: &Path,
    core: Option<usize>,
    args: &LoadArgs,
    pool: &Arc<Pool>,
    rate: f64,
) -> anyhow::Result<Offered> {
    let server = ServerChild::start(exe, db, core)?;
    let rt = runtime()?;
    let pid = server.pid.to_string();
    let (srv0, cli0, started) = (cpu_ticks(&pid), cpu_ticks("self"), Instant::now());
    let exporters = rt.block_on(exporters(server.http, args, pool, rate));
    let (srv1, cli1, elapsed) = (cpu_ticks(&pid), cpu_ticks("self"), started.elapsed());
    let share = |a: Option<u64>, b: Option<u64>| {
        Some(b?.saturating_sub(a?) as f64 / clock_ticks_per_second() / elapsed.as_secs_f64())
    };
    drop(rt);
    let peak_rss_kib = server.stop()?;
    let exporters = exporters?;
    let mut latencies: Vec<Duration> = exporters
        .iter()
        .flat_map(|e| e.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    let sum = |f: fn(&Exporter) -> u64| exporters.iter().map(f).sum::<u64>();
    Ok(Offered {
        offered: rate,
        goodput: sum(|e| e.acked_spans) as f64 / args.seconds as f64,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        peak_rss_kib,
        refusals: sum(|e| e.refusals),
        dropped_spans: sum(|e| e.dropped) * pool.spans_per_request,
        unacked: sum(|e| e.unacked),
        conn_errors: sum(|e| e.conn_errors),
        server_cpu: share(srv0, srv1),
        client_cpu: share(cli0, cli1),
    })
}

async fn exporters(
    addr: SocketAddr,
    args: &LoadArgs,
    pool: &Arc<Pool>,
    rate: f64,
) -> anyhow::Result<Vec<Exporter>> {
    let requests_per_sec = rate / pool.spans_per_request as f64;
    let every = Duration::from_secs_f64(args.clients as f64 / requests_per_sec);
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.clients)
        .map(|k| {
            let schedule = Schedule {
                // Staggered evenly over one interval.
                first: start + every.mul_f64(k as f64 / args.clients as f64),
                every,
                end,
            };
            tokio::spawn(export(addr, schedule, args.client_queue, pool.clone()))
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.context("an exporter panicked")??);
    }
    Ok(out)
}

/// One exporter: sends its batches as they fall due, one at a time, retrying a refused
/// one after its `Retry-After`; a batch waiting behind `queue` others is dropped.
async fn export(
    addr: SocketAddr,
    schedule: Schedule,
    queue: u64,
    pool: Arc<Pool>,
) -> anyhow::Result<Exporter> {
    let end = schedule.end;
    let mut out = Exporter::default();
    let mut conn = HttpConn::connect(addr).await?;
    let mut buf = Vec::new();
    let mut taken = 0u64;
    loop {
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        let waiting = schedule.due(now) - taken;
        if waiting > queue {
            out.dropped += waiting - queue;
            taken += waiting - queue;
        }
        if waiting == 0 {
            tokio::time::sleep_until(schedule.due_at(taken).min(end)).await;
            continue;
        }
        taken += 1;
        pool.next(&mut buf);
        let first = tokio::time::Instant::now();
        loop {
            let Ok(answer) = tokio::time::timeout_at(end, conn.post(&buf)).await else {
                out.unacked += 1;
                break;
            };
            let status = match answer {
                Ok((status @ (200 | 429 | 503), _)) => status,
                Ok((status, body)) => bail!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(body).escape_debug()
                ),
                Err(_) => {
                    // The server closed the connection (as it may after refusing a
                    // body it did not read): open another and send again.
                    out.conn_errors += 1;
                    conn = loop {
                        match HttpConn::connect(addr).await {
                            Ok(c) => break c,
                            Err(_) if tokio::time::Instant::now() < end => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(e) => return Err(e),
                        }
                    };
                    continue;
                }
            };
            if status == 200 {
                out.acked_spans += pool.spans_per_request;
                out.latencies.push(first.elapsed());
                break;
            }
            out.refusals += 1;
            let wait = conn.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
            tokio::time::sleep_until(end.min(tokio::time::Instant::now() + wait)).await;
        }
    }
    // Batches that fell due and were never sent.
    out.unacked += schedule.due(end).saturating_sub(taken);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Slow connections at a descriptor limit
// ---------------------------------------------------------------------------------------

struct Slow {
    fd_limit: Option<u64>,
    opened: usize,
    failed_to_open: usize,
    /// Closed by the server within a second of opening (past its connection cap).
    closed_at_once: usize,
    /// Closed by the server later (a header or request timeout).
    cut_off: usize,
    held_at_end: usize,
    /// Descriptors the server had open: the most seen, and at the end of the hold.
    server_fds_peak: Option<usize>,
    server_fds: Option<usize>,
    before: Vec<Duration>,
    during: Vec<Duration>,
    failures: usize,
    /// First probe answered after the slow connections were opened, seconds into the hold.
    first_answer: Option<Duration>,
    /// Last probe that failed, seconds into the hold.
    last_failure: Option<Duration>,
    peak_rss_kib: Option<u64>,
}

impl Slow {
    fn print(&self, args: &LoadArgs) {
        println!(
            "slow connections: {} ({} stalled in headers, {} trickling a {} KiB body), a byte a second each, held {} s; server descriptor limit {} (prlimit), --max-connections default",
            args.slow_connections,
            args.slow_connections.div_ceil(2),
            args.slow_connections / 2,
            TRICKLED_BODY / 1024,
            args.slow_seconds,
            self.fd_limit.map_or("?".to_string(), |l| l.to_string()),
        );
        println!(
            "  opened {}, not opened {}; closed by the server at once {}, cut off later {}, still held at the end {}; server descriptors: at most {}, at the end {}; server peak RSS {} MiB",
            self.opened,
            self.failed_to_open,
            self.closed_at_once,
            self.cut_off,
            self.held_at_end,
            self.server_fds_peak
                .map_or("?".to_string(), |n| n.to_string()),
            self.server_fds.map_or("?".to_string(), |n| n.to_string()),
            mib(self.peak_rss_kib),
        );
        println!(
            "  /healthz before: p50 {:.2} ms, p99 {:.2} ms; while held: {} probes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed{}",
            ms(percentile(&self.before, 50.0)),
            ms(percentile(&self.before, 99.0)),
            self.during.len() + self.failures,
            ms(percentile(&self.during, 50.0)),
            ms(percentile(&self.during, 99.0)),
            ms(self.during.last().copied().unwrap_or_default()),
            self.failures,
            match (self.first_answer, self.last_failure) {
                (None, _) => " (none answered)".to_string(),
                (Some(_), None) => String::new(),
                (Some(a), Some(f)) => format!(
                    " (first answer {:.1} s, last failure {:.1} s into the hold)",
                    a.as_secs_f64(),
                    f.as_secs_f64()
                ),
            }
        );
    }
}

/// Shared counts of the slow clients.
#[derive(Default)]
struct SlowCounts {
    attempted: AtomicUsize,
    opened: AtomicUsize,
    failed: AtomicUsize,
    closed_at_once: AtomicUsize,
    cut_off: AtomicUsize,
    held: AtomicUsize,
}

fn held_slow(exe: &Path, db: &Path, core: Option<usize>, args: &LoadArgs) -> anyhow::Result<Slow> {
    let server = ServerChild::start(exe, db, core)?;
    let pid = server.pid.to_string();
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            &format!("--nofile={}:{}", args.fd_limit, args.fd_limit),
        ])
        .status()
        .context("running prlimit")?;
    if !status.success() {
        bail!("prlimit --pid {pid} failed ({status})");
    }
    let fd_limit = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        });
    let rt = runtime()?;
    let figures = rt.block_on(hold(server.http, args, &pid));
    drop(rt);
    let peak_rss_kib = server.stop()?;
    let mut figures = figures?;
    figures.fd_limit = fd_limit;
    figures.peak_rss_kib = peak_rss_kib;
    Ok(figures)
}

async fn hold(addr: SocketAddr, args: &LoadArgs, pid: &str) -> anyhow::Result<Slow> {
    let mut before = Vec::new();
    for _ in 0..20 {
        before.push(
            probe(addr)
                .await
                .context("/healthz before the slow connections")?,
        );
    }
    before.sort_unstable();

    let counts = Arc::new(SlowCounts::default());
    let opened_by = tokio::time::Instant::now() + Duration::from_secs(5);
    let end = opened_by + Duration::from_secs(args.slow_seconds);
    let tasks: Vec<_> = (0..args.slow_connections)
        .map(|k| tokio::spawn(slow_client(addr, k % 2 == 0, end, counts.clone())))
        .collect();
    // Every slow client has tried to connect before the hold starts.
    while counts.attempted.load(Ordering::Relaxed) < args.slow_connections
        && tokio::time::Instant::now() < opened_by
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hold_start = tokio::time::Instant::now();
    let mut during = Vec::new();
    let mut failures = 0;
    let mut first_answer = None;
    let mut last_failure = None;
    let mut server_fds = None;
    let mut server_fds_peak = None;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tokio::time::Instant::now() >= end {
            break;
        }
        match probe(addr).await {
            Ok(d) => {
                during.push(d);
                first_answer.get_or_insert(hold_start.elapsed());
            }
            Err(_) => {
                failures += 1;
                last_failure = Some(hold_start.elapsed());
            }
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            let n = fds.count();
            server_fds = Some(n);
            server_fds_peak = server_fds_peak.max(Some(n));
        }
    }
    for t in tasks {
        t.await.context("a slow client panicked")?;
    }
    during.sort_unstable();
    let c = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    Ok(Slow {
        fd_limit: None,
        opened: c(&counts.opened),
        failed_to_open: c(&counts.failed),
        closed_at_once: c(&counts.closed_at_once),
        cut_off: c(&counts.cut_off),
        held_at_end: c(&counts.held),
        server_fds_peak,
        server_fds,
        before,
        during,
        failures,
        first_answer,
        last_failure,
        peak_rss_kib: None,
    })
}

/// One slow client until `end`: headers that never end, or a body announced and
/// trickled, a byte a second; it counts how the server closed it, if it did.
async fn slow_client(
    addr: SocketAddr,
    in_headers: bool,
    end: tokio::time::Instant,
    counts: Arc<SlowCounts>,
) {
    counts.attempted.fetch_add(1, Ordering::Relaxed);
    let Ok(mut s) = TcpStream::connect(addr).await else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    counts.opened.fetch_add(1, Ordering::Relaxed);
    let opened = tokio::time::Instant::now();
    let head = if in_headers {
        "POST /v1/traces HTTP/1.1\r\nHost: bench\r\nX-Slow: ".to_string()
    } else {
        format!(
            "POST /v1/traces HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-protobuf\r\nContent-Length: {TRICKLED_BODY}\r\n\r\n"
        )
    };
    let mut closed = s.write_all(head.as_bytes()).await.is_err();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !closed {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = tick.tick() => {}
        }
        // An answer (408, 429) or the end of the stream: the server let it go.
        closed = !s
            .try_read(&mut [0; 512])
            .is_err_and(|e| e.kind() == ErrorKind::WouldBlock)
            || s.write_all(b"x").await.is_err();
    }
    if !closed {
        counts.held.fetch_add(1, Ordering::Relaxed);
    } else if opened.elapsed() < Duration::from_millis(1500) {
        counts.closed_at_once.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.cut_off.fetch_add(1, Ordering::Relaxed);
    }
}

/// `GET /healthz` on a new connection; its latency, or why it failed.
async fn probe(addr: SocketAddr) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    })
    .await
    .context("timed out")??;
    if !answer.starts_with(b"HTTP/1.1 200") {
        bail!(
            "answered {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(40)])
        );
    }
    Ok(started.elapsed())
}
