//! The query API on the HTTP listener: sessions, health, Prometheus metrics.

pub mod admin;
pub mod analytics;
pub mod github;
pub mod grpc;
pub mod records;

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::impact::ReportContext;
use crate::metrics::sessions::view;
use crate::pricing::PriceTable;
use crate::store::Db;
use crate::store::sessions::ListFilter;
use crate::store::writer::WriterHandle;
use crate::telemetry::Telemetry;

/// What the query API needs.
#[derive(Clone)]
pub struct ApiState {
    /// Brings analytics' facts up to date before an answer.
    pub analytics: crate::impact::analytics::Refresher,
    pub db: Db,
    pub prices: Arc<PriceTable>,
    pub reports: Arc<ReportContext>,
    pub telemetry: Arc<Telemetry>,
    /// For the write-queue depth in `/metrics`.
    pub writer: WriterHandle,
    pub queue_capacity: usize,
    /// `--people on`: per-person filters and groupings are allowed.
    pub people: bool,
    /// Whether this replica exports the organisation-wide figures on `/metrics`.
    pub metrics_lease: crate::replica::MetricsLease,
    /// Set when the process is stopping: `/readyz` turns the load balancer away.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// `--alert-mads`, `--alert-min-usd` (and `people`).
    pub alerts: crate::metrics::alerts::Settings,
    /// The organisation's figures on `/metrics`, computed at most once a minute.
    pub org_figures: std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, String)>>>,
}

/// How long the organisation's figures on `/metrics` are served before they are read
/// again (Prometheus scrapes every 15–60 s; each reading loads the month's sessions).
const ORG_FIGURES_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A JSON error: `{"error": "..."}` with a status.
pub struct ApiError(pub StatusCode, pub String);

/// A query string read as `T`; an unreadable one is a JSON 400 naming the parameter,
/// like every other API error (axum's own answer is text/plain).
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// Path parameters read as `T`; an unreadable one (`/pulls/abc`) is a JSON 400.
pub struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Params(p.0))
            .map_err(|e| ApiError(e.status(), e.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        tracing::error!(error = %e, "query failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "the query failed".into())
    }
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`: whether this replica can take traffic. 200 when the database answers and
/// holds every migration this release knows; 503 with the reason otherwise, and while
/// the process is stopping (so a load balancer drains it first). `/healthz` says only
/// that the process runs.
pub async fn readyz(State(state): State<ApiState>) -> Response {
    if *state.stopping.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: stopping\n").into_response();
    }
    match state.db.readiness().await {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

pub async fn metrics(State(state): State<ApiState>) -> Response {
    use std::fmt::Write;
    let mut text = state
        .telemetry
        .render(state.writer.depth(), state.queue_capacity);
    let exports = state.metrics_lease.held();
    let name = "tracelink_replica_exports_shared";
    let _ = writeln!(
        text,
        "# HELP {name} 1 on the one replica that exports the figures read from the shared database (the tracelink_shared_*, tracelink_team_*, tracelink_model_*, tracelink_alert_* and link queue gauges), 0 on the others: sum or max over replicas, never both.\n# TYPE {name} gauge\n{name} {}",
        u8::from(exports)
    );
    // Read from the database, so the same on every replica: exported by one at a time
    // (a lease), or a dashboard summing over replicas would count them N times.
    if exports {
        match state.db.shared_queues().await {
            Ok(q) => {
                for (name, help, v) in [
                    (
                        "tracelink_link_queue_sessions",
                        "Sessions waiting to be linked to commits again (after new telemetry, a relink or an upgrade with new link rules).",
                        q.link_queue_sessions,
                    ),
                    (
                        "tracelink_shared_deliveries_pending",
                        "Webhook deliveries stored and not yet applied, by all replicas.",
                        q.deliveries_pending,
                    ),
                    (
                        "tracelink_shared_deliveries_failed",
                        "Webhook deliveries set aside as failed (tracelink deliveries replay brings them back).",
                        q.deliveries_failed,
                    ),
                    (
                        "tracelink_shared_reports_queued",
                        "Pull requests whose report waits to be published.",
                        q.reports_queued,
                    ),
                ] {
                    let _ = writeln!(
                        text,
                        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the shared queues for /metrics"),
        }
        let mut cached = state.org_figures.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < ORG_FIGURES_TTL);
        if !fresh {
            match crate::impact::analytics::org_figures(
                &state.db,
                &state.reports,
                &state.alerts,
                crate::time::now_ns(),
            )
            .await
            {
                Ok(text) => *cached = Some((std::time::Instant::now(), text)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the organisation's figures for /metrics")
                }
            }
        }
        if let Some((_, figures)) = cached.as_ref() {
            text.push_str(figures);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A session with where its cost went.
#[derive(serde::Serialize)]
struct SessionDetail {
    #[serde(flatten)]
    view: crate::metrics::sessions::SessionView,
    #[serde(flatten)]
    cost: crate::impact::session::SessionCost,
}

pub async fn session(
    State(state): State<ApiState>,
    Params(id): Params<String>,
) -> Result<Response, ApiError> {
    match state.db.session(&id).await? {
        Some(s) => {
            let view = view(&state.prices, s);
            // Where its cost went: per commit, and what no pull request carries.
            let cost = crate::impact::session::cost_shares(&state.db, &id, view.cost_usd).await?;
            Ok(Json(SessionDetail { view, cost }).into_response())
        }
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no session {id:?}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    repo: Option<String>,
    user: Option<String>,
    agent: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

const MAX_LIMIT: u32 = 500;

fn parse_cursor(c: &str) -> Option<(i64, i64)> {
    let (a, b) = c.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub async fn list_sessions(
    State(state): State<ApiState>,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    if !state.people && p.user.as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "per-person views are off: filtering sessions by user needs tracelink started with --people on".into(),
        ));
    }
    let since_ns = match p.since.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            crate::time::parse_rfc3339(s)
                .ok_or_else(|| bad(format!("since={s:?} is not an RFC 3339 time")))?,
        ),
    };
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let after = match p.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| bad(format!("cursor {c:?} is not valid")))?),
    };
    let filter = ListFilter {
        // As the commit and PR endpoints: repository names case-insensitively; agents by
        // id or by the name reports print ("Claude Code").
        repository: p
            .repo
            .filter(|s| !s.is_empty())
            .map(|r| r.to_ascii_lowercase()),
        user: p.user.filter(|s| !s.is_empty()),
        agent: p.agent.filter(|s| !s.is_empty()),
        since_ns,
        limit,
        after,
    };
    let page = state.db.sessions_page(&filter).await?;
    let sessions: Vec<_> = page
        .sessions
        .into_iter()
        .map(|s| view(&state.prices, s))
        .collect();
    Ok(Json(json!({
        "sessions": sessions,
        "next_cursor": page.next.map(|(s, id)| format!("{s}.{id}")),
    }))
    .into_response())
}
