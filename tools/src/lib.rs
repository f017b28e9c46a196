//! tracelink's tooling, kept out of the service: the fake GitHub that the integration
//! tests and `tracelink-dev demo` share ([`fake_github`]).

pub mod fake_github;
pub mod pgtest;
