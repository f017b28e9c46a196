//! Raw data kept for a window after tracelink received it (`--retain-raw`), and the
//! sizes `tracelink stats` prints.
//!
//! Pruned: raw records — each export request's spans, log events and metric points —
//! with their key rows (by `received_ns`), and the payloads of
//! processed deliveries (the delivery row stays, so a redelivery is still a duplicate;
//! only a replay needs the payload). Kept: every fact derived from them — sessions and
//! their counters, tokens, commits, files and traces; commits, trailers, pull requests,
//! runs, deployments, incidents; links, uploads and reports — and the state that turns
//! cumulative series into increments. Relinking and every report read only what is kept.

use super::{query, query_as, query_scalar};
use sqlx::Connection;

use super::{Conn, Db, Result};

/// What one pruning batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Raw records ([`super::raw`]), each holding one export request.
    pub records: u64,
    /// Day partitions of raw records dropped whole (PostgreSQL,
    /// [`super::partitions`]).
    pub partitions: u64,
    pub spans: u64,
    pub log_events: u64,
    pub metric_points: u64,
    /// Delivery payloads dropped.
    pub payloads: u64,
    /// Whether more is past the cutoff than this batch removed.
    pub more: bool,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.spans + self.log_events + self.metric_points + self.payloads
    }
}

/// Most raw records looked at per batch.
const RECORDS_PER_BATCH: i64 = 64;

impl Conn {
    /// Removes raw records received before `cutoff_ns`, oldest first, with their key rows,
    /// up to about `limit` rows (at least one record) in one short transaction; then up
    /// to `limit` processed delivery payloads. The writer never waits long behind it.
    pub async fn prune_raw(&mut self, cutoff_ns: i64, limit: i64) -> Result<Pruned> {
        let mut out = Pruned::default();
        if self.engine == super::Engine::Postgres {
            let dropped = self.drop_old_partitions(cutoff_ns).await?;
            out.partitions = dropped.partitions;
            out.records = dropped.records;
            out.spans = dropped.spans;
            out.log_events = dropped.log_events;
            out.metric_points = dropped.metric_points;
            let digests = query(
                "DELETE FROM raw_digests WHERE digest IN \
                 (SELECT digest FROM raw_digests WHERE received_ns < ?1 LIMIT ?2)",
            )
            .bind(cutoff_ns)
            .bind(limit)
            .execute(&mut self.conn)
            .await?
            .rows_affected();
            out.more |= digests as i64 >= limit;
        }
        let old: Vec<(i64, i64)> = query_as(
            "SELECT id, rows FROM raw_records WHERE received_ns < ?1 ORDER BY received_ns, id LIMIT ?2",
        )
        .bind(cutoff_ns)
        .bind(RECORDS_PER_BATCH)
        .fetch_all(&mut self.conn)
        .await?;
        out.more = old.len() as i64 == RECORDS_PER_BATCH;
        let mut rows = 0;
        let mut tx = self.conn.begin().await?;
        for (i, (id, n)) in old.iter().enumerate() {
            if i > 0 && rows + n > limit {
                out.more = true;
                break;
            }
            rows += n;
            for (sql, count) in [
                ("DELETE FROM spans WHERE record_id = ?", &mut out.spans),
                (
                    "DELETE FROM log_events WHERE record_id = ?",
                    &mut out.log_events,
                ),
                (
                    "DELETE FROM metric_points WHERE record_id = ?",
                    &mut out.metric_points,
                ),
                ("DELETE FROM record_sessions WHERE record_id = ?", &mut 0),
                ("DELETE FROM raw_records WHERE id = ?", &mut out.records),
            ] {
                *count += query(sql).bind(id).execute(&mut *tx).await?.rows_affected();
            }
        }
        tx.commit().await?;
        out.payloads = query(
            "UPDATE deliveries SET payload = NULL WHERE delivery_id IN \
             (SELECT delivery_id FROM deliveries WHERE payload IS NOT NULL AND status = 'processed' \
              AND received_ns < ?1 ORDER BY received_ns, delivery_id LIMIT ?2)",
        )
        .bind(cutoff_ns)
        .bind(limit)
        .execute(&mut self.conn)
        .await?
        .rows_affected();
        out.more |= out.payloads as i64 >= limit;
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
        let sizes: Vec<(String, String, i64)> = query_as(match self.engine {
            super::Engine::Sqlite => {
                "SELECT d.name, m.type, sum(d.pgsize) FROM dbstat d \
                 JOIN sqlite_schema m ON m.name = d.name \
                 WHERE m.name NOT LIKE 'sqlite_%' GROUP BY d.name, m.type"
            }
            // Tables with their TOAST data; a partitioned table's rows are in its
            // partitions, each listed.
            // A partitioned table or index counts its partitions' rows and bytes.
            super::Engine::Postgres => {
                "SELECT CAST(c.relname AS TEXT), \
                   CASE WHEN c.relkind IN ('i', 'I') THEN 'index' ELSE 'table' END, \
                   CAST((SELECT coalesce(sum(CASE WHEN c.relkind IN ('i', 'I') \
                       THEN pg_relation_size(t.relid) ELSE pg_table_size(t.relid) END), 0) \
                     FROM pg_partition_tree(c.oid) t) AS BIGINT) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 'p', 'I') \
                   AND NOT c.relispartition"
            }
        })
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(sizes.len());
        for (name, kind, bytes) in sizes {
            let rows = if kind == "table" {
                // The name comes from the schema itself, quoted as an identifier.
                let sql = format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\""));
                Some(query_scalar(sql).fetch_one(&self.pool).await?)
            } else {
                None
            };
            out.push(TableSize { name, rows, bytes });
        }
        out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
        Ok(out)
    }
}
