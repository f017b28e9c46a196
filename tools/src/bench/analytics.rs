//! `tracelink-dev bench analytics`: how fast `GET /api/v1/analytics/{metric}` answers on
//! a year of a large organisation — by default 500,000 agent sessions over the 365 days
//! before 2026-11-30 (fixed, so runs compare), 2,000 people in 20 teams, 200
//! repositories, 4 agents, 6 models — on SQLite and PostgreSQL
//! (`--engines sqlite,postgres`).
//!
//! The sessions are seeded by a bench-only bulk helper of the store
//! ([`tracelink::store::testing::SeedSession`]): the session rows, their tokens and
//! counters, which is all the analytics API reads (no raw records). The generated
//! database is kept and reused: the SQLite file `<--data-dir>/analytics-v2-<sessions>.db`,
//! the PostgreSQL database `tl_bench_analytics_v2_<sessions>` (reused when it holds the
//! expected session count, else generated again). A child `tracelink serve` on it, with
//! the identities file the generator writes, answers the timed requests (open loopback,
//! no read token): 2 warm-ups, then `--requests` each.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tracelink::facts::Counter;
use tracelink::store::testing::{SeedCommit, SeedSession};
use tracelink::store::{Engine, Location};
use tracelink_dev::pgtest;

use super::engines::{EngineArgs, SideBySide, current_thread, engine_line, engine_name};
use super::{HttpConn, ServerChild, tracelink_binary};

#[derive(Debug, Clone, clap::Args)]
pub struct AnalyticsArgs {
    /// Agent sessions over the year.
    #[arg(long, default_value_t = 500_000)]
    pub sessions: usize,
    /// Where the generated SQLite database (`analytics-v2-<sessions>.db`) and the identities
    /// file are kept between runs.
    #[arg(long, default_value = "./bench-data")]
    pub data_dir: PathBuf,
    /// Timed requests per query (after 2 warm-ups).
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    #[command(flatten)]
    pub engines: EngineArgs,
}

/// 2026-11-30T00:00:00Z: the end of the generated year and of the timed ranges.
const END_NS: i64 = 1_795_996_800 * 1_000_000_000;
const DAY_NS: i64 = 86_400 * 1_000_000_000;
const PEOPLE: usize = 2_000;
const TEAMS: usize = 20;
const REPOS: usize = 200;
/// People left out of the identities file (the last ones): their team is their
/// repository's.
const UNLISTED: usize = 40;
/// Sessions per seeding transaction.
const SEED_BATCH: usize = 5_000;
/// The bar for the 90-day team view.
const BAR_MS: f64 = 300.0;
const WARM_UPS: usize = 2;
/// Bumped when what is generated changes (v2: sessions' commits and their landings),
/// so a database generated before is not reused.
const GENERATION: &str = "v2";

/// The timed queries: the 90 days before the end.
const QUERIES: [&str; 11] = [
    "/api/v1/analytics/cost?group_by=team&bucket=week&from=2026-09-01&to=2026-11-30",
    "/api/v1/analytics/sessions?group_by=agent&bucket=day&from=2026-09-01&to=2026-11-30",
    "/api/v1/analytics/active-people?group_by=team&bucket=week&from=2026-09-01&to=2026-11-30",
    // Every session's value of the range (a percentile), every person's first session of
    // all time (new people), and the distinct (week, team, person).
    "/api/v1/analytics/session-duration-p90?group_by=team&bucket=week&from=2026-09-01&to=2026-11-30",
    "/api/v1/analytics/new-people?group_by=team&bucket=week&from=2026-09-01&to=2026-11-30",
    "/api/v1/analytics/team-active-share?group_by=team&bucket=week&from=2026-09-01&to=2026-11-30",
    // What the sessions' commits became: one or two probes of their links per session.
    "/api/v1/analytics/cost-without-commit?group_by=team&bucket=week&from=2026-09-01&to=2026-11-30",
    "/api/v1/analytics/waste-share?group_by=team&bucket=week&from=2026-09-01&to=2026-11-30",
    // The dashboard's pages over the same 90 days: each asks several of the above.
    "/?bucket=week&from=2026-09-01&to=2026-11-30",
    "/teams?bucket=week&from=2026-09-01&to=2026-11-30",
    "/agents?bucket=week&from=2026-09-01&to=2026-11-30",
];

