//! The `admin` scope: operations that change what tracelink derived, not what it
//! received. Every route needs an `--admin-token`; with none configured, only clients
//! on loopback (an operator on the host) may call them.
//!
//! - `POST /api/v1/admin/deliveries/replay` `{"status"?, "since"?, "id"?}` — marks stored
//!   deliveries pending again, through the writer (one process writes the file), and
//!   wakes the processor: they are applied again through the current code.
//! - `POST /api/v1/admin/relink` `{"repo"?, "since"?}` — queues the matching sessions for
//!   linking again (after the identities file, the grace period or a rule changed) and
//!   wakes the publisher, which relinks what they may have produced and re-publishes the
//!   reports whose content changed.
//! - `POST /api/v1/admin/backfill` `{"repo", "since"?}` — asks for a backfill of the
//!   repository from the GitHub API reaching back `since` (`30d` when absent; an
//!   unfinished one resumes instead) and wakes the backfill worker; answers 202 with its
//!   state. `GET /api/v1/admin/backfill[?repo=owner/repo]` — backfills and their
//!   progress.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use super::ApiError;
use crate::store::deliveries::Replay;
use crate::store::links::RelinkFilter;
use crate::store::writer::{SubmitError, Work, WriterHandle};

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    pub tokens: Arc<Vec<String>>,
    pub writer: WriterHandle,
    /// Wakes the webhook processor.
    pub processor: Arc<Notify>,
    /// Wakes the publisher (which drains the relink queue).
    pub publisher: Arc<Notify>,
    pub backfill: BackfillAdmin,
}

/// What the backfill routes need: a write connection of their own (asking for a
/// backfill is one short transaction), the readers, and the worker (none without a
/// GitHub App).
#[derive(Clone)]
pub struct BackfillAdmin {
    conn: Arc<tokio::sync::Mutex<crate::store::Conn>>,
    db: crate::store::Db,
    worker: Option<Arc<Notify>>,
}

impl BackfillAdmin {
    pub fn new(
        conn: crate::store::Conn,
        db: crate::store::Db,
        worker: Option<Arc<Notify>>,
    ) -> Self {
        BackfillAdmin {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            db,
            worker,
        }
    }
}

/// An admin token, or a loopback client when none is configured.
pub async fn require_admin(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let allowed = if state.tokens.is_empty() {
        peer.ip().is_loopback()
    } else {
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        crate::otlp::token_allowed(
            &state.tokens,
            crate::otlp::bearer(auth).filter(|t| !t.is_empty()),
        )
    };
    if allowed {
        next.run(req).await
    } else {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "admin routes need Authorization: Bearer <admin token> (--admin-token), or a loopback client when none is set".into(),
        )
        .into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// `failed`, `processed` or `pending`; absent: every status.
    pub status: Option<String>,
    /// RFC 3339: deliveries received at or after.
    pub since: Option<String>,
    /// One delivery by its id.
    pub id: Option<String>,
}

/// The body: empty (every record), or one JSON object of this shape, nothing after it.
fn request<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
    shape: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("expected {shape}: {e}")))
}

/// An optional RFC 3339 time as nanoseconds.
fn since(t: Option<&str>) -> Result<Option<i64>, ApiError> {
    match t {
        Some(t) => crate::time::parse_rfc3339(t).map(Some).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("since {t:?} is not an RFC 3339 time (2026-11-20T00:00:00Z)"),
            )
        }),
        None => Ok(None),
    }
}

