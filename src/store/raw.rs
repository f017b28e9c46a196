//! Raw telemetry as kept for `--retain-raw`: one compressed record per export request.
//!
//! A request's spans, log records and metric points are kept as one row of
//! `raw_records`: the minimised fields (never prompt text) encoded as the protobuf message
//! `tracelink.raw.v1.RawRecord` (`proto/tracelink/raw/v1/raw.proto`) and deflated. Beside
//! it, the digest of its content recognises a re-sent request whole (one index entry per
//! request), and narrow key rows for the records that carry facts — `spans (record_id,
//! trace_id, span_id)` and `log_events (record_id, digest)` of spans and log records with
//! tokens, cost or counters, `metric_points (record_id, series, time_ns)` of every point
//! — make those count once even when an exporter re-batches them. `record_sessions`
//! finds a session's records. Retention drops a record with its keys
//! ([`super::retention`]).
//!
//! The record is encoded straight from the batch's borrowed rows (no per-field copies)
//! and compressed by the request's own task, before the writer sees it; the writer only
//! inserts one blob and the keys. Records carried over from the wide tables of earlier
//! versions (migration 0015) are JSON and read by the same [`open`].

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use sha2::{Digest, Sha256};

use super::batch::{Batch, LogRow, PointRow, SpanRow};

/// The generated `tracelink.raw.v1` messages, used to read records back.
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tracelink.raw.v1.rs"));
}

/// `raw_records.format` of records migration 0015 carried over: a JSON object.
pub const FORMAT_JSON: i64 = 0;
/// `raw_records.format` of records this version writes: deflated `RawRecord` protobuf.
pub const FORMAT_PROTO_DEFLATE: i64 = 1;

/// A record larger than this once inflated is refused as corrupt (a request body is at
/// most 16 MiB, and its minimised record is smaller).
const MAX_INFLATED: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("raw record {0}: unknown format {1}")]
    Format(i64, i64),
    #[error("raw record {0}: {1}")]
    Corrupt(i64, String),
}

/// A batch's record, ready to store.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The deflated `RawRecord`.
    pub body: Vec<u8>,
    /// SHA-256 prefix of the signal and the record's content before compression: the
    /// same request sent again (an exporter's retry, over any transport or encoding)
    /// has the same digest.
    pub digest: [u8; 16],
}

/// The batch's record, encoded and compressed.
pub fn seal(b: &Batch) -> Sealed {
    let mut plain = Vec::with_capacity(64 + 96 * (b.spans.len() + b.logs.len() + b.points.len()));
    encode(b, &mut plain);
    let mut h = Sha256::new();
    h.update(b.signal.as_str().as_bytes());
    h.update([0]);
    h.update(&plain);
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&h.finalize()[..16]);
    let mut z = DeflateEncoder::new(
        Vec::with_capacity(plain.len() / 3 + 64),
        Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = z.write_all(&plain);
    Sealed {
        body: z.finish().unwrap_or_default(),
        digest,
    }
}

/// Reads a stored record back.
pub fn open(id: i64, format: i64, body: &[u8]) -> Result<pb::RawRecord, RawError> {
    match format {
        FORMAT_PROTO_DEFLATE => {
            let mut plain = Vec::new();
            DeflateDecoder::new(body)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut plain)
                .map_err(|e| RawError::Corrupt(id, format!("inflating: {e}")))?;
            if plain.len() as u64 > MAX_INFLATED {
                return Err(RawError::Corrupt(id, "larger than 64 MiB inflated".into()));
            }
            pb::RawRecord::decode(&plain[..]).map_err(|e| RawError::Corrupt(id, e.to_string()))
        }
        FORMAT_JSON => legacy::read(body).map_err(|e| RawError::Corrupt(id, e)),
        other => Err(RawError::Format(id, other)),
    }
}

/// A `raw_records` row as read back (`SELECT id, format, body …`).
#[derive(sqlx::FromRow)]
pub(super) struct Stored {
    id: i64,
    format: i64,
    body: Vec<u8>,
}

impl Stored {
    /// The record, or a storage error naming it when it cannot be read.
    pub(super) fn open(&self) -> Result<pb::RawRecord, sqlx::Error> {
        open(self.id, self.format, &self.body).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
}

impl pb::RawRecord {
    /// The session key a row names (rows count sessions from 1; 0 is none).
    pub fn session(&self, n: u32) -> Option<&str> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        self.sessions.get(i).map(String::as_str)
    }
}

/// Encodes `RawRecord` from the batch's rows, field by field, exactly as the generated
/// type would (proto3: zero values are left out).
pub(crate) fn encode(b: &Batch, out: &mut Vec<u8>) {
    for s in &b.sessions {
        put_bytes(1, s.key.as_str().as_bytes(), out);
    }
    let mut row = Vec::with_capacity(256);
    for s in &b.spans {
        row.clear();
        span(s, &mut row);
        put_message(2, &row, out);
    }
    for l in &b.logs {
        row.clear();
        log(l, &mut row);
        put_message(3, &row, out);
    }
    for p in &b.points {
        row.clear();
        point(p, &mut row);
        put_message(4, &row, out);
    }
}

