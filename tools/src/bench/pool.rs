//! The request pool `bench load` and `bench soak` send from.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;
use prost::Message;

use super::ingest::generate;

/// Distinct requests in a pool; they are sent round-robin, each with a fresh stamp.
pub(super) const POOL_REQUESTS: usize = 256;

/// Pre-encoded export requests (`bench ingest`'s spans) whose trace ids begin with
/// `mark`; every send writes a fresh number over the marks, so no span is sent twice.
pub(super) struct Pool {
    payloads: Vec<Vec<u8>>,
    /// Where each payload holds the mark.
    marks: Vec<Vec<usize>>,
    pub(super) spans_per_request: u64,
    sent: AtomicU64,
}

impl Pool {
    /// [`POOL_REQUESTS`] requests of `spans_per_request` spans with `attributes` each,
    /// marked with `mark` (eight bytes no generated id holds).
    pub(super) fn new(
        mark: [u8; 8],
        spans_per_request: usize,
        attributes: usize,
    ) -> anyhow::Result<Self> {
        let mut requests = generate(
            POOL_REQUESTS * spans_per_request,
            spans_per_request,
            attributes,
        );
        let spans = requests.iter_mut().flat_map(|r| {
            r.resource_spans
                .iter_mut()
                .flat_map(|rs| rs.scope_spans.iter_mut().flat_map(|ss| &mut ss.spans))
        });
        for span in spans {
            span.trace_id[..mark.len()].copy_from_slice(&mark);
        }
        let payloads: Vec<Vec<u8>> = requests.iter().map(Message::encode_to_vec).collect();
        let marks: Vec<Vec<usize>> = payloads
            .iter()
            .map(|p| {
                p.windows(mark.len())
                    .enumerate()
                    .filter_map(|(i, w)| (w == mark).then_some(i))
                    .collect()
            })
            .collect();
        for (m, r) in marks.iter().zip(&requests) {
            let spans: usize = r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum();
            if m.len() != spans {
                bail!(
                    "a generated request holds the trace-id mark {} times for {spans} spans",
                    m.len()
                );
            }
        }
        Ok(Self {
            payloads,
            marks,
            spans_per_request: spans_per_request as u64,
            sent: AtomicU64::new(0),
        })
    }

    pub(super) fn mean_bytes(&self) -> f64 {
        self.payloads.iter().map(Vec::len).sum::<usize>() as f64 / self.payloads.len() as f64
    }

    /// The next request to send, into `buf`.
    pub(super) fn next(&self, buf: &mut Vec<u8>) {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let i = (n as usize) % self.payloads.len();
        buf.clear();
        buf.extend_from_slice(&self.payloads[i]);
        let stamp = n.to_be_bytes();
        for &at in &self.marks[i] {
            buf[at..at + stamp.len()].copy_from_slice(&stamp);
        }
    }
}
