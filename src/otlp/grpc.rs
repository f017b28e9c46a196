//! OTLP/gRPC: the TraceService, MetricsService and LogsService, gzip accepted.

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
use tonic::metadata::MetadataMap;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::{Ingest, IngestError, Outcome};
use crate::facts::Signal;

#[derive(Clone)]
pub struct Otlp {
    ingest: Ingest,
    tokens: Arc<Vec<String>>,
}

impl Otlp {
    fn authorize(&self, md: &MetadataMap, signal: Signal) -> Result<(), Status> {
        let auth = md.get("authorization").and_then(|v| v.to_str().ok());
        if super::token_allowed(&self.tokens, super::bearer(auth)) {
            Ok(())
        } else {
            self.ingest.refused(signal);
            Err(Status::unauthenticated(if auth.is_none() {
                "missing authorization: Bearer <token>"
            } else {
                "the bearer token is not accepted"
            }))
        }
    }
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
        self.authorize(request.metadata(), Signal::Traces)?;
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
        self.authorize(request.metadata(), Signal::Metrics)?;
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
        self.authorize(request.metadata(), Signal::Logs)?;
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

/// The three OTLP services as one tonic router.
pub fn router(ingest: Ingest, tokens: Arc<Vec<String>>, max_body: usize) -> tonic::service::Routes {
    // Admission before the message is read or decoded (an interceptor sees only the
    // headers): with the write queue full, RESOURCE_EXHAUSTED with RetryInfo at once.
    let admit = |signal: Signal| {
        let ingest = ingest.clone();
        move |req: Request<()>| match ingest.admit(signal) {
            Ok(()) => Ok(req),
            Err(e) => Err(status(e)),
        }
    };
    let svc = Otlp {
        ingest: ingest.clone(),
        tokens,
    };
    let routes = tonic::service::Routes::new(InterceptedService::new(
        TraceServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_body),
        admit(Signal::Traces),
    ))
    .add_service(InterceptedService::new(
        MetricsServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_body),
        admit(Signal::Metrics),
    ))
    .add_service(InterceptedService::new(
        LogsServiceServer::new(svc)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_body),
        admit(Signal::Logs),
    ));
    tonic::service::Routes::from(
        routes
            .into_axum_router()
            .layer(axum::middleware::map_response(request_errors)),
    )
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
