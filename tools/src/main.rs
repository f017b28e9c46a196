//! `tracelink-dev`: the demo and the benchmarks (not part of the service).
//!
//! Build both binaries first (the benchmarks run `tracelink serve` from the same target
//! directory): `cargo build --release -p tracelink -p tracelink-dev`.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod bench;
mod demo;
mod demo_org;

#[derive(Debug, Parser)]
#[command(
    name = "tracelink-dev",
    version,
    about = "tracelink's tooling: the demo and the benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run tracelink against a fake GitHub with a bundled agent session, and print the
    /// comment and check run it posts.
    Demo {
        /// Then seed a month of a small organisation (three teams, three agents, a
        /// policy change, a spend spike, an incident) and keep serving: the dashboard's
        /// address is printed; Ctrl-C stops.
        #[arg(long)]
        serve: bool,
    },
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
        Command::Demo { serve } => demo::run(serve),
        Command::Bench(args) => bench::run(args),
    }
}
