//! What `bench ingest`, `bench webhooks` and `bench report` share to run on both storage
//! engines: `--engines` / `--pg-url` ([`EngineArgs`]), a fresh database per phase
//! ([`BenchDb`]: a file in a [`BenchDirs`] directory, or a PostgreSQL database from
//! [`tracelink_dev::pgtest`], dropped afterwards), what PostgreSQL's statistics say
//! about a database ([`PgWatch`], [`ActivitySampler`]), the rows a database holds
//! ([`table_rows`]), and the side-by-side table the benchmarks end with ([`SideBySide`]).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};
use tracelink::store::{Engine, Location};
use tracelink_dev::pgtest;

use super::ingest::cpu_ticks;

/// The engines on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Storage engines to run on, comma-separated, in this order. With PostgreSQL each
    /// phase runs on a fresh database (created from the migrated template, dropped
    /// afterwards).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqlite,postgres"
    )]
    pub engines: Vec<EngineChoice>,
    /// PostgreSQL server the bench databases are created on (its own database is only
    /// used to create, watch and drop them). `skip` leaves PostgreSQL out.
    #[arg(long, env = "TRACELINK_TEST_POSTGRES", default_value = pgtest::DEFAULT_SERVER)]
    pub pg_url: String,
}

impl EngineArgs {
    /// The engines to run on. Call it before any thread starts: the PostgreSQL URL is
    /// handed to [`pgtest`] through `TRACELINK_TEST_POSTGRES`.
    pub fn resolve(&self) -> anyhow::Result<Vec<Engine>> {
        let mut out = Vec::new();
        for choice in &self.engines {
            let engine = match choice {
                EngineChoice::Sqlite => Engine::Sqlite,
                EngineChoice::Postgres => Engine::Postgres,
            };
            if !out.contains(&engine) {
                out.push(engine);
            }
        }
        if out.contains(&Engine::Postgres) {
            if self.pg_url == "skip" {
                eprintln!("warning: TRACELINK_TEST_POSTGRES=skip: PostgreSQL is left out");
                out.retain(|e| *e != Engine::Postgres);
            } else {
                use_pg_server(&self.pg_url)?;
            }
        }
        if out.is_empty() {
            bail!("no engine to run on");
        }
        Ok(out)
    }
}

/// Makes `url` the PostgreSQL server the bench databases are created on (handed to
/// [`pgtest`] through `TRACELINK_TEST_POSTGRES`). Call it before any thread starts.
pub(super) fn use_pg_server(url: &str) -> anyhow::Result<()> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("--pg-url must be a postgres:// URL");
    }
    // SAFETY: called from `bench::run` on the main thread before any other thread or
    // runtime exists, so nothing reads the environment meanwhile.
    unsafe { std::env::set_var("TRACELINK_TEST_POSTGRES", url) };
    Ok(())
}

pub(super) fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    }
}

pub(super) fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a tokio runtime")
}

/// The benchmark's SQLite files: one fresh subdirectory per phase.
pub(super) struct BenchDirs {
    pub(super) root: PathBuf,
    /// Removed on drop when the benchmark created it.
    owned: bool,
}

