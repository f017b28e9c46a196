//! PR impact reports: the data ([`model`]), how it is assembled from the graph
//! ([`build`]), and how a reviewer sees it ([`markdown`]).

pub mod build;
pub mod markdown;
pub mod model;
pub mod publish;

pub use build::{ReportContext, build};
pub use model::PrReport;
