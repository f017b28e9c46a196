//! Keeps the stored session → commit links current: whenever evidence arrives (a
//! delivery with commits or a merge, telemetry of a session), the links of the commits it
//! may change are computed again ([`super::links::link_commits`]) and stored, for every
//! commit tracelink knows — not only those of a pull request with a report. A link whose
//! evidence went away is removed; one that stays keeps when it was first seen.

use std::collections::{BTreeMap, BTreeSet};

use super::links::{Evidence, LinkConfig, SessionLink, link_commits};
use crate::ids::node;
use crate::store::links::AuthoredLink;
use crate::store::reports::PullRef;
use crate::store::{self, Conn, Db, Tx};

/// Commits to link again, by repository.
#[derive(Debug, Default)]
pub struct Stale {
    commits: BTreeMap<String, BTreeSet<String>>,
}

impl Stale {
    pub fn commit(&mut self, repo: &str, sha: &str) {
        self.commits
            .entry(repo.to_string())
            .or_default()
            .insert(sha.to_ascii_lowercase());
    }

    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
    }

    /// Adds another set's commits.
    pub fn absorb(&mut self, other: Stale) {
        for (repo, shas) in other.commits {
            self.commits.entry(repo).or_default().extend(shas);
        }
    }

    /// The merge results of these pull requests, which inherit their commits' links.
    pub async fn merge_results_of(
        &mut self,
        db: &Db,
        prs: &BTreeSet<PullRef>,
    ) -> store::Result<()> {
        for (repo, number) in prs {
            if let Some(pr) = db.pull_request(repo, *number).await?
                && pr.merged
                && let Some(m) = &pr.merge_commit_sha
            {
                self.commit(repo, m);
            }
        }
        Ok(())
    }
}

/// Computes and stores the links of every stale commit; returns how many links were
/// stored.
pub async fn relink(
    db: &Db,
    conn: &mut Conn,
    cfg: &LinkConfig,
    stale: Stale,
    now_ns: i64,
) -> store::Result<usize> {
    let mut stored = 0;
    for (repo, mut shas) in stale.commits {
        // Copies (rebased, amended) inherit from what they copy, and the reverse.
        let listed: Vec<String> = shas.iter().cloned().collect();
        for (_, copy) in db.copies_of(&repo, &listed).await? {
            shas.insert(copy);
        }
        // Commits sharing an abbreviated SHA a session names: a second one arriving
        // takes the link from the first.
        shas.extend(db.commits_sharing_abbreviations(&repo, &listed).await?);
        let shas: Vec<String> = shas.into_iter().collect();
        // The processor and the publisher both link; each computes and stores under the
        // write lock, so the last to store saw everything the other stored.
        let mut tx = conn.begin_exclusive().await?;
        let links = link_commits(db, cfg, &repo, &shas).await?;
        stored += store_links(&mut tx, &repo, &shas, &links, now_ns).await?;
        tx.commit().await?;
    }
    Ok(stored)
}

/// Makes `links` the stored links of these commits of `repo` (found by
/// [`link_commits`] for exactly these commits); returns how many were stored.
async fn store_links(
    tx: &mut Tx<'_>,
    repo: &str,
    shas: &[String],
    links: &[SessionLink],
    now_ns: i64,
) -> store::Result<usize> {
    let keys: Vec<String> = shas.iter().map(|s| node::commit_str(repo, s)).collect();
    let rows: Vec<AuthoredLink> = links
        .iter()
        .map(|l| AuthoredLink {
            session_key: l.session_key.clone(),
            commit: node::commit_str(repo, &l.sha),
            evidence: l.evidence.as_str(),
            confidence: l.confidence,
            detail: l.detail.clone(),
            original: l.original.clone(),
        })
        .collect();
    tx.replace_authored_links(&keys, &rows, now_ns).await?;
    Ok(rows.len())
}

/// The stored links of these commits of `repo`: what the commit API, reports and DORA
/// read, so that they agree.
pub async fn stored_links(db: &Db, repo: &str, shas: &[String]) -> store::Result<Vec<SessionLink>> {
    Ok(db
        .authored_links(repo, shas)
        .await?
        .into_iter()
        .filter_map(|l| {
            Some(SessionLink {
                evidence: Evidence::parse(&l.evidence)?,
                // A link to a session no longer stored shows no session facts.
                session_row: l.session_row?,
                sha: node::commit_sha(&l.commit_key).to_string(),
                session_key: l.session_key,
                confidence: l.confidence,
                detail: l.detail,
                original: l.original,
            })
        })
        .collect())
}

/// Relinks queued per round, at most.
const QUEUE_ROUND: i64 = 64;

/// Links again the commits the queued sessions (those whose telemetry changed) may have
/// produced, and queues the reports they may change, until the queue is empty; returns
/// how many sessions were handled.
pub async fn drain_queue(
    db: &Db,
    conn: &mut Conn,
    cfg: &LinkConfig,
    debounce_ns: i64,
) -> store::Result<usize> {
    let mut handled = 0;
    loop {
        let queued = {
            let mut tx = conn.begin().await?;
            let q = tx.queued_relinks(QUEUE_ROUND).await?;
            tx.commit().await?;
            q
        };
        if queued.is_empty() {
            return Ok(handled);
        }
        let ids: Vec<i64> = queued.iter().map(|q| q.session_id).collect();
        let now = crate::time::now_ns();
        // Reads, then writes: the write lock from the start (a deferred SQLite
        // transaction that read cannot write once another connection committed).
        let mut tx = conn.begin_write().await?;
        let reach = tx.reach_of_sessions(&ids, cfg.grace_ns).await?;
        tx.enqueue_reports(&reach.pulls, now, now + debounce_ns)
            .await?;
        tx.commit().await?;
        let mut stale = Stale::default();
        for (repo, sha) in &reach.commits {
            stale.commit(repo, sha);
        }
        stale.merge_results_of(db, &reach.pulls).await?;
        relink(db, conn, cfg, stale, now).await?;
        let mut tx = conn.begin().await?;
        tx.relinks_done(&queued).await?;
        tx.commit().await?;
        handled += queued.len();
        if queued.len() as i64 == QUEUE_ROUND {
            // A long queue (a relink or an upgrade): say how far it is.
            let left = db.relinks_queued().await.unwrap_or(-1);
            tracing::info!(linked = handled, left, "linking sessions to commits again");
        }
    }
}
