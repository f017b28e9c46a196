//! `POST /webhooks/github`: verify, read, store, acknowledge — in that order. The
//! signature is checked over the raw body before anything is parsed; a consumed event is
//! read and validated, stored durably, and only then acknowledged; applying it to the
//! graph happens in the [`processor`](super::processor).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::events::{self, Event};
use super::{plan, signature};
use crate::store::deliveries::DeliveryRow;
use crate::store::writer::{SubmitError, Work};

/// The webhook secrets, shared with the setup flow that adds the new App's.
pub type WebhookSecrets = std::sync::Arc<std::sync::RwLock<Vec<String>>>;

/// What the webhook route needs.
#[derive(Clone)]
pub struct WebhookState {
    pub writer: crate::store::writer::WriterHandle,
    pub telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    /// Every secret a delivery may be signed with (two during a rotation); the App
    /// created on `/setup/app` adds its own while the server runs.
    pub webhook_secrets: WebhookSecrets,
    pub incident_label: std::sync::Arc<str>,
    pub processor: super::processor::Processor,
    /// `--pseudonymize-users`: addresses replaced before the payload is read or stored.
    pub pseudonyms: Option<std::sync::Arc<crate::pseudonym::Pseudonyms>>,
}

/// GitHub caps webhook payloads at 25 MB.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hooks = &state.telemetry.webhooks;
    let verified = match state.webhook_secrets.read() {
        Ok(secrets) => signature::verify(&secrets, header(&headers, "x-hub-signature-256"), &body),
        Err(poisoned) => signature::verify(
            &poisoned.into_inner(),
            header(&headers, "x-hub-signature-256"),
            &body,
        ),
    };
    if let Err(e) = verified {
        hooks.count("unauthorized");
        return reply(StatusCode::UNAUTHORIZED, json!({ "error": e.to_string() }));
    }
    // Verified as GitHub sent it; from here on, without anyone's address.
    let body = match &state.pseudonyms {
        Some(p) => Bytes::from(p.payload(&body)),
        None => body,
    };
    let Some(event) = header(&headers, "x-github-event") else {
        hooks.count("malformed");
        return reply(
            StatusCode::BAD_REQUEST,
            json!({ "error": "missing X-GitHub-Event header" }),
        );
    };
    let delivery_id = match header(&headers, "x-github-delivery") {
        Some(id) if id.len() <= 128 => id.to_string(),
        _ => {
            hooks.count("malformed");
            return reply(
                StatusCode::BAD_REQUEST,
                json!({ "error": "missing or over-long X-GitHub-Delivery header" }),
            );
        }
    };
    if !events::CONSUMED.iter().any(|(e, _)| *e == event) {
        hooks.count("ignored");
        return reply(
            StatusCode::ACCEPTED,
            json!({ "status": "ignored", "reason": format!("event {event:?} is not consumed") }),
        );
    }
    let read = events::envelope(event, &body).and_then(|(action, repo)| {
        if !events::consumed(event, action.as_deref()) {
            return Ok(None);
        }
        let parsed = Event::parse(event, &body)?;
        plan::plan(&parsed, &state.incident_label)?;
        Ok(Some((action, repo)))
    });
    let received_ns = crate::time::now_ns();
    let (row, outcome) = match read {
        Ok(None) => {
            hooks.count("ignored");
            return reply(
                StatusCode::ACCEPTED,
                json!({ "status": "ignored", "reason": format!("action of {event:?} is not consumed") }),
            );
        }
        Ok(Some((action, repo))) => (
            DeliveryRow {
                delivery_id,
                event: event.to_string(),
                action,
                repo,
                received_ns,
                status: "pending",
                error: None,
                payload: body,
            },
            None,
        ),
        Err(e) => {
            let (action, repo) = events::envelope(event, &body).unwrap_or_default();
            let message = e.to_string();
            (
                DeliveryRow {
                    delivery_id,
                    event: event.to_string(),
                    action,
                    repo,
                    received_ns,
                    status: "failed",
                    error: Some(message.clone()),
                    payload: body,
                },
                Some(message),
            )
        }
    };
    let written = state.writer.submit_work(Work::Delivery(row)).await;
    match (written, outcome) {
        (Err(e), _) => {
            hooks.count("unavailable");
            let mut resp = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": e.to_string() }),
            );
            if matches!(e, SubmitError::Overloaded(_)) {
                resp.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(1),
                );
            }
            resp
        }
        (Ok(_), Some(message)) => {
            hooks.count("failed");
            reply(StatusCode::BAD_REQUEST, json!({ "error": message }))
        }
        (Ok(w), None) if w.inserted == 0 => {
            hooks.count("duplicate");
            reply(StatusCode::OK, json!({ "status": "duplicate" }))
        }
        (Ok(_), None) => {
            hooks.count("stored");
            state.processor.wake.notify_one();
            reply(StatusCode::OK, json!({ "status": "stored" }))
        }
    }
}