/// `(agent, share in percent, models it uses)`.
const AGENTS: [(&str, u64, &[&str]); 4] = [
    (
        "claude-code",
        45,
        &["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"],
    ),
    ("codex", 25, &["gpt-5-codex", "gpt-5"]),
    ("gemini-cli", 15, &["gemini-2.5-pro"]),
    ("droid", 15, &["claude-sonnet-4-5", "gpt-5"]),
];

pub fn run(args: AnalyticsArgs) -> anyhow::Result<()> {
    if args.sessions == 0 || args.requests == 0 {
        bail!("--sessions and --requests must be at least 1");
    }
    let engines = args.engines.resolve()?;
    let exe = tracelink_binary()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let identities = args.data_dir.join("analytics-identities.toml");
    std::fs::write(&identities, identities_toml())
        .with_context(|| format!("writing {}", identities.display()))?;
    println!(
        "bench analytics: {} sessions over the 365 days before 2026-11-30, {PEOPLE} people, \
         {TEAMS} teams, {REPOS} repositories; identities: {}",
        args.sessions,
        identities.display()
    );
    let mut figures = Vec::new();
    for engine in &engines {
        println!();
        println!("== {} ==", engine_name(*engine));
        println!("{}", engine_line(*engine));
        let data = prepare(*engine, &args)?;
        match current_thread()?.block_on(count_facts(data.location.clone(), &identities))? {
            Some((n, secs)) => println!(
                "analytics facts: {n} sessions counted in {secs:.1} s ({:.0}/s)",
                n as f64 / secs.max(1e-9)
            ),
            None => println!("analytics facts: up to date"),
        }
        println!(
            "database: {} ({}), {:.1} MiB, {}",
            data.shown,
            if data.generated_s.is_some() {
                "generated"
            } else {
                "reused"
            },
            data.bytes as f64 / 1_048_576.0,
            match data.generated_s {
                Some(s) => format!("generated in {s:.1} s"),
                None => "generation time: not measured this run (reused)".to_string(),
            }
        );
        let timings = measure(&exe, &data.location, &identities, args.requests)
            .with_context(|| format!("timing on {}", engine_name(*engine)))?;
        figures.push((data, timings));
    }
    print_side_by_side(&args, &engines, &figures);
    Ok(())
}

/// A generated database ready to measure.
struct Data {
    location: Location,
    /// How to name it in the output (a PostgreSQL URL without its password).
    shown: String,
    /// Seconds the generation took, when this run generated it.
    generated_s: Option<f64>,
    bytes: u64,
}

