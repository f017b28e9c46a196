//! Backfill: a repository's recent history fetched from the GitHub API with the App's
//! installation token — pull requests updated since a time, their commits (with every
//! parent), the statuses and check runs at their heads, the default branch's commits,
//! deployments with their statuses, and issues carrying the incident label — and stored
//! as the same facts webhook deliveries of them write ([`pages`]), so ancestry, pull
//! request commit sets and DORA hold without tracelink having seen every push.
//!
//! - Resumable: every page is a row of the backfill's cursor, marked done in the
//!   transaction that stores what it held and the pages it leads to; a backfill that
//!   stops (process killed, GitHub failing) resumes at the first page not done.
//! - Conditional: each page's ETag is kept; the next backfill sends `If-None-Match`, and
//!   a 304 (free of rate limit) leads to the pages it led to before, storing nothing new.
//! - Within rate limits: every call goes through the App client's retries (429 and 403
//!   rate limits waited out up to a minute); a longer limit pauses the backfill until
//!   GitHub's reset (at most [`MAX_PAUSE`]), and when fewer than [`RESERVE`] requests are
//!   left in the window it pauses until the reset too, leaving them to report publishing.
//! - Reports: only open pull requests' reports are queued; a backfill does not comment on
//!   pull requests closed before tracelink was installed.
//!
//! One process runs a backfill at a time: it holds a lease on the backfill's row,
//! renewed at every page ([`LEASE`]).

pub mod pages;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};

use crate::github::app::{GithubApp, GithubError, Page};
use crate::graph::linker::{self, Stale};
use crate::graph::links::LinkConfig;
use crate::store::backfill::{BackfillRow, Fetch};
use crate::store::github::Op;
use crate::store::{Conn, Db};
use crate::time::now_ns;

/// How long a backfill's lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(120);
/// Requests left in the installation's rate-limit window below which a backfill waits for
/// the reset.
pub const RESERVE: u64 = 500;
/// The longest a backfill pauses for a rate limit; GitHub asking for longer fails it (it
/// resumes when asked again).
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);
/// How far back a backfill started by an installation event reaches.
pub const INSTALLATION_SINCE: Duration = Duration::from_secs(30 * 86_400);
/// At most one progress line per this long (and one at the end).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What a backfill needs besides the client and the database.
#[derive(Clone)]
pub struct BackfillConfig {
    pub incident_label: String,
    pub incident_environment: String,
    pub links: LinkConfig,
    /// Reports of open pull requests it touches are queued this far ahead.
    pub debounce: Duration,
    /// Woken when reports were queued (a running server's publisher).
    pub publisher: Option<Arc<Notify>>,
    /// `--pseudonymize-users`: addresses replaced in every page before it is read.
    pub pseudonyms: Option<Arc<crate::pseudonym::Pseudonyms>>,
}

/// How a backfill run ended.
#[derive(Debug)]
pub enum Ended {
    /// Every page is stored.
    Done(BackfillRow),
    /// The process is stopping: the lease is given back and it resumes later.
    Stopped,
}

/// The progress line of a backfill.
pub fn progress_line(b: &BackfillRow) -> String {
    format!(
        "backfill {}: {} of {} pages done ({} fetched, {} not modified), {}",
        b.repo,
        b.pages_done,
        b.pages_found,
        b.pages_fetched,
        b.pages_not_modified,
        match (b.state.as_str(), &b.error) {
            ("failed", Some(e)) => format!("failed: {e}"),
            (state, _) => state.to_string(),
        }
    )
}

/// Runs the claimed backfill `b` to its end (or until `stop`), calling `progress` with
/// its state every few seconds and at the end. A failure is recorded on the backfill (it
/// resumes when asked again) and returned.
pub async fn run(
    app: &GithubApp,
    conn: &mut Conn,
    db: &Db,
    cfg: &BackfillConfig,
    b: BackfillRow,
    stop: &mut watch::Receiver<bool>,
    progress: &mut (dyn FnMut(&BackfillRow) + Send),
) -> anyhow::Result<Ended> {
    let repo = b.repo.clone();
    match run_pages(app, conn, db, cfg, &b, stop, progress).await {
        Ok(Ended::Stopped) => {
            let mut tx = conn.begin_exclusive().await?;
            tx.release_backfill(&repo).await?;
            tx.commit().await?;
            Ok(Ended::Stopped)
        }
        Ok(Ended::Done(_)) => {
            let mut tx = conn.begin_exclusive().await?;
            tx.finish_backfill(&repo, None, now_ns()).await?;
            tx.commit().await?;
            let row = db
                .backfill(&repo)
                .await?
                .context("the backfill's row went away")?;
            progress(&row);
            Ok(Ended::Done(row))
        }
        Err(e) => {
            let why = format!("{e:#}");
            let mut tx = conn.begin_exclusive().await?;
            tx.finish_backfill(&repo, Some(&why), now_ns()).await?;
            tx.commit().await?;
            if let Some(row) = db.backfill(&repo).await? {
                progress(&row);
            }
            Err(e)
        }
    }
}

