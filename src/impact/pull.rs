//! A pull request's report: its commits, the sessions linked to them, patches (when
//! fetched), coverage and tests, CI at head, the deployments containing the merge and
//! the incidents they caused. Reads indexed rows only; the maths is
//! [`crate::metrics::pull`] and [`crate::metrics::coverage`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ReportContext;
use crate::graph::incidents;
use crate::graph::linker::stored_links;
use crate::graph::links::{Evidence, SessionLink};
use crate::graph::neighbourhood::Ancestry;
use crate::ids::{PrNumber, RepoName, node};
use crate::metrics::cost;
use crate::metrics::line_records::Contents;
use crate::metrics::model::{IncidentSummary, PrReport, SessionSummary, Totals};
use crate::metrics::pull::{self as maths, PatchFile, parse_patch};
use crate::metrics::sessions;
use crate::store::{self, Db};

/// Parents followed from a deployment when looking for the merge commit.
const ANCESTRY_DEPTH: u32 = 2000;
/// Deployments created this long before the merge are still candidates (clock skew).
const DEPLOY_SKEW_NS: i64 = 3_600_000_000_000;

/// A built report.
pub struct Built {
    pub report: PrReport,
}

/// Builds the report of `repo#number`, or `None` when the PR is unknown.
pub async fn build(
    db: &Db,
    ctx: &ReportContext,
    repo: &RepoName,
    number: PrNumber,
) -> store::Result<Option<Built>> {
    let (repo, number) = (repo.as_str(), number.0);
    let Some(pr) = db.pull_request(repo, number).await? else {
        return Ok(None);
    };
    let listed = db.pull_commits(repo, number).await?;
    let (shas, commit_list) = (listed.shas, listed.source);
    // The stored links (kept current as evidence arrives), the same the commit API and
    // DORA read.
    let links = stored_links(db, repo, &shas).await?;

    // Sessions, in order of first activity.
    let mut keys: Vec<&str> = links.iter().map(|l| l.session_key.as_str()).collect();
    keys.sort();
    keys.dedup();
    let views: Vec<_> = db
        .sessions_by_key(&keys)
        .await?
        .into_iter()
        .map(|r| sessions::view(&ctx.prices, r))
        .collect();
    let session_agents: HashMap<String, String> = views
        .iter()
        .filter_map(|v| Some((v.session_id.clone(), v.agent.clone()?)))
        .collect();
    let (mut summaries, mut totals, first_session_ns) = maths::sessions(views, &links);
    split_cost(db, repo, &shas, &links, &mut summaries, &mut totals).await?;

    // Commits.
    let records = db.commits(repo, &shas).await?;
    // People are named by GitHub login in comments: from the identities file, a noreply
    // address, or the PR's commits by the same email.
    let login_by_email: HashMap<String, String> = records
        .iter()
        .filter_map(|c| {
            Some((
                c.author_email.as_ref()?.to_ascii_lowercase(),
                c.author_login.clone()?,
            ))
        })
        .collect();
    for s in summaries.iter_mut() {
        s.login = s.user.as_deref().and_then(|u| {
            ctx.links
                .identities
                .session_keys(Some(u), None)
                .into_iter()
                .find_map(|k| k.strip_prefix("login:").map(str::to_string))
                .or_else(|| login_by_email.get(&u.to_ascii_lowercase()).cloned())
        });
    }
    let trailer_agents = db.commit_agents(repo, &shas).await?;
    let (mut commits, agent_commits) =
        maths::commits(&shas, records, &trailer_agents, &links, &session_agents);
    // Line records decide the lines of the commits they cover.
    let recorded = super::lines::recorded(db, repo, &shas).await?;
    for c in commits.iter_mut() {
        c.line_records = recorded.get(&c.sha).map(|r| r.summary.clone());
    }
    totals.commits = commits.len();
    totals.agent_commits = agent_commits.len();

    // Lines, from the cached patches.
    let (lines, pr_added, agent_added) = match db
        .pull_patch(repo, number)
        .await?
        .and_then(|p| parse_patch(&p))
    {
        Some(files) => {
            let (linked, marked): (BTreeSet<String>, BTreeSet<String>) = agent_commits
                .iter()
                .filter(|sha| !recorded.contains_key(*sha))
                .cloned()
                .partition(|sha| {
                    commits
                        .iter()
                        .any(|c| &c.sha == sha && !c.sessions.is_empty())
                });
            let by_records = (!recorded.is_empty()).then(|| {
                let mut contents = Contents::default();
                for r in recorded.values() {
                    contents.add(r.lines.contents.clone());
                }
                (recorded.len(), contents)
            });
            let l = maths::line_share(
                &files,
                &agent_patches(db, repo, &linked).await?,
                &agent_patches(db, repo, &marked).await?,
                by_records,
            );
            (Some(l.share), l.added, l.agent_added)
        }
        None => (None, Vec::new(), Vec::new()),
    };

    // Coverage and tests (against the coverage base).
    let coverage = super::ci::coverage_section(
        db,
        repo,
        &pr.head_sha,
        &pr.base_ref,
        &pr_added,
        &agent_added,
    )
    .await?;
    // A fork's workflows get no OIDC token: its coverage comes only from a workflow_run.
    let coverage_missing = (coverage.is_none() && pr.from_fork == Some(true)).then(|| {
        "none uploaded: this pull request comes from a fork, whose workflows get no OIDC \
         token; upload its reports from a workflow_run workflow (README, \"Pull requests \
         from forks\")"
            .to_string()
    });
    let base_sha = coverage
        .as_ref()
        .and_then(|c| c["base"]["sha"].as_str().map(str::to_string));
    let tests = super::ci::tests_section(db, repo, &pr.head_sha, base_sha.as_deref()).await?;

    // CI at head, and first attempts over all the PR's commits.
    let ci = maths::ci(
        db.runs_at(repo, &pr.head_sha).await?,
        db.first_attempts(repo, &shas).await?,
    );

    // Deployments containing the merge, and the incidents they (or its commits) caused.
    let (deployments, merge_to_deploy) = match (&pr.merge_commit_sha, pr.merged_ns) {
        (Some(m), Some(merged)) => {
            let candidates = db.deployments_since(repo, merged - DEPLOY_SKEW_NS).await?;
            let tips: Vec<String> = candidates
                .iter()
                .map(|c| node::commit_str(repo, &c.sha))
                .collect();
            let ancestry = Ancestry::load(db, &tips, ANCESTRY_DEPTH).await?;
            let target = node::commit_str(repo, m);
            maths::deployments(candidates, Some(merged), |d| {
                ancestry.contains(&node::commit_str(repo, &d.sha), &target)
            })
        }
        _ => Default::default(),
    };
    // Incidents caused by a deployment that shipped the PR (per environment, the first
    // successful one containing its merge), or whose root cause names one of its commits
    // or its merge result.
    let mut shipping: BTreeMap<&str, i64> = BTreeMap::new();
    for d in deployments
        .iter()
        .filter(|d| d.state.as_deref() == Some("success"))
    {
        shipping.entry(d.environment.as_str()).or_insert(d.id);
    }
    let mut own: BTreeSet<&str> = shas.iter().map(String::as_str).collect();
    if pr.merged {
        own.extend(pr.merge_commit_sha.as_deref());
    }
    let incidents = incidents::linked(db, repo, &ctx.incident_environment)
        .await?
        .into_iter()
        .filter(|i| {
            i.deployment
                .is_some_and(|d| shipping.values().any(|s| *s == d))
                || i.commit.as_deref().is_some_and(|c| own.contains(c))
        })
        .map(|i| IncidentSummary {
            number: i.facts.number,
            title: i.facts.title,
            state: i.facts.state,
            environment: i.environment,
            deployment: i.deployment,
            evidence: i.evidence,
        })
        .collect();

    let timing = maths::timing(
        first_session_ns,
        pr.created_ns,
        pr.merged_ns,
        merge_to_deploy,
    );
    let mut report = PrReport {
        repository: repo.to_string(),
        number,
        title: pr.title,
        state: pr.state,
        author: pr.author_login,
        head_sha: pr.head_sha,
        base_ref: pr.base_ref,
        merge_commit_sha: pr.merge_commit_sha.filter(|_| pr.merged),
        headline: String::new(),
        totals,
        sessions: summaries,
        commits,
        commit_list,
        lines,
        ci,
        deployments,
        incidents,
        timing,
        coverage,
        coverage_missing,
        tests,
    };
    report.headline = crate::report::markdown::headline(&report);
    Ok(Some(Built { report }))
}