impl BenchDirs {
    pub(super) fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
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
    pub(super) fn fresh(&self, phase: &str) -> anyhow::Result<PathBuf> {
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

/// One phase's fresh database. A PostgreSQL one is dropped with this value.
pub(super) enum BenchDb {
    Sqlite(PathBuf),
    Postgres(pgtest::Database),
}

impl BenchDb {
    /// A fresh database: `<root>/<phase>/bench.db`, or a new PostgreSQL database holding
    /// the migrated schema.
    pub(super) fn fresh(engine: Engine, dirs: &BenchDirs, phase: &str) -> anyhow::Result<Self> {
        match engine {
            Engine::Sqlite => Ok(BenchDb::Sqlite(
                dirs.fresh(&format!("{}-{phase}", engine_name(engine)))?,
            )),
            Engine::Postgres => current_thread()?
                .block_on(pgtest::Database::create())
                .map(BenchDb::Postgres)
                .with_context(|| format!("creating a PostgreSQL database for {phase}")),
        }
    }

    pub(super) fn location(&self) -> Location {
        match self {
            BenchDb::Sqlite(path) => Location::File(path.clone()),
            BenchDb::Postgres(db) => Location::Postgres(db.url().to_string()),
        }
    }

    pub(super) fn postgres(&self) -> Option<&pgtest::Database> {
        match self {
            BenchDb::Sqlite(_) => None,
            BenchDb::Postgres(db) => Some(db),
        }
    }
}

/// The machine line every side-by-side table ends with.
pub(super) fn machine_line() -> String {
    let cores = std::process::Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map_or("?".to_string(), |n| n.to_string());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!(
        "machine: {cores} cores ({model}); figures are for this machine, per core where they say so, \
         and say nothing about scaling to more cores"
    )
}

/// A table with one row per figure and one column per engine (or per whatever the
/// columns name).
pub(super) struct SideBySide {
    title: String,
    columns: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

impl SideBySide {
    pub(super) fn new(title: impl Into<String>, engines: &[Engine]) -> Self {
        Self::with_columns(
            title,
            engines
                .iter()
                .map(|e| engine_name(*e).to_string())
                .collect(),
        )
    }

    /// A table whose columns are named `columns`.
    pub(super) fn with_columns(title: impl Into<String>, columns: Vec<String>) -> Self {
        Self {
            title: title.into(),
            columns,
            rows: Vec::new(),
        }
    }

    /// A figure: one value per column, in the table's column order.
    pub(super) fn row(&mut self, figure: impl Into<String>, values: Vec<String>) {
        self.rows.push((figure.into(), values));
    }

    pub(super) fn print(&self) {
        let width = self
            .rows
            .iter()
            .map(|(f, _)| f.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let col = |i: usize| {
            self.rows
                .iter()
                .filter_map(|(_, v)| v.get(i))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
                .max(self.columns[i].chars().count())
                .max(10)
        };
        let cols: Vec<usize> = (0..self.columns.len()).map(col).collect();
        println!();
        println!("{}", self.title);
        let mut head = format!("{:<width$}", "figure");
        for (c, w) in self.columns.iter().zip(&cols) {
            head.push_str(&format!("  {c:>w$}"));
        }
        println!("{head}");
        println!("{}", "-".repeat(head.chars().count()));
        for (figure, values) in &self.rows {
            let mut line = format!("{figure:<width$}");
            for (i, w) in cols.iter().enumerate() {
                let v = values.get(i).map_or("?", String::as_str);
                line.push_str(&format!("  {v:>w$}"));
            }
            println!("{line}");
        }
        println!("{}", machine_line());
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL's own figures about a bench database
// ---------------------------------------------------------------------------------------

/// Counters PostgreSQL keeps for one database.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PgCounters {
    /// `xact_commit + xact_rollback` from `pg_stat_database`.
    pub(super) transactions: i64,
    /// `tup_inserted` from `pg_stat_database` (TOAST chunks included).
    pub(super) tup_inserted: i64,
    /// Calls recorded by `pg_stat_statements` for the database (BEGIN and COMMIT
    /// included), when it is loaded; the bench's own reads of it are left out.
    pub(super) statements: Option<i64>,
}

impl std::ops::Sub for PgCounters {
    type Output = PgCounters;

    fn sub(self, o: PgCounters) -> PgCounters {
        PgCounters {
            transactions: self.transactions - o.transactions,
            tup_inserted: self.tup_inserted - o.tup_inserted,
            statements: self.statements.zip(o.statements).map(|(a, b)| a - b),
        }
    }
}

/// The PostgreSQL server in one line (version, durability settings, whether
/// `pg_stat_statements` is loaded), and whether it is.
async fn describe_server(admin: &mut PgConnection) -> anyhow::Result<(String, bool)> {
    let (version, fsync, sync_commit, buffers, preload): (String, String, String, String, String) =
        sqlx::query_as(
            "SELECT current_setting('server_version'), current_setting('fsync'), \
             current_setting('synchronous_commit'), current_setting('shared_buffers'), \
             current_setting('shared_preload_libraries')",
        )
        .fetch_one(&mut *admin)
        .await?;
    let statements = preload.split(',').any(|l| l.trim() == "pg_stat_statements");
    Ok((
        format!(
            "PostgreSQL {version} on {} (fsync={fsync}, synchronous_commit={sync_commit}, \
             shared_buffers={buffers}, pg_stat_statements {})",
            Location::Postgres(pgtest::server_url()),
            if statements { "loaded" } else { "not loaded" }
        ),
        statements,
    ))
}

/// What an engine section starts with: where the database is and how it is set up.
pub(super) fn engine_line(engine: Engine) -> String {
    match engine {
        Engine::Sqlite => "SQLite in the server's process (WAL, synchronous=FULL)".to_string(),
        Engine::Postgres => current_thread()
            .and_then(|rt| {
                rt.block_on(async {
                    let mut admin = PgConnection::connect(&pgtest::server_url()).await?;
                    let (line, _) = describe_server(&mut admin).await?;
                    admin.close().await?;
                    anyhow::Ok(line)
                })
            })
            .unwrap_or_else(|e| format!("PostgreSQL (not described: {e:#})")),
    }
}

/// Watches one bench database from the server's own database, so that its reads are
/// not counted in the bench database's statistics.
pub(super) struct PgWatch {
    admin: PgConnection,
    name: String,
    url: String,
    /// `pg_stat_statements` is in `shared_preload_libraries`.
    statements: bool,
}

impl PgWatch {
    pub(super) async fn connect(db: &pgtest::Database) -> anyhow::Result<Self> {
        let server = pgtest::server_url();
        let mut admin = PgConnection::connect(&server)
            .await
            .with_context(|| format!("connecting to {}", Location::Postgres(server.clone())))?;
        let (_, statements) = describe_server(&mut admin).await?;
        let mut watch = PgWatch {
            admin,
            name: db.name().to_string(),
            url: db.url().to_string(),
            statements,
        };
        if watch.statements {
            // On the bench's own database only; without it the view does not exist there.
            let mut conn = PgConnection::connect(&watch.url).await?;
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&mut conn)
                .await
                .context("creating pg_stat_statements in the bench database")?;
            conn.close().await?;
            watch.wait_idle().await?;
        }
        Ok(watch)
    }

    /// Waits until no backend is connected to the database: a backend sends its
    /// statistics when it exits, so counters read afterwards are complete.
    pub(super) async fn wait_idle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                    .bind(&self.name)
                    .fetch_one(&mut self.admin)
                    .await?;
            if n == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{n} backends still connected to {} after 10 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The database's counters before a phase; call it with no backend connected
    /// ([`Self::wait_idle`]). `pg_stat_statements` is read first, on the bench
    /// database, so that reading's own transaction is in both readings.
    pub(super) async fn counters_before(&mut self) -> anyhow::Result<PgCounters> {
        let statements = self.statements().await?;
        self.wait_idle().await?;
        let (transactions, tup_inserted) = self.database_counters().await?;
        Ok(PgCounters {
            transactions,
            tup_inserted,
            statements,
        })
    }

    /// The database's counters after a phase, read in the opposite order.
    pub(super) async fn counters_after(&mut self) -> anyhow::Result<PgCounters> {
        self.wait_idle().await?;
        let (transactions, tup_inserted) = self.database_counters().await?;
        let statements = self.statements().await?;
        Ok(PgCounters {
            transactions,
            tup_inserted,
            statements,
        })
    }

    async fn database_counters(&mut self) -> anyhow::Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT coalesce(xact_commit + xact_rollback, 0), coalesce(tup_inserted, 0) \
             FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&self.name)
        .fetch_optional(&mut self.admin)
        .await?
        .unwrap_or((0, 0)))
    }

    /// Statement calls `pg_stat_statements` recorded for the database (the bench's own
    /// reads of the view left out), when it is loaded.
    async fn statements(&mut self) -> anyhow::Result<Option<i64>> {
        if !self.statements {
            return Ok(None);
        }
        let mut conn = PgConnection::connect(&self.url).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND query NOT LIKE '%pg_stat_statements%'",
        )
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(Some(n))
    }

