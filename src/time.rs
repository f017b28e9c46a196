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

/// Where analytics' days begin (`--timezone`, an IANA name; default UTC): a day,
/// week or month bucket runs from local midnight to local midnight, however long
/// daylight saving time makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(chrono_tz::Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl Zone {
    pub const UTC: Zone = Zone(chrono_tz::UTC);

    /// An IANA time zone name (`Europe/Berlin`, `America/Los_Angeles`, `UTC`).
    pub fn parse(name: &str) -> Result<Self, String> {
        name.trim().parse::<chrono_tz::Tz>().map(Zone).map_err(|_| {
            format!("{name:?} is not an IANA time zone name (such as UTC, Europe/Berlin, America/New_York)")
        })
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The local date at `ns`.
    pub fn date_of(self, ns: i64) -> chrono::NaiveDate {
        use chrono::TimeZone;
        self.0.timestamp_nanos(ns).date_naive()
    }

    /// The local date at `ns` as days since 1970-01-01 (what analytics' facts store).
    pub fn day_of(self, ns: i64) -> i64 {
        day_number(self.date_of(ns))
    }

    /// When the local date `d` begins (its first valid local time, should daylight
    /// saving time skip midnight).
    pub fn midnight(self, d: chrono::NaiveDate) -> i64 {
        use chrono::TimeZone;
        let start = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        for minutes in (0..=180).step_by(30) {
            let local = start + chrono::Duration::minutes(minutes);
            if let Some(t) = self.0.from_local_datetime(&local).earliest() {
                return t.timestamp_nanos_opt().unwrap_or(0);
            }
        }
        start.and_utc().timestamp_nanos_opt().unwrap_or(0)
    }

    /// When the local day numbered `day` (days since 1970-01-01) begins.
    pub fn day_start(self, day: i64) -> i64 {
        self.midnight(date_of_day(day))
    }
}

/// Days since 1970-01-01 of a date.
pub fn day_number(d: chrono::NaiveDate) -> i64 {
    (d - chrono::NaiveDate::default()).num_days()
}

/// The date `day` days after 1970-01-01.
pub fn date_of_day(day: i64) -> chrono::NaiveDate {
    chrono::NaiveDate::default()
        .checked_add_signed(chrono::Duration::days(day))
        .unwrap_or_default()
}

#[cfg(test)]
mod zone_tests {
    use super::*;

    const DAY_NS: i64 = 86_400 * 1_000_000_000;

    #[test]
    fn days_begin_at_local_midnight_through_daylight_saving_time() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // 2026-03-29: clocks go from 02:00 to 03:00; the day is 23 hours long.
        let d = chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let start = berlin.midnight(d);
        assert_eq!(
            rfc3339(Some(start), chrono::SecondsFormat::Secs).unwrap(),
            "2026-03-28T23:00:00Z"
        );
        let next = berlin.day_start(day_number(d) + 1);
        assert_eq!(next - start, 23 * 3_600 * 1_000_000_000);
        assert_eq!(berlin.day_of(next - 1), day_number(d));
        assert_eq!(berlin.day_of(next), day_number(d) + 1);
        // UTC is the identity.
        assert_eq!(Zone::UTC.day_start(20_000), 20_000 * DAY_NS);
        assert_eq!(Zone::UTC.day_of(20_000 * DAY_NS + 5), 20_000);
        // Sao Paulo once skipped midnight itself (2018-11-04 began at 01:00).
        let sp = Zone::parse("America/Sao_Paulo").unwrap();
        let d = chrono::NaiveDate::from_ymd_opt(2018, 11, 4).unwrap();
        assert_eq!(
            rfc3339(Some(sp.midnight(d)), chrono::SecondsFormat::Secs).unwrap(),
            "2018-11-04T03:00:00Z"
        );
        assert!(Zone::parse("Mars/Olympus").unwrap_err().contains("IANA"));
    }
}
