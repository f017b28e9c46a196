//! The GitHub side of the graph as JSON: a commit with everything linked to it, a pull
//! request with its commits, and failed webhook deliveries.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::SqlitePool;

use super::ApiError;
use crate::github::plan::{commit_key, pull_key};
use crate::ids::{CommitSha, encode_hex};
use crate::server::AppState;

fn rfc3339(ns: Option<i64>) -> Option<String> {
    crate::store::rfc3339(ns, chrono::SecondsFormat::Secs)
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
}

/// kind, id, attempt, name, status, conclusion, trace ID.
type RunDbRow = (
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

/// delivery ID, event, action, repository, received, error.
type DeliveryDbRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
);

type CommitRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

async fn commit_view(
    pool: &SqlitePool,
    repo: &str,
    sha: &CommitSha,
) -> sqlx::Result<Option<CommitView>> {
    let key = commit_key(repo, sha);
    let row: Option<CommitRow> = sqlx::query_as(
        "SELECT message, author_name, author_email, author_login, authored_ns FROM commits WHERE repo = ? AND sha = ?",
    )
    .bind(repo)
    .bind(sha.as_str())
    .fetch_optional(pool)
    .await?;
    // A commit known only from links (a run's head, a deployment) is still shown.
    let linked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM links WHERE to_kind = 'commit' AND to_key = ?")
            .bind(&key)
            .fetch_one(pool)
            .await?;
    if row.is_none() && linked == 0 {
        return Ok(None);
    }
    let (message, name, email, login, authored) = row.unwrap_or_default();
    let trailers: Vec<(String, String)> = sqlx::query_as(
        "SELECT key, value FROM commit_trailers WHERE repo = ? AND sha = ? ORDER BY position",
    )
    .bind(repo)
    .bind(sha.as_str())
    .fetch_all(pool)
    .await?;
    let agents: Vec<String> = sqlx::query_scalar(
        "SELECT agent FROM commit_agents WHERE repo = ? AND sha = ? ORDER BY agent",
    )
    .bind(repo)
    .bind(sha.as_str())
    .fetch_all(pool)
    .await?;
    let prefix_len = repo.len() + 1;
    let parents: Vec<String> = sqlx::query_scalar(
        "SELECT to_key FROM links WHERE from_kind = 'commit' AND from_key = ? AND relation = 'parent' ORDER BY to_key",
    )
    .bind(&key)
    .fetch_all(pool)
    .await?;
    let files: Vec<(String, String)> = sqlx::query_as(
        "SELECT path, change FROM commit_files WHERE repo = ? AND sha = ? ORDER BY path",
    )
    .bind(repo)
    .bind(sha.as_str())
    .fetch_all(pool)
    .await?;
    // Pull requests: whose head it was, that merged as it, or whose head branch it was pushed to.
    let pull_requests: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT number FROM ( \
           SELECT CAST(substr(from_key, ?) AS INTEGER) AS number FROM links \
             WHERE to_kind = 'commit' AND to_key = ? AND from_kind = 'pull_request' \
           UNION SELECT p.number FROM pull_requests p JOIN commit_refs r \
             ON r.repo = p.repo AND r.ref = 'refs/heads/' || p.head_ref \
             WHERE p.repo = ? AND r.sha = ? \
         ) ORDER BY number",
    )
    .bind(prefix_len as i64 + 1)
    .bind(&key)
    .bind(repo)
    .bind(sha.as_str())
    .fetch_all(pool)
    .await?;
    let runs: Vec<RunDbRow> = sqlx::query_as(
        "SELECT kind, id, attempt, name, status, conclusion, trace_id FROM ci_runs \
             WHERE repo = ? AND head_sha = ? ORDER BY kind, id, attempt",
    )
    .bind(repo)
    .bind(sha.as_str())
    .fetch_all(pool)
    .await?;
    let deployments: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT d.id, d.environment, (SELECT s.state FROM deployment_statuses s WHERE s.deployment_id = d.id \
           ORDER BY s.created_ns DESC, s.id DESC LIMIT 1) \
         FROM deployments d WHERE d.repo = ? AND d.sha = ? ORDER BY d.id",
    )
    .bind(repo)
    .bind(sha.as_str())
    .fetch_all(pool)
    .await?;
    let incidents: Vec<i64> = sqlx::query_scalar(
        "SELECT i.number FROM incidents i JOIN links l ON l.from_kind = 'incident' \
           AND l.from_key = i.repo || '!' || i.number \
         WHERE i.repo = ? AND i.is_incident = 1 AND l.to_kind = 'commit' AND l.to_key = ? ORDER BY i.number",
    )
    .bind(repo)
    .bind(&key)
    .fetch_all(pool)
    .await?;
    Ok(Some(CommitView {
        repository: repo.to_string(),
        sha: sha.to_string(),
        message,
        author: Author { name, email, login },
        authored_at: rfc3339(authored),
        agent_assisted: !agents.is_empty(),
        trailers: trailers
            .into_iter()
            .map(|(key, value)| TrailerView { key, value })
            .collect(),
        agents,
        parents: parents
            .into_iter()
            .map(|k| k.get(prefix_len..).unwrap_or_default().to_string())
            .collect(),
        files: files
            .into_iter()
            .map(|(path, change)| json!({ "path": path, "change": change }))
            .collect(),
        pull_requests,
        runs: runs
            .into_iter()
            .map(
                |(kind, id, attempt, name, status, conclusion, trace)| RunView {
                    kind,
                    id,
                    attempt,
                    name,
                    status,
                    conclusion,
                    trace_id: trace.map(|t| encode_hex(&t)),
                },
            )
            .collect(),
        deployments: deployments
            .into_iter()
            .map(|(id, environment, state)| DeploymentView {
                id,
                environment,
                state,
            })
            .collect(),
        incidents,
        sessions: Vec::new(),
    }))
}

