//! Webhook deliveries as received: stored once each before they are acknowledged, then
//! applied by the processor (`pending` → `processed`, or `failed` with the reason).

use super::{query, query_as, query_scalar};
use sqlx::AnyConnection;

use super::writer::Written;
use super::{Conn, Db, Result, Tx};

/// A webhook delivery to store before it is acknowledged.
pub struct DeliveryRow {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub repo: Option<String>,
    pub received_ns: i64,
    /// `pending` (to be applied) or `failed` (with `error`).
    pub status: &'static str,
    pub error: Option<String>,
    pub payload: bytes::Bytes,
}

/// A stored delivery waiting to be applied.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingDelivery {
    pub delivery_id: String,
    pub event: String,
    pub payload: Vec<u8>,
    pub received_ns: i64,
}

/// A delivery as `GET /api/v1/deliveries` lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliverySummary {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub repo: Option<String>,
    pub received_ns: i64,
    pub error: Option<String>,
}

/// Stores a delivery once (inside the writer's transaction): a redelivery of the same
/// ID changes nothing.
pub(super) async fn write(conn: &mut AnyConnection, d: &DeliveryRow) -> Result<Written> {
    let n = query(
        "INSERT INTO deliveries (delivery_id, event, action, repo, received_ns, status, error, payload) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING",
    )
    .bind(&d.delivery_id)
    .bind(&d.event)
    .bind(d.action.as_deref())
    .bind(d.repo.as_deref())
    .bind(d.received_ns)
    .bind(d.status)
    .bind(d.error.as_deref())
    .bind(&d.payload[..])
    .execute(conn)
    .await?
    .rows_affected();
    Ok(Written {
        inserted: n,
        duplicates: 1 - n.min(1),
    })
}

/// The advisory lock that lets one replica at a time apply deliveries (PostgreSQL).
const APPLY_LOCK: i64 = 0x7472_6c61; // "trla"

impl Conn {
    /// The transaction that applies a group of deliveries. Replicas apply their groups
    /// one at a time (an advisory lock on PostgreSQL; SQLite's write lock): two groups
    /// written side by side touch the same rows (a pull request's queued report, its
    /// commits and links) in different orders and deadlock, each costing a second of
    /// PostgreSQL's deadlock timeout. Applying is quick; claims still spread the work and
    /// pass it on when a replica dies.
    pub async fn begin_apply(&mut self) -> Result<Tx<'_>> {
        self.begin_under(APPLY_LOCK).await
    }

    /// Claims up to `limit` pending deliveries due at `now_ns` for `owner` until
    /// `until_ns`, oldest first: those no live claim holds (a replica that died leaves
    /// its claims to expire). On PostgreSQL rows another replica is claiming are skipped
    /// (`FOR UPDATE SKIP LOCKED`), so replicas take disjoint groups. A delivery that
    /// failed to apply waits before its next attempt.
    pub async fn claim_deliveries(
        &mut self,
        owner: &str,
        now_ns: i64,
        until_ns: i64,
        limit: i64,
    ) -> Result<Vec<PendingDelivery>> {
        let sql = format!(
            "UPDATE deliveries SET lease_owner = ?1, lease_until_ns = ?2 WHERE delivery_id IN ( \
               SELECT delivery_id FROM deliveries WHERE status = 'pending' AND retry_ns <= ?3 \
               AND coalesce(lease_until_ns, 0) <= ?3 ORDER BY received_ns, delivery_id LIMIT ?4{}) \
             RETURNING delivery_id, event, payload, received_ns",
            self.engine.skip_locked()
        );
        let mut claimed: Vec<PendingDelivery> = query_as(&sql)
            .bind(owner)
            .bind(until_ns)
            .bind(now_ns)
            .bind(limit)
            .fetch_all(&mut self.conn)
            .await?;
        claimed
            .sort_by(|a, b| (a.received_ns, &a.delivery_id).cmp(&(b.received_ns, &b.delivery_id)));
        Ok(claimed)
    }
}

