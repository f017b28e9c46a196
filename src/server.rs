//! The running service: both listeners, the writer, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::ApiState;
use crate::ci::upload::UploadState;
use crate::config::ServeArgs;
use crate::github::webhook::WebhookState;
use crate::otlp::http::HttpState;
use crate::otlp::{self, Ingest};
use crate::pricing::PriceTable;
use crate::store::{self, Db};
use crate::telemetry::Telemetry;

/// How long in-flight requests and idle connections get to finish at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The HTTP listener's state: each route group takes its own part ([`FromRef`]), so the
/// modules that serve them know nothing of the server.
#[derive(Clone)]
pub struct AppState {
    pub otlp: HttpState,
    pub webhooks: WebhookState,
    pub uploads: UploadState,
    pub api: ApiState,
    pub records: crate::api::records::RecordsState,
    pub admin: crate::api::admin::AdminState,
    /// Read tokens the query API requires (none: open).
    pub tokens: Arc<Vec<String>>,
    /// The token `/metrics` requires; without one it answers loopback clients only.
    pub metrics_token: Option<Arc<str>>,
    /// What is configured, for the dashboard's Setup page.
    pub setup: crate::dashboard::SetupConfig,
    /// Creating the GitHub App from the manifest (`/setup/app`).
    pub app_setup: crate::dashboard::app_setup::AppSetupState,
}

impl FromRef<AppState> for HttpState {
    fn from_ref(s: &AppState) -> Self {
        s.otlp.clone()
    }
}

impl FromRef<AppState> for WebhookState {
    fn from_ref(s: &AppState) -> Self {
        s.webhooks.clone()
    }
}

impl FromRef<AppState> for UploadState {
    fn from_ref(s: &AppState) -> Self {
        s.uploads.clone()
    }
}

impl FromRef<AppState> for crate::api::admin::AdminState {
    fn from_ref(s: &AppState) -> Self {
        s.admin.clone()
    }
}

impl FromRef<AppState> for crate::api::records::RecordsState {
    fn from_ref(s: &AppState) -> Self {
        s.records.clone()
    }
}

impl FromRef<AppState> for ApiState {
    fn from_ref(s: &AppState) -> Self {
        s.api.clone()
    }
}

/// A started tracelink: its bound addresses and the means to stop it.
pub struct Server {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The database's read side.
    pub db: Db,
    processor_handle: crate::github::processor::Processor,
    db_location: crate::store::Location,
    /// How many webhook deliveries have been applied to the graph.
    pub deliveries_applied: watch::Receiver<u64>,
    /// How many reports have been published (or found unchanged).
    pub reports_published: watch::Receiver<u64>,
    pub publisher: crate::publish::PublisherHandle,
    publisher_task: JoinHandle<()>,
    /// Rounds of pruning past `--retain-raw` finished (none when it is `off`).
    pub pruned: Option<watch::Receiver<u64>>,
    pruner: Option<JoinHandle<()>>,
    /// The backfill worker (none without a GitHub App).
    backfill: Option<JoinHandle<()>>,
    /// Keeps (or waits for) the lease to export organisation-wide figures on `/metrics`.
    metrics_lease: JoinHandle<()>,
    /// Posts alerts to `--alert-webhook` (none without one).
    alert_task: Option<JoinHandle<()>>,
    /// Keeps analytics' facts up to date.
    analytics_task: JoinHandle<()>,
    /// Rounds of judging and posting alerts finished (none without `--alert-webhook`).
    pub alerts_posted: Option<watch::Receiver<u64>>,
    /// How many backfill runs have ended, done or failed (none without a GitHub App).
    pub backfills_ended: Option<watch::Receiver<u64>>,
    stop: watch::Sender<bool>,
    stop_processor: watch::Sender<bool>,
    processor: JoinHandle<()>,
    http: JoinHandle<std::io::Result<()>>,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    writer: JoinHandle<()>,
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if otlp::token_allowed(&state.tokens, otlp::bearer(auth)) {
        next.run(req).await
    } else {
        crate::api::ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization: Bearer <token>".into(),
        )
        .into_response()
    }
}

