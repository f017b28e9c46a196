//! The GitHub App created from the manifest (`/setup/app`): stored once, read at start
//! by every replica. Its secrets arrive sealed ([`crate::crypto::seal`]).

use super::{Conn, Db, Result, query, query_as};

/// The stored App.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredApp {
    pub app_id: i64,
    pub slug: String,
    pub html_url: String,
    pub private_key_sealed: Vec<u8>,
    pub webhook_secret_sealed: Vec<u8>,
}

impl Db {
    /// The App created from the manifest, if one was.
    pub async fn github_app_stored(&self) -> Result<Option<StoredApp>> {
        query_as(
            "SELECT app_id, slug, html_url, private_key_sealed, webhook_secret_sealed \
             FROM github_app WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await
    }
}

impl Conn {
    /// Stores the App unless one is stored already; whether this one was.
    pub async fn store_github_app(&mut self, app: &StoredApp, now_ns: i64) -> Result<bool> {
        let done = query(
            "INSERT INTO github_app (id, app_id, slug, html_url, private_key_sealed, \
             webhook_secret_sealed, created_ns) VALUES (1, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(app.app_id)
        .bind(&app.slug)
        .bind(&app.html_url)
        .bind(&app.private_key_sealed)
        .bind(&app.webhook_secret_sealed)
        .bind(now_ns)
        .execute(&mut self.conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
