//! This process among the replicas that share one database (PostgreSQL; on SQLite one
//! process runs, and the same code holds trivially).
//!
//! Work that must happen once is claimed for a while (a lease) by the replica doing
//! it: a webhook delivery to apply, a pull request's report to publish, the export of
//! organisation-wide figures on `/metrics`. A replica that dies stops renewing; its
//! claims expire after [`Replica::lease`] and another replica takes the work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Conn;
use crate::time::now_ns;

/// The lease naming the replica that exports organisation-wide figures on `/metrics`.
pub const METRICS_LEASE: &str = "metrics";

/// This replica: how it signs its claims, and how long they last.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Unique among the replicas, new at every start: host, process and start time.
    pub id: Arc<str>,
    /// How long a claim lasts without renewal: the longest a dead replica's work waits.
    pub lease: Duration,
}

impl Replica {
    pub fn new(lease: Duration) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "replica".into());
        Self {
            id: format!("{host}-{}-{:x}", std::process::id(), now_ns()).into(),
            lease,
        }
    }

    /// When a claim taken at `now_ns` expires.
    pub fn until(&self, now_ns: i64) -> i64 {
        now_ns.saturating_add(i64::try_from(self.lease.as_nanos()).unwrap_or(i64::MAX))
    }
}

/// Whether this replica holds the `/metrics` lease, kept by [`spawn_metrics_lease`].
#[derive(Debug, Clone, Default)]
pub struct MetricsLease(Arc<AtomicBool>);

impl MetricsLease {
    pub fn held(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Takes the `/metrics` lease if it is free (before the listeners open, so a replica
/// alone exports from its first scrape), then renews it every third of the lease period
/// while this replica runs, and gives it up when it stops: organisation-wide figures come
/// from one replica at a time, so a dashboard summing over replicas counts them once.
pub async fn spawn_metrics_lease(
    mut conn: Conn,
    replica: Replica,
    mut stop: watch::Receiver<bool>,
) -> (MetricsLease, JoinHandle<()>) {
    let held = MetricsLease::default();
    let flag = held.0.clone();
    let every = (replica.lease / 3).max(Duration::from_millis(50));
    renew(&mut conn, &replica, &flag).await;
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
            renew(&mut conn, &replica, &flag).await;
        }
        flag.store(false, Ordering::Relaxed);
        if let Err(e) = conn.release_lease(METRICS_LEASE, &replica.id).await {
            tracing::warn!(error = %e, "giving the /metrics lease up");
        }
        let _ = conn.close().await;
    });
    (held, task)
}

/// One round of [`spawn_metrics_lease`]. Renewed a third of the period before it can
/// expire; a failed renewal (the database unreachable) drops the claim here at once,
/// before the lease can pass to another replica.
async fn renew(conn: &mut Conn, replica: &Replica, flag: &AtomicBool) {
    let now = now_ns();
    let holds = match conn
        .hold_lease(METRICS_LEASE, &replica.id, now, replica.until(now))
        .await
    {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "renewing the /metrics lease failed");
            if let Err(e) = conn.recover().await {
                tracing::warn!(error = %format!("{e:#}"), "the database cannot be reached");
            }
            false
        }
    };
    if flag.swap(holds, Ordering::Relaxed) != holds {
        tracing::info!(
            replica = %replica.id,
            "{} the organisation-wide figures on /metrics",
            if holds { "now exporting" } else { "no longer exporting" }
        );
    }
}
