//! Reads of GitHub's nodes: pull requests and their commits, commits with what hangs
//! off them, CI runs, deployments and incidents.

use super::{query_as, query_scalar};
use std::collections::BTreeSet;

use sqlx::AnyConnection;

use super::{Db, Result, placeholders};
use crate::ids::node;

/// A pull request's row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PullRequest {
    pub title: Option<String>,
    pub state: String,
    #[sqlx(try_from = "super::Flag")]
    pub draft: bool,
    #[sqlx(try_from = "super::Flag")]
    pub merged: bool,
    pub author_login: Option<String>,
    pub head_ref: Option<String>,
    pub head_sha: String,
    pub base_ref: String,
    pub base_sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub created_ns: Option<i64>,
    pub updated_ns: Option<i64>,
    pub closed_ns: Option<i64>,
    pub merged_ns: Option<i64>,
    #[sqlx(try_from = "super::MaybeFlag")]
    pub from_fork: Option<bool>,
}

/// GitHub lists at most this many commits of a pull request.
const GITHUB_PR_COMMITS_LISTED: usize = 250;

/// Commits followed back from a pull request's head, at most.
const MAX_PULL_DEPTH: i64 = 1000;

/// Where a pull request's commit list came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitSource {
    /// The GitHub API's list of the PR's commits.
    Api,
    /// The API's list, at GitHub's cap: later commits are not in it.
    ApiCapped,
    /// The head's ancestry, back to the base.
    Ancestry,
    /// Only the head is known: its ancestry never arrived (a fork's pushes).
    #[default]
    HeadOnly,
}

/// A pull request's commits and where the list came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullCommits {
    pub shas: Vec<String>,
    pub source: CommitSource,
}

/// A commit's own row.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct CommitRecord {
    pub sha: String,
    pub message: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub author_login: Option<String>,
    pub authored_ns: Option<i64>,
}

/// A CI run (workflow run or job, check suite or run, commit status).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunRecord {
    pub kind: String,
    pub id: i64,
    pub attempt: i64,
    pub name: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub trace_id: Option<Vec<u8>>,
}

/// A deployment with its state (its newest status).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeploymentRecord {
    pub id: i64,
    pub sha: String,
    pub environment: String,
    pub created_ns: Option<i64>,
    pub state: Option<String>,
}

/// Everything the commit API shows besides the linked sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitDetail {
    pub commit: CommitRecord,
    pub trailers: Vec<(String, String)>,
    pub agents: Vec<String>,
    pub parents: Vec<String>,
    /// `(path, change)`.
    pub files: Vec<(String, String)>,
    pub pull_requests: Vec<i64>,
    pub runs: Vec<RunRecord>,
    pub deployments: Vec<DeploymentRecord>,
}

/// A pull request by repository and number.
pub type PullRef = (String, i64);

