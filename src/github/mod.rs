//! GitHub: webhook deliveries ([`webhook`]), the events they carry ([`events`]), what
//! those mean for the graph ([`plan`], written by the [`processor`] through the store),
//! commit trailers ([`trailers`]), and the App's REST client ([`app`]).

pub mod app;
pub mod events;
pub mod external;
pub mod plan;
pub mod processor;
pub mod signature;
pub mod trailers;
pub mod webhook;