fn prepare(engine: Engine, args: &AnalyticsArgs) -> anyhow::Result<Data> {
    let rt = current_thread()?;
    match engine {
        Engine::Sqlite => {
            let path = args
                .data_dir
                .join(format!("analytics-{GENERATION}-{}.db", args.sessions));
            let mut generated_s = None;
            if path.exists() {
                let n = rt
                    .block_on(session_count(&Location::File(path.clone())))
                    .unwrap_or(-1);
                if n == args.sessions as i64 {
                    println!("reusing {} ({n} sessions)", path.display());
                } else {
                    println!(
                        "{} holds {n} sessions (-1: unreadable or sessions queued for linking), \
                         not {}: generating it again",
                        path.display(),
                        args.sessions
                    );
                    for p in sqlite_files(&path) {
                        std::fs::remove_file(&p)
                            .with_context(|| format!("removing {}", p.display()))?;
                    }
                }
            }
            if !path.exists() {
                // Generated under another name and renamed when complete, so a run
                // stopped half-way leaves nothing to reuse.
                let partial = path.with_extension("db.partial");
                for p in sqlite_files(&partial) {
                    let _ = std::fs::remove_file(p);
                }
                let s = rt.block_on(generate(Location::File(partial.clone()), args.sessions))?;
                // Its write-ahead log (what no checkpoint moved into the file yet) goes
                // with it; the shared-memory index is rebuilt on open.
                let _ = std::fs::remove_file(format!("{}-shm", partial.display()));
                let wal = PathBuf::from(format!("{}-wal", partial.display()));
                if wal.exists() {
                    std::fs::rename(&wal, format!("{}-wal", path.display()))
                        .with_context(|| format!("renaming {} into place", wal.display()))?;
                }
                std::fs::rename(&partial, &path)
                    .with_context(|| format!("renaming {} into place", partial.display()))?;
                generated_s = Some(s);
            }
            let bytes = sqlite_files(&path)
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            Ok(Data {
                shown: path.display().to_string(),
                location: Location::File(path),
                generated_s,
                bytes,
            })
        }
        Engine::Postgres => {
            let name = format!("tl_bench_analytics_{GENERATION}_{}", args.sessions);
            let (url, created) = rt.block_on(pgtest::keep_database(&name))?;
            let location = Location::Postgres(url);
            let mut generated_s = None;
            let mut fresh = created;
            if !created {
                let n = rt.block_on(session_count(&location)).unwrap_or(-1);
                if n == args.sessions as i64 {
                    println!("reusing PostgreSQL database {name} ({n} sessions)");
                } else {
                    println!(
                        "PostgreSQL database {name} holds {n} sessions (-1: unreadable or \
                         sessions queued for linking), not {}: generating it again",
                        args.sessions
                    );
                    rt.block_on(pgtest::drop_kept_database(&name))?;
                    rt.block_on(pgtest::keep_database(&name))?;
                    fresh = true;
                }
            }
            if fresh {
                println!("generating PostgreSQL database {name}");
                generated_s = Some(rt.block_on(generate(location.clone(), args.sessions))?);
            }
            let bytes = rt.block_on(pgtest::database_size(&name))?;
            Ok(Data {
                shown: format!("{location}"),
                location,
                generated_s,
                bytes: u64::try_from(bytes).unwrap_or(0),
            })
        }
    }
}

fn sqlite_files(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", path.display())))
        .filter(|p| p.exists())
        .collect()
}

/// The sessions a database holds, or -1 when it holds sessions still queued for
/// linking (a server started on it before it was marked linked): not reusable.
async fn session_count(location: &Location) -> anyhow::Result<i64> {
    let db = tracelink::store::Db::open_read_only(location.clone()).await?;
    let n = db.row_count("sessions").await;
    let queued = db.relinks_queued().await;
    db.close().await;
    Ok(if queued? > 0 { -1 } else { n? })
}

/// Seeds `sessions` sessions into a new (migrated on open) database; returns the
/// seconds it took, migrations included.
async fn generate(location: Location, sessions: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let store = tracelink::store::open(location).await?;
    let mut conn = store.writer;
    let mut last_print = Instant::now();
    let mut batch = Vec::with_capacity(SEED_BATCH);
    let mut i = 0;
    while i < sessions {
        batch.clear();
        let end = (i + SEED_BATCH).min(sessions);
        batch.extend((i..end).map(session));
        conn.seed_sessions(&batch)
            .await
            .with_context(|| format!("seeding sessions {i}..{end}"))?;
        i = end;
        if last_print.elapsed() > Duration::from_secs(10) || i == sessions {
            last_print = Instant::now();
            let s = started.elapsed().as_secs_f64();
            println!(
                "  {i} sessions in {s:.0} s ({:.0}/s)",
                i as f64 / s.max(1e-9)
            );
        }
    }
    conn.seeded().await?;
    // As a server that has linked every session leaves it: the seeded links computed
    // with today's rules, nothing queued. Otherwise the server's first start queues
    // every session for linking and links them while it is being timed.
    conn.linked_by_rules(tracelink::graph::links::RULES_VERSION)
        .await?;
    conn.close().await?;
    store.db.close().await;
    Ok(started.elapsed().as_secs_f64())
}

