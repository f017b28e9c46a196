//! What has arrived lately, for the set-up status (`tracelink status`, the dashboard's
//! Setup page): telemetry per agent and repository, webhook deliveries per repository.

use serde::Serialize;

use super::{Db, Result, query_as, query_scalar};

/// Sessions of one agent in one repository since a time.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TelemetrySeen {
    /// `None`: the telemetry names no agent tracelink recognises.
    pub agent: Option<String>,
    /// `None`: the telemetry names no repository.
    pub repository: Option<String>,
    pub sessions: i64,
    /// The latest activity of any of them.
    pub last_ns: Option<i64>,
    /// Those naming no user (no `user.email`, no user ID).
    pub without_user: i64,
}

/// Webhook deliveries of one repository since a time.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WebhooksSeen {
    /// `None`: deliveries of no repository (`ping`, installation events).
    pub repo: Option<String>,
    pub deliveries: i64,
    pub last_ns: i64,
    pub failed: i64,
}

impl Db {
    /// Sessions started since `since_ns`, per agent and repository, latest first.
    pub async fn telemetry_seen(&self, since_ns: i64) -> Result<Vec<TelemetrySeen>> {
        query_as(
            "SELECT agent, repository, CAST(count(*) AS BIGINT) AS sessions, \
             max(coalesce(ended_ns, started_ns)) AS last_ns, \
             CAST(sum(CASE WHEN user_email IS NULL AND user_id IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS without_user \
             FROM sessions WHERE started_ns >= ? GROUP BY agent, repository \
             ORDER BY last_ns DESC, agent, repository",
        )
        .bind(since_ns)
        .fetch_all(&self.pool)
        .await
    }

    /// Webhook deliveries received since `since_ns`, per repository, latest first.
    pub async fn webhooks_seen(&self, since_ns: i64) -> Result<Vec<WebhooksSeen>> {
        query_as(
            "SELECT repo, CAST(count(*) AS BIGINT) AS deliveries, max(received_ns) AS last_ns, \
             CAST(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed \
             FROM deliveries WHERE received_ns >= ? GROUP BY repo ORDER BY last_ns DESC, repo",
        )
        .bind(since_ns)
        .fetch_all(&self.pool)
        .await
    }

    /// Sessions started since `since_ns` whose person is in no team of the identities
    /// file and whose repository no team owns (`unassigned`), as analytics counts them.
    pub async fn sessions_unassigned(&self, since_ns: i64) -> Result<i64> {
        query_scalar(
            "SELECT CAST(count(*) AS BIGINT) FROM analytics_facts \
             WHERE started_ns >= ? AND first_team = 1 AND team = 'unassigned'",
        )
        .bind(since_ns)
        .fetch_one(&self.pool)
        .await
    }

    /// Sessions started since `since_ns` per person as analytics counts them (a GitHub
    /// login through the identities file, else the agent's email, else its user ID;
    /// `None`: the session names no user), most sessions first.
    pub async fn people_seen(&self, since_ns: i64) -> Result<Vec<PersonSeen>> {
        query_as(
            "SELECT person, CAST(count(*) AS BIGINT) AS sessions FROM analytics_facts \
             WHERE started_ns >= ? AND first_team = 1 GROUP BY person \
             ORDER BY sessions DESC, person",
        )
        .bind(since_ns)
        .fetch_all(&self.pool)
        .await
    }
}

/// Sessions of one person since a time.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PersonSeen {
    pub person: Option<String>,
    pub sessions: i64,
}
