//! How a reviewer sees a pull request's impact: the markdown comment, the check run's
//! summary and the headline, rendered from the computed model
//! ([`crate::metrics::model::PrReport`]). Reads no database; publishing is
//! [`crate::publish`].

pub mod markdown;
