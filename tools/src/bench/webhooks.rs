//! `tracelink-dev bench webhooks`: acknowledgement latency of `POST /webhooks/github` at a
//! steady delivery rate (open loop: deliveries leave on schedule whether or not earlier
//! ones were answered, as GitHub sends them), one new connection per delivery, against a
//! child server pinned to one core; then every delivery is checked to be stored and
//! applied (zero loss). On SQLite and PostgreSQL (`--engines sqlite,postgres`, the
//! default), each on a fresh database, then the figures side by side.
//!
//! `./target/release/tracelink-dev bench webhooks` (100 deliveries/s for 30 s by default).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::engines::{BenchDb, BenchDirs, EngineArgs, SideBySide, engine_line, engine_name};
use super::ingest::replica_of;
use super::{HttpConn, ServerChild, pin, taskset_available};
use tracelink::github::signature::sign;
use tracelink::store::{Engine, Location};

#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Deliveries per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    pub seconds: u32,
    /// CPU core the server is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// CPU core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_core: usize,
    #[command(flatten)]
    pub engines: EngineArgs,
}

pub(super) const SECRET: &str = "bench-secret";
/// Every status a stored delivery can have, in order.
pub(super) const DELIVERY_STATUSES: [&str; 3] = ["failed", "pending", "processed"];

/// A realistic mix of real payloads (from `webhooks/payloads/`).
const PAYLOADS: &[(&str, &[u8])] = &[
    (
        "push",
        include_bytes!("../../../webhooks/payloads/push.5.json"),
    ),
    (
        "pull_request",
        include_bytes!("../../../webhooks/payloads/pull_request.synchronize.1.json"),
    ),
    (
        "workflow_run",
        include_bytes!("../../../webhooks/payloads/workflow_run.completed.2.json"),
    ),
    (
        "workflow_job",
        include_bytes!("../../../webhooks/payloads/workflow_job.completed.1.json"),
    ),
    (
        "check_run",
        include_bytes!("../../../webhooks/payloads/check_run.completed.1.json"),
    ),
    (
        "status",
        include_bytes!("../../../webhooks/payloads/status.1.json"),
    ),
    (
        "deployment_status",
        include_bytes!("../../../webhooks/payloads/deployment_status.created.1.json"),
    ),
    (
        "issues",
        include_bytes!("../../../webhooks/payloads/issues.opened.1.json"),
    ),
];

pub fn run(args: WebhookArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be at least 1");
    }
    let engines = args.engines.resolve()?;
    let exe = super::tracelink_binary()?;
    let dirs = BenchDirs::new(None)?;
    let mut runs = Vec::with_capacity(engines.len());
    for engine in &engines {
        println!();
        println!("== {} ==", engine_name(*engine));
        println!("{}", engine_line(*engine));
        let db = BenchDb::fresh(*engine, &dirs, "webhooks")?;
        let figures = measure(&args, &exe, &db.location())
            .with_context(|| format!("bench webhooks on {}", engine_name(*engine)))?;
        runs.push(figures);
    }
    print_side_by_side(&args, &engines, &runs);
    Ok(())
}

/// One engine's figures.
struct Figures {
    /// Acknowledgement latency percentiles (50, 90, 99, 100), in ms.
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    processed: i64,
    total: usize,
    peak_kib: Option<u64>,
}

fn print_side_by_side(args: &WebhookArgs, engines: &[Engine], runs: &[Figures]) {
    let mut t = SideBySide::new(
        format!(
            "bench webhooks, side by side ({} deliveries/s for {} s, one connection each; tracelink pinned to core {})",
            args.rate, args.seconds, args.server_core
        ),
        engines,
    );
    let each = |f: &dyn Fn(&Figures) -> String| runs.iter().map(f).collect::<Vec<_>>();
    t.row("ack p50 ms", each(&|r| format!("{:.2}", r.p50)));
    t.row("ack p90 ms", each(&|r| format!("{:.2}", r.p90)));
    t.row("ack p99 ms", each(&|r| format!("{:.2}", r.p99)));
    t.row("ack max ms", each(&|r| format!("{:.2}", r.max)));
    t.row(
        "deliveries stored and applied",
        each(&|r| format!("{} of {}", r.processed, r.total)),
    );
    t.row(
        "server peak RSS MiB",
        each(&|r| {
            r.peak_kib
                .map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
        }),
    );
    t.print();
}

