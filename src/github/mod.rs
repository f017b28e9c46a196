//! GitHub: webhook deliveries, their events, and commit trailers.

pub mod trailers;