    /// The process ids of the backends connected to the database.
    pub(super) async fn backends(&mut self) -> anyhow::Result<Vec<i32>> {
        Ok(
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind(&self.name)
                .fetch_all(&mut self.admin)
                .await?,
        )
    }

    /// Rows inserted, updated and deleted per table of the schema as `pg_stat_all_tables`
    /// counts them (a TOAST table named after its owner; the shared catalogs, whose
    /// figures every database shows, left out), most inserted first. Read on the bench
    /// database: call it after the counters.
    pub(super) async fn table_writes(&self) -> anyhow::Result<Vec<(String, i64, i64, i64)>> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let rows = sqlx::query_as(
            "SELECT coalesce(owner.relname || ' (TOAST)', s.relname), s.n_tup_ins, s.n_tup_upd, s.n_tup_del \
             FROM pg_stat_all_tables s LEFT JOIN pg_class owner ON owner.reltoastrelid = s.relid \
             WHERE s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0 \
             AND (s.schemaname = 'public' OR owner.relnamespace = 'public'::regnamespace) \
             ORDER BY s.n_tup_ins DESC, 1",
        )
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok(rows)
    }
}

/// CPU time of a set of backends between two readings.
pub(super) struct BackendCpu {
    start: HashMap<i32, u64>,
}

impl BackendCpu {
    pub(super) fn start(pids: &[i32]) -> Self {
        Self {
            start: pids
                .iter()
                .filter_map(|p| Some((*p, cpu_ticks(&p.to_string())?)))
                .collect(),
        }
    }

    /// Clock ticks the backends alive now used since [`Self::start`] (all of theirs
    /// for a backend that connected since).
    pub(super) fn ticks_since(&self, pids: &[i32]) -> u64 {
        pids.iter()
            .filter_map(|p| {
                let now = cpu_ticks(&p.to_string())?;
                Some(now.saturating_sub(self.start.get(p).copied().unwrap_or(0)))
            })
            .sum()
    }
}

/// Samples `pg_stat_activity` for one database every few milliseconds, from a thread
/// of its own with a connection to the server's own database: where its backends'
/// time goes.
pub(super) struct ActivitySampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Activity>>,
}

