//! `tracelink bench ingest`: end-to-end OTLP ingest throughput (not yet written).

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {}

pub fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark is not written yet")
}
