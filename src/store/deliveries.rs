//! Webhook deliveries as received: stored once each before they are acknowledged, then
//! applied by the processor (`pending` → `processed`, or `failed` with the reason).

use sqlx::SqliteConnection;

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
pub(super) async fn write(conn: &mut SqliteConnection, d: &DeliveryRow) -> Result<Written> {
    let n = sqlx::query(
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

impl Conn {
    /// Up to `limit` pending deliveries, oldest first.
    pub async fn pending_deliveries(&mut self, limit: i64) -> Result<Vec<PendingDelivery>> {
        sqlx::query_as(
            "SELECT delivery_id, event, payload FROM deliveries WHERE status = 'pending' \
             ORDER BY received_ns, delivery_id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut self.conn)
        .await
    }
}

impl Tx<'_> {
    pub async fn delivery_processed(&mut self, delivery_id: &str) -> Result<()> {
        sqlx::query("UPDATE deliveries SET status = 'processed' WHERE delivery_id = ?")
            .bind(delivery_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn delivery_failed(&mut self, delivery_id: &str, error: &str) -> Result<()> {
        sqlx::query("UPDATE deliveries SET status = 'failed', error = ? WHERE delivery_id = ?")
            .bind(error)
            .bind(delivery_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Remembers the App installation a repository's deliveries come through.
    pub async fn set_repo_installation(&mut self, repo: &str, installation_id: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO repo_installations (repo, installation_id) VALUES (?, ?) \
             ON CONFLICT (repo) DO UPDATE SET installation_id = excluded.installation_id",
        )
        .bind(repo)
        .bind(installation_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

impl Db {
    /// Deliveries with this status, newest first.
    pub async fn deliveries(&self, status: &str, limit: u32) -> Result<Vec<DeliverySummary>> {
        sqlx::query_as(
            "SELECT delivery_id, event, action, repo, received_ns, error FROM deliveries \
             WHERE status = ? ORDER BY received_ns DESC LIMIT ?",
        )
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
    }

    /// The App installation a repository's deliveries came through.
    pub async fn repo_installation(&self, repo: &str) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT installation_id FROM repo_installations WHERE repo = ?")
            .bind(repo)
            .fetch_optional(&self.pool)
            .await
    }
}
