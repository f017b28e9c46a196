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
//! - [`retention`]: pruning raw data past `--retain-raw`, and table sizes.
//!
//! One engine today, SQLite (one file, WAL, migrations applied at start-up, one writer
//! task and a pool of readers). The SQL is written to stay portable to PostgreSQL:
//! `INSERT … ON CONFLICT` instead of `INSERT OR …`, times as integer nanoseconds, keys
//! as text or bytes; what stays SQLite-only (scalar `min`/`max`, `substr`, `instr`,
//! `hex`) is confined to these files.

pub mod backfill;
pub mod backup;
pub mod batch;
pub mod deliveries;
pub mod dora;
pub mod github;
pub mod graph;
pub mod line_records;
pub mod links;
pub mod models;
pub mod nodes;
pub mod raw;
pub mod recent;
pub mod reports;
pub mod retention;
pub mod sessions;
pub mod testing;
pub mod uploads;
pub mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

/// A storage error: the query failed or the database could not be reached.
pub type Error = sqlx::Error;
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection settings shared by the writer and the readers.
///
/// - `journal_mode=WAL`: readers never block the writer, and a commit appends to the log.
/// - `synchronous=FULL`: the WAL is fsynced at every commit, so a request acknowledged
///   after its commit survives `kill -9` and power loss alike. Group commit
///   ([`writer`]) spreads that fsync over every request in the group.
/// - `busy_timeout=5s`: a reader that meets a checkpoint waits instead of failing.
/// - `foreign_keys=ON`: session references are checked.
fn options(path: &Path) -> anyhow::Result<SqliteConnectOptions> {
    let url = format!("sqlite://{}", path.display());
    Ok(SqliteConnectOptions::from_str(&url)
        .with_context(|| format!("database path {}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
        .disable_statement_logging())
}

/// Opens (creating if needed) the database and applies pending migrations.
pub async fn open(path: &Path) -> anyhow::Result<Store> {
    let path = path.to_path_buf();
    let path = path.as_path();
    let opts = options(path)?;
    let mut writer = opts
        .connect()
        .await
        .with_context(|| format!("opening database {}", path.display()))?;
    MIGRATOR
        .run(&mut writer)
        .await
        .with_context(|| format!("applying migrations to {}", path.display()))?;
    let readers = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts.read_only(true))
        .await
        .with_context(|| format!("opening readers on {}", path.display()))?;
    Ok(Store {
        writer: Conn { conn: writer },
        db: Db { pool: readers },
        path: path.to_path_buf(),
    })
}

/// Applies migrations and returns, for `tracelink migrate`.
pub async fn migrate(path: &Path) -> anyhow::Result<()> {
    let mut conn = options(path)?.connect().await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// An open database: the writer's connection, the readers, and where it lives.
pub struct Store {
    /// The connection the single writer ([`writer`]) owns.
    pub writer: Conn,
    pub db: Db,
    path: PathBuf,
}

impl Store {
    /// A further write connection (the webhook processor's, the publisher's); SQLite
    /// serialises it with the writer's, each waiting up to the busy timeout.
    pub async fn connect(&self) -> anyhow::Result<Conn> {
        let conn = options(&self.path)?
            .connect()
            .await
            .with_context(|| format!("opening database {}", self.path.display()))?;
        Ok(Conn { conn })
    }
}

/// The read side: a pool of read-only connections. Cheap to clone. Reads of each
/// aggregate are methods in that aggregate's file.
#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
}

impl Db {
    /// Opens an existing database for reading only (`tracelink report`, tests).
    pub async fn open_read_only(path: &Path) -> anyhow::Result<Db> {
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options(path)?.read_only(true).create_if_missing(false))
            .await
            .with_context(|| format!("opening {} for reading", path.display()))?;
        Ok(Db { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One write connection. Its writes go through [`Tx`].
pub struct Conn {
    conn: SqliteConnection,
}

impl Conn {
    pub async fn begin(&mut self) -> Result<Tx<'_>> {
        Ok(Tx {
            tx: self.conn.begin().await?,
        })
    }

    /// A transaction that holds the write lock from its start: what is read (through
    /// [`Db`]) after it began is the state no other writer changes before it commits.
    /// For read-compute-write steps two tasks may run at once (linking).
    pub async fn begin_exclusive(&mut self) -> Result<Tx<'_>> {
        Ok(Tx {
            tx: self.conn.begin_with("BEGIN IMMEDIATE").await?,
        })
    }

    pub async fn close(self) -> Result<()> {
        self.conn.close().await
    }
}

/// A write transaction: nothing is visible to readers until [`Tx::commit`]; dropped
/// without it, nothing was written.
pub struct Tx<'c> {
    tx: sqlx::Transaction<'c, sqlx::Sqlite>,
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// `?, ?, …` for an `IN (…)` list of `n` values (one `?` for an empty list, which then
/// matches nothing as long as the caller binds a value no row has).
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every migration applies over a database holding data of the schema before it.
    #[tokio::test]
    async fn migrations_apply_in_order_over_existing_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = options(&path).unwrap().connect().await.unwrap();
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
