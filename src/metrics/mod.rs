//! Repository metrics over the graph: the DORA keys split by agent involvement
//! ([`dora`]). Pull request metrics live with the report ([`crate::report`]).

pub mod dora;
