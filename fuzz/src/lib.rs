//! What each fuzz target feeds its input through: the service's own entry points for
//! untrusted bytes, with cheap invariants asserted on what they return.
//!
//! Shared by the cargo-fuzz targets (`fuzz_targets/`, one per function here) and by the
//! service's test run, which replays the saved corpora (`tests/it/fuzz_corpus.rs` includes
//! this file), so a corpus entry is checked the same way in both. Each function returns
//! whether the input was accepted as a valid document; a panic is a finding.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use tracelink::ci::{self, Format, Report};
use tracelink::github::{events, plan, trailers};
use tracelink::otlp::{self, Encoding};
use tracelink::store::batch::Batch;

/// What a target does with one input: `true` when it was a valid document.
pub type Check = fn(&[u8]) -> bool;

/// Every target: its name (the directory of its corpus) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("otlp_protobuf", otlp_protobuf),
    ("otlp_json", otlp_json),
    ("webhook_event", webhook_event),
    ("commit_trailers", commit_trailers),
    ("ci_lcov", ci_lcov),
    ("ci_cobertura", ci_cobertura),
    ("ci_jacoco", ci_jacoco),
    ("ci_gocover", ci_gocover),
    ("ci_junit", ci_junit),
    ("upload_context", upload_context),
    ("upload_multipart", upload_multipart),
    ("lines_git_ai", lines_git_ai),
    ("lines_agent_trace", lines_agent_trace),
];

/// The repository and workspace uploads are normalised against.
const REPO: &str = "acme/widgets";
const WORKSPACE: &str = "/home/runner/work/widgets/widgets";

/// The boundary of the multipart bodies `upload_multipart` reads.
pub const BOUNDARY: &str = "tracelink-fuzz";

/// Inflated-body limit for gzip inputs, as the OTLP receivers apply one.
const GZIP_LIMIT: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// OTLP: decode (as the gRPC and HTTP receivers do) and normalise into a batch.

/// An OTLP/HTTP protobuf body (gzip when it starts with gzip's magic), read as each of
/// the three export requests.
pub fn otlp_protobuf(data: &[u8]) -> bool {
    let inflated;
    let body = if data.starts_with(&[0x1f, 0x8b]) {
        match otlp::gunzip(data, GZIP_LIMIT) {
            Ok(b) => {
                inflated = b;
                &inflated[..]
            }
            Err(_) => return false,
        }
    } else {
        data
    };
    otlp_signals(body, Encoding::Protobuf)
}

/// An OTLP/HTTP JSON body, read as each of the three export requests.
pub fn otlp_json(data: &[u8]) -> bool {
    otlp_signals(data, Encoding::Json)
}

fn otlp_signals(body: &[u8], encoding: Encoding) -> bool {
    let mut any = false;
    if let Ok(req) = otlp::decode::<ExportTraceServiceRequest>(body, encoding, "traces") {
        round_trips(&req, encoding);
        check_batch(&tracelink::agents::traces(&req));
        any = true;
    }
    if let Ok(req) = otlp::decode::<ExportMetricsServiceRequest>(body, encoding, "metrics") {
        round_trips(&req, encoding);
        check_batch(&tracelink::agents::metrics(&req));
        any = true;
    }
    if let Ok(req) = otlp::decode::<ExportLogsServiceRequest>(body, encoding, "logs") {
        round_trips(&req, encoding);
        check_batch(&tracelink::agents::logs(&req));
        any = true;
    }
    any
}

/// A decoded request encodes to bytes that decode to the same request (compared by
/// their encodings: a NaN is not equal to itself).
fn round_trips<T>(req: &T, encoding: Encoding)
where
    T: Message + Default + serde::Serialize + serde::de::DeserializeOwned,
{
    let bytes = req.encode_to_vec();
    let again = T::decode(&bytes[..]).expect("an encoded request decodes");
    assert_eq!(again.encode_to_vec(), bytes, "protobuf round trip");
    if encoding == Encoding::Json {
        let json = serde_json::to_vec(req).expect("a decoded request serialises");
        let again: T = otlp::decode(&json, Encoding::Json, "request")
            .unwrap_or_else(|e| panic!("OTLP/JSON that tracelink wrote is refused: {e}"));
        assert_eq!(again.encode_to_vec(), bytes, "OTLP/JSON round trip");
    }
}

