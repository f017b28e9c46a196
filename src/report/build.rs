//! Assembles a [`PrReport`] from the stored graph: the PR's commits, the sessions linked
//! to them, patches (when fetched), CI at head, deployments containing the merge and the
//! incidents they caused. Reads indexed rows only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sqlx::SqlitePool;

use super::model::*;
use crate::graph::links::{LinkConfig, SessionLink, link_commits};
use crate::graph::neighbourhood::Ancestry;
use crate::pricing::PriceTable;
use crate::store::sessions::{self, TokenView};

/// What building a report needs besides the database.
#[derive(Clone, Debug, Default)]
pub struct ReportContext {
    pub prices: PriceTable,
    pub links: LinkConfig,
}

fn rfc3339(ns: Option<i64>) -> Option<String> {
    crate::store::rfc3339(ns, chrono::SecondsFormat::Secs)
}

/// Parents followed from a deployment when looking for the merge commit.
const ANCESTRY_DEPTH: u32 = 2000;

fn parse_time(s: &Option<String>) -> Option<i64> {
    s.as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .and_then(|t| t.timestamp_nanos_opt())
}

type PullRow = (
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// The PR's commits: as the API listed them, every head it had, and every commit pushed
/// to its head branch; oldest first.
pub async fn pull_commits(
    pool: &SqlitePool,
    repo: &str,
    number: i64,
    head_ref: Option<&str>,
) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT k.sha, min(k.position), c.authored_ns FROM ( \
           SELECT sha, position FROM pull_request_commits WHERE repo = ? AND number = ? \
           UNION SELECT substr(to_key, ?), NULL FROM links \
             WHERE from_kind = 'pull_request' AND from_key = ? AND relation = 'head' \
           UNION SELECT sha, NULL FROM commit_refs WHERE repo = ? AND ref = 'refs/heads/' || ? \
         ) k LEFT JOIN commits c ON c.repo = ? AND c.sha = k.sha \
         GROUP BY k.sha ORDER BY min(k.position) IS NULL, min(k.position), c.authored_ns, k.sha",
    )
    .bind(repo)
    .bind(number)
    .bind(repo.len() as i64 + 2)
    .bind(crate::github::plan::pull_key(repo, number))
    .bind(repo)
    .bind(head_ref.unwrap_or("\u{0}"))
    .bind(repo)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

#[derive(serde::Deserialize)]
struct PatchFile {
    filename: String,
    #[serde(default)]
    patch: Option<String>,
    #[serde(default)]
    additions: u64,
    #[serde(default)]
    deletions: u64,
}

/// Lines a unified diff adds, by content (trimmed of the `+`).
fn added_lines(patch: &str) -> impl Iterator<Item = &str> {
    patch
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| &l[1..])
}

/// Added lines of the PR diff: (path, new-file line numbers), all and agent-attributed.
type AddedLines = Vec<(String, Vec<u32>)>;

async fn line_share(
    pool: &SqlitePool,
    repo: &str,
    number: i64,
    agent_commits: &BTreeSet<String>,
) -> sqlx::Result<(Option<LineShare>, AddedLines, AddedLines)> {
    let pr: Option<String> =
        sqlx::query_scalar("SELECT files FROM pull_request_patches WHERE repo = ? AND number = ?")
            .bind(repo)
            .bind(number)
            .fetch_optional(pool)
            .await?;
    let Some(files) = pr.and_then(|f| serde_json::from_str::<Vec<PatchFile>>(&f).ok()) else {
        return Ok((None, Vec::new(), Vec::new()));
    };
    // What agent-linked commits added, per file and line content.
    let mut by_agents: HashMap<String, HashSet<String>> = HashMap::new();
    for sha in agent_commits {
        let patch: Option<String> =
            sqlx::query_scalar("SELECT files FROM commit_patches WHERE repo = ? AND sha = ?")
                .bind(repo)
                .bind(sha)
                .fetch_optional(pool)
                .await?;
        for f in patch
            .and_then(|p| serde_json::from_str::<Vec<PatchFile>>(&p).ok())
            .unwrap_or_default()
        {
            let set = by_agents.entry(f.filename.clone()).or_default();
            for l in added_lines(f.patch.as_deref().unwrap_or("")) {
                set.insert(l.to_string());
            }
        }
    }
    let (mut added, mut removed, mut agent_added) = (0u64, 0u64, 0u64);
    let (mut pr_lines, mut agent_lines): (AddedLines, AddedLines) = (Vec::new(), Vec::new());
    for f in &files {
        added += f.additions;
        removed += f.deletions;
        let Some(patch) = &f.patch else { continue };
        let numbers = crate::ci::metrics::added_lines(patch);
        let set = by_agents.get(&f.filename);
        let agents: Vec<u32> = added_lines(patch)
            .zip(&numbers)
            .filter(|(l, _)| set.is_some_and(|s| s.contains(*l)))
            .map(|(_, n)| *n)
            .collect();
        agent_added += agents.len() as u64;
        if !agents.is_empty() {
            agent_lines.push((f.filename.clone(), agents));
        }
        pr_lines.push((f.filename.clone(), numbers));
    }
    let share = LineShare {
        added,
        removed,
        agent_added,
        agent_share: if added == 0 {
            0.0
        } else {
            ((agent_added as f64 / added as f64) * 1000.0).round() / 1000.0
        },
    };
    Ok((Some(share), pr_lines, agent_lines))
}

