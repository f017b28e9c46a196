//! What the DORA keys read of a repository: successful deployments, agent-assisted
//! commits, commit times, and what each incident names as its cause.

use std::collections::{HashMap, HashSet};

use super::{Db, Result};

/// A deployment at its first `success` status.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SuccessfulDeployment {
    pub id: i64,
    pub sha: String,
    pub at_ns: i64,
}

/// An incident and the node its root cause names.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IncidentCause {
    pub number: i64,
    /// A deployment key (`deployment:ID`) or a commit key (`owner/repo@sha`).
    pub cause: String,
    pub opened_ns: Option<i64>,
    pub closed_ns: Option<i64>,
    pub state: String,
}

impl Db {
    /// Successful deployments of `repo` to `environment` before `until_ns`, each at its
    /// first success, oldest first.
    pub async fn successful_deployments(
        &self,
        repo: &str,
        environment: &str,
        until_ns: i64,
    ) -> Result<Vec<SuccessfulDeployment>> {
        sqlx::query_as(
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

    /// Keys (`owner/repo@sha`) of the repository's agent-assisted commits: named by an
    /// agent trailer, linked to a session, or named by a session's telemetry.
    pub async fn assisted_commit_keys(&self, repo: &str) -> Result<HashSet<String>> {
        let prefix = format!("{repo}@");
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT ? || sha FROM commit_agents WHERE repo = ? \
             UNION SELECT to_key FROM links WHERE from_kind = 'session' AND relation = 'authored' \
               AND to_kind = 'commit' AND substr(to_key, 1, ?) = ? \
             UNION SELECT ? || c.sha FROM commits c JOIN session_commits sc ON sc.sha = c.sha WHERE c.repo = ?",
        )
        .bind(&prefix)
        .bind(repo)
        .bind(prefix.len() as i64)
        .bind(&prefix)
        .bind(&prefix)
        .bind(repo)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().collect())
    }

    /// Author time of every commit of the repository, by commit key.
    pub async fn authored_times(&self, repo: &str) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT ? || sha, authored_ns FROM commits WHERE repo = ? AND authored_ns IS NOT NULL",
        )
        .bind(format!("{repo}@"))
        .bind(repo)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// What each incident of the repository names as its cause.
    pub async fn incident_causes(&self, repo: &str) -> Result<Vec<IncidentCause>> {
        sqlx::query_as(
            "SELECT i.number, l.to_key AS cause, i.opened_ns, i.closed_ns, i.state FROM incidents i \
             JOIN links l ON l.from_kind = 'incident' AND l.from_key = i.repo || '!' || i.number \
               AND l.relation = 'caused_by' \
             WHERE i.repo = ? AND i.is_incident = 1",
        )
        .bind(repo)
        .fetch_all(&self.pool)
        .await
    }
}