/// `/metrics` needs `--metrics-token` when one is set; without one, it answers clients
/// on loopback only (a scraper on the same host, or an operator's port-forward).
async fn guard_metrics(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let allowed = match &state.metrics_token {
        Some(t) => {
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            otlp::token_allowed(
                &[t.to_string()],
                otlp::bearer(auth).filter(|b| !b.is_empty()),
            )
        }
        None => peer.ip().is_loopback(),
    };
    if allowed {
        next.run(req).await
    } else {
        crate::api::ApiError(
            StatusCode::UNAUTHORIZED,
            "/metrics needs Authorization: Bearer <metrics token> (--metrics-token), or a loopback client when none is set".into(),
        )
        .into_response()
    }
}

fn http_router(state: AppState) -> Router {
    let otlp_routes = Router::new()
        .route("/v1/traces", post(otlp::http::traces))
        .route("/v1/metrics", post(otlp::http::metrics))
        .route("/v1/logs", post(otlp::http::logs))
        .layer(DefaultBodyLimit::max(state.otlp.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.otlp.clone(),
            otlp::http::admit,
        ));
    let api = Router::new()
        .route("/api/v1/sessions", get(crate::api::list_sessions))
        .route("/api/v1/sessions/{session_id}", get(crate::api::session))
        .route(
            "/api/v1/repos/{owner}/{repo}/commits/{sha}",
            get(crate::api::github::commit),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/pulls/{number}",
            get(crate::api::github::pull_request),
        )
        .route("/api/v1/deliveries", get(crate::api::github::deliveries))
        .route(
            "/api/v1/analytics/{metric}",
            get(crate::api::analytics::analytics),
        )
        .route("/api/v1/alerts", get(crate::api::analytics::alerts))
        .route(
            "/api/v1/repos/{owner}/{repo}/dora",
            get(crate::api::github::dora),
        )
        .route("/api/v1/dora", get(crate::api::github::dora_rollup))
        .route(
            "/api/v1/repos/{owner}/{repo}/pulls/{number}/report",
            get(crate::api::github::pull_report),
        )
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    let uploads = Router::new()
        .route("/api/v1/ci/uploads", post(crate::ci::upload::receive))
        .layer(DefaultBodyLimit::max(state.uploads.uploads.max_bytes));
    let records = Router::new()
        .route("/api/v1/deployments", post(crate::api::records::deployment))
        .route("/api/v1/incidents", post(crate::api::records::incident))
        .layer(DefaultBodyLimit::max(crate::api::records::MAX_BODY));
    let admin = Router::new()
        .route(
            "/api/v1/admin/deliveries/replay",
            post(crate::api::admin::replay),
        )
        .route("/api/v1/admin/relink", post(crate::api::admin::relink))
        .route(
            "/api/v1/admin/backfill",
            post(crate::api::admin::backfill).get(crate::api::admin::backfills),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn_with_state(
            state.admin.clone(),
            crate::api::admin::require_admin,
        ));
    let webhooks = Router::new()
        .route("/webhooks/github", post(crate::github::webhook::receive))
        .layer(DefaultBodyLimit::max(crate::github::webhook::MAX_BODY));
    Router::new()
        .merge(otlp_routes)
        .merge(webhooks)
        .merge(uploads)
        .merge(records)
        .merge(admin)
        .merge(api)
        .route("/healthz", get(crate::api::healthz))
        .route("/readyz", get(crate::api::readyz))
        .route(
            "/metrics",
            get(crate::api::metrics)
                .layer(middleware::from_fn_with_state(state.clone(), guard_metrics)),
        )
        .with_state(state.clone())
        .merge(crate::dashboard::router(crate::dashboard::DashboardState {
            api: state.api.clone(),
            tokens: state.tokens.clone(),
            setup: state.setup,
            webhook_secrets: state.webhooks.webhook_secrets.clone(),
            app: state.uploads.app.clone(),
        }))
        .merge(crate::dashboard::app_setup::router(state.app_setup.clone()))
}

