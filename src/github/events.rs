//! The GitHub webhook events tracelink consumes, read into its own structs: only the
//! fields it uses, optional ones optional, times parsed where they enter.

use serde::{Deserialize, Deserializer};

/// A payload that cannot be read, naming the JSON path of the offending field.
#[derive(Debug, thiserror::Error)]
#[error("{event} payload: field `{path}`: {message}")]
pub struct PayloadError {
    pub event: String,
    pub path: String,
    pub message: String,
}

/// Events and the actions of each that change what tracelink stores. Any other event or
/// action is acknowledged and ignored.
pub const CONSUMED: &[(&str, &[&str])] = &[
    ("ping", &[]),
    ("push", &[]),
    (
        "pull_request",
        &[
            "opened",
            "reopened",
            "synchronize",
            "edited",
            "closed",
            "converted_to_draft",
            "ready_for_review",
        ],
    ),
    ("workflow_run", &["requested", "in_progress", "completed"]),
    (
        "workflow_job",
        &["queued", "waiting", "in_progress", "completed"],
    ),
    ("check_suite", &["requested", "rerequested", "completed"]),
    ("check_run", &["created", "rerequested", "completed"]),
    ("status", &[]),
    ("deployment", &["created"]),
    ("deployment_status", &["created"]),
    (
        "issues",
        &[
            "opened",
            "edited",
            "closed",
            "reopened",
            "labeled",
            "unlabeled",
            "deleted",
            "transferred",
        ],
    ),
    (
        "installation",
        &[
            "created",
            "deleted",
            "suspend",
            "unsuspend",
            "new_permissions_accepted",
        ],
    ),
    ("installation_repositories", &["added", "removed"]),
];

/// Whether tracelink consumes this event and action (`None` for events without one).
pub fn consumed(event: &str, action: Option<&str>) -> bool {
    CONSUMED.iter().any(|(e, actions)| {
        *e == event && (actions.is_empty() || action.is_some_and(|a| actions.contains(&a)))
    })
}

/// A GitHub time: an RFC 3339 string, or (in some legacy payload fields such as
/// `installation.updated_at` and `repository.pushed_at`) Unix seconds.
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Time {
        Text(String),
        Seconds(i64),
    }
    match Option::<Time>::deserialize(d)? {
        None => Ok(None),
        Some(Time::Text(s)) if s.is_empty() => Ok(None),
        Some(Time::Text(s)) => chrono::DateTime::parse_from_rfc3339(&s)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time"))),
        Some(Time::Seconds(secs)) => secs
            .checked_mul(1_000_000_000)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{secs} is not a time"))),
    }
}

fn or_empty<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
    /// The branch pull requests merge into by default (`main`).
    #[serde(default)]
    pub default_branch: Option<String>,
    /// When the repository was last pushed to (a push event's: that push).
    #[serde(default, deserialize_with = "time")]
    pub pushed_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct User {
    #[serde(default)]
    pub login: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct GitUser {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PushCommit {
    pub id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, deserialize_with = "time")]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub author: Option<GitUser>,
    #[serde(default)]
    pub committer: Option<GitUser>,
    #[serde(default, deserialize_with = "or_empty")]
    pub added: Vec<String>,
    #[serde(default, deserialize_with = "or_empty")]
    pub modified: Vec<String>,
    #[serde(default, deserialize_with = "or_empty")]
    pub removed: Vec<String>,
}

