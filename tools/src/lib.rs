//! tracelink's tooling, kept out of the service: the fake GitHub the integration tests
//! share (the one `tracelink demo` runs, re-exported from [`tracelink::demo::github`]),
//! and test databases on PostgreSQL.

pub use tracelink::demo::github as fake_github;
pub mod pgtest;