pub async fn commit(
    State(state): State<AppState>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let sha =
        CommitSha::parse(&sha).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let repo = format!("{owner}/{repo}").to_ascii_lowercase();
    match commit_view(&state.readers, &repo, &sha).await? {
        Some(mut c) => {
            c.sessions = crate::graph::links::link_commits(
                &state.readers,
                &state.reports.links,
                &repo,
                &[sha.to_string()],
            )
            .await?;
            Ok(Json(c).into_response())
        }
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no commit {sha} in {repo}"),
        )),
    }
}

type PullRow = (
    Option<String>,
    String,
    bool,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

pub async fn pull_request(
    State(state): State<AppState>,
    Path((owner, repo, number)): Path<(String, String, i64)>,
) -> Result<Response, ApiError> {
    let repo = format!("{owner}/{repo}").to_ascii_lowercase();
    let pool = &state.readers;
    let row: Option<PullRow> = sqlx::query_as(
        "SELECT title, state, draft, merged, author_login, head_ref, head_sha, base_ref, base_sha, \
         merge_commit_sha, created_ns, updated_ns, closed_ns, merged_ns FROM pull_requests WHERE repo = ? AND number = ?",
    )
    .bind(&repo)
    .bind(number)
    .fetch_optional(pool)
    .await?;
    let Some((
        title,
        pr_state,
        draft,
        merged,
        author,
        head_ref,
        head_sha,
        base_ref,
        base_sha,
        merge_sha,
        created,
        updated,
        closed,
        merged_at,
    )) = row
    else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no pull request {repo}#{number}"),
        ));
    };
    // Its commits: every head it had, and every commit pushed to its head branch.
    let commits: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT c.sha, c.message, c.authored_ns FROM ( \
           SELECT substr(to_key, ?) AS sha FROM links \
             WHERE from_kind = 'pull_request' AND from_key = ? AND relation = 'head' \
           UNION SELECT r.sha FROM commit_refs r WHERE r.repo = ? AND r.ref = 'refs/heads/' || ? \
         ) k LEFT JOIN commits c ON c.repo = ? AND c.sha = k.sha \
         WHERE c.sha IS NOT NULL ORDER BY c.authored_ns, c.sha",
    )
    .bind(repo.len() as i64 + 2)
    .bind(pull_key(&repo, number))
    .bind(&repo)
    .bind(head_ref.as_deref().unwrap_or(""))
    .bind(&repo)
    .fetch_all(pool)
    .await?;
    let heads: Vec<String> = sqlx::query_scalar(
        "SELECT substr(to_key, ?) FROM links WHERE from_kind = 'pull_request' AND from_key = ? AND relation = 'head' ORDER BY to_key",
    )
    .bind(repo.len() as i64 + 2)
    .bind(pull_key(&repo, number))
    .fetch_all(pool)
    .await?;
    Ok(Json(json!({
        "repository": repo,
        "number": number,
        "title": title,
        "state": pr_state,
        "draft": draft,
        "merged": merged,
        "author": author,
        "head": { "ref": head_ref, "sha": head_sha },
        "base": { "ref": base_ref, "sha": base_sha },
        "merge_commit_sha": merge_sha,
        "created_at": rfc3339(created),
        "updated_at": rfc3339(updated),
        "closed_at": rfc3339(closed),
        "merged_at": rfc3339(merged_at),
        "head_shas": heads,
        "commits": commits.into_iter().map(|(sha, message, at)| json!({
            "sha": sha, "message": message, "authored_at": rfc3339(at)
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
    State(state): State<AppState>,
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
    let rows: Vec<DeliveryDbRow> = sqlx::query_as(
        "SELECT delivery_id, event, action, repo, received_ns, error FROM deliveries \
         WHERE status = ? ORDER BY received_ns DESC LIMIT ?",
    )
    .bind(&status)
    .bind(i64::from(limit))
    .fetch_all(&state.readers)
    .await?;
    Ok(Json(json!({
        "deliveries": rows.into_iter().map(|(id, event, action, repo, at, error)| json!({
            "delivery_id": id, "event": event, "action": action, "repository": repo,
            "received_at": rfc3339(Some(at)), "status": status, "error": error,
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
    State(state): State<AppState>,
    Path((owner, repo, number)): Path<(String, String, i64)>,
    Query(p): Query<ReportParams>,
) -> Result<Response, ApiError> {
    let repo = format!("{owner}/{repo}").to_ascii_lowercase();
    let format = p.format.unwrap_or_else(|| "json".into());
    if format != "json" && format != "markdown" {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("format={format:?}: use json or markdown"),
        ));
    }
    let built = crate::report::build(&state.readers, &state.reports, &repo, number)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "building a report failed");
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "building the report failed".into(),
            )
        })?;
    let Some((report, _, _)) = built else {
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
}

/// `GET /api/v1/repos/{owner}/{repo}/dora?environment=&since=&until=`: the four DORA keys,
/// split by agent involvement (defaults: production, the last 30 days).
pub async fn dora(
    State(state): State<AppState>,
    Path((owner, repo)): Path<(String, String)>,
    Query(p): Query<DoraParams>,
) -> Result<Response, ApiError> {
    let time = |name: &str, v: &Option<String>, default: i64| -> Result<i64, ApiError> {
        match v.as_deref() {
            None | Some("") => Ok(default),
            Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .ok_or_else(|| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        format!("{name}={s:?} is not an RFC 3339 time"),
                    )
                }),
        }
    };
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let until = time("until", &p.until, now)?;
    let since = time("since", &p.since, until - 30 * 86_400 * 1_000_000_000)?;
    if since >= until {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "since must be before until".into(),
        ));
    }
    let env = p.environment.unwrap_or_else(|| "production".into());
    let repo = format!("{owner}/{repo}").to_ascii_lowercase();
    let keys = crate::metrics::dora::dora(&state.readers, &repo, &env, since, until).await?;
    Ok(Json(keys).into_response())
}
