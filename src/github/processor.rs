//! Applies stored deliveries to the graph, off the request path. Deliveries are applied
//! in the order received; a crash between storing and applying only delays the work,
//! since pending deliveries are picked up again at start-up.
//!
//! Every replica runs a processor. Each claims a group of pending deliveries for a
//! lease period and applies it; the transaction that applies a delivery first checks
//! that the claim is still its own, so a delivery is applied once even when a slow
//! replica's claim expired meanwhile. A replica that dies leaves its claims to expire.
//! Applying is order-tolerant (every upsert keeps the newest version GitHub sent), so
//! groups claimed by two replicas give what one process gives; their transactions run
//! one at a time ([`Conn::begin_apply`]), since side by side they deadlocked.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::backfill;
use super::events::Event;
use super::plan;
use crate::graph::incidents;
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
    /// Where an incident naming no environment happened (`--incident-environment`).
    pub incident_environment: String,
    /// The backfill worker, woken when an installation queued backfills (`None`: no App
    /// configured; they wait in the database).
    pub backfill: Option<Arc<Notify>>,
    /// Whose claims this processor takes, and for how long.
    pub replica: crate::replica::Replica,
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
                        // A lost connection is replaced for the retry.
                        if let Err(e) = conn.recover().await {
                            tracing::error!(error = %format!("{e:#}"), "the database cannot be reached");
                        }
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
/// they may change; returns how many were finished. When the group fails to apply, each
/// delivery is applied on its own, so one that cannot be applied (a fault, a bug) never
/// holds the others back: it is tried again later, and set aside as `failed` with its
/// error after [`MAX_ATTEMPTS`] tries (`tracelink deliveries replay` brings it back).
async fn process_pending(conn: &mut Conn, cfg: &ProcessorConfig) -> store::Result<u64> {
    let now = now_ns();
    let owner = &*cfg.replica.id;
    let pending = conn
        .claim_deliveries(owner, now, cfg.replica.until(now), BATCH)
        .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let (mut stale, mut queued, mut backfills): (Stale, std::collections::BTreeSet<_>, usize);
    // Two replicas writing the same rows at once can deadlock on PostgreSQL; the victim
    // runs again, not counted as a failed attempt.
    let mut tries = 0;
    let group = loop {
        (stale, queued, backfills) = Default::default();
        tries += 1;
        match apply_group(
            conn,
            cfg,
            &pending,
            now,
            &mut stale,
            &mut queued,
            &mut backfills,
        )
        .await
        {
            Err(e) if store::is_transient(&e) && tries < TRANSIENT_TRIES => {
                tracing::debug!(error = %e, "applying a group of deliveries met another replica's writes; again");
            }
            r => break r,
        }
    };
    let finished = match group {
        Ok(taken) => taken,
        Err(e) => {
            tracing::warn!(error = %e, "applying a group of deliveries failed; applying them one by one");
            let mut finished = 0;
            for d in &pending {
                let (mut one_stale, mut one_queued) = (Stale::default(), Default::default());
                let mut one_backfills = 0;
                match apply_group(
                    conn,
                    cfg,
                    std::slice::from_ref(d),
                    now,
                    &mut one_stale,
                    &mut one_queued,
                    &mut one_backfills,
                )
                .await
                {
                    Ok(taken) => {
                        backfills += one_backfills;
                        stale.absorb(one_stale);
                        queued.extend(one_queued);
                        finished += taken;
                    }
                    Err(e) => {
                        let mut tx = conn.begin_write().await?;
                        let gave_up = tx
                            .delivery_attempt_failed(
                                &d.delivery_id,
                                owner,
                                &e.to_string(),
                                MAX_ATTEMPTS,
                                now,
                            )
                            .await?;
                        tx.commit().await?;
                        if gave_up {
                            tracing::error!(delivery = d.delivery_id, error = %e, "a delivery could not be applied after {MAX_ATTEMPTS} attempts; set aside as failed");
                            finished += 1;
                        } else {
                            tracing::warn!(delivery = d.delivery_id, error = %e, "a delivery could not be applied; trying again later");
                        }
                    }
                }
            }
            finished
        }
    };
    if backfills > 0
        && let Some(w) = &cfg.backfill
    {
        w.notify_one();
    }
    // The links of what arrived, and of the merge results that inherit them.
    stale.merge_results_of(&cfg.db, &queued).await?;
    if !stale.is_empty() {
        linker::relink(&cfg.db, conn, &cfg.links, stale, now).await?;
    }
    Ok(finished)
}

