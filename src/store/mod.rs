//! SQLite storage: one file, WAL, migrations applied at start-up, one writer task
//! ([`writer`]) and a pool of readers ([`sessions`]).

pub mod batch;
pub mod sessions;
pub mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

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
    Ok(Store { writer, readers })
}

/// A further write connection (the webhook processor's); SQLite serialises it with the
/// writer's, each waiting up to the busy timeout.
pub async fn connect(path: &Path) -> anyhow::Result<SqliteConnection> {
    options(path)?
        .connect()
        .await
        .with_context(|| format!("opening database {}", path.display()))
}

/// Applies migrations and returns, for `tracelink migrate`.
pub async fn migrate(path: &Path) -> anyhow::Result<()> {
    let mut conn = options(path)?.connect().await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// `?, ?, …` for an `IN (…)` list of `n` values (one `?` for an empty list, which then
/// matches nothing as long as the caller binds a value no row has).
pub fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// A nanosecond timestamp as RFC 3339 UTC, at the given precision.
pub fn rfc3339(ns: Option<i64>, precision: chrono::SecondsFormat) -> Option<String> {
    let ns = ns?;
    let t = chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )?;
    Some(t.to_rfc3339_opts(precision, true))
}

pub struct Store {
    pub writer: SqliteConnection,
    pub readers: SqlitePool,
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
