//! Storage: the only module with SQL. Callers see typed functions and row structs,
//! grouped by aggregate:
//!
//! - [`batch`], [`writer`], [`sessions`]: OTLP telemetry and the session facts kept from it;
//!   [`raw`]: the compressed record kept of each export request;
//!   [`models`]: the models stored sessions used; [`recent`]: the link counts
//!   `tracelink sessions` shows;
//! - [`github`], [`nodes`], [`graph`], [`dora`]: graph nodes from GitHub (written as
//!   typed ops, read back as records), the reads the link rules and petgraph make over
//!   nodes and links, and what the DORA keys read;
//! - [`links`]: stored session → commit links;
//! - [`uploads`]: CI uploads (coverage, tests);
//! - [`deliveries`]: webhook deliveries as received;
//! - [`backfill`]: backfills from the GitHub API (their cursors and the ETags kept);
//! - [`reports`]: the report queue, patch caches and published digests;
//! - [`retention`]: pruning raw data past `--retain-raw`, and table sizes;
//!   [`partitions`]: PostgreSQL's day partitions of raw records;
//! - [`copy`]: moving an installation to another engine (`tracelink migrate-data`).
//!
//! Two engines through sqlx's `Any` driver: SQLite (the default: one file, WAL, one
//! writer task and a pool of readers) and PostgreSQL (`--db postgres://…`). Both run
//! the same SQL text ([`numbered`] placeholders, `INSERT … ON CONFLICT`, times as
//! integer nanoseconds, keys as text or bytes, booleans as 0/1). SQLite's scalar
//! functions the queries use (two-argument `min`/`max`, `substr`, `instr`, `hex`) are
//! defined on PostgreSQL by its first migration; the few statements that must differ
//! pick their text by [`Engine`]. Migrations for each engine are applied at start-up.

pub mod alerts;
pub mod analytics;
pub mod app;
pub mod backfill;
pub mod backup;
pub mod batch;
pub mod copy;
pub mod deliveries;
pub mod dora;
pub mod github;
pub mod graph;
pub mod leases;
pub mod line_records;
pub mod links;
pub mod models;
pub mod nodes;
pub mod partitions;
pub mod raw;
pub mod recent;
pub mod reports;
pub mod retention;
pub mod sessions;
pub mod status;
pub mod testing;
pub mod uploads;
pub mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Any, AssertSqlSafe, ConnectOptions, Connection, Executor};
use sqlx::{AnyConnection, AnyPool};

/// A storage error: the query failed or the database could not be reached.
pub type Error = sqlx::Error;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SQLite's migrations (the default engine; the first 19 lived in `migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// PostgreSQL's migrations: the same schema, in PostgreSQL's types, from its first
/// version on (PostgreSQL installations have no history to carry).
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The two engines. The SQL in this module is the same text for both (`$n`
/// placeholders, `ON CONFLICT`, `RETURNING`, times as integer nanoseconds, booleans as
/// 0/1 integers); PostgreSQL's schema defines SQLite's scalar functions the queries
/// use (two-argument `min`/`max`, `instr`, `hex`, `substr` on bigints). What differs
/// beyond that is chosen here by [`Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// An aggregate joining a group's values of `expr` as text, comma-separated (NULLs
    /// left out; no row: NULL).
    pub(crate) fn joined(self, expr: &str) -> String {
        match self {
            Engine::Sqlite => format!("group_concat({expr}, ',')"),
            Engine::Postgres => format!("string_agg(CAST({expr} AS TEXT), ',')"),
        }
    }

    /// The clause that makes a claiming subquery skip rows another replica is claiming
    /// (PostgreSQL). SQLite has one writer at a time and no row locks: nothing.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Whether a failed statement is worth running again as it was: PostgreSQL chose it as
/// a deadlock's victim (`40P01`) or could not serialise it (`40001`), which happens when
/// replicas write the same rows at once.
pub fn is_transient(e: &Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

/// Where the database lives, as `--db` gives it: a file path (SQLite) or a
/// `postgres://` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn engine(&self) -> Engine {
        match self {
            Location::File(_) => Engine::Sqlite,
            Location::Postgres(_) => Engine::Postgres,
        }
    }

    /// The file, for what only a SQLite file has (checkpoints, `VACUUM INTO`).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// The URL sqlx's `Any` driver connects to.
    fn url(&self, read_only: bool) -> String {
        match self {
            Location::Postgres(url) => url.clone(),
            Location::File(path) => {
                let mut s = String::from("sqlite://");
                for c in path.to_string_lossy().chars() {
                    match c {
                        '%' => s.push_str("%25"),
                        '?' => s.push_str("%3F"),
                        '#' => s.push_str("%23"),
                        ' ' => s.push_str("%20"),
                        c => s.push(c),
                    }
                }
                s.push_str(if read_only { "?mode=ro" } else { "?mode=rwc" });
                s
            }
        }
    }
}