impl Tx<'_> {
    /// Marks a claimed delivery applied, in the transaction that applies it; `false`
    /// when `owner`'s claim is gone (it expired and another replica took the delivery,
    /// or it was applied), and then it must not be applied here. The row stays locked
    /// until the transaction ends, so no other replica applies it meanwhile.
    pub async fn take_delivery(&mut self, delivery_id: &str, owner: &str) -> Result<bool> {
        let n = query(
            "UPDATE deliveries SET status = 'processed', lease_owner = NULL, lease_until_ns = NULL \
             WHERE delivery_id = ? AND status = 'pending' AND lease_owner = ?",
        )
        .bind(delivery_id)
        .bind(owner)
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Counts a failed attempt to apply a delivery `owner` claimed, and gives the claim
    /// up: the next attempt waits a second per attempt so far; after `max` attempts it is
    /// set aside as `failed` with the error. Returns whether it was set aside.
    pub async fn delivery_attempt_failed(
        &mut self,
        delivery_id: &str,
        owner: &str,
        error: &str,
        max: i64,
        now_ns: i64,
    ) -> Result<bool> {
        let attempts: Option<i64> = query_scalar(
            "UPDATE deliveries SET attempts = attempts + 1, error = ?, \
             retry_ns = ? + (attempts + 1) * 1000000000, lease_owner = NULL, lease_until_ns = NULL \
             WHERE delivery_id = ? AND lease_owner = ? RETURNING attempts",
        )
        .bind(error)
        .bind(now_ns)
        .bind(delivery_id)
        .bind(owner)
        .fetch_optional(self.conn())
        .await?;
        let Some(attempts) = attempts else {
            // Another replica holds it now.
            return Ok(false);
        };
        if attempts >= max {
            query("UPDATE deliveries SET status = 'failed', error = ? WHERE delivery_id = ?")
                .bind(format!("not applied after {attempts} attempts: {error}"))
                .bind(delivery_id)
                .execute(self.conn())
                .await?;
            return Ok(true);
        }
        Ok(false)
    }

    pub async fn delivery_failed(&mut self, delivery_id: &str, error: &str) -> Result<()> {
        query("UPDATE deliveries SET status = 'failed', error = ? WHERE delivery_id = ?")
            .bind(error)
            .bind(delivery_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Remembers the App installation a repository's deliveries come through, and its
    /// id and visibility as the latest delivery says.
    pub async fn set_repo_installation(&mut self, seen: &RepoSeen) -> Result<()> {
        query(
            "INSERT INTO repo_installations (repo, installation_id, repo_id, private) VALUES (?, ?, ?, ?) \
             ON CONFLICT (repo) DO UPDATE SET installation_id = excluded.installation_id, \
             repo_id = coalesce(excluded.repo_id, repo_installations.repo_id), \
             private = coalesce(excluded.private, repo_installations.private)",
        )
        .bind(&seen.repo)
        .bind(seen.installation_id)
        .bind(seen.repo_id)
        .bind(seen.private.map(i64::from))
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

/// A repository as a delivery names it, with the installation it came through.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoSeen {
    pub repo: String,
    pub installation_id: i64,
    pub repo_id: Option<i64>,
    pub private: Option<bool>,
}

/// What the deliveries said of a served repository.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ServedRepo {
    pub installation_id: i64,
    pub repo_id: Option<i64>,
    #[sqlx(try_from = "super::MaybeFlag")]
    pub private: Option<bool>,
}

impl Db {
    /// A served repository's installation, id and visibility, as deliveries named them.
    pub async fn served_repo(&self, repo: &str) -> Result<Option<ServedRepo>> {
        query_as("SELECT installation_id, repo_id, private FROM repo_installations WHERE repo = ?")
            .bind(repo)
            .fetch_optional(&self.pool)
            .await
    }

    /// Deliveries with this status, newest first.
    pub async fn deliveries(&self, status: &str, limit: u32) -> Result<Vec<DeliverySummary>> {
        query_as(
            "SELECT delivery_id, event, action, repo, received_ns, error FROM deliveries \
             WHERE status = ? ORDER BY received_ns DESC, delivery_id DESC LIMIT ?",
        )
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
    }

    /// The App installation a repository's deliveries came through.
    pub async fn repo_installation(&self, repo: &str) -> Result<Option<i64>> {
        query_scalar("SELECT installation_id FROM repo_installations WHERE repo = ?")
            .bind(repo)
            .fetch_optional(&self.pool)
            .await
    }
}

/// Which stored deliveries `tracelink deliveries replay` applies again (a claim a
/// replica holds on them is dropped: the replica will find the delivery taken).
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// `failed`, `processed` or `pending`; `None`: every status.
    pub status: Option<String>,
    /// Received at or after (ns).
    pub since_ns: Option<i64>,
    pub id: Option<String>,
}

impl Conn {
    /// Marks the chosen deliveries pending again, with their attempts reset, for the
    /// processor to apply through the current code; returns how many.
    pub async fn replay_deliveries(&mut self, r: &Replay) -> Result<u64> {
        replay(&mut self.conn, r).await
    }
}

/// [`Conn::replay_deliveries`] inside a writer transaction (the admin endpoint).
pub(super) async fn replay(conn: &mut AnyConnection, r: &Replay) -> Result<u64> {
    let done = query(
        "UPDATE deliveries SET status = 'pending', attempts = 0, retry_ns = 0, error = NULL, \
         lease_owner = NULL, lease_until_ns = NULL WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR received_ns >= ?2) \
         AND (?3 IS NULL OR delivery_id = ?3) AND payload IS NOT NULL",
    )
    .bind(r.status.as_deref())
    .bind(r.since_ns)
    .bind(r.id.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