/// Per backend, how many samples found it in each state.
#[derive(Default)]
pub(super) struct Activity {
    per_backend: HashMap<i32, BTreeMap<String, u64>>,
    samples: u64,
    every: Duration,
}

impl ActivitySampler {
    pub(super) fn start(db: &pgtest::Database, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let name = db.name().to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            current_thread()?.block_on(async move {
                let mut admin = PgConnection::connect(&pgtest::server_url()).await?;
                let mut activity = Activity {
                    every,
                    ..Activity::default()
                };
                while !flag.load(Ordering::Relaxed) {
                    let rows: Vec<(i32, String, Option<String>, Option<String>)> = sqlx::query_as(
                        "SELECT pid, coalesce(state, ''), wait_event_type, wait_event \
                         FROM pg_stat_activity WHERE datname = $1",
                    )
                    .bind(&name)
                    .fetch_all(&mut admin)
                    .await?;
                    activity.samples += 1;
                    for (pid, state, wait_type, wait) in rows {
                        let what = match (state.as_str(), wait_type, wait) {
                            ("active", Some(t), Some(w)) => format!("active, waiting on {t}:{w}"),
                            ("active", _, _) => "active, on CPU".to_string(),
                            ("idle in transaction", _, _) => {
                                "idle in transaction (waiting for tracelink)".to_string()
                            }
                            ("idle", _, _) => "idle".to_string(),
                            (other, _, _) => other.to_string(),
                        };
                        *activity
                            .per_backend
                            .entry(pid)
                            .or_default()
                            .entry(what)
                            .or_default() += 1;
                    }
                    tokio::time::sleep(every).await;
                }
                admin.close().await.ok();
                Ok(activity)
            })
        });
        Self { stop, thread }
    }

    pub(super) fn finish(self) -> anyhow::Result<Activity> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the pg_stat_activity sampler panicked"))?
    }
}

impl Activity {
    /// The busiest backend's states (most likely the writer's), then the others'.
    pub(super) fn describe(&self) -> Vec<String> {
        let busy = |states: &BTreeMap<String, u64>| -> u64 {
            states
                .iter()
                .filter(|(s, _)| s.as_str() != "idle")
                .map(|(_, n)| n)
                .sum()
        };
        let mut backends: Vec<(&i32, &BTreeMap<String, u64>)> = self.per_backend.iter().collect();
        backends.sort_by_key(|(pid, states)| (std::cmp::Reverse(busy(states)), **pid));
        let mut out = vec![format!(
            "pg_stat_activity sampled {} times (every {} ms), {} backends seen",
            self.samples,
            self.every.as_millis(),
            backends.len()
        )];
        let shares = |states: &BTreeMap<String, u64>| {
            let total: u64 = states.values().sum();
            let mut v: Vec<(&String, &u64)> = states.iter().collect();
            v.sort_by_key(|(s, n)| (std::cmp::Reverse(**n), (*s).clone()));
            v.iter()
                .map(|(s, n)| format!("{s} {:.0}%", 100.0 * **n as f64 / total.max(1) as f64))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some((pid, states)) = backends.first() {
            out.push(format!("  busiest backend (pid {pid}): {}", shares(states)));
        }
        let mut others: BTreeMap<String, u64> = BTreeMap::new();
        for (_, states) in backends.iter().skip(1) {
            for (s, n) in *states {
                *others.entry(s.clone()).or_default() += n;
            }
        }
        if !others.is_empty() {
            out.push(format!(
                "  the other {} backends together: {}",
                backends.len() - 1,
                shares(&others)
            ));
        }
        out
    }
}

/// Rows per table (the migrations' bookkeeping left out; a partitioned table's rows
/// under its own name), read after the server stopped.
pub(super) async fn table_rows(location: &Location) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    // A database file not created yet holds nothing.
    if let Location::File(path) = location
        && !path.exists()
    {
        return Ok(out);
    }
    let db = tracelink::store::Db::open_read_only(location).await?;
    for t in db.table_names().await? {
        let n = db.table_rows(&t).await?;
        out.insert(t, n);
    }
    db.close().await;
    Ok(out)
}

/// `after - before` per table, tables that changed only, most rows first.
pub(super) fn rows_added(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = after
        .iter()
        .map(|(t, n)| (t.clone(), n - before.get(t).copied().unwrap_or(0)))
        .filter(|(_, d)| *d != 0)
        .collect();
    out.sort_by_key(|(t, d)| (std::cmp::Reverse(*d), t.clone()));
    out
}

/// A figure per 1,000 units (`per` spans or deliveries), one decimal.
pub(super) fn per_thousand(n: f64, per: usize) -> String {
    if per == 0 {
        return "n/a".to_string();
    }
    format!("{:.1}", n * 1000.0 / per as f64)
}
