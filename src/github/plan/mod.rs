//! What a webhook event means for the graph: a pure translation from [`Event`] to the
//! rows and links to upsert ([`Op`]). Validation happens here too, so a delivery whose
//! SHAs or IDs are unusable is refused before it is acknowledged.

use super::events::{Event, PayloadError};
use super::trailers;
use crate::graph::incidents::{environment as incident_environment, root_cause};
use crate::ids::node::{
    commit as commit_key, deployment as deployment_key, pull as pull_key, run as run_key,
};
use crate::ids::{CommitSha, workflow_trace_id};
use crate::store::github::{CommitRow, DeploymentRow, IncidentRow, LinkRow, Op, PullRow, RunRow};

/// Repository names are case-insensitive on GitHub: keys use the lowercase form.
pub fn repo_name(r: &super::events::Repository) -> String {
    r.full_name.to_ascii_lowercase()
}

/// Notes the repository's default branch when its payload names one.
fn default_branch(ops: &mut Vec<Op>, r: &super::events::Repository) {
    if let Some(branch) = r
        .default_branch
        .as_deref()
        .filter(|b| !b.is_empty() && b.len() <= 255)
    {
        ops.push(Op::DefaultBranch {
            repo: repo_name(r),
            branch: branch.to_string(),
        });
    }
}

/// A version that orders states of one object: its update time, then a rank that
/// breaks ties the same way whatever order deliveries arrive in.
fn version(updated_ns: Option<i64>, rank: u8, tiebreak: &str) -> String {
    format!("{:020}:{rank}:{tiebreak}", updated_ns.unwrap_or(0).max(0))
}

fn sha(event: &str, path: &str, s: &str) -> Result<CommitSha, PayloadError> {
    CommitSha::parse(s).map_err(|e| PayloadError {
        event: event.to_string(),
        path: path.to_string(),
        message: e.to_string(),
    })
}

fn link(
    from_kind: &'static str,
    from_key: String,
    relation: &'static str,
    to_kind: &'static str,
    to_key: String,
    evidence: &str,
) -> Op {
    Op::Link(LinkRow {
        from_kind,
        from_key,
        to_kind,
        to_key,
        relation,
        evidence: evidence.to_string(),
        confidence: 1.0,
    })
}

/// A CI run's version: its update time, then how far along it is, then its conclusion.
fn run_version(
    updated_ns: Option<i64>,
    status: &Option<String>,
    conclusion: &Option<String>,
) -> String {
    version(
        updated_ns,
        run_rank(status.as_deref()),
        conclusion.as_deref().unwrap_or(""),
    )
}