/// A commit as the REST API lists it (`GET /repos/{o}/{r}/commits`, a pull request's
/// commits): what tracelink reads of it.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiCommit {
    pub sha: String,
    pub commit: ApiCommitBody,
    /// The GitHub accounts, when the emails belong to one.
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub committer: Option<User>,
    #[serde(default, deserialize_with = "or_empty")]
    pub parents: Vec<ApiParent>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiCommitBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub author: Option<ApiGitPerson>,
    #[serde(default)]
    pub committer: Option<ApiGitPerson>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiGitPerson {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "time")]
    pub date: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiParent {
    pub sha: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Push {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    #[serde(default, deserialize_with = "or_empty")]
    pub commits: Vec<PushCommit>,
    #[serde(default)]
    pub head_commit: Option<PushCommit>,
    /// A force push: `before` is not an ancestor of the pushed commits.
    #[serde(default)]
    pub forced: bool,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Branch {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    /// The repository the branch lives in (`null` once a fork is deleted).
    #[serde(default)]
    pub repo: Option<Repository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: i64,
    #[serde(default)]
    pub title: Option<String>,
    pub state: String,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub user: Option<User>,
    pub head: Branch,
    pub base: Branch,
    #[serde(default, deserialize_with = "time")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub updated_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub closed_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub merged_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub pull_request: PullRequest,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct App {
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRun {
    pub id: i64,
    #[serde(default)]
    pub run_attempt: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default, deserialize_with = "time")]
    pub run_started_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: String,
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowJob {
    pub id: i64,
    pub run_id: i64,
    #[serde(default)]
    pub run_attempt: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default, deserialize_with = "time")]
    pub started_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub completed_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowJobEvent {
    pub action: String,
    pub workflow_job: WorkflowJob,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckSuite {
    pub id: i64,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub app: Option<App>,
    #[serde(default, deserialize_with = "time")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckSuiteEvent {
    pub action: String,
    pub check_suite: CheckSuite,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SuiteRef {
    pub id: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRun {
    pub id: i64,
    pub head_sha: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default, deserialize_with = "time")]
    pub started_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub completed_at: Option<i64>,
    #[serde(default)]
    pub app: Option<App>,
    #[serde(default)]
    pub check_suite: Option<SuiteRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunEvent {
    pub action: String,
    pub check_run: CheckRun,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusEvent {
    pub id: i64,
    pub sha: String,
    pub state: String,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default, deserialize_with = "time")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub updated_at: Option<i64>,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub id: i64,
    pub sha: String,
    #[serde(rename = "ref", default)]
    pub git_ref: Option<String>,
    pub environment: String,
    #[serde(default)]
    pub creator: Option<User>,
    #[serde(default, deserialize_with = "time")]
    pub created_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentEvent {
    pub action: String,
    pub deployment: Deployment,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    pub id: i64,
    pub state: String,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(deserialize_with = "time")]
    pub created_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatusEvent {
    pub action: String,
    pub deployment_status: DeploymentStatus,
    pub deployment: Deployment,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub number: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "or_empty")]
    pub labels: Vec<Label>,
    pub state: String,
    #[serde(default, deserialize_with = "time")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub closed_at: Option<i64>,
    #[serde(default, deserialize_with = "time")]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssuesEvent {
    pub action: String,
    pub issue: Issue,
    pub repository: Repository,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: i64,
    #[serde(default)]
    pub account: Option<User>,
    #[serde(default, deserialize_with = "time")]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: Installation,
    #[serde(default, deserialize_with = "or_empty")]
    pub repositories: Vec<Repository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: String,
    pub installation: Installation,
    #[serde(default, deserialize_with = "or_empty")]
    pub repositories_added: Vec<Repository>,
    #[serde(default, deserialize_with = "or_empty")]
    pub repositories_removed: Vec<Repository>,
}

/// A consumed event, read.
#[derive(Debug, Clone)]
pub enum Event {
    Ping,
    Push(Push),
    PullRequest(PullRequestEvent),
    WorkflowRun(WorkflowRunEvent),
    WorkflowJob(WorkflowJobEvent),
    CheckSuite(CheckSuiteEvent),
    CheckRun(CheckRunEvent),
    Status(StatusEvent),
    Deployment(DeploymentEvent),
    DeploymentStatus(DeploymentStatusEvent),
    Issues(IssuesEvent),
    Installation(InstallationEvent),
    InstallationRepositories(InstallationRepositoriesEvent),
    /// Posted to the deployments API ([`super::external`]).
    ExternalDeployment(super::external::DeploymentReport),
    /// Posted to the incidents API.
    ExternalIncident(super::external::IncidentReport),
}

pub(super) fn read<'a, T: Deserialize<'a>>(event: &str, body: &'a [u8]) -> Result<T, PayloadError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        PayloadError {
            event: event.to_string(),
            path: if path == "." { "(root)".into() } else { path },
            message: inner.to_string(),
        }
    })?;
    // One document per body: nothing may follow it.
    de.end().map_err(|e| PayloadError {
        event: event.to_string(),
        path: "(end)".into(),
        message: format!("data after the JSON document: {e}"),
    })?;
    Ok(value)
}

impl Event {
    /// Reads a consumed event's payload. The caller has checked [`consumed`].
    pub fn parse(event: &str, body: &[u8]) -> Result<Event, PayloadError> {
        Ok(match event {
            "ping" => {
                read::<serde_json::Value>(event, body)?;
                Event::Ping
            }
            "push" => Event::Push(read(event, body)?),
            "pull_request" => Event::PullRequest(read(event, body)?),
            "workflow_run" => Event::WorkflowRun(read(event, body)?),
            "workflow_job" => Event::WorkflowJob(read(event, body)?),
            "check_suite" => Event::CheckSuite(read(event, body)?),
            "check_run" => Event::CheckRun(read(event, body)?),
            "status" => Event::Status(read(event, body)?),
            "deployment" => Event::Deployment(read(event, body)?),
            "deployment_status" => Event::DeploymentStatus(read(event, body)?),
            "issues" => Event::Issues(read(event, body)?),
            "installation" => Event::Installation(read(event, body)?),
            "installation_repositories" => Event::InstallationRepositories(read(event, body)?),
            super::external::DEPLOYMENT_EVENT => {
                Event::ExternalDeployment(super::external::DeploymentReport::parse(body)?)
            }
            super::external::INCIDENT_EVENT => {
                Event::ExternalIncident(super::external::IncidentReport::parse(body)?)
            }
            other => {
                return Err(PayloadError {
                    event: other.to_string(),
                    path: "(root)".into(),
                    message: "not an event tracelink consumes".into(),
                });
            }
        })
    }
}

/// The `action` and `repository.full_name` of any payload, read without the rest;
/// an error when the body is not a JSON object.
pub fn envelope(
    event: &str,
    body: &[u8],
) -> Result<(Option<String>, Option<String>), PayloadError> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        repository: Option<Repository>,
    }
    let e: Envelope = read(event, body)?;
    Ok((
        e.action,
        e.repository.map(|r| r.full_name.to_ascii_lowercase()),
    ))
}