impl FromStr for Location {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(
            if s.starts_with("postgres://") || s.starts_with("postgresql://") {
                Location::Postgres(s.to_string())
            } else {
                Location::File(PathBuf::from(s))
            },
        )
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::File(p)
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::File(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::File(p.to_path_buf())
    }
}

/// Shown in logs and errors: a URL's password is masked.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&mask_password(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// SQLite's per-connection settings, run on every connection the `Any` driver opens:
///
/// - `journal_mode=WAL`: readers never block the writer, and a commit appends to the log.
/// - `synchronous=FULL`: the WAL is fsynced at every commit, so a request acknowledged
///   after its commit survives `kill -9` and power loss alike. Group commit
///   ([`writer`]) spreads that fsync over every request in the group.
/// - `busy_timeout=5s`: a reader that meets a checkpoint waits instead of failing.
/// - `foreign_keys=ON`: session references are checked.
const SQLITE_SETTINGS: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
     PRAGMA synchronous = FULL; PRAGMA cache_size = -65536; PRAGMA temp_store = memory";

/// How long a PostgreSQL connection may take to open before start-up fails with a
/// clear error instead of hanging.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(location: &Location, read_only: bool) -> anyhow::Result<AnyConnection> {
    sqlx::any::install_default_drivers();
    let url = location.url(read_only);
    let mut conn = tokio::time::timeout(PG_CONNECT_TIMEOUT, AnyConnection::connect(&url))
        .await
        .map_err(|_| anyhow::anyhow!("opening database {location}: no answer in 10 s"))?
        .with_context(|| format!("opening database {location}"))?;
    if location.engine() == Engine::Sqlite {
        if !read_only {
            conn.execute("PRAGMA journal_mode = WAL")
                .await
                .with_context(|| format!("setting up {location}"))?;
        }
        conn.execute(SQLITE_SETTINGS)
            .await
            .with_context(|| format!("setting up {location}"))?;
    }
    Ok(conn)
}

async fn pool(location: &Location, max: u32) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let sqlite = location.engine() == Engine::Sqlite;
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    conn.execute(SQLITE_SETTINGS).await?;
                }
                Ok(())
            })
        })
        .connect(&location.url(true))
        .await
        .with_context(|| format!("opening readers on {location}"))
}

/// SQLite connection settings for what only SQLite does (checkpoints, tests that
/// build old schemas): the same as [`SQLITE_SETTINGS`].
fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
        .disable_statement_logging()
}

/// The migrations of an engine.
fn migrations(engine: Engine) -> &'static sqlx::migrate::Migrator {
    match engine {
        Engine::Sqlite => &MIGRATOR,
        Engine::Postgres => &PG_MIGRATOR,
    }
}

async fn run_migrations(location: &Location, conn: &mut AnyConnection) -> anyhow::Result<()> {
    // On PostgreSQL the migrator holds an advisory lock while it runs, so replicas
    // starting at once apply each migration once. A database a newer release has
    // migrated (an upgrade rolling through the replicas) holds migrations this release
    // does not know: it runs on it, since a release's schema stays compatible with the
    // previous release's code.
    let mut migrator = sqlx::migrate::Migrator::with_migrations(
        migrations(location.engine()).iter().cloned().collect(),
    );
    migrator.set_ignore_missing(true);
    migrator
        .run(conn)
        .await
        .with_context(|| format!("applying migrations to {location}"))?;
    Ok(())
}

