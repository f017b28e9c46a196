//! Keeps every pull request's comment and check run current. Whatever may change a
//! report (a delivery, new session telemetry) queues the PR with a due time one debounce
//! period ahead; the publisher rebuilds due reports, fetches the patches it needs from the
//! API (cached by SHA), and writes to GitHub only when the comment's content changed: at
//! most one write per PR per debounce window.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};
use tokio::sync::{Notify, mpsc, watch};

use super::markdown::{MARKER, render, summary};
use super::{ReportContext, build};
use crate::github::app::{FilePatch, GithubApp};

/// Back-off before a failed publication is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Merged pull requests that deployments and incidents still update.
const RECENT_MERGE_NS: i64 = 30 * 86_400 * 1_000_000_000;

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Queues pull requests for publication `debounce` from now (an earlier due time stays).
pub async fn enqueue(
    conn: &mut SqliteConnection,
    prs: &BTreeSet<(String, i64)>,
    debounce: Duration,
) -> sqlx::Result<()> {
    let now = now_ns();
    let due = now + debounce.as_nanos() as i64;
    for (repo, number) in prs {
        // A PR already waiting keeps its (earlier) due time; one whose due time has
        // passed (being published right now) waits a full period again: a PR is written
        // at most once per debounce window, and no change is left behind.
        sqlx::query(
            "INSERT INTO report_queue (repo, number, due_ns, touched_ns) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (repo, number) DO UPDATE SET \
             touched_ns = max(report_queue.touched_ns + 1, ?4), \
             due_ns = CASE WHEN report_queue.due_ns <= ?4 THEN ?3 ELSE report_queue.due_ns END",
        )
        .bind(repo)
        .bind(number)
        .bind(due)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Pull requests containing any of these commits of `repo` (None: any repository).
pub async fn pulls_containing(
    conn: &mut SqliteConnection,
    repo: Option<&str>,
    shas: &[String],
) -> sqlx::Result<BTreeSet<(String, i64)>> {
    let mut out = BTreeSet::new();
    for chunk in shas.chunks(200) {
        let ph = crate::store::placeholders(chunk.len());
        let sql = format!(
            "SELECT DISTINCT p.repo, p.number FROM pull_requests p WHERE (?1 IS NULL OR p.repo = ?1) AND ( \
               p.head_sha IN ({ph}) \
               OR EXISTS (SELECT 1 FROM pull_request_commits c WHERE c.repo = p.repo AND c.number = p.number AND c.sha IN ({ph})) \
               OR EXISTS (SELECT 1 FROM commit_refs r WHERE r.repo = p.repo AND r.ref = 'refs/heads/' || p.head_ref AND r.sha IN ({ph})))"
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql)).bind(repo);
        for _ in 0..3 {
            for s in chunk {
                q = q.bind(s);
            }
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Pull requests a delivery's upserts may change.
pub async fn affected_by(
    conn: &mut SqliteConnection,
    ops: &[crate::github::plan::Op],
) -> sqlx::Result<BTreeSet<(String, i64)>> {
    use crate::github::plan::Op;
    let mut prs = BTreeSet::new();
    let mut shas: Vec<(String, String)> = Vec::new();
    let mut recent_merges: BTreeSet<String> = BTreeSet::new();
    for op in ops {
        match op {
            Op::Pull(p) => {
                prs.insert((p.repo.clone(), p.number));
            }
            Op::CommitRef { repo, sha, .. } => shas.push((repo.clone(), sha.to_string())),
            Op::Commit(c) => shas.push((c.repo.clone(), c.sha.to_string())),
            Op::Run(r) => shas.push((r.repo.clone(), r.head_sha.clone())),
            Op::Deployment(d) => {
                recent_merges.insert(d.repo.clone());
            }
            Op::Incident(i) => {
                recent_merges.insert(i.repo.clone());
            }
            _ => {}
        }
    }
    for (repo, sha) in shas {
        prs.extend(pulls_containing(conn, Some(&repo), &[sha]).await?);
    }
    for repo in recent_merges {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT repo, number FROM pull_requests WHERE repo = ? AND merged = 1 AND merged_ns >= ?",
        )
        .bind(&repo)
        .bind(now_ns() - RECENT_MERGE_NS)
        .fetch_all(&mut *conn)
        .await?;
        prs.extend(rows);
    }
    Ok(prs)
}

/// Pull requests whose commits these sessions may have produced: commits they name,
/// commits whose trailers name their traces, and commits made in their active windows.
pub async fn affected_by_sessions(
    conn: &mut SqliteConnection,
    session_rows: &[i64],
    grace_ns: i64,
) -> sqlx::Result<BTreeSet<(String, i64)>> {
    let mut prs = BTreeSet::new();
    for id in session_rows {
        let mut shas: Vec<String> =
            sqlx::query_scalar("SELECT sha FROM session_commits WHERE session_id = ?")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        let traced: Vec<String> = sqlx::query_scalar(
            "SELECT substr(l.from_key, instr(l.from_key, '@') + 1) FROM links l JOIN session_traces st \
               ON l.to_key = lower(hex(st.trace_id)) WHERE st.session_id = ? AND l.from_kind = 'commit' \
               AND l.relation = 'traceparent'",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        shas.extend(traced);
        let window: Option<(Option<i64>, Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT started_ns, ended_ns, repository FROM sessions WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some((Some(start), end, repo)) = window {
            let near: Vec<String> = sqlx::query_scalar(
                "SELECT sha FROM commits WHERE authored_ns BETWEEN ? AND ? AND (?3 IS NULL OR repo = ?3) LIMIT 500",
            )
            .bind(start - grace_ns)
            .bind(end.unwrap_or(start) + grace_ns)
            .bind(repo.map(|r| r.to_ascii_lowercase()))
            .fetch_all(&mut *conn)
            .await?;
            shas.extend(near);
        }
        shas.sort();
        shas.dedup();
        prs.extend(pulls_containing(conn, None, &shas).await?);
    }
    Ok(prs)
}

/// The publisher's settings.
pub struct Publisher {
    pub ctx: Arc<ReportContext>,
    pub app: Option<Arc<GithubApp>>,
    pub debounce: Duration,
    pub budget: WriteBudget,
}

/// GitHub allows an App 80 content-creating requests a minute; the publisher keeps to it
/// across all pull requests, deferring reports rather than being refused.
pub struct WriteBudget {
    max: usize,
    window: Duration,
    spent: std::sync::Mutex<std::collections::VecDeque<std::time::Instant>>,
}

impl Default for WriteBudget {
    fn default() -> Self {
        Self::new(80, Duration::from_secs(60))
    }
}

impl WriteBudget {
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            spent: Default::default(),
        }
    }

    /// Takes `n` writes, or says how long until they are available.
    pub fn take(&self, n: usize) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        while spent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            spent.pop_front();
        }
        if spent.len() + n > self.max {
            let oldest = spent.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        spent.extend(std::iter::repeat_n(now, n));
        Ok(())
    }
}

/// What publishing one report came to.
enum Published {
    Done,
    /// The write budget is spent: try again after this long.
    Deferred(Duration),
}

/// Wakes the publisher and tells it which sessions changed.
#[derive(Clone)]
pub struct PublisherHandle {
    pub wake: Arc<Notify>,
    /// Reports published (or found unchanged) so far.
    pub published: watch::Receiver<u64>,
}

pub fn spawn(
    publisher: Publisher,
    mut conn: SqliteConnection,
    readers: SqlitePool,
    mut sessions: mpsc::Receiver<Vec<i64>>,
    mut stop: watch::Receiver<bool>,
) -> (PublisherHandle, tokio::task::JoinHandle<()>) {
    let wake = Arc::new(Notify::new());
    let (published_tx, published) = watch::channel(0u64);
    let handle = PublisherHandle {
        wake: wake.clone(),
        published,
    };
    let task = tokio::spawn(async move {
        loop {
            // Sessions the writer committed since the last round.
            let mut touched: Vec<i64> = Vec::new();
            while let Ok(ids) = sessions.try_recv() {
                touched.extend(ids);
            }
            touched.sort();
            touched.dedup();
            if !touched.is_empty() {
                let grace = publisher.ctx.links.grace_ns;
                match affected_by_sessions(&mut conn, &touched, grace).await {
                    Ok(prs) => {
                        if let Err(e) = enqueue(&mut conn, &prs, publisher.debounce).await {
                            tracing::error!(error = %e, "queueing reports failed");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "finding reports to update failed"),
                }
            }
            let next = match run_due(&publisher, &mut conn, &readers).await {
                Ok((n, next)) => {
                    if n > 0 {
                        published_tx.send_modify(|c| *c += n);
                    }
                    next
                }
                Err(e) => {
                    tracing::error!(error = %e, "publishing reports failed");
                    Some(RETRY_AFTER)
                }
            };
            if *stop.borrow() {
                break;
            }
            let wait = next.unwrap_or(Duration::from_secs(60));
            tokio::select! {
                _ = wake.notified() => {}
                Some(ids) = sessions.recv() => touched_again(&mut conn, &publisher, ids).await,
                _ = stop.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
    (handle, task)
}

async fn touched_again(conn: &mut SqliteConnection, publisher: &Publisher, ids: Vec<i64>) {
    let grace = publisher.ctx.links.grace_ns;
    match affected_by_sessions(conn, &ids, grace).await {
        Ok(prs) => {
            if let Err(e) = enqueue(conn, &prs, publisher.debounce).await {
                tracing::error!(error = %e, "queueing reports failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "finding reports to update failed"),
    }
}

/// Publishes every due report; returns how many, and when the next one is due.
async fn run_due(
    publisher: &Publisher,
    conn: &mut SqliteConnection,
    readers: &SqlitePool,
) -> anyhow::Result<(u64, Option<Duration>)> {
    let now = now_ns();
    let due: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT repo, number, touched_ns FROM report_queue WHERE due_ns <= ? ORDER BY due_ns LIMIT 32",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut done = 0;
    for (repo, number, touched) in due {
        match publish_one(publisher, conn, readers, &repo, number).await {
            Ok(Published::Deferred(wait)) => {
                sqlx::query("UPDATE report_queue SET due_ns = ? WHERE repo = ? AND number = ?")
                    .bind(now + wait.as_nanos() as i64)
                    .bind(&repo)
                    .bind(number)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(Published::Done) => {
                // Touched again while this was being published: it stays queued.
                sqlx::query(
                    "DELETE FROM report_queue WHERE repo = ? AND number = ? AND touched_ns = ?",
                )
                .bind(&repo)
                .bind(number)
                .bind(touched)
                .execute(&mut *conn)
                .await?;
                done += 1;
            }
            Err(e) => {
                tracing::warn!(repo, number, error = %e, "publishing the report failed; retrying later");
                sqlx::query("UPDATE report_queue SET due_ns = ? WHERE repo = ? AND number = ?")
                    .bind(now + RETRY_AFTER.as_nanos() as i64)
                    .bind(&repo)
                    .bind(number)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    let next: Option<i64> = sqlx::query_scalar("SELECT min(due_ns) FROM report_queue")
        .fetch_one(&mut *conn)
        .await?;
    Ok((
        done,
        next.map(|n| Duration::from_nanos((n - now_ns()).max(0) as u64)),
    ))
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
    conn: &mut SqliteConnection,
    installation: u64,
    repo: &str,
    number: i64,
    head_sha: &str,
) -> anyhow::Result<()> {
    let cached: Option<String> = sqlx::query_scalar(
        "SELECT head_sha FROM pull_request_patches WHERE repo = ? AND number = ?",
    )
    .bind(repo)
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    if cached.as_deref() != Some(head_sha) {
        let shas = app.pull_commits(installation, repo, number as u64).await?;
        let files = app.pull_files(installation, repo, number as u64).await?;
        sqlx::query("DELETE FROM pull_request_commits WHERE repo = ? AND number = ?")
            .bind(repo)
            .bind(number)
            .execute(&mut *conn)
            .await?;
        for (i, sha) in shas.iter().enumerate() {
            sqlx::query(
                "INSERT OR IGNORE INTO pull_request_commits (repo, number, sha, position) VALUES (?, ?, ?, ?)",
            )
            .bind(repo)
            .bind(number)
            .bind(sha.to_ascii_lowercase())
            .bind(i as i64)
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query(
            "INSERT OR REPLACE INTO pull_request_patches (repo, number, head_sha, files) VALUES (?, ?, ?, ?)",
        )
        .bind(repo)
        .bind(number)
        .bind(head_sha)
        .bind(files_json(&files))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn publish_one(
    publisher: &Publisher,
    conn: &mut SqliteConnection,
    readers: &SqlitePool,
    repo: &str,
    number: i64,
) -> anyhow::Result<Published> {
    let installation: Option<i64> =
        sqlx::query_scalar("SELECT installation_id FROM repo_installations WHERE repo = ?")
            .bind(repo)
            .fetch_optional(&mut *conn)
            .await?;
    let head: Option<String> =
        sqlx::query_scalar("SELECT head_sha FROM pull_requests WHERE repo = ? AND number = ?")
            .bind(repo)
            .bind(number)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(head) = head else {
        return Ok(Published::Done);
    };
    if let (Some(app), Some(inst)) = (&publisher.app, installation) {
        fetch(app, conn, inst as u64, repo, number, &head).await?;
    }
    let Some((report, links, shas)) = build(readers, &publisher.ctx, repo, number).await? else {
        return Ok(Published::Done);
    };
    // Patches of agent-linked commits, once per SHA, then the report again with lines.
    let mut report = report;
    if let (Some(app), Some(inst)) = (&publisher.app, installation) {
        let mut fetched = false;
        for c in report.commits.iter().filter(|c| c.agent_assisted) {
            let known: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM commit_patches WHERE repo = ? AND sha = ?",
            )
            .bind(repo)
            .bind(&c.sha)
            .fetch_one(&mut *conn)
            .await?;
            if known == 0 {
                let files = app.commit_files(inst as u64, repo, &c.sha).await?;
                sqlx::query(
                    "INSERT OR IGNORE INTO commit_patches (repo, sha, files) VALUES (?, ?, ?)",
                )
                .bind(repo)
                .bind(&c.sha)
                .bind(files_json(&files))
                .execute(&mut *conn)
                .await?;
                fetched = true;
            }
        }
        if fetched && let Some((r, _, _)) = build(readers, &publisher.ctx, repo, number).await? {
            report = r;
        }
    }
    crate::graph::links::store(conn, repo, &shas, &links, now_ns()).await?;
    let body = render(&report);
    let digest = crate::ids::encode_hex(&Sha256::digest(body.as_bytes()));
    let last: Option<String> =
        sqlx::query_scalar("SELECT digest FROM published_reports WHERE repo = ? AND number = ?")
            .bind(repo)
            .bind(number)
            .fetch_optional(&mut *conn)
            .await?;
    if last.as_deref() == Some(digest.as_str()) {
        return Ok(Published::Done);
    }
    let (Some(app), Some(inst)) = (&publisher.app, installation) else {
        // No App configured, or no installation known for the repository: the report is
        // served by the API and the CLI only.
        return Ok(Published::Done);
    };
    // A comment and a check run: at most two content-creating requests.
    if let Err(wait) = publisher.budget.take(2) {
        return Ok(Published::Deferred(wait));
    }
    let outcome = app
        .upsert_comment(inst as u64, repo, number as u64, MARKER, &body)
        .await?;
    let comment_id = match outcome {
        crate::github::app::CommentOutcome::Created { id }
        | crate::github::app::CommentOutcome::Updated { id }
        | crate::github::app::CommentOutcome::Unchanged { id } => id,
    };
    let title: String = report.headline.chars().take(200).collect();
    app.upsert_check_run(
        inst as u64,
        repo,
        &report.head_sha,
        "tracelink",
        &title,
        &summary(&report),
        "neutral",
    )
    .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO published_reports (repo, number, digest, comment_id, published_ns) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(repo)
    .bind(number)
    .bind(&digest)
    .bind(comment_id as i64)
    .bind(now_ns())
    .execute(&mut *conn)
    .await?;
    Ok(Published::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_budget_defers_past_its_limit() {
        let b = WriteBudget::new(4, Duration::from_secs(60));
        assert!(b.take(2).is_ok());
        assert!(b.take(2).is_ok());
        let wait = b.take(2).unwrap_err();
        assert!(
            wait > Duration::from_secs(59) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        let quick = WriteBudget::new(2, Duration::from_millis(1));
        assert!(quick.take(2).is_ok());
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            quick.take(2).is_ok(),
            "writes older than the window are free again"
        );
    }
}
