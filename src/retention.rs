//! The pruner: raw telemetry and processed delivery payloads older than `--retain-raw`
//! (counted from when tracelink received them) are removed in small batches, each its
//! own short transaction, so ingest never waits long behind it. What is kept is listed
//! in [`crate::store::retention`].
//!
//! With several replicas, one prunes at a time: the pruner holds the `retention` lease
//! for its rounds (two pruners would delete the same rows side by side, and wait on
//! each other's locks); another replica takes over when the holder dies.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Conn;
use crate::time::now_ns;

/// Raw rows (about) and delivery payloads removed per transaction.
const BATCH: i64 = 1000;

/// How long raw data is kept (`--retain-raw`); `None`: forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<Duration>);

/// How long raw data is kept: a duration like `90d`, `12h`, `30m` or `45s`; `off` keeps
/// it forever.
pub fn parse_retention(s: &str) -> Result<Retention, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(Retention(None));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90d, 12h, 30m, 45s or off"))?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(|| format!("{s:?} is not a duration like 90d, 12h, 30m, 45s or off"))?;
    Ok(Retention(Some(Duration::from_secs(secs))))
}

/// The lease naming the replica that prunes.
pub const LEASE: &str = "retention";

/// Prunes every `retain / 4` (at most a minute apart), until `stop`, while this replica
/// holds the [`LEASE`]. `rounds` counts finished rounds, pruned or left to the holder
/// (tests wait on it).
pub fn spawn(
    mut conn: Conn,
    retain: Duration,
    replica: crate::replica::Replica,
    mut stop: watch::Receiver<bool>,
) -> (watch::Receiver<u64>, JoinHandle<()>) {
    let (rounds_tx, rounds) = watch::channel(0u64);
    let every = (retain / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let retain_ns = i64::try_from(retain.as_nanos()).unwrap_or(i64::MAX);
    // Held across the gap between rounds, and a lease period more.
    let hold_ns = i64::try_from((every * 2 + replica.lease).as_nanos()).unwrap_or(i64::MAX);
    let task = tokio::spawn(async move {
        loop {
            let now = now_ns();
            let holds = match conn
                .hold_lease(LEASE, &replica.id, now, now.saturating_add(hold_ns))
                .await
            {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "taking the retention lease failed; retrying next round");
                    if let Err(e) = conn.recover().await {
                        tracing::warn!(error = %format!("{e:#}"), "the database cannot be reached");
                    }
                    false
                }
            };
            // Only the replica holding the lease prunes; the others wait their turn.
            if holds {
                let cutoff = now_ns().saturating_sub(retain_ns);
                let mut removed = 0;
                loop {
                    match conn.prune_raw(cutoff, BATCH).await {
                        Ok(p) => {
                            removed += p.total();
                            if !p.more || *stop.borrow() {
                                break;
                            }
                            // Let the writer in between batches.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "pruning raw telemetry failed; retrying next round");
                            if let Err(e) = conn.recover().await {
                                tracing::warn!(error = %format!("{e:#}"), "the database cannot be reached");
                            }
                            break;
                        }
                    }
                }
                if removed > 0 {
                    tracing::info!(
                        removed,
                        "pruned raw telemetry and delivery payloads past --retain-raw"
                    );
                }
            }
            rounds_tx.send_modify(|r| *r += 1);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        if let Err(e) = conn.release_lease(LEASE, &replica.id).await {
            tracing::warn!(error = %e, "giving the retention lease up");
        }
    });
    (rounds, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_durations() {
        let secs = |n| Ok(Retention(Some(Duration::from_secs(n))));
        assert_eq!(parse_retention("90d"), secs(90 * 86_400));
        assert_eq!(parse_retention("12h"), secs(43_200));
        assert_eq!(parse_retention("2s"), secs(2));
        assert_eq!(parse_retention("off"), Ok(Retention(None)));
        for bad in ["", "0d", "d", "90", "90w", "-1d", "1.5d"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }
}