async fn run_pages(
    app: &GithubApp,
    conn: &mut Conn,
    db: &Db,
    cfg: &BackfillConfig,
    b: &BackfillRow,
    stop: &mut watch::Receiver<bool>,
    progress: &mut (dyn FnMut(&BackfillRow) + Send),
) -> anyhow::Result<Ended> {
    let repo = b.repo.as_str();
    anyhow::ensure!(
        pages::routable(repo),
        "repository {repo:?} is not \"owner/name\" as GitHub names them"
    );
    let scope = pages::Scope {
        repo: repo.to_string(),
        since_ns: b.since_ns,
        incident_label: cfg.incident_label.clone(),
    };
    let installation = installation_of(app, conn, b).await?;
    {
        let mut tx = conn.begin_exclusive().await?;
        if !tx.backfill_started(repo).await? {
            tx.add_backfill_pages(repo, &pages::seeds(&scope)).await?;
        }
        tx.commit().await?;
    }
    let mut last_progress = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            return Ok(Ended::Stopped);
        }
        let (next, cached) = {
            let mut tx = conn.begin_exclusive().await?;
            let next = tx.next_backfill_page(repo).await?;
            let cached = match &next {
                Some(p) => tx.cached_page(&p.route).await?,
                None => None,
            };
            tx.commit().await?;
            (next, cached)
        };
        let Some(page) = next else {
            return Ok(Ended::Done(b.clone()));
        };
        let fetched = match app
            .page_if_changed(
                installation,
                &page.route,
                cached.as_ref().map(|c| c.etag.as_str()),
            )
            .await
        {
            Ok(f) => f,
            Err(e) => match e.downcast_ref::<GithubError>() {
                Some(GithubError::RateLimited { wait_secs, .. })
                    if Duration::from_secs(*wait_secs) <= MAX_PAUSE =>
                {
                    tracing::warn!(
                        repo,
                        wait_secs,
                        "backfill rate limited by GitHub; pausing until the limit resets"
                    );
                    if pause(Duration::from_secs(*wait_secs), stop).await {
                        return Ok(Ended::Stopped);
                    }
                    continue;
                }
                _ => return Err(e),
            },
        };
        let (read, fetch) = match fetched.page {
            Page::NotModified => {
                let children = cached.map(|c| c.children).unwrap_or_default();
                (
                    pages::Read {
                        children,
                        ..Default::default()
                    },
                    Fetch::NotModified,
                )
            }
            Page::Fresh { body, next, etag } => {
                // Without anyone's address from here on, as a webhook payload.
                let body = match &cfg.pseudonyms {
                    Some(p) => String::from_utf8_lossy(&p.payload(body.as_bytes())).into_owned(),
                    None => body,
                };
                (
                    pages::read(&scope, &page, &body, next)?,
                    Fetch::Fresh { etag },
                )
            }
        };
        let now = now_ns();
        let mut tx = conn.begin_exclusive().await?;
        let prs =
            crate::github::processor::apply_ops(&mut tx, &read.ops, now, &cfg.incident_environment)
                .await?;
        if let Some((number, offset, shas)) = &read.pull_commits {
            tx.set_pull_commits_page(repo, *number, *offset, shas)
                .await?;
        }
        let open = tx.open_pulls(&prs).await?;
        tx.enqueue_reports(&open, now, now + cfg.debounce.as_nanos() as i64)
            .await?;
        tx.backfill_page_done(repo, &page.route, &fetch, &read.children, now)
            .await?;
        tx.renew_backfill_lease(repo, now + LEASE.as_nanos() as i64)
            .await?;
        tx.commit().await?;
        if !open.is_empty()
            && let Some(p) = &cfg.publisher
        {
            p.notify_one();
        }
        let mut stale = Stale::default();
        stale_of(&read.ops, &mut stale);
        if !stale.is_empty() {
            linker::relink(db, conn, &cfg.links, stale, now).await?;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY
            && let Some(row) = db.backfill(repo).await?
        {
            progress(&row);
            last_progress = tokio::time::Instant::now();
        }
        // Leave the rest of the window to report publishing.
        if let Some(wait) = reserve_wait(
            fetched.remaining,
            fetched.reset,
            chrono::Utc::now().timestamp(),
        ) {
            tracing::warn!(
                repo,
                remaining = fetched.remaining,
                wait_secs = wait.as_secs(),
                "backfill pausing: fewer than {RESERVE} GitHub requests left until the rate limit resets"
            );
            if pause(wait, stop).await {
                return Ok(Ended::Stopped);
            }
        }
    }
}