/// The PR's cost is its commits' shares of their sessions' cost, not the sessions' whole
/// cost ([`crate::metrics::cost`]): each session's share is set on its summary, and the
/// total on `totals`.
async fn split_cost(
    db: &Db,
    repo: &str,
    shas: &[String],
    links: &[SessionLink],
    summaries: &mut [SessionSummary],
    totals: &mut Totals,
) -> store::Result<()> {
    let pr: BTreeSet<String> = shas.iter().map(|s| node::commit_str(repo, s)).collect();
    let keys: Vec<&str> = summaries.iter().map(|s| s.session_id.as_str()).collect();
    // Every commit each session is directly linked to: the PR's commits' links, and the
    // stored ones elsewhere.
    let mut direct: BTreeSet<(String, String)> = db
        .links_of_sessions(&keys)
        .await?
        .into_iter()
        .filter(|l| l.evidence != Evidence::Merged.as_str() && !pr.contains(&l.to_key))
        .map(|l| (l.from_key, l.to_key))
        .collect();
    let mut originals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in links {
        let key = node::commit_str(repo, &l.sha);
        match &l.original {
            Some(o) => originals
                .entry(key)
                .or_default()
                .push(node::commit_str(repo, o)),
            None => {
                direct.insert((l.session_key.clone(), key));
            }
        }
    }
    let sizes = super::commit_sizes(db, direct.iter().map(|(_, c)| c.as_str())).await?;
    let costs: BTreeMap<String, f64> = summaries
        .iter()
        .filter_map(|s| Some((s.session_id.clone(), s.cost_usd?)))
        .collect();
    let shares = cost::shares(&costs, &direct, &sizes);
    let carried = cost::carried(&pr, &shares, &originals);
    for s in summaries.iter_mut() {
        if s.cost_usd.is_some() {
            let share = carried.get(s.session_id.as_str()).copied().unwrap_or(0.0);
            s.cost_in_pr_usd = Some(round6(share));
        }
    }
    if !costs.is_empty() {
        totals.cost_usd = Some(round6(carried.values().sum()));
    }
    Ok(())
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The cached patches of the agent-assisted commits (those not fetched yet are skipped).
async fn agent_patches(
    db: &Db,
    repo: &str,
    commits: &BTreeSet<String>,
) -> store::Result<Vec<Vec<PatchFile>>> {
    let mut out = Vec::new();
    for sha in commits {
        if let Some(files) = db
            .commit_patch(repo, sha)
            .await?
            .and_then(|p| parse_patch(&p))
        {
            out.push(files);
        }
    }
    Ok(out)
}