fn run_rank(status: Option<&str>) -> u8 {
    match status {
        Some("completed") => 4,
        Some("in_progress") => 3,
        Some("queued" | "waiting" | "pending") => 2,
        _ => 1,
    }
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Translates an event into upserts. `incident_label` is compared case-insensitively.
pub fn plan(event: &Event, incident_label: &str) -> Result<Vec<Op>, PayloadError> {
    let mut ops = Vec::new();
    match event {
        Event::Ping => {}
        Event::Push(p) => {
            let repo = &repo_name(&p.repository);
            default_branch(&mut ops, &p.repository);
            // Pushed commits chain from `before`, except after a force push, where
            // `before` is the history that was replaced.
            let mut parent = (p.before != ZERO_SHA && !p.forced)
                .then(|| sha("push", "before", &p.before))
                .transpose()?;
            for (i, c) in p.commits.iter().enumerate() {
                let id = sha("push", &format!("commits[{i}].id"), &c.id)?;
                let mut files: Vec<(String, &'static str)> = Vec::new();
                for (list, change) in [
                    (&c.added, "added"),
                    (&c.modified, "modified"),
                    (&c.removed, "removed"),
                ] {
                    files.extend(list.iter().map(|f| (f.clone(), change)));
                }
                commit_ops(
                    &mut ops,
                    CommitFacts {
                        repo,
                        id: &id,
                        message: &c.message,
                        author: c.author.clone().unwrap_or_default(),
                        committer: c.committer.clone().unwrap_or_default(),
                        authored_ns: c.timestamp,
                        files,
                        parents: parent.as_slice(),
                        evidence: "push",
                    },
                );
                if p.git_ref.starts_with("refs/heads/") {
                    ops.push(Op::CommitRef {
                        repo: repo.clone(),
                        sha: id.clone(),
                        git_ref: p.git_ref.clone(),
                        pushed_ns: p.repository.pushed_at,
                    });
                }
                parent = Some(id);
            }
        }
        Event::PullRequest(e) => {
            let pr = &e.pull_request;
            let repo = &repo_name(&e.repository);
            default_branch(&mut ops, &e.repository);
            let head = sha("pull_request", "pull_request.head.sha", &pr.head.sha)?;
            let base = sha("pull_request", "pull_request.base.sha", &pr.base.sha)?;
            let merged = pr.merged.unwrap_or(false) || pr.merged_at.is_some();
            let merge_sha = pr
                .merge_commit_sha
                .as_deref()
                .map(|s| sha("pull_request", "pull_request.merge_commit_sha", s))
                .transpose()?;
            let rank = if merged {
                3
            } else if pr.state == "closed" {
                2
            } else {
                1
            };
            let draft = pr.draft.unwrap_or(false);
            let key = pull_key(repo, pr.number);
            ops.push(link(
                "pull_request",
                key.clone(),
                "head",
                "commit",
                commit_key(repo, &head),
                "pull_request",
            ));
            if let (true, Some(m)) = (merged, &merge_sha) {
                ops.push(link(
                    "pull_request",
                    key.clone(),
                    "merged_as",
                    "commit",
                    commit_key(repo, m),
                    "pull_request",
                ));
            }
            ops.push(Op::Pull(Box::new(PullRow {
                repo: repo.clone(),
                number: pr.number,
                title: pr.title.clone(),
                state: if merged {
                    "merged".into()
                } else {
                    pr.state.clone()
                },
                draft,
                merged,
                author_login: pr.user.as_ref().and_then(|u| u.login.clone()),
                head_ref: pr.head.git_ref.clone(),
                head_sha: head.to_string(),
                base_ref: pr.base.git_ref.clone(),
                base_sha: base.to_string(),
                merge_commit_sha: merge_sha.map(|s| s.to_string()),
                from_fork: pr
                    .head
                    .repo
                    .as_ref()
                    .map(|h| !h.full_name.eq_ignore_ascii_case(repo)),
                created_ns: pr.created_at,
                updated_ns: pr.updated_at,
                closed_ns: pr.closed_at,
                merged_ns: pr.merged_at,
                version: version(
                    pr.updated_at,
                    rank,
                    &format!("{}:{}", u8::from(!draft), head),
                ),
            })));
        }
        Event::WorkflowRun(e) => {
            let r = &e.workflow_run;
            let repo = &repo_name(&e.repository);
            let head = sha("workflow_run", "workflow_run.head_sha", &r.head_sha)?;
            let attempt = r.run_attempt.unwrap_or(1);
            let key = run_key("workflow_run", r.id, attempt);
            ops.push(link(
                "ci_run",
                key,
                "runs_on",
                "commit",
                commit_key(repo, &head),
                "workflow_run",
            ));
            ops.push(Op::Run(Box::new(RunRow {
                kind: "workflow_run",
                id: r.id,
                attempt,
                repo: repo.clone(),
                name: r.name.clone(),
                event: r.event.clone(),
                app: Some("github-actions".into()),
                parent_id: None,
                head_sha: head.to_string(),
                head_branch: r.head_branch.clone(),
                status: r.status.clone(),
                conclusion: r.conclusion.clone(),
                trace_id: Some(workflow_trace_id(r.id, attempt)),
                started_ns: r.run_started_at.or(r.created_at),
                completed_ns: (r.status.as_deref() == Some("completed"))
                    .then_some(r.updated_at)
                    .flatten(),
                updated_ns: r.updated_at,
                version: run_version(r.updated_at, &r.status, &r.conclusion),
            })));
        }
        Event::WorkflowJob(e) => {
            let j = &e.workflow_job;
            let repo = &repo_name(&e.repository);
            let head = sha("workflow_job", "workflow_job.head_sha", &j.head_sha)?;
            let attempt = j.run_attempt.unwrap_or(1);
            let key = run_key("workflow_job", j.id, attempt);
            ops.push(link(
                "ci_run",
                key.clone(),
                "runs_on",
                "commit",
                commit_key(repo, &head),
                "workflow_job",
            ));
            ops.push(link(
                "ci_run",
                key,
                "part_of",
                "ci_run",
                run_key("workflow_run", j.run_id, attempt),
                "workflow_job",
            ));
            let updated = j.completed_at.or(j.started_at);
            ops.push(Op::Run(Box::new(RunRow {
                kind: "workflow_job",
                id: j.id,
                attempt,
                repo: repo.clone(),
                name: j.name.clone(),
                event: None,
                app: Some("github-actions".into()),
                parent_id: Some(j.run_id),
                head_sha: head.to_string(),
                head_branch: j.head_branch.clone(),
                status: j.status.clone(),
                conclusion: j.conclusion.clone(),
                trace_id: Some(workflow_trace_id(j.run_id, attempt)),
                started_ns: j.started_at,
                completed_ns: j.completed_at,
                updated_ns: updated,
                version: run_version(updated, &j.status, &j.conclusion),
            })));
        }
        Event::CheckSuite(e) => {
            let s = &e.check_suite;
            let repo = &repo_name(&e.repository);
            let head = sha("check_suite", "check_suite.head_sha", &s.head_sha)?;
            let key = run_key("check_suite", s.id, 1);
            ops.push(link(
                "ci_run",
                key,
                "runs_on",
                "commit",
                commit_key(repo, &head),
                "check_suite",
            ));
            ops.push(Op::Run(Box::new(RunRow {
                kind: "check_suite",
                id: s.id,
                attempt: 1,
                repo: repo.clone(),
                name: None,
                event: None,
                app: s
                    .app
                    .as_ref()
                    .and_then(|a| a.slug.clone().or_else(|| a.name.clone())),
                parent_id: None,
                head_sha: head.to_string(),
                head_branch: s.head_branch.clone(),
                status: s.status.clone(),
                conclusion: s.conclusion.clone(),
                trace_id: None,
                started_ns: s.created_at,
                completed_ns: (s.status.as_deref() == Some("completed"))
                    .then_some(s.updated_at)
                    .flatten(),
                updated_ns: s.updated_at,
                version: run_version(s.updated_at, &s.status, &s.conclusion),
            })));
        }
        Event::CheckRun(e) => {
            let r = &e.check_run;
            let repo = &repo_name(&e.repository);
            let head = sha("check_run", "check_run.head_sha", &r.head_sha)?;
            let key = run_key("check_run", r.id, 1);
            ops.push(link(
                "ci_run",
                key.clone(),
                "runs_on",
                "commit",
                commit_key(repo, &head),
                "check_run",
            ));
            if let Some(suite) = &r.check_suite {
                ops.push(link(
                    "ci_run",
                    key,
                    "part_of",
                    "ci_run",
                    run_key("check_suite", suite.id, 1),
                    "check_run",
                ));
            }
            let updated = r.completed_at.or(r.started_at);
            ops.push(Op::Run(Box::new(RunRow {
                kind: "check_run",
                id: r.id,
                attempt: 1,
                repo: repo.clone(),
                name: r.name.clone(),
                event: None,
                app: r
                    .app
                    .as_ref()
                    .and_then(|a| a.slug.clone().or_else(|| a.name.clone())),
                parent_id: r.check_suite.as_ref().map(|s| s.id),
                head_sha: head.to_string(),
                head_branch: None,
                status: r.status.clone(),
                conclusion: r.conclusion.clone(),
                trace_id: None,
                started_ns: r.started_at,
                completed_ns: r.completed_at,
                updated_ns: updated,
                version: run_version(updated, &r.status, &r.conclusion),
            })));
        }
        Event::Status(s) => {
            let repo = &repo_name(&s.repository);
            let head = sha("status", "sha", &s.sha)?;
            // One run per (commit, context): the store keeps the newest status.
            let done = matches!(s.state.as_str(), "success" | "failure" | "error");
            ops.push(Op::Run(Box::new(RunRow {
                kind: "status",
                id: s.id,
                attempt: 1,
                repo: repo.clone(),
                name: Some(s.context.clone().unwrap_or_else(|| "default".into())),
                event: None,
                app: None,
                parent_id: None,
                head_sha: head.to_string(),
                head_branch: None,
                status: Some(if done {
                    "completed".into()
                } else {
                    s.state.clone()
                }),
                conclusion: done.then(|| s.state.clone()),
                trace_id: None,
                started_ns: s.created_at,
                completed_ns: if done { s.updated_at } else { None },
                updated_ns: s.updated_at,
                version: version(s.updated_at, u8::from(done) + 1, &s.state),
            })));
        }
        Event::Deployment(e) => {
            deployment_ops(
                &mut ops,
                &repo_name(&e.repository),
                &e.deployment,
                "deployment",
            )?;
        }
        Event::DeploymentStatus(e) => {
            deployment_ops(
                &mut ops,
                &repo_name(&e.repository),
                &e.deployment,
                "deployment_status",
            )?;
            let s = &e.deployment_status;
            ops.push(Op::DeploymentStatus {
                id: s.id,
                deployment_id: e.deployment.id,
                state: s.state.clone(),
                environment: s.environment.clone(),
                created_ns: s.created_at.unwrap_or(0),
            });
        }
        Event::ExternalDeployment(d) => ops = d.plan()?,
        Event::ExternalIncident(i) => ops = i.plan()?,
        Event::Issues(e) => {
            let i = &e.issue;
            let repo = &repo_name(&e.repository);
            let is_incident = e.action != "deleted"
                && i.labels
                    .iter()
                    .any(|l| l.name.eq_ignore_ascii_case(incident_label));
            let cause = i.body.as_deref().and_then(root_cause);
            let state = match (e.action.as_str(), i.state.as_str()) {
                ("deleted", _) => "deleted",
                (_, "closed") => "resolved",
                _ => "open",
            };
            // Where it happened: an `environment:` line, else an `env:<name>` label; the
            // root cause is resolved to a deployment when read (deployments may come
            // later, and an edit replaces the cause).
            let environment = i
                .body
                .as_deref()
                .and_then(incident_environment)
                .or_else(|| {
                    i.labels.iter().find_map(|l| {
                        let (k, v) = l.name.split_once(':')?;
                        (k.trim().eq_ignore_ascii_case("env") && !v.trim().is_empty())
                            .then(|| v.trim().to_string())
                    })
                });
            let rank = match state {
                "deleted" => 3,
                "resolved" => 2,
                _ => 1,
            };
            ops.push(Op::Incident(Box::new(IncidentRow {
                repo: repo.clone(),
                number: i.number,
                title: i.title.clone(),
                state: state.into(),
                is_incident,
                root_cause: cause,
                environment,
                source: None,
                external_id: None,
                opened_ns: i.created_at,
                closed_ns: i.closed_at,
                version: version(i.updated_at, rank, if is_incident { "1" } else { "0" }),
            })));
        }
        Event::Installation(e) => {
            let inst = &e.installation;
            let (state, rank) = match e.action.as_str() {
                "deleted" => ("deleted", 4),
                "suspend" => ("suspended", 3),
                _ => ("active", 2),
            };
            let v = version(inst.updated_at, rank, "");
            ops.push(Op::Installation {
                id: inst.id,
                account: inst.account.as_ref().and_then(|a| a.login.clone()),
                state,
                version: v.clone(),
            });
            for r in &e.repositories {
                ops.push(Op::InstallationRepo {
                    installation_id: inst.id,
                    repo: repo_name(r),
                    in_scope: state != "deleted",
                    version: v.clone(),
                });
            }
        }
        Event::InstallationRepositories(e) => {
            let inst = &e.installation;
            for (list, in_scope) in [
                (&e.repositories_added, true),
                (&e.repositories_removed, false),
            ] {
                for r in list {
                    ops.push(Op::InstallationRepo {
                        installation_id: inst.id,
                        repo: repo_name(r),
                        in_scope,
                        version: version(inst.updated_at, if in_scope { 1 } else { 2 }, ""),
                    });
                }
            }
        }
    }
    Ok(ops)
}

/// What is known of one commit, from a push or from the API.
pub struct CommitFacts<'a> {
    pub repo: &'a str,
    pub id: &'a CommitSha,
    pub message: &'a str,
    pub author: super::events::GitUser,
    pub committer: super::events::GitUser,
    pub authored_ns: Option<i64>,
    pub files: Vec<(String, &'static str)>,
    /// Its parents as far as the source knows them.
    pub parents: &'a [CommitSha],
    /// What said so: `push` (order of a push) or `api` (the commit's own parents).
    pub evidence: &'a str,
}

/// A commit's row, its parent links and the links its trailers name.
pub fn commit_ops(ops: &mut Vec<Op>, c: CommitFacts<'_>) {
    let repo = c.repo;
    let parsed = trailers::parse(c.message);
    let attribution = trailers::attribution(&parsed);
    let ckey = commit_key(repo, c.id);
    for parent in c.parents {
        ops.push(link(
            "commit",
            ckey.clone(),
            "parent",
            "commit",
            commit_key(repo, parent),
            c.evidence,
        ));
    }
    if let Some((trace, _span)) = attribution.traceparent {
        ops.push(link(
            "commit",
            ckey.clone(),
            "traceparent",
            "trace",
            trace.to_hex(),
            "trailer",
        ));
    }
    for reverted in trailers::reverted(c.message) {
        ops.push(link(
            "commit",
            ckey.clone(),
            "reverts",
            "commit",
            commit_key(repo, &reverted),
            "message",
        ));
    }
    if let Some(session) = &attribution.session {
        ops.push(link(
            "commit",
            ckey.clone(),
            "session",
            "session",
            session.clone(),
            "trailer",
        ));
    }
    ops.push(Op::Commit(Box::new(CommitRow {
        repo: repo.to_string(),
        sha: c.id.clone(),
        message: Some(c.message.to_string()),
        author_name: c.author.name,
        author_email: c.author.email,
        author_login: c.author.username,
        committer_name: c.committer.name,
        committer_email: c.committer.email,
        authored_ns: c.authored_ns,
        trailers: parsed.into_iter().map(|t| (t.key, t.value)).collect(),
        agents: attribution.agents,
        files: c.files,
    })));
}

/// A commit as the REST API lists it (`GET /repos/{o}/{r}/commits`, a pull request's
/// commits): its row and its parent links, evidence `api`. Unlike a push, the API names
/// every parent, merge commits' second ones included.
pub fn api_commit(repo: &str, c: &super::events::ApiCommit) -> Result<Vec<Op>, PayloadError> {
    let id = sha("commit", "sha", &c.sha)?;
    let parents = c
        .parents
        .iter()
        .enumerate()
        .map(|(i, p)| sha("commit", &format!("parents[{i}].sha"), &p.sha))
        .collect::<Result<Vec<_>, _>>()?;
    let person = |p: &Option<super::events::ApiGitPerson>, login: Option<String>| {
        let p = p.clone().unwrap_or_default();
        super::events::GitUser {
            name: p.name,
            email: p.email,
            username: login,
        }
    };
    let mut ops = Vec::new();
    commit_ops(
        &mut ops,
        CommitFacts {
            repo,
            id: &id,
            message: &c.commit.message,
            author: person(
                &c.commit.author,
                c.author.as_ref().and_then(|u| u.login.clone()),
            ),
            committer: person(
                &c.commit.committer,
                c.committer.as_ref().and_then(|u| u.login.clone()),
            ),
            authored_ns: c.commit.author.as_ref().and_then(|a| a.date),
            files: Vec::new(),
            parents: &parents,
            evidence: "api",
        },
    );
    Ok(ops)
}

fn deployment_ops(
    ops: &mut Vec<Op>,
    repo: &str,
    d: &super::events::Deployment,
    event: &str,
) -> Result<(), PayloadError> {
    let target = sha(event, "deployment.sha", &d.sha)?;
    ops.push(link(
        "deployment",
        deployment_key(d.id),
        "deploys",
        "commit",
        commit_key(repo, &target),
        event,
    ));
    ops.push(Op::Deployment(DeploymentRow {
        id: d.id,
        repo: repo.to_string(),
        sha: target.to_string(),
        git_ref: d.git_ref.clone(),
        environment: d.environment.clone(),
        creator: d.creator.as_ref().and_then(|c| c.login.clone()),
        created_ns: d.created_at,
    }));
    Ok(())
}

#[cfg(test)]
mod tests;
