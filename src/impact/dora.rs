//! The DORA keys of a repository and environment: the store's rows, what each
//! deployment shipped (petgraph ancestry), then [`crate::metrics::dora::compute`].

use crate::graph::incidents;
use crate::graph::links::is_rebased_copy;
use crate::graph::neighbourhood::Ancestry;
use crate::ids::{RepoName, node};
use crate::metrics::dora::{
    DeploymentReach, Dora, DoraInputs, IncidentCause, Keys, Measured, compute, measure,
};
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
    let inputs = inputs(db, ctx, repo.as_str(), environment, until_ns).await?;
    Ok(compute(&inputs, since_ns, until_ns))
}

/// What the keys of `repo` / `environment` up to `until_ns` are computed from.
async fn inputs(
    db: &Db,
    ctx: &super::ReportContext,
    repo: &str,
    environment: &str,
    until_ns: i64,
) -> store::Result<DoraInputs> {
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
    Ok(inputs)
}

/// How the roll-up groups repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupBy {
    /// Every repository together, by GitHub organisation (the owner).
    Org,
    /// By the team owning the repository (the identities file's `[[team]] repos`), else
    /// `unassigned`.
    Team,
    /// Each repository apart.
    Repo,
}

/// One group's keys in a roll-up.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct RollupGroup {
    pub key: String,
    pub repositories: Vec<String>,
    pub all: Keys,
    pub agent_assisted: Keys,
    pub not_agent_assisted: Keys,
}

/// The four keys over every repository with a successful deployment to `environment`.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Rollup {
    pub environment: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub repositories: usize,
    pub all: Keys,
    pub agent_assisted: Keys,
    pub not_agent_assisted: Keys,
    pub groups: Vec<RollupGroup>,
}

/// The keys of every repository deployed to `environment` before `until_ns`, pooled
/// (deployments and failures summed, medians over every change and restore), overall
/// and per group. Each repository's ancestry is loaded in turn.
pub async fn rollup(
    db: &Db,
    ctx: &super::ReportContext,
    environment: &str,
    since_ns: i64,
    until_ns: i64,
    by: RollupBy,
) -> store::Result<Rollup> {
    use std::collections::BTreeMap;
    let repos = db.deployed_repositories(environment, until_ns).await?;
    let mut overall = Measured::default();
    let mut groups: BTreeMap<String, (Vec<String>, Measured)> = BTreeMap::new();
    for repo in &repos {
        let inputs = inputs(db, ctx, repo, environment, until_ns).await?;
        let key = match by {
            RollupBy::Org => repo
                .split_once('/')
                .map_or(repo.as_str(), |(o, _)| o)
                .to_string(),
            RollupBy::Team => ctx
                .links
                .identities
                .repo_team(repo)
                .unwrap_or(crate::graph::identities::UNASSIGNED)
                .to_string(),
            RollupBy::Repo => repo.clone(),
        };
        let g = groups.entry(key).or_default();
        g.0.push(repo.clone());
        let m = measure(&inputs, since_ns, until_ns);
        overall.add(m.clone());
        g.1.add(m);
    }
    if repos.is_empty() {
        overall.add(measure(&DoraInputs::default(), since_ns, until_ns));
    }
    let time = |ns| crate::time::rfc3339(Some(ns), chrono::SecondsFormat::Secs);
    let [all, agent_assisted, not_agent_assisted] = overall.keys();
    Ok(Rollup {
        environment: environment.to_string(),
        since: time(since_ns),
        until: time(until_ns),
        repositories: repos.len(),
        all,
        agent_assisted,
        not_agent_assisted,
        groups: groups
            .into_iter()
            .map(|(key, (repositories, m))| {
                let [all, agent_assisted, not_agent_assisted] = m.keys();
                RollupGroup {
                    key,
                    repositories,
                    all,
                    agent_assisted,
                    not_agent_assisted,
                }
            })
            .collect(),
    })
}
