//! The `admin` scope: operations that change what tracelink derived, not what it
//! received. Every route needs an `--admin-token`; with none configured, only clients
//! on loopback (an operator on the host) may call them.
//!
//! - `POST /api/v1/admin/deliveries/replay` `{"status"?, "since"?, "id"?}` — marks stored
//!   deliveries pending again, through the writer (one process writes the file), and
//!   wakes the processor: they are applied again through the current code.

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
use crate::store::writer::{SubmitError, Work, WriterHandle};

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    pub tokens: Arc<Vec<String>>,
    pub writer: WriterHandle,
    /// Wakes the webhook processor.
    pub processor: Arc<Notify>,
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

pub async fn replay(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    // An empty body replays every delivery; otherwise one JSON object, nothing after it.
    let r: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"status\"?, \"since\"?, \"id\"?}}: {e}"),
                )
                .into_response();
            }
        }
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
    let since_ns = match r.since.as_deref() {
        Some(t) => match crate::time::parse_rfc3339(t) {
            Some(ns) => Some(ns),
            None => {
                return ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("since {t:?} is not an RFC 3339 time (2026-11-20T00:00:00Z)"),
                )
                .into_response();
            }
        },
        None => None,
    };
    let work = Work::Replay(Replay {
        status: r.status,
        since_ns,
        id: r.id,
    });
    match state.writer.submit_work(work).await {
        Ok(written) => {
            state.processor.notify_one();
            (StatusCode::OK, Json(json!({ "marked": written.inserted }))).into_response()
        }
        Err(e @ SubmitError::Overloaded(_)) => {
            ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response()
        }
        Err(e @ SubmitError::ShuttingDown) => {
            ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "marking deliveries for replay");
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "marking the deliveries failed".into(),
            )
            .into_response()
        }
    }
}
