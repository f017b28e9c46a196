//! `tracelink-dev bench report`: how long building a PR report takes, for a large PR
//! (50 agent sessions, 10,000 spans, 200 commits by default), on SQLite and PostgreSQL
//! (`--engines sqlite,postgres`, the default; a fresh database each), then side by side.
//! Cold: the database opened anew for each report (a new read-only pool: new
//! connections with empty statement caches; on SQLite empty page caches too, on
//! PostgreSQL the server's shared buffers stay warm); warm: one open pool.
//! The data goes in through the real paths (normalised OTLP through the writer, webhook
//! events through plan + apply).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::json;

use tracelink::github::events::Event;
use tracelink::ids::{PrNumber, RepoName};
use tracelink::impact::ReportContext;
use tracelink::impact::pull::build;
use tracelink::store::{Db, Engine, Location};
use tracelink::telemetry::Telemetry;

use super::engines::{BenchDb, BenchDirs, EngineArgs, SideBySide, engine_line, engine_name};

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Agent sessions linked to the PR.
    #[arg(long, default_value_t = 50)]
    pub sessions: usize,
    /// Spans across those sessions.
    #[arg(long, default_value_t = 10_000)]
    pub spans: usize,
    /// Commits in the PR.
    #[arg(long, default_value_t = 200)]
    pub commits: usize,
    /// Reports built per measurement.
    #[arg(long, default_value_t = 40)]
    pub runs: usize,
    #[command(flatten)]
    pub engines: EngineArgs,
}

const REPO: &str = "acme/widgets";
const T0: i64 = 1_795_165_325_000_000_000;

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn sha(i: usize) -> String {
    format!("{:040x}", 0xabc0_0000_u64 + i as u64)
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let engines = args.engines.resolve()?;
    let dirs = BenchDirs::new(None)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut runs = Vec::with_capacity(engines.len());
    for engine in &engines {
        println!();
        println!("== {} ==", engine_name(*engine));
        println!("{}", engine_line(*engine));
        // Created (and dropped) outside the runtime: pgtest blocks on its own.
        let db = BenchDb::fresh(*engine, &dirs, "report")?;
        let figures = rt
            .block_on(measure_in(&args, &db.location()))
            .with_context(|| format!("bench report on {}", engine_name(*engine)))?;
        runs.push(figures);
    }
    drop(rt);
    print_side_by_side(&args, &engines, &runs);
    Ok(())
}

/// One engine's figures, in ms (set-up in s).
struct Figures {
    setup_s: f64,
    linking_ms: f64,
    cold: (f64, f64),
    warm: (f64, f64),
}

fn print_side_by_side(args: &ReportArgs, engines: &[Engine], runs: &[Figures]) {
    let mut t = SideBySide::new(
        format!(
            "bench report, side by side (PR of {} commits, {} sessions, {} spans; {} reports per measurement)",
            args.commits, args.sessions, args.spans, args.runs
        ),
        engines,
    );
    let each = |f: &dyn Fn(&Figures) -> String| runs.iter().map(f).collect::<Vec<_>>();
    t.row(
        "report p95 ms, warm (one pool)",
        each(&|r| format!("{:.1}", r.warm.1)),
    );
    t.row(
        "report p50 ms, warm (one pool)",
        each(&|r| format!("{:.1}", r.warm.0)),
    );
    t.row(
        "report p95 ms, cold (new pool per report)",
        each(&|r| format!("{:.1}", r.cold.1)),
    );
    t.row(
        "report p50 ms, cold (new pool per report)",
        each(&|r| format!("{:.1}", r.cold.0)),
    );
    t.row(
        "linking the PR's commits ms",
        each(&|r| format!("{:.1}", r.linking_ms)),
    );
    t.row(
        "set-up s (sessions through the writer, webhooks, links)",
        each(&|r| format!("{:.1}", r.setup_s)),
    );
    t.print();
}

