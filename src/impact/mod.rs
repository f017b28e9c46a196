//! Where the stages meet for a query: loads a neighbourhood through the store, links it
//! ([`crate::graph`]), computes the metrics ([`crate::metrics`]) and returns the model
//! the outputs render. The API, the gRPC service, the publisher and the CLI all build
//! their reports here, so they agree.

pub mod ci;
pub mod dora;
pub mod pull;

use crate::graph::links::LinkConfig;
use crate::pricing::PriceTable;

/// What building a report needs besides the database.
#[derive(Clone, Debug, Default)]
pub struct ReportContext {
    pub prices: PriceTable,
    pub links: LinkConfig,
}