fn session_ref(i: Option<usize>) -> u64 {
    i.map_or(0, |i| i as u64 + 1)
}

fn span(s: &SpanRow, out: &mut Vec<u8>) {
    put_bytes(1, s.trace_id.as_bytes(), out);
    put_bytes(2, s.span_id.as_bytes(), out);
    if let Some(p) = &s.parent_id {
        put_bytes(3, p.as_bytes(), out);
    }
    put_varint(4, session_ref(s.session), out);
    put_bytes(5, s.name.as_bytes(), out);
    put_varint(6, i64::from(s.kind) as u64, out);
    put_varint(7, s.start_ns as u64, out);
    put_varint(8, s.end_ns as u64, out);
    put_varint(9, i64::from(s.status) as u64, out);
    put_bytes(10, s.attrs.as_deref().unwrap_or("").as_bytes(), out);
}

fn log(l: &LogRow, out: &mut Vec<u8>) {
    put_bytes(1, &l.digest, out);
    put_varint(2, session_ref(l.session), out);
    put_varint(3, l.time_ns as u64, out);
    put_bytes(4, l.event.as_bytes(), out);
    if let Some(t) = &l.trace_id {
        put_bytes(5, t.as_bytes(), out);
    }
    if let Some(s) = &l.span_id {
        put_bytes(6, s.as_bytes(), out);
    }
    put_bytes(7, l.attrs.as_deref().unwrap_or("").as_bytes(), out);
}

fn point(p: &PointRow, out: &mut Vec<u8>) {
    put_bytes(1, &p.series, out);
    put_varint(2, p.start_ns as u64, out);
    put_varint(3, p.time_ns as u64, out);
    put_varint(4, session_ref(p.session), out);
    put_bytes(5, p.metric.as_bytes(), out);
    if p.value.to_bits() != 0 {
        encode_key(6, WireType::SixtyFourBit, out);
        out.extend_from_slice(&p.value.to_le_bytes());
    }
    if let Some(c) = p.count {
        // `optional`: present even when zero.
        encode_key(7, WireType::Varint, out);
        encode_varint(c as u64, out);
    }
    put_varint(8, u64::from(p.cumulative), out);
    put_bytes(9, p.attrs.as_deref().unwrap_or("").as_bytes(), out);
}

fn put_varint(tag: u32, v: u64, out: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, out);
        encode_varint(v, out);
    }
}

fn put_bytes(tag: u32, v: &[u8], out: &mut Vec<u8>) {
    if !v.is_empty() {
        put_message(tag, v, out);
    }
}