async fn measure_in(args: &ReportArgs, db: &Location) -> anyhow::Result<Figures> {
    let setup = Instant::now();
    let store = tracelink::store::open(db).await?;
    // The writer takes the store's connection; webhook events go through another.
    let mut conn = store.connect().await?;
    let (writer, writer_task) =
        tracelink::store::writer::spawn(store.writer, 64, Arc::new(Telemetry::default()));
    let commit_gap = 3 * 60 * 1_000_000_000i64;
    // Sessions: spans following the gen_ai conventions, each naming some commits.
    let spans_per_session = (args.spans / args.sessions.max(1)).max(1);
    for s in 0..args.sessions {
        let start =
            T0 + (s as i64) * commit_gap * (args.commits as i64) / (args.sessions as i64).max(1);
        let spans: Vec<Span> = (0..spans_per_session)
            .map(|i| {
                let mut attrs = vec![
                    kv("gen_ai.operation.name", Value::StringValue("chat".into())),
                    kv(
                        "gen_ai.conversation.id",
                        Value::StringValue(format!("session-{s:03}")),
                    ),
                    kv(
                        "gen_ai.request.model",
                        Value::StringValue("claude-sonnet-4-6".into()),
                    ),
                    kv("gen_ai.usage.input_tokens", Value::IntValue(1200)),
                    kv("gen_ai.usage.output_tokens", Value::IntValue(300)),
                    kv("user.email", Value::StringValue("dev@acme.example".into())),
                ];
                if i < 4 {
                    let c = (s * 4 + i) % args.commits.max(1);
                    attrs.push(kv("vcs.ref.head.revision", Value::StringValue(sha(c))));
                }
                let mut trace = [0u8; 16];
                trace[..8].copy_from_slice(&(s as u64 + 1).to_be_bytes());
                trace[8..].copy_from_slice(&(i as u64 / 50 + 1).to_be_bytes());
                Span {
                    trace_id: trace.to_vec(),
                    span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                    name: "chat claude-sonnet-4-6".into(),
                    start_time_unix_nano: (start + i as i64 * 1_000_000_000) as u64,
                    end_time_unix_nano: (start + i as i64 * 1_000_000_000 + 500_000_000) as u64,
                    attributes: attrs,
                    ..Default::default()
                }
            })
            .collect();
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("acme-agent".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        writer
            .submit(tracelink::agents::traces(&req))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    drop(writer);
    writer_task.await?;

    // The PR: its commits pushed to its branch, then the PR itself.
    let commits: Vec<_> = (0..args.commits)
        .map(|i| {
            let at =
                chrono::DateTime::from_timestamp((T0 + i as i64 * commit_gap) / 1_000_000_000, 0)
                    .unwrap_or_default()
                    .to_rfc3339();
            json!({"id": sha(i), "message": format!("Change {i}"), "timestamp": at,
                "author": {"name": "dev", "email": "dev@acme.example", "username": "dev"},
                "added": [], "modified": [format!("src/file{}.ts", i % 17)], "removed": []})
        })
        .collect();
    let push = json!({"ref": "refs/heads/feature", "before": "0000000000000000000000000000000000000000",
        "after": sha(args.commits.saturating_sub(1)), "repository": {"full_name": REPO}, "commits": commits});
    let pr = json!({"action": "opened", "repository": {"full_name": REPO}, "pull_request": {
        "number": 1, "state": "open", "head": {"ref": "feature", "sha": sha(args.commits.saturating_sub(1))},
        "base": {"ref": "main", "sha": "0000000000000000000000000000000000000001"},
        "updated_at": "2026-11-22T00:00:00Z"}});
    for (event, payload) in [("push", push), ("pull_request", pr)] {
        let ev = Event::parse(event, payload.to_string().as_bytes())?;
        let ops = tracelink::github::plan::plan(&ev, "incident")?;
        let mut tx = conn.begin().await?;
        tx.apply(&ops, 0).await?;
        tx.commit().await?;
    }
    // Link the commits as the webhook processor does after applying them: reports read
    // the stored links.
    let ctx = ReportContext::default();
    let linking = Instant::now();
    let mut stale = tracelink::graph::linker::Stale::default();
    for i in 0..args.commits {
        stale.commit(REPO, &sha(i));
    }
    let stored =
        tracelink::graph::linker::relink(&store.db, &mut conn, &ctx.links, stale, 0).await?;
    let linking = linking.elapsed();
    conn.close().await?;
    store.db.close().await;
    let setup = setup.elapsed();

    let repo = RepoName::parse(REPO)?;
    let pr = PrNumber(1);
    let mut cold = Vec::with_capacity(args.runs);
    let mut check = None;
    for _ in 0..args.runs {
        let t = Instant::now();
        let reader = Db::open_read_only(db).await?;
        let r = build(&reader, &ctx, &repo, pr)
            .await?
            .context("the PR is missing")?;
        cold.push(t.elapsed());
        check = Some(r.report);
        reader.close().await;
    }
    let reader = Db::open_read_only(db).await?;
    build(&reader, &ctx, &repo, pr).await?;
    let mut warm = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        build(&reader, &ctx, &repo, pr).await?;
        warm.push(t.elapsed());
    }
    let r = check.context("no report")?;
    let spans = reader.stored_rows("traces").await?;
    reader.close().await;
    println!(
        "linking the PR's {} commits (as the processor does): {:.1} ms, {stored} links stored",
        args.commits,
        linking.as_secs_f64() * 1000.0
    );
    println!(
        "tracelink bench report: PR with {} commits, {} linked sessions, {} spans in the database (set up in {:.1} s)",
        r.totals.commits,
        r.totals.sessions,
        spans,
        setup.as_secs_f64()
    );
    let (c50, c95) = pct(&mut cold);
    let (w50, w95) = pct(&mut warm);
    println!(
        "cold (new pool per report): p50 {c50:.1} ms  p95 {c95:.1} ms  over {} reports",
        args.runs
    );
    println!(
        "warm (one pool):            p50 {w50:.1} ms  p95 {w95:.1} ms  over {} reports",
        args.runs
    );
    println!(
        "markdown: {} bytes",
        tracelink::report::markdown::render(&r).len()
    );
    Ok(Figures {
        setup_s: setup.as_secs_f64(),
        linking_ms: linking.as_secs_f64() * 1000.0,
        cold: (c50, c95),
        warm: (w50, w95),
    })
}

fn pct(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    let at = |p: f64| {
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.95))
}
