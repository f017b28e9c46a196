//! OTLP/gRPC: the TraceService, MetricsService and LogsService, gzip accepted, behind
//! one admission layer ([`admit`]) that refuses before a message is buffered or decoded.

use axum::body::{Body, Bytes};
use axum::extract::State;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tonic::codegen::tokio_stream::{self, StreamExt};
use tonic::{Request, Response, Status};

use super::budget::BodyBudget;
use super::{Ingest, IngestError, Outcome};
use crate::facts::Signal;

/// The three services; requests reach them admitted and authorised ([`admit`]).
#[derive(Clone)]
pub struct Otlp {
    ingest: Ingest,
}

fn status(e: IngestError) -> Status {
    match e {
        IngestError::Invalid(m) => Status::invalid_argument(m),
        IngestError::TooLarge(m) => Status::resource_exhausted(m),
        IngestError::Overloaded(m) => {
            let details = super::status::RpcStatus {
                code: tonic::Code::ResourceExhausted as i32,
                message: m.clone(),
                details: vec![super::status::retry_info(1)],
            };
            Status::with_details(
                tonic::Code::ResourceExhausted,
                m,
                details.encode_to_vec().into(),
            )
        }
        IngestError::Unavailable(m) => Status::unavailable(m),
    }
}

fn partial(o: &Outcome) -> bool {
    o.rejected > 0 || !o.message.is_empty()
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let o = self
            .ingest
            .traces(request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: partial(&o).then_some(ExportTracePartialSuccess {
                rejected_spans: o.rejected,
                error_message: o.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let o = self
            .ingest
            .metrics(request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: partial(&o).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: o.rejected,
                error_message: o.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let o = self
            .ingest
            .logs(request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial(&o).then_some(ExportLogsPartialSuccess {
                rejected_log_records: o.rejected,
                error_message: o.message,
            }),
        }))
    }
}

/// The three OTLP services as one tonic router, behind [`admit`]; a message may be as
/// large as the budget's body limit.
pub fn router(
    ingest: Ingest,
    tokens: Arc<Vec<String>>,
    budget: BodyBudget,
) -> tonic::service::Routes {
    let max_body = budget.max_body_bytes();
    let svc = Otlp {
        ingest: ingest.clone(),
    };
    let routes = tonic::service::Routes::new(
        TraceServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_body),
    )
    .add_service(
        MetricsServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_body),
    )
    .add_service(
        LogsServiceServer::new(svc)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_body),
    );
    let gate = Gate {
        ingest,
        tokens,
        budget,
    };
    tonic::service::Routes::from(
        routes
            .into_axum_router()
            .route_layer(axum::middleware::from_fn_with_state(gate, admit))
            .layer(axum::middleware::map_response(request_errors)),
    )
}

/// What [`admit`] needs.
#[derive(Clone)]
struct Gate {
    ingest: Ingest,
    /// Bearer tokens accepted (none: no token needed).
    tokens: Arc<Vec<String>>,
    budget: BodyBudget,
}

/// Admission for OTLP/gRPC, in front of tonic: the token is checked and the write queue
/// consulted on the headers alone; then only the message's 5-byte prefix (compressed
/// flag, length) is read and the message's length taken from the [`BodyBudget`] that
/// OTLP/HTTP shares — the gRPC counterpart of a `Content-Length`. A full queue or a
/// taken budget is RESOURCE_EXHAUSTED with RetryInfo at once, before the message is
/// buffered or decoded; the share is held until the request is answered (or dropped).
/// A client stalled before the prefix holds no share, and the body handed on ends with
/// that one message, so the prefix bounds what the request buffers.
async fn admit(
    State(gate): State<Gate>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    let signal = if path.starts_with("/opentelemetry.proto.collector.metrics.") {
        Signal::Metrics
    } else if path.starts_with("/opentelemetry.proto.collector.logs.") {
        Signal::Logs
    } else {
        Signal::Traces
    };
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if !super::token_allowed(&gate.tokens, super::bearer(auth)) {
        gate.ingest.refused(signal);
        return Status::unauthenticated(if auth.is_none() {
            "missing authorization: Bearer <token>"
        } else {
            "the bearer token is not accepted"
        })
        .into_http();
    }
    if let Err(e) = gate.ingest.admit(signal) {
        return status(e).into_http();
    }
    let (parts, body) = req.into_parts();
    let (length, body) = one_message(body).await;
    // A message over the limit takes nothing: tonic refuses it on its prefix, as too
    // large (not retryable).
    let share = if length > gate.budget.max_body_bytes() {
        None
    } else {
        let Some(share) = gate.budget.try_take(length) else {
            gate.ingest.refused(signal);
            return status(BodyBudget::refusal()).into_http();
        };
        Some(share)
    };
    let answer = next
        .run(axum::extract::Request::from_parts(parts, body))
        .await;
    drop(share);
    answer
}

/// Reads a request body as far as its first message's 5-byte prefix and gives back the
/// message's length (0 when there is no prefix: tonic then refuses the request) and the
/// body as received, ending after that one message: a unary call carries one, and a
/// second would be buffered beyond what was taken from the budget.
async fn one_message(body: Body) -> (usize, Body) {
    const PREFIX: usize = 5;
    let mut rest = body.into_data_stream().fuse();
    let mut head = Vec::new();
    let mut prefix = Vec::with_capacity(PREFIX);
    while prefix.len() < PREFIX {
        match rest.next().await {
            Some(Ok(chunk)) => {
                let take = (PREFIX - prefix.len()).min(chunk.len());
                prefix.extend_from_slice(&chunk[..take]);
                head.push(Ok(chunk));
            }
            Some(Err(e)) => {
                head.push(Err(e));
                break;
            }
            None => break,
        }
    }
    let length = match prefix[..] {
        [_, a, b, c, d] => usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX),
        _ => 0,
    };
    let mut left = length.saturating_add(PREFIX);
    let body = tokio_stream::iter(head).chain(rest).map(move |chunk| {
        let chunk: Bytes = chunk?;
        left = left.checked_sub(chunk.len()).ok_or_else(|| {
            Status::invalid_argument("a unary OTLP export request carries one message")
        })?;
        Ok::<_, axum::BoxError>(chunk)
    });
    (length, Body::from_stream(body))
}

/// What tonic answers for a request it could not read, as OTLP clients need it: a body
/// that is not the message is INVALID_ARGUMENT (tonic says INTERNAL, which clients
/// retry), and one over the size limit RESOURCE_EXHAUSTED without RetryInfo — not
/// retryable — (tonic says OUT_OF_RANGE, which OTLP clients retry with the same batch).
async fn request_errors(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    let code = h.get("grpc-status").and_then(|v| v.to_str().ok());
    let message = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let fixed = match code {
        Some("13") if message.starts_with("failed to decode") => Some("3"),
        Some("11") if message.contains("message length too large") => Some("8"),
        _ => None,
    };
    if let Some(f) = fixed {
        h.insert("grpc-status", axum::http::HeaderValue::from_static(f));
    }
    res
}