/// Submits `work` to the writer; answers `{key: how many}`.
async fn submit(writer: &WriterHandle, work: Work, key: &str, wake: &Notify) -> Response {
    match writer.submit_work(work).await {
        Ok(written) => {
            wake.notify_one();
            (StatusCode::OK, Json(json!({ key: written.inserted }))).into_response()
        }
        Err(e @ SubmitError::Overloaded(_)) => {
            ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response()
        }
        Err(e @ SubmitError::ShuttingDown) => {
            ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, key, "an admin operation failed");
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the operation failed".into(),
            )
            .into_response()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelinkRequest {
    /// `owner/repo`: its sessions and those naming no repository.
    pub repo: Option<String>,
    /// RFC 3339: sessions active at or after.
    pub since: Option<String>,
}

pub async fn relink(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    let r: RelinkRequest = match request(&body, "{\"repo\"?, \"since\"?}") {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let repo = match r.repo.as_deref().map(crate::ids::RepoName::parse) {
        Some(Ok(name)) => Some(name.as_str().to_string()),
        Some(Err(e)) => return ApiError(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        None => None,
    };
    let since_ns = match since(r.since.as_deref()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let work = Work::Relink(RelinkFilter { repo, since_ns });
    submit(&state.writer, work, "queued", &state.publisher).await
}

pub async fn replay(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    let r: ReplayRequest = match request(&body, "{\"status\"?, \"since\"?, \"id\"?}") {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Some(s) = r.status.as_deref()
        && !matches!(s, "failed" | "processed" | "pending")
    {
        return ApiError(
            StatusCode::BAD_REQUEST,
            format!("status {s:?} is none of failed, processed, pending"),
        )
        .into_response();
    }
    let since_ns = match since(r.since.as_deref()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let work = Work::Replay(Replay {
        status: r.status,
        since_ns,
        id: r.id,
    });
    submit(&state.writer, work, "marked", &state.processor).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// `owner/repo`.
    pub repo: Option<String>,
    /// How far back: `30d`, `12h`, `90m` (default `30d`).
    pub since: Option<String>,
}

pub async fn backfill(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    let r: BackfillRequest = match request(&body, "{\"repo\", \"since\"?}") {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let repo = match r.repo.as_deref().map(crate::ids::RepoName::parse) {
        Some(Ok(name)) => name.as_str().to_string(),
        Some(Err(e)) => return ApiError(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        None => {
            return ApiError(
                StatusCode::BAD_REQUEST,
                "a backfill needs \"repo\": \"owner/repo\"".into(),
            )
            .into_response();
        }
    };
    let since = match crate::config::parse_since(r.since.as_deref().unwrap_or("30d")) {
        Ok(d) => d,
        Err(e) => return ApiError(StatusCode::BAD_REQUEST, format!("since: {e}")).into_response(),
    };
    let Some(worker) = &state.backfill.worker else {
        return ApiError(
            StatusCode::CONFLICT,
            "a backfill reads the GitHub API as the App, and no GitHub App is configured (--github-app-id)".into(),
        )
        .into_response();
    };
    let now = crate::time::now_ns();
    let since_ns = crate::github::backfill::since_ns(now, since);
    let asked = async {
        let mut conn = state.backfill.conn.lock().await;
        let mut tx = conn.begin_exclusive().await?;
        let row = tx.request_backfill(&repo, None, since_ns, now).await?;
        tx.commit().await?;
        Ok::<_, crate::store::Error>(row)
    }
    .await;
    match asked {
        Ok(row) => {
            worker.notify_one();
            (StatusCode::ACCEPTED, Json(json!({ "backfill": row }))).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, repo, "asking for a backfill failed");
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the backfill could not be stored".into(),
            )
            .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct BackfillQuery {
    pub repo: Option<String>,
}

pub async fn backfills(
    State(state): State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<BackfillQuery>,
) -> Response {
    let repos = match q.repo.as_deref().map(crate::ids::RepoName::parse) {
        Some(Ok(name)) => vec![name.as_str().to_string()],
        Some(Err(e)) => return ApiError(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        None => Vec::new(),
    };
    match state.backfill.db.backfills(&repos).await {
        Ok(rows) => (StatusCode::OK, Json(json!({ "backfills": rows }))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading backfills failed");
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "backfills could not be read".into(),
            )
            .into_response()
        }
    }
}