/// A batch's rows point at its sessions, refusals carry a reason, and the stored
/// attributes are JSON.
fn check_batch(b: &Batch) {
    let sessions = b.sessions.len();
    let in_range = |s: Option<usize>| s.is_none_or(|i| i < sessions);
    assert!(b.spans.iter().all(|r| in_range(r.session)));
    assert!(b.logs.iter().all(|r| in_range(r.session)));
    assert!(b.points.iter().all(|r| in_range(r.session)));
    assert_eq!(b.rejected > 0, b.first_error.is_some());
    let attrs = b
        .spans
        .iter()
        .map(|r| &r.attrs)
        .chain(b.logs.iter().map(|r| &r.attrs))
        .chain(b.points.iter().map(|r| &r.attrs));
    for a in attrs.flatten() {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(a) {
            panic!("stored attributes are not JSON ({e}): {a}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// GitHub: webhook payloads and commit trailers.

/// `<event>\n<payload>`: read as the webhook route does (envelope, then the event when
/// it is consumed), then planned into upserts. The two tracelink events of the
/// deployments and incidents API are read whatever their action.
pub fn webhook_event(data: &[u8]) -> bool {
    let Some(nl) = data.iter().position(|b| *b == b'\n') else {
        return false;
    };
    let Ok(event) = std::str::from_utf8(&data[..nl]) else {
        return false;
    };
    let body = &data[nl + 1..];
    let external = event.starts_with("tracelink.");
    if !external {
        let Ok((action, _repo)) = events::envelope(event, body) else {
            return false;
        };
        if !events::consumed(event, action.as_deref()) {
            return false;
        }
    }
    match events::Event::parse(event, body) {
        Ok(e) => plan::plan(&e, "incident").is_ok(),
        Err(_) => false,
    }
}

/// A commit message: its trailers, what they attribute, and the trailers written back as
/// a block read the same.
pub fn commit_trailers(data: &[u8]) -> bool {
    let Ok(message) = std::str::from_utf8(data) else {
        return false;
    };
    let parsed = trailers::parse(message);
    let attribution = trailers::attribution(&parsed);
    let mut agents = attribution.agents.clone();
    agents.dedup();
    assert_eq!(agents, attribution.agents, "agents are named once");
    for t in &parsed {
        assert!(
            !t.key.is_empty()
                && t.key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
        assert!(
            !t.value.contains('\n') && t.value.trim() == t.value,
            "{t:?}"
        );
    }
    if parsed.is_empty() {
        return false;
    }
    let block: Vec<String> = parsed
        .iter()
        .map(|t| format!("{}: {}", t.key, t.value))
        .collect();
    let again = trailers::parse(&format!("Subject\n\n{}\n", block.join("\n")));
    assert_eq!(again, parsed, "trailers written back as a block");
    true
}

// ---------------------------------------------------------------------------------------
// CI reports.

pub fn ci_lcov(data: &[u8]) -> bool {
    ci_report(data, Format::Lcov)
}

pub fn ci_cobertura(data: &[u8]) -> bool {
    ci_report(data, Format::Cobertura)
}

pub fn ci_jacoco(data: &[u8]) -> bool {
    ci_report(data, Format::Jacoco)
}

pub fn ci_gocover(data: &[u8]) -> bool {
    ci_report(data, Format::GoCover)
}

pub fn ci_junit(data: &[u8]) -> bool {
    ci_report(data, Format::Junit)
}

pub fn lines_git_ai(data: &[u8]) -> bool {
    ci_report(data, Format::GitAi)
}

pub fn lines_agent_trace(data: &[u8]) -> bool {
    ci_report(data, Format::AgentTrace)
}

/// A report read as `format` (and its format detected, as an upload does first), then
/// its paths normalised to the repository.
fn ci_report(data: &[u8], format: Format) -> bool {
    let _ = ci::detect(&data[..data.len().min(8192)]);
    match ci::parse(data, format) {
        Ok(report) => {
            check_report(report);
            true
        }
        Err(e) => {
            assert_eq!(e.format, format);
            assert!(!e.message.is_empty());
            false
        }
    }
}

fn check_report(report: Report) {
    match report {
        Report::Coverage(c) => {
            let (covered, coverable) = c.totals();
            assert!(covered <= coverable);
            for f in c.files.values() {
                assert!(f.covered.difference(&f.coverable).is_empty());
                for w in f.coverable.ranges().windows(2) {
                    assert!(w[0].1.saturating_add(1) < w[1].0, "ranges sorted, apart");
                }
            }
            let (n, _unmatched) = c.normalise_paths(REPO, Some(WORKSPACE));
            assert!(
                n.totals().1 <= coverable,
                "normalising merges, never adds lines"
            );
        }
        Report::Tests(mut t) => {
            for case in &t {
                let m = case.message.as_deref().unwrap_or("");
                assert!(
                    m.len() <= ci::junit::MESSAGE_MAX + "…".len(),
                    "message of {} bytes",
                    m.len()
                );
                assert!(case.duration_s.is_none_or(|d| d.is_finite()));
            }
            let _ = ci::normalise_test_files(&mut t, REPO, Some(WORKSPACE));
        }
        Report::Lines(records) => {
            let mut lines = 0u64;
            for r in &records {
                assert!(
                    matches!(r.commit.len(), 40 | 64)
                        && r.commit
                            .bytes()
                            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "commit {:?}",
                    r.commit
                );
                assert!(!r.ranges.is_empty());
                for w in r.ranges.windows(2) {
                    assert!(
                        w[0].1.saturating_add(1) < w[1].0,
                        "ranges sorted, apart: {:?}",
                        r.ranges
                    );
                }
                for &(a, b) in &r.ranges {
                    assert!(1 <= a && a <= b && b <= ci::lines::MAX_LINE);
                    lines += u64::from(b - a) + 1;
                }
            }
            assert!(lines <= ci::lines::MAX_LINES);
            let _ = ci::lines::normalise_paths(records, REPO, Some(WORKSPACE));
        }
    }
}

// ---------------------------------------------------------------------------------------
// CI uploads.

/// The `context` part of an upload.
pub fn upload_context(data: &[u8]) -> bool {
    ci::context::read_context(data).is_ok()
}

/// A whole `multipart/form-data` upload body (boundary [`BOUNDARY`]): split into parts by
/// the same extractor and loop as the upload route, then its context and files read as
/// the route reads them — everything but authentication and storage.
pub fn upload_multipart(data: &[u8]) -> bool {
    use axum::extract::FromRequest;
    use axum::extract::multipart::Multipart;

    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
    }
    let request = axum::http::Request::builder()
        .method("POST")
        .header(
            axum::http::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(axum::body::Body::from(data.to_vec()))
        .expect("a request");
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
                return false;
            };
            // Part by part, as the route reads them: each file parsed before the next.
            let mut parts = ci::upload::PartReader::default();
            let mut parsed = ci::upload::ParsedFiles::new(ci::upload::MAX_UPLOAD_ENTRIES);
            let mut run = None;
            loop {
                match parts.next(&mut multipart).await {
                    Ok(None) => break,
                    Ok(Some(ci::upload::Part::Context(_))) if run.is_some() => return false,
                    Ok(Some(ci::upload::Part::Context(bytes))) => {
                        match ci::context::read_context(&bytes) {
                            Ok(r) => run = Some(r),
                            Err(_) => return false,
                        }
                    }
                    Ok(Some(ci::upload::Part::File { name, bytes })) => {
                        let pushed = ci::upload::parse_file(name, &bytes, parsed.room())
                            .and_then(|f| parsed.push(f));
                        if pushed.is_err() {
                            return false;
                        }
                        assert!(parsed.entries() <= ci::upload::MAX_UPLOAD_ENTRIES);
                    }
                    Err(_) => return false,
                }
            }
            if run.is_none() || parsed.is_empty() {
                return false;
            }
            let _ = parsed.normalise(REPO, Some(WORKSPACE));
            true
        })
    })
}
