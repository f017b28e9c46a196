//! The graph: who is who across systems ([`identities`]), which sessions produced which
//! commits ([`links`], kept stored by [`linker`]), which deployment caused an incident
//! ([`incidents`]), and traversals over a pull request's neighbourhood
//! ([`neighbourhood`]).

pub mod identities;
pub mod incidents;
pub mod linker;
pub mod links;
pub mod neighbourhood;
