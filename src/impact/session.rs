//! Where a session's cost went: its share on each commit it is directly linked to
//! ([`crate::metrics::cost`]), and the pull requests that carry each share — those
//! holding the commit, or a commit inheriting from it (a squash or merge result, a
//! rebased copy, an amended replacement). Shares no pull request carries (direct pushes,
//! commits of a branch without a PR) are shown as such: all shares add up to the
//! session's cost.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::graph::links::Evidence;
use crate::ids::node;
use crate::metrics::cost;
use crate::store::{self, Db};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostShare {
    pub repository: String,
    pub sha: String,
    pub evidence: String,
    pub share_usd: f64,
    /// The pull requests whose cost holds this share (empty: none does).
    pub pull_requests: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionCost {
    #[serde(rename = "cost_shares")]
    pub shares: Vec<CostShare>,
    /// What no pull request carries.
    #[serde(rename = "cost_outside_pull_requests_usd")]
    pub outside_pull_requests_usd: f64,
}

/// Where the cost of the session `key` went, when it has a cost.
pub async fn cost_shares(db: &Db, key: &str, cost_usd: Option<f64>) -> store::Result<SessionCost> {
    let links = db.links_of_sessions(&[key]).await?;
    let mut direct: BTreeSet<(String, String)> = BTreeSet::new();
    let mut evidence: BTreeMap<&str, &str> = BTreeMap::new();
    // Original commit key → the commits inheriting its link.
    let mut heirs: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for l in &links {
        if l.evidence == Evidence::Merged.as_str() {
            if let (Some(o), Some((repo, _))) = (&l.original, l.to_key.rsplit_once('@')) {
                heirs
                    .entry(node::commit_str(repo, o))
                    .or_default()
                    .push(l.to_key.as_str());
            }
        } else {
            direct.insert((l.from_key.clone(), l.to_key.clone()));
            evidence.insert(l.to_key.as_str(), l.evidence.as_str());
        }
    }
    let sizes = super::commit_sizes(db, direct.iter().map(|(_, c)| c.as_str())).await?;
    let costs = BTreeMap::from_iter(cost_usd.map(|c| (key.to_string(), c)));
    let shares = cost::shares(&costs, &direct, &sizes);
    let mut out = SessionCost {
        shares: Vec::with_capacity(shares.len()),
        outside_pull_requests_usd: 0.0,
    };
    for ((_, commit), share) in shares {
        let Some((repo, sha)) = commit.rsplit_once('@') else {
            continue;
        };
        let mut prs: BTreeSet<i64> = BTreeSet::new();
        for c in std::iter::once(commit.as_str())
            .chain(heirs.get(&commit).into_iter().flatten().copied())
        {
            prs.extend(db.pulls_of_commit(repo, node::commit_sha(c)).await?);
        }
        if prs.is_empty() {
            out.outside_pull_requests_usd += share;
        }
        out.shares.push(CostShare {
            repository: repo.to_string(),
            sha: sha.to_string(),
            evidence: evidence
                .get(commit.as_str())
                .copied()
                .unwrap_or_default()
                .to_string(),
            share_usd: round6(share),
            pull_requests: prs.into_iter().collect(),
        });
    }
    out.outside_pull_requests_usd = round6(out.outside_pull_requests_usd);
    Ok(out)
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}
