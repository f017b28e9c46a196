//! Integration tests: one binary, a fresh server on port 0 and a fresh database per test.
//!
//! Every test that stores anything runs twice, once per engine: `sqlite::…` on a file
//! of its own, `postgres::…` on a database of its own created from a migrated template
//! (see `common.rs`). `TRACELINK_TEST_POSTGRES` names the PostgreSQL server (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `skip` leaves the PostgreSQL half
//! (and the tests that need PostgreSQL: `engines`, `migrate_data`, `replicas`,
//! `schema_parity`)
//! out of the build, which `build.rs` refuses when `CI=true`.

// The suite's files are compiled once per engine on purpose.
#![allow(clippy::duplicate_mod)]

mod browser;
mod config_file;
mod dashboard;
mod demo;
#[cfg(not(tracelink_skip_postgres_tests))]
mod engines;
mod fuzz_corpus;
mod github_app;
mod hook;
mod layout;
#[cfg(not(tracelink_skip_postgres_tests))]
mod migrate_data;
mod observability;
#[cfg(not(tracelink_skip_postgres_tests))]
mod replicas;
#[cfg(not(tracelink_skip_postgres_tests))]
mod schema_parity;

#[path = "suite.rs"]
mod sqlite;

#[cfg(not(tracelink_skip_postgres_tests))]
#[path = "suite.rs"]
mod postgres;