/// Opens (creating if needed) the database and applies pending migrations.
pub async fn open(location: impl Into<Location>) -> anyhow::Result<Store> {
    let location = &location.into();
    let mut writer = connect(location, false).await?;
    run_migrations(location, &mut writer).await?;
    let engine = location.engine();
    let readers = pool(
        location,
        match engine {
            Engine::Sqlite => 4,
            Engine::Postgres => 8,
        },
    )
    .await?;
    Ok(Store {
        writer: Conn {
            conn: writer,
            engine,
            location: location.clone(),
        },
        db: Db {
            pool: readers,
            engine,
        },
        location: location.clone(),
    })
}

/// Applies migrations and returns, for `tracelink migrate`.
pub async fn migrate(location: impl Into<Location>) -> anyhow::Result<()> {
    let location = &location.into();
    let mut conn = connect(location, false).await?;
    run_migrations(location, &mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// An open database: the writer's connection, the readers, and where it lives.
pub struct Store {
    /// The connection the single writer ([`writer`]) owns.
    pub writer: Conn,
    pub db: Db,
    location: Location,
}

impl Store {
    /// A further write connection (the webhook processor's, the publisher's). On
    /// SQLite the file serialises it with the writer's, each waiting up to the busy
    /// timeout; on PostgreSQL rows are locked, not the database.
    pub async fn connect(&self) -> anyhow::Result<Conn> {
        Ok(Conn {
            conn: connect(&self.location, false).await?,
            engine: self.location.engine(),
            location: self.location.clone(),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }
}

/// The read side: a pool of connections (read-only on SQLite). Cheap to clone. Reads of
/// each aggregate are methods in that aggregate's file.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
}

impl Db {
    /// Whether this process can take traffic: the database answers, and holds every
    /// migration this release knows. `Err` says why not.
    pub async fn readiness(&self) -> std::result::Result<(), String> {
        let applied: Vec<i64> =
            query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| format!("the database cannot be reached: {e}"))?;
        let missing: Vec<String> = migrations(self.engine)
            .iter()
            .filter(|m| applied.binary_search(&m.version).is_err())
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("migrations not applied: {}", missing.join(", ")))
        }
    }

    /// Opens an existing database for reading only (`tracelink report`, tests).
    pub async fn open_read_only(location: impl Into<Location>) -> anyhow::Result<Db> {
        let location = &location.into();
        if let Location::File(path) = location
            && !path.exists()
        {
            anyhow::bail!("no database at {}", path.display());
        }
        Ok(Db {
            pool: pool(location, 2).await?,
            engine: location.engine(),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One write connection. Its writes go through [`Tx`].
pub struct Conn {
    conn: AnyConnection,
    engine: Engine,
    location: Location,
}

/// The advisory lock key [`Conn::begin_exclusive`] takes on PostgreSQL.
const EXCLUSIVE_LOCK: i64 = 0x7472_6c6b; // "trlk"

impl Conn {
    /// A write connection of its own (a rare write outside the writer: storing the App
    /// created on `/setup`).
    pub async fn open(location: &Location) -> anyhow::Result<Conn> {
        Ok(Conn {
            conn: connect(location, false).await?,
            engine: location.engine(),
            location: location.clone(),
        })
    }

    pub async fn begin(&mut self) -> Result<Tx<'_>> {
        Ok(Tx {
            tx: self.conn.begin().await?,
            engine: self.engine,
        })
    }

    /// A transaction that reads and then writes: on SQLite it takes the write lock at
    /// its start (`BEGIN IMMEDIATE`, waiting up to the busy timeout), since a deferred
    /// transaction that read before another connection committed cannot write at all
    /// (`SQLITE_BUSY` at once, which no timeout waits out); on PostgreSQL rows lock as
    /// they are written, so it is a plain `BEGIN`.
    pub async fn begin_write(&mut self) -> Result<Tx<'_>> {
        Ok(Tx {
            tx: match self.engine {
                Engine::Sqlite => self.conn.begin_with("BEGIN IMMEDIATE").await?,
                Engine::Postgres => self.conn.begin().await?,
            },
            engine: self.engine,
        })
    }

    /// A transaction that no other exclusive transaction runs beside: what is read
    /// (through [`Db`]) after it began is the state no other such step changes before
    /// it commits. For read-compute-write steps two tasks may run at once (linking).
    /// SQLite: the write lock from the start (`BEGIN IMMEDIATE`); PostgreSQL: a
    /// transaction-scoped advisory lock.
    pub async fn begin_exclusive(&mut self) -> Result<Tx<'_>> {
        self.begin_under(EXCLUSIVE_LOCK).await
    }

    /// Like [`Conn::begin_exclusive`], serialised with others taking the same `key`
    /// only (PostgreSQL; on SQLite every writer is serialised).
    pub(crate) async fn begin_under(&mut self, key: i64) -> Result<Tx<'_>> {
        match self.engine {
            Engine::Sqlite => Ok(Tx {
                tx: self.conn.begin_with("BEGIN IMMEDIATE").await?,
                engine: self.engine,
            }),
            Engine::Postgres => {
                let mut tx = self.conn.begin().await?;
                query("SELECT pg_advisory_xact_lock($1)")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx {
                    tx,
                    engine: self.engine,
                })
            }
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// After a failed statement: whether the connection still answers, and if it does
    /// not (PostgreSQL restarted, a failover, the network), a new one in its place
    /// (`Ok(true)`). `Err` when none can be opened now; the caller tries again later.
    pub async fn recover(&mut self) -> anyhow::Result<bool> {
        if self.conn.ping().await.is_ok() {
            return Ok(false);
        }
        self.conn = connect(&self.location, false).await?;
        tracing::warn!(database = %self.location, "the database connection was lost; reconnected");
        Ok(true)
    }

    pub async fn close(self) -> Result<()> {
        self.conn.close().await
    }
}

/// A write transaction: nothing is visible to readers until [`Tx::commit`]; dropped
/// without it, nothing was written.
pub struct Tx<'c> {
    tx: sqlx::Transaction<'c, Any>,
    engine: Engine,
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }

    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }
}

