//! `tracelink-dev bench soak`: whether disk use stays flat under a steady span load once
//! the `--retain-raw` window is full (issue 14).
//!
//! A child `tracelink serve` on a fresh database with `--retain-raw` (default `30s`) is
//! offered a steady OTLP/HTTP protobuf span load (default 5,000 spans/s: `bench ingest`'s
//! spans, 100 to an export, on a few keep-alive connections, each export on schedule and
//! a refused one retried after its `Retry-After`) for `--minutes`. Every span is new to
//! the database (a fresh number is written into its trace id on every send). Every
//! `--sample-seconds` a line gives the spans acknowledged, the rows in `spans` and the age
//! of the oldest (a read-only query), and the size of the `.db` and `-wal` files.
//!
//! The verdict compares the size at twice the window (60 s with `--retain-raw off`) with
//! the size at the end: flat means within ±20%. SQLite reuses the pages the pruner frees
//! without shrinking the file, so with retention the file should level off, not shrink.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::ingest::{clock_ticks_per_second, cpu_ticks};
use super::pool::Pool;
use super::{HttpConn, ServerChild, pin, taskset_available};

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// The server's `--retain-raw`: a duration like `30s`, `5m`, `12h`, or `off`.
    #[arg(long, default_value = "30s")]
    pub retain_raw: String,
    /// Minutes of load.
    #[arg(long, default_value_t = 4.0)]
    pub minutes: f64,
    /// Spans per second offered.
    #[arg(long, default_value_t = 5000)]
    pub rate: u32,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub sample_seconds: u64,
    /// Keep-alive connections sharing the load.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Spans in one export request.
    #[arg(long, default_value_t = 100)]
    pub spans_per_request: usize,
    /// Attributes on every span.
    #[arg(long, default_value_t = 20)]
    pub attributes: usize,
    /// CPU core the server is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// CPU core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_core: usize,
    /// Directory for the database, kept afterwards (default: a temporary directory,
    /// removed afterwards).
    #[arg(long)]
    pub db_dir: Option<PathBuf>,
}

/// Written over the first 8 bytes of every generated trace id, and replaced per send.
const MARK: [u8; 8] = *b"\xa7TLSOAK_";
/// The wait when a refusal names none.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Reference time for the verdict when nothing is pruned.
const OFF_REFERENCE: Duration = Duration::from_secs(60);
/// Largest change between the reference and the end that still counts as flat.
const FLAT: f64 = 0.20;

pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.connections == 0 || args.spans_per_request == 0 {
        bail!("--rate, --connections and --spans-per-request must be at least 1");
    }
    if !args.minutes.is_finite() || args.minutes <= 0.0 || args.sample_seconds == 0 {
        bail!("--minutes and --sample-seconds must be positive");
    }
    let window = tracelink::retention::parse_retention(&args.retain_raw)
        .map_err(|e| anyhow!("--retain-raw: {e}"))?
        .0;
    let exe = super::tracelink_binary()?;
    let pinning = taskset_available();
    if pinning {
        pin(std::process::id(), args.client_core)?;
    } else {
        eprintln!("warning: `taskset` is not available; the server and the client run unpinned");
    }
    let core = pinning.then_some(args.server_core);
    let dir = SoakDir::new(args.db_dir.clone())?;
    let db = dir.root.join("soak.db");
    let pool = Arc::new(Pool::new(MARK, args.spans_per_request, args.attributes)?);
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    println!(
        "tracelink bench soak: --retain-raw {}, {} spans/s offered for {:.1} min over {} connections, {} spans/request ({:.1} KiB), {} attributes/span; {}; database {}",
        args.retain_raw,
        args.rate,
        args.minutes,
        args.connections,
        args.spans_per_request,
        pool.mean_bytes() / 1024.0,
        args.attributes,
        if pinning {
            format!(
                "server on core {}, load generator on core {}",
                args.server_core, args.client_core
            )
        } else {
            "unpinned".to_string()
        },
        db.display(),
    );

    let server = ServerChild::start_with(
        &exe,
        &db,
        core,
        &["--retain-raw".to_string(), args.retain_raw.clone()],
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a tokio runtime")?;
    let samples = rt.block_on(soak(server.http, &args, &pool, &db, server.pid, duration));
    drop(rt);
    let peak_rss_kib = server.stop()?;
    let soaked = samples?;

    let samples = &soaked.samples;
    let reference = window.map_or(OFF_REFERENCE, |w| w * 2);
    println!(
        "offered {} spans, acknowledged {}, refused {} times (429/503), {} connections reopened, {} exports unanswered at the end; server peak RSS {} MiB",
        soaked.offered,
        soaked.acked,
        soaked.refusals,
        soaked.conn_errors,
        soaked.unacked,
        peak_rss_kib.map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
    );
    let at_reference = samples.iter().find(|s| s.elapsed >= reference);
    let (Some(at), Some(last)) = (at_reference, samples.last()) else {
        println!(
            "verdict: no sample at {} s ({}); run longer than {:.1} min",
            reference.as_secs(),
            window.map_or("--retain-raw off: 60 s".to_string(), |_| {
                "2× the window".to_string()
            }),
            args.minutes
        );
        return Ok(());
    };
    if std::ptr::eq(at, last) {
        println!(
            "verdict: the sample at {:.0} s (2× the window) is the last; run longer than {:.1} min",
            at.elapsed.as_secs_f64(),
            args.minutes
        );
        return Ok(());
    }
    let change = last.total() as f64 / at.total() as f64 - 1.0;
    let rows_change = last.rows as f64 / at.rows.max(1) as f64 - 1.0;
    println!(
        "verdict (--retain-raw {}): .db+-wal {:.1} MiB at {:.0} s ({}) vs {:.1} MiB at {:.0} s: {:+.0}% — {}; rows in spans {} vs {} ({:+.0}%), oldest {} s old at the end",
        args.retain_raw,
        mib(at.total()),
        at.elapsed.as_secs_f64(),
        if window.is_some() {
            "2× the window"
        } else {
            "no window; 60 s"
        },
        mib(last.total()),
        last.elapsed.as_secs_f64(),
        change * 100.0,
        if change.abs() <= FLAT {
            "flat (within ±20%)"
        } else if change > 0.0 {
            "GROWING (beyond +20%)"
        } else {
            "SHRANK (beyond −20%)"
        },
        at.rows,
        last.rows,
        rows_change * 100.0,
        last.oldest_age
            .map_or("-".to_string(), |a| format!("{a:.0}")),
    );
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The database's directory: a temporary one is removed on drop.
struct SoakDir {
    root: PathBuf,
    owned: bool,
}

impl SoakDir {
    fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let (root, owned) = match dir {
            Some(root) => (root, false),
            None => (
                std::env::temp_dir().join(format!("tracelink-bench-soak-{}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        if root.join("soak.db").exists() {
            bail!(
                "{} already holds soak.db: the soak needs a fresh database",
                root.display()
            );
        }
        Ok(Self { root, owned })
    }
}

impl Drop for SoakDir {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// The soak
// ---------------------------------------------------------------------------------------

/// What the connections share.
#[derive(Default)]
struct Counters {
    acked_spans: AtomicU64,
    refusals: AtomicU64,
    conn_errors: AtomicU64,
    unacked: AtomicU64,
    offered_requests: AtomicU64,
}

/// One line of the table.
struct Sample {
    elapsed: Duration,
    rows: i64,
    /// Seconds since the oldest span in `spans` was received.
    oldest_age: Option<f64>,
    db_bytes: u64,
    wal_bytes: u64,
}

impl Sample {
    fn total(&self) -> u64 {
        self.db_bytes + self.wal_bytes
    }
}

struct Soaked {
    samples: Vec<Sample>,
    offered: u64,
    acked: u64,
    refusals: u64,
    conn_errors: u64,
    unacked: u64,
}

async fn soak(
    addr: SocketAddr,
    args: &SoakArgs,
    pool: &Arc<Pool>,
    db: &Path,
    server_pid: u32,
    duration: Duration,
) -> anyhow::Result<Soaked> {
    let counters = Arc::new(Counters::default());
    let requests_per_sec = f64::from(args.rate) / pool.spans_per_request as f64;
    let every = Duration::from_secs_f64(args.connections as f64 / requests_per_sec);
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let end = start + duration;
    let tasks: Vec<_> = (0..args.connections)
        .map(|k| {
            // Staggered evenly over one interval.
            let first = start + every.mul_f64(k as f64 / args.connections as f64);
            tokio::spawn(connection(
                addr,
                first,
                every,
                end,
                pool.clone(),
                counters.clone(),
            ))
        })
        .collect();

    println!(
        "{:>6} {:>10} {:>9} {:>5} {:>9} {:>10} {:>8} {:>8} {:>9} {:>8}",
        "t s",
        "acked",
        "acked/s",
        "429s",
        "spans",
        "oldest s",
        "db MiB",
        "wal MiB",
        "total MiB",
        "srv CPU"
    );
    let clk_tck = clock_ticks_per_second();
    let pid = server_pid.to_string();
    let mut samples = Vec::new();
    let (mut last_acked, mut last_at, mut last_cpu) = (0u64, start, cpu_ticks(&pid));
    let sample_every = Duration::from_secs(args.sample_seconds);
    let mut next = start;
    loop {
        let at = next.min(end);
        tokio::time::sleep_until(at).await;
        let acked = counters.acked_spans.load(Ordering::Relaxed);
        let cpu = cpu_ticks(&pid);
        let interval = (at - last_at).as_secs_f64();
        let (rows, oldest_age) = match count(db).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("warning: reading {}: {e:#}", db.display());
                (-1, None)
            }
        };
        let sample = Sample {
            elapsed: at - start,
            rows,
            oldest_age,
            db_bytes: file_size(db),
            wal_bytes: file_size(&with_suffix(db, "-wal")),
        };
        let share = match (last_cpu, cpu) {
            (Some(a), Some(b)) if interval > 0.0 => {
                format!(
                    "{:.0}%",
                    b.saturating_sub(a) as f64 / clk_tck / interval * 100.0
                )
            }
            _ => "-".to_string(),
        };
        println!(
            "{:>6.0} {:>10} {:>9} {:>5} {:>9} {:>10} {:>8.1} {:>8.1} {:>9.1} {:>8}",
            sample.elapsed.as_secs_f64(),
            acked,
            if interval > 0.0 {
                format!("{:.0}", (acked - last_acked) as f64 / interval)
            } else {
                "-".to_string()
            },
            counters.refusals.load(Ordering::Relaxed),
            rows,
            oldest_age.map_or("-".to_string(), |a| format!("{a:.1}")),
            mib(sample.db_bytes),
            mib(sample.wal_bytes),
            mib(sample.total()),
            share,
        );
        samples.push(sample);
        (last_acked, last_at, last_cpu) = (acked, at, cpu);
        if at >= end {
            break;
        }
        next += sample_every;
    }
    for t in tasks {
        t.await.context("a load connection panicked")??;
    }
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(Soaked {
        samples,
        offered: load(&counters.offered_requests) * pool.spans_per_request,
        acked: load(&counters.acked_spans),
        refusals: load(&counters.refusals),
        conn_errors: load(&counters.conn_errors),
        unacked: load(&counters.unacked),
    })
}

/// One keep-alive connection: its exports fall due every `every` from `first` until
/// `end`; one that falls behind sends back to back until it is on schedule again, and a
/// refused export is sent again after its `Retry-After`.
async fn connection(
    addr: SocketAddr,
    first: tokio::time::Instant,
    every: Duration,
    end: tokio::time::Instant,
    pool: Arc<Pool>,
    counters: Arc<Counters>,
) -> anyhow::Result<()> {
    let mut conn = HttpConn::connect(addr).await?;
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        let due = first + every.mul_f64(n as f64);
        if due >= end {
            break;
        }
        n += 1;
        tokio::time::sleep_until(due).await;
        counters.offered_requests.fetch_add(1, Ordering::Relaxed);
        pool.next(&mut buf);
        loop {
            let Ok(answer) = tokio::time::timeout_at(end, conn.post(&buf)).await else {
                counters.unacked.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            };
            match answer {
                Ok((200, _)) => {
                    counters
                        .acked_spans
                        .fetch_add(pool.spans_per_request, Ordering::Relaxed);
                    break;
                }
                Ok((429 | 503, _)) => {
                    counters.refusals.fetch_add(1, Ordering::Relaxed);
                    let wait = conn.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
                    tokio::time::sleep_until(end.min(tokio::time::Instant::now() + wait)).await;
                    if tokio::time::Instant::now() >= end {
                        counters.unacked.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                }
                Ok((status, body)) => bail!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(body).escape_debug()
                ),
                Err(_) => {
                    // The server closed the connection: open another and send again.
                    counters.conn_errors.fetch_add(1, Ordering::Relaxed);
                    conn = loop {
                        match HttpConn::connect(addr).await {
                            Ok(c) => break c,
                            Err(_) if tokio::time::Instant::now() < end => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(e) => return Err(e),
                        }
                    };
                }
            }
        }
    }
    Ok(())
}

/// Spans held in raw records and the age in seconds of the oldest, on a read-only connection
/// opened for this one query (so it holds no snapshot between samples).
async fn count(db: &Path) -> anyhow::Result<(i64, Option<f64>)> {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?
        .read_only(true)
        .busy_timeout(Duration::from_secs(5))
        .disable_statement_logging()
        .connect()
        .await
        .with_context(|| format!("opening {} read-only", db.display()))?;
    let (rows, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum(rows), 0) FROM raw_records WHERE signal = 'traces'), \
         (SELECT min(received_ns) FROM raw_records)",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    Ok((rows, oldest.map(|o| (now_ns - o) as f64 / 1e9)))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A file's length, 0 when it does not exist.
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
