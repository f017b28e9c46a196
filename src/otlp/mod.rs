//! OTLP receivers: gRPC ([`grpc`]) and HTTP ([`http`]) share one decode-and-store path
//! ([`Ingest`]) and one bound on body bytes in flight ([`budget`]), so both transports
//! accept, refuse and answer alike.

pub mod budget;
pub mod grpc;
pub mod http;
pub mod status;

use std::io::Read;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::agents;
use crate::facts::Signal;
use crate::store::batch::Batch;
use crate::store::writer::{SubmitError, WriterHandle};
use crate::telemetry::Telemetry;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload is not a valid export request: 400 / INVALID_ARGUMENT.
    #[error("{0}")]
    Invalid(String),
    /// The decompressed body is larger than allowed: 413 / RESOURCE_EXHAUSTED.
    #[error("{0}")]
    TooLarge(String),
    /// The write queue is full: 429 / RESOURCE_EXHAUSTED, with retry information.
    #[error("{0}")]
    Overloaded(String),
    /// Shutting down or storage failed: 503 / UNAVAILABLE, retryable.
    #[error("{0}")]
    Unavailable(String),
}

/// What a stored request reports back (OTLP partial success).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub rejected: i64,
    pub message: String,
}

/// Inflates a gzip body — every member of it: `gzip(a) ‖ gzip(b)` is one valid stream
/// (RFC 1952 §2.2) — refusing one that inflates past `limit` bytes.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| IngestError::Invalid(format!("the gzip body cannot be inflated: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge(format!(
            "the inflated body exceeds the limit of {limit} bytes"
        )));
    }
    Ok(out)
}

/// Decodes an export request from protobuf or OTLP/JSON.
pub fn decode<T>(body: &[u8], encoding: Encoding, what: &str) -> Result<T, IngestError>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => T::decode(body)
            .map_err(|e| IngestError::Invalid(format!("invalid protobuf {what}: {e}"))),
        Encoding::Json => {
            // The spec's shape is an object; serde would also take an array for a struct.
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(IngestError::Invalid(format!(
                    "invalid OTLP/JSON {what}: the body must be one JSON object"
                )));
            }
            serde_json::from_slice(body)
                .map_err(|e| IngestError::Invalid(format!("invalid OTLP/JSON {what}: {e}")))
        }
    }
}

/// The decode-normalise-store path both transports call.
#[derive(Clone)]
pub struct Ingest {
    pub writer: WriterHandle,
    pub telemetry: Arc<Telemetry>,
    /// `--pseudonymize-users`: sessions' users replaced before they are stored.
    pub pseudonyms: Option<Arc<crate::pseudonym::Pseudonyms>>,
}

impl Ingest {
    /// Admission before a request's body is read or decoded: with the write queue full
    /// the answer is "retry later" at once, so an overload costs no decoding.
    pub fn admit(&self, signal: Signal) -> Result<(), IngestError> {
        if self.writer.is_full() {
            self.telemetry.record_refused(signal);
            return Err(IngestError::Overloaded(
                "the write queue is full; retry shortly".into(),
            ));
        }
        Ok(())
    }

    pub async fn traces(&self, req: ExportTraceServiceRequest) -> Result<Outcome, IngestError> {
        let batch = agents::traces(&req);
        drop(req);
        self.store(batch).await
    }

    pub async fn metrics(&self, req: ExportMetricsServiceRequest) -> Result<Outcome, IngestError> {
        let batch = agents::metrics(&req);
        drop(req);
        self.store(batch).await
    }

    pub async fn logs(&self, req: ExportLogsServiceRequest) -> Result<Outcome, IngestError> {
        let batch = agents::logs(&req);
        drop(req);
        self.store(batch).await
    }

    pub fn refused(&self, signal: Signal) {
        self.telemetry.record_refused(signal);
    }

    async fn store(&self, mut batch: Batch) -> Result<Outcome, IngestError> {
        let signal = batch.signal;
        let (accepted, rejected) = (batch.accepted, batch.rejected);
        let mut message = batch.first_error.take().unwrap_or_default();
        if accepted == 0 && rejected > 0 {
            self.telemetry.record_refused(signal);
            return Err(IngestError::Invalid(format!(
                "every record of the request was refused ({rejected}); first: {message}"
            )));
        }
        if batch.unreadable_values > 0 {
            if !message.is_empty() {
                message.push_str("; ");
            }
            let keys: Vec<String> = batch
                .unreadable_keys
                .iter()
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            message.push_str(&format!(
                "{} attribute values could not be read as numbers and were left out (the records were kept): {}",
                batch.unreadable_values,
                keys.join(", ")
            ));
        }
        if let Some(p) = &self.pseudonyms {
            p.batch(&mut batch);
        }
        if !batch.is_empty() {
            self.writer.submit(batch).await.map_err(|e| {
                self.telemetry.record_refused(signal);
                match e {
                    SubmitError::Overloaded(_) => IngestError::Overloaded(e.to_string()),
                    SubmitError::ShuttingDown | SubmitError::Storage(_) => {
                        IngestError::Unavailable(e.to_string())
                    }
                }
            })?;
        }
        self.telemetry.record_request(signal, accepted, rejected);
        Ok(Outcome {
            rejected: i64::try_from(rejected).unwrap_or(i64::MAX),
            message,
        })
    }
}

/// Checks a bearer token against the configured ones in constant time per token.
pub fn token_allowed(tokens: &[String], presented: Option<&str>) -> bool {
    if tokens.is_empty() {
        return true;
    }
    let Some(p) = presented else {
        return false;
    };
    let mut ok = false;
    for t in tokens {
        ok |= constant_time_eq(t.as_bytes(), p.as_bytes());
    }
    ok
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