/// Builds the report of `repo#number`, or `None` when the PR is unknown.
pub async fn build(
    pool: &SqlitePool,
    ctx: &ReportContext,
    repo: &str,
    number: i64,
) -> anyhow::Result<Option<(PrReport, Vec<SessionLink>, Vec<String>)>> {
    let repo = repo.to_ascii_lowercase();
    let row: Option<PullRow> = sqlx::query_as(
        "SELECT title, state, author_login, head_sha, base_ref, head_ref, merge_commit_sha, \
         created_ns, merged_ns FROM pull_requests WHERE repo = ? AND number = ?",
    )
    .bind(&repo)
    .bind(number)
    .fetch_optional(pool)
    .await?;
    let Some((
        title,
        state,
        author,
        head_sha,
        base_ref,
        head_ref,
        merge_sha,
        created_ns,
        merged_ns,
    )) = row
    else {
        return Ok(None);
    };
    let shas = pull_commits(pool, &repo, number, head_ref.as_deref()).await?;
    let links = link_commits(pool, &ctx.links, &repo, &shas).await?;

    // Sessions, in order of first activity.
    let mut session_keys: Vec<&str> = links.iter().map(|l| l.session_key.as_str()).collect();
    session_keys.sort();
    session_keys.dedup();
    let mut summaries = Vec::new();
    let mut totals = Totals::default();
    let mut tokens: Option<TokenView> = None;
    let mut first_session_ns: Option<i64> = None;
    for s in sessions::get_many(pool, &ctx.prices, &session_keys).await? {
        let started = parse_time(&s.started_at);
        first_session_ns = match (first_session_ns, started) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(c) = s.cost_usd {
            totals.cost_usd = Some(totals.cost_usd.unwrap_or(0.0) + c);
            totals.cost_estimated |= s.cost_estimated;
        }
        if let Some(a) = s.active_seconds {
            totals.active_seconds = Some(totals.active_seconds.unwrap_or(0.0) + a);
        }
        if let Some(t) = s.tokens {
            let acc = tokens.get_or_insert_with(TokenView::default);
            acc.input += t.input;
            acc.output += t.output;
            acc.cache_read += t.cache_read;
            acc.cache_creation += t.cache_creation;
            acc.reasoning += t.reasoning;
        }
        if let Some(a) = &s.agent {
            totals.agents.push(a.clone());
        }
        if let Some(u) = s.user.email.clone().or(s.user.id.clone()) {
            totals.users.push(u);
        }
        summaries.push(SessionSummary {
            session_id: s.session_id.clone(),
            agent: s.agent.clone(),
            user: s.user.email.clone().or(s.user.id.clone()),
            models: s.models.clone(),
            tokens: s.tokens,
            cost_usd: s.cost_usd,
            cost_estimated: s.cost_estimated,
            active_seconds: s.active_seconds,
            started_at: s.started_at.clone(),
            lines_added: s.lines_added,
            links: links
                .iter()
                .filter(|l| l.session_key == s.session_id)
                .map(|l| LinkView {
                    sha: l.sha.clone(),
                    evidence: l.evidence,
                    confidence: l.confidence,
                    detail: l.detail.clone(),
                })
                .collect(),
        });
    }
    summaries.sort_by(|a, b| (&a.started_at, &a.session_id).cmp(&(&b.started_at, &b.session_id)));
    totals.cost_usd = totals.cost_usd.map(|c| (c * 1e6).round() / 1e6);
    totals.sessions = summaries.len();
    totals.tokens = tokens;
    totals.agents.sort();
    totals.agents.dedup();
    totals.users.sort();
    totals.users.dedup();

    // Commits.
    let mut commits = Vec::new();
    let mut agent_commits: BTreeSet<String> = BTreeSet::new();
    let mut details: HashMap<
        String,
        (Option<String>, Option<String>, Option<String>, Option<i64>),
    > = HashMap::new();
    let mut trailer_agents: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in shas.chunks(500) {
        let ph = crate::store::placeholders(chunk.len());
        let mut q = sqlx::query_as::<
            _,
            (
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<i64>,
            ),
        >(sqlx::AssertSqlSafe(format!(
            "SELECT sha, message, author_login, author_email, authored_ns FROM commits \
                 WHERE repo = ? AND sha IN ({ph})"
        )))
        .bind(&repo);
        for s in chunk {
            q = q.bind(s);
        }
        for (sha, message, login, email, at) in q.fetch_all(pool).await? {
            details.insert(sha, (message, login, email, at));
        }
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
            "SELECT sha, agent FROM commit_agents WHERE repo = ? AND sha IN ({ph}) ORDER BY agent"
        )))
        .bind(&repo);
        for s in chunk {
            q = q.bind(s);
        }
        for (sha, agent) in q.fetch_all(pool).await? {
            trailer_agents.entry(sha).or_default().push(agent);
        }
    }
    for sha in &shas {
        let (message, login, email, at) = details.remove(sha).unwrap_or_default();
        let agents = trailer_agents.remove(sha).unwrap_or_default();
        let sessions: Vec<String> = links
            .iter()
            .filter(|l| &l.sha == sha)
            .map(|l| l.session_key.clone())
            .collect();
        let assisted = !agents.is_empty() || !sessions.is_empty();
        if assisted {
            agent_commits.insert(sha.clone());
        }
        commits.push(CommitSummary {
            sha: sha.clone(),
            subject: message
                .as_deref()
                .and_then(|m| m.lines().next())
                .map(str::to_string),
            author: login.or(email),
            authored_at: rfc3339(at),
            agent_assisted: assisted,
            agents,
            sessions,
        });
    }
    totals.commits = commits.len();
    totals.agent_commits = agent_commits.len();
    let (lines, pr_added, agent_added) = line_share(pool, &repo, number, &agent_commits).await?;
    let coverage = crate::ci::metrics::coverage_section(
        pool,
        &repo,
        &head_sha,
        &base_ref,
        &pr_added,
        &agent_added,
    )
    .await?;
    let base_sha = coverage
        .as_ref()
        .and_then(|c| c["base"]["sha"].as_str().map(str::to_string));
    let tests =
        crate::ci::metrics::tests_section(pool, &repo, &head_sha, base_sha.as_deref()).await?;

    // CI at head, and first attempts over all the PR's commits.
    let runs: Vec<(String, i64, i64, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT kind, id, attempt, name, status, conclusion FROM ci_runs WHERE repo = ? AND head_sha = ? \
         AND kind IN ('workflow_run', 'check_suite', 'status') ORDER BY kind, name, id, attempt",
    )
    .bind(&repo)
    .bind(&head_sha)
    .fetch_all(pool)
    .await?;
    let mut ci = CiSummary::default();
    // A run's outcome is its latest attempt's; earlier attempts count as reruns.
    let latest: HashMap<(String, i64), i64> = runs.iter().fold(HashMap::new(), |mut m, r| {
        let e = m.entry((r.0.clone(), r.1)).or_insert(r.2);
        *e = (*e).max(r.2);
        m
    });
    for (kind, id, attempt, name, status, conclusion) in runs {
        if latest.get(&(kind.clone(), id)) == Some(&attempt) {
            match (status.as_deref(), conclusion.as_deref()) {
                (Some("completed"), Some("success" | "neutral" | "skipped")) => ci.passed += 1,
                (Some("completed"), _) => ci.failed += 1,
                _ => ci.pending += 1,
            }
        }
        if attempt > 1 {
            ci.reruns += 1;
        }
        ci.runs.push(RunSummary {
            kind,
            id,
            attempt,
            name,
            status,
            conclusion,
        });
    }
    if !shas.is_empty() {
        let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), coalesce(sum(conclusion = 'success'), 0) FROM ci_runs WHERE repo = ? \
             AND kind = 'workflow_run' AND attempt = 1 AND status = 'completed' AND head_sha IN ({})",
            crate::store::placeholders(shas.len())
        )))
        .bind(&repo);
        for s in &shas {
            q = q.bind(s);
        }
        let (total, ok) = q.fetch_one(pool).await?;
        if total > 0 {
            ci.first_run_pass_rate = Some(((ok as f64 / total as f64) * 1000.0).round() / 1000.0);
        }
    }

    // Deployments containing the merge (or, unmerged, a PR commit), and incidents.
    let targets: Vec<String> = match (&merge_sha, merged_ns) {
        (Some(m), Some(_)) => vec![format!("{repo}@{m}")],
        _ => Vec::new(),
    };
    let mut deployments = Vec::new();
    let mut merge_to_deploy = BTreeMap::new();
    if !targets.is_empty() {
        let candidates: Vec<(i64, String, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT d.id, d.sha, d.environment, d.created_ns, (SELECT s.state FROM deployment_statuses s \
               WHERE s.deployment_id = d.id ORDER BY s.created_ns DESC, s.id DESC LIMIT 1) \
             FROM deployments d WHERE d.repo = ? AND coalesce(d.created_ns, 0) >= ? ORDER BY d.created_ns, d.id",
        )
        .bind(&repo)
        .bind(merged_ns.unwrap_or(0) - 3_600_000_000_000)
        .fetch_all(pool)
        .await?;
        let tips: Vec<String> = candidates
            .iter()
            .map(|c| format!("{repo}@{}", c.1))
            .collect();
        let ancestry = Ancestry::load(pool, &tips, ANCESTRY_DEPTH).await?;
        for (id, sha, env, created, dstate) in candidates {
            let tip = format!("{repo}@{sha}");
            if targets.iter().any(|t| ancestry.contains(&tip, t)) {
                if let (Some(c), Some(m)) = (created, merged_ns)
                    && dstate.as_deref() == Some("success")
                {
                    merge_to_deploy
                        .entry(env.clone())
                        .or_insert((c - m) / 1_000_000_000);
                }
                deployments.push(DeploymentSummary {
                    id,
                    environment: env,
                    state: dstate,
                    created_at: rfc3339(created),
                });
            }
        }
    }
    let mut incidents = Vec::new();
    let deployment_keys: Vec<String> = deployments
        .iter()
        .map(|d| format!("deployment:{}", d.id))
        .collect();
    let commit_keys: Vec<String> = shas.iter().map(|s| format!("{repo}@{s}")).collect();
    let cause_keys: Vec<&String> = deployment_keys.iter().chain(commit_keys.iter()).collect();
    if !cause_keys.is_empty() {
        let mut q = sqlx::query_as::<_, (i64, Option<String>, String)>(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT i.number, i.title, i.state FROM incidents i JOIN links l \
               ON l.from_kind = 'incident' AND l.from_key = i.repo || '!' || i.number AND l.relation = 'caused_by' \
             WHERE i.repo = ? AND i.is_incident = 1 AND l.to_key IN ({}) ORDER BY i.number",
            crate::store::placeholders(cause_keys.len())
        )))
        .bind(&repo);
        for k in &cause_keys {
            q = q.bind(*k);
        }
        for (number, title, state) in q.fetch_all(pool).await? {
            incidents.push(IncidentSummary {
                number,
                title,
                state,
            });
        }
    }

    let timing = Timing {
        first_session_at: rfc3339(first_session_ns),
        created_at: rfc3339(created_ns),
        merged_at: rfc3339(merged_ns),
        first_session_to_merge_seconds: match (first_session_ns, merged_ns) {
            (Some(f), Some(m)) => Some((m - f) / 1_000_000_000),
            _ => None,
        },
        merge_to_deploy_seconds: merge_to_deploy,
    };
    if state == "merged" {
        totals.cost_per_merged_pr = totals.cost_usd;
    }
    let mut report = PrReport {
        repository: repo.clone(),
        number,
        title,
        state,
        author,
        head_sha,
        base_ref,
        headline: String::new(),
        totals,
        sessions: summaries,
        commits,
        lines,
        ci,
        deployments,
        incidents,
        timing,
        coverage,
        tests,
    };
    report.headline = super::markdown::headline(&report);
    Ok(Some((report, links, shas)))
}
