//! The running service: both listeners, the writer, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServeArgs;
use crate::github::processor::Processor;
use crate::otlp::{self, Ingest};
use crate::pricing::PriceTable;
use crate::store;
use crate::telemetry::Telemetry;

/// How long in-flight requests and idle connections get to finish at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What every HTTP handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ingest: Ingest,
    pub readers: SqlitePool,
    pub prices: Arc<PriceTable>,
    pub reports: Arc<crate::report::ReportContext>,
    pub telemetry: Arc<Telemetry>,
    pub tokens: Arc<Vec<String>>,
    pub max_body_bytes: usize,
    pub queue_capacity: usize,
    pub webhook_secrets: Arc<Vec<String>>,
    pub incident_label: Arc<str>,
    pub processor: Processor,
    pub uploads: Arc<crate::ci::upload::UploadConfig>,
}

/// A started tracelink: its bound addresses and the means to stop it.
pub struct Server {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub readers: SqlitePool,
    /// How many webhook deliveries have been applied to the graph.
    pub deliveries_applied: watch::Receiver<u64>,
    /// How many reports have been published (or found unchanged).
    pub reports_published: watch::Receiver<u64>,
    pub publisher: crate::report::publish::PublisherHandle,
    publisher_task: JoinHandle<()>,
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

fn http_router(state: AppState) -> Router {
    let otlp_routes = Router::new()
        .route("/v1/traces", post(otlp::http::traces))
        .route("/v1/metrics", post(otlp::http::metrics))
        .route("/v1/logs", post(otlp::http::logs))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));
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
            "/api/v1/repos/{owner}/{repo}/dora",
            get(crate::api::github::dora),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/pulls/{number}/report",
            get(crate::api::github::pull_report),
        )
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    let uploads = Router::new()
        .route("/api/v1/ci/uploads", post(crate::ci::upload::receive))
        .layer(DefaultBodyLimit::max(state.uploads.max_bytes));
    let webhooks = Router::new()
        .route("/webhooks/github", post(crate::github::webhook::receive))
        .layer(DefaultBodyLimit::max(crate::github::webhook::MAX_BODY));
    Router::new()
        .merge(otlp_routes)
        .merge(webhooks)
        .merge(uploads)
        .merge(api)
        .route("/healthz", get(crate::api::healthz))
        .route("/metrics", get(crate::api::metrics))
        .with_state(state)
}

impl Server {
    /// Opens the database, applies migrations, binds both listeners and starts serving.
    pub async fn start(args: &ServeArgs) -> anyhow::Result<Server> {
        let prices = match &args.price_table {
            Some(p) => PriceTable::load(p)?,
            None => PriceTable::default(),
        };
        let identities = match &args.identities {
            Some(p) => crate::graph::identities::Identities::load(p)?,
            None => Default::default(),
        };
        let reports = Arc::new(crate::report::ReportContext {
            prices: prices.clone(),
            links: crate::graph::links::LinkConfig {
                grace_ns: i64::try_from(args.link_grace_secs)
                    .unwrap_or(i64::MAX / 1_000_000_000)
                    .saturating_mul(1_000_000_000),
                identities,
            },
        });
        let store = store::open(&args.db).await?;
        let telemetry = Arc::new(Telemetry::default());
        let (sessions_tx, sessions_rx) = tokio::sync::mpsc::channel(1024);
        let (writer, writer_task) = store::writer::spawn_with_events(
            store.writer,
            args.queue_capacity.max(1),
            telemetry.clone(),
            Some(sessions_tx),
        );
        let ingest = Ingest {
            writer,
            telemetry: telemetry.clone(),
        };
        let tokens: Arc<Vec<String>> =
            Arc::new(args.ingest_tokens.iter().map(|s| s.0.clone()).collect());
        if args.webhook_secrets.is_empty() {
            tracing::warn!(
                "no webhook secret is configured (--webhook-secret): every GitHub delivery will be refused"
            );
        }
        let (stop, stopped) = watch::channel(false);
        // The processor stops last, after the writer committed everything acknowledged.
        let (stop_processor, processor_stopped) = watch::channel(false);
        let github = match args.github_app()? {
            Some(cfg) => Some(Arc::new(crate::github::app::GithubApp::new(&cfg)?)),
            None => {
                tracing::info!(
                    "no GitHub App configured (--github-app-id): reports are served by the API and CLI only"
                );
                None
            }
        };
        let debounce = std::time::Duration::from_secs(args.comment_debounce);
        let (publisher, publisher_task) = crate::report::publish::spawn(
            crate::report::publish::Publisher {
                ctx: reports.clone(),
                app: github,
                debounce,
                budget: Default::default(),
            },
            store::connect(&args.db).await?,
            store.readers.clone(),
            sessions_rx,
            processor_stopped.clone(),
        );
        let (processor, processor_task) = crate::github::processor::spawn(
            store::connect(&args.db).await?,
            crate::github::processor::ProcessorConfig {
                incident_label: args.incident_label.clone(),
                debounce,
                publisher: publisher.wake.clone(),
            },
            processor_stopped,
        );
        let state = AppState {
            ingest: ingest.clone(),
            readers: store.readers.clone(),
            prices: Arc::new(prices),
            reports: reports.clone(),
            telemetry,
            tokens: tokens.clone(),
            max_body_bytes: args.max_body_bytes,
            queue_capacity: args.queue_capacity.max(1),
            webhook_secrets: Arc::new(args.webhook_secrets.iter().map(|s| s.0.clone()).collect()),
            incident_label: Arc::from(args.incident_label.as_str()),
            processor: processor.clone(),
            uploads: Arc::new(crate::ci::upload::UploadConfig::from_args(args)?),
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

        let mut on_stop = stopped.clone();
        let http = tokio::spawn(
            axum::serve(http_listener, http_router(state))
                .with_graceful_shutdown(async move {
                    let _ = on_stop.wait_for(|s| *s).await;
                })
                .into_future(),
        );
        let mut on_stop = stopped;
        let routes = otlp::grpc::router(ingest, tokens.clone(), args.max_body_bytes).add_service(
            crate::api::grpc::Reports {
                readers: store.readers.clone(),
                ctx: reports_ctx,
                tokens,
            }
            .server(),
        );
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(grpc_listener)
                        .with_nodelay(Some(true)),
                    async move {
                        let _ = on_stop.wait_for(|s| *s).await;
                    },
                ),
        );
        Ok(Server {
            grpc_addr,
            http_addr,
            readers: store.readers,
            deliveries_applied: processor.finished,
            reports_published: publisher.published.clone(),
            publisher,
            publisher_task,
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
        // The processor applies what the writer committed, then stops.
        let _ = self.stop_processor.send(true);
        self.publisher_task.await.context("report publisher task")?;
        self.processor.await.context("webhook processor task")?;
        self.readers.close().await;
        Ok(())
    }
}
