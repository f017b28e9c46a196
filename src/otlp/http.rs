//! OTLP/HTTP: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with `application/x-protobuf`
//! or `application/json`, optionally gzip-compressed. Responses use the request's
//! encoding; errors carry a `google.rpc.Status` naming the problem.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::status::RpcStatus;
use super::{Encoding, IngestError, Outcome, decode, gunzip};
use crate::facts::Signal;

/// What the OTLP/HTTP routes need.
#[derive(Clone)]
pub struct HttpState {
    pub ingest: super::Ingest,
    /// Bearer tokens accepted (none: no token needed).
    pub tokens: std::sync::Arc<Vec<String>>,
    pub max_body_bytes: usize,
    /// Body bytes all OTLP requests being read and decoded may hold together (shared
    /// with gRPC): a request takes its `Content-Length` (else the body limit) or waits
    /// not at all — 429.
    pub in_flight: super::budget::BodyBudget,
}

/// Seconds a client is asked to wait when the write queue is full.
const RETRY_AFTER_SECS: i64 = 1;

/// An OTLP/HTTP error response, in the request's encoding.
struct OtlpError {
    status: StatusCode,
    encoding: Encoding,
    message: String,
}

impl IntoResponse for OtlpError {
    fn into_response(self) -> Response {
        // gRPC codes for the body, as OTLP/HTTP's google.rpc.Status carries them.
        let code = match self.status {
            StatusCode::BAD_REQUEST => 3,
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::PAYLOAD_TOO_LARGE => 8,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
            _ => 14,
        };
        let mut status = RpcStatus {
            code,
            message: self.message,
            details: Vec::new(),
        };
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            status
                .details
                .push(super::status::retry_info(RETRY_AFTER_SECS));
        }
        let mut resp = match self.encoding {
            Encoding::Protobuf => (
                self.status,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                status.encode_to_vec(),
            )
                .into_response(),
            Encoding::Json => (
                self.status,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::json!({"code": status.code, "message": status.message}).to_string(),
            )
                .into_response(),
        };
        if self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::SERVICE_UNAVAILABLE
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl OtlpError {
    fn from_ingest(e: IngestError, encoding: Encoding) -> Self {
        let status = match &e {
            IngestError::Invalid(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self {
            status,
            encoding,
            message: e.to_string(),
        }
    }
}

/// The encoding to answer a request in before its content type was checked: JSON for a
/// JSON request, protobuf otherwise.
fn answer_encoding(headers: &HeaderMap) -> Encoding {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if json {
        Encoding::Json
    } else {
        Encoding::Protobuf
    }
}

/// Checks auth, content type and encoding, and returns the raw (inflated) payload. A
/// body that could not be read (over the size limit) is answered as every OTLP error:
/// a `google.rpc.Status` in the request's encoding.
fn accept(
    state: &HttpState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Encoding, Vec<u8>), OtlpError> {
    let body = body.map_err(|r| {
        let status = r.status();
        OtlpError {
            status,
            encoding: answer_encoding(headers),
            message: if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the request body exceeds the limit of {} bytes (--max-body-bytes); send smaller batches",
                    state.max_body_bytes
                )
            } else {
                format!("the request body could not be read: {}", r.body_text())
            },
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    let encoding = match media.to_ascii_lowercase().as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            return Err(OtlpError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding: Encoding::Json,
                message: format!(
                    "unsupported content type {content_type:?}: send application/x-protobuf or application/json"
                ),
            });
        }
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !super::token_allowed(&state.tokens, super::bearer(auth)) {
        return Err(OtlpError {
            status: StatusCode::UNAUTHORIZED,
            encoding,
            message: if auth.is_none() {
                "missing Authorization: Bearer <token>".into()
            } else {
                "the bearer token is not accepted".into()
            },
        });
    }
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let payload = match content_encoding.as_str() {
        "gzip" => {
            gunzip(&body, state.max_body_bytes).map_err(|e| OtlpError::from_ingest(e, encoding))?
        }
        "identity" | "" => body.to_vec(),
        other => {
            return Err(OtlpError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                message: format!("unsupported content encoding {other:?}: send gzip or none"),
            });
        }
    };
    Ok((encoding, payload))
}

fn respond<T: Message + serde::Serialize>(encoding: Encoding, msg: &T) -> Response {
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            msg.encode_to_vec(),
        )
            .into_response(),
        // A full success is `{}`, not a null partial_success.
        Encoding::Json if msg.encoded_len() == 0 => {
            ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
        }
        Encoding::Json => match serde_json::to_vec(msg) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
    }
}

fn partial(o: &Outcome) -> bool {
    o.rejected > 0 || !o.message.is_empty()
}

