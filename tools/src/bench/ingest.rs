//! `tracelink-dev bench ingest` measures OTLP span ingest end to end (OTLP/HTTP protobuf
//! and OTLP/gRPC into a child `tracelink serve` pinned to one core) against the storage
//! engine's own ceilings, on SQLite and on PostgreSQL (`--engines sqlite,postgres`, the
//! default); build with `cargo build --release -p tracelink -p tracelink-dev` and run
//! `./target/release/tracelink-dev bench ingest`.
//!
//! Every phase prints figures; nothing is asserted. The phases:
//!
//! 1. Generate realistic non-agent spans (HTTP server spans with client/internal children,
//!    mixed-type attributes) with a deterministic xorshift PRNG, and pre-encode every
//!    export request with prost, so the timed region only sends.
//!
//! Then, for each engine, every phase on a fresh database (a file, or a PostgreSQL
//! database from [`tracelink_dev::pgtest`], dropped afterwards):
//!
//! 2. OTLP/HTTP protobuf: a fresh child server, `--concurrency` keep-alive HTTP/1.1
//!    connections driven by a minimal client on a current-thread runtime.
//! 3. OTLP/gRPC: another fresh child server, `--concurrency` tasks sharing one tonic
//!    channel.
//! 4. Ceilings, in this process pinned to the server core: the same rows (normalised
//!    beforehand) through [`tracelink::store::writer`] with no OTLP in front, and raw
//!    multi-row `INSERT`s of plain 1 KB rows (one per span) on a native connection —
//!    SQLite with the store's pragmas, or a `PgConnection` — the rate durable ingest
//!    must reach (issue 14).
//! 5. Statements: `--statement-spans` spans over OTLP/HTTP into a server with sqlx's
//!    statement log on, every statement it runs counted from the log (a run of its own:
//!    the log costs time).
//!
//! What is counted per 1,000 spans, and where from: the writer's transactions (the
//! server's `/metrics`, both engines); statements (the sqlx log, both engines; and
//! `pg_stat_statements` when the PostgreSQL server loads it); PostgreSQL's transactions
//! and inserted rows (`pg_stat_database`, TOAST chunks included, read before the server
//! starts and after it stopped: start-up and shutdown are in them); the rows the
//! database holds afterwards (table counts, both engines). On PostgreSQL the bench also
//! reads the CPU time of the database's backends (`/proc`) and samples
//! `pg_stat_activity`: where the backends' time goes.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
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
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};
use tracelink::store::batch::Batch;
use tracelink::store::writer::SubmitError;
use tracelink::store::{Engine, Location};
use tracelink::telemetry::Telemetry;

use super::engines::{
    ActivitySampler, BackendCpu, BenchDb, BenchDirs, EngineArgs, PgCounters, PgWatch, SideBySide,
    current_thread, engine_line, engine_name, per_thousand, rows_added, table_rows,
};
use super::{HttpConn, ServerChild, StatementLog, pin, taskset_available};

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
    /// Directory for the SQLite databases (default: a fresh temporary directory, removed
    /// afterwards).
    #[arg(long)]
    pub db_dir: Option<PathBuf>,
    /// Spans sent (over OTLP/HTTP, at most --spans) in the run that counts the server's
    /// statements from sqlx's statement log; 0 leaves that run out.
    #[arg(long, default_value_t = 20_000)]
    pub statement_spans: usize,
    #[command(flatten)]
    pub engines: EngineArgs,
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
/// How often `pg_stat_activity` is sampled during a transport phase.
const ACTIVITY_EVERY: Duration = Duration::from_millis(10);

// ---------------------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------------------

