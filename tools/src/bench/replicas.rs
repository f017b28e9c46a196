//! `tracelink-dev bench replicas`: OTLP/HTTP span ingest and GitHub webhooks with one and
//! with two `tracelink serve` replicas on one PostgreSQL database, requests spread over
//! the replicas round-robin (as a load balancer would), on a fresh database per replica
//! count (from [`tracelink_dev::pgtest`], dropped afterwards).
//!
//! Per replica count:
//!
//! 1. OTLP/HTTP protobuf: `--spans` spans (the `bench ingest` generator) in requests of
//!    `--spans-per-request`, `--concurrency` workers, request `i` to replica `i mod n`;
//!    spans/s, request latency, and the spans the database holds afterwards against the
//!    spans acknowledged.
//! 2. Webhooks: the signed deliveries of `bench webhooks` at `--rate` a second for
//!    `--seconds`, open loop, delivery `i` to replica `i mod n`; acknowledgement latency,
//!    then the time until no delivery is pending (read from the database every
//!    [`POLL`]), and whether every delivery was stored and applied once: as many
//!    `processed` rows as deliveries sent, none pending or failed, and the replicas'
//!    `stored` counters (`/metrics`) summing to the deliveries sent, no duplicate.
//!
//! Every replica is pinned to the server core, the load generator to the client core;
//! PostgreSQL runs unpinned. The replicas' logs (warnings, and the processor's claim
//! losses and deadlock retries at debug) are summarised at the end of each phase.
//!
//! `./target/release/tracelink-dev bench replicas`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prost::Message;
use tracelink::store::{Db, Engine, Location};
use tracelink_dev::pgtest;

use super::engines::{
    BackendCpu, BenchDirs, PgWatch, SideBySide, current_thread, engine_line, use_pg_server,
};
use super::ingest::{
    Load, clock_ticks_per_second, count_spans, cpu_ticks, generate, http_load, replica_of,
    server_metrics,
};
use super::webhooks::{SECRET, Sent, percentile_ms, send_deliveries, signed_deliveries};
use super::{ServerChild, pin, strip_ansi, taskset_available};

#[derive(Debug, Clone, clap::Args)]
pub struct ReplicaArgs {
    /// Spans sent over OTLP/HTTP per replica count.
    #[arg(long, default_value_t = 100_000)]
    pub spans: usize,
    /// Spans in one export request.
    #[arg(long, default_value_t = 100)]
    pub spans_per_request: usize,
    /// Attributes on every span.
    #[arg(long, default_value_t = 20)]
    pub attributes: usize,
    /// Concurrent OTLP/HTTP requests.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Webhook deliveries per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seconds of webhook load.
    #[arg(long, default_value_t = 15)]
    pub seconds: u32,
    /// The replicas' `--replica-lease` (seconds a claim on a delivery or report lasts).
    #[arg(long, default_value_t = 30)]
    pub replica_lease: u64,
    /// Seconds to wait, after the last acknowledgement, for every delivery to be applied.
    #[arg(long, default_value_t = 180)]
    pub apply_timeout: u64,
    /// CPU core every replica is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// CPU core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_core: usize,
    /// Directory the replicas' logs are written to (default: a fresh temporary
    /// directory, removed afterwards).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// PostgreSQL server the bench databases are created on.
    #[arg(long, env = "TRACELINK_TEST_POSTGRES", default_value = pgtest::DEFAULT_SERVER)]
    pub pg_url: String,
}

/// The replica counts measured, in order.
const REPLICA_COUNTS: [usize; 2] = [1, 2];
/// How often the deliveries still pending are read while waiting for them.
const POLL: Duration = Duration::from_millis(20);
/// How often the deliveries pending are sampled while the webhooks are sent.
const SAMPLE: Duration = Duration::from_millis(100);
/// The replicas' log filter: warnings, and the processor's claim losses and deadlock
/// retries (debug).
const LOG_FILTER: &str = "warn,tracelink::github::processor=debug";
/// Distinct log messages printed per replica.
const LOG_MESSAGES_SHOWN: usize = 8;

