use clap::Parser;
use tracing_subscriber::EnvFilter;

use tracelink::config::{Cli, Command, ConfigCommand, ServeArgs};
use tracelink::pricing::PriceTable;
use tracelink::server::Server;

/// Errors end the process with one sentence on stderr (the cause chain joined by `: `)
/// and status 1, never a backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> std::process::ExitCode {
    // The demo prints its own story; the server's log (the replayed payloads name
    // installations its stand-in for GitHub does not know) only with TRACELINK_LOG.
    let quiet = std::env::args().nth(1).as_deref() == Some("demo");
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TRACELINK_LOG")
                .unwrap_or_else(|_| EnvFilter::new(if quiet { "off" } else { "info" })),
        )
        .with_writer(std::io::stderr)
        .init();
    let expanded = match tracelink::config_file::expand(std::env::args_os().collect()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tracelink: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(&expanded.args);
    if let Command::Config {
        command: ConfigCommand::Check(args),
    } = &cli.command
    {
        return match config_check(args, &expanded) {
            Ok(text) => {
                print!("{text}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tracelink: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let done = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli.command)));
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracelink: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tracelink config check`: what `serve` would read beyond its flags (the App's key,
/// the identities file, the price table) is read and checked, then every setting is
/// printed.
fn config_check(
    args: &ServeArgs,
    expanded: &tracelink::config_file::Expanded,
) -> anyhow::Result<String> {
    args.github_app()?;
    if let Some(p) = &args.identities {
        tracelink::graph::identities::Identities::load(p)?;
    }
    PriceTable::configured(args.price_table.as_deref())?;
    let mut out = tracelink::config_file::describe(expanded)?;
    out.push_str("ok: serve would start with these settings\n");
    Ok(out)
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
        #[cfg(feature = "demo")]
        Command::Demo(args) => tracelink::demo::run(&args).await,
        #[cfg(not(feature = "demo"))]
        Command::Demo(_) => anyhow::bail!(
            "this tracelink was built without the demo (cargo's default feature `demo`)"
        ),
        Command::Migrate { db } => {
            tracelink::store::migrate(&db).await?;
            println!("migrations applied to {}", db);
            Ok(())
        }
        Command::MigrateData { from, to } => {
            let mut last = String::new();
            let moved = tracelink::migrate_data::run(&from, &to, |table, _rows| {
                if table != last {
                    eprintln!("copying {table}");
                    last = table.to_string();
                }
            })
            .await?;
            println!("{:<32} {:>12} {:>12}", "table", "source", "destination");
            for t in &moved.tables {
                println!(
                    "{:<32} {:>12} {:>12}",
                    t.table, t.source_rows, t.destination_rows
                );
            }
            println!(
                "moved {from} to {to}: every table's rows counted equal, {} pull requests' reports identical; point serve's --db at {to}",
                moved.reports_compared
            );
            Ok(())
        }
        Command::Report {
            target,
            format,
            db,
            identities,
            price_table,
        } => {
            let (repo, number) =
                tracelink::config::parse_pull_target(&target).map_err(anyhow::Error::msg)?;
            let ctx = tracelink::impact::ReportContext {
                prices: PriceTable::configured(price_table.as_deref())?,
                links: tracelink::graph::links::LinkConfig {
                    identities: match identities {
                        Some(p) => tracelink::graph::identities::Identities::load(&p)?,
                        None => Default::default(),
                    },
                    ..Default::default()
                },
                ..Default::default()
            };
            existing(&db)?;
            let store = tracelink::store::open(&db).await?;
            let Some(tracelink::impact::pull::Built { report, .. }) =
                tracelink::impact::pull::build(&store.db, &ctx, &repo, number).await?
            else {
                anyhow::bail!("no pull request {repo}#{number} in {}", db);
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
        Command::Deliveries {
            command:
                tracelink::config::DeliveriesCommand::Replay {
                    status,
                    since,
                    id,
                    db,
                },
        } => {
            existing(&db)?;
            let since_ns = since_arg(since.as_deref())?;
            let mut store = tracelink::store::open(&db).await?;
            let n = store
                .writer
                .replay_deliveries(&tracelink::store::deliveries::Replay {
                    status,
                    since_ns,
                    id,
                })
                .await?;
            store.writer.close().await?;
            store.db.close().await;
            println!(
                "{n} deliveries marked for replay: a running tracelink applies them within seconds, else the next start does"
            );
            Ok(())
        }
        Command::Backup { file, db } => {
            existing(&db)?;
            let store = tracelink::store::Db::open_read_only(&db).await?;
            store.backup_into(&file).await?;
            store.close().await;
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            println!("backed up {} to {} ({bytes} bytes)", db, file.display());
            Ok(())
        }
        Command::Backfill(args) => {
            let app = args.github_app()?;
            let pseudonyms = if args.pseudonymize_users {
                Some(std::sync::Arc::new(
                    tracelink::pseudonym::Pseudonyms::from_secret(
                        args.secret_key.as_ref().map(|s| s.0.as_str()),
                    )?,
                ))
            } else {
                None
            };
            let mut identities = match &args.identities {
                Some(p) => tracelink::graph::identities::Identities::load(p)?,
                None => Default::default(),
            };
            if let Some(p) = &pseudonyms {
                identities = identities.pseudonymized(p);
            }
            let cfg = tracelink::github::backfill::BackfillConfig {
                incident_label: args.incident_label.clone(),
                incident_environment: args.incident_environment.clone(),
                links: tracelink::graph::links::LinkConfig {
                    grace_ns: i64::try_from(args.link_grace_secs)
                        .unwrap_or(i64::MAX / 1_000_000_000)
                        .saturating_mul(1_000_000_000),
                    identities,
                },
                debounce: std::time::Duration::from_secs(60),
                publisher: None,
                pseudonyms,
            };
            let store = tracelink::store::open(&args.db).await?;
            let mut print = |row: &tracelink::store::backfill::BackfillRow| {
                println!("{}", tracelink::github::backfill::progress_line(row))
            };
            let row = tracelink::github::backfill::here(
                store,
                &app,
                &cfg,
                args.repo.as_str(),
                args.since,
                &mut print,
            )
            .await?;
            println!(
                "backfill of {} done: {} pages fetched, {} not modified (a running tracelink publishes the open pull requests' reports)",
                row.repo, row.pages_fetched, row.pages_not_modified
            );
            Ok(())
        }
        Command::Relink { repo, since, db } => {
            existing(&db)?;
            let since_ns = since_arg(since.as_deref())?;
            let mut store = tracelink::store::open(&db).await?;
            let filter = tracelink::store::links::RelinkFilter {
                repo: repo.map(|r| r.as_str().to_string()),
                since_ns,
            };
            let n = store
                .writer
                .queue_relink_all(&filter, tracelink::time::now_ns())
                .await?;
            store.writer.close().await?;
            store.db.close().await;
            println!(
                "{n} sessions queued for relinking: a running tracelink relinks them within a minute (POST /api/v1/admin/relink starts at once), else the next start does"
            );
            Ok(())
        }
        Command::Stats { db } => {
            existing(&db)?;
            let store = tracelink::store::Db::open_read_only(&db).await?;
            let sizes = store.table_sizes().await?;
            store.close().await;
            let total: i64 = sizes.iter().map(|t| t.bytes).sum();
            println!("{:<32} {:>12} {:>14}", "table / index", "rows", "bytes");
            for t in &sizes {
                let rows = t.rows.map_or("(index)".to_string(), |r| r.to_string());
                println!("{:<32} {:>12} {:>14}", t.name, rows, t.bytes);
            }
            println!("{:<32} {:>12} {:>14}", "total", "", total);
            Ok(())
        }
        Command::Config { .. } => anyhow::bail!("config check runs before the runtime starts"),
        Command::Status { db, identities } => {
            let identities = identities
                .as_deref()
                .map(tracelink::graph::identities::Identities::load)
                .transpose()?;
            existing(&db)?;
            let store = tracelink::store::Db::open_read_only(&db).await?;
            let now = tracelink::time::now_ns();
            let days = tracelink::dashboard::SETUP_DAYS;
            let arrived =
                tracelink::dashboard::Arrivals::read(&store, now, identities.as_ref(), 10).await?;
            let (telemetry, webhooks) = (&arrived.telemetry, &arrived.webhooks);
            println!("Agent telemetry, last {days} days:");
            if telemetry.is_empty() {
                println!("  none");
            }
            for t in telemetry {
                println!(
                    "  {:<14} {:<32} {:>6} sessions  last {}",
                    t.agent.as_deref().unwrap_or("unknown"),
                    t.repository.as_deref().unwrap_or("(no repository)"),
                    t.sessions,
                    t.last_ns
                        .map_or("-".into(), |ns| tracelink::dashboard::ago(now, ns))
                );
            }
            println!("GitHub webhooks, last {days} days:");
            if webhooks.is_empty() {
                println!("  none");
            }
            for w in webhooks {
                println!(
                    "  {:<47} {:>6} deliveries ({} failed)  last {}",
                    w.repo.as_deref().unwrap_or("(no repository)"),
                    w.deliveries,
                    w.failed,
                    tracelink::dashboard::ago(now, w.last_ns)
                );
            }
            let missing = arrived.missing(None);
            if missing.is_empty() {
                println!("Nothing missing: telemetry and webhooks are arriving.");
            } else {
                println!("Missing:");
                for m in missing {
                    println!("  - {m}");
                }
            }
            Ok(())
        }
        Command::Sessions {
            last,
            db,
            price_table,
        } => {
            let prices = PriceTable::configured(price_table.as_deref())?;
            existing(&db)?;
            let store = tracelink::store::Db::open_read_only(&db).await?;
            let page = store
                .sessions_page(&tracelink::store::sessions::ListFilter {
                    limit: last,
                    ..Default::default()
                })
                .await?;
            let keys: Vec<&str> = page
                .sessions
                .iter()
                .map(|s| s.row.session_key.as_str())
                .collect();
            let links = store.authored_link_counts(&keys).await?;
            if page.sessions.is_empty() {
                println!("no sessions in {} yet: no agent telemetry has arrived", db);
            }
            let mut without_repository = 0;
            for record in page.sessions {
                let linked = links.get(&record.row.session_key).copied().unwrap_or(0);
                let view = tracelink::metrics::sessions::view(&prices, record);
                without_repository += usize::from(view.repository.is_none());
                println!("{}", session_line(&prices, &view, linked));
            }
            if without_repository > 0 {
                eprintln!(
                    "{without_repository} session(s) name no repository: they are linked to commits by person and time only (README, \"Agent set-up\", says how an agent names its repository)"
                );
            }
            store.close().await;
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

/// One line of `tracelink sessions`: agent, session, user, repository (and branch), start, tokens,
/// cost and linked commits, each said plainly when unknown.
fn session_line(
    prices: &PriceTable,
    s: &tracelink::metrics::sessions::SessionView,
    linked: i64,
) -> String {
    let user = s.user.email.as_deref().or(s.user.id.as_deref());
    let tokens = match &s.tokens {
        Some(t) => format!("tokens {} in / {} out", t.input, t.output),
        None => "tokens unknown".into(),
    };
    let cost = match s.cost_usd {
        Some(usd) if s.cost_estimated => format!("{} estimated", usd_text(usd)),
        Some(usd) => usd_text(usd),
        None if s.models.is_empty() => "unpriced (no tokens or cost reported)".into(),
        None => format!(
            "unpriced (no price for {})",
            prices
                .unpriced(s.models.iter().map(String::as_str))
                .join(", ")
        ),
    };
    [
        s.agent.as_deref().unwrap_or("agent unknown").to_string(),
        s.session_id.clone(),
        user.unwrap_or("user unknown").to_string(),
        match (&s.repository, &s.branch) {
            (Some(r), Some(b)) => format!("{r} ({b})"),
            (Some(r), None) => r.clone(),
            (None, _) => "repository unknown".into(),
        },
        match &s.started_at {
            Some(t) => format!("started {t}"),
            None => "start unknown".into(),
        },
        tokens,
        cost,
        match linked {
            1 => "1 commit linked".into(),
            n => format!("{n} commits linked"),
        },
    ]
    .join(" · ")
}

fn usd_text(usd: f64) -> String {
    if usd >= 1.0 {
        format!("${usd:.2}")
    } else {
        format!("${usd:.4}")
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

/// A database file that must exist already (commands that read or mark, never create).
/// A PostgreSQL database is not checked here: connecting says whether it is there.
fn existing(db: &tracelink::store::Location) -> anyhow::Result<()> {
    if let Some(file) = db.file()
        && !file.exists()
    {
        anyhow::bail!(
            "no database at {} (start `tracelink serve` there first, or point --db / TRACELINK_DB at its file)",
            file.display()
        );
    }
    Ok(())
}

/// `--since` as nanoseconds.
fn since_arg(since: Option<&str>) -> anyhow::Result<Option<i64>> {
    since
        .map(|t| {
            tracelink::time::parse_rfc3339(t).ok_or_else(|| {
                anyhow::anyhow!("--since {t:?} is not an RFC 3339 time (2026-11-20T00:00:00Z)")
            })
        })
        .transpose()
}