/// What every engine's phases share, built once.
struct Shared {
    exe: PathBuf,
    dirs: BenchDirs,
    clk_tck: f64,
    server_core: Option<usize>,
    /// Pins this process to a core (a no-op without taskset).
    pin_self: Box<dyn Fn(usize)>,
    payloads: Arc<Vec<Vec<u8>>>,
    /// Spans in each payload.
    payload_spans: Vec<usize>,
    stored_rows: usize,
}

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    if args.spans == 0 || args.spans_per_request == 0 || args.concurrency == 0 {
        bail!("--spans, --spans-per-request and --concurrency must be at least 1");
    }
    let engines = args.engines.resolve()?;
    let exe = super::tracelink_binary()?;
    let me = std::process::id();
    let pinning = taskset_available();
    if !pinning {
        eprintln!("warning: `taskset` is not available; the server and the client run unpinned");
    }
    let pin_self = move |core: usize| {
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
    let requests = generate(args.spans, args.spans_per_request, args.attributes);
    let generate_time = generated.elapsed();
    let payloads: Vec<Vec<u8>> = requests.iter().map(|r| r.encode_to_vec()).collect();
    let payload_spans: Vec<usize> = requests.iter().map(spans_in).collect();
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
    drop((requests, batches));
    if stored_rows != args.spans {
        eprintln!(
            "warning: normalisation kept {stored_rows} of {} spans",
            args.spans
        );
    }
    let n_requests = payloads.len();

    println!(
        "tracelink bench ingest: {} spans, {} spans/request, {} attributes/span, {} concurrent, {}; engines: {}",
        args.spans,
        args.spans_per_request,
        args.attributes,
        args.concurrency,
        match server_core {
            Some(c) => format!("server pinned to core {c}"),
            None => "server unpinned".to_string(),
        },
        engines
            .iter()
            .map(|e| engine_name(*e))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "payload: {n_requests} requests, {:.1} KiB/request, {:.1} MB protobuf in total; generated in {:.2} s; client pinned to core {}; SQLite files in {}",
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
    let per_req = |d: Duration| ms(d) / n_requests as f64;
    println!(
        "per request, client side, one core: protobuf decode {:.3} ms, normalise {:.3} ms",
        per_req(decode_time),
        per_req(normalise_time),
    );

    let shared = Shared {
        exe,
        dirs,
        clk_tck,
        server_core,
        pin_self: Box::new(pin_self),
        payloads: Arc::new(payloads),
        payload_spans,
        stored_rows,
    };
    let mut runs = Vec::with_capacity(engines.len());
    for engine in &engines {
        let run = run_engine(*engine, &args, &shared)
            .with_context(|| format!("bench ingest on {}", engine_name(*engine)))?;
        print_engine(&run, &args, &shared);
        runs.push(run);
    }
    print_side_by_side(&engines, &runs, &args, &shared);
    Ok(())
}

/// Spans in an export request.
fn spans_in(r: &ExportTraceServiceRequest) -> usize {
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// One engine's figures.
struct EngineRun {
    engine: Engine,
    http: TransportRun,
    grpc: TransportRun,
    writer: Load,
    writer_commits: Option<Commits>,
    raw_rows: u64,
    raw_time: Duration,
    /// The statement-counting run: spans sent, and the statements logged meanwhile.
    statements: Option<(usize, StatementLog)>,
}

fn run_engine(engine: Engine, args: &IngestArgs, shared: &Shared) -> anyhow::Result<EngineRun> {
    println!();
    println!("== {} ==", engine_name(engine));
    // The requests and the normalised rows again, outside the timed regions.
    let requests = shared
        .payloads
        .iter()
        .map(|p| ExportTraceServiceRequest::decode(&p[..]))
        .collect::<Result<Vec<_>, _>>()
        .context("decoding the generated requests")?;
    let batches: Vec<Batch> = requests.iter().map(tracelink::agents::traces).collect();

    // Transport 1: OTLP/HTTP protobuf.
    let db = BenchDb::fresh(engine, &shared.dirs, "http-protobuf")?;
    let http = {
        let payloads = shared.payloads.clone();
        let concurrency = args.concurrency;
        measure_transport(shared, &db, args.spans, move |_, http| {
            http_load(vec![http], payloads, concurrency)
        })
        .context("OTLP/HTTP phase")?
    };
    drop(db);

    // Transport 2: OTLP/gRPC. The requests are moved into the client, so none is cloned
    // in the timed region; a retried request is decoded again from its payload.
    let db = BenchDb::fresh(engine, &shared.dirs, "grpc")?;
    let grpc = {
        let payloads = shared.payloads.clone();
        let concurrency = args.concurrency;
        measure_transport(shared, &db, args.spans, move |grpc, _| {
            grpc_load(grpc, requests, payloads, concurrency)
        })
        .context("OTLP/GRPC phase")?
    };
    drop(db);

    // Ceilings, in this process on the server core.
    (shared.pin_self)(args.server_core);
    let raw_db = BenchDb::fresh(engine, &shared.dirs, "ceiling-raw")?;
    let raw = current_thread()?.block_on(raw_ceiling(&raw_db.location(), shared.stored_rows));
    drop(raw_db);
    let writer_db = BenchDb::fresh(engine, &shared.dirs, "ceiling-writer")?;
    let writer = current_thread()?.block_on(writer_ceiling(
        &writer_db.location(),
        batches,
        args.concurrency,
    ));
    drop(writer_db);
    (shared.pin_self)(args.client_core);
    let (raw_rows, raw_time) = raw.context("raw 1 KB row insert ceiling")?;
    let (writer, writer_commits) = writer.context("writer ceiling")?;

    let statements = if args.statement_spans > 0 {
        Some(count_statements(engine, args, shared).context("statement-counting run")?)
    } else {
        None
    };
    Ok(EngineRun {
        engine,
        http,
        grpc,
        writer,
        writer_commits,
        raw_rows,
        raw_time,
        statements,
    })
}

/// OTLP/HTTP into a server with sqlx's statement log on: the statements logged from the
/// first request sent to the last acknowledged (and a moment for the log to drain).
fn count_statements(
    engine: Engine,
    args: &IngestArgs,
    shared: &Shared,
) -> anyhow::Result<(usize, StatementLog)> {
    let mut n = 0;
    let mut spans = 0;
    while n < shared.payloads.len() && spans < args.statement_spans.min(args.spans) {
        spans += shared.payload_spans[n];
        n += 1;
    }
    let payloads = Arc::new(shared.payloads[..n].to_vec());
    let db = BenchDb::fresh(engine, &shared.dirs, "statements")?;
    let server = ServerChild::start_counting(&shared.exe, db.location(), shared.server_core)?;
    let rt = current_thread()?;
    let before = server.statement_log().unwrap_or_default();
    rt.block_on(http_load(vec![server.http], payloads, args.concurrency))?;
    std::thread::sleep(Duration::from_millis(300));
    let after = server.statement_log().unwrap_or_default();
    drop(rt);
    server.stop()?;
    Ok((spans, after.since(&before)))
}

fn print_engine(run: &EngineRun, args: &IngestArgs, shared: &Shared) {
    let n_requests = shared.payloads.len();
    let payload_bytes: usize = shared.payloads.iter().map(Vec::len).sum();
    println!("{}", engine_line(run.engine));
    println!(
        "{:<15} {:>9} {:>7} {:>6} {:>7} {:>7} {:>13} {:>8} {:>9} {:>9} {:>9} {:>12}",
        "transport",
        "spans/s",
        "req/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "peak RSS MiB",
        "retries",
        "srv CPU%",
        "db CPU%",
        "cli CPU%",
        "spans/CPU-s"
    );
    for (name, t) in [("http/protobuf", &run.http), ("grpc", &run.grpc)] {
        let secs = t.load.wall.as_secs_f64();
        println!(
            "{:<15} {:>9.0} {:>7.1} {:>6.1} {:>7.2} {:>7.2} {:>13} {:>8} {:>9} {:>9} {:>9} {:>12}",
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
            match run.engine {
                Engine::Sqlite => "in srv".to_string(),
                Engine::Postgres => percent(t.db_cpu),
            },
            percent(t.client_cpu),
            t.spans_per_cpu_second(args.spans)
                .map_or("?".to_string(), |v| format!("{v:.0}")),
        );
    }
    let ceiling = shared.stored_rows as f64 / run.writer.wall.as_secs_f64();
    println!(
        "ceiling (writer, no OTLP)       spans/s {:>9.0}   ({:.2} s; per request p50 {:.2} ms, p99 {:.2} ms)",
        ceiling,
        run.writer.wall.as_secs_f64(),
        ms(run.writer.percentile(50.0)),
        ms(run.writer.percentile(99.0)),
    );
    let raw_rate = run.raw_rows as f64 / run.raw_time.as_secs_f64();
    println!(
        "ceiling (raw 1 KB row inserts)  rows/s  {:>9.0}   ({:.2} s; {RAW_ROWS_PER_STATEMENT} rows/statement, {RAW_ROWS_PER_TX} rows/transaction, native {})",
        raw_rate,
        run.raw_time.as_secs_f64(),
        match run.engine {
            Engine::Sqlite => "SQLite connection",
            Engine::Postgres => "PgConnection",
        }
    );
    println!(
        "ratio http/ceiling {:.0}%  grpc/ceiling {:.0}%  http/raw rows {:.2}  grpc/raw rows {:.2}",
        100.0 * run.http.spans_per_second(args.spans) / ceiling,
        100.0 * run.grpc.spans_per_second(args.spans) / ceiling,
        run.http.spans_per_second(args.spans) / raw_rate,
        run.grpc.spans_per_second(args.spans) / raw_rate,
    );
    for (name, commits, wall) in [
        ("http/protobuf", run.http.commits, run.http.load.wall),
        ("grpc", run.grpc.commits, run.grpc.load.wall),
        ("writer ceiling", run.writer_commits, run.writer.wall),
    ] {
        println!("writer, {name:<15} {}", Commits::describe(commits, wall));
    }
    println!(
        "per request, one core: writer ceiling {:.3} ms, raw inserts {:.3} ms",
        ms(run.writer.wall) / n_requests as f64,
        ms(run.raw_time) / n_requests as f64,
    );
    if let Some((spans, log)) = &run.statements {
        let kinds: Vec<String> = log
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {}", per_thousand(*n as f64, *spans)))
            .collect();
        println!(
            "statements per 1,000 spans (sqlx statement log, a run of {spans} spans over OTLP/HTTP): {} without transaction control, {} BEGIN/COMMIT logged; by kind: {}",
            per_thousand(log.statements() as f64, *spans),
            per_thousand(log.transaction_control() as f64, *spans),
            kinds.join(", ")
        );
    }
    for (name, t) in [("http/protobuf", &run.http), ("grpc", &run.grpc)] {
        if let Some((total, tables)) = &t.rows {
            println!(
                "rows stored, {name}: {} per 1,000 spans ({total} in all: {})",
                per_thousand(*total as f64, args.spans),
                tables
                    .iter()
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(pg) = &t.pg {
            let c = pg.counters;
            println!(
                "PostgreSQL, {name} (pg_stat_database, server start to stop): {} transactions, {} rows inserted = {} transactions and {} rows inserted per 1,000 spans{}",
                c.transactions,
                c.tup_inserted,
                per_thousand(c.transactions as f64, args.spans),
                per_thousand(c.tup_inserted as f64, args.spans),
                c.statements.map_or(String::new(), |s| format!(
                    "; pg_stat_statements: {s} statements = {} per 1,000 spans",
                    per_thousand(s as f64, args.spans)
                )),
            );
            println!(
                "  writes by table (pg_stat_all_tables: inserted/updated/deleted): {}",
                pg.table_writes
                    .iter()
                    .map(|(t, i, u, d)| format!("{t} {i}/{u}/{d}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for line in &pg.activity {
                println!("  {line}");
            }
        }
    }
}

fn print_side_by_side(engines: &[Engine], runs: &[EngineRun], args: &IngestArgs, shared: &Shared) {
    let mut t = SideBySide::new(
        format!(
            "bench ingest, side by side ({} spans per transport, {} spans/request, {} concurrent; tracelink pinned to {})",
            args.spans,
            args.spans_per_request,
            args.concurrency,
            shared
                .server_core
                .map_or("no core (unpinned)".to_string(), |c| format!("core {c}")),
        ),
        engines,
    );
    let each = |f: &dyn Fn(&EngineRun) -> String| runs.iter().map(f).collect::<Vec<_>>();
    let rate = |v: f64| format!("{v:.0}");
    t.row(
        "OTLP/HTTP spans/s (tracelink on one core)",
        each(&|r| rate(r.http.spans_per_second(args.spans))),
    );
    t.row(
        "OTLP/gRPC spans/s (tracelink on one core)",
        each(&|r| rate(r.grpc.spans_per_second(args.spans))),
    );
    t.row(
        "OTLP/HTTP p99 ms per request",
        each(&|r| format!("{:.2}", ms(r.http.load.percentile(99.0)))),
    );
    t.row(
        "OTLP/HTTP tracelink CPU (of its core)",
        each(&|r| percent(r.http.server_cpu)),
    );
    t.row(
        "OTLP/HTTP database backends CPU (of a core)",
        each(&|r| match r.engine {
            Engine::Sqlite => "in tracelink".to_string(),
            Engine::Postgres => percent(r.http.db_cpu),
        }),
    );
    t.row(
        "OTLP/HTTP spans per CPU-second (tracelink + backends)",
        each(&|r| {
            r.http
                .spans_per_cpu_second(args.spans)
                .map_or("?".to_string(), rate)
        }),
    );
    t.row(
        "OTLP/gRPC spans per CPU-second (tracelink + backends)",
        each(&|r| {
            r.grpc
                .spans_per_cpu_second(args.spans)
                .map_or("?".to_string(), rate)
        }),
    );
    t.row(
        "writer ceiling spans/s (no OTLP, one core)",
        each(&|r| rate(shared.stored_rows as f64 / r.writer.wall.as_secs_f64())),
    );
    t.row(
        "plain 1 KB rows/s (native connection)",
        each(&|r| rate(r.raw_rows as f64 / r.raw_time.as_secs_f64())),
    );
    let raw = |r: &EngineRun| r.raw_rows as f64 / r.raw_time.as_secs_f64();
    t.row(
        "OTLP/HTTP ingest ÷ plain 1 KB rows",
        each(&|r| format!("{:.2}", r.http.spans_per_second(args.spans) / raw(r))),
    );
    t.row(
        "OTLP/gRPC ingest ÷ plain 1 KB rows",
        each(&|r| format!("{:.2}", r.grpc.spans_per_second(args.spans) / raw(r))),
    );
    t.row(
        "writer transactions per 1,000 spans (HTTP, /metrics)",
        each(&|r| {
            r.http
                .commits
                .map_or("?".to_string(), |c| per_thousand(c.count, args.spans))
        }),
    );
    t.row(
        "statements per 1,000 spans (sqlx log, no BEGIN/COMMIT)",
        each(&|r| {
            r.statements.as_ref().map_or("n/a".to_string(), |(s, log)| {
                per_thousand(log.statements() as f64, *s)
            })
        }),
    );
    t.row(
        "statements per 1,000 spans (pg_stat_statements, HTTP)",
        each(&|r| match (&r.engine, &r.http.pg) {
            (Engine::Postgres, Some(pg)) => pg
                .counters
                .statements
                .map_or("n/a (not loaded)".to_string(), |s| {
                    per_thousand(s as f64, args.spans)
                }),
            _ => "n/a".to_string(),
        }),
    );
    t.row(
        "database transactions per 1,000 spans (pg_stat_database, HTTP)",
        each(&|r| {
            r.http.pg.as_ref().map_or("n/a".to_string(), |pg| {
                per_thousand(pg.counters.transactions as f64, args.spans)
            })
        }),
    );
    t.row(
        "rows inserted per 1,000 spans (pg_stat_database, TOAST incl., HTTP)",
        each(&|r| {
            r.http.pg.as_ref().map_or("n/a".to_string(), |pg| {
                per_thousand(pg.counters.tup_inserted as f64, args.spans)
            })
        }),
    );
    t.row(
        "rows stored per 1,000 spans (table counts, HTTP)",
        each(&|r| {
            r.http.rows.as_ref().map_or("?".to_string(), |(n, _)| {
                per_thousand(*n as f64, args.spans)
            })
        }),
    );
    t.row(
        "OTLP/HTTP server peak RSS MiB",
        each(&|r| {
            r.http
                .peak_rss_kib
                .map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
        }),
    );
    t.print();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percent(v: Option<f64>) -> String {
    v.map_or("?".to_string(), |v| format!("{:.0}%", v * 100.0))
}

/// One transport's figures.
struct TransportRun {
    load: Load,
    peak_rss_kib: Option<u64>,
    /// Share of one core the server used while the client ran.
    server_cpu: Option<f64>,
    /// Share of one core this process used while the client ran.
    client_cpu: Option<f64>,
    /// Share of one core the PostgreSQL backends of the database used meanwhile.
    db_cpu: Option<f64>,
    /// The server writer's transactions over the whole run.
    commits: Option<Commits>,
    /// Rows the database gained, in all and by table.
    rows: Option<(i64, Vec<(String, i64)>)>,
    /// PostgreSQL's own figures.
    pg: Option<PgPhase>,
}

impl TransportRun {
    fn spans_per_second(&self, spans: usize) -> f64 {
        spans as f64 / self.load.wall.as_secs_f64()
    }

    /// Spans per second of CPU the server and its database backends used.
    fn spans_per_cpu_second(&self, spans: usize) -> Option<f64> {
        let cores = self.server_cpu? + self.db_cpu.unwrap_or(0.0);
        (cores > 0.0).then(|| self.spans_per_second(spans) / cores)
    }
}

/// What PostgreSQL says about one transport phase's database.
struct PgPhase {
    counters: PgCounters,
    table_writes: Vec<(String, i64, i64, i64)>,
    activity: Vec<String>,
}

/// Starts a child server on a fresh database, drives `client` against it on a
/// current-thread runtime, then reads the server's peak RSS and stops it. On
/// PostgreSQL the database's counters are read before the server starts and after it
/// stopped, and its backends are watched while the client runs.
fn measure_transport<F, Fut>(
    shared: &Shared,
    db: &BenchDb,
    spans: usize,
    client: F,
) -> anyhow::Result<TransportRun>
where
    F: FnOnce(SocketAddr, SocketAddr) -> Fut,
    Fut: Future<Output = anyhow::Result<Load>>,
{
    let location = db.location();
    // PostgreSQL's watch lives on a runtime of its own: the client's is dropped before
    // the server stops, and the watch reads after that.
    let pg_rt = current_thread()?;
    let rows_before = pg_rt.block_on(table_rows(&location))?;
    let mut watch = match db.postgres() {
        Some(pg) => Some(pg_rt.block_on(PgWatch::connect(pg))?),
        None => None,
    };
    let counters_before = match watch.as_mut() {
        Some(w) => Some(pg_rt.block_on(w.counters_before())?),
        None => None,
    };
    let server = ServerChild::start(&shared.exe, location.clone(), shared.server_core)?;
    let backends_before = match watch.as_mut() {
        Some(w) => Some(BackendCpu::start(&pg_rt.block_on(w.backends())?)),
        None => None,
    };
    let sampler = db
        .postgres()
        .map(|pg| ActivitySampler::start(pg, ACTIVITY_EVERY));
    let rt = current_thread()?;
    let server_pid = server.pid.to_string();
    let (srv0, cli0) = (cpu_ticks(&server_pid), cpu_ticks("self"));
    let started = Instant::now();
    let load = rt.block_on(client(server.grpc, server.http));
    let elapsed = started.elapsed().as_secs_f64();
    let (srv1, cli1) = (cpu_ticks(&server_pid), cpu_ticks("self"));
    let db_ticks = match (watch.as_mut(), &backends_before) {
        (Some(w), Some(b)) => Some(b.ticks_since(&pg_rt.block_on(w.backends())?)),
        _ => None,
    };
    let activity = match sampler {
        Some(s) => s.finish()?.describe(),
        None => Vec::new(),
    };
    let load = load?;
    let commits = match rt.block_on(server_metrics(server.http)) {
        Ok(text) => Commits::parse(&text),
        Err(e) => {
            eprintln!("warning: reading the server's /metrics: {e:#}");
            None
        }
    };
    let share = |a: Option<u64>, b: Option<u64>| {
        Some(b?.saturating_sub(a?) as f64 / shared.clk_tck / elapsed)
    };
    // Dropping the runtime closes the client's connections: a gRPC channel left open
    // on a runtime nobody drives never answers the server's GOAWAY, and the server's
    // graceful shutdown would wait for it.
    drop(rt);
    let peak_rss_kib = server.stop()?;
    let pg = match (watch.as_mut(), counters_before) {
        (Some(w), Some(before)) => {
            let after = pg_rt.block_on(w.counters_after())?;
            Some(PgPhase {
                counters: after - before,
                table_writes: pg_rt.block_on(w.table_writes())?,
                activity,
            })
        }
        _ => None,
    };
    match pg_rt.block_on(count_spans(&location)) {
        Ok(n) if n == spans as i64 => {}
        Ok(n) => eprintln!("warning: {location} holds {n} spans after the run, {spans} were sent"),
        Err(e) => eprintln!("warning: counting the stored spans: {e:#}"),
    }
    let rows = match pg_rt.block_on(table_rows(&location)) {
        Ok(after) => {
            let added = rows_added(&rows_before, &after);
            Some((added.iter().map(|(_, n)| n).sum(), added))
        }
        Err(e) => {
            eprintln!("warning: counting the rows stored: {e:#}");
            None
        }
    };
    Ok(TransportRun {
        load,
        peak_rss_kib,
        server_cpu: share(srv0, srv1),
        client_cpu: share(cli0, cli1),
        db_cpu: db_ticks.map(|t| t as f64 / shared.clk_tck / elapsed),
        commits,
        rows,
        pg,
    })
}

pub(super) async fn count_spans(location: &Location) -> anyhow::Result<i64> {
    let db = tracelink::store::Db::open_read_only(location).await?;
    let n = db.stored_rows("traces").await;
    db.close().await;
    Ok(n?)
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
pub(super) struct Load {
    /// First send to last acknowledged response.
    pub(super) wall: Duration,
    /// Per request, first attempt to acknowledgement (backoffs included), sorted.
    latencies: Vec<Duration>,
    /// Attempts refused because the server's write queue was full.
    pub(super) retries: u64,
}

impl Load {
    /// Nearest-rank percentile.
    pub(super) fn percentile(&self, p: f64) -> Duration {
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
pub(super) async fn server_metrics(addr: SocketAddr) -> anyhow::Result<String> {
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

/// Sends every payload over OTLP/HTTP from `concurrency` workers, each taking the next
/// payload in turn; payload `i` goes to `addrs[replica_of(i, addrs.len())]` (round-robin),
/// over a keep-alive connection the worker holds to each address.
pub(super) async fn http_load(
    addrs: Vec<SocketAddr>,
    payloads: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> anyhow::Result<Load> {
    if addrs.is_empty() {
        bail!("no server to send to");
    }
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut to_each = Vec::with_capacity(addrs.len());
        for addr in &addrs {
            to_each.push(HttpConn::connect(*addr).await?);
        }
        conns.push(to_each);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = conns
        .into_iter()
        .map(|mut to_each| {
            let payloads = payloads.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut w = WorkerLoad::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = payloads.get(i) else { break };
                    let replicas = to_each.len();
                    let Some(conn) = to_each.get_mut(replica_of(i, replicas)) else {
                        bail!("no connection for request {i}");
                    };
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

/// The replica (of `replicas`) the `i`th request goes to: round-robin.
pub(super) fn replica_of(i: usize, replicas: usize) -> usize {
    i % replicas.max(1)
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
    db: &Location,
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

/// Plain ~1 KB rows, one per span, as multi-row INSERTs into a table of their own on a
/// native connection: SQLite with the store's pragmas (`id INTEGER PRIMARY KEY, body
/// BLOB`), or a `PgConnection` with the server's settings (`id BIGINT PRIMARY KEY, body
/// BYTEA`); the rate at which this machine's engine stores rows of that size, which
/// durable ingest is measured against. Returns the rows inserted and the time taken.
async fn raw_ceiling(db: &Location, rows: usize) -> anyhow::Result<(u64, Duration)> {
    // Distinct, incompressible bodies (SQLite does not compress, PostgreSQL compresses
    // only values beyond ~2 KB; be honest anyway).
    let mut rng = XorShift::new(0x1cb);
    let bodies: Vec<Vec<u8>> = (0..rows)
        .map(|_| {
            (0..RAW_ROW_BYTES / 8)
                .flat_map(|_| rng.next().to_le_bytes())
                .collect()
        })
        .collect();
    const HEAD: &str = "INSERT INTO ceiling_rows (id, body) VALUES ";
    // The timed loop, the same for both connection types: RAW_ROWS_PER_TX rows per
    // transaction, RAW_ROWS_PER_STATEMENT per statement.
    macro_rules! insert_all {
        ($conn:expr, $numbered:expr) => {{
            let full = values_sql(HEAD, 2, RAW_ROWS_PER_STATEMENT, $numbered);
            let mut inserted = 0;
            let started = Instant::now();
            let mut id = 0i64;
            for tx_rows in bodies.chunks(RAW_ROWS_PER_TX) {
                let mut tx = $conn.begin().await?;
                for chunk in tx_rows.chunks(RAW_ROWS_PER_STATEMENT) {
                    let sql = if chunk.len() == RAW_ROWS_PER_STATEMENT {
                        full.clone()
                    } else {
                        values_sql(HEAD, 2, chunk.len(), $numbered)
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
            (inserted, started.elapsed())
        }};
    }
    match db {
        Location::File(path) => {
            let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory")
                .disable_statement_logging()
                .connect()
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            sqlx::query("CREATE TABLE ceiling_rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
                .execute(&mut conn)
                .await?;
            let (inserted, elapsed) = insert_all!(conn, false);
            conn.close().await?;
            Ok((inserted, elapsed))
        }
        Location::Postgres(url) => {
            let mut conn = sqlx::postgres::PgConnectOptions::from_str(url)?
                .disable_statement_logging()
                .connect()
                .await
                .with_context(|| format!("opening {db}"))?;
            sqlx::query("CREATE TABLE ceiling_rows (id BIGINT PRIMARY KEY, body BYTEA NOT NULL)")
                .execute(&mut conn)
                .await?;
            let (inserted, elapsed) = insert_all!(conn, true);
            PgConnection::close(conn).await?;
            Ok((inserted, elapsed))
        }
    }
}

/// `head`, then `rows` groups of `columns` placeholders (`?`, or `$n` when `numbered`,
/// as PostgreSQL takes them), then `ON CONFLICT DO NOTHING` (a span already stored is
/// skipped, as the writer does).
fn values_sql(head: &str, columns: usize, rows: usize, numbered: bool) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (columns * 5 + 4) + 24);
    sql.push_str(head);
    let mut n = 0;
    for i in 0..rows {
        sql.push_str(if i > 0 { ", (" } else { "(" });
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if numbered {
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
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
pub(super) fn generate(
    spans: usize,
    spans_per_request: usize,
    attributes_per_span: usize,
) -> Vec<ExportTraceServiceRequest> {
    // 2025-01-01T00:00:00Z: traces start 3 ms apart from here.
    const BASE_NS: u64 = 1_735_689_600_000_000_000;
    let mut rng = XorShift::new(0x7472_6163_656c_696e);
    let mut trace_n: u64 = 0;
    let mut span_n: u64 = 0;
    let mut left = spans;
    let mut out = Vec::with_capacity(spans.div_ceil(spans_per_request));
    while left > 0 {
        let in_request = left.min(spans_per_request);
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
                    attributes: attributes(&mut rng, attributes_per_span, method, route),
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
