use clap::Parser;
use tracing_subscriber::EnvFilter;

use tracelink::config::{Cli, Command};
use tracelink::server::Server;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TRACELINK_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let server = Server::start(&args).await?;
            println!(
                "tracelink listening grpc={} http={}",
                server.grpc_addr, server.http_addr
            );
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight requests and flushing writes");
            server.shutdown().await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate { db } => {
            tracelink::store::migrate(&db).await?;
            println!("migrations applied to {}", db.display());
            Ok(())
        }
        Command::Report {
            target,
            format,
            db,
            identities,
        } => {
            let (repo, number) =
                tracelink::config::parse_pull_target(&target).map_err(anyhow::Error::msg)?;
            let ctx = tracelink::impact::ReportContext {
                prices: Default::default(),
                links: tracelink::graph::links::LinkConfig {
                    identities: match identities {
                        Some(p) => tracelink::graph::identities::Identities::load(&p)?,
                        None => Default::default(),
                    },
                    ..Default::default()
                },
                ..Default::default()
            };
            if !db.exists() {
                anyhow::bail!("no database at {}", db.display());
            }
            let store = tracelink::store::open(&db).await?;
            let Some(tracelink::impact::pull::Built { report, .. }) =
                tracelink::impact::pull::build(&store.db, &ctx, &repo, number).await?
            else {
                anyhow::bail!("no pull request {repo}#{number} in {}", db.display());
            };
            match format {
                tracelink::config::ReportFormat::Markdown => {
                    print!("{}", tracelink::report::markdown::render(&report))
                }
                tracelink::config::ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report)?)
                }
            }
            Ok(())
        }
        Command::Hook {
            command: tracelink::config::HookCommand::Install { repo },
        } => {
            let outcome = tracelink::hook::install(&repo)?;
            println!("{outcome}");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