/// Computes analytics' facts as the server does (the same identities file, the default
/// price table), so that its start finds nothing to count: `(sessions, seconds)`, or
/// `None` when they were up to date.
async fn count_facts(
    location: Location,
    identities: &Path,
) -> anyhow::Result<Option<(usize, f64)>> {
    let store = tracelink::store::open(location).await?;
    let mut conn = store.writer;
    let ctx = tracelink::impact::ReportContext {
        prices: tracelink::pricing::PriceTable::configured(None)?,
        links: tracelink::graph::links::LinkConfig {
            identities: tracelink::graph::identities::Identities::load(identities)?,
            ..Default::default()
        },
        incident_environment: String::new(),
        comment_people: tracelink::report::markdown::CommentPeople::Logins,
        comment_cost: None,
        zone: tracelink::time::Zone::UTC,
    };
    let started = Instant::now();
    tracelink::impact::analytics::on_new_basis(&mut conn, &ctx).await?;
    let n = tracelink::impact::analytics::refresh(&store.db, &mut conn, &ctx, usize::MAX).await?;
    let secs = started.elapsed().as_secs_f64();
    conn.close().await?;
    store.db.close().await;
    Ok((n > 0).then_some((n, secs)))
}

/// A deterministic stream of pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[lo, hi]`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

fn team_name(t: usize) -> String {
    format!("team{:02}", t + 1)
}

fn repo_name(r: usize) -> String {
    format!("acme/repo{:03}", r + 1)
}

fn email(p: usize) -> String {
    format!("dev{:04}@acme.example", p + 1)
}

/// A person's team (people are spread over the teams in turn).
fn team_of(p: usize) -> usize {
    p % TEAMS
}

/// The identities file: every person but the last [`UNLISTED`] in their team (every
/// 50th also in the next team), each team owning 10 repositories, with a budget.
fn identities_toml() -> String {
    use std::fmt::Write;
    let mut out = String::from("# Generated by `tracelink-dev bench analytics`.\n");
    for p in 0..PEOPLE - UNLISTED {
        let mut teams = vec![team_name(team_of(p))];
        if p % 50 == 0 {
            teams.push(team_name((team_of(p) + 1) % TEAMS));
        }
        let teams: Vec<String> = teams.iter().map(|t| format!("{t:?}")).collect();
        let _ = write!(
            out,
            "\n[[person]]\nlogin = \"dev{:04}\"\nemails = [{:?}]\nteams = [{}]\n",
            p + 1,
            email(p),
            teams.join(", ")
        );
    }
    let per_team = REPOS / TEAMS;
    for t in 0..TEAMS {
        let repos: Vec<String> = (t * per_team..(t + 1) * per_team)
            .map(|r| format!("{:?}", repo_name(r)))
            .collect();
        let _ = write!(
            out,
            "\n[[team]]\nname = \"{}\"\nrepos = [{}]\nmonthly_budget_usd = 20000\n",
            team_name(t),
            repos.join(", ")
        );
    }
    out
}

