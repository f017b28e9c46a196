//! Raw data kept for a window after tracelink received it (`--retain-raw`), and the
//! sizes `tracelink stats` prints.
//!
//! Pruned: spans, log events and metric points (by `received_ns`), and the payloads of
//! processed deliveries (the delivery row stays, so a redelivery is still a duplicate;
//! only a replay needs the payload). Kept: every fact derived from them — sessions and
//! their counters, tokens, commits, files and traces; commits, trailers, pull requests,
//! runs, deployments, incidents; links, uploads and reports — and the state that turns
//! cumulative series into increments. Relinking and every report read only what is kept.

use sqlx::AssertSqlSafe;

use super::{Conn, Db, Result};

/// What one pruning batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub spans: u64,
    pub log_events: u64,
    pub metric_points: u64,
    /// Delivery payloads dropped.
    pub payloads: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.spans + self.log_events + self.metric_points + self.payloads
    }
}

impl Conn {
    /// Removes up to `limit` rows of each kind received before `cutoff_ns`, each table
    /// in its own short transaction so the writer never waits long.
    pub async fn prune_raw(&mut self, cutoff_ns: i64, limit: i64) -> Result<Pruned> {
        let mut out = Pruned::default();
        for (table, key, count) in [
            ("spans", "trace_id, span_id", &mut out.spans),
            ("log_events", "digest", &mut out.log_events),
            ("metric_points", "series, time_ns", &mut out.metric_points),
        ] {
            let sql = format!(
                "DELETE FROM {table} WHERE ({key}) IN \
                 (SELECT {key} FROM {table} WHERE received_ns < ?1 ORDER BY received_ns LIMIT ?2)"
            );
            *count = sqlx::query(AssertSqlSafe(sql))
                .bind(cutoff_ns)
                .bind(limit)
                .execute(&mut self.conn)
                .await?
                .rows_affected();
        }
        out.payloads = sqlx::query(
            "UPDATE deliveries SET payload = NULL WHERE delivery_id IN \
             (SELECT delivery_id FROM deliveries WHERE payload IS NOT NULL AND status = 'processed' \
              AND received_ns < ?1 ORDER BY received_ns LIMIT ?2)",
        )
        .bind(cutoff_ns)
        .bind(limit)
        .execute(&mut self.conn)
        .await?
        .rows_affected();
        Ok(out)
    }
}

/// One table's (or index's) size.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSize {
    pub name: String,
    /// `None` for an index.
    pub rows: Option<i64>,
    pub bytes: i64,
}

impl Db {
    /// Rows and bytes on disk of every table and index, largest first.
    pub async fn table_sizes(&self) -> Result<Vec<TableSize>> {
        let sizes: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT d.name, m.type, sum(d.pgsize) FROM dbstat d \
             JOIN sqlite_schema m ON m.name = d.name \
             WHERE m.name NOT LIKE 'sqlite_%' GROUP BY d.name, m.type",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(sizes.len());
        for (name, kind, bytes) in sizes {
            let rows = if kind == "table" {
                // The name comes from the schema itself, quoted as an identifier.
                let sql = format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\""));
                Some(
                    sqlx::query_scalar(AssertSqlSafe(sql))
                        .fetch_one(&self.pool)
                        .await?,
                )
            } else {
                None
            };
            out.push(TableSize { name, rows, bytes });
        }
        out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
        Ok(out)
    }
}