/// Tries before a delivery that cannot be applied is set aside.
pub const MAX_ATTEMPTS: i64 = 3;
/// Runs of a group that lost a deadlock to another replica before it counts as failed.
const TRANSIENT_TRIES: usize = 3;

/// Applies these deliveries in one transaction (all or nothing); returns how many were
/// still this replica's to apply.
async fn apply_group(
    conn: &mut Conn,
    cfg: &ProcessorConfig,
    pending: &[crate::store::deliveries::PendingDelivery],
    now: i64,
    stale: &mut Stale,
    queued: &mut std::collections::BTreeSet<crate::store::reports::PullRef>,
    backfills: &mut usize,
) -> store::Result<u64> {
    let mut tx = conn.begin_apply().await?;
    let mut taken = 0;
    for d in pending {
        if !tx.take_delivery(&d.delivery_id, &cfg.replica.id).await? {
            // Its claim expired and another replica took it (or a replay reset it).
            tracing::debug!(
                delivery = d.delivery_id,
                "a claimed delivery was taken by another replica"
            );
            continue;
        }
        taken += 1;
        let ops =
            Event::parse(&d.event, &d.payload).and_then(|e| plan::plan(&e, &cfg.incident_label));
        match ops {
            Ok(ops) => {
                let prs = apply_ops(&mut tx, &ops, now, &cfg.incident_environment).await?;
                if let Some(seen) = installation_of(&d.payload) {
                    tx.set_repo_installation(&seen).await?;
                }
                *backfills += queue_backfills(&mut tx, &d.event, &d.payload, &ops, now).await?;
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
                queued.extend(prs.iter().cloned());
                tx.enqueue_reports(&prs, now, now + cfg.debounce.as_nanos() as i64)
                    .await?;
            }
            Err(e) => tx.delivery_failed(&d.delivery_id, &e.to_string()).await?,
        }
    }
    tx.commit().await?;
    Ok(taken)
}

/// An installation created, or repositories added to one: a backfill of each repository
/// it names is asked for (in the delivery's transaction), reaching back
/// [`backfill::INSTALLATION_SINCE`]. Returns how many.
async fn queue_backfills(
    tx: &mut store::Tx<'_>,
    event: &str,
    payload: &[u8],
    ops: &[Op],
    now: i64,
) -> store::Result<usize> {
    let action = super::events::envelope(event, payload)
        .ok()
        .and_then(|(action, _)| action);
    let adds = matches!(
        (event, action.as_deref()),
        ("installation", Some("created")) | ("installation_repositories", Some("added"))
    );
    if !adds {
        return Ok(0);
    }
    let since = backfill::since_ns(now, backfill::INSTALLATION_SINCE);
    let mut n = 0;
    for op in ops {
        if let Op::InstallationRepo {
            installation_id,
            repo,
            in_scope: true,
            ..
        } = op
        {
            tx.request_backfill(repo, Some(*installation_id), since, now)
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes one delivery's (or one fetched page's) ops and returns the pull requests whose
/// reports they may change: those the upserts touch, and for each incident those its
/// report showed on before the write and those it shows on after (an edited root cause
/// moves it).
pub async fn apply_ops(
    tx: &mut store::Tx<'_>,
    ops: &[Op],
    now: i64,
    incident_environment: &str,
) -> store::Result<std::collections::BTreeSet<crate::store::reports::PullRef>> {
    let incidents: Vec<(&str, i64)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Incident(i) => Some((i.repo.as_str(), i.number)),
            _ => None,
        })
        .collect();
    let mut prs = std::collections::BTreeSet::new();
    for (repo, number) in &incidents {
        prs.extend(incidents::reach(tx, repo, *number, incident_environment).await?);
    }
    tx.apply(ops, now).await?;
    prs.extend(tx.affected_by(ops).await?);
    for (repo, number) in &incidents {
        prs.extend(incidents::reach(tx, repo, *number, incident_environment).await?);
    }
    Ok(prs)
}

/// The repository and the App installation a delivery came through.
fn installation_of(payload: &[u8]) -> Option<crate::store::deliveries::RepoSeen> {
    #[derive(serde::Deserialize)]
    struct Inst {
        id: i64,
    }
    #[derive(serde::Deserialize)]
    struct Repo {
        full_name: String,
        id: Option<i64>,
        private: Option<bool>,
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        installation: Option<Inst>,
        repository: Option<Repo>,
    }
    let e: Envelope = serde_json::from_slice(payload).ok()?;
    let repo = e.repository?;
    Some(crate::store::deliveries::RepoSeen {
        repo: repo.full_name.to_ascii_lowercase(),
        installation_id: e.installation?.id,
        repo_id: repo.id,
        private: repo.private,
    })
}
