//! The GitHub side of the graph as JSON: a commit with everything linked to it, a pull
//! request with its commits, and failed webhook deliveries.

use super::{ApiError, ApiState, Params, Query};
use crate::ids::{CommitSha, PrNumber, RepoName, encode_hex};
use crate::store::nodes::CommitDetail;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

fn rfc3339(ns: Option<i64>) -> Option<String> {
    crate::time::rfc3339(ns, chrono::SecondsFormat::Secs)
}

#[derive(Serialize)]
struct Author {
    name: Option<String>,
    email: Option<String>,
    login: Option<String>,
}

#[derive(Serialize)]
struct TrailerView {
    key: String,
    value: String,
}

#[derive(Serialize)]
struct RunView {
    kind: String,
    id: i64,
    attempt: i64,
    name: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    trace_id: Option<String>,
}

#[derive(Serialize)]
struct DeploymentView {
    id: i64,
    environment: String,
    state: Option<String>,
}

#[derive(Serialize)]
struct CommitView {
    repository: String,
    sha: String,
    message: Option<String>,
    author: Author,
    authored_at: Option<String>,
    trailers: Vec<TrailerView>,
    agent_assisted: bool,
    agents: Vec<String>,
    parents: Vec<String>,
    files: Vec<serde_json::Value>,
    pull_requests: Vec<i64>,
    runs: Vec<RunView>,
    deployments: Vec<DeploymentView>,
    incidents: Vec<i64>,
    /// Agent sessions linked to the commit, with the evidence (DESIGN.md §4).
    sessions: Vec<crate::graph::links::SessionLink>,
    /// What line records (its own, or those of the commits it stands for) say of its
    /// added lines (evidence `lines`), when there are any and its patch is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    line_records: Option<crate::metrics::model::CommitLineRecords>,
}

fn commit_view(repo: &RepoName, d: CommitDetail) -> CommitView {
    let c = d.commit;
    CommitView {
        repository: repo.to_string(),
        sha: c.sha,
        message: c.message,
        author: Author {
            name: c.author_name,
            email: c.author_email,
            login: c.author_login,
        },
        authored_at: rfc3339(c.authored_ns),
        agent_assisted: !d.agents.is_empty(),
        trailers: d
            .trailers
            .into_iter()
            .map(|(key, value)| TrailerView { key, value })
            .collect(),
        agents: d.agents,
        parents: d.parents,
        files: d
            .files
            .into_iter()
            .map(|(path, change)| json!({ "path": path, "change": change }))
            .collect(),
        pull_requests: d.pull_requests,
        runs: d
            .runs
            .into_iter()
            .map(|r| RunView {
                kind: r.kind,
                id: r.id,
                attempt: r.attempt,
                name: r.name,
                status: r.status,
                conclusion: r.conclusion,
                trace_id: r.trace_id.map(|t| encode_hex(&t)),
            })
            .collect(),
        deployments: d
            .deployments
            .into_iter()
            .map(|d| DeploymentView {
                id: d.id,
                environment: d.environment,
                state: d.state,
            })
            .collect(),
        incidents: Vec::new(),
        sessions: Vec::new(),
        line_records: None,
    }
}

fn repo_of(owner: &str, name: &str) -> Result<RepoName, ApiError> {
    RepoName::from_parts(owner, name).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

pub async fn commit(
    State(state): State<ApiState>,
    Params((owner, repo, sha)): Params<(String, String, String)>,
) -> Result<Response, ApiError> {
    let sha =
        CommitSha::parse(&sha).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let repo = repo_of(&owner, &repo)?;
    match state.db.commit_detail(repo.as_str(), sha.as_str()).await? {
        Some(d) => {
            let mut c = commit_view(&repo, d);
            // The stored links: the same the reports and DORA read.
            c.sessions =
                crate::graph::linker::stored_links(&state.db, repo.as_str(), &[sha.to_string()])
                    .await?;
            // Incidents whose root cause names the commit.
            c.incidents =
                crate::graph::incidents::naming_commit(&state.db, repo.as_str(), sha.as_str())
                    .await?;
            // Agent-assisted: an agent trailer, or a session linked.
            c.agent_assisted |= !c.sessions.is_empty();
            c.line_records =
                crate::impact::lines::recorded(&state.db, repo.as_str(), &[sha.to_string()])
                    .await?
                    .remove(sha.as_str())
                    .map(|r| r.summary);
            Ok(Json(c).into_response())
        }
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no commit {sha} in {repo}"),
        )),
    }
}

