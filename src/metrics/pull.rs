//! A pull request's impact, computed from the rows the store loads: its sessions and
//! their totals, its commits, the agent share of its added lines, CI at its head, the
//! deployments that shipped it, and its times.
//!
//! - A commit is agent-assisted when a session is linked to it or an agent trailer names
//!   an agent.
//! - An added line of the PR diff is agent-attributed when a commit of the PR linked to
//!   a session added a line with the same content in the same file. Lines of commits an
//!   agent trailer marks but no session is linked to are counted apart ("marked as
//!   agent-written, no telemetry"), never as agent lines.
//! - CI at head: each run's outcome is its latest attempt's (passed: success, neutral or
//!   skipped; failed: any other conclusion; pending: not completed); earlier attempts
//!   count as reruns. The first-run pass rate is over first attempts of completed
//!   workflow runs at any of the PR's commits.
//! - Merge to deploy: per environment, from the merge to the first successful
//!   deployment whose SHA has the merge commit among its ancestors.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::diff;
use super::line_records::Contents;
use super::model::*;
use super::sessions::{SessionView, TokenView};
use crate::graph::links::SessionLink;
use crate::store::nodes::{CommitRecord, DeploymentRecord, RunRecord};

fn rfc3339(ns: Option<i64>) -> Option<String> {
    crate::time::rfc3339(ns, chrono::SecondsFormat::Secs)
}

/// One file of a patch as the GitHub API lists it (cached as JSON).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PatchFile {
    pub filename: String,
    #[serde(default)]
    pub patch: Option<String>,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
}

/// A cached patch's files; `None` when the cache holds something unreadable.
pub fn parse_patch(json: &str) -> Option<Vec<PatchFile>> {
    serde_json::from_str(json).ok()
}

/// Added lines: (path, new-file line numbers).
pub type AddedLines = Vec<(String, Vec<u32>)>;

/// What the line share gives: the share, the PR's added lines, and those agents wrote.
pub struct Lines {
    pub share: LineShare,
    pub added: AddedLines,
    pub agent_added: AddedLines,
}

/// What some commits added, per file and line content.
fn added_by(commits: &[Vec<PatchFile>]) -> HashMap<&str, HashSet<&str>> {
    let mut out: HashMap<&str, HashSet<&str>> = HashMap::new();
    for files in commits {
        for f in files {
            let set = out.entry(f.filename.as_str()).or_default();
            for l in diff::added_lines(f.patch.as_deref().unwrap_or("")) {
                set.insert(l.text);
            }
        }
    }
    out
}

/// The agent share of the PR diff's added lines, given the patches of its session-linked
/// commits, and apart the lines of its trailer-only commits. `recorded`: how many commits
/// have line records, and the contents of the lines they say agents wrote
/// ([`super::line_records`]); those commits are in neither list.
pub fn line_share(
    pr: &[PatchFile],
    session_commits: &[Vec<PatchFile>],
    trailer_only_commits: &[Vec<PatchFile>],
    recorded: Option<(usize, Contents)>,
) -> Lines {
    let by_agents = added_by(session_commits);
    let by_trailers = added_by(trailer_only_commits);
    let (record_commits, mut by_records) = recorded.unzip();
    let mut record_added = 0u64;
    let (mut added, mut removed, mut agent_added, mut trailer_only) = (0u64, 0u64, 0u64, 0u64);
    let (mut pr_lines, mut agent_lines): (AddedLines, AddedLines) = (Vec::new(), Vec::new());
    for f in pr {
        added += f.additions;
        removed += f.deletions;
        let Some(patch) = &f.patch else { continue };
        let lines = diff::added_lines(patch);
        let set = by_agents.get(f.filename.as_str());
        let agents: Vec<u32> = lines
            .iter()
            .filter(|l| {
                set.is_some_and(|s| s.contains(l.text))
                    || by_records.as_mut().is_some_and(|r| {
                        let taken = r.take(&f.filename, l.text);
                        record_added += u64::from(taken);
                        taken
                    })
            })
            .map(|l| l.number)
            .collect();
        let marked = by_trailers.get(f.filename.as_str());
        trailer_only += lines
            .iter()
            .filter(|l| {
                marked.is_some_and(|s| s.contains(l.text))
                    && !set.is_some_and(|s| s.contains(l.text))
            })
            .count() as u64;
        agent_added += agents.len() as u64;
        if !agents.is_empty() {
            agent_lines.push((f.filename.clone(), agents));
        }
        pr_lines.push((f.filename.clone(), lines.iter().map(|l| l.number).collect()));
    }
    Lines {
        share: LineShare {
            added,
            removed,
            agent_added,
            agent_share: if added == 0 {
                0.0
            } else {
                ((agent_added as f64 / added as f64) * 1000.0).round() / 1000.0
            },
            trailer_only_added: trailer_only,
            line_records: record_commits.map(|commits| LineRecordShare {
                commits,
                agent_added: record_added,
            }),
        },
        added: pr_lines,
        agent_added: agent_lines,
    }
}

