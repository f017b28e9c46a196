//! Which deployment caused an incident (DESIGN.md §4), resolved when read so that
//! deployments arriving later and edits to the issue are taken into account:
//!
//! - a `root cause: <deployment id>` line names the deployment;
//! - a `root cause: <sha>` line names the first successful deployment to the incident's
//!   environment that shipped the commit (its SHA is the commit or descends from it);
//! - otherwise (no line, or a line naming neither) the last successful deployment to the
//!   incident's environment before it opened: evidence `fallback`, confidence 0.5.
//!
//! The environment is the issue's `environment: <name>` line, else an `env:<name>`
//! label, else the configured default (`--incident-environment`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::neighbourhood::Ancestry;
use crate::ids::{CommitSha, node};
use crate::store::dora::{IncidentFacts, SuccessfulDeployment};
use crate::store::reports::PullRef;
use crate::store::{self, Db, Tx};

/// Parents followed back from each deployment when looking for a root-cause commit.
const DEPTH: u32 = 5000;

/// The `root cause: <sha or deployment>` line of an incident's body.
pub fn root_cause(body: &str) -> Option<String> {
    field(body, "root cause")
}

/// The `environment: <name>` line of an incident's body.
pub fn environment(body: &str) -> Option<String> {
    field(body, "environment")
}

/// The value of a `name: value` line (case-insensitive name; list markers, quotes and
/// backticks around it ignored).
fn field(body: &str, name: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let line = line.trim().trim_start_matches(['-', '*', '>', ' ']);
        let lower = line.to_ascii_lowercase();
        let rest = lower.strip_prefix(name)?;
        let rest = rest.trim_start().strip_prefix(':')?;
        let start = line.len() - rest.len();
        let value = line[start..].trim().trim_matches('`');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// What a root cause names: a commit by full SHA, or a deployment by ID.
pub enum RootCause {
    Commit(CommitSha),
    Deployment(i64),
    Unresolved,
}

pub fn resolve_root_cause(value: &str) -> RootCause {
    if let Ok(sha) = CommitSha::parse(value) {
        return RootCause::Commit(sha);
    }
    let digits = value
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    let lower = value.to_ascii_lowercase();
    let names_deployment = lower.contains("deploy")
        || value.starts_with('#')
        || value.chars().all(|c| c.is_ascii_digit());
    if let (true, Ok(id)) = (names_deployment, digits.parse::<i64>()) {
        return RootCause::Deployment(id);
    }
    RootCause::Unresolved
}

/// How an incident's deployment was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseEvidence {
    /// Its `root cause:` line.
    RootCause,
    /// No usable root cause: the last successful deployment before it opened.
    Fallback,
}

impl CauseEvidence {
    pub fn confidence(self) -> f64 {
        match self {
            CauseEvidence::RootCause => 1.0,
            CauseEvidence::Fallback => 0.5,
        }
    }
}

/// An incident with what caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedIncident {
    pub facts: IncidentFacts,
    pub environment: String,
    /// The deployment that caused it, when one is known.
    pub deployment: Option<i64>,
    /// The commit its root cause names, when it names one.
    pub commit: Option<String>,
    pub evidence: CauseEvidence,
}

/// The incidents of `repo`, each with the deployment (and commit) that caused it.
pub async fn linked(
    db: &Db,
    repo: &str,
    default_environment: &str,
) -> store::Result<Vec<LinkedIncident>> {
    let incidents = db.incidents_of(repo).await?;
    let mut deployments: BTreeMap<String, (Vec<SuccessfulDeployment>, Option<Ancestry>)> =
        BTreeMap::new();
    let mut out = Vec::with_capacity(incidents.len());
    for facts in incidents {
        let environment = facts
            .environment
            .clone()
            .unwrap_or_else(|| default_environment.to_string());
        let cause = facts.root_cause.as_deref().map(resolve_root_cause);
        let (deployment, commit, evidence) = match cause {
            Some(RootCause::Deployment(id))
                if db.deployment_environment(repo, id).await?.is_some() =>
            {
                (Some(id), None, CauseEvidence::RootCause)
            }
            Some(RootCause::Commit(sha)) => {
                let (list, ancestry) =
                    environment_deployments(db, repo, &environment, &mut deployments, true).await?;
                let target = node::commit_str(repo, sha.as_str());
                let first = list.iter().find(|d| {
                    d.sha == sha.as_str()
                        || ancestry
                            .as_ref()
                            .is_some_and(|a| a.contains(&node::commit_str(repo, &d.sha), &target))
                });
                (
                    first.map(|d| d.id),
                    Some(sha.to_string()),
                    CauseEvidence::RootCause,
                )
            }
            _ => {
                let (list, _) =
                    environment_deployments(db, repo, &environment, &mut deployments, false)
                        .await?;
                let last = facts
                    .opened_ns
                    .and_then(|o| list.iter().rev().find(|d| d.at_ns <= o));
                (last.map(|d| d.id), None, CauseEvidence::Fallback)
            }
        };
        out.push(LinkedIncident {
            facts,
            environment,
            deployment,
            commit,
            evidence,
        });
    }
    Ok(out)
}

