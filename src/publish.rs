//! Keeps every pull request's comment and check run current. Whatever may change a
//! report (a delivery, new session telemetry) queues the PR with a due time one debounce
//! period ahead; the publisher rebuilds due reports, fetches the patches it needs from the
//! API (cached by SHA), and writes to GitHub only when the comment's content changed: at
//! most one write per PR per debounce window.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, mpsc, watch};

use crate::github::app::{AppSlot, CommentOutcome, FilePatch, GithubApp, GithubError};
use crate::graph::linker::{self, Stale};
use crate::ids::{PrNumber, RepoName};
use crate::impact::ReportContext;
use crate::impact::pull::{Built, build};
use crate::metrics::diff::patch_id;
use crate::report::markdown::{MARKER, carries_personal_data, render_for, summary};
use crate::store::reports::PullRef;
use crate::store::{self, Conn, Db, Tx};
use crate::time::now_ns;

/// Back-off before a failed publication is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Commit patches fetched per pull request (GitHub lists at most 250 commits).
const MAX_PATCHES: usize = 250;
/// Reports published per round, at most.
const ROUND: i64 = 32;

/// Queues pull requests for publication `debounce` from now (an earlier due time stays).
pub async fn enqueue(
    tx: &mut Tx<'_>,
    prs: &BTreeSet<PullRef>,
    debounce: Duration,
) -> store::Result<()> {
    let now = now_ns();
    tx.enqueue_reports(prs, now, now + debounce.as_nanos() as i64)
        .await
}

/// The publisher's settings.
pub struct Publisher {
    pub ctx: Arc<ReportContext>,
    /// Read per report: an App created while running posts from its next report.
    pub app: AppSlot,
    pub debounce: Duration,
    pub budget: WriteBudget,
    /// Whose claims on queued reports this publisher takes, and for how long.
    pub replica: crate::replica::Replica,
}

/// GitHub allows an App 80 content-creating requests a minute and 500 an hour; the
/// publisher keeps to them across all pull requests, deferring reports rather than being
/// refused. The budget is kept in the database, so replicas share it.
pub struct WriteBudget {
    /// `(max, window)`: at most `max` writes in any `window`.
    limits: Vec<(i64, i64)>,
}

impl Default for WriteBudget {
    fn default() -> Self {
        Self::new(&[
            (80, Duration::from_secs(60)),
            (500, Duration::from_secs(3600)),
        ])
    }
}

impl WriteBudget {
    pub fn new(limits: &[(usize, Duration)]) -> Self {
        Self {
            limits: limits
                .iter()
                .map(|(max, window)| {
                    (
                        i64::try_from(*max).unwrap_or(i64::MAX),
                        i64::try_from(window.as_nanos()).unwrap_or(i64::MAX),
                    )
                })
                .collect(),
        }
    }

    /// Takes `n` writes, or says how long until they are available.
    pub async fn take(&self, conn: &mut Conn, n: usize) -> store::Result<Result<(), Duration>> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Ok(
            match conn.take_github_writes(now_ns(), n, &self.limits).await? {
                None => Ok(()),
                Some(wait) => Err(Duration::from_nanos(wait.max(0) as u64)),
            },
        )
    }
}

/// What publishing one report came to.
enum Published {
    Done,
    /// The write budget is spent: try again after this long.
    Deferred(Duration),
    /// This replica's claim expired before it wrote: another replica has the report.
    Lost,
}

/// Wakes the publisher and tells it which sessions changed.
#[derive(Clone)]
pub struct PublisherHandle {
    pub wake: Arc<Notify>,
    /// Reports published (or found unchanged) so far.
    pub published: watch::Receiver<u64>,
    /// Rounds of linking again what changed sessions may have produced, so far.
    pub relinked: watch::Receiver<u64>,
}

