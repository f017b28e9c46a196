//! Times as tracelink keeps them: Unix nanoseconds (`i64`), shown as RFC 3339 UTC.

/// Now, in Unix nanoseconds.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// A nanosecond timestamp as RFC 3339 UTC, at the given precision.
pub fn rfc3339(ns: Option<i64>, precision: chrono::SecondsFormat) -> Option<String> {
    let ns = ns?;
    let t = chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )?;
    Some(t.to_rfc3339_opts(precision, true))
}

/// An RFC 3339 time as Unix nanoseconds; `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}