/// The pull requests whose report shows the incident as it is stored now (none when it
/// is no incident): those the deployment it resolves to shipped first, and those holding
/// the commit its root cause names. Read inside the writer's transaction, so the
/// incident a delivery has just written (or is about to replace) is the one resolved —
/// the same rules as [`linked`], bounded by what the incident can reach instead of every
/// recently merged pull request.
pub async fn reach(
    tx: &mut Tx<'_>,
    repo: &str,
    number: i64,
    default_environment: &str,
) -> store::Result<BTreeSet<PullRef>> {
    let mut prs = BTreeSet::new();
    let Some(facts) = tx.live_incident(repo, number).await? else {
        return Ok(prs);
    };
    let environment = facts
        .environment
        .clone()
        .unwrap_or_else(|| default_environment.to_string());
    let cause = facts.root_cause.as_deref().map(resolve_root_cause);
    let deployment = match cause {
        Some(RootCause::Deployment(id)) if tx.deployment(repo, id).await?.is_some() => Some(id),
        Some(RootCause::Commit(sha)) => {
            prs.extend(tx.pulls_with_commit(repo, sha.as_str()).await?);
            tx.first_successful_deployment_shipping(repo, &environment, sha.as_str())
                .await?
        }
        _ => match facts.opened_ns {
            Some(opened) => {
                tx.last_successful_deployment_before(repo, &environment, opened)
                    .await?
            }
            None => None,
        },
    };
    if let Some(id) = deployment
        && let Some(d) = tx.deployment(repo, id).await?
    {
        prs.extend(tx.pulls_first_shipped_by(&d).await?);
    }
    Ok(prs)
}

/// The incidents of `repo` whose root cause names the commit `sha` (no deployment is
/// resolved: the commit API needs only these).
pub async fn naming_commit(db: &Db, repo: &str, sha: &str) -> store::Result<Vec<i64>> {
    Ok(db
        .incidents_of(repo)
        .await?
        .into_iter()
        .filter(|i| {
            matches!(
                i.root_cause.as_deref().map(resolve_root_cause),
                Some(RootCause::Commit(c)) if c.as_str() == sha
            )
        })
        .map(|i| i.number)
        .collect())
}

/// The successful deployments to an environment, oldest first, loaded once (with their
/// ancestry when `with_ancestry`).
async fn environment_deployments<'a>(
    db: &Db,
    repo: &str,
    environment: &str,
    cache: &'a mut BTreeMap<String, (Vec<SuccessfulDeployment>, Option<Ancestry>)>,
    with_ancestry: bool,
) -> store::Result<&'a (Vec<SuccessfulDeployment>, Option<Ancestry>)> {
    if !cache.contains_key(environment) {
        let list = db
            .successful_deployments(repo, environment, i64::MAX)
            .await?;
        cache.insert(environment.to_string(), (list, None));
    }
    let entry = cache.get_mut(environment).expect("inserted above");
    if with_ancestry && entry.1.is_none() {
        let tips: Vec<String> = entry
            .0
            .iter()
            .map(|d| node::commit_str(repo, &d.sha))
            .collect();
        entry.1 = Some(Ancestry::load(db, &tips, DEPTH).await?);
    }
    Ok(entry)
}