/// The PR's sessions (in order of first activity) and their totals, with the time of
/// the first session's start.
pub fn sessions(
    views: Vec<SessionView>,
    links: &[SessionLink],
) -> (Vec<SessionSummary>, Totals, Option<i64>) {
    let mut summaries = Vec::new();
    let mut totals = Totals::default();
    let mut tokens: Option<TokenView> = None;
    let mut first_session_ns: Option<i64> = None;
    for s in views {
        let started = s.started_at.as_deref().and_then(crate::time::parse_rfc3339);
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
        let user = s.user.email.clone().or(s.user.id.clone());
        if let Some(u) = &user {
            totals.users.push(u.clone());
        }
        summaries.push(SessionSummary {
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
            session_id: s.session_id,
            agent: s.agent,
            user,
            login: None,
            models: s.models,
            tokens: s.tokens,
            cost_usd: s.cost_usd,
            cost_in_pr_usd: None,
            cost_estimated: s.cost_estimated,
            active_seconds: s.active_seconds,
            started_at: s.started_at,
            lines_added: s.lines_added,
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
    (summaries, totals, first_session_ns)
}

/// The PR's commits in order, and which are agent-assisted (a trailer names an agent,
/// or a session is linked). `session_agents` is each linked session's agent.
pub fn commits(
    shas: &[String],
    records: Vec<CommitRecord>,
    trailer_agents: &HashMap<String, Vec<String>>,
    links: &[SessionLink],
    session_agents: &HashMap<String, String>,
) -> (Vec<CommitSummary>, BTreeSet<String>) {
    let mut details: HashMap<String, CommitRecord> =
        records.into_iter().map(|c| (c.sha.clone(), c)).collect();
    let mut out = Vec::with_capacity(shas.len());
    let mut assisted_set = BTreeSet::new();
    for sha in shas {
        let c = details.remove(sha).unwrap_or_default();
        let agents = trailer_agents.get(sha).cloned().unwrap_or_default();
        let sessions: Vec<String> = links
            .iter()
            .filter(|l| &l.sha == sha)
            .map(|l| l.session_key.clone())
            .collect();
        let assisted = !agents.is_empty() || !sessions.is_empty();
        let mut by_sessions: Vec<String> = sessions
            .iter()
            .filter_map(|k| session_agents.get(k).cloned())
            .collect();
        by_sessions.sort();
        by_sessions.dedup();
        if assisted {
            assisted_set.insert(sha.clone());
        }
        out.push(CommitSummary {
            sha: sha.clone(),
            subject: c
                .message
                .as_deref()
                .and_then(|m| m.lines().next())
                .map(str::to_string),
            author: c.author_login.or(c.author_email),
            authored_at: rfc3339(c.authored_ns),
            agent_assisted: assisted,
            agents,
            session_agents: by_sessions,
            sessions,
            line_records: None,
        });
    }
    (out, assisted_set)
}

/// CI at the PR's head (workflow runs, check suites, statuses), and the first-run pass
/// rate from `(completed first attempts, succeeded)` over its commits.
pub fn ci(runs: Vec<RunRecord>, first_attempts: (i64, i64)) -> CiSummary {
    let mut runs: Vec<RunRecord> = runs
        .into_iter()
        .filter(|r| matches!(r.kind.as_str(), "workflow_run" | "check_suite" | "status"))
        .collect();
    runs.sort_by(|a, b| {
        (&a.kind, &a.name, a.id, a.attempt).cmp(&(&b.kind, &b.name, b.id, b.attempt))
    });
    let mut ci = CiSummary::default();
    let latest: HashMap<(&str, i64), i64> = runs.iter().fold(HashMap::new(), |mut m, r| {
        let e = m.entry((r.kind.as_str(), r.id)).or_insert(r.attempt);
        *e = (*e).max(r.attempt);
        m
    });
    let mut out = Vec::with_capacity(runs.len());
    for r in &runs {
        if latest.get(&(r.kind.as_str(), r.id)) == Some(&r.attempt) {
            match (r.status.as_deref(), r.conclusion.as_deref()) {
                (Some("completed"), Some("success" | "neutral" | "skipped")) => ci.passed += 1,
                (Some("completed"), _) => ci.failed += 1,
                _ => ci.pending += 1,
            }
        }
        if r.attempt > 1 {
            ci.reruns += 1;
        }
        out.push(RunSummary {
            kind: r.kind.clone(),
            id: r.id,
            attempt: r.attempt,
            name: r.name.clone(),
            status: r.status.clone(),
            conclusion: r.conclusion.clone(),
        });
    }
    ci.runs = out;
    let (total, ok) = first_attempts;
    if total > 0 {
        ci.first_run_pass_rate = Some(((ok as f64 / total as f64) * 1000.0).round() / 1000.0);
    }
    ci
}

/// The deployments among `candidates` that contain the merge (`contains(deployment)`),
/// and seconds from merge to the first successful one per environment.
pub fn deployments(
    candidates: Vec<DeploymentRecord>,
    merged_ns: Option<i64>,
    contains: impl Fn(&DeploymentRecord) -> bool,
) -> (Vec<DeploymentSummary>, BTreeMap<String, i64>) {
    let mut out = Vec::new();
    let mut merge_to_deploy = BTreeMap::new();
    for d in candidates {
        if !contains(&d) {
            continue;
        }
        if let (Some(c), Some(m)) = (d.created_ns, merged_ns)
            && d.state.as_deref() == Some("success")
        {
            merge_to_deploy
                .entry(d.environment.clone())
                .or_insert((c - m) / 1_000_000_000);
        }
        out.push(DeploymentSummary {
            id: d.id,
            environment: d.environment,
            state: d.state,
            created_at: rfc3339(d.created_ns),
        });
    }
    (out, merge_to_deploy)
}

/// The PR's times.
pub fn timing(
    first_session_ns: Option<i64>,
    created_ns: Option<i64>,
    merged_ns: Option<i64>,
    merge_to_deploy_seconds: BTreeMap<String, i64>,
) -> Timing {
    Timing {
        first_session_at: rfc3339(first_session_ns),
        created_at: rfc3339(created_ns),
        merged_at: rfc3339(merged_ns),
        first_session_to_merge_seconds: match (first_session_ns, merged_ns) {
            (Some(f), Some(m)) => Some((m - f) / 1_000_000_000),
            _ => None,
        },
        merge_to_deploy_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, patch: &str, additions: u64) -> PatchFile {
        PatchFile {
            filename: name.into(),
            patch: Some(patch.into()),
            additions,
            deletions: 0,
        }
    }

    #[test]
    fn line_share_counts_added_lines_an_agent_commit_also_added() {
        let pr = vec![file("a.rs", "@@ -0,0 +1,3 @@\n+one\n+two\n+three\n", 3)];
        let agent = vec![vec![file("a.rs", "@@ -0,0 +1,1 @@\n+two\n", 1)]];
        let l = line_share(&pr, &agent, &[], None);
        assert_eq!((l.share.added, l.share.agent_added), (3, 1));
        assert_eq!(l.share.agent_share, 0.333);
        assert_eq!(l.agent_added, vec![("a.rs".to_string(), vec![2])]);
        assert_eq!(l.added, vec![("a.rs".to_string(), vec![1, 2, 3])]);
        // The same content in another file is not the agent's.
        let other = vec![vec![file("b.rs", "@@ -0,0 +1,1 @@\n+two\n", 1)]];
        assert_eq!(line_share(&pr, &other, &[], None).share.agent_added, 0);
        // A trailer-only commit's lines are counted apart, never as the agents'.
        let marked = vec![vec![file("a.rs", "@@ -0,0 +1,2 @@\n+one\n+two\n", 2)]];
        let l = line_share(&pr, &agent, &marked, None);
        assert_eq!((l.share.agent_added, l.share.trailer_only_added), (1, 1));
    }

    #[test]
    fn line_records_decide_their_commits_lines_and_others_keep_the_commit_rule() {
        let pr = vec![
            file("a.rs", "@@ -0,0 +1,3 @@\n+agent\n+human\n+agent\n", 3),
            file("b.rs", "@@ -0,0 +1,1 @@\n+linked\n", 1),
        ];
        let linked = vec![vec![file("b.rs", "@@ -0,0 +1,1 @@\n+linked\n", 1)]];
        // The records name one `agent` line: only one of the two identical lines counts.
        let mut recorded = Contents::default();
        recorded
            .0
            .entry("a.rs".into())
            .or_default()
            .insert("agent".into(), 1);
        let l = line_share(&pr, &linked, &[], Some((1, recorded)));
        assert_eq!((l.share.added, l.share.agent_added), (4, 2));
        assert_eq!(
            l.share.line_records,
            Some(LineRecordShare {
                commits: 1,
                agent_added: 1
            })
        );
        assert_eq!(
            l.agent_added,
            vec![("a.rs".to_string(), vec![1]), ("b.rs".to_string(), vec![1])]
        );
        assert_eq!(line_share(&pr, &linked, &[], None).share.line_records, None);
    }

    fn run(kind: &str, id: i64, attempt: i64, status: &str, conclusion: Option<&str>) -> RunRecord {
        RunRecord {
            kind: kind.into(),
            id,
            attempt,
            name: Some("ci".into()),
            status: Some(status.into()),
            conclusion: conclusion.map(str::to_string),
            trace_id: None,
        }
    }

    #[test]
    fn ci_takes_each_runs_latest_attempt_and_counts_reruns() {
        let c = ci(
            vec![
                run("workflow_run", 1, 1, "completed", Some("failure")),
                run("workflow_run", 1, 2, "completed", Some("success")),
                run("status", 7, 1, "pending", None),
                run("workflow_job", 9, 1, "completed", Some("failure")),
            ],
            (4, 3),
        );
        assert_eq!((c.passed, c.failed, c.pending, c.reruns), (1, 0, 1, 1));
        assert_eq!(c.runs.len(), 3, "jobs are not runs of their own");
        assert_eq!(c.first_run_pass_rate, Some(0.75));
        assert_eq!(ci(Vec::new(), (0, 0)).first_run_pass_rate, None);
    }
}