/// How long to pause after a page when GitHub says fewer than [`RESERVE`] requests are
/// left until its window resets (`reset`, Unix seconds): until a second after the reset,
/// at most [`MAX_PAUSE`]; `None` with more left or when GitHub said nothing.
fn reserve_wait(remaining: Option<u64>, reset: Option<i64>, now_unix: i64) -> Option<Duration> {
    let (remaining, reset) = (remaining?, reset?);
    (remaining < RESERVE).then(|| {
        let secs = u64::try_from(reset.saturating_sub(now_unix)).unwrap_or(0) + 1;
        Duration::from_secs(secs).min(MAX_PAUSE)
    })
}

/// The installation to read through: the backfill's, else the one deliveries named,
/// else GitHub's answer for the repository (kept on the backfill).
async fn installation_of(app: &GithubApp, conn: &mut Conn, b: &BackfillRow) -> anyhow::Result<u64> {
    if let Some(id) = b.installation_id {
        return u64::try_from(id).with_context(|| format!("installation id {id} is not valid"));
    }
    let mut tx = conn.begin_exclusive().await?;
    let known = tx.known_installation(&b.repo).await?;
    tx.commit().await?;
    let id = match known {
        Some(id) => id,
        None => i64::try_from(app.repo_installation(&b.repo).await?)
            .context("GitHub's installation id does not fit")?,
    };
    let mut tx = conn.begin_exclusive().await?;
    tx.set_backfill_installation(&b.repo, id).await?;
    tx.commit().await?;
    u64::try_from(id).with_context(|| format!("installation id {id} is not valid"))
}

