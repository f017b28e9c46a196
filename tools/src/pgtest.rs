//! PostgreSQL databases for tests and benchmarks, one per test, on the server
//! `TRACELINK_TEST_POSTGRES` names (default [`DEFAULT_SERVER`]).
//!
//! - Each is created from a template that holds the migrated schema
//!   (`tl_tpl_<schema hash>`, built once under an advisory lock, so tests starting in
//!   parallel, in one process or several, build it once), which is much faster than
//!   migrating each.
//! - Each is named `tl_test_<pid>_<unix seconds>_<n>` and dropped when its [`Database`]
//!   is dropped. The server outlives test runs, so a run killed before that leaves
//!   databases behind: the first database a process creates drops the leftovers whose
//!   process is gone or that are older than an hour — never a live run's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;

/// The server tests use when `TRACELINK_TEST_POSTGRES` is not set.
pub const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const TEST_PREFIX: &str = "tl_test_";
const TEMPLATE_PREFIX: &str = "tl_tpl_";
/// Leftovers older than this are dropped even if their process id is alive (reused).
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

/// The server URL (its database is where administrative statements run).
pub fn server_url() -> String {
    match std::env::var("TRACELINK_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() && url != "skip" => url,
        _ => DEFAULT_SERVER.to_string(),
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A database of its own; dropped with this value.
pub struct Database {
    name: String,
    url: String,
    server: String,
}

impl Database {
    /// Creates a fresh, migrated database.
    pub async fn create() -> anyhow::Result<Database> {
        Self::create_from(true).await
    }

    /// Creates an empty database (no schema): what an operator gives tracelink.
    pub async fn create_empty() -> anyhow::Result<Database> {
        Self::create_from(false).await
    }

    async fn create_from(migrated: bool) -> anyhow::Result<Database> {
        let server = server_url();
        let mut admin = PgConnection::connect(&server)
            .await
            .with_context(|| format!("connecting to the test PostgreSQL server {server}"))?;
        static SWEPT: OnceCell<()> = OnceCell::const_new();
        SWEPT.get_or_try_init(|| drop_leftovers(&mut admin)).await?;
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{TEST_PREFIX}{}_{}_{}",
            std::process::id(),
            unix_seconds(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let create = if migrated {
            let template = template(&mut admin, &server).await?;
            format!("CREATE DATABASE {name} TEMPLATE {template}")
        } else {
            format!("CREATE DATABASE {name}")
        };
        admin
            .execute(sqlx::AssertSqlSafe(create))
            .await
            .with_context(|| format!("creating {name}"))?;
        admin.close().await.ok();
        Ok(Database {
            url: with_database(&server, &name),
            name,
            server,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread
        // with a runtime of its own drops the database and is waited for.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&server).await?;
                drop_database(&mut admin, &name).await?;
                admin.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("dropping test database {}: {e:#}", self.name);
        }
    }
}

/// A database kept between runs (a benchmark's generated data), on the server
/// [`server_url`] names: its URL, and whether it had to be created (empty, no schema).
/// `name` must be a plain lower-case identifier.
pub async fn keep_database(name: &str) -> anyhow::Result<(String, bool)> {
    anyhow::ensure!(
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "{name:?} is not a plain database name"
    );
    let server = server_url();
    let mut admin = PgConnection::connect(&server)
        .await
        .with_context(|| format!("connecting to the PostgreSQL server {server}"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("creating {name}"))?;
    }
    admin.close().await.ok();
    Ok((with_database(&server, name), !exists))
}

/// Drops a database [`keep_database`] made.
pub async fn drop_kept_database(name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(&server_url()).await?;
    drop_database(&mut admin, name).await?;
    admin.close().await.ok();
    Ok(())
}

/// A database's size on disk, in bytes (`pg_database_size`).
pub async fn database_size(name: &str) -> anyhow::Result<i64> {
    let mut admin = PgConnection::connect(&server_url()).await?;
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
        .bind(name)
        .fetch_one(&mut admin)
        .await?;
    admin.close().await.ok();
    Ok(size)
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .with_context(|| format!("dropping {name}"))?;
    Ok(())
}

/// The migrated template for the current schema, built if missing.
fn schema_digest() -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for m in tracelink::store::PG_MIGRATOR.iter() {
        hash.update(m.version.to_le_bytes());
        hash.update(&m.checksum[..]);
    }
    hash.finalize().into()
}

/// `tl_tpl_<first 6 bytes of the schema's digest>`.
fn template_name() -> String {
    let hex: String = schema_digest()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{TEMPLATE_PREFIX}{hex}")
}

async fn template(admin: &mut PgConnection, server: &str) -> anyhow::Result<String> {
    let digest = schema_digest();
    let name = template_name();
    let lock_key = i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key)
        .execute(&mut *admin)
        .await?;
    let built = build_template(admin, server, &name).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lock_key)
        .execute(&mut *admin)
        .await?;
    built.map(|()| name)
}

async fn build_template(admin: &mut PgConnection, server: &str, name: &str) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut *admin)
            .await?;
    if exists {
        return Ok(());
    }
    // Built under another name and renamed when complete, so a run killed half-way
    // never leaves a half-migrated template behind.
    let building = format!("{name}_building");
    drop_database(admin, &building).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
        .await?;
    tracelink::store::migrate(tracelink::store::Location::Postgres(with_database(
        server, &building,
    )))
    .await
    .with_context(|| format!("migrating the template {building}"))?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {name}"
        )))
        .await?;
    Ok(())
}

/// Drops `tl_test_*` databases whose process is gone or that are older than an hour.
async fn drop_leftovers(admin: &mut PgConnection) -> anyhow::Result<()> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'tl\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await?;
    let now = unix_seconds();
    for name in names {
        let mut parts = name[TEST_PREFIX.len()..].split('_');
        let pid: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        let secs: Option<u64> = parts.next().and_then(|s| s.parse().ok());
        let (Some(pid), Some(secs)) = (pid, secs) else {
            continue;
        };
        let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();
        let old = now.saturating_sub(secs) > LEFTOVER_AGE.as_secs();
        if (gone || old) && pid != std::process::id() {
            drop_database(admin, &name).await.ok();
        }
    }
    // Templates of earlier schemas (and half-built ones), once untouched for an hour.
    // Reading a database's age needs pg_stat_file (superuser); without it they stay.
    let current = template_name();
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'tl\\_tpl\\_%' AND datname <> $1 \
         AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '1 hour'",
    )
    .bind(&current)
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    for name in stale {
        drop_database(admin, &name).await.ok();
    }
    Ok(())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "tl_test_1"),
            "postgres://postgres@127.0.0.1:5432/tl_test_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