/// Refuses to listen beyond loopback with ingest or reads open, unless asked to, and
/// says in one line what is open to whom.
fn check_exposure(args: &ServeArgs) -> anyhow::Result<()> {
    let exposed = !args.http_listen.ip().is_loopback() || !args.grpc_listen.ip().is_loopback();
    let open: Vec<&str> = [
        (
            args.ingest_tokens.is_empty(),
            "ingest (OTLP, deployments, incidents)",
        ),
        (
            args.read_tokens.is_empty(),
            "reads (the query API, gRPC reports)",
        ),
    ]
    .into_iter()
    .filter_map(|(open, what)| open.then_some(what))
    .collect();
    if exposed && !open.is_empty() && !args.allow_unauthenticated {
        anyhow::bail!(
            "refusing to listen on {} / {} with {} open to anyone who reaches them: set --ingest-token and --read-token, or pass --allow-unauthenticated",
            args.http_listen,
            args.grpc_listen,
            open.join(" and ")
        );
    }
    let who = if exposed {
        "anyone who reaches the ports"
    } else {
        "local processes"
    };
    let scope = |tokens_empty: bool| if tokens_empty { who } else { "token holders" };
    tracing::info!(
        "open to: ingest {}; reads {}; webhooks signed deliveries only; /metrics {}; admin {}",
        scope(args.ingest_tokens.is_empty()),
        scope(args.read_tokens.is_empty()),
        if args.metrics_token.is_some() {
            "token holders"
        } else {
            "loopback clients"
        },
        if args.admin_tokens.is_empty() {
            "loopback clients"
        } else {
            "token holders"
        },
    );
    Ok(())
}

/// After an upgrade whose link rules changed, queues every session to be linked again;
/// the publisher works through the queue in the background (progress in the log and as
/// `tracelink_link_queue_sessions` on `/metrics`). On the writer's connection, before
/// the writer task takes it.
async fn relink_on_new_rules(conn: &mut store::Conn) -> anyhow::Result<()> {
    let version = crate::graph::links::RULES_VERSION;
    match conn
        .relink_on_new_rules(version, crate::time::now_ns())
        .await
        .context("checking the link rules version")?
    {
        Some(c) if c.queued > 0 => tracing::info!(
            from = c.from,
            to = version,
            sessions = c.queued,
            "the link rules changed: linking every session again in the background"
        ),
        _ => {}
    }
    Ok(())
}

/// Says once, at start-up, which models of the stored sessions have no price: their
/// sessions' cost stays unknown until `--price-table` names them.
async fn warn_unpriced_models(db: &Db, prices: &PriceTable) {
    match db.token_models().await {
        Ok(models) => {
            let unpriced = prices.unpriced(models.iter().map(String::as_str));
            if !unpriced.is_empty() {
                tracing::warn!(
                    "stored sessions used models without a price: {}; their cost is unknown unless the agent reported one (add them with --price-table)",
                    unpriced.join(", ")
                );
            }
        }
        Err(e) => tracing::warn!("reading the stored sessions' models: {e}"),
    }
}

