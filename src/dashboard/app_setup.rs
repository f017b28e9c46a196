//! `/setup/app`: creating the GitHub App from its manifest, in the browser.
//!
//! 1. `GET /setup/app`: a form (the admin token when `--admin-token` is set, else
//!    loopback clients only; an organisation to own the App; the URL GitHub reaches
//!    tracelink at).
//! 2. `POST /setup/app`: a page whose button posts the manifest to GitHub
//!    (`--github-web-url`), with a `state` this server signed.
//! 3. GitHub sends the person back to `GET /setup/app/callback?code=…&state=…`; the
//!    code is exchanged for the App's credentials (`POST /app-manifests/{code}/conversions`
//!    on `--github-api-url`), which are stored sealed under `TRACELINK_SECRET_KEY`.
//!    Webhooks signed with the new App's secret are accepted, and reports posted as the
//!    App, at once; other replicas read it from the database at their next start.
//!
//! Closed once an App is configured (by flags, or created here).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::page::escape;
use crate::github::manifest::{self, AppKeys};
use crate::github::webhook::WebhookSecrets;
use crate::store::{Conn, Location};

/// What the setup flow needs.
#[derive(Clone)]
pub struct AppSetupState {
    pub location: Location,
    /// From `TRACELINK_SECRET_KEY` (`None`: not set, and nothing can be stored).
    pub keys: Option<AppKeys>,
    pub api_url: String,
    pub web_url: String,
    /// `--public-url`.
    pub public_url: Option<String>,
    pub admin_tokens: Arc<Vec<String>>,
    /// An App is configured: by flags, stored before this start, or created here.
    pub configured: Arc<AtomicBool>,
    pub webhook_secrets: WebhookSecrets,
    /// Set when the App is created: this server posts as it from then on.
    pub app: crate::github::app::AppSlot,
}

pub fn router(state: AppSetupState) -> Router {
    let origin = origin(&state.web_url);
    Router::new()
        .route("/setup/app", get(form).post(post_manifest))
        .route("/setup/app/callback", get(callback))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let csp = format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self' {origin}; \
                 frame-ancestors 'none'; base-uri 'none'"
            );
            async move {
                let mut resp = next.run(req).await;
                if let Ok(v) = HeaderValue::from_str(&csp) {
                    resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
                }
                resp.headers_mut()
                    .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
                resp
            }
        }))
        .with_state(state)
}

/// `https://github.example.com` of `https://github.example.com/…`.
fn origin(url: &str) -> String {
    ["https://", "http://"]
        .iter()
        .find_map(|scheme| {
            let rest = url.strip_prefix(scheme)?;
            let host = rest.split('/').next().filter(|h| !h.is_empty())?;
            Some(format!("{scheme}{host}"))
        })
        .unwrap_or_default()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        super::page::document(
            title,
            &format!("<main><h1>{}</h1>{body}</main>", escape(title)),
        ),
    )
        .into_response()
}

fn closed() -> Response {
    page(
        StatusCode::CONFLICT,
        "A GitHub App is configured",
        r#"<p>This tracelink already has its GitHub App (flags, or one created here), so this page is closed. See <a href="/setup">Setup</a>.</p>"#,
    )
}

fn no_secret_key() -> Response {
    page(
        StatusCode::CONFLICT,
        "Set TRACELINK_SECRET_KEY first",
        &format!(
            "<p>The App's private key and webhook secret are stored encrypted under a key derived from <code>TRACELINK_SECRET_KEY</code> (at least {} characters; keep it: every replica and every restart needs the same). Start tracelink with it, then open this page again.</p>",
            manifest::MIN_SECRET
        ),
    )
}

/// The URL GitHub reaches this server at: `--public-url`, else the one this page was
/// opened at (`X-Forwarded-Proto` and `Host`).
fn default_public_url(state: &AppSetupState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.public_url {
        return u.clone();
    }
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = h("x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{}", h("host").unwrap_or("localhost"))
}

async fn form(State(state): State<AppSetupState>, headers: HeaderMap) -> Response {
    if state.configured.load(Ordering::SeqCst) {
        return closed();
    }
    if state.keys.is_none() {
        return no_secret_key();
    }
    let admin = if state.admin_tokens.is_empty() {
        String::new()
    } else {
        r#"<label for="admin_token">Admin token (<code>--admin-token</code>)</label><input id="admin_token" name="admin_token" type="password" required>"#.to_string()
    };
    page(
        StatusCode::OK,
        "Create the GitHub App",
        &format!(
            r#"<form class="login" method="post" action="/setup/app">
<p>GitHub creates the App from tracelink's manifest (its permissions and events), then sends you back here; tracelink stores the App's key encrypted and accepts its webhooks.</p>
{admin}
<label for="organization">Organisation to own the App (empty: your account)</label><input id="organization" name="organization" placeholder="acme">
<label for="public_url">URL GitHub reaches tracelink at</label><input id="public_url" name="public_url" value="{}" required>
<button type="submit">Continue</button></form>"#,
            escape(&default_public_url(&state, &headers))
        ),
    )
}

#[derive(Debug, Deserialize)]
struct SetupForm {
    #[serde(default)]
    admin_token: String,
    #[serde(default)]
    organization: String,
    public_url: String,
}

