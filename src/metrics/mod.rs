//! Every metric's maths, as pure functions over rows the store loads ([`crate::impact`]
//! loads them): a session's facts ([`sessions`]), a pull request's impact ([`pull`],
//! [`coverage`], with the one diff reader [`diff`]), and the DORA keys split by agent
//! involvement ([`dora`]).

pub mod adoption;
pub mod alerts;
pub mod analytics;
pub mod cost;
pub mod coverage;
pub mod diff;
pub mod dora;
pub mod export;
pub mod impact_analytics;
pub mod line_records;
pub mod model;
pub mod pull;
pub mod sessions;
