//! tracelink: joins AI coding agents' OpenTelemetry with what GitHub saw happen next.
//!
//! The flow (DESIGN.md §1): [`otlp`] decodes → [`agents`] normalises into session facts →
//! [`store`] writes durably; [`github`] and [`ci`] receive GitHub's deliveries and CI
//! uploads into the same store; [`graph`] links sessions to commits, [`metrics`] computes,
//! [`impact`] puts the two together over the store, [`report`] renders, [`publish`] posts,
//! [`api`] answers queries. Only [`store`] holds SQL.

pub mod agents;
pub mod alerting;
pub mod api;
pub mod ci;
pub mod config;
pub mod config_file;
pub mod crypto;
pub mod dashboard;
#[cfg(feature = "demo")]
pub mod demo;
pub mod facts;
pub mod github;
pub mod graph;
pub mod hook;
pub mod ids;
pub mod impact;
pub mod line_set;
pub mod listen;
pub mod metrics;
pub mod migrate_data;
pub mod otlp;
pub mod pricing;
pub mod pseudonym;
pub mod publish;
pub mod replica;
pub mod report;
pub mod retention;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod time;