impl Server {
    /// Opens the database, applies migrations, binds both listeners and starts serving.
    pub async fn start(args: &ServeArgs) -> anyhow::Result<Server> {
        let prices = PriceTable::configured(args.price_table.as_deref())?;
        let pseudonyms = if args.pseudonymize_users {
            Some(Arc::new(crate::pseudonym::Pseudonyms::from_secret(
                args.secret_key.as_ref().map(|s| s.0.as_str()),
            )?))
        } else {
            None
        };
        let mut identities = match &args.identities {
            Some(p) => crate::graph::identities::Identities::load(p)?,
            None => Default::default(),
        };
        if let Some(p) = &pseudonyms {
            identities = identities.pseudonymized(p);
        }
        let mut store = store::open(&args.db).await?;
        let app_keys = crate::github::manifest::AppKeys::from_secret(
            args.secret_key.as_ref().map(|s| s.0.as_str()),
        );
        let mut secrets: Vec<String> = args.webhook_secrets.iter().map(|s| s.0.clone()).collect();
        // Flags name the App, else the one created on /setup/app, stored sealed.
        let app_config = match args.github_app()? {
            Some(cfg) => Some(cfg),
            None => match store.db.github_app_stored().await? {
                Some(stored) => {
                    let keys = app_keys.as_ref().with_context(|| {
                        format!(
                            "the GitHub App {} created on /setup/app is stored encrypted: start tracelink with the TRACELINK_SECRET_KEY it was created under",
                            stored.slug
                        )
                    })?;
                    let (cfg, secret) = keys.open(&stored, &args.github.github_api_url)?;
                    tracing::info!(app = %stored.slug, "using the GitHub App created on /setup/app");
                    if !secrets.contains(&secret) {
                        secrets.push(secret);
                    }
                    Some(cfg)
                }
                None => None,
            },
        };
        let app_configured = app_config.is_some();
        let webhook_secrets: crate::github::webhook::WebhookSecrets =
            Arc::new(std::sync::RwLock::new(secrets));
        let github = match app_config {
            Some(cfg) => Some(Arc::new(crate::github::app::GithubApp::new(&cfg)?)),
            None => {
                tracing::info!(
                    "no GitHub App configured (--github-app-id): reports are served by the API and CLI only"
                );
                None
            }
        };
        let app_slot = crate::github::app::AppSlot::new(github.clone());
        if args.sync_teams {
            let Some(app) = &github else {
                anyhow::bail!(
                    "--sync-teams reads team membership through the GitHub App: set --github-app-id and its private key"
                );
            };
            let members = crate::github::teams::sync(
                app,
                &store.db,
                &mut store.writer,
                crate::time::now_ns(),
            )
            .await?;
            identities = identities.with_github_teams(&members);
        }
        let reports = Arc::new(crate::impact::ReportContext {
            prices: prices.clone(),
            links: crate::graph::links::LinkConfig {
                grace_ns: i64::try_from(args.link_grace_secs)
                    .unwrap_or(i64::MAX / 1_000_000_000)
                    .saturating_mul(1_000_000_000),
                identities,
            },
            incident_environment: args.incident_environment.clone(),
            comment_people: args.comment_people,
            comment_cost: args.comment_cost,
            zone: args.timezone,
        });
        warn_unpriced_models(&store.db, &prices).await;
        relink_on_new_rules(&mut store.writer).await?;
        if let Some(n) = crate::impact::analytics::on_new_basis(&mut store.writer, &reports).await?
        {
            tracing::info!(
                sessions = n,
                "the identities file or the price table changed: analytics counts every session again"
            );
        }
        let telemetry = Arc::new(Telemetry::default());
        let (sessions_tx, sessions_rx) = tokio::sync::mpsc::channel(1024);
        let extra_writer = store.connect().await?;
        let processor_conn = store.connect().await?;
        // The backfill worker's (used with a GitHub App) and the admin backfill routes'.
        let backfill_conn = store.connect().await?;
        let backfill_admin_conn = store.connect().await?;
        let lease_conn = store.connect().await?;
        let analytics = crate::impact::analytics::Refresher::new(
            store.connect().await?,
            store.db.clone(),
            reports.clone(),
        );
        let webhook = match &args.alert_webhook {
            Some(url) => Some(crate::alerting::Webhook::new(url)?),
            None => None,
        };
        let alert_conn = match webhook {
            Some(_) => Some(store.connect().await?),
            None => None,
        };
        let replica =
            crate::replica::Replica::new(std::time::Duration::from_secs(args.replica_lease.max(1)));
        tracing::debug!(replica = %replica.id, "replica id");
        let pruner_conn = match args.retain_raw.0 {
            Some(_) => Some(store.connect().await?),
            None => None,
        };
        let (writer, writer_task) = store::writer::spawn_with_events(
            store.writer,
            args.queue_capacity.max(1),
            telemetry.clone(),
            Some(sessions_tx),
        );
        let ingest = Ingest {
            writer: writer.clone(),
            telemetry: telemetry.clone(),
            pseudonyms: pseudonyms.clone(),
        };
        let tokens: Arc<Vec<String>> =
            Arc::new(args.ingest_tokens.iter().map(|s| s.0.clone()).collect());
        let read_tokens: Arc<Vec<String>> =
            Arc::new(args.read_tokens.iter().map(|s| s.0.clone()).collect());
        check_exposure(args)?;
        if webhook_secrets.read().is_ok_and(|s| s.is_empty()) {
            tracing::warn!(
                "no webhook secret is configured (--webhook-secret): every GitHub delivery will be refused"
            );
        }
        let (stop, stopped) = watch::channel(false);
        let alert_settings = crate::metrics::alerts::Settings {
            mads: args.alert_mads,
            min_usd: args.alert_min_usd,
            people: args.people == crate::config::OnOff::On,
        };
        let (alerts_posted, alert_task) = match (alert_conn, webhook) {
            (Some(conn), Some(webhook)) => {
                let (rounds, task) = crate::alerting::spawn(
                    conn,
                    analytics.clone(),
                    reports.clone(),
                    alert_settings,
                    webhook,
                    replica.clone(),
                    stopped.clone(),
                );
                (Some(rounds), Some(task))
            }
            _ => (None, None),
        };
        let analytics_task = analytics.clone().spawn(stopped.clone());
        let (metrics_lease, lease_task) =
            crate::replica::spawn_metrics_lease(lease_conn, replica.clone(), stopped.clone()).await;
        let (pruned, pruner) = match (pruner_conn, args.retain_raw.0) {
            (Some(conn), Some(retain)) => {
                let (rounds, task) =
                    crate::retention::spawn(conn, retain, replica.clone(), stopped.clone());
                (Some(rounds), Some(task))
            }
            _ => (None, None),
        };
        // The processor stops last, after the writer committed everything acknowledged.
        let (stop_processor, processor_stopped) = watch::channel(false);
        let debounce = std::time::Duration::from_secs(args.comment_debounce);
        let (publisher, publisher_task) = crate::publish::spawn(
            crate::publish::Publisher {
                ctx: reports.clone(),
                app: app_slot.clone(),
                debounce,
                budget: Default::default(),
                replica: replica.clone(),
            },
            extra_writer,
            store.db.clone(),
            sessions_rx,
            processor_stopped.clone(),
        );
        // Backfills run while the listeners do; each stops after the page in hand and
        // resumes at the next start.
        let (backfiller, backfill_task) = match &github {
            Some(app) => {
                let (handle, task) = crate::github::backfill::spawn(
                    app.clone(),
                    backfill_conn,
                    store.db.clone(),
                    crate::github::backfill::BackfillConfig {
                        incident_label: args.incident_label.clone(),
                        incident_environment: args.incident_environment.clone(),
                        links: reports.links.clone(),
                        debounce,
                        publisher: Some(publisher.wake.clone()),
                        pseudonyms: pseudonyms.clone(),
                    },
                    stopped.clone(),
                );
                (Some(handle), Some(task))
            }
            None => (None, None),
        };
        let (processor, processor_task) = crate::github::processor::spawn(
            processor_conn,
            crate::github::processor::ProcessorConfig {
                incident_label: args.incident_label.clone(),
                debounce,
                publisher: publisher.wake.clone(),
                db: store.db.clone(),
                links: reports.links.clone(),
                incident_environment: args.incident_environment.clone(),
                backfill: backfiller.as_ref().map(|b| b.wake.clone()),
                replica,
            },
            processor_stopped,
        );
        let queue_capacity = args.queue_capacity.max(1);
        let upload_cfg = Arc::new(crate::ci::upload::UploadConfig::from_args(args)?);
        // One bound on OTLP body bytes in flight, over both transports.
        let body_budget = otlp::budget::BodyBudget::new(args.max_body_bytes);
        let state = AppState {
            otlp: HttpState {
                ingest: ingest.clone(),
                tokens: tokens.clone(),
                max_body_bytes: args.max_body_bytes,
                in_flight: body_budget.clone(),
            },
            webhooks: WebhookState {
                writer: writer.clone(),
                telemetry: telemetry.clone(),
                webhook_secrets: webhook_secrets.clone(),
                incident_label: Arc::from(args.incident_label.as_str()),
                processor: processor.clone(),
                pseudonyms,
            },
            uploads: UploadState {
                uploads: upload_cfg.clone(),
                writer: writer.clone(),
                db: store.db.clone(),
                reports: reports.clone(),
                publisher: publisher.wake.clone(),
                app: app_slot.clone(),
            },
            records: crate::api::records::RecordsState {
                db: store.db.clone(),
                writer: writer.clone(),
                processor: processor.wake.clone(),
                tokens: tokens.clone(),
                uploads: upload_cfg,
            },
            admin: crate::api::admin::AdminState {
                tokens: Arc::new(args.admin_tokens.iter().map(|s| s.0.clone()).collect()),
                writer: writer.clone(),
                processor: processor.wake.clone(),
                publisher: publisher.wake.clone(),
                backfill: crate::api::admin::BackfillAdmin::new(
                    backfill_admin_conn,
                    store.db.clone(),
                    backfiller.as_ref().map(|b| b.wake.clone()),
                ),
            },
            api: ApiState {
                analytics,
                db: store.db.clone(),
                prices: Arc::new(prices),
                reports: reports.clone(),
                telemetry,
                writer,
                queue_capacity,
                people: args.people == crate::config::OnOff::On,
                metrics_lease,
                stopping: stopped.clone(),
                alerts: alert_settings,
                org_figures: Default::default(),
            },
            tokens: read_tokens.clone(),
            metrics_token: args.metrics_token.as_ref().map(|t| Arc::from(t.0.as_str())),
            setup: crate::dashboard::SetupConfig {
                identities: args.identities.is_some(),
                ingest_tokens: !args.ingest_tokens.is_empty(),
            },
            app_setup: crate::dashboard::app_setup::AppSetupState {
                location: args.db.clone(),
                keys: app_keys,
                api_url: args.github.github_api_url.clone(),
                web_url: args.github.github_web_url.clone(),
                public_url: args.public_url.clone(),
                admin_tokens: Arc::new(args.admin_tokens.iter().map(|s| s.0.clone()).collect()),
                configured: Arc::new(std::sync::atomic::AtomicBool::new(app_configured)),
                webhook_secrets: webhook_secrets.clone(),
                app: app_slot.clone(),
            },
        };

        let reports_ctx = reports;
        let http_listener = TcpListener::bind(args.http_listen)
            .await
            .with_context(|| format!("binding the HTTP listener on {}", args.http_listen))?;
        let grpc_listener = TcpListener::bind(args.grpc_listen)
            .await
            .with_context(|| format!("binding the gRPC listener on {}", args.grpc_listen))?;
        let http_addr = http_listener.local_addr()?;
        let grpc_addr = grpc_listener.local_addr()?;

        let http = tokio::spawn(crate::listen::serve(
            http_listener,
            http_router(state),
            crate::listen::Limits {
                max_connections: args.max_connections,
                header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
                request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
            },
            stopped.clone(),
        ));
        let mut on_stop = stopped;
        let routes = otlp::grpc::router(ingest, tokens.clone(), body_budget).add_service(
            crate::api::grpc::Reports {
                readers: store.db.clone(),
                ctx: reports_ctx,
                tokens: read_tokens,
            }
            .server(),
        );
        let header_timeout = std::time::Duration::from_secs(args.header_timeout_secs.max(1));
        // Capped like the HTTP listener: a connection sends its HTTP/2 preface within the
        // header timeout, then answers keep-alive pings (one per header timeout, each
        // answered within another) or is closed; at the cap the one silent longest makes
        // room (src/listen/grpc.rs).
        let grpc_incoming = crate::listen::grpc::incoming(
            grpc_listener,
            crate::listen::grpc::GrpcLimits {
                max_connections: args.max_grpc_connections,
                handshake_timeout: header_timeout,
            },
            on_stop.clone(),
        );
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                // A stalled request holds its share of the body budget until answered.
                .timeout(std::time::Duration::from_secs(
                    args.request_timeout_secs.max(1),
                ))
                .http2_keepalive_interval(Some(header_timeout))
                .http2_keepalive_timeout(Some(header_timeout))
                .add_routes(routes)
                .serve_with_incoming_shutdown(grpc_incoming, async move {
                    let _ = on_stop.wait_for(|s| *s).await;
                }),
        );
        Ok(Server {
            grpc_addr,
            http_addr,
            db: store.db,
            db_location: args.db.clone(),
            deliveries_applied: processor.finished.clone(),
            processor_handle: processor,
            reports_published: publisher.published.clone(),
            publisher,
            publisher_task,
            pruned,
            pruner,
            backfill: backfill_task,
            metrics_lease: lease_task,
            alert_task,
            analytics_task,
            alerts_posted,
            backfills_ended: backfiller.as_ref().map(|b| b.ended.clone()),
            stop,
            stop_processor,
            processor: processor_task,
            http,
            grpc,
            writer: writer_task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and waits until the writer has
    /// committed everything it acknowledged.
    /// Wakes the webhook processor (it also polls every few seconds).
    pub fn processor_wake(&self) {
        self.processor_handle.wake.notify_one();
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        // Idle keep-alive connections would hold a graceful shutdown forever: after the
        // grace period the listeners are dropped. A request cut off then was not
        // acknowledged; what reached the write queue is still committed below.
        let mut http = self.http;
        let mut grpc = self.grpc;
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            let h = (&mut http).await;
            let g = (&mut grpc).await;
            (h, g)
        })
        .await;
        match drained {
            Ok((h, g)) => {
                h.context("HTTP server task")??;
                g.context("gRPC server task")??;
            }
            Err(_) => {
                tracing::warn!(
                    "connections still open after {}s; closing them",
                    SHUTDOWN_GRACE.as_secs()
                );
                http.abort();
                grpc.abort();
                let _ = http.await;
                let _ = grpc.await;
            }
        }
        // Every writer handle lived in the servers' state, now dropped: the writer
        // drains its queue and ends.
        self.writer.await.context("writer task")?;
        if let Some(p) = self.pruner {
            p.await.context("pruner task")?;
        }
        if let Some(b) = self.backfill {
            b.await.context("backfill task")?;
        }
        self.metrics_lease.await.context("metrics lease task")?;
        if let Some(t) = self.alert_task {
            t.await.context("alert task")?;
        }
        self.analytics_task.await.context("analytics task")?;
        // The processor applies what the writer committed, then stops.
        let _ = self.stop_processor.send(true);
        self.publisher_task.await.context("report publisher task")?;
        self.processor.await.context("webhook processor task")?;
        self.db.close().await;
        // The file alone is the database: nothing left in the write-ahead log.
        if let Some(path) = self.db_location.file()
            && let Err(e) = crate::store::backup::checkpoint(path).await
        {
            tracing::warn!("checkpointing on shutdown: {e:#}");
        }
        Ok(())
    }
}
