//! Applies stored deliveries to the graph, off the request path. Deliveries are applied
//! in the order received; a crash between storing and applying only delays the work,
//! since pending deliveries are picked up again at start-up.

use std::sync::Arc;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{Notify, watch};

use super::events::Event;
use super::{apply, plan};

/// Deliveries applied per transaction.
const BATCH: i64 = 64;

/// Handle to the processor: wake it, and watch how many deliveries it has finished.
#[derive(Clone)]
pub struct Processor {
    pub wake: Arc<Notify>,
    pub finished: watch::Receiver<u64>,
}

/// What the processor needs besides its connection.
pub struct ProcessorConfig {
    pub incident_label: String,
    /// Reports of affected pull requests are queued this far ahead.
    pub debounce: std::time::Duration,
    /// Woken when reports were queued.
    pub publisher: Arc<Notify>,
}

pub fn spawn(
    conn: SqliteConnection,
    cfg: ProcessorConfig,
    mut stop: watch::Receiver<bool>,
) -> (Processor, tokio::task::JoinHandle<()>) {
    let wake = Arc::new(Notify::new());
    let (finished_tx, finished) = watch::channel(0u64);
    let handle = Processor {
        wake: wake.clone(),
        finished,
    };
    let task = tokio::spawn(async move {
        let mut conn = conn;
        loop {
            loop {
                match process_pending(&mut conn, &cfg).await {
                    Ok(0) => break,
                    Ok(n) => {
                        finished_tx.send_modify(|c| *c += n);
                        cfg.publisher.notify_one();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "applying webhook deliveries failed; retrying shortly");
                        break;
                    }
                }
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        }
        let _ = conn.close().await;
    });
    (handle, task)
}

/// Applies up to [`BATCH`] pending deliveries; returns how many were finished.
async fn process_pending(conn: &mut SqliteConnection, cfg: &ProcessorConfig) -> sqlx::Result<u64> {
    let pending: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT delivery_id, event, payload FROM deliveries WHERE status = 'pending' \
         ORDER BY received_ns, delivery_id LIMIT ?",
    )
    .bind(BATCH)
    .fetch_all(&mut *conn)
    .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let mut tx = conn.begin().await?;
    for (id, event, payload) in &pending {
        let ops = Event::parse(event, payload).and_then(|e| plan::plan(&e, &cfg.incident_label));
        match ops {
            Ok(ops) => {
                apply::execute(&mut tx, &ops, now).await?;
                if let Some((repo, installation)) = installation_of(payload) {
                    sqlx::query(
                        "INSERT OR REPLACE INTO repo_installations (repo, installation_id) VALUES (?, ?)",
                    )
                    .bind(repo)
                    .bind(installation)
                    .execute(&mut *tx)
                    .await?;
                }
                let prs = crate::report::publish::affected_by(&mut tx, &ops).await?;
                crate::report::publish::enqueue(&mut tx, &prs, cfg.debounce).await?;
                sqlx::query("UPDATE deliveries SET status = 'processed' WHERE delivery_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            Err(e) => {
                sqlx::query(
                    "UPDATE deliveries SET status = 'failed', error = ? WHERE delivery_id = ?",
                )
                .bind(e.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(pending.len() as u64)
}

/// The repository and the App installation a delivery came through.
fn installation_of(payload: &[u8]) -> Option<(String, i64)> {
    #[derive(serde::Deserialize)]
    struct Inst {
        id: i64,
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        installation: Option<Inst>,
        repository: Option<super::events::Repository>,
    }
    let e: Envelope = serde_json::from_slice(payload).ok()?;
    Some((
        e.repository?.full_name.to_ascii_lowercase(),
        e.installation?.id,
    ))
}