fn put_message(tag: u32, v: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

/// Records migration 0015 carried over from the wide tables: `{"spans": [[trace hex, span
/// hex, parent hex, session key, name, kind, start, end, status, attrs], …], "logs":
/// [[digest hex, session key, time, event, trace hex, span hex, attrs], …], "points":
/// [[series hex, session key, time, metric, increment, count, attrs], …]}`. Those points
/// hold the increment earlier versions stored, not the running total.
mod legacy {
    use serde::Deserialize;
    use serde_json::Value;

    use super::pb;

    #[derive(Deserialize)]
    struct Legacy {
        #[serde(default)]
        spans: Vec<Vec<Value>>,
        #[serde(default)]
        logs: Vec<Vec<Value>>,
        #[serde(default)]
        points: Vec<Vec<Value>>,
    }

    pub(super) fn read(body: &[u8]) -> Result<pb::RawRecord, String> {
        let l: Legacy = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let mut r = pb::RawRecord::default();
        for row in &l.spans {
            r.spans.push(pb::Span {
                trace_id: hex(row, 0)?,
                span_id: hex(row, 1)?,
                parent_id: hex(row, 2)?,
                session: session(&mut r.sessions, row, 3),
                name: text(row, 4),
                kind: int(row, 5) as i32,
                start_ns: int(row, 6),
                end_ns: int(row, 7),
                status: int(row, 8) as i32,
                attrs: text(row, 9),
            });
        }
        for row in &l.logs {
            r.logs.push(pb::LogEvent {
                digest: hex(row, 0)?,
                session: session(&mut r.sessions, row, 1),
                time_ns: int(row, 2),
                event: text(row, 3),
                trace_id: hex(row, 4)?,
                span_id: hex(row, 5)?,
                attrs: text(row, 6),
            });
        }
        for row in &l.points {
            r.points.push(pb::Point {
                series: hex(row, 0)?,
                start_ns: 0,
                session: session(&mut r.sessions, row, 1),
                time_ns: int(row, 2),
                metric: text(row, 3),
                value: row.get(4).and_then(Value::as_f64).unwrap_or(0.0),
                count: row.get(5).and_then(Value::as_i64),
                cumulative: false,
                attrs: text(row, 6),
            });
        }
        Ok(r)
    }

    fn text(row: &[Value], i: usize) -> String {
        row.get(i).and_then(Value::as_str).unwrap_or("").to_owned()
    }

    fn int(row: &[Value], i: usize) -> i64 {
        row.get(i).and_then(Value::as_i64).unwrap_or(0)
    }

    fn session(sessions: &mut Vec<String>, row: &[Value], i: usize) -> u32 {
        let Some(key) = row.get(i).and_then(Value::as_str) else {
            return 0;
        };
        let at = match sessions.iter().position(|s| s == key) {
            Some(at) => at,
            None => {
                sessions.push(key.to_owned());
                sessions.len() - 1
            }
        };
        u32::try_from(at + 1).unwrap_or(0)
    }

    /// SQLite's `hex()`: upper-case pairs; an empty string for NULL.
    fn hex(row: &[Value], i: usize) -> Result<Vec<u8>, String> {
        let s = row.get(i).and_then(Value::as_str).unwrap_or("");
        if !s.len().is_multiple_of(2) {
            return Err(format!("column {i}: odd-length hex {s:?}"));
        }
        (0..s.len())
            .step_by(2)
            .map(|at| {
                s.get(at..at + 2)
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| format!("column {i}: not hex: {s:?}"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Signal;
    use crate::ids::{SessionId, SpanId, TraceId};
    use crate::store::batch::SessionInfo;

    fn batch() -> Batch {
        let mut b = Batch::new(Signal::Traces);
        let key = SessionId::parse("sess-1").unwrap();
        b.sessions.push(SessionInfo::new(key));
        let trace = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        b.spans.push(SpanRow {
            trace_id: trace,
            span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
            parent_id: Some(SpanId::from_hex("00f067aa0ba902b7").unwrap()),
            session: Some(0),
            name: "invoke_agent".into(),
            kind: -3,
            start_ns: 1_700_000_000_000_000_000,
            end_ns: -1,
            status: 2,
            attrs: Some(r#"{"gen_ai.request.model":"claude-sonnet-4-5"}"#.into()),
            additive: None,
        });
        b.spans.push(SpanRow {
            trace_id: trace,
            span_id: SpanId::from_hex("0000000000000001").unwrap(),
            parent_id: None,
            session: None,
            name: String::new(),
            kind: 0,
            start_ns: 0,
            end_ns: 0,
            status: 0,
            attrs: None,
            additive: None,
        });
        b.logs.push(LogRow {
            digest: [7; 16],
            session: Some(0),
            time_ns: 5,
            event: "claude_code.tool_result".into(),
            trace_id: None,
            span_id: None,
            attrs: None,
            additive: None,
        });
        b.points.push(PointRow {
            series: [9; 16],
            start_ns: 1,
            time_ns: 2,
            session: None,
            metric: "claude_code.cost.usage".into(),
            value: 0.25,
            count: Some(0),
            cumulative: true,
            attrs: None,
            fact: None,
        });
        b
    }

    /// The hand-written encoder and the generated decoder agree on every field,
    /// negative and zero values and absent options included.
    #[test]
    fn a_sealed_record_opens_to_the_batch_rows() {
        let b = batch();
        let sealed = seal(&b);
        let r = open(1, FORMAT_PROTO_DEFLATE, &sealed.body).unwrap();
        assert_eq!(
            sealed.digest,
            seal(&batch()).digest,
            "the same content, the same digest"
        );
        assert_eq!(r.sessions, ["sess-1"]);
        assert_eq!(r.spans.len(), 2);
        let s = &r.spans[0];
        assert_eq!(s.trace_id, b.spans[0].trace_id.as_bytes());
        assert_eq!(s.span_id, b.spans[0].span_id.as_bytes());
        assert_eq!(s.parent_id, hexbytes("00f067aa0ba902b7"));
        assert_eq!(r.session(s.session), Some("sess-1"));
        assert_eq!(
            (s.name.as_str(), s.kind, s.start_ns, s.end_ns, s.status),
            ("invoke_agent", -3, 1_700_000_000_000_000_000, -1, 2)
        );
        assert!(s.attrs.contains("claude-sonnet-4-5"));
        let bare = &r.spans[1];
        assert_eq!((bare.session, bare.parent_id.len()), (0, 0));
        assert_eq!(r.session(bare.session), None);
        assert_eq!(r.logs[0].event, "claude_code.tool_result");
        assert_eq!(r.logs[0].digest, [7; 16]);
        assert_eq!(r.session(r.logs[0].session), Some("sess-1"));
        let p = &r.points[0];
        assert_eq!((p.value, p.count, p.cumulative), (0.25, Some(0), true));
        // Byte for byte what the generated type encodes.
        let mut plain = Vec::new();
        encode(&b, &mut plain);
        assert_eq!(plain, r.encode_to_vec());
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_it() {
        let mut body = seal(&batch()).body;
        body.truncate(body.len() / 2);
        let e = open(42, FORMAT_PROTO_DEFLATE, &body)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("raw record 42:"), "{e}");
        let e = open(43, 9, b"").unwrap_err().to_string();
        assert_eq!(e, "raw record 43: unknown format 9");
        assert!(open(44, FORMAT_JSON, b"[1]").is_err());
    }

    fn hexbytes(s: &str) -> Vec<u8> {
        SpanId::from_hex(s).unwrap().as_bytes().to_vec()
    }

    /// Migration 0015 carries the wide rows of earlier versions into records: every key
    /// is kept (a re-sent record is still a duplicate), each record opens, and a
    /// session's events read the same.
    #[tokio::test]
    async fn wide_rows_are_carried_into_records() {
        use sqlx::{ConnectOptions, Connection};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = crate::store::options(&path).connect().await.unwrap();
        crate::store::MIGRATOR.run_to(14, &mut conn).await.unwrap();
        for sql in [
            "INSERT INTO sessions (id, session_key, created_ns) VALUES (1, 'sess-1', 1)",
            "INSERT INTO spans (trace_id, span_id, parent_id, session_id, name, kind, start_ns, end_ns, status, attrs, received_ns) \
             VALUES (x'0af7651916cd43dd8448eb211c80319c', x'b7ad6b7169203331', NULL, 1, 'invoke_agent', 1, 10, 20, 0, '{\"a\":1}', 100), \
                    (x'ff00000000000000000000000000000a', x'0000000000000001', x'00f067aa0ba902b7', NULL, 'GET', 2, 0, 0, 1, NULL, 100)",
            "INSERT INTO log_events (digest, session_id, time_ns, event, trace_id, span_id, attrs, received_ns) \
             VALUES (x'07070707070707070707070707070707', 1, 7, 'claude_code.api_request', NULL, NULL, NULL, 100), \
                    (x'08080808080808080808080808080808', 1, 3, 'claude_code.user_prompt', NULL, NULL, NULL, 200)",
            "INSERT INTO metric_points (series, time_ns, session_id, metric, value, count, attrs, received_ns) \
             VALUES (x'09090909090909090909090909090909', 5, 1, 'claude_code.cost.usage', 0.5, NULL, NULL, 100)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        crate::store::MIGRATOR.run(&mut conn).await.unwrap();

        let keys: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM log_events), \
             (SELECT count(*) FROM metric_points)",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(keys, [(2, 2, 1)]);
        let records: Vec<(i64, String, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, signal, format, rows, body FROM raw_records ORDER BY signal, received_ns, id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        // Two spans in two parts (first trace byte), two log records received apart.
        let shape: Vec<(&str, i64)> = records.iter().map(|r| (r.1.as_str(), r.3)).collect();
        assert_eq!(
            shape,
            [
                ("logs", 1),
                ("logs", 1),
                ("metrics", 1),
                ("traces", 1),
                ("traces", 1)
            ]
        );
        let mut spans = Vec::new();
        for (id, _, format, _, body) in &records {
            assert_eq!(*format, FORMAT_JSON);
            let r = open(*id, *format, body).unwrap();
            for s in &r.spans {
                spans.push((
                    s.name.clone(),
                    r.session(s.session).map(str::to_owned),
                    s.parent_id.clone(),
                    s.attrs.clone(),
                ));
            }
            for p in &r.points {
                assert_eq!(
                    (p.value, p.count, r.session(p.session)),
                    (0.5, None, Some("sess-1"))
                );
            }
        }
        spans.sort();
        assert_eq!(
            spans,
            [
                (
                    "GET".to_string(),
                    None,
                    hexbytes("00f067aa0ba902b7"),
                    String::new()
                ),
                (
                    "invoke_agent".to_string(),
                    Some("sess-1".to_string()),
                    Vec::new(),
                    r#"{"a":1}"#.to_string()
                ),
            ]
        );
        // Each key points at the record holding its row.
        let stray: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM spans k LEFT JOIN raw_records r ON r.id = k.record_id WHERE r.id IS NULL OR r.signal != 'traces'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(stray, 0);
        let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM record_sessions")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            sessions, 4,
            "one span, two log and one point record name sess-1"
        );
        conn.close().await.unwrap();

        let db = crate::store::Db::open_read_only(&path).await.unwrap();
        assert_eq!(
            db.session_events("sess-1").await.unwrap(),
            ["claude_code.user_prompt", "claude_code.api_request"]
        );
    }
}
