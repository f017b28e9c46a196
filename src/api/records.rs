//! `POST /api/v1/deployments` and `POST /api/v1/incidents`: deployments and incidents
//! from outside GitHub ([`crate::github::external`] has the shapes). Accepted with an API
//! token (`--ingest-token`, any repository), or a CI upload token or a GitHub Actions OIDC
//! token (their own repository), for repositories tracelink serves. Each is stored as a
//! delivery before the answer and applied off the request path.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ci::upload::UploadConfig;
use crate::github::events::PayloadError;
use crate::github::external::{DEPLOYMENT_EVENT, DeploymentReport, INCIDENT_EVENT, IncidentReport};
use crate::ids::RepoName;
use crate::store::Db;
use crate::store::deliveries::DeliveryRow;
use crate::store::writer::{SubmitError, Work, WriterHandle};

/// Largest body accepted.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct RecordsState {
    pub db: Db,
    pub writer: WriterHandle,
    /// Woken when a record was stored.
    pub processor: std::sync::Arc<tokio::sync::Notify>,
    /// API tokens (none: open, as OTLP ingest).
    pub tokens: std::sync::Arc<Vec<String>>,
    /// CI upload tokens and the OIDC verifier.
    pub uploads: std::sync::Arc<UploadConfig>,
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

fn bad(e: PayloadError) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({ "error": format!("{}: {}", e.path, e.message), "field": e.path }),
    )
}

pub async fn deployment(
    State(state): State<RecordsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let report = match DeploymentReport::parse(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let (repo, id) = match report.repo() {
        Ok(r) => (r, report.id()),
        Err(e) => return bad(e),
    };
    store(&state, &headers, DEPLOYMENT_EVENT, repo, id, body).await
}

pub async fn incident(
    State(state): State<RecordsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let report = match IncidentReport::parse(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let (repo, id) = match report.repo() {
        Ok(r) => (r, report.number()),
        Err(e) => return bad(e),
    };
    store(&state, &headers, INCIDENT_EVENT, repo, id, body).await
}

/// Checks the credentials for `repo`, then stores the record as a delivery.
async fn store(
    state: &RecordsState,
    headers: &HeaderMap,
    event: &str,
    repo: RepoName,
    id: i64,
    body: Bytes,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = crate::otlp::bearer(auth).filter(|t| !t.is_empty());
    if !crate::otlp::token_allowed(&state.tokens, token) {
        // Not an API token: a CI token for this repository.
        let Some(token) = token else {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({ "error": "missing Authorization: Bearer <token> (an API token, a CI upload token or a GitHub Actions OIDC token)" }),
            );
        };
        let allowed = match crate::ci::upload::principal(&state.uploads, token).await {
            Ok(p) => p.allows(repo.as_str()),
            Err(e) => Err(e),
        };
        if let Err(e) = allowed {
            let status = if e.is_unavailable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            return reply(status, json!({ "error": e.to_string() }));
        }
    }
    match state.db.repo_served(repo.as_str()).await {
        Ok(true) => {}
        Ok(false) => {
            return reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": format!("tracelink serves no repository {repo}: no App installation or delivery names it"), "field": "repository" }),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "checking a repository");
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "the query failed" }),
            );
        }
    }
    // The same body posted again is the same delivery; a changed one (a finish, a
    // resolution) is a new one that updates the same deployment or incident.
    let digest = crate::ids::encode_hex(&Sha256::digest(&body)[..16]);
    let row = DeliveryRow {
        delivery_id: format!("{event}:{digest}"),
        event: event.to_string(),
        action: None,
        repo: Some(repo.as_str().to_string()),
        received_ns: crate::time::now_ns(),
        status: "pending",
        error: None,
        payload: body,
    };
    match state.writer.submit_work(Work::Delivery(row)).await {
        Ok(w) if w.inserted == 0 => {
            reply(StatusCode::OK, json!({ "status": "duplicate", "id": id }))
        }
        Ok(_) => {
            state.processor.notify_one();
            reply(
                StatusCode::ACCEPTED,
                json!({ "status": "accepted", "id": id }),
            )
        }
        Err(SubmitError::Overloaded(_)) => {
            let mut r = reply(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "error": "the write queue is full; retry shortly" }),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        Err(e) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e.to_string() }),
        ),
    }
}
