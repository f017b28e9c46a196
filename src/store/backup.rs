//! Whole database files: a checkpoint when the service stops (so `tracelink.db` alone
//! holds everything, with no `-wal` beside it), and a consistent copy taken while
//! serving.

use super::query;
use std::path::Path;

use anyhow::Context;
use sqlx::{ConnectOptions, Connection};

use super::Db;

/// Moves everything in the write-ahead log into the database file and empties the log.
/// Called once every other connection of this process is closed.
pub async fn checkpoint(path: &Path) -> anyhow::Result<()> {
    let mut conn = super::options(path)
        .create_if_missing(false)
        .connect()
        .await
        .with_context(|| format!("opening {} to checkpoint it", path.display()))?;
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut conn)
        .await
        .context("checkpointing the write-ahead log")?;
    conn.close().await?;
    if busy != 0 {
        anyhow::bail!(
            "another process holds {} open: the log was not emptied",
            path.display()
        );
    }
    Ok(())
}

impl Db {
    /// Writes a consistent copy of the database to `target` (`VACUUM INTO`: one read
    /// transaction, so writes going on meanwhile are either wholly in it or not at all).
    /// `target` must not exist.
    pub async fn backup_into(&self, target: &Path) -> anyhow::Result<()> {
        if self.engine == super::Engine::Postgres {
            anyhow::bail!(
                "`tracelink backup` copies a SQLite file; back a PostgreSQL database up with pg_dump"
            );
        }
        if target.exists() {
            anyhow::bail!(
                "{} exists: a backup never overwrites a file",
                target.display()
            );
        }
        let target = target
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", target.display()))?;
        query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await
            .with_context(|| format!("writing the backup to {target}"))?;
        Ok(())
    }
}
