//! Graph nodes from GitHub: what a webhook delivery writes (commits, refs, links, pull
//! requests, CI runs, deployments and their statuses, incidents, installations) as
//! typed [`Op`]s, and the reads of those nodes.
//!
//! Every write is an idempotent upsert, and none depends on arrival order: immutable
//! facts (commits, deployments) fill each other's gaps, and where two copies disagree
//! the smaller value is kept; changing state (pull requests, runs, incidents,
//! installations) is replaced whole by a newer `version` only.

use super::query;
use crate::ids::CommitSha;

use sqlx::AnyConnection;

use super::{Result, Tx, text};

#[derive(Debug, Clone, PartialEq)]
pub struct CommitRow {
    pub repo: String,
    pub sha: CommitSha,
    pub message: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub author_login: Option<String>,
    pub committer_name: Option<String>,
    pub committer_email: Option<String>,
    pub authored_ns: Option<i64>,
    pub trailers: Vec<(String, String)>,
    pub agents: Vec<&'static str>,
    pub files: Vec<(String, &'static str)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    pub from_kind: &'static str,
    pub from_key: String,
    pub to_kind: &'static str,
    pub to_key: String,
    pub relation: &'static str,
    pub evidence: String,
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullRow {
    pub repo: String,
    pub number: i64,
    pub title: Option<String>,
    pub state: String,
    pub draft: bool,
    pub merged: bool,
    pub author_login: Option<String>,
    pub head_ref: String,
    pub head_sha: String,
    pub base_ref: String,
    pub base_sha: String,
    pub merge_commit_sha: Option<String>,
    /// Whether its head repository is not this one; `None` when the payload says not.
    pub from_fork: Option<bool>,
    pub created_ns: Option<i64>,
    pub updated_ns: Option<i64>,
    pub closed_ns: Option<i64>,
    pub merged_ns: Option<i64>,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub kind: &'static str,
    pub id: i64,
    pub attempt: i64,
    pub repo: String,
    pub name: Option<String>,
    pub event: Option<String>,
    pub app: Option<String>,
    pub parent_id: Option<i64>,
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub trace_id: Option<[u8; 16]>,
    pub started_ns: Option<i64>,
    pub completed_ns: Option<i64>,
    pub updated_ns: Option<i64>,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    pub id: i64,
    pub repo: String,
    pub sha: String,
    pub git_ref: Option<String>,
    pub environment: String,
    pub creator: Option<String>,
    pub created_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub repo: String,
    pub number: i64,
    pub title: Option<String>,
    pub state: String,
    pub is_incident: bool,
    pub root_cause: Option<String>,
    /// The environment the incident names (`None`: the configured default).
    pub environment: Option<String>,
    /// Where an incident from outside GitHub was declared, and its id there (`None`:
    /// a GitHub issue).
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub opened_ns: Option<i64>,
    pub closed_ns: Option<i64>,
    pub version: String,
}

/// One upsert.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Commit(Box<CommitRow>),
    CommitRef {
        repo: String,
        sha: CommitSha,
        git_ref: String,
        /// When it was pushed there (the push's `repository.pushed_at`); the earliest
        /// push is kept.
        pushed_ns: Option<i64>,
    },
    /// A repository's default branch, as its latest event names it.
    DefaultBranch {
        repo: String,
        branch: String,
    },
    Link(LinkRow),
    Pull(Box<PullRow>),
    Run(Box<RunRow>),
    Deployment(DeploymentRow),
    DeploymentStatus {
        id: i64,
        deployment_id: i64,
        state: String,
        environment: Option<String>,
        created_ns: i64,
    },
    Incident(Box<IncidentRow>),
    Installation {
        id: i64,
        account: Option<String>,
        state: &'static str,
        version: String,
    },
    InstallationRepo {
        installation_id: i64,
        repo: String,
        in_scope: bool,
        version: String,
    },
}

impl Tx<'_> {
    /// Writes a delivery's [`Op`]s.
    pub async fn apply(&mut self, ops: &[Op], now_ns: i64) -> Result<()> {
        let conn = self.conn();
        for op in ops {
            match op {
                Op::Commit(c) => {
                    query(
                        "INSERT INTO commits (repo, sha, message, author_name, author_email, author_login, \
                         committer_name, committer_email, authored_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (repo, sha) DO UPDATE SET \
                         message = coalesce(min(commits.message, excluded.message), commits.message, excluded.message), \
                         author_name = coalesce(min(commits.author_name, excluded.author_name), commits.author_name, excluded.author_name), \
                         author_email = coalesce(min(commits.author_email, excluded.author_email), commits.author_email, excluded.author_email), \
                         author_login = coalesce(min(commits.author_login, excluded.author_login), commits.author_login, excluded.author_login), \
                         committer_name = coalesce(min(commits.committer_name, excluded.committer_name), commits.committer_name, excluded.committer_name), \
                         committer_email = coalesce(min(commits.committer_email, excluded.committer_email), commits.committer_email, excluded.committer_email), \
                         authored_ns = coalesce(min(commits.authored_ns, excluded.authored_ns), commits.authored_ns, excluded.authored_ns)",
                    )
                    .bind(&c.repo)
                    .bind(c.sha.as_str())
                    .bind(c.message.as_deref().map(text).as_deref())
                    .bind(c.author_name.as_deref().map(text).as_deref())
                    .bind(c.author_email.as_deref().map(text).as_deref())
                    .bind(c.author_login.as_deref().map(text).as_deref())
                    .bind(c.committer_name.as_deref().map(text).as_deref())
                    .bind(c.committer_email.as_deref().map(text).as_deref())
                    .bind(c.authored_ns)
                    .execute(&mut *conn)
                    .await?;
                    for (i, (key, value)) in c.trailers.iter().enumerate() {
                        query(
                            "INSERT INTO commit_trailers (repo, sha, position, key, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        )
                        .bind(&c.repo)
                        .bind(c.sha.as_str())
                        .bind(i as i64)
                        .bind(text(key).as_ref())
                        .bind(text(value).as_ref())
                        .execute(&mut *conn)
                        .await?;
                    }
                    for agent in &c.agents {
                        query(
                            "INSERT INTO commit_agents (repo, sha, agent, evidence) VALUES (?, ?, ?, 'trailer') ON CONFLICT DO NOTHING",
                        )
                        .bind(&c.repo)
                        .bind(c.sha.as_str())
                        .bind(*agent)
                        .execute(&mut *conn)
                        .await?;
                    }
                    for (path, change) in &c.files {
                        query(
                            "INSERT INTO commit_files (repo, sha, path, change) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        )
                        .bind(&c.repo)
                        .bind(c.sha.as_str())
                        .bind(text(path).as_ref())
                        .bind(*change)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                Op::CommitRef {
                    repo,
                    sha,
                    git_ref,
                    pushed_ns,
                } => {
                    query(
                        "INSERT INTO commit_refs (repo, sha, ref, pushed_ns) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (repo, ref, sha) DO UPDATE SET pushed_ns = CASE \
                           WHEN commit_refs.pushed_ns IS NULL OR excluded.pushed_ns < commit_refs.pushed_ns \
                           THEN excluded.pushed_ns ELSE commit_refs.pushed_ns END",
                    )
                    .bind(repo)
                    .bind(sha.as_str())
                    .bind(git_ref)
                    .bind(*pushed_ns)
                    .execute(&mut *conn)
                    .await?;
                    // A push may land the commit of a session: its facts say so anew.
                    let key = crate::ids::node::commit(repo, sha);
                    super::links::queue_authors(&mut *conn, &key, now_ns).await?;
                }
                Op::DefaultBranch { repo, branch } => {
                    let changed = query(
                        "INSERT INTO default_branches (repo, branch) VALUES (?, ?) \
                         ON CONFLICT (repo) DO UPDATE SET branch = excluded.branch \
                         WHERE default_branches.branch <> excluded.branch",
                    )
                    .bind(repo)
                    .bind(branch)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed > 0 {
                        // Every session with a commit here is judged anew (`@` then 40
                        // hex digits: every key of the repository's commits lies between).
                        super::links::queue_authors_between(
                            &mut *conn,
                            &format!("{repo}@"),
                            &format!("{repo}@~"),
                            now_ns,
                        )
                        .await?;
                    }
                }
                Op::Link(l) => {
                    query(
                        "INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, confidence, first_seen_ns) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (from_kind, from_key, relation, to_kind, to_key) DO UPDATE SET \
                         confidence = max(links.confidence, excluded.confidence), \
                         evidence = CASE WHEN excluded.evidence < links.evidence THEN excluded.evidence ELSE links.evidence END",
                    )
                    .bind(l.from_kind)
                    .bind(&l.from_key)
                    .bind(l.to_kind)
                    .bind(&l.to_key)
                    .bind(l.relation)
                    .bind(&l.evidence)
                    .bind(l.confidence)
                    .bind(now_ns)
                    .execute(&mut *conn)
                    .await?;
                }
                Op::Pull(p) => {
                    query(
                        "INSERT INTO pull_requests (repo, number, title, state, draft, merged, author_login, head_ref, \
                         head_sha, base_ref, base_sha, merge_commit_sha, created_ns, updated_ns, closed_ns, merged_ns, version, from_fork) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (repo, number) DO UPDATE SET title = excluded.title, state = excluded.state, \
                         draft = excluded.draft, merged = excluded.merged, author_login = excluded.author_login, \
                         head_ref = excluded.head_ref, head_sha = excluded.head_sha, base_ref = excluded.base_ref, \
                         base_sha = excluded.base_sha, merge_commit_sha = excluded.merge_commit_sha, \
                         created_ns = excluded.created_ns, \
                         updated_ns = excluded.updated_ns, closed_ns = excluded.closed_ns, \
                         merged_ns = excluded.merged_ns, version = excluded.version, \
                         from_fork = coalesce(excluded.from_fork, pull_requests.from_fork) \
                         WHERE excluded.version > pull_requests.version",
                    )
                    .bind(&p.repo)
                    .bind(p.number)
                    .bind(p.title.as_deref().map(text).as_deref())
                    .bind(&p.state)
                    .bind(i64::from(p.draft))
                    .bind(i64::from(p.merged))
                    .bind(p.author_login.as_deref().map(text).as_deref())
                    .bind(&p.head_ref)
                    .bind(&p.head_sha)
                    .bind(&p.base_ref)
                    .bind(&p.base_sha)
                    .bind(p.merge_commit_sha.as_deref().map(text).as_deref())
                    .bind(p.created_ns)
                    .bind(p.updated_ns)
                    .bind(p.closed_ns)
                    .bind(p.merged_ns)

                    .bind(&p.version)
                    .bind(p.from_fork.map(i64::from))
                    .execute(&mut *conn)
                    .await?;
                }
                Op::Run(r) if r.kind == "status" => apply_status(&mut *conn, r).await?,
                Op::Run(r) => {
                    query(
                        "INSERT INTO ci_runs (kind, id, attempt, repo, name, event, app, parent_id, head_sha, head_branch, \
                         status, conclusion, trace_id, started_ns, completed_ns, updated_ns, version) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (kind, id, attempt) DO UPDATE SET \
                         name = excluded.name, event = excluded.event, \
                         app = excluded.app, parent_id = excluded.parent_id, \
                         head_branch = excluded.head_branch, status = excluded.status, \
                         conclusion = excluded.conclusion, started_ns = excluded.started_ns, \
                         completed_ns = excluded.completed_ns, updated_ns = excluded.updated_ns, version = excluded.version \
                         WHERE excluded.version > ci_runs.version",
                    )
                    .bind(r.kind)
                    .bind(r.id)
                    .bind(r.attempt)
                    .bind(&r.repo)
                    .bind(r.name.as_deref().map(text).as_deref())
                    .bind(r.event.as_deref().map(text).as_deref())
                    .bind(r.app.as_deref().map(text).as_deref())
                    .bind(r.parent_id)
                    .bind(&r.head_sha)
                    .bind(r.head_branch.as_deref().map(text).as_deref())
                    .bind(r.status.as_deref().map(text).as_deref())
                    .bind(r.conclusion.as_deref().map(text).as_deref())
                    .bind(r.trace_id.as_ref().map(|t| &t[..]))
                    .bind(r.started_ns)
                    .bind(r.completed_ns)
                    .bind(r.updated_ns)
                    .bind(&r.version)
                    .execute(&mut *conn)
                    .await?;
                }
                Op::Deployment(d) => {
                    query(
                        "INSERT INTO deployments (id, repo, sha, ref, environment, creator, created_ns) \
                         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
                         sha = min(deployments.sha, excluded.sha), \
                         environment = min(deployments.environment, excluded.environment), \
                         ref = coalesce(min(deployments.ref, excluded.ref), deployments.ref, excluded.ref), \
                         creator = coalesce(min(deployments.creator, excluded.creator), deployments.creator, excluded.creator), \
                         created_ns = coalesce(min(deployments.created_ns, excluded.created_ns), deployments.created_ns, excluded.created_ns)",
                    )
                    .bind(d.id)
                    .bind(&d.repo)
                    .bind(&d.sha)
                    .bind(d.git_ref.as_deref().map(text).as_deref())
                    .bind(&d.environment)
                    .bind(d.creator.as_deref().map(text).as_deref())
                    .bind(d.created_ns)
                    .execute(&mut *conn)
                    .await?;
                }
                Op::DeploymentStatus {
                    id,
                    deployment_id,
                    state,
                    environment,
                    created_ns,
                } => {
                    query(
                        "INSERT INTO deployment_statuses (id, deployment_id, state, environment, created_ns) \
                         VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(deployment_id)
                    .bind(state)
                    .bind(environment.as_deref().map(text).as_deref())
                    .bind(created_ns)
                    .execute(&mut *conn)
                    .await?;
                }
                Op::Incident(i) => {
                    query(
                        "INSERT INTO incidents (repo, number, title, state, is_incident, root_cause, opened_ns, closed_ns, version, environment, source, external_id) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo, number) DO UPDATE SET \
                         title = excluded.title, state = excluded.state, is_incident = excluded.is_incident, \
                         root_cause = excluded.root_cause, environment = excluded.environment, opened_ns = excluded.opened_ns, \
                         closed_ns = excluded.closed_ns, version = excluded.version \
                         WHERE excluded.version > incidents.version",
                    )
                    .bind(&i.repo)
                    .bind(i.number)
                    .bind(i.title.as_deref().map(text).as_deref())
                    .bind(&i.state)
                    .bind(i64::from(i.is_incident))
                    .bind(i.root_cause.as_deref().map(text).as_deref())
                    .bind(i.opened_ns)
                    .bind(i.closed_ns)
                    .bind(&i.version)
                    .bind(i.environment.as_deref().map(text).as_deref())
                    .bind(i.source.as_deref().map(text).as_deref())
                    .bind(i.external_id.as_deref().map(text).as_deref())
                    .execute(&mut *conn)
                    .await?;
                }
                Op::Installation {
                    id,
                    account,
                    state,
                    version,
                } => {
                    query(
                        "INSERT INTO installations (id, account, state, version) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (id) DO UPDATE SET account = excluded.account, \
                         state = excluded.state, version = excluded.version WHERE excluded.version > installations.version",
                    )
                    .bind(id)
                    .bind(account.as_deref().map(text).as_deref())
                    .bind(*state)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
                }
                Op::InstallationRepo {
                    installation_id,
                    repo,
                    in_scope,
                    version,
                } => {
                    query(
                        "INSERT INTO installation_repositories (installation_id, repo, in_scope, version) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (installation_id, repo) DO UPDATE SET in_scope = excluded.in_scope, \
                         version = excluded.version WHERE excluded.version > installation_repositories.version",
                    )
                    .bind(installation_id)
                    .bind(repo)
                    .bind(i64::from(*in_scope))
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// A commit status: one run per (repository, commit, context), the newest status
/// standing. GitHub gives every status of a context its own id, so older rows of the
/// context are removed, and a status older than the one stored is not inserted — in
/// whatever order they arrive.
async fn apply_status(conn: &mut AnyConnection, r: &RunRow) -> Result<()> {
    let context = r.name.as_deref().unwrap_or("default");
    query(
        "DELETE FROM ci_runs WHERE kind = 'status' AND repo = ? AND head_sha = ? AND name = ? \
         AND version < ?",
    )
    .bind(&r.repo)
    .bind(&r.head_sha)
    .bind(context)
    .bind(&r.version)
    .execute(&mut *conn)
    .await?;
    query(
        "INSERT INTO ci_runs (kind, id, attempt, repo, name, head_sha, status, conclusion, \
         started_ns, completed_ns, updated_ns, version) \
         SELECT 'status', ?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
         WHERE NOT EXISTS (SELECT 1 FROM ci_runs WHERE kind = 'status' AND repo = ?2 \
           AND head_sha = ?4 AND name = ?3 AND version >= ?10)",
    )
    .bind(r.id)
    .bind(&r.repo)
    .bind(context)
    .bind(&r.head_sha)
    .bind(r.status.as_deref().map(text).as_deref())
    .bind(r.conclusion.as_deref().map(text).as_deref())
    .bind(r.started_ns)
    .bind(r.completed_ns)
    .bind(r.updated_ns)
    .bind(&r.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl super::Conn {
    /// Replaces what is known of `org`'s teams with `members` (`(team, login)`), read at
    /// `now_ns`.
    pub async fn put_github_teams(
        &mut self,
        org: &str,
        members: &[(String, String)],
        now_ns: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        super::query("DELETE FROM github_team_members WHERE org = ?")
            .bind(org)
            .execute(tx.conn())
            .await?;
        for (team, login) in members {
            super::query(
                "INSERT INTO github_team_members (org, team, login, fetched_ns) VALUES (?, ?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(org)
            .bind(team.as_str())
            .bind(login.as_str())
            .bind(now_ns)
            .execute(tx.conn())
            .await?;
        }
        super::query(
            "INSERT INTO github_team_syncs (org, fetched_ns) VALUES (?, ?) \
             ON CONFLICT (org) DO UPDATE SET fetched_ns = excluded.fetched_ns",
        )
        .bind(org)
        .bind(now_ns)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }
}

impl super::Db {
    /// When `org`'s teams were last read, if ever.
    pub async fn github_teams_read_at(&self, org: &str) -> Result<Option<i64>> {
        super::query_scalar("SELECT fetched_ns FROM github_team_syncs WHERE org = ?")
            .bind(org)
            .fetch_optional(&self.pool)
            .await
    }

    /// Every team membership read from GitHub: `(org, team, login)`, sorted.
    pub async fn github_team_members(&self) -> Result<Vec<(String, String, String)>> {
        super::query_as("SELECT org, team, login FROM github_team_members ORDER BY 1, 2, 3")
            .fetch_all(&self.pool)
            .await
    }
}