pub fn run(args: ReplicaArgs) -> anyhow::Result<()> {
    if args.spans == 0
        || args.spans_per_request == 0
        || args.concurrency == 0
        || args.rate == 0
        || args.seconds == 0
    {
        bail!(
            "--spans, --spans-per-request, --concurrency, --rate and --seconds must be at least 1"
        );
    }
    use_pg_server(&args.pg_url)?;
    let exe = super::tracelink_binary()?;
    let pinning = taskset_available();
    if pinning {
        if let Err(e) = pin(std::process::id(), args.client_core) {
            eprintln!(
                "warning: could not pin this process to core {}: {e:#}",
                args.client_core
            );
        }
    } else {
        eprintln!("warning: `taskset` is not available; the replicas and the client run unpinned");
    }
    let server_core = pinning.then_some(args.server_core);
    let logs = BenchDirs::new(args.log_dir.clone())?;

    let requests = generate(args.spans, args.spans_per_request, args.attributes);
    let payloads: Arc<Vec<Vec<u8>>> =
        Arc::new(requests.iter().map(|r| r.encode_to_vec()).collect());
    drop(requests);
    let payload_bytes: usize = payloads.iter().map(Vec::len).sum();

    println!(
        "tracelink bench replicas: 1 and 2 `tracelink serve` replicas on one PostgreSQL database (a fresh one per replica count), requests round-robin over the replicas, --replica-lease {}",
        args.replica_lease
    );
    println!("{}", engine_line(Engine::Postgres));
    println!(
        "pinning: {}; logs in {}",
        match server_core {
            Some(c) => format!(
                "every replica on core {c}, the load generator on core {}, PostgreSQL unpinned",
                args.client_core
            ),
            None => "none (taskset missing)".to_string(),
        },
        logs.root.display()
    );
    println!(
        "OTLP/HTTP: {} spans in {} requests of {} spans ({:.1} KiB each), {} concurrent; webhooks: {} deliveries/s for {} s, one connection each",
        args.spans,
        payloads.len(),
        args.spans_per_request,
        payload_bytes as f64 / payloads.len() as f64 / 1024.0,
        args.concurrency,
        args.rate,
        args.seconds
    );

    let clk_tck = clock_ticks_per_second();
    let mut phases = Vec::with_capacity(REPLICA_COUNTS.len());
    for n in REPLICA_COUNTS {
        println!();
        println!("== {} ==", replicas_name(n));
        let phase = run_phase(n, &args, &exe, server_core, &logs.root, &payloads, clk_tck)
            .with_context(|| format!("bench replicas with {}", replicas_name(n)))?;
        print_phase(&phase);
        phases.push(phase);
    }
    print_side_by_side(&args, server_core, &phases);
    let failed: Vec<String> = phases
        .iter()
        .filter(|p| !p.ingest_exact() || !p.hooks.exactly_once())
        .map(|p| replicas_name(p.replicas))
        .collect();
    if !failed.is_empty() {
        bail!(
            "spans or deliveries not stored or applied exactly once with {}",
            failed.join(" and ")
        );
    }
    Ok(())
}

fn replicas_name(n: usize) -> String {
    format!("{n} replica{}", if n == 1 { "" } else { "s" })
}

/// One replica count's figures.
struct Phase {
    replicas: usize,
    ingest: Load,
    spans_sent: usize,
    /// Spans the database holds after the ingest (an error's text when unread).
    spans_stored: Result<i64, String>,
    /// Requests each replica was sent.
    requests_per_replica: Vec<usize>,
    /// Share of one core all replicas together used during the ingest.
    tracelink_cpu: Option<f64>,
    /// Share of one core the database's backends used meanwhile.
    db_cpu: Option<f64>,
    hooks: Hooks,
    /// Per replica: peak RSS, and its log summarised.
    replica_logs: Vec<ReplicaLog>,
}

impl Phase {
    fn spans_per_second(&self) -> f64 {
        self.spans_sent as f64 / self.ingest.wall.as_secs_f64()
    }

