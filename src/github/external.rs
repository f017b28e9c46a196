//! Deployments and incidents from outside GitHub — Argo CD, Spinnaker, a deploy script;
//! PagerDuty, Opsgenie, incident.io — posted to `POST /api/v1/deployments` and
//! `POST /api/v1/incidents`. Each is stored as a delivery (event
//! [`DEPLOYMENT_EVENT`] or [`INCIDENT_EVENT`]) before it is acknowledged and applied by
//! the processor like GitHub's deliveries: durable, idempotent (an external id names one
//! deployment or incident; posting it again updates it) and replayable.
//!
//! Their ids are derived from the repository and external id, in a range GitHub's own
//! ids do not reach (2^52 and up, still exact in JSON numbers).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::events::PayloadError;
use crate::ids::{CommitSha, RepoName};
use crate::store::github::{DeploymentRow, IncidentRow, Op};
use crate::time::parse_rfc3339;

pub const DEPLOYMENT_EVENT: &str = "tracelink.deployment";
pub const INCIDENT_EVENT: &str = "tracelink.incident";

/// Longest external id, source, environment or title accepted.
const MAX_TEXT: usize = 256;

/// A deployment as posted.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentReport {
    /// `owner/name` of the repository deployed.
    pub repository: String,
    pub environment: String,
    /// The full SHA deployed.
    pub sha: String,
    pub status: DeployStatus,
    /// The deployer's id for it (an Argo CD sync, a pipeline run); posting the same id
    /// again updates the deployment (its status, its finish time).
    pub external_id: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The ref deployed, when known.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// What deployed it (`argocd`, `spinnaker`, …).
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    Queued,
    InProgress,
    Success,
    Failure,
    Error,
}

impl DeployStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeployStatus::Queued => "queued",
            DeployStatus::InProgress => "in_progress",
            DeployStatus::Success => "success",
            DeployStatus::Failure => "failure",
            DeployStatus::Error => "error",
        }
    }

    fn finished(self) -> bool {
        matches!(
            self,
            DeployStatus::Success | DeployStatus::Failure | DeployStatus::Error
        )
    }
}

/// An incident as posted.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentReport {
    /// `owner/name` of the repository whose deployment caused it.
    pub repository: String,
    /// Where it was declared (`pagerduty`, `opsgenie`, `incident.io`, …).
    pub source: String,
    /// Its id there; posting the same source and id again updates it.
    pub external_id: String,
    #[serde(default)]
    pub title: Option<String>,
    /// The environment it happened in (default: `--incident-environment`).
    #[serde(default)]
    pub environment: Option<String>,
    pub opened_at: String,
    #[serde(default)]
    pub resolved_at: Option<String>,
    /// A commit SHA or a deployment id (a GitHub one, or the `id` this API answered for
    /// a posted deployment). Without it, the last deployment before it opened.
    #[serde(default)]
    pub root_cause: Option<String>,
}

fn invalid(event: &str, path: &str, message: impl Into<String>) -> PayloadError {
    PayloadError {
        event: event.to_string(),
        path: path.to_string(),
        message: message.into(),
    }
}

