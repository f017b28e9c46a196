//! Applies stored deliveries to the graph, off the request path. Deliveries are applied
//! in the order received; a crash between storing and applying only delays the work,
//! since pending deliveries are picked up again at start-up.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::events::Event;
use super::plan;
use crate::graph::linker::{self, Stale};
use crate::graph::links::LinkConfig;
use crate::store::github::Op;
use crate::store::{self, Conn, Db};
use crate::time::now_ns;

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
    /// The read side, for linking the commits a delivery brought.
    pub db: Db,
    pub links: LinkConfig,
}

pub fn spawn(
    conn: Conn,
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

/// Applies up to [`BATCH`] pending deliveries in one transaction, and queues the reports
/// they may change; returns how many were finished.
async fn process_pending(conn: &mut Conn, cfg: &ProcessorConfig) -> store::Result<u64> {
    let pending = conn.pending_deliveries(BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let now = now_ns();
    let mut stale = Stale::default();
    let mut queued = std::collections::BTreeSet::new();
    let mut tx = conn.begin().await?;
    for d in &pending {
        let ops =
            Event::parse(&d.event, &d.payload).and_then(|e| plan::plan(&e, &cfg.incident_label));
        match ops {
            Ok(ops) => {
                tx.apply(&ops, now).await?;
                if let Some((repo, installation)) = installation_of(&d.payload) {
                    tx.set_repo_installation(&repo, installation).await?;
                }
                for op in &ops {
                    match op {
                        Op::Commit(c) => stale.commit(&c.repo, c.sha.as_str()),
                        Op::Pull(p) if p.merged => {
                            if let Some(m) = &p.merge_commit_sha {
                                stale.commit(&p.repo, m);
                            }
                        }
                        _ => {}
                    }
                }
                let prs = tx.affected_by(&ops, now).await?;
                queued.extend(prs.iter().cloned());
                tx.enqueue_reports(&prs, now, now + cfg.debounce.as_nanos() as i64)
                    .await?;
                tx.delivery_processed(&d.delivery_id).await?;
            }
            Err(e) => tx.delivery_failed(&d.delivery_id, &e.to_string()).await?,
        }
    }
    tx.commit().await?;
    // The links of what arrived, and of the merge results that inherit them.
    stale.merge_results_of(&cfg.db, &queued).await?;
    if !stale.is_empty() {
        linker::relink(&cfg.db, conn, &cfg.links, stale, now).await?;
    }
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