pub async fn traces(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (encoding, payload) = accept(&state, &headers, body)?;
        let req: ExportTraceServiceRequest =
            decode(&payload, encoding, "ExportTraceServiceRequest")
                .map_err(|e| OtlpError::from_ingest(e, encoding))?;
        drop(payload);
        let o = state
            .ingest
            .traces(req)
            .await
            .map_err(|e| OtlpError::from_ingest(e, encoding))?;
        let resp = ExportTraceServiceResponse {
            partial_success: partial(&o).then_some(ExportTracePartialSuccess {
                rejected_spans: o.rejected,
                error_message: o.message,
            }),
        };
        Ok::<_, OtlpError>(respond(encoding, &resp))
    };
    run.await
        .unwrap_or_else(|e| refuse(&state, Signal::Traces, e))
}

pub async fn metrics(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (encoding, payload) = accept(&state, &headers, body)?;
        let req: ExportMetricsServiceRequest =
            decode(&payload, encoding, "ExportMetricsServiceRequest")
                .map_err(|e| OtlpError::from_ingest(e, encoding))?;
        drop(payload);
        let o = state
            .ingest
            .metrics(req)
            .await
            .map_err(|e| OtlpError::from_ingest(e, encoding))?;
        let resp = ExportMetricsServiceResponse {
            partial_success: partial(&o).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: o.rejected,
                error_message: o.message,
            }),
        };
        Ok::<_, OtlpError>(respond(encoding, &resp))
    };
    run.await
        .unwrap_or_else(|e| refuse(&state, Signal::Metrics, e))
}

pub async fn logs(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (encoding, payload) = accept(&state, &headers, body)?;
        let req: ExportLogsServiceRequest = decode(&payload, encoding, "ExportLogsServiceRequest")
            .map_err(|e| OtlpError::from_ingest(e, encoding))?;
        drop(payload);
        let o = state
            .ingest
            .logs(req)
            .await
            .map_err(|e| OtlpError::from_ingest(e, encoding))?;
        let resp = ExportLogsServiceResponse {
            partial_success: partial(&o).then_some(ExportLogsPartialSuccess {
                rejected_log_records: o.rejected,
                error_message: o.message,
            }),
        };
        Ok::<_, OtlpError>(respond(encoding, &resp))
    };
    run.await
        .unwrap_or_else(|e| refuse(&state, Signal::Logs, e))
}

fn refuse(state: &HttpState, signal: Signal, e: OtlpError) -> Response {
    // Refusals after decoding were already counted by the ingest path.
    if matches!(
        e.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNAUTHORIZED
            | StatusCode::PAYLOAD_TOO_LARGE
    ) || (e.status == StatusCode::BAD_REQUEST && !e.message.starts_with("every record"))
    {
        state.ingest.refused(signal);
    }
    tracing::debug!(signal = signal.as_str(), status = %e.status, message = %e.message, "OTLP request refused");
    e.into_response()
}

/// The largest declared body a refusal reads (and drops) before answering.
const REFUSAL_DRAIN_BYTES: usize = 256 * 1024;

/// Admission control for OTLP/HTTP, before the body is read: with the write queue full,
/// or the body bytes in flight at their bound ([`HttpState::in_flight`]), 429 with
/// `Retry-After` at once, in the request's encoding — an overload costs no decoding and
/// no reading beyond a small body ([`REFUSAL_DRAIN_BYTES`]), and memory for bodies
/// stays bounded whatever the number of clients.
pub async fn admit(
    State(state): State<HttpState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let signal = match req.uri().path() {
        "/v1/metrics" => Signal::Metrics,
        "/v1/logs" => Signal::Logs,
        _ => Signal::Traces,
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(state.max_body_bytes);
    let admitted = match state.in_flight.try_take(declared) {
        Some(share) => state.ingest.admit(signal).map(|()| share),
        None => {
            state.ingest.refused(signal);
            Err(super::budget::BodyBudget::refusal())
        }
    };
    let share = match admitted {
        Ok(p) => p,
        Err(e) => {
            let encoding = answer_encoding(req.headers());
            // A small body is read and dropped first: a client still sending it then
            // reads the 429 and its Retry-After, not a reset connection. A large or
            // unsized one is not read (an overload costs no reading).
            if declared <= REFUSAL_DRAIN_BYTES {
                let _ = axum::body::to_bytes(req.into_body(), REFUSAL_DRAIN_BYTES).await;
            }
            return OtlpError::from_ingest(e, encoding).into_response();
        }
    };
    // The body's share of the budget is held until it is read, decoded and stored.
    let answer = next.run(req).await;
    drop(share);
    answer
}