    fn ingest_exact(&self) -> bool {
        self.spans_stored.as_ref().ok() == Some(&(self.spans_sent as i64))
    }
}

/// The webhook half of a phase.
struct Hooks {
    sent: usize,
    /// Acknowledgement latencies, sorted.
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
    wall: Duration,
    /// The most deliveries found pending while they were sent, and at the last
    /// acknowledgement.
    max_pending: i64,
    pending_at_last_ack: i64,
    /// The most deliveries found pending in each second from the first delivery.
    pending_per_second: Vec<i64>,
    /// From the last acknowledgement (and from the first delivery) until none was
    /// pending; `None` when some still were at `--apply-timeout`.
    applied_after_last_ack: Option<Duration>,
    applied_after_first: Option<Duration>,
    /// Per replica, its `stored` and `duplicate` counters from `/metrics`.
    stored_by_replica: Vec<Option<(u64, u64)>>,
    /// Read from the database after the replicas stopped.
    rows: i64,
    processed: i64,
    pending: i64,
    failed: i64,
}

impl Hooks {
    fn ok_acks(&self) -> usize {
        self.statuses.get(&200).copied().unwrap_or(0)
    }

    /// Sum of the replicas' `stored` and `duplicate` counters (`None` when one is
    /// unread).
    fn stored_total(&self) -> Option<(u64, u64)> {
        self.stored_by_replica
            .iter()
            .try_fold((0, 0), |(s, d), r| r.map(|(s1, d1)| (s + s1, d + d1)))
    }

    /// Every delivery acknowledged, stored once by one replica, and applied: as many
    /// processed rows as deliveries sent, none pending or failed.
    fn exactly_once(&self) -> bool {
        let n = self.sent as i64;
        self.ok_acks() == self.sent
            && self.rows == n
            && self.processed == n
            && self.pending == 0
            && self.failed == 0
            && self.stored_total() == Some((self.sent as u64, 0))
    }

    fn verdict(&self) -> String {
        format!(
            "{}: {} sent, {} acknowledged 200, {} rows, {} processed, {} pending, {} failed, stored by the replicas {}",
            if self.exactly_once() { "yes" } else { "NO" },
            self.sent,
            self.ok_acks(),
            self.rows,
            self.processed,
            self.pending,
            self.failed,
            self.stored_total()
                .map_or("?".to_string(), |(s, d)| format!("{s} ({d} duplicates)")),
        )
    }
}

/// A replica's log, summarised.
struct ReplicaLog {
    peak_rss_kib: Option<u64>,
    lines: usize,
    /// Lines saying PostgreSQL found a deadlock (the processor ran a group again).
    deadlocks: usize,
    /// Distinct messages (timestamp left out) with how often each came, most first.
    messages: Vec<(String, usize)>,
}