/// The SQL as both engines take it: every `?` and `?NNN` placeholder written as `$n`
/// (SQLite reads `$n` as the n-th argument too). Quoted text and identifiers are left
/// alone. Queries here keep SQLite's `?` where lists are built at run time
/// ([`placeholders`]); this numbers them.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 1usize;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' => {
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        digits.push(d);
                        chars.next();
                    }
                    out.push('$');
                    if digits.is_empty() {
                        out.push_str(&next.to_string());
                        next += 1;
                    } else {
                        // SQLite's rule: a bare `?` after `?N` is number N + 1.
                        if let Ok(n) = digits.parse::<usize>() {
                            next = next.max(n + 1);
                        }
                        out.push_str(&digits);
                    }
                }
                c => out.push(c),
            },
        }
    }
    out
}

/// `sqlx::query` over [`numbered`] SQL.
pub(crate) fn query<'q>(sql: impl AsRef<str>) -> sqlx::query::Query<'q, Any, AnyArguments> {
    sqlx::query(AssertSqlSafe(numbered(sql.as_ref())))
}

/// Binds an optional float so that PostgreSQL takes it whichever comes first. sqlx 0.9's
/// Any driver sends a NULL `f64` as `float4` (its `Null(Double)` arm adds an
/// `Option<f32>`), and a cached statement first prepared with that NULL then refuses a
/// non-null `float8` in the same place ("incorrect binary data format in bind
/// parameter"); a NULL `f32` is sent as `float8`. SQLite takes either as NULL.
pub(crate) fn bind_f64<'q>(
    q: sqlx::query::Query<'q, Any, AnyArguments>,
    v: Option<f64>,
) -> sqlx::query::Query<'q, Any, AnyArguments> {
    match v {
        Some(x) => q.bind(x),
        None => q.bind(None::<f32>),
    }
}

/// `sqlx::query_as` over [`numbered`] SQL.
pub(crate) fn query_as<'q, O>(
    sql: impl AsRef<str>,
) -> sqlx::query::QueryAs<'q, Any, O, AnyArguments>
where
    O: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    sqlx::query_as(AssertSqlSafe(numbered(sql.as_ref())))
}

/// `sqlx::query_scalar` over [`numbered`] SQL.
pub(crate) fn query_scalar<'q, O>(
    sql: impl AsRef<str>,
) -> sqlx::query::QueryScalar<'q, Any, O, AnyArguments>
where
    (O,): for<'r> sqlx::FromRow<'r, AnyRow>,
{
    sqlx::query_scalar(AssertSqlSafe(numbered(sql.as_ref())))
}