fn text(event: &str, path: &str, value: &str) -> Result<(), PayloadError> {
    if value.trim().is_empty() {
        return Err(invalid(event, path, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(invalid(
            event,
            path,
            format!("longer than {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

fn time(event: &str, path: &str, value: Option<&str>) -> Result<Option<i64>, PayloadError> {
    value
        .map(|v| {
            parse_rfc3339(v).ok_or_else(|| {
                invalid(
                    event,
                    path,
                    format!("{v:?} is not an RFC 3339 time (2026-11-20T10:00:00Z)"),
                )
            })
        })
        .transpose()
}

fn repository(event: &str, value: &str) -> Result<RepoName, PayloadError> {
    RepoName::parse(value).map_err(|e| invalid(event, "repository", e.to_string()))
}

/// An id of 2^52 and up, from `parts`: the same parts give the same id.
fn derived_id(parts: &[&str]) -> i64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let low = u64::from_be_bytes(b) & ((1 << 52) - 1);
    ((1u64 << 52) | low) as i64
}

/// A change's version, as [`super::plan`] writes them: newer time, then further along.
fn version(ns: i64, rank: u8) -> String {
    format!("{:020}:{rank}:api", ns.max(0))
}

impl DeploymentReport {
    /// Reads and checks a posted deployment; the error names the field.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let r: Self = super::events::read(DEPLOYMENT_EVENT, body)?;
        r.plan()?;
        Ok(r)
    }

    /// The repository, lower-cased as tracelink keys it.
    pub fn repo(&self) -> Result<RepoName, PayloadError> {
        repository(DEPLOYMENT_EVENT, &self.repository)
    }

    /// Its id in tracelink (as in `deployment:<id>` and the DORA and report output).
    pub fn id(&self) -> i64 {
        derived_id(&[
            "deployment",
            &self.repository.to_ascii_lowercase(),
            &self.external_id,
        ])
    }

    /// The upserts it makes: the deployment, and a status at its start and, when
    /// finished, one at its finish.
    pub fn plan(&self) -> Result<Vec<Op>, PayloadError> {
        let e = DEPLOYMENT_EVENT;
        let repo = self.repo()?;
        text(e, "environment", &self.environment)?;
        text(e, "external_id", &self.external_id)?;
        if let Some(s) = &self.source {
            text(e, "source", s)?;
        }
        let sha = CommitSha::parse(&self.sha).map_err(|err| invalid(e, "sha", err.to_string()))?;
        let started = time(e, "started_at", self.started_at.as_deref())?;
        let finished = time(e, "finished_at", self.finished_at.as_deref())?;
        let Some(created) = started.or(finished) else {
            return Err(invalid(e, "started_at", "give started_at or finished_at"));
        };
        if self.status.finished() && finished.is_none() {
            return Err(invalid(
                e,
                "finished_at",
                format!("required when status is {:?}", self.status.as_str()),
            ));
        }
        let id = self.id();
        let mut ops = vec![Op::Deployment(DeploymentRow {
            id,
            repo: repo.as_str().to_string(),
            sha: sha.as_str().to_string(),
            git_ref: self.git_ref.clone(),
            environment: self.environment.clone(),
            creator: self.source.clone(),
            created_ns: Some(created),
        })];
        let status = |state: &str, at: i64| Op::DeploymentStatus {
            id: derived_id(&["deployment status", &id.to_string(), state]),
            deployment_id: id,
            state: state.to_string(),
            environment: Some(self.environment.clone()),
            created_ns: at,
        };
        if self.status.finished() {
            if let Some(s) = started {
                ops.push(status("in_progress", s));
            }
            ops.push(status(self.status.as_str(), finished.unwrap_or(created)));
        } else {
            ops.push(status(self.status.as_str(), created));
        }
        Ok(ops)
    }
}

impl IncidentReport {
    /// Reads and checks a posted incident; the error names the field.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let r: Self = super::events::read(INCIDENT_EVENT, body)?;
        r.plan()?;
        Ok(r)
    }

    pub fn repo(&self) -> Result<RepoName, PayloadError> {
        repository(INCIDENT_EVENT, &self.repository)
    }

    /// Its number in tracelink (GitHub issues keep theirs).
    pub fn number(&self) -> i64 {
        derived_id(&[
            "incident",
            &self.repository.to_ascii_lowercase(),
            &self.source.to_ascii_lowercase(),
            &self.external_id,
        ])
    }

    pub fn plan(&self) -> Result<Vec<Op>, PayloadError> {
        let e = INCIDENT_EVENT;
        let repo = self.repo()?;
        text(e, "source", &self.source)?;
        text(e, "external_id", &self.external_id)?;
        for (path, v) in [
            ("title", &self.title),
            ("environment", &self.environment),
            ("root_cause", &self.root_cause),
        ] {
            if let Some(v) = v {
                text(e, path, v)?;
            }
        }
        let opened = time(e, "opened_at", Some(&self.opened_at))?.unwrap_or_default();
        let resolved = time(e, "resolved_at", self.resolved_at.as_deref())?;
        if resolved.is_some_and(|r| r < opened) {
            return Err(invalid(e, "resolved_at", "is before opened_at"));
        }
        Ok(vec![Op::Incident(Box::new(IncidentRow {
            repo: repo.as_str().to_string(),
            number: self.number(),
            title: self.title.clone(),
            state: if resolved.is_some() {
                "resolved"
            } else {
                "open"
            }
            .into(),
            is_incident: true,
            root_cause: self.root_cause.clone(),
            environment: self.environment.clone(),
            opened_ns: Some(opened),
            closed_ns: resolved,
            source: Some(self.source.clone()),
            external_id: Some(self.external_id.clone()),
            version: version(
                resolved.unwrap_or(opened),
                if resolved.is_some() { 2 } else { 1 },
            ),
        }))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_deployment_becomes_a_deployment_and_its_statuses() {
        let body = br#"{"repository": "Acme/Widgets", "environment": "production",
            "sha": "9c0832b26219b10b65f2a64ef32be97e2e28f8da", "status": "success",
            "external_id": "argo-42", "started_at": "2026-11-20T10:00:00Z",
            "finished_at": "2026-11-20T10:05:00Z", "source": "argocd"}"#;
        let d = DeploymentReport::parse(body).unwrap();
        let ops = d.plan().unwrap();
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert!(d.id() >= 1 << 52 && d.id() < 1 << 53);
        let again = DeploymentReport {
            repository: "acme/widgets".into(),
            ..d.clone()
        };
        assert_eq!(again.id(), d.id(), "the same deployment whatever the case");
    }

    #[test]
    fn bad_deployments_are_refused_naming_the_field() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"repository": "acme", "environment": "p", "sha": "9c0832b26219b10b65f2a64ef32be97e2e28f8da", "status": "success", "external_id": "1", "finished_at": "2026-11-20T10:05:00Z"}"#, "repository"),
            (br#"{"repository": "acme/w", "environment": "p", "sha": "9c0832b", "status": "success", "external_id": "1", "finished_at": "2026-11-20T10:05:00Z"}"#, "sha"),
            (br#"{"repository": "acme/w", "environment": "p", "sha": "9c0832b26219b10b65f2a64ef32be97e2e28f8da", "status": "done", "external_id": "1"}"#, "status"),
            (br#"{"repository": "acme/w", "environment": "p", "sha": "9c0832b26219b10b65f2a64ef32be97e2e28f8da", "status": "success", "external_id": "1", "started_at": "2026-11-20T10:05:00Z"}"#, "finished_at"),
            (br#"{"repository": "acme/w", "environment": "p", "sha": "9c0832b26219b10b65f2a64ef32be97e2e28f8da", "status": "queued", "external_id": "1", "started_at": "yesterday"}"#, "started_at"),
        ];
        for (body, field) in cases {
            let e = DeploymentReport::parse(body).unwrap_err();
            assert_eq!(e.path, field, "{e}");
        }
    }

    #[test]
    fn an_incident_resolved_before_it_opened_is_refused() {
        let body = br#"{"repository": "acme/w", "source": "pagerduty", "external_id": "P1",
            "opened_at": "2026-11-20T10:00:00Z", "resolved_at": "2026-11-20T09:00:00Z"}"#;
        assert_eq!(IncidentReport::parse(body).unwrap_err().path, "resolved_at");
    }
}