fn run_phase(
    n: usize,
    args: &ReplicaArgs,
    exe: &Path,
    server_core: Option<usize>,
    log_dir: &Path,
    payloads: &Arc<Vec<Vec<u8>>>,
    clk_tck: f64,
) -> anyhow::Result<Phase> {
    let rt = current_thread()?;
    let db = rt
        .block_on(pgtest::Database::create())
        .context("creating a PostgreSQL database")?;
    let location = Location::Postgres(db.url().to_string());
    let extra = [
        "--webhook-secret".to_string(),
        SECRET.to_string(),
        "--replica-lease".to_string(),
        args.replica_lease.to_string(),
    ];
    let mut servers = Vec::with_capacity(n);
    let mut log_files = Vec::with_capacity(n);
    for k in 0..n {
        let log = log_dir.join(format!("{n}-replicas-replica-{k}.log"));
        servers.push(
            ServerChild::start_logging(
                exe,
                location.clone(),
                server_core,
                &extra,
                &log,
                LOG_FILTER,
            )
            .with_context(|| format!("starting replica {k}"))?,
        );
        log_files.push(log);
    }
    let http: Vec<SocketAddr> = servers.iter().map(|s| s.http).collect();

    // OTLP/HTTP ingest.
    let mut watch = rt.block_on(PgWatch::connect(&db))?;
    let backends = BackendCpu::start(&rt.block_on(watch.backends())?);
    let pids: Vec<String> = servers.iter().map(|s| s.pid.to_string()).collect();
    let ticks = |pids: &[String]| -> Option<u64> { pids.iter().map(|p| cpu_ticks(p)).sum() };
    let srv0 = ticks(&pids);
    let started = Instant::now();
    let ingest = rt
        .block_on(http_load(http.clone(), payloads.clone(), args.concurrency))
        .context("OTLP/HTTP ingest")?;
    let elapsed = started.elapsed().as_secs_f64();
    let srv1 = ticks(&pids);
    let db_ticks = backends.ticks_since(&rt.block_on(watch.backends())?);
    let spans_sent: usize = args.spans;
    // An export is acknowledged after its transaction commits: every span is readable.
    let spans_stored = rt
        .block_on(count_spans(&location))
        .map_err(|e| format!("{e:#}"));
    let mut requests_per_replica = vec![0; n];
    for i in 0..payloads.len() {
        requests_per_replica[replica_of(i, n)] += 1;
    }

    // Webhooks.
    let total = (args.rate * args.seconds) as usize;
    let deliveries = signed_deliveries(total);
    let reader = rt.block_on(Db::open_read_only(location.clone()))?;
    let hooks = rt.block_on(webhook_phase(
        &reader,
        http.clone(),
        deliveries,
        args.rate,
        Duration::from_secs(args.apply_timeout),
    ))?;
    let stored_by_replica: Vec<Option<(u64, u64)>> = http
        .iter()
        .map(|a| match rt.block_on(server_metrics(*a)) {
            Ok(text) => webhook_counts(&text),
            Err(e) => {
                eprintln!("warning: reading /metrics of {a}: {e:#}");
                None
            }
        })
        .collect();
    rt.block_on(reader.close());

    let mut peaks = Vec::with_capacity(n);
    for (k, s) in servers.into_iter().enumerate() {
        peaks.push(s.stop().with_context(|| format!("stopping replica {k}"))?);
    }
    let (rows, processed, queues) = rt.block_on(async {
        let db = Db::open_read_only(location.clone()).await?;
        let rows = db.row_count("deliveries").await?;
        let processed = db.deliveries("processed", u32::MAX).await?.len() as i64;
        let queues = db.shared_queues().await?;
        db.close().await;
        anyhow::Ok((rows, processed, queues))
    })?;
    drop(watch);
    drop(db);

    let replica_logs = log_files
        .iter()
        .zip(peaks)
        .map(|(path, peak_rss_kib)| summarise_log(path, peak_rss_kib))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let share =
        |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / clk_tck / elapsed);
    Ok(Phase {
        replicas: n,
        ingest,
        spans_sent,
        spans_stored,
        requests_per_replica,
        tracelink_cpu: share(srv0, srv1),
        db_cpu: Some(db_ticks as f64 / clk_tck / elapsed),
        hooks: Hooks {
            stored_by_replica,
            rows,
            processed,
            pending: queues.deliveries_pending,
            failed: queues.deliveries_failed,
            ..hooks
        },
        replica_logs,
    })
}