async fn post_manifest(
    State(state): State<AppSetupState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<SetupForm>,
) -> Response {
    if state.configured.load(Ordering::SeqCst) {
        return closed();
    }
    let Some(keys) = &state.keys else {
        return no_secret_key();
    };
    let allowed = if state.admin_tokens.is_empty() {
        peer.ip().is_loopback()
    } else {
        crate::otlp::token_allowed(&state.admin_tokens, Some(f.admin_token.trim()))
            && !f.admin_token.trim().is_empty()
    };
    if !allowed {
        return page(
            StatusCode::UNAUTHORIZED,
            "Not allowed",
            "<p>Creating the App needs an admin token (<code>--admin-token</code>), or, when none is set, a browser on this machine.</p>",
        );
    }
    let bad = |m: String| {
        page(
            StatusCode::BAD_REQUEST,
            "Cannot create the App",
            &format!(
                r#"<p class="error" role="alert">{}</p><p><a href="/setup/app">Back</a></p>"#,
                escape(&m)
            ),
        )
    };
    let public = match manifest::public_url(&f.public_url) {
        Ok(u) => u,
        Err(e) => return bad(format!("{e:#}")),
    };
    let org = f.organization.trim();
    if !org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || org.len() > 39 {
        return bad(format!("{org:?} is not a GitHub organisation name"));
    }
    let m = match manifest::manifest(&public) {
        Ok(m) => m,
        Err(e) => return bad(format!("{e:#}")),
    };
    let web = state.web_url.trim_end_matches('/');
    let target = if org.is_empty() {
        format!("{web}/settings/apps/new")
    } else {
        format!("{web}/organizations/{org}/settings/apps/new")
    };
    let state_token = keys.state(crate::time::now_ns() / 1_000_000_000);
    page(
        StatusCode::OK,
        "Create the GitHub App",
        &format!(
            r#"<form class="login" id="to-github" method="post" action="{}?state={}">
<p>GitHub will show the App it is about to create (webhooks to <code>{}</code>). Confirm there; GitHub then sends you back here.</p>
<input type="hidden" name="manifest" value="{}">
<button type="submit">Create the App on GitHub</button></form>"#,
            escape(&target),
            escape(&state_token),
            escape(&format!("{public}/webhooks/github")),
            escape(&m.to_string()),
        ),
    )
}

#[derive(Debug, Deserialize)]
struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
}

async fn callback(State(state): State<AppSetupState>, Query(c): Query<Callback>) -> Response {
    if state.configured.load(Ordering::SeqCst) {
        return closed();
    }
    let Some(keys) = &state.keys else {
        return no_secret_key();
    };
    if !keys.state_valid(&c.state, crate::time::now_ns() / 1_000_000_000) {
        return page(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            r#"<p>It has expired (a setup lasts an hour) or was not started on this server. <a href="/setup/app">Start again</a>.</p>"#,
        );
    }
    let failed = |status: StatusCode, m: String| {
        tracing::warn!(error = %m, "creating the GitHub App from the manifest failed");
        page(
            status,
            "The App was not stored",
            &format!(
                r#"<p class="error" role="alert">{}</p><p><a href="/setup/app">Start again</a></p>"#,
                escape(&m)
            ),
        )
    };
    let conversion = match manifest::convert(&state.api_url, &c.code).await {
        Ok(v) => v,
        Err(e) => return failed(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    };
    let stored = match keys.seal(&conversion) {
        Ok(s) => s,
        Err(e) => return failed(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    };
    let saved = async {
        let mut conn = Conn::open(&state.location).await?;
        Ok::<_, anyhow::Error>(
            conn.store_github_app(&stored, crate::time::now_ns())
                .await?,
        )
    }
    .await;
    match saved {
        Ok(true) => {}
        Ok(false) => return closed(),
        Err(e) => {
            return failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storing the App: {e:#}"),
            );
        }
    }
    if let Some(secret) = conversion.webhook_secret.clone()
        && let Ok(mut secrets) = state.webhook_secrets.write()
    {
        secrets.push(secret);
    }
    state.configured.store(true, Ordering::SeqCst);
    // The stored App, read back as a start would: this server posts as it at once.
    let posting = match keys
        .open(&stored, &state.api_url)
        .and_then(|(cfg, _)| crate::github::app::GithubApp::new(&cfg))
    {
        Ok(app) => {
            state.app.set(Arc::new(app));
            true
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the GitHub App was stored but cannot be used until a restart");
            false
        }
    };
    tracing::info!(app = %conversion.slug, id = conversion.id, "GitHub App created from the manifest");
    page(
        StatusCode::OK,
        "The GitHub App is created",
        &format!(
            r#"<p id="created">tracelink stored <strong>{name}</strong> (App {id}); its key is encrypted in the database.</p>
<ol><li><a id="install" href="{install}">Install it on your repositories</a>: GitHub's deliveries are accepted from now on.</li>
<li>{posting}</li></ol>
<p><a href="/setup">Setup</a> shows when webhooks arrive.</p>"#,
            name = escape(&conversion.name),
            id = conversion.id,
            posting = if posting {
                "This server posts reports as the App from now on. Other replicas, backfills and team sync use it from their next start (they read the App from the database, with the same <code>TRACELINK_SECRET_KEY</code>)."
            } else {
                "Restart tracelink (every replica) so that it posts reports as the App; it reads the App from the database at start, with the same <code>TRACELINK_SECRET_KEY</code>."
            },
            install = escape(&format!(
                "{}/installations/new",
                conversion.html_url.trim_end_matches('/')
            )),
        ),
    )
}
