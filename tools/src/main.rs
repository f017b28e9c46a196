//! `tracelink-dev`: the benchmarks (not part of the service; the demo is `tracelink demo`).
//!
//! Build both binaries first (the benchmarks run `tracelink serve` from the same target
//! directory): `cargo build --release -p tracelink -p tracelink-dev`.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod bench;

#[derive(Debug, Parser)]
#[command(
    name = "tracelink-dev",
    version,
    about = "tracelink's tooling: the benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks (run a release build).
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TRACELINK_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Bench(args) => bench::run(args),
    }
}
