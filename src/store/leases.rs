//! What replicas share beyond the graph: named leases (work one replica does for all)
//! and the GitHub App's write budget. On SQLite, where one process runs, they hold
//! trivially; the code is the same.

use super::{Conn, Db, Result, query, query_as, query_scalar};

/// The advisory lock that serialises takers of the GitHub write budget (PostgreSQL).
const WRITE_BUDGET_LOCK: i64 = 0x7472_6c62; // "trlb"

impl Conn {
    /// Takes or renews the lease `name` for `owner` until `until_ns`: `true` when
    /// `owner` holds it now (it was free, expired at `now_ns`, or already `owner`'s).
    pub async fn hold_lease(
        &mut self,
        name: &str,
        owner: &str,
        now_ns: i64,
        until_ns: i64,
    ) -> Result<bool> {
        let held: Option<String> = query_scalar(
            "INSERT INTO leases (name, owner, until_ns) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ns = excluded.until_ns \
             WHERE leases.owner = excluded.owner OR leases.until_ns <= ?4 RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(until_ns)
        .bind(now_ns)
        .fetch_optional(&mut self.conn)
        .await?;
        Ok(held.is_some())
    }

    /// Gives the lease `name` up if `owner` holds it (a replica stopping cleanly), so
    /// another takes it at once rather than when it expires.
    pub async fn release_lease(&mut self, name: &str, owner: &str) -> Result<()> {
        query("DELETE FROM leases WHERE name = ? AND owner = ?")
            .bind(name)
            .bind(owner)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Takes `n` content-creating GitHub requests from the budget all replicas share:
    /// at most `max` in any `window_ns`, for each `(max, window_ns)` of `limits`.
    /// `Ok(None)` when taken; `Ok(Some(wait_ns))` when they are not available for that
    /// long. Takers are serialised by an advisory lock (PostgreSQL) or the write lock
    /// (SQLite); the record of writes never holds more than the longest window.
    pub async fn take_github_writes(
        &mut self,
        now_ns: i64,
        n: i64,
        limits: &[(i64, i64)],
    ) -> Result<Option<i64>> {
        let longest = limits.iter().map(|(_, w)| *w).max().unwrap_or(0);
        let mut tx = self.begin_under(WRITE_BUDGET_LOCK).await?;
        query("DELETE FROM github_writes WHERE at_ns <= ?")
            .bind(now_ns - longest)
            .execute(tx.conn())
            .await?;
        let spent: Vec<(i64, i64)> = query_as("SELECT at_ns, n FROM github_writes ORDER BY at_ns")
            .fetch_all(tx.conn())
            .await?;
        if let Some(wait) = budget_wait(&spent, now_ns, n, limits) {
            tx.commit().await?;
            return Ok(Some(wait));
        }
        query("INSERT INTO github_writes (at_ns, n) VALUES (?, ?)")
            .bind(now_ns)
            .bind(n)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(None)
    }
}

/// The work queued in the database for all replicas: what `/metrics` exports once, from
/// the replica holding the metrics lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SharedQueues {
    /// Deliveries stored and not yet applied.
    pub deliveries_pending: i64,
    /// Deliveries set aside as failed (`tracelink deliveries replay` brings them back).
    pub deliveries_failed: i64,
    /// Pull requests whose report waits to be published.
    pub reports_queued: i64,
    /// Sessions waiting to be linked to commits again.
    pub link_queue_sessions: i64,
}

impl Db {
    pub async fn shared_queues(&self) -> Result<SharedQueues> {
        query_as(
            "SELECT \
               (SELECT count(*) FROM deliveries WHERE status = 'pending') AS deliveries_pending, \
               (SELECT count(*) FROM deliveries WHERE status = 'failed') AS deliveries_failed, \
               (SELECT count(*) FROM report_queue) AS reports_queued, \
               (SELECT count(*) FROM link_queue) AS link_queue_sessions",
        )
        .fetch_one(&self.pool)
        .await
    }
}

/// How long until `n` more writes fit every limit, given the writes `spent` (time,
/// count; oldest first); `None` when they fit now.
fn budget_wait(spent: &[(i64, i64)], now_ns: i64, n: i64, limits: &[(i64, i64)]) -> Option<i64> {
    let mut wait = None::<i64>;
    for &(max, window) in limits {
        let live: Vec<&(i64, i64)> = spent
            .iter()
            .filter(|(at, _)| *at > now_ns - window)
            .collect();
        let mut used: i64 = live.iter().map(|(_, k)| k).sum();
        if used + n <= max {
            continue;
        }
        // The writes that must leave the window first, oldest first.
        let mut until = now_ns + window;
        for (at, k) in live {
            used -= k;
            if used + n <= max {
                until = at + window;
                break;
            }
        }
        let w = (until - now_ns).max(1);
        wait = Some(wait.map_or(w, |x| x.max(w)));
    }
    wait
}

#[cfg(test)]
mod tests {
    use super::budget_wait;

    const S: i64 = 1_000_000_000;

    #[test]
    fn writes_wait_for_the_oldest_to_leave_each_window() {
        let limits = [(4, 60 * S), (6, 3600 * S)];
        assert_eq!(budget_wait(&[], 0, 2, &limits), None);
        // Four in the minute: the next two wait for the two oldest to leave it.
        let spent = [(0, 1), (10 * S, 1), (20 * S, 2)];
        assert_eq!(budget_wait(&spent, 30 * S, 2, &limits), Some(40 * S));
        assert_eq!(budget_wait(&spent, 30 * S, 1, &limits), Some(30 * S));
        // The minute is free again, the hour is not: six in the hour.
        let spent = [(0, 2), (100 * S, 2), (200 * S, 2)];
        assert_eq!(budget_wait(&spent, 300 * S, 2, &limits), Some(3300 * S));
        assert_eq!(budget_wait(&spent, 3601 * S, 2, &limits), None);
        // More than a window can ever hold waits a whole window.
        assert_eq!(budget_wait(&[], 0, 5, &limits), Some(60 * S));
    }
}