/// The commits whose links these ops may change: the commits they write and the merge
/// results of merged pull requests.
fn stale_of(ops: &[Op], stale: &mut Stale) {
    for op in ops {
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
}

/// Sleeps `d`, or less when `stop` turns true; whether it did.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// Handle to a running server's backfill worker.
#[derive(Clone)]
pub struct Backfiller {
    pub wake: Arc<Notify>,
    /// How many backfill runs have ended (done or failed).
    pub ended: watch::Receiver<u64>,
}

/// The worker of a running server: runs queued backfills one at a time, oldest asked
/// first, and a running one whose process went away once its lease ran out.
pub fn spawn(
    app: Arc<GithubApp>,
    conn: Conn,
    db: Db,
    cfg: BackfillConfig,
    mut stop: watch::Receiver<bool>,
) -> (Backfiller, tokio::task::JoinHandle<()>) {
    let wake = Arc::new(Notify::new());
    let (ended_tx, ended) = watch::channel(0u64);
    let handle = Backfiller {
        wake: wake.clone(),
        ended,
    };
    let task = tokio::spawn(async move {
        let mut conn = conn;
        loop {
            if *stop.borrow() {
                break;
            }
            let now = now_ns();
            let claimed = async {
                let mut tx = conn.begin_exclusive().await?;
                let b = tx
                    .claim_backfill(None, now, now + LEASE.as_nanos() as i64)
                    .await?;
                tx.commit().await?;
                Ok::<_, crate::store::Error>(b)
            }
            .await;
            match claimed {
                Ok(Some(b)) => {
                    tracing::info!(repo = b.repo, "backfill starting");
                    let mut log = |row: &BackfillRow| tracing::info!("{}", progress_line(row));
                    match run(&app, &mut conn, &db, &cfg, b, &mut stop, &mut log).await {
                        Ok(Ended::Done(_)) => ended_tx.send_modify(|n| *n += 1),
                        Ok(Ended::Stopped) => {}
                        Err(e) => {
                            tracing::error!(
                                error = format!("{e:#}"),
                                "backfill failed; it resumes where it stopped when asked again"
                            );
                            ended_tx.send_modify(|n| *n += 1);
                        }
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "claiming a backfill failed; retrying shortly")
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
        let _ = conn.close().await;
    });
    (handle, task)
}

/// The start of a backfill reaching back `since` from `now_ns`: rounded down to a whole
/// UTC day (a whole hour for less than a day), so backfills asked for the same day list
/// the same pages and their ETags match.
pub fn since_ns(now_ns: i64, since: Duration) -> i64 {
    const HOUR: i64 = 3_600 * 1_000_000_000;
    const DAY: i64 = 24 * HOUR;
    let start = now_ns.saturating_sub(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX));
    let unit = if since.as_secs() >= 86_400 { DAY } else { HOUR };
    start.div_euclid(unit) * unit
}

/// How often `tracelink backfill` looks at a backfill another process runs.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// `tracelink backfill`: asks for a backfill of `repo` reaching back `since` (an
/// unfinished one resumes instead) and runs it in this process — or, while a running
/// server holds its lease, follows that one's progress until it ends, taking it over if
/// the lease runs out. `progress` gets its state every few seconds and at the end.
/// Returns the finished backfill; one that failed is an error saying why.
pub async fn here(
    store: crate::store::Store,
    app: &crate::github::app::AppConfig,
    cfg: &BackfillConfig,
    repo: &str,
    since: Duration,
    progress: &mut (dyn FnMut(&BackfillRow) + Send),
) -> anyhow::Result<BackfillRow> {
    let crate::store::Store {
        writer: mut conn,
        db,
        ..
    } = store;
    let now = now_ns();
    let mut tx = conn.begin_exclusive().await?;
    let asked = tx
        .request_backfill(repo, None, since_ns(now, since), now)
        .await?;
    tx.commit().await?;
    if asked.state == "running" {
        tracing::info!(repo, "resuming the unfinished backfill");
    }
    let client = GithubApp::new(app)?;
    let (_never, mut stop) = watch::channel(false);
    let mut followed: Option<(i64, i64)> = None;
    let ended = loop {
        let now = now_ns();
        let mut tx = conn.begin_exclusive().await?;
        let claimed = tx
            .claim_backfill(Some(repo), now, now + LEASE.as_nanos() as i64)
            .await?;
        tx.commit().await?;
        if let Some(b) = claimed {
            match run(&client, &mut conn, &db, cfg, b, &mut stop, progress).await? {
                Ended::Done(row) => break row,
                Ended::Stopped => anyhow::bail!("the backfill of {repo} was stopped"),
            }
        }
        // Another process holds it: follow its progress.
        let row = db
            .backfill(repo)
            .await?
            .with_context(|| format!("the backfill of {repo} went away"))?;
        match row.state.as_str() {
            "done" => {
                progress(&row);
                break row;
            }
            "failed" => {
                progress(&row);
                anyhow::bail!(
                    "the backfill of {repo} failed: {}",
                    row.error.as_deref().unwrap_or("no reason recorded")
                );
            }
            _ => {
                let seen = (row.pages_done, row.pages_found);
                if followed != Some(seen) {
                    if followed.is_none() {
                        tracing::info!(
                            repo,
                            "a running tracelink holds this backfill; following its progress"
                        );
                    }
                    progress(&row);
                    followed = Some(seen);
                }
            }
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    };
    conn.close().await?;
    db.close().await;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_leaves_the_last_requests_of_the_window_to_reports() {
        assert_eq!(reserve_wait(Some(4_000), Some(1_600), 1_000), None);
        assert_eq!(reserve_wait(None, Some(1_600), 1_000), None);
        assert_eq!(reserve_wait(Some(10), None, 1_000), None);
        assert_eq!(
            reserve_wait(Some(RESERVE - 1), Some(1_600), 1_000),
            Some(Duration::from_secs(601))
        );
        // A reset already past: a second; a far one: at most MAX_PAUSE.
        assert_eq!(
            reserve_wait(Some(0), Some(900), 1_000),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            reserve_wait(Some(0), Some(i64::MAX), 1_000),
            Some(MAX_PAUSE)
        );
    }

    #[test]
    fn since_is_rounded_down_to_the_day_or_the_hour() {
        let now = crate::time::parse_rfc3339("2026-11-30T14:05:09Z").unwrap();
        let day = since_ns(now, Duration::from_secs(30 * 86_400));
        assert_eq!(
            Some(day),
            crate::time::parse_rfc3339("2026-10-31T00:00:00Z")
        );
        let hour = since_ns(now, Duration::from_secs(2 * 3_600));
        assert_eq!(
            Some(hour),
            crate::time::parse_rfc3339("2026-11-30T12:00:00Z")
        );
    }
}