pub fn spawn(
    publisher: Publisher,
    mut conn: Conn,
    readers: Db,
    mut sessions: mpsc::Receiver<Vec<i64>>,
    mut stop: watch::Receiver<bool>,
) -> (PublisherHandle, tokio::task::JoinHandle<()>) {
    let wake = Arc::new(Notify::new());
    let (published_tx, published) = watch::channel(0u64);
    let (relinked_tx, relinked) = watch::channel(0u64);
    let handle = PublisherHandle {
        wake: wake.clone(),
        published,
        relinked,
    };
    let task = tokio::spawn(async move {
        loop {
            // Sessions the writer queued for linking again (the notices only wake this
            // task: the queue itself is durable, so a restart resumes it).
            while sessions.try_recv().is_ok() {}
            relink_queued(&mut conn, &readers, &publisher).await;
            relinked_tx.send_modify(|c| *c += 1);
            let next = match run_due(&publisher, &mut conn, &readers).await {
                Ok((n, next)) => {
                    if n > 0 {
                        published_tx.send_modify(|c| *c += n);
                    }
                    next
                }
                Err(e) => {
                    tracing::error!(error = %e, "publishing reports failed");
                    // A lost connection is replaced for the retry.
                    if let Err(e) = conn.recover().await {
                        tracing::error!(error = %format!("{e:#}"), "the database cannot be reached");
                    }
                    Some(RETRY_AFTER)
                }
            };
            if *stop.borrow() {
                break;
            }
            let wait = next.unwrap_or(Duration::from_secs(60));
            tokio::select! {
                _ = wake.notified() => {}
                Some(_) = sessions.recv() => {
                    relink_queued(&mut conn, &readers, &publisher).await;
                    relinked_tx.send_modify(|c| *c += 1);
                }
                _ = stop.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
    (handle, task)
}

/// Links again what the queued sessions may have produced, and queues the reports they
/// may change.
async fn relink_queued(conn: &mut Conn, readers: &Db, publisher: &Publisher) {
    let debounce = publisher.debounce.as_nanos() as i64;
    if let Err(e) = linker::drain_queue(readers, conn, &publisher.ctx.links, debounce).await {
        tracing::error!(error = %e, "linking the commits of changed sessions failed; retrying next round");
    }
}

/// Publishes every due report; returns how many, and when the next one is due.
async fn run_due(
    publisher: &Publisher,
    conn: &mut Conn,
    readers: &Db,
) -> anyhow::Result<(u64, Option<Duration>)> {
    let now = now_ns();
    let owner = &*publisher.replica.id;
    let due = conn
        .claim_reports(owner, now, publisher.replica.until(now), ROUND)
        .await?;
    let mut done = 0;
    for d in due {
        let outcome = publish_one(publisher, conn, readers, &d.repo, d.number).await;
        match outcome {
            Ok(Published::Deferred(wait)) => {
                conn.defer_report(&d.repo, d.number, owner, now + wait.as_nanos() as i64)
                    .await?;
            }
            Ok(Published::Done) => {
                // Touched again while this was being published: it stays queued.
                conn.report_done(&d.repo, d.number, owner, d.touched_ns)
                    .await?;
                done += 1;
            }
            Ok(Published::Lost) => {
                tracing::warn!(
                    repo = d.repo,
                    number = d.number,
                    "the claim on a report expired while it was being built; another replica publishes it"
                );
            }
            Err(e) => {
                let wait = retry_wait(&e);
                tracing::warn!(repo = d.repo, number = d.number, error = %e, retry_in_secs = wait.as_secs(), "publishing the report failed; retrying later");
                conn.defer_report(&d.repo, d.number, owner, now + wait.as_nanos() as i64)
                    .await?;
            }
        }
    }
    let mut tx = conn.begin().await?;
    let next = tx.next_due().await?;
    tx.commit().await?;
    Ok((
        done,
        next.map(|n| Duration::from_nanos((n - now_ns()).max(0) as u64)),
    ))
}

/// How long to wait before trying a failed publication again: the pause GitHub asked
/// for when it rate-limited the App (its reset or `retry-after`), else [`RETRY_AFTER`].
fn retry_wait(e: &anyhow::Error) -> Duration {
    e.chain()
        .find_map(|c| match c.downcast_ref::<GithubError>() {
            Some(GithubError::RateLimited { wait_secs, .. }) => {
                Some(Duration::from_secs((*wait_secs).max(1)))
            }
            _ => None,
        })
        .unwrap_or(RETRY_AFTER)
}

fn files_json(files: &[FilePatch]) -> String {
    serde_json::to_string(
        &files
            .iter()
            .map(|f| {
                serde_json::json!({"filename": f.filename, "status": f.status, "additions": f.additions,
                    "deletions": f.deletions, "patch": f.patch})
            })
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into())
}

/// Fetches what the report needs from the API: the PR's commits and patches (per head),
/// and the patches of agent-linked commits (per SHA, never again).
async fn fetch(
    app: &GithubApp,
    conn: &mut Conn,
    readers: &Db,
    installation: u64,
    repo: &str,
    number: i64,
    head_sha: &str,
) -> anyhow::Result<()> {
    let cached = readers.cached_pull_head(repo, number).await?;
    if cached.as_deref() != Some(head_sha) {
        let shas = app.pull_commits(installation, repo, number as u64).await?;
        let files = app.pull_files(installation, repo, number as u64).await?;
        let mut tx = conn.begin().await?;
        tx.cache_pull_request(repo, number, head_sha, &shas, &files_json(&files))
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn publish_one(
    publisher: &Publisher,
    conn: &mut Conn,
    readers: &Db,
    repo: &str,
    number: i64,
) -> anyhow::Result<Published> {
    let Ok(repo_name) = RepoName::parse(repo) else {
        tracing::warn!(repo, "a queued report names no valid repository; dropped");
        return Ok(Published::Done);
    };
    let installation = readers.repo_installation(repo).await?;
    let Some(pr) = readers.pull_request(repo, number).await? else {
        return Ok(Published::Done);
    };
    let app = publisher.app.get();
    if let (Some(app), Some(inst)) = (&app, installation) {
        fetch(app, conn, readers, inst as u64, repo, number, &pr.head_sha).await?;
    }
    let shas = readers.pull_commits(repo, number).await?.shas;
    // Every commit's patch, once per SHA: agent-written lines, cost weights, and patch
    // ids (an amended or rebased copy inherits its original's links). A commit GitHub
    // cannot give (gone after a force-push) is skipped, unless the report needs it.
    let mut unfetched: BTreeSet<String> = BTreeSet::new();
    if let (Some(app), Some(inst)) = (&app, installation) {
        let wanted: Vec<String> = shas.iter().take(MAX_PATCHES).cloned().collect();
        let cached: BTreeSet<String> = readers
            .commit_patches(repo, &wanted)
            .await?
            .into_iter()
            .map(|(sha, _)| sha)
            .collect();
        for sha in wanted.iter().filter(|s| !cached.contains(*s)) {
            match app.commit_files(inst as u64, repo, sha).await {
                Ok(files) => {
                    let id = patch_id(
                        files
                            .iter()
                            .map(|f| (f.filename.as_str(), f.patch.as_deref())),
                    );
                    let mut tx = conn.begin().await?;
                    tx.cache_commit_patch(repo, sha, &files_json(&files), id.as_deref())
                        .await?;
                    tx.commit().await?;
                }
                Err(e) => {
                    tracing::debug!(repo, sha, error = %e, "no patch for a pull request's commit");
                    unfetched.insert(sha.clone());
                }
            }
        }
    }
    // The PR's commits (the API list may name commits no push delivered) and its merge
    // result, linked now: the report reads stored links.
    let mut stale = Stale::default();
    for sha in &shas {
        stale.commit(repo, sha);
    }
    stale
        .merge_results_of(readers, &BTreeSet::from([(repo.to_string(), number)]))
        .await?;
    linker::relink(readers, conn, &publisher.ctx.links, stale, now_ns()).await?;
    let Some(built) = build(readers, &publisher.ctx, &repo_name, PrNumber(number)).await? else {
        return Ok(Published::Done);
    };
    // Agent-written lines need the patches of agent-assisted commits: try again later.
    if let Some(c) = built
        .report
        .commits
        .iter()
        .find(|c| c.agent_assisted && unfetched.contains(&c.sha))
    {
        anyhow::bail!(
            "the patch of agent-assisted commit {} could not be fetched",
            c.sha
        );
    }
    let Built { report } = built;
    // What organisation analytics counts of it, whatever becomes of the comment.
    conn.put_pull_fact(&crate::impact::analytics::pull_fact(&report), now_ns())
        .await?;
    let view = publisher.ctx.comment_view(readers, repo).await;
    let body = render_for(&report, view);
    let digest = crate::ids::encode_hex(&Sha256::digest(body.as_bytes()));
    let last = readers.published(repo, number).await?;
    if last.as_ref().map(|p| p.digest.as_str()) == Some(digest.as_str()) {
        return Ok(Published::Done);
    }
    let (Some(app), Some(inst)) = (&app, installation) else {
        // No App configured, or no installation known for the repository: the report is
        // served by the API and the CLI only.
        return Ok(Published::Done);
    };
    // The claim is renewed right before writing, so the writes fall inside it: never
    // two replicas writing one pull request's comment.
    let now = now_ns();
    if !conn
        .renew_report(
            repo,
            number,
            &publisher.replica.id,
            publisher.replica.until(now),
        )
        .await?
    {
        return Ok(Published::Lost);
    }
    // A comment and a check run: at most two content-creating requests.
    if let Err(wait) = publisher.budget.take(conn, 2).await? {
        return Ok(Published::Deferred(wait));
    }
    let outcome = app
        .upsert_comment(
            inst as u64,
            repo,
            number as u64,
            MARKER,
            &body,
            &carries_personal_data,
        )
        .await?;
    if let CommentOutcome::Replaced { old, id } = outcome {
        tracing::info!(
            repo,
            number,
            old,
            id,
            "replaced a report comment that held personal data"
        );
    }
    let comment_id = match outcome {
        CommentOutcome::Created { id }
        | CommentOutcome::Updated { id }
        | CommentOutcome::Replaced { id, .. }
        | CommentOutcome::Unchanged { id } => id,
    };
    let title: String = report.headline.chars().take(200).collect();
    app.upsert_check_run(
        inst as u64,
        repo,
        &report.head_sha,
        "tracelink",
        &title,
        &summary(&report, view),
        "neutral",
    )
    .await?;
    let mut tx = conn.begin().await?;
    tx.set_published(repo, number, &digest, comment_id as i64, now_ns())
        .await?;
    tx.commit().await?;
    Ok(Published::Done)
}