/// The pull requests that may contain any of these commits (of `repo`; `None`: of any
/// repository): a head they had, their merge result, a commit of their API commit list,
/// or a commit pushed to a branch of their head branch's name. A superset of the reverse
/// of [`Db::pull_commits`]: enough to know which reports to rebuild; the commit API
/// keeps those whose commit list holds the commit.
pub(super) async fn pulls_containing(
    conn: &mut AnyConnection,
    repo: Option<&str>,
    shas: &[String],
) -> Result<BTreeSet<PullRef>> {
    let mut out = BTreeSet::new();
    for chunk in shas.chunks(200) {
        let ph = placeholders(chunk.len());
        let sql = format!(
            "SELECT DISTINCT p.repo, p.number FROM pull_requests p WHERE (?1 IS NULL OR p.repo = ?1) AND ( \
               p.head_sha IN ({ph}) \
               OR EXISTS (SELECT 1 FROM links l WHERE l.from_kind = 'pull_request' \
                 AND l.from_key = p.repo || '#' || p.number AND l.relation IN ('head', 'merged_as') \
                 AND substr(l.to_key, length(p.repo) + 2) IN ({ph})) \
               OR EXISTS (SELECT 1 FROM pull_request_commits c WHERE c.repo = p.repo AND c.number = p.number AND c.sha IN ({ph})) \
               OR EXISTS (SELECT 1 FROM commit_refs r WHERE r.repo = p.repo AND r.ref = 'refs/heads/' || p.head_ref AND r.sha IN ({ph})))"
        );
        let mut q = query_as::<(String, i64)>(sql).bind(repo);
        for _ in 0..4 {
            for s in chunk {
                q = q.bind(s);
            }
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

const DEPLOYMENT_STATE: &str = "(SELECT s.state FROM deployment_statuses s WHERE s.deployment_id = d.id \
     ORDER BY s.created_ns DESC, s.id DESC LIMIT 1)";

/// A pull request as the dashboard lists it: its state and, once its report was built,
/// its facts (agent involvement and cost).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PullListed {
    pub repo: String,
    pub number: i64,
    pub title: Option<String>,
    pub state: String,
    #[sqlx(try_from = "super::Flag")]
    pub merged: bool,
    pub author_login: Option<String>,
    pub updated_ns: Option<i64>,
    /// `None`: no report built yet.
    #[sqlx(try_from = "super::MaybeFlag")]
    pub assisted: Option<bool>,
    /// Its agents, one per line.
    pub agents: Option<String>,
    pub cost: Option<f64>,
}

impl Db {
    /// The pull requests updated in `[from_ns, to_ns)`, latest first, at most `limit`.
    pub async fn pulls_updated(
        &self,
        from_ns: i64,
        to_ns: i64,
        limit: i64,
    ) -> Result<Vec<PullListed>> {
        query_as(
            "SELECT p.repo, p.number, p.title, p.state, p.merged, p.author_login, p.updated_ns, \
             f.assisted, f.agents, f.cost FROM pull_requests p \
             LEFT JOIN pull_facts f ON f.repo = p.repo AND f.number = p.number \
             WHERE p.updated_ns >= ? AND p.updated_ns < ? \
             ORDER BY p.updated_ns DESC, p.repo, p.number LIMIT ?",
        )
        .bind(from_ns)
        .bind(to_ns)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn pull_request(&self, repo: &str, number: i64) -> Result<Option<PullRequest>> {
        query_as(
            "SELECT title, state, draft, merged, author_login, head_ref, head_sha, base_ref, base_sha, \
             merge_commit_sha, created_ns, updated_ns, closed_ns, merged_ns, from_fork FROM pull_requests \
             WHERE repo = ? AND number = ?",
        )
        .bind(repo)
        .bind(number)
        .fetch_optional(&self.pool)
        .await
    }

    /// A pull request's commits, oldest first: as the API listed them when it did; else
    /// the commits reachable from its head through `parent` links and not from its base
    /// (`base.sha` as last seen); else, when the head's ancestry is unknown (a fork's
    /// pushes never reach the base repository's App), its head alone. Never every commit
    /// pushed to a branch of the same name: forks, reused branch names and force-pushes
    /// would bring in commits that are not the PR's.
    pub async fn pull_commits(&self, repo: &str, number: i64) -> Result<PullCommits> {
        let listed: Vec<String> = query_scalar(
            "SELECT sha FROM pull_request_commits WHERE repo = ? AND number = ? ORDER BY position",
        )
        .bind(repo)
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        if !listed.is_empty() {
            return Ok(PullCommits {
                source: if listed.len() >= GITHUB_PR_COMMITS_LISTED {
                    CommitSource::ApiCapped
                } else {
                    CommitSource::Api
                },
                shas: listed,
            });
        }
        let Some((head, base)): Option<(String, Option<String>)> =
            query_as("SELECT head_sha, base_sha FROM pull_requests WHERE repo = ? AND number = ?")
                .bind(repo)
                .bind(number)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(PullCommits::default());
        };
        let prefix = repo.len() as i64 + 2;
        let rows: Vec<(String, Option<i64>)> = query_as(
            "WITH RECURSIVE base(key, depth) AS ( \
               SELECT CAST(CAST(?1 AS text_c) AS TEXT), 0 \
               UNION SELECT l.to_key, base.depth + 1 FROM links l JOIN base \
                 ON l.from_kind = 'commit' AND l.from_key = base.key AND l.relation = 'parent' \
               WHERE base.depth < ?3 \
             ), \
             head(key, depth) AS ( \
               SELECT CAST(CAST(?2 AS text_c) AS TEXT), 0 \
               UNION SELECT l.to_key, head.depth + 1 FROM links l JOIN head \
                 ON l.from_kind = 'commit' AND l.from_key = head.key AND l.relation = 'parent' \
               WHERE head.depth < ?3 AND head.key NOT IN (SELECT key FROM base) \
             ) \
             SELECT substr(h.key, ?4), max(c.authored_ns) FROM head h \
               JOIN commits c ON c.repo = ?5 AND c.sha = substr(h.key, ?4) \
             WHERE h.key NOT IN (SELECT key FROM base) \
             GROUP BY h.key ORDER BY max(c.authored_ns) NULLS FIRST, h.key",
        )
        .bind(node::commit_str(repo, base.as_deref().unwrap_or("")))
        .bind(node::commit_str(repo, &head))
        .bind(MAX_PULL_DEPTH)
        .bind(prefix)
        .bind(repo)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(PullCommits {
                shas: vec![head],
                source: CommitSource::HeadOnly,
            });
        }
        Ok(PullCommits {
            shas: rows.into_iter().map(|r| r.0).collect(),
            source: CommitSource::Ancestry,
        })
    }

    /// Every head SHA a pull request had.
    pub async fn pull_heads(&self, repo: &str, number: i64) -> Result<Vec<String>> {
        query_scalar(
            "SELECT substr(to_key, ?) FROM links WHERE from_kind = 'pull_request' AND from_key = ? \
             AND relation = 'head' ORDER BY to_key",
        )
        .bind(repo.len() as i64 + 2)
        .bind(node::pull(repo, number))
        .fetch_all(&self.pool)
        .await
    }

    /// The stored commits among `shas`, in no particular order.
    pub async fn commits(&self, repo: &str, shas: &[String]) -> Result<Vec<CommitRecord>> {
        let mut out = Vec::with_capacity(shas.len());
        for chunk in shas.chunks(500) {
            let mut q = query_as::<CommitRecord>(format!(
                "SELECT sha, message, author_name, author_email, author_login, authored_ns FROM commits \
                 WHERE repo = ? AND sha IN ({})",
                placeholders(chunk.len())
            ))
            .bind(repo);
            for s in chunk {
                q = q.bind(s);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// The agents the trailers of these commits name, by SHA.
    pub async fn commit_agents(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for chunk in shas.chunks(500) {
            let mut q = query_as::<(String, String)>(format!(
                "SELECT sha, agent FROM commit_agents WHERE repo = ? AND sha IN ({}) ORDER BY agent",
                placeholders(chunk.len())
            ))
            .bind(repo);
            for s in chunk {
                q = q.bind(s);
            }
            for (sha, agent) in q.fetch_all(&self.pool).await? {
                out.entry(sha).or_default().push(agent);
            }
        }
        Ok(out)
    }

    /// Whether tracelink serves `repo`: an App installation, a delivery's commits, pull
    /// requests or deployments, or an authenticated CI upload name it.
    pub async fn repo_served(&self, repo: &str) -> Result<bool> {
        let served: i64 = query_scalar(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM repo_installations WHERE repo = ?1) \
             OR EXISTS (SELECT 1 FROM commits WHERE repo = ?1) \
             OR EXISTS (SELECT 1 FROM pull_requests WHERE repo = ?1) \
             OR EXISTS (SELECT 1 FROM deployments WHERE repo = ?1) \
             OR EXISTS (SELECT 1 FROM ci_uploads WHERE repo = ?1) THEN 1 ELSE 0 END",
        )
        .bind(repo)
        .fetch_one(&self.pool)
        .await?;
        Ok(served != 0)
    }

    /// The pull requests whose commits (as [`Db::pull_commits`] lists them) hold `sha`.
    pub async fn pulls_of_commit(&self, repo: &str, sha: &str) -> Result<Vec<i64>> {
        // Those that may contain it, then those whose commits it is.
        let candidates = {
            let mut conn = self.pool.acquire().await?;
            pulls_containing(&mut conn, Some(repo), &[sha.to_string()]).await?
        };
        let mut out = Vec::new();
        for (_, n) in candidates {
            if self
                .pull_commits(repo, n)
                .await?
                .shas
                .iter()
                .any(|s| s == sha)
            {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// A commit with its trailers, agents, parents, files, pull requests, runs,
    /// and deployments; `None` when neither the commit nor a link to it is known.
    pub async fn commit_detail(&self, repo: &str, sha: &str) -> Result<Option<CommitDetail>> {
        let pool = &self.pool;
        let key = node::commit_str(repo, sha);
        let commit: Option<CommitRecord> = query_as(
            "SELECT sha, message, author_name, author_email, author_login, authored_ns FROM commits \
             WHERE repo = ? AND sha = ?",
        )
        .bind(repo)
        .bind(sha)
        .fetch_optional(pool)
        .await?;
        // A commit known only from links (a run's head, a deployment), a commit status or
        // an incident's root cause is still shown.
        let linked: i64 = query_scalar(
            "SELECT (SELECT count(*) FROM links WHERE to_kind = 'commit' AND to_key = ?1) \
             + (SELECT count(*) FROM ci_runs WHERE repo = ?2 AND head_sha = ?3) \
             + (SELECT count(*) FROM incidents WHERE repo = ?2 AND lower(root_cause) = ?3)",
        )
        .bind(&key)
        .bind(repo)
        .bind(sha)
        .fetch_one(pool)
        .await?;
        if commit.is_none() && linked == 0 {
            return Ok(None);
        }
        let trailers = query_as(
            "SELECT key, value FROM commit_trailers WHERE repo = ? AND sha = ? ORDER BY position",
        )
        .bind(repo)
        .bind(sha)
        .fetch_all(pool)
        .await?;
        let agents = query_scalar(
            "SELECT agent FROM commit_agents WHERE repo = ? AND sha = ? ORDER BY agent",
        )
        .bind(repo)
        .bind(sha)
        .fetch_all(pool)
        .await?;
        let parents: Vec<String> = query_scalar(
            "SELECT to_key FROM links WHERE from_kind = 'commit' AND from_key = ? AND relation = 'parent' ORDER BY to_key",
        )
        .bind(&key)
        .fetch_all(pool)
        .await?;
        let files = query_as(
            "SELECT path, change FROM commit_files WHERE repo = ? AND sha = ? ORDER BY path",
        )
        .bind(repo)
        .bind(sha)
        .fetch_all(pool)
        .await?;
        let pull_requests = self.pulls_of_commit(repo, sha).await?;
        let runs = self.runs_at(repo, sha).await?;
        let deployments = query_as(format!(
            "SELECT d.id, d.sha, d.environment, d.created_ns, {DEPLOYMENT_STATE} AS state \
             FROM deployments d WHERE d.repo = ? AND d.sha = ? ORDER BY d.id"
        ))
        .bind(repo)
        .bind(sha)
        .fetch_all(pool)
        .await?;
        let prefix = repo.len() + 1;
        Ok(Some(CommitDetail {
            commit: commit.unwrap_or_else(|| CommitRecord {
                sha: sha.to_string(),
                ..Default::default()
            }),
            trailers,
            agents,
            parents: parents
                .into_iter()
                .map(|k| k.get(prefix..).unwrap_or_default().to_string())
                .collect(),
            files,
            pull_requests,
            runs,
            deployments,
        }))
    }

    /// Every CI run at a commit, by kind, ID and attempt.
    pub async fn runs_at(&self, repo: &str, sha: &str) -> Result<Vec<RunRecord>> {
        query_as(
            "SELECT kind, id, attempt, name, status, conclusion, trace_id FROM ci_runs \
             WHERE repo = ? AND head_sha = ? ORDER BY kind, id, attempt",
        )
        .bind(repo)
        .bind(sha)
        .fetch_all(&self.pool)
        .await
    }

    /// First attempts of completed workflow runs at these commits: `(completed, succeeded)`.
    pub async fn first_attempts(&self, repo: &str, shas: &[String]) -> Result<(i64, i64)> {
        let (mut total, mut ok) = (0, 0);
        for chunk in shas.chunks(500) {
            let mut q = query_as::<(i64, i64)>(format!(
                "SELECT count(*), CAST(coalesce(sum(CASE WHEN conclusion = 'success' THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 FROM ci_runs WHERE repo = ? \
                 AND kind = 'workflow_run' AND attempt = 1 AND status = 'completed' AND head_sha IN ({})",
                placeholders(chunk.len())
            ))
            .bind(repo);
            for s in chunk {
                q = q.bind(s);
            }
            let (t, o) = q.fetch_one(&self.pool).await?;
            total += t;
            ok += o;
        }
        Ok((total, ok))
    }

    /// Deployments of `repo` created at or after `since_ns`, oldest first.
    pub async fn deployments_since(
        &self,
        repo: &str,
        since_ns: i64,
    ) -> Result<Vec<DeploymentRecord>> {
        query_as(format!(
            "SELECT d.id, d.sha, d.environment, d.created_ns, {DEPLOYMENT_STATE} AS state \
             FROM deployments d WHERE d.repo = ? AND coalesce(d.created_ns, 0) >= ? ORDER BY d.created_ns NULLS FIRST, d.id"
        ))
        .bind(repo)
        .bind(since_ns)
        .fetch_all(&self.pool)
        .await
    }
}

/// An issue as stored: whether it is an incident, and its state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IssueState {
    pub repo: String,
    pub number: i64,
    pub state: String,
    #[sqlx(try_from = "super::Flag")]
    pub is_incident: bool,
}

/// An App installation and the repositories it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallationRecord {
    pub id: i64,
    pub account: Option<String>,
    pub state: String,
    /// `(repository, in scope)`.
    pub repositories: Vec<(String, bool)>,
}

impl Db {
    /// Every pull request stored, as (repository, number).
    pub async fn pull_request_keys(&self) -> Result<Vec<(String, i64)>> {
        query_as("SELECT repo, number FROM pull_requests ORDER BY repo, number")
            .fetch_all(&self.pool)
            .await
    }

    /// Every issue seen (incident or not), by repository and number.
    pub async fn issues(&self) -> Result<Vec<IssueState>> {
        query_as("SELECT repo, number, state, is_incident FROM incidents ORDER BY repo, number")
            .fetch_all(&self.pool)
            .await
    }

    /// An App installation, with its repositories.
    pub async fn installation(&self, id: i64) -> Result<Option<InstallationRecord>> {
        let row: Option<(i64, Option<String>, String)> =
            query_as("SELECT id, account, state FROM installations WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let repositories: Vec<(String, bool)> = query_as::<(String, i64)>(
            "SELECT repo, in_scope FROM installation_repositories WHERE installation_id = ? ORDER BY repo",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(repo, in_scope)| (repo, in_scope != 0))
        .collect();
        Ok(match row {
            Some((id, account, state)) => Some(InstallationRecord {
                id,
                account,
                state,
                repositories,
            }),
            // Repositories can arrive before the installation itself.
            None if !repositories.is_empty() => Some(InstallationRecord {
                id,
                account: None,
                state: "unknown".into(),
                repositories,
            }),
            None => None,
        })
    }
}