/// Sends the deliveries round-robin, sampling the deliveries pending meanwhile, then
/// waits until none is pending (or `timeout` after the last acknowledgement).
async fn webhook_phase(
    reader: &Db,
    addrs: Vec<SocketAddr>,
    deliveries: Vec<super::webhooks::SignedDelivery>,
    rate: u32,
    timeout: Duration,
) -> anyhow::Result<Hooks> {
    let sent_n = deliveries.len();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let reader = reader.clone();
        let stop = stop.clone();
        let first = Instant::now();
        tokio::spawn(async move {
            // The highest count seen in each second from the first delivery.
            let mut per_second: Vec<i64> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let pending = reader.shared_queues().await?.deliveries_pending;
                let second = first.elapsed().as_secs() as usize;
                if per_second.len() <= second {
                    per_second.resize(second + 1, 0);
                }
                per_second[second] = per_second[second].max(pending);
                tokio::time::sleep(SAMPLE).await;
            }
            anyhow::Ok(per_second)
        })
    };
    let first = Instant::now();
    let sent = send_deliveries(addrs, deliveries, rate).await;
    // Waiting starts at once; the sampler goes on meanwhile.
    let waited = match &sent {
        Ok(sent) => wait_applied(reader, sent.last_ack + timeout).await,
        Err(_) => Ok((0, None)),
    };
    stop.store(true, Ordering::Relaxed);
    let pending_per_second = sampler.await.context("the pending sampler")??;
    let Sent {
        mut latencies,
        statuses,
        wall,
        last_ack,
    } = sent?;
    let (pending_at_last_ack, applied_at) = waited?;
    latencies.sort_unstable();
    Ok(Hooks {
        sent: sent_n,
        latencies,
        statuses,
        wall,
        max_pending: pending_per_second
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(pending_at_last_ack),
        pending_per_second,
        pending_at_last_ack,
        applied_after_last_ack: applied_at.map(|t| t.saturating_duration_since(last_ack)),
        applied_after_first: applied_at.map(|t| t - first),
        stored_by_replica: Vec::new(),
        rows: 0,
        processed: 0,
        pending: 0,
        failed: 0,
    })
}

/// Reads the deliveries pending now, then every [`POLL`] until none is (when that was
/// seen) or `deadline` passed (`None`).
async fn wait_applied(reader: &Db, deadline: Instant) -> anyhow::Result<(i64, Option<Instant>)> {
    let pending_now = reader.shared_queues().await?.deliveries_pending;
    let mut pending = pending_now;
    loop {
        let now = Instant::now();
        if pending == 0 {
            return Ok((pending_now, Some(now)));
        }
        if now > deadline {
            return Ok((pending_now, None));
        }
        tokio::time::sleep(POLL).await;
        pending = reader.shared_queues().await?.deliveries_pending;
    }
}

/// The `stored` and `duplicate` webhook counters in a replica's `/metrics`.
fn webhook_counts(metrics: &str) -> Option<(u64, u64)> {
    let value = |outcome: &str| {
        let prefix = format!("tracelink_webhook_deliveries_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<u64>().ok())
    };
    Some((value("stored")?, value("duplicate")?))
}

/// A replica's log: its lines, and its distinct messages (the timestamp left out) with
/// how often each came, most first.
fn summarise_log(path: &Path, peak_rss_kib: Option<u64>) -> anyhow::Result<ReplicaLog> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let (mut lines, mut deadlocks) = (0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        if line.contains("deadlock detected") {
            deadlocks += 1;
        }
        *counts.entry(log_message(line)).or_default() += 1;
    }
    let mut messages: Vec<(String, usize)> = counts.into_iter().collect();
    messages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(ReplicaLog {
        peak_rss_kib,
        lines,
        deadlocks,
        messages,
    })
}