/// Text as both engines can store it: PostgreSQL's text cannot hold U+0000, which an
/// agent's attribute may (OTLP strings are any UTF-8), so it is stored as U+FFFD on
/// both engines alike. Borrowed unless there is one to replace.
pub(crate) fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// `?, ?, …` for an `IN (…)` list of `n` values (one `?` for an empty list, which then
/// matches nothing as long as the caller binds a value no row has).
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// A boolean column as both engines store it (0/1 integers), read into a `bool`
/// field with `#[sqlx(try_from = "Flag")]`.
pub(crate) struct Flag(bool);

impl sqlx::Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(<i64 as sqlx::Decode<'r, Any>>::decode(value)? != 0))
    }
}

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

/// A nullable boolean column (0/1 or NULL), read with `#[sqlx(try_from = "MaybeFlag")]`.
pub(crate) struct MaybeFlag(Option<bool>);

impl sqlx::Type<Any> for MaybeFlag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for MaybeFlag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(MaybeFlag(
            <Option<i64> as sqlx::Decode<'r, Any>>::decode(value)?.map(|v| v != 0),
        ))
    }
}

impl From<MaybeFlag> for Option<bool> {
    fn from(f: MaybeFlag) -> Option<bool> {
        f.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both engines read `$n` as the n-th argument; SQLite's `?`, `?N` and a bare `?`
    /// after `?N` (number N + 1) are numbered as SQLite numbers them, and quoted text is
    /// left alone.
    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(
            numbered("a = ?1 OR b = ?1 AND c = ?2"),
            "a = $1 OR b = $1 AND c = $2"
        );
        assert_eq!(
            numbered("a = ?2 AND b IN (?, ?)"),
            "a = $2 AND b IN ($3, $4)"
        );
        assert_eq!(
            numbered("x = '?' AND \"y?\" = ?"),
            "x = '?' AND \"y?\" = $1"
        );
        assert_eq!(
            numbered("s = 'it''s ?' AND t = ?"),
            "s = 'it''s ?' AND t = $1"
        );
    }

    #[test]
    fn a_url_is_postgres_and_anything_else_a_file() {
        let pg: Location = "postgres://u:secret@db:5432/tracelink".parse().unwrap();
        assert_eq!(pg.engine(), Engine::Postgres);
        assert_eq!(pg.to_string(), "postgres://u:***@db:5432/tracelink");
        let pg2: Location = "postgresql://db/tracelink".parse().unwrap();
        assert_eq!(pg2.to_string(), "postgresql://db/tracelink");
        let file: Location = "./data/tracelink.db".parse().unwrap();
        assert_eq!(file.engine(), Engine::Sqlite);
        assert_eq!(file.file(), Some(Path::new("./data/tracelink.db")));
        assert_eq!(
            Location::File(PathBuf::from("/tmp/a b/x?.db")).url(false),
            "sqlite:///tmp/a%20b/x%3F.db?mode=rwc"
        );
    }

    /// A SQLite file whose path needs escaping in a URL opens, and a read-only reader
    /// cannot write.
    #[tokio::test]
    async fn a_file_with_an_awkward_name_opens_and_readers_only_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a b#1?.db");
        let store = open(&path).await.unwrap();
        assert!(path.exists());
        let written = query("CREATE TABLE t (x INTEGER)")
            .execute(&store.db.pool)
            .await;
        assert!(written.is_err(), "readers are read-only");
        store.db.close().await;
    }

    /// Every migration applies over a database holding data of the schema before it.
    #[tokio::test]
    async fn migrations_apply_in_order_over_existing_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = options(&path).connect().await.unwrap();
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert!(versions.len() >= 4, "{versions:?}");
        MIGRATOR.run_to(versions[0], &mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions (session_key, agent, created_ns) VALUES ('s-1', 'codex', 1)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        MIGRATOR.run_to(versions[1], &mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO commits (repo, sha, message) VALUES ('acme/widgets', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'm')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for v in &versions[2..] {
            MIGRATOR.run_to(*v, &mut conn).await.unwrap();
        }
        // Running again is a no-op, and the earlier data is intact.
        MIGRATOR.run(&mut conn).await.unwrap();
        let agent: String =
            sqlx::query_scalar("SELECT agent FROM sessions WHERE session_key = 's-1'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(agent, "codex");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM commits")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(applied as usize, versions.len());
    }
}