/// A delivery ready to send: its ID, its header lines (signature included) and body.
pub(super) type SignedDelivery = (String, String, &'static [u8]);

/// `total` deliveries of the payload mix, IDs `bench-000000` on, signed with [`SECRET`].
pub(super) fn signed_deliveries(total: usize) -> Vec<SignedDelivery> {
    (0..total)
        .map(|i| {
            let (event, body) = PAYLOADS[i % PAYLOADS.len()];
            (format!("bench-{i:06}"), event.to_string(), body)
        })
        .map(|(id, event, body)| {
            let headers = format!(
                "Content-Type: application/json\r\nX-GitHub-Event: {event}\r\nX-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: {}\r\nConnection: close\r\n",
                sign(SECRET, body)
            );
            (id, headers, body)
        })
        .collect()
}

/// What sending the deliveries measured.
pub(super) struct Sent {
    /// Per delivery, in the order sent: connect to response.
    pub(super) latencies: Vec<Duration>,
    pub(super) statuses: std::collections::BTreeMap<u16, usize>,
    /// First delivery due to the last response.
    pub(super) wall: Duration,
    /// When the last response arrived.
    pub(super) last_ack: Instant,
}

/// Sends the deliveries at `rate` a second, open loop (each leaves on schedule whether
/// or not earlier ones were answered), one new connection each; delivery `i` goes to
/// `addrs[replica_of(i, addrs.len())]` (round-robin).
pub(super) async fn send_deliveries(
    addrs: Vec<std::net::SocketAddr>,
    deliveries: Vec<SignedDelivery>,
    rate: u32,
) -> anyhow::Result<Sent> {
    if addrs.is_empty() || rate == 0 {
        bail!("no server to send to, or no rate");
    }
    let total = deliveries.len();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (i, (_, headers, body)) in deliveries.into_iter().enumerate() {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let addr = addrs[replica_of(i, addrs.len())];
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let mut conn = HttpConn::connect(addr).await?;
            let (status, _) = conn
                .request_with("POST", "/webhooks/github", &headers, body)
                .await?;
            let now = Instant::now();
            Ok::<_, anyhow::Error>((status, now - sent, now))
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut last_ack = start;
    for t in tasks {
        let (status, latency, at) = t.await.context("delivery task")??;
        *statuses.entry(status).or_default() += 1;
        latencies.push(latency);
        last_ack = last_ack.max(at);
    }
    Ok(Sent {
        latencies,
        statuses,
        wall: start.elapsed(),
        last_ack,
    })
}

/// The nearest-rank `p` quantile (0 to 1) of sorted latencies, in ms (0 when none).
pub(super) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn measure(args: &WebhookArgs, exe: &std::path::Path, db: &Location) -> anyhow::Result<Figures> {
    let pinning = taskset_available();
    let server = ServerChild::start_with(
        exe,
        db,
        pinning.then_some(args.server_core),
        &["--webhook-secret".to_string(), SECRET.to_string()],
    )?;
    if pinning {
        let _ = pin(std::process::id(), args.client_core);
    }
    let total = (args.rate * args.seconds) as usize;
    // Signed bodies are prepared before the clock starts.
    let deliveries = signed_deliveries(total);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let Sent {
        latencies,
        statuses,
        wall,
        ..
    } = runtime.block_on(send_deliveries(vec![server.http], deliveries, args.rate))?;
    drop(runtime);
    let peak = server.stop()?;

    // Zero loss: every delivery stored once and applied, read from the file afterwards.
    let check = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let reader = tracelink::store::Db::open_read_only(db).await?;
            let mut counts: Vec<(String, i64)> = Vec::new();
            for status in DELIVERY_STATUSES {
                let n = reader.deliveries(status, u32::MAX).await?.len() as i64;
                if n > 0 {
                    counts.push((status.to_string(), n));
                }
            }
            let known: i64 = counts.iter().map(|(_, n)| n).sum();
            let all = reader.row_count("deliveries").await?;
            if all != known {
                counts.push(("(other)".to_string(), all - known));
            }
            reader.close().await;
            Ok::<_, anyhow::Error>(counts)
        })?;

    let mut sorted = latencies.clone();
    sorted.sort();
    let pct = |p: f64| percentile_ms(&sorted, p);
    println!(
        "tracelink bench webhooks: {total} deliveries at {}/s for {} s, one connection each, server pinned to core {}",
        args.rate, args.seconds, args.server_core
    );
    println!(
        "acknowledged in {:.1} s: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        wall.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    println!("responses by status: {statuses:?}");
    println!("deliveries in the database by status: {check:?}");
    if let Some(kib) = peak {
        println!("server peak RSS {:.1} MiB", kib as f64 / 1024.0);
    }
    let processed = check
        .iter()
        .find(|(s, _)| s == "processed")
        .map_or(0, |(_, n)| *n);
    if processed as usize != total || statuses.get(&200) != Some(&total) {
        bail!("lost deliveries: {total} sent, {processed} processed, responses {statuses:?}");
    }
    println!("zero loss: {total} of {total} stored and applied");
    Ok(Figures {
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: pct(1.0),
        processed,
        total,
        peak_kib: peak,
    })
}
