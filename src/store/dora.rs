//! What the DORA keys read of a repository: successful deployments, agent-assisted
//! commits, commit times, and what each incident names as its cause.

use super::{query_as, query_scalar};
use std::collections::{HashMap, HashSet};

use super::{Db, Result};

/// A deployment at its first `success` status.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SuccessfulDeployment {
    pub id: i64,
    pub sha: String,
    pub at_ns: i64,
}

/// An incident as stored: what its issue says.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IncidentFacts {
    pub number: i64,
    pub title: Option<String>,
    /// `open` or `resolved`.
    pub state: String,
    /// The environment it names (`None`: the configured default).
    pub environment: Option<String>,
    /// Its `root cause:` line, as written.
    pub root_cause: Option<String>,
    pub opened_ns: Option<i64>,
    pub closed_ns: Option<i64>,
}

impl Db {
    /// The repositories (`owner/name`) with a successful deployment to `environment`
    /// before `until_ns`, sorted.
    pub async fn deployed_repositories(
        &self,
        environment: &str,
        until_ns: i64,
    ) -> Result<Vec<String>> {
        query_scalar(
            "SELECT DISTINCT d.repo FROM deployments d \
             JOIN deployment_statuses s ON s.deployment_id = d.id AND s.state = 'success' \
             WHERE d.environment = ? AND s.created_ns < ? ORDER BY 1",
        )
        .bind(environment)
        .bind(until_ns)
        .fetch_all(&self.pool)
        .await
    }

    /// Successful deployments of `repo` to `environment` before `until_ns`, each at its
    /// first success, oldest first.
    pub async fn successful_deployments(
        &self,
        repo: &str,
        environment: &str,
        until_ns: i64,
    ) -> Result<Vec<SuccessfulDeployment>> {
        query_as(
            "SELECT d.id, d.sha, min(s.created_ns) AS at_ns FROM deployments d \
             JOIN deployment_statuses s ON s.deployment_id = d.id AND s.state = 'success' \
             WHERE d.repo = ? AND d.environment = ? GROUP BY d.id, d.sha HAVING min(s.created_ns) < ? \
             ORDER BY at_ns, d.id",
        )
        .bind(repo)
        .bind(environment)
        .bind(until_ns)
        .fetch_all(&self.pool)
        .await
    }

    /// Keys (`owner/repo@sha`) of the repository's agent-assisted commits: named by a
    /// known agent trailer, or with a stored session link (the one meaning the commit
    /// API and the reports use too).
    pub async fn assisted_commit_keys(&self, repo: &str) -> Result<HashSet<String>> {
        let prefix = format!("{repo}@");
        let keys: Vec<String> = query_scalar(
            "SELECT ? || sha FROM commit_agents WHERE repo = ? \
             UNION SELECT to_key FROM links WHERE from_kind = 'session' AND relation = 'authored' \
               AND to_kind = 'commit' AND substr(to_key, 1, ?) = ?",
        )
        .bind(&prefix)
        .bind(repo)
        .bind(prefix.len() as i64)
        .bind(&prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().collect())
    }

    /// Author time of every commit of the repository, by commit key.
    pub async fn authored_times(&self, repo: &str) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = query_as(
            "SELECT ? || sha, authored_ns FROM commits WHERE repo = ? AND authored_ns IS NOT NULL",
        )
        .bind(format!("{repo}@"))
        .bind(repo)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// The repository's incidents (not deleted), by number.
    pub async fn incidents_of(&self, repo: &str) -> Result<Vec<IncidentFacts>> {
        query_as(
            "SELECT number, title, state, environment, root_cause, opened_ns, closed_ns FROM incidents \
             WHERE repo = ? AND is_incident = 1 AND state <> 'deleted' ORDER BY number",
        )
        .bind(repo)
        .fetch_all(&self.pool)
        .await
    }

    /// The environment of a deployment of the repository, when it is known.
    pub async fn deployment_environment(&self, repo: &str, id: i64) -> Result<Option<String>> {
        query_scalar("SELECT environment FROM deployments WHERE repo = ? AND id = ?")
            .bind(repo)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }
}
