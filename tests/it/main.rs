//! Integration tests: one binary, a fresh server on port 0 and a fresh database per test.

mod bad_input;
mod common;
mod durability;
mod fixtures;
mod hook;
mod sdk;
mod webhooks;
