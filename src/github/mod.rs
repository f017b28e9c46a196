//! GitHub: webhook deliveries ([`webhook`]), the events they carry ([`events`]), what
//! those mean for the graph ([`plan`], [`apply`], applied by the [`processor`]), and
//! commit trailers ([`trailers`]).

pub mod app;
pub mod apply;
pub mod events;
pub mod plan;
pub mod processor;
pub mod signature;
pub mod trailers;
pub mod webhook;
