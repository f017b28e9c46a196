//! GitHub: webhook deliveries ([`webhook`]), the events they carry ([`events`]), what
//! those mean for the graph ([`plan`], written by the [`processor`] through the store),
//! commit trailers ([`trailers`]), the App's REST client ([`app`]), and backfills of a
//! repository's history from the API ([`backfill`]).

pub mod app;
pub mod backfill;
pub mod events;
pub mod external;
pub mod manifest;
pub mod plan;
pub mod processor;
pub mod signature;
pub mod teams;
pub mod trailers;
pub mod webhook;
