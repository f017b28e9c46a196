//! tracelink's own operational metrics, served as Prometheus text on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::facts::Signal;

/// Upper bounds (seconds) of the commit latency histogram.
const LATENCY_BOUNDS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
/// Upper bounds of the commit batch size histogram (requests per transaction).
const SIZE_BOUNDS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in micro-units, to stay an integer.
    sum_micros: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, bounds: &[f64; N], v: f64) {
        for (b, bound) in self.buckets.iter().zip(bounds) {
            if v <= *bound {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[f64; N]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", b.load(Relaxed));
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Webhook deliveries by outcome.
pub struct WebhookCounters {
    counts: [AtomicU64; WEBHOOK_OUTCOMES.len()],
}

/// Every outcome a delivery can have, as `/metrics` labels it.
pub const WEBHOOK_OUTCOMES: [&str; 7] = [
    "stored",
    "duplicate",
    "ignored",
    "failed",
    "unauthorized",
    "malformed",
    "unavailable",
];

impl Default for WebhookCounters {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WebhookCounters {
    pub fn count(&self, outcome: &str) {
        if let Some(i) = WEBHOOK_OUTCOMES.iter().position(|o| *o == outcome) {
            self.counts[i].fetch_add(1, Relaxed);
        }
    }
}

#[derive(Default)]
pub struct Telemetry {
    pub webhooks: WebhookCounters,
    received: [AtomicU64; 3],
    rejected: [AtomicU64; 3],
    refused_requests: [AtomicU64; 3],
    commit_latency: Histogram<10>,
    commit_size: Histogram<7>,
}

fn slot(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl Telemetry {
    /// Records stored from an accepted request, and records of it refused.
    pub fn record_request(&self, signal: Signal, accepted: u64, rejected: u64) {
        self.received[slot(signal)].fetch_add(accepted, Relaxed);
        self.rejected[slot(signal)].fetch_add(rejected, Relaxed);
    }

    /// A whole request refused (bad payload, auth, overload).
    pub fn record_refused(&self, signal: Signal) {
        self.refused_requests[slot(signal)].fetch_add(1, Relaxed);
    }

    pub fn record_commit(&self, requests: usize, latency: Duration) {
        self.commit_size.observe(&SIZE_BOUNDS, requests as f64);
        self.commit_latency
            .observe(&LATENCY_BOUNDS, latency.as_secs_f64());
    }

    pub fn render(&self, queue_depth: usize, queue_capacity: usize) -> String {
        let mut out = String::with_capacity(2048);
        for (name, help, values) in [
            (
                "tracelink_records_received_total",
                "Spans, log records and metric data points accepted, by signal.",
                &self.received,
            ),
            (
                "tracelink_records_rejected_total",
                "Records refused inside accepted requests (partial success), by signal.",
                &self.rejected,
            ),
            (
                "tracelink_requests_refused_total",
                "Whole export requests refused (bad payload, auth, size, overload), by signal.",
                &self.refused_requests,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for s in Signal::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{signal=\"{}\"}} {}",
                    s.as_str(),
                    values[slot(s)].load(Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tracelink_write_queue_depth Requests waiting for the writer.\n# TYPE tracelink_write_queue_depth gauge\ntracelink_write_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            out,
            "# HELP tracelink_write_queue_capacity Requests the write queue holds before refusing.\n# TYPE tracelink_write_queue_capacity gauge\ntracelink_write_queue_capacity {queue_capacity}"
        );
        let name = "tracelink_webhook_deliveries_total";
        let _ = writeln!(
            out,
            "# HELP {name} GitHub webhook deliveries by outcome.\n# TYPE {name} counter"
        );
        for (i, outcome) in WEBHOOK_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{outcome}\"}} {}",
                self.webhooks.counts[i].load(Relaxed)
            );
        }
        self.commit_size.render(
            &mut out,
            "tracelink_commit_batch_requests",
            "Requests written per transaction.",
            &SIZE_BOUNDS,
        );
        self.commit_latency.render(
            &mut out,
            "tracelink_commit_latency_seconds",
            "Time to write and commit one transaction.",
            &LATENCY_BOUNDS,
        );
        out
    }
}