/// Session `i`, the same on every run.
fn session(i: usize) -> SeedSession {
    let mut rng = Rng(0x7472_6c6b_0000_0000 ^ i as u64);
    // Fewer sessions at weekends: a weekend day is drawn again once.
    let mut day = rng.below(365) as i64;
    let start_of_day = |d: i64| END_NS - (365 - d) * DAY_NS;
    // 2026-11-30 is a Monday; days since the epoch: Thursday = 0.
    let weekday = |d: i64| (start_of_day(d) / DAY_NS + 3).rem_euclid(7); // 0 = Monday
    if weekday(day) >= 5 {
        day = rng.below(365) as i64;
    }
    let started_ns = start_of_day(day) + rng.range(7 * 3600, 20 * 3600) * 1_000_000_000;
    let ended_ns = started_ns + rng.range(60, 3 * 3600) * 1_000_000_000;
    // Some people work with agents far more than others.
    let person = (rng.below(PEOPLE as u64).min(rng.below(PEOPLE as u64))) as usize;
    let per_team = REPOS / TEAMS;
    let repo = if rng.below(10) < 8 {
        team_of(person) * per_team + rng.below(per_team as u64) as usize
    } else {
        rng.below(REPOS as u64) as usize
    };
    let mut pick = rng.below(100);
    let (agent, _, models) = AGENTS
        .iter()
        .find(|(_, share, _)| {
            if pick < *share {
                true
            } else {
                pick -= share;
                false
            }
        })
        .copied()
        .unwrap_or(AGENTS[0]);
    let used = if models.len() > 1 && rng.below(4) == 0 {
        2
    } else {
        1
    };
    let first = rng.below(models.len() as u64) as usize;
    let mut tokens = Vec::with_capacity(used);
    for m in 0..used {
        let model = models[(first + m) % models.len()];
        let input = rng.range(2_000, 400_000);
        let output = rng.range(500, 40_000);
        let cache_read = input * rng.range(0, 8);
        let cache_creation = rng.range(0, 20_000);
        let reasoning = if model.starts_with("gpt-5") {
            output / 2
        } else {
            0
        };
        tokens.push((
            model.to_string(),
            [input, output, cache_read, cache_creation, reasoning],
        ));
    }
    let requests = rng.range(1, 200) as f64;
    let mut counters = vec![(Counter::ToolInvocations, rng.range(0, 300) as f64)];
    if agent != "droid" {
        counters.push((Counter::LlmRequests, requests));
        counters.push((Counter::LinesAdded, rng.range(0, 2_000) as f64));
    }
    // Claude Code reports its cost (most of the time); the others' is estimated.
    if agent == "claude-code" && rng.below(10) != 0 {
        counters.push((Counter::CostUsd, rng.range(1, 2_000_000) as f64 / 100_000.0));
    }
    // Six sessions in ten commit (one or two commits); of those commits, most reach
    // `main` within days, some weeks later (not in the 14-day window), some never.
    let commits = if rng.below(10) < 6 {
        (0..rng.range(1, 2))
            .map(|_| SeedCommit {
                sha: format!(
                    "{:016x}{:016x}{:08x}",
                    rng.next(),
                    rng.next(),
                    rng.next() as u32
                ),
                pushed_ns: match rng.below(10) {
                    0 => None,
                    1 => Some(started_ns + rng.range(15, 40) * DAY_NS),
                    _ => Some(started_ns + rng.range(3_600, 3 * 86_400) * 1_000_000_000),
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    SeedSession {
        commits,
        key: format!("bench-{i:08}"),
        agent: agent.to_string(),
        user_email: email(person),
        repository: repo_name(repo),
        started_ns,
        ended_ns,
        tokens,
        counters,
    }
}

/// One query's timings and what its answer held.
struct Timed {
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    total: f64,
    groups: usize,
    bytes: usize,
}

/// One engine's figures.
struct Timings {
    queries: Vec<Timed>,
    peak_rss_kib: Option<u64>,
}

fn measure(
    exe: &Path,
    location: &Location,
    identities: &Path,
    requests: usize,
) -> anyhow::Result<Timings> {
    let server = ServerChild::start_with(
        exe,
        location.clone(),
        None,
        &["--identities".to_string(), identities.display().to_string()],
    )?;
    let rt = current_thread()?;
    let queries = rt.block_on(async {
        let mut conn = HttpConn::connect(server.http).await?;
        let mut out = Vec::new();
        for query in QUERIES {
            let mut ms = Vec::with_capacity(requests);
            let mut answer = (0.0, 0, 0);
            for n in 0..WARM_UPS + requests {
                let t = Instant::now();
                let (status, body) = conn.request_with("GET", query, "", b"").await?;
                let elapsed = t.elapsed().as_secs_f64() * 1000.0;
                if status != 200 {
                    bail!(
                        "GET {query}: {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(500)])
                    );
                }
                if n == 0 && !query.starts_with("/api/") {
                    // A dashboard page: its size; its figures are the API's.
                    answer = (f64::NAN, 0, body.len());
                } else if n == 0 {
                    let v: serde_json::Value =
                        serde_json::from_slice(body).context("the answer is not JSON")?;
                    answer = (
                        v["total"].as_f64().unwrap_or(f64::NAN),
                        v["groups"].as_array().map_or(0, Vec::len),
                        body.len(),
                    );
                }
                if n >= WARM_UPS {
                    ms.push(elapsed);
                }
            }
            ms.sort_by(f64::total_cmp);
            let timed = Timed {
                p50_ms: percentile(&ms, 0.50),
                p95_ms: percentile(&ms, 0.95),
                max_ms: ms.last().copied().unwrap_or(f64::NAN),
                total: answer.0,
                groups: answer.1,
                bytes: answer.2,
            };
            println!(
                "GET {query}\n  p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({requests} requests after \
                 {WARM_UPS} warm-ups); total {}, {} groups, {} bytes",
                timed.p50_ms,
                timed.p95_ms,
                timed.max_ms,
                timed.total,
                timed.groups,
                timed.bytes
            );
            out.push(timed);
        }
        anyhow::Ok(out)
    })?;
    let peak_rss_kib = match server.stop() {
        Ok(peak) => peak,
        Err(e) => {
            eprintln!("warning: stopping the server: {e:#} (killed)");
            None
        }
    };
    if let Some(first) = queries.first() {
        println!(
            "90-day team view (cost by team by week): p95 {:.1} ms — the bar p95 <= {BAR_MS:.0} ms is {}",
            first.p95_ms,
            if first.p95_ms <= BAR_MS {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    Ok(Timings {
        queries,
        peak_rss_kib,
    })
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn print_side_by_side(args: &AnalyticsArgs, engines: &[Engine], figures: &[(Data, Timings)]) {
    let mut t = SideBySide::new(
        format!(
            "bench analytics, side by side ({} sessions over a year; 90 days queried; {} requests each after {WARM_UPS} warm-ups)",
            args.sessions, args.requests
        ),
        engines,
    );
    let each = |f: &dyn Fn(&(Data, Timings)) -> String| figures.iter().map(f).collect::<Vec<_>>();
    t.row(
        "generation s",
        each(&|(d, _)| d.generated_s.map_or("reused".into(), |s| format!("{s:.1}"))),
    );
    t.row(
        "database MiB",
        each(&|(d, _)| format!("{:.1}", d.bytes as f64 / 1_048_576.0)),
    );
    for (i, q) in QUERIES.iter().enumerate() {
        let name = q
            .trim_start_matches("/api/v1/analytics/")
            .split("&from")
            .next()
            .unwrap_or(q);
        let name = if q.starts_with("/api/") {
            name.to_string()
        } else {
            format!("page {}", name.split('?').next().unwrap_or(name))
        };
        t.row(
            format!("{name} p50/p95/max ms"),
            each(&|(_, tm)| {
                tm.queries.get(i).map_or("?".into(), |x| {
                    format!("{:.0}/{:.0}/{:.0}", x.p50_ms, x.p95_ms, x.max_ms)
                })
            }),
        );
    }
    t.row(
        format!("team view p95 <= {BAR_MS:.0} ms"),
        each(&|(_, tm)| {
            tm.queries.first().map_or("?".into(), |x| {
                if x.p95_ms <= BAR_MS { "met" } else { "NOT met" }.to_string()
            })
        }),
    );
    t.row(
        "server peak RSS MiB",
        each(&|(_, tm)| {
            tm.peak_rss_kib
                .map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0))
        }),
    );
    t.print();
}
