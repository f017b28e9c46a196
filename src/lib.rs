//! tracelink: joins AI coding agents' OpenTelemetry with what GitHub saw happen next.
//!
//! The flow (DESIGN.md §1): [`otlp`] decodes → [`agents`] normalises into session facts →
//! [`store`] writes durably → [`api`] answers queries.

// sqlx row tuples are spelled out where they are read; naming each would hide the
// columns rather than explain them.
#![allow(clippy::type_complexity)]

pub mod agents;
pub mod api;
pub mod bench;
pub mod ci;
pub mod config;
pub mod demo;
pub mod github;
pub mod graph;
pub mod hook;
pub mod ids;
pub mod metrics;
pub mod otlp;
pub mod pricing;
pub mod report;
pub mod server;
pub mod store;
pub mod telemetry;
