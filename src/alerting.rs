//! `--alert-webhook URL`: the alerts `GET /api/v1/alerts` raises today are posted as
//! Slack-compatible JSON (`{"text": …}`), each once. One replica at a time posts (the
//! `alerts` lease); each alert is claimed in the database before its post and marked
//! sent after it, so a restart or another replica does not post it again. A failed post
//! is retried (three tries a round, a round a minute) until it goes through.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::impact::ReportContext;
use crate::metrics::alerts::{Alert, Settings};
use crate::replica::Replica;
use crate::store::alerts::AlertKey;
use crate::store::{Conn, Db};
use crate::time::now_ns;

/// The lease naming the replica that posts alerts.
pub const LEASE: &str = "alerts";
/// How often the day's alerts are judged and posted.
const EVERY: Duration = Duration::from_secs(60);
/// Posts per alert per round, and the pause before each retry.
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];
/// A claim older than this was left by a replica that died mid-post.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(300);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<bytes::Bytes>>;

/// Where alerts go: a checked `http(s)://` URL and a client for it.
#[derive(Clone)]
pub struct Webhook {
    url: hyper::Uri,
    client: HttpsClient,
}

impl Webhook {
    /// `--alert-webhook`: an `http://` or `https://` URL, or a clear error.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("--alert-webhook {url:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some(),
            "--alert-webhook {url:?} is not an http:// or https:// URL"
        );
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .context("reading the system's root certificates for --alert-webhook")?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            url: uri,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Posts one message; `Err` says why it did not go through.
    async fn post(&self, text: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "text": text }).to_string();
        let req = hyper::Request::post(self.url.clone())
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body)))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .context("no answer within 10 s")??;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        let body = body.map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned());
        anyhow::bail!("answered {status}: {}", body.unwrap_or_default())
    }
}

/// The message an alert posts.
pub fn text(a: &Alert) -> String {
    let level = serde_json::to_value(a.level).unwrap_or_default();
    format!(
        "[tracelink] {}: {}",
        level.as_str().unwrap_or("alert"),
        a.message
    )
}

/// Judges and posts the day's alerts now, then every minute while this replica holds
/// the lease, until `stop`. `rounds` counts finished rounds (tests wait on it).
pub fn spawn(
    mut conn: Conn,
    analytics: crate::impact::analytics::Refresher,
    ctx: Arc<ReportContext>,
    settings: Settings,
    webhook: Webhook,
    replica: Replica,
    mut stop: watch::Receiver<bool>,
) -> (watch::Receiver<u64>, JoinHandle<()>) {
    let (rounds_tx, rounds) = watch::channel(0u64);
    let hold_ns = i64::try_from((EVERY * 2 + replica.lease).as_nanos()).unwrap_or(i64::MAX);
    let db = analytics.db().clone();
    let task = tokio::spawn(async move {
        loop {
            let now = now_ns();
            match conn
                .hold_lease(LEASE, &replica.id, now, now.saturating_add(hold_ns))
                .await
            {
                Ok(true) => {
                    if let Err(e) =
                        round(&mut conn, &db, &analytics, &ctx, &settings, &webhook).await
                    {
                        tracing::warn!(error = %format!("{e:#}"), "posting alerts failed; retrying next round");
                        if let Err(e) = conn.recover().await {
                            tracing::warn!(error = %format!("{e:#}"), "the database cannot be reached");
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "taking the alerts lease failed");
                    let _ = conn.recover().await;
                }
            }
            rounds_tx.send_modify(|r| *r += 1);
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stop.changed() => break,
            }
        }
        if let Err(e) = conn.release_lease(LEASE, &replica.id).await {
            tracing::warn!(error = %e, "giving the alerts lease up");
        }
    });
    (rounds, task)
}

/// One round: today's alerts, each posted unless it was.
async fn round(
    conn: &mut Conn,
    db: &Db,
    analytics: &crate::impact::analytics::Refresher,
    ctx: &ReportContext,
    settings: &Settings,
    webhook: &Webhook,
) -> anyhow::Result<()> {
    // Judged on every session acknowledged so far.
    analytics.before_answering().await?;
    let now = now_ns();
    let today = crate::impact::analytics::alerts_at(db, ctx, settings, now).await?;
    let stale = now - i64::try_from(CLAIM_TIMEOUT.as_nanos()).unwrap_or(i64::MAX);
    for a in &today.alerts {
        let names = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let (kind, scope, level) = (
            names(serde_json::to_value(a.kind)?),
            names(serde_json::to_value(a.scope)?),
            names(serde_json::to_value(a.level)?),
        );
        let key = AlertKey {
            day: &today.day,
            kind: &kind,
            scope: &scope,
            key: &a.key,
            level: &level,
        };
        if !conn.claim_alert(key, now, stale).await? {
            continue;
        }
        let message = text(a);
        let mut result = webhook.post(&message).await;
        for pause in BACKOFF {
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(pause).await;
            result = webhook.post(&message).await;
        }
        match result {
            Ok(()) => conn.alert_sent(key, now_ns()).await?,
            Err(e) => {
                let e = format!("{e:#}");
                tracing::warn!(
                    alert = message,
                    error = e,
                    "posting an alert failed; retrying next round"
                );
                conn.alert_failed(key, &e).await?;
            }
        }
    }
    Ok(())
}
