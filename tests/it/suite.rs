//! The tests that store anything, compiled once per engine (`main.rs`): `common`
//! knows which from its module path.

mod action;
pub mod analytics;
mod app_setup;
mod backfill;
mod backup;
mod bad_input;
mod ci_status;
mod ci_upload;
mod cli;
mod comment_privacy;
pub mod common;
mod connections;
mod cost;
mod dashboard_pages;
mod dora;
pub mod durability;
pub mod fixtures;
mod grpc_budget;
mod histories;
mod leases;
mod line_records;
mod links;
mod orders;
mod pseudonyms;
mod publish;
mod records;
mod relink;
mod replay;
pub mod reports;
mod retention;
mod sdk;
mod shipped;
mod telemetry_forms;
mod upload_binding;
mod webhooks;
