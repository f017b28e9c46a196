//! PostgreSQL only: raw records partitioned by day of receipt, so retention drops a
//! day's partition instead of deleting its rows one by one.
//!
//! - `raw_records` is `PARTITION BY RANGE (received_ns)`, one partition per UTC day,
//!   named `raw_records_YYYYMMDD`, plus `raw_records_default` for what no day partition
//!   covers (rows copied in by `migrate-data`, a day whose partition could not be made).
//! - The writer makes today's and tomorrow's partitions before it writes (once a day
//!   per process), outside its transaction. Replicas starting together would race on
//!   `CREATE TABLE IF NOT EXISTS` (it is not atomic: the loser fails with "already
//!   exists"), so each creation holds an advisory lock.
//! - A re-sent request is recognised by its digest in `raw_digests`, which is not
//!   partitioned (a unique index on a partitioned table must include the day, and a
//!   retry may cross midnight).
//! - Retention drops each partition wholly older than the cutoff with its key rows in
//!   one transaction; what is left before the cutoff (the day it falls in, the default
//!   partition) goes row by row as on SQLite ([`super::retention`]).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate};
use sqlx::{AnyConnection, Connection};

use super::{Conn, Result, query, query_scalar};

const DAY_NS: i64 = 86_400 * 1_000_000_000;
const PREFIX: &str = "raw_records_";

/// The partition of the UTC day holding `ns`, and its bounds `[start, end)`.
fn day_of(ns: i64) -> (String, i64, i64) {
    let start = ns.div_euclid(DAY_NS) * DAY_NS;
    let date = DateTime::from_timestamp_nanos(start).date_naive();
    (
        format!("{PREFIX}{}", date.format("%Y%m%d")),
        start,
        start + DAY_NS,
    )
}

/// The bounds of a partition named `raw_records_YYYYMMDD`; `None` for any other name.
fn bounds_of(name: &str) -> Option<(i64, i64)> {
    let date = NaiveDate::parse_from_str(name.strip_prefix(PREFIX)?, "%Y%m%d").ok()?;
    let start = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt()?;
    Some((start, start + DAY_NS))
}

/// The days whose partitions this writer made (or found made).
#[derive(Default)]
pub(super) struct Days {
    made: BTreeSet<i64>,
}

impl Days {
    /// Makes the partitions of the day of `now_ns` and the next, unless made already.
    /// A failure is logged, not returned: the rows then go to the default partition,
    /// which retention prunes row by row.
    pub(super) async fn ensure(&mut self, conn: &mut AnyConnection, now_ns: i64) {
        for ns in [now_ns, now_ns + DAY_NS] {
            let (name, start, end) = day_of(ns);
            if self.made.contains(&start) {
                continue;
            }
            if let Err(e) = make(conn, &name, start, end).await {
                tracing::warn!(partition = %name, error = %e,
                    "making a day's raw-record partition failed; its records go to raw_records_default");
            }
            // Tried once per process either way: a partition that cannot be made (the
            // default partition already holds rows of that day) will not be made later.
            self.made.insert(start);
        }
    }
}

/// The advisory lock replicas take to make a partition one at a time.
const PARTITION_LOCK: i64 = 0x7472_6c70; // "trlp"

async fn make(conn: &mut AnyConnection, name: &str, start: i64, end: i64) -> Result<()> {
    let mut tx = conn.begin().await?;
    query("SELECT pg_advisory_xact_lock(?)")
        .bind(PARTITION_LOCK)
        .execute(&mut *tx)
        .await?;
    query(format!(
        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF raw_records \
         FOR VALUES FROM ({start}) TO ({end})"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// What dropping whole partitions removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Dropped {
    pub partitions: u64,
    pub records: u64,
    pub spans: u64,
    pub log_events: u64,
    pub metric_points: u64,
}

impl Conn {
    /// Drops every day partition that ends at or before `cutoff_ns`, each with its
    /// records' key rows, in one transaction per partition.
    pub(super) async fn drop_old_partitions(&mut self, cutoff_ns: i64) -> Result<Dropped> {
        let names: Vec<String> = query_scalar(
            "SELECT CAST(c.relname AS TEXT) FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = 'raw_records' AND p.relnamespace = c.relnamespace \
             ORDER BY c.relname",
        )
        .fetch_all(&mut self.conn)
        .await?;
        let mut out = Dropped::default();
        for name in names {
            let Some((_, end)) = bounds_of(&name) else {
                continue;
            };
            if end > cutoff_ns {
                continue;
            }
            let mut tx = self.conn.begin().await?;
            out.records += query_scalar::<i64>(format!("SELECT count(*) FROM {name}"))
                .fetch_one(&mut *tx)
                .await? as u64;
            for (table, count) in [
                ("spans", &mut out.spans),
                ("log_events", &mut out.log_events),
                ("metric_points", &mut out.metric_points),
                ("record_sessions", &mut 0),
            ] {
                *count += query(format!(
                    "DELETE FROM {table} WHERE record_id IN (SELECT id FROM {name})"
                ))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            query(format!("DROP TABLE {name}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            out.partitions += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_partition_is_named_by_its_utc_date_and_bounded_by_it() {
        // 2026-11-30T23:59:59.999999999Z and the next nanosecond.
        let last = 1_796_083_199_999_999_999;
        let (name, start, end) = day_of(last);
        assert_eq!(name, "raw_records_20261130");
        assert_eq!(
            (start, end),
            (1_795_996_800_000_000_000, 1_796_083_200_000_000_000)
        );
        assert_eq!(day_of(last + 1).0, "raw_records_20261201");
        assert_eq!(bounds_of(&name), Some((start, end)));
        assert_eq!(bounds_of("raw_records_default"), None);
        assert_eq!(day_of(0).0, "raw_records_19700101");
    }
}
