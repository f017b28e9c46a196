//! Keeps the stored session → commit links current: whenever evidence arrives (a
//! delivery with commits or a merge, telemetry of a session), the links of the commits it
//! may change are computed again ([`super::links::link_commits`]) and stored, for every
//! commit tracelink knows — not only those of a pull request with a report. A link whose
//! evidence went away is removed; one that stays keeps when it was first seen.

use std::collections::{BTreeMap, BTreeSet};

use super::links::{LinkConfig, SessionLink, link_commits};
use crate::ids::node;
use crate::store::links::AuthoredLink;
use crate::store::reports::PullRef;
use crate::store::{self, Conn, Db};

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
    for (repo, shas) in stale.commits {
        let shas: Vec<String> = shas.into_iter().collect();
        let links = link_commits(db, cfg, &repo, &shas).await?;
        stored += store_links(conn, &repo, &shas, &links, now_ns).await?;
    }
    Ok(stored)
}

/// Makes `links` the stored links of these commits of `repo` (found by
/// [`link_commits`] for exactly these commits); returns how many were stored.
pub async fn store_links(
    conn: &mut Conn,
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
        })
        .collect();
    let mut tx = conn.begin().await?;
    tx.replace_authored_links(&keys, &rows, now_ns).await?;
    tx.commit().await?;
    Ok(rows.len())
}
