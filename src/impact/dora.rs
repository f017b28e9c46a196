//! The DORA keys of a repository and environment: the store's rows, what each
//! deployment shipped (petgraph ancestry), then [`crate::metrics::dora::compute`].

use crate::graph::incidents;
use crate::graph::links::is_rebased_copy;
use crate::graph::neighbourhood::Ancestry;
use crate::ids::{RepoName, node};
use crate::metrics::dora::{DeploymentReach, Dora, DoraInputs, IncidentCause, compute};
use crate::store::{self, Db};

/// Parents followed back from each deployment.
const DEPTH: u32 = 5000;

/// The keys of `repo` / `environment` for deployments in `[since, until)` (ns).
pub async fn repository(
    db: &Db,
    ctx: &super::ReportContext,
    repo: &RepoName,
    environment: &str,
    since_ns: i64,
    until_ns: i64,
) -> store::Result<Dora> {
    let repo = repo.as_str();
    // Successful deployments, each at its first success, oldest first; the one before
    // the window bounds the first deployment's contents.
    let deployments = db
        .successful_deployments(repo, environment, until_ns)
        .await?;
    let tips: Vec<String> = deployments
        .iter()
        .map(|d| node::commit_str(repo, &d.sha))
        .collect();
    let ancestry = Ancestry::load(db, &tips, DEPTH).await?;
    // Merge results shipped: their change starts at their pull request's first commit.
    let authored = db.authored_times(repo).await?;
    let mut shipped: Vec<String> = Vec::new();
    for tip in &tips {
        shipped.extend(
            ancestry
                .ancestors(tip)
                .iter()
                .map(|k| node::commit_sha(k).to_string()),
        );
    }
    shipped.sort();
    shipped.dedup();
    let mut change_start = std::collections::HashMap::new();
    for (merge, number) in db.merged_pulls(repo, &shipped).await? {
        let commits = db.pull_commits(repo, number).await?.shas;
        // A rebased copy keeps its original's author time: no exception.
        if is_rebased_copy(db, repo, &merge, &commits).await? {
            continue;
        }
        let first = commits
            .iter()
            .filter_map(|s| authored.get(&node::commit_str(repo, s)).copied())
            .min();
        if let Some(t) = first {
            change_start.insert(node::commit_str(repo, &merge), t);
        }
    }
    let inputs = DoraInputs {
        repository: repo.to_string(),
        environment: environment.to_string(),
        deployments: deployments
            .iter()
            .zip(&tips)
            .map(|(d, tip)| DeploymentReach {
                id: d.id,
                at_ns: d.at_ns,
                reach: ancestry.ancestors(tip),
            })
            .collect(),
        assisted: db.assisted_commit_keys(repo).await?,
        authored,
        change_start,
        causes: incidents::linked(db, repo, &ctx.incident_environment)
            .await?
            .into_iter()
            .map(|i| IncidentCause {
                number: i.facts.number,
                deployment: i.deployment,
                opened_ns: i.facts.opened_ns,
                closed_ns: i.facts.closed_ns,
                state: i.facts.state,
            })
            .collect(),
    };
    Ok(compute(&inputs, since_ns, until_ns))
}