/// A log line without its colours, its leading timestamp and the delivery it names, so
/// that lines saying the same thing group together.
fn log_message(line: &str) -> String {
    let line = strip_ansi(line);
    let line = line.trim();
    // `2026-01-01T00:00:00.000000Z  WARN target: message fields`
    let rest = match line.split_once(' ') {
        Some((first, rest)) if first.len() > 10 && first.as_bytes()[4] == b'-' => rest.trim(),
        _ => line,
    };
    rest.split_whitespace()
        .map(|w| {
            if w.starts_with("delivery=") {
                "delivery=…"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percent(v: Option<f64>) -> String {
    v.map_or("?".to_string(), |v| format!("{:.0}%", v * 100.0))
}

fn print_phase(p: &Phase) {
    println!(
        "OTLP/HTTP: {:.0} spans/s ({:.2} s), request p50 {:.2} ms, p99 {:.2} ms, {} retries after 429; requests per replica {}",
        p.spans_per_second(),
        p.ingest.wall.as_secs_f64(),
        ms(p.ingest.percentile(50.0)),
        ms(p.ingest.percentile(99.0)),
        p.ingest.retries,
        p.requests_per_replica
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("/"),
    );
    println!(
        "  CPU during ingest: tracelink replicas together {} of core, PostgreSQL backends {} of a core",
        percent(p.tracelink_cpu),
        percent(p.db_cpu)
    );
    println!(
        "  spans stored (read from the database) {} of {} acknowledged: {}",
        p.spans_stored
            .as_ref()
            .map_or_else(|e| e.clone(), i64::to_string),
        p.spans_sent,
        if p.ingest_exact() {
            "equal"
        } else {
            "NOT EQUAL"
        }
    );
    let h = &p.hooks;
    println!(
        "webhooks: {} deliveries acknowledged in {:.1} s: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms; responses by status {:?}",
        h.sent,
        h.wall.as_secs_f64(),
        percentile_ms(&h.latencies, 0.50),
        percentile_ms(&h.latencies, 0.99),
        percentile_ms(&h.latencies, 1.0),
        h.statuses
    );
    println!(
        "  pending: at most {} (sampled every {} ms while sending and waiting), {} right after the last acknowledgement",
        h.max_pending,
        SAMPLE.as_millis(),
        h.pending_at_last_ack
    );
    println!(
        "  pending, highest in each second from the first delivery: {}",
        h.pending_per_second
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    match (h.applied_after_last_ack, h.applied_after_first) {
        (Some(last), Some(first)) => println!(
            "  all applied {:.2} s after the last acknowledgement ({:.2} s after the first delivery was sent)",
            last.as_secs_f64(),
            first.as_secs_f64()
        ),
        _ => println!(
            "  NOT all applied within --apply-timeout of the last acknowledgement ({} still pending when the replicas stopped)",
            h.pending
        ),
    }
    println!(
        "  stored by replica (/metrics stored/duplicate): {}",
        h.stored_by_replica
            .iter()
            .map(|c| c.map_or("?".to_string(), |(s, d)| format!("{s}/{d}")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  stored and applied exactly once: {}", h.verdict());
    for (k, log) in p.replica_logs.iter().enumerate() {
        println!(
            "replica {k}: peak RSS {}; log ({LOG_FILTER}): {} lines{}",
            log.peak_rss_kib.map_or("?".to_string(), |kib| format!(
                "{:.1} MiB",
                kib as f64 / 1024.0
            )),
            log.lines,
            if log.messages.is_empty() { "" } else { ":" }
        );
        for (message, count) in log.messages.iter().take(LOG_MESSAGES_SHOWN) {
            let short: String = message.chars().take(300).collect();
            println!("  {count:>6} × {short}");
        }
        if log.messages.len() > LOG_MESSAGES_SHOWN {
            println!(
                "  … and {} other messages",
                log.messages.len() - LOG_MESSAGES_SHOWN
            );
        }
    }
}

fn print_side_by_side(args: &ReplicaArgs, server_core: Option<usize>, phases: &[Phase]) {
    let mut t = SideBySide::with_columns(
        format!(
            "bench replicas, side by side ({} spans over OTLP/HTTP, {} spans/request, {} concurrent; {} webhook deliveries/s for {} s; round-robin; {})",
            args.spans,
            args.spans_per_request,
            args.concurrency,
            args.rate,
            args.seconds,
            server_core.map_or("unpinned".to_string(), |c| format!(
                "every replica pinned to core {c}, load generator to core {}",
                args.client_core
            )),
        ),
        phases.iter().map(|p| replicas_name(p.replicas)).collect(),
    );
    let each = |f: &dyn Fn(&Phase) -> String| phases.iter().map(f).collect::<Vec<_>>();
    t.row(
        "OTLP/HTTP spans/s",
        each(&|p| format!("{:.0}", p.spans_per_second())),
    );
    t.row(
        "OTLP/HTTP p50 ms per request",
        each(&|p| format!("{:.2}", ms(p.ingest.percentile(50.0)))),
    );
    t.row(
        "OTLP/HTTP p99 ms per request",
        each(&|p| format!("{:.2}", ms(p.ingest.percentile(99.0)))),
    );
    t.row(
        "OTLP/HTTP tracelink CPU (all replicas, of core)",
        each(&|p| percent(p.tracelink_cpu)),
    );
    t.row(
        "OTLP/HTTP PostgreSQL backends CPU (of a core)",
        each(&|p| percent(p.db_cpu)),
    );
    t.row(
        "spans stored = acknowledged",
        each(&|p| {
            format!(
                "{} ({})",
                if p.ingest_exact() { "yes" } else { "NO" },
                p.spans_stored
                    .as_ref()
                    .map_or("?".to_string(), i64::to_string)
            )
        }),
    );
    t.row(
        "webhook ack p50 ms",
        each(&|p| format!("{:.2}", percentile_ms(&p.hooks.latencies, 0.50))),
    );
    t.row(
        "webhook ack p99 ms",
        each(&|p| format!("{:.2}", percentile_ms(&p.hooks.latencies, 0.99))),
    );
    t.row(
        "webhook ack max ms",
        each(&|p| format!("{:.2}", percentile_ms(&p.hooks.latencies, 1.0))),
    );
    t.row(
        "deliveries pending, most at once (sampled)",
        each(&|p| p.hooks.max_pending.to_string()),
    );
    t.row(
        "deliveries pending at last ack",
        each(&|p| p.hooks.pending_at_last_ack.to_string()),
    );
    t.row(
        "all applied, s after last ack",
        each(&|p| {
            p.hooks
                .applied_after_last_ack
                .map_or(format!("not in {} s", args.apply_timeout), |d| {
                    format!("{:.2}", d.as_secs_f64())
                })
        }),
    );
    t.row(
        "deliveries stored and applied exactly once",
        each(&|p| {
            format!(
                "{} ({} of {})",
                if p.hooks.exactly_once() { "yes" } else { "NO" },
                p.hooks.processed,
                p.hooks.sent
            )
        }),
    );
    t.row(
        "deadlocks between replicas (processor log)",
        each(&|p| {
            p.replica_logs
                .iter()
                .map(|l| l.deadlocks)
                .sum::<usize>()
                .to_string()
        }),
    );
    t.row(
        "replica log lines (warn; processor debug)",
        each(&|p| {
            p.replica_logs
                .iter()
                .map(|l| l.lines.to_string())
                .collect::<Vec<_>>()
                .join("+")
        }),
    );
    t.print();
    println!(
        "These figures are per core on a 2-core machine; no scaling is claimed: the replicas share core {} and PostgreSQL shares both cores with them and the load generator.",
        args.server_core
    );
}

#[cfg(test)]
mod tests {
    use super::{log_message, webhook_counts};

    #[test]
    fn log_lines_group_without_timestamp_colour_or_delivery() {
        let a = "\u{1b}[2m2026-03-01T10:00:00.123456Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m tracelink::github::processor: a delivery could not be applied; trying again later delivery=bench-000001 error=boom";
        let b = "2026-03-01T10:00:01.000001Z  WARN tracelink::github::processor: a delivery could not be applied; trying again later delivery=bench-000042 error=boom";
        assert_eq!(log_message(a), log_message(b));
        assert!(log_message(b).starts_with("WARN tracelink::github::processor: a delivery"));
    }

    #[test]
    fn webhook_counters_read_from_metrics() {
        let text = "# TYPE tracelink_webhook_deliveries_total counter\n\
            tracelink_webhook_deliveries_total{outcome=\"stored\"} 750\n\
            tracelink_webhook_deliveries_total{outcome=\"duplicate\"} 2\n\
            tracelink_webhook_deliveries_total{outcome=\"ignored\"} 0\n";
        assert_eq!(webhook_counts(text), Some((750, 2)));
        assert_eq!(webhook_counts("nothing"), None);
    }
}
