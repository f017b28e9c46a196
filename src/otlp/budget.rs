//! The bound on OTLP request bytes in flight that both transports share: a request takes
//! its declared size from one budget before its body is buffered — OTLP/HTTP its
//! `Content-Length`, OTLP/gRPC its message's length prefix — and is refused at once
//! ("retry later") when the budget cannot cover it. Memory for bodies being received
//! stays bounded whatever the number of clients.
//!
//! Inflating and decoding a body are not counted: they run without yielding on a worker
//! thread, so at most one body per thread is being inflated at any moment, each capped
//! at the body limit.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Body bytes in flight, in KiB permits, shared by every OTLP request of both transports.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    max_body_bytes: usize,
}

/// A request's share of the [`BodyBudget`], given back when dropped.
#[derive(Debug)]
pub struct Share {
    _permit: OwnedSemaphorePermit,
}

impl BodyBudget {
    /// A budget of four largest bodies.
    pub fn new(max_body_bytes: usize) -> Self {
        let kib = (max_body_bytes.saturating_mul(4) / 1024).clamp(1, u32::MAX as usize);
        Self {
            kib: Arc::new(Semaphore::new(kib)),
            max_body_bytes,
        }
    }

    /// The largest body a request may send, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Takes `bytes` (at most the body limit — a larger body is refused as too large
    /// when read — and at least 1 KiB), or nothing when the budget cannot cover it now.
    pub fn try_take(&self, bytes: usize) -> Option<Share> {
        let bytes = bytes.min(self.max_body_bytes);
        let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        self.kib
            .clone()
            .try_acquire_many_owned(kib)
            .ok()
            .map(|p| Share { _permit: p })
    }

    /// The answer a request gets when the budget cannot cover it.
    pub fn refusal() -> super::IngestError {
        super::IngestError::Overloaded(
            "too many request bodies are being read; retry shortly".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::BodyBudget;

    #[test]
    fn four_largest_bodies_fit_and_a_share_is_given_back_when_dropped() {
        let budget = BodyBudget::new(4096);
        let shares: Vec<_> = (0..4).map(|_| budget.try_take(4096).unwrap()).collect();
        assert!(
            budget.try_take(0).is_none(),
            "even an empty body needs 1 KiB"
        );
        drop(shares);
        assert!(budget.try_take(4096).is_some());
    }

    #[test]
    fn a_share_is_at_most_the_body_limit_and_at_least_one_kib() {
        let budget = BodyBudget::new(4096);
        // Declared larger than the limit: counted as the limit (it is refused as too
        // large once its length is read).
        let big = budget.try_take(usize::MAX).unwrap();
        let small: Vec<_> = (0..12).map(|_| budget.try_take(1).unwrap()).collect();
        assert!(budget.try_take(1).is_none());
        drop((big, small));
        let pieces: Vec<_> = (0..8).map(|_| budget.try_take(2000).unwrap()).collect();
        assert!(budget.try_take(1).is_none(), "2000 bytes take 2 KiB");
        drop(pieces);
    }
}