pub async fn pull_request(
    State(state): State<ApiState>,
    Params((owner, repo, number)): Params<(String, String, i64)>,
) -> Result<Response, ApiError> {
    let repo = repo_of(&owner, &repo)?;
    let r = repo.as_str();
    let Some(pr) = state.db.pull_request(r, number).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no pull request {repo}#{number}"),
        ));
    };
    // Its commits (the same list the report reads), those stored, oldest first.
    let shas = state.db.pull_commits(r, number).await?.shas;
    let mut commits = state.db.commits(r, &shas).await?;
    commits.sort_by(|a, b| (a.authored_ns, &a.sha).cmp(&(b.authored_ns, &b.sha)));
    let heads = state.db.pull_heads(r, number).await?;
    Ok(Json(json!({
        "repository": repo,
        "number": number,
        "title": pr.title,
        "state": pr.state,
        "draft": pr.draft,
        "merged": pr.merged,
        "author": pr.author_login,
        "head": { "ref": pr.head_ref, "sha": pr.head_sha },
        "base": { "ref": pr.base_ref, "sha": pr.base_sha },
        "merge_commit_sha": pr.merge_commit_sha,
        "created_at": rfc3339(pr.created_ns),
        "updated_at": rfc3339(pr.updated_ns),
        "closed_at": rfc3339(pr.closed_ns),
        "merged_at": rfc3339(pr.merged_ns),
        "head_shas": heads,
        "commits": commits.into_iter().map(|c| json!({
            "sha": c.sha, "message": c.message, "authored_at": rfc3339(c.authored_ns)
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct DeliveryParams {
    status: Option<String>,
    limit: Option<u32>,
}

pub async fn deliveries(
    State(state): State<ApiState>,
    Query(p): Query<DeliveryParams>,
) -> Result<Response, ApiError> {
    let status = p.status.unwrap_or_else(|| "failed".into());
    if !["failed", "pending", "processed"].contains(&status.as_str()) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("status={status:?}: use failed, pending or processed"),
        ));
    }
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state.db.deliveries(&status, limit).await?;
    Ok(Json(json!({
        "deliveries": rows.into_iter().map(|d| json!({
            "delivery_id": d.delivery_id, "event": d.event, "action": d.action,
            "repository": d.repo, "received_at": rfc3339(Some(d.received_ns)),
            "status": status, "error": d.error,
        })).collect::<Vec<_>>()
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct ReportParams {
    format: Option<String>,
}

/// `GET /api/v1/repos/{owner}/{repo}/pulls/{number}/report?format=json|markdown`.
pub async fn pull_report(
    State(state): State<ApiState>,
    Params((owner, repo, number)): Params<(String, String, i64)>,
    Query(p): Query<ReportParams>,
) -> Result<Response, ApiError> {
    let repo = repo_of(&owner, &repo)?;
    let format = p.format.unwrap_or_else(|| "json".into());
    if format != "json" && format != "markdown" {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("format={format:?}: use json or markdown"),
        ));
    }
    let built = crate::impact::pull::build(&state.db, &state.reports, &repo, PrNumber(number))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "building a report failed");
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "building the report failed".into(),
            )
        })?;
    let Some(crate::impact::pull::Built { report, .. }) = built else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no pull request {repo}#{number}"),
        ));
    };
    Ok(if format == "markdown" {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            crate::report::markdown::render(&report),
        )
            .into_response()
    } else {
        Json(report).into_response()
    })
}

#[derive(Deserialize)]
pub struct DoraParams {
    environment: Option<String>,
    since: Option<String>,
    until: Option<String>,
    group_by: Option<String>,
}

/// `since`/`until` of a DORA request (defaults: the last 30 days).
fn dora_window(p: &DoraParams) -> Result<(i64, i64), ApiError> {
    let time = |name: &str, v: &Option<String>, default: i64| -> Result<i64, ApiError> {
        match v.as_deref() {
            None | Some("") => Ok(default),
            Some(s) => crate::time::parse_rfc3339(s).ok_or_else(|| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("{name}={s:?} is not an RFC 3339 time"),
                )
            }),
        }
    };
    let until = time("until", &p.until, crate::time::now_ns())?;
    let since = time("since", &p.since, until - 30 * 86_400 * 1_000_000_000)?;
    if since >= until {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "since must be before until".into(),
        ));
    }
    Ok((since, until))
}

/// `GET /api/v1/dora?environment=&since=&until=&group_by=org|team|repo`: the four DORA
/// keys rolled up over every repository deployed to the environment, split by agent
/// involvement, overall and per group (default `org`).
pub async fn dora_rollup(
    State(state): State<ApiState>,
    Query(p): Query<DoraParams>,
) -> Result<Response, ApiError> {
    use crate::impact::dora::RollupBy;
    let (since, until) = dora_window(&p)?;
    let by = match p.group_by.as_deref() {
        None | Some("") | Some("org") => RollupBy::Org,
        Some("team") => RollupBy::Team,
        Some("repo") => RollupBy::Repo,
        Some(g) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("group_by={g:?}: one of org, team, repo"),
            ));
        }
    };
    let env = p.environment.clone().unwrap_or_else(|| "production".into());
    let keys =
        crate::impact::dora::rollup(&state.db, &state.reports, &env, since, until, by).await?;
    Ok(Json(keys).into_response())
}

/// `GET /api/v1/repos/{owner}/{repo}/dora?environment=&since=&until=`: the four DORA keys,
/// split by agent involvement (defaults: production, the last 30 days).
pub async fn dora(
    State(state): State<ApiState>,
    Params((owner, repo)): Params<(String, String)>,
    Query(p): Query<DoraParams>,
) -> Result<Response, ApiError> {
    let (since, until) = dora_window(&p)?;
    let env = p.environment.unwrap_or_else(|| "production".into());
    let repo = repo_of(&owner, &repo)?;
    let keys =
        crate::impact::dora::repository(&state.db, &state.reports, &repo, &env, since, until)
            .await?;
    Ok(Json(keys).into_response())
}
