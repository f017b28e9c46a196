//! Integration tests: one binary, a fresh server on port 0 and a fresh database per test.

mod action;
mod backup;
mod bad_input;
mod ci_status;
mod ci_upload;
mod cli;
mod common;
mod connections;
mod cost;
mod dora;
mod durability;
mod fixtures;
mod github_app;
mod histories;
mod hook;
mod layout;
mod line_records;
mod links;
mod orders;
mod publish;
mod records;
mod replay;
mod reports;
mod sdk;
mod telemetry_forms;
mod webhooks;
