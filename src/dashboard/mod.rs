//! The web dashboard on the HTTP listener: server-rendered pages of the analytics the
//! API answers (the same questions, asked through [`crate::api::analytics::query`]),
//! charts drawn as SVG on the server, every table downloadable as CSV. Assets are
//! embedded in the binary: it works air-gapped.
//!
//! With read tokens configured, a person signs in once with one on `/login`; the
//! cookie holds a SHA-256 digest of the token (never the token), is `HttpOnly` and
//! `SameSite=Strict`. Pages are sent with a Content Security Policy that allows only
//! this server's own script and stylesheet.

pub mod app_setup;
mod chart;
mod page;
mod pull;

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::analytics::AnalyticsParams;
use crate::api::{ApiError, ApiState};
use crate::metrics::analytics::{Answer, Quality};
use page::{Range, escape, figure, raw_number, url_encode};

/// The sign-in cookie.
const COOKIE: &str = "tracelink_session";
/// How long a sign-in lasts: 30 days.
const COOKIE_MAX_AGE: u64 = 30 * 86_400;
/// Pull requests listed on one page.
const PULLS_LISTED: i64 = 200;
/// Lines drawn in one chart (the largest groups).
const CHART_LINES: usize = 6;

/// What the dashboard reads: the API's state and the read tokens.
#[derive(Clone)]
pub struct DashboardState {
    pub api: ApiState,
    /// Read tokens (none: open, as the API is).
    pub tokens: Arc<Vec<String>>,
    pub setup: SetupConfig,
    /// The webhook secrets (the App created on `/setup/app` adds one while it runs).
    pub webhook_secrets: crate::github::webhook::WebhookSecrets,
    /// The App (created on `/setup/app` while running, or configured at start).
    pub app: crate::github::app::AppSlot,
}

/// What the server was started with, as the Setup page reports it (never a secret).
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupConfig {
    pub identities: bool,
    pub ingest_tokens: bool,
}

/// What [`missing`] judges of the configuration, read when asked.
#[derive(Debug, Clone, Copy)]
pub struct Configured {
    pub webhook_secret: bool,
    pub github_app: bool,
    pub identities: bool,
}

/// The dashboard's routes, with their own state.
pub fn router(state: DashboardState) -> Router {
    let pages = Router::new()
        .route("/", get(overview))
        .route("/teams", get(teams))
        .route("/repos", get(repos))
        .route("/agents", get(agents))
        .route("/people", get(people))
        .route("/pulls", get(pulls))
        .route("/pulls/{owner}/{repo}/{number}", get(pull_page))
        .route("/alerts", get(alerts))
        .route("/setup", get(setup))
        .route("/export.csv", get(export))
        .layer(middleware::from_fn_with_state(state.clone(), signed_in));
    Router::new()
        .merge(pages)
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/assets/dashboard.js", get(script))
        .route("/assets/dashboard.css", get(stylesheet))
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

/// The security headers every dashboard response carries.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/dashboard.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/dashboard.css"),
    )
        .into_response()
}

/// The cookie value a read token signs in as.
fn session_value(token: &str) -> String {
    let digest = Sha256::digest(format!("tracelink dashboard session\0{token}").as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn cookie_of<'a>(req_headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    req_headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a request may read: no read tokens configured, or its cookie is a read
/// token's digest.
fn signed_in_with(state: &DashboardState, headers: &axum::http::HeaderMap) -> bool {
    if state.tokens.is_empty() {
        return true;
    }
    let digests: Vec<String> = state.tokens.iter().map(|t| session_value(t)).collect();
    crate::otlp::token_allowed(&digests, cookie_of(headers, COOKIE))
}

async fn signed_in(State(state): State<DashboardState>, req: Request, next: Next) -> Response {
    if signed_in_with(&state, req.headers()) {
        return next.run(req).await;
    }
    if req.uri().path() == "/export.csv" {
        return (StatusCode::UNAUTHORIZED, "sign in on /login first").into_response();
    }
    let next_path = req
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    Redirect::to(&format!("/login?next={}", url_encode(&next_path))).into_response()
}

/// Where to go after signing in: a path on this server only (never `//host`).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

#[derive(Debug, Deserialize, Default)]
struct LoginParams {
    next: Option<String>,
}

fn login_form(next: &str, error: Option<&str>) -> String {
    page::document(
        "Sign in",
        &format!(
            r#"<form class="login" method="post" action="/login"><h1>tracelink</h1>
<p>Enter a read token (<code>--read-token</code>) to open the dashboard. It is asked once; this browser keeps a signed-in cookie for 30 days.</p>
{}<label for="token">Read token</label><input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<input type="hidden" name="next" value="{}"><button type="submit">Sign in</button></form>"#,
            error.map_or(String::new(), |e| format!(
                r#"<p class="error" role="alert">{}</p>"#,
                escape(e)
            )),
            escape(next)
        ),
    )
}

async fn login_page(Query(p): Query<LoginParams>) -> Response {
    html(
        StatusCode::OK,
        login_form(&local_path(p.next.as_deref()), None),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login(State(state): State<DashboardState>, Form(f): Form<LoginForm>) -> Response {
    let next = local_path(f.next.as_deref());
    if state.tokens.is_empty() {
        return Redirect::to(&next).into_response();
    }
    if !crate::otlp::token_allowed(&state.tokens, Some(f.token.trim())) {
        return html(
            StatusCode::UNAUTHORIZED,
            login_form(&next, Some("That is not a read token of this server.")),
        );
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Strict",
        session_value(f.token.trim())
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A page that could not be drawn: the API's message, in the frame.
fn failed(state: &DashboardState, path: &str, e: ApiError) -> Response {
    let ApiError(status, message) = e;
    html(
        status,
        page::frame(
            path,
            "Cannot show this",
            state.api.people,
            &format!(r#"<p class="error" role="alert">{}</p>"#, escape(&message)),
        ),
    )
}

/// The filters in a page's URL.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct Filters {
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    day: Option<String>,
    team: Option<String>,
    repo: Option<String>,
    agent: Option<String>,
}

/// The range a page shows: the URL's, else the last 30 days (to the end of today, in
/// `--timezone`); per day up to 45 days, per week beyond.
fn range_of(state: &DashboardState, f: &Filters) -> Range {
    let zone = state.api.reports.zone;
    let today = zone.date_of(crate::time::now_ns());
    // A parameter given and not empty.
    let given = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let to = given(&f.to).unwrap_or_else(|| (today + chrono::Days::new(1)).to_string());
    let from = given(&f.from).unwrap_or_else(|| {
        chrono::NaiveDate::parse_from_str(&to, "%Y-%m-%d")
            .unwrap_or(today)
            .checked_sub_days(chrono::Days::new(30))
            .unwrap_or(today)
            .to_string()
    });
    let bucket = given(&f.bucket).unwrap_or_else(|| {
        let days = match (
            chrono::NaiveDate::parse_from_str(&from, "%Y-%m-%d"),
            chrono::NaiveDate::parse_from_str(&to, "%Y-%m-%d"),
        ) {
            (Ok(a), Ok(b)) => (b - a).num_days(),
            _ => 30,
        };
        if days > 45 { "week" } else { "day" }.to_string()
    });
    Range {
        from,
        to,
        bucket,
        team: given(&f.team),
        repo: given(&f.repo),
        agent: given(&f.agent),
    }
}

/// Quick ranges ending at the end of today.
fn presets(state: &DashboardState, r: &Range) -> Vec<(String, Range)> {
    let zone = state.api.reports.zone;
    let end = zone.date_of(crate::time::now_ns()) + chrono::Days::new(1);
    [(7, "day"), (30, "day"), (90, "week"), (365, "month")]
        .into_iter()
        .map(|(days, bucket)| {
            (
                format!("{days} days"),
                Range {
                    from: (end - chrono::Days::new(days)).to_string(),
                    to: end.to_string(),
                    bucket: bucket.to_string(),
                    ..r.clone()
                },
            )
        })
        .collect()
}

/// What the filters suggest: the identities file's teams and owned repositories, and
/// the agents tracelink recognises.
fn choices(state: &DashboardState) -> page::Choices {
    let ids = &state.api.reports.links.identities;
    let mut teams: Vec<String> = ids.team_names().into_iter().collect();
    teams.push(crate::graph::identities::UNASSIGNED.to_string());
    page::Choices {
        teams,
        repos: ids.owned_repos(),
        agents: crate::agents::AGENTS
            .iter()
            .map(|a| a.name.to_string())
            .collect(),
    }
}

/// Asks the analytics API's question `metric` by `group_by` over `r`.
async fn ask(
    state: &DashboardState,
    metric: &str,
    group_by: &str,
    r: &Range,
) -> Result<Answer, ApiError> {
    let question = question(state, metric, group_by, r)?;
    crate::api::analytics::answer(&state.api, &question).await
}

/// The API's question a page asks.
fn question(
    state: &DashboardState,
    metric: &str,
    group_by: &str,
    r: &Range,
) -> Result<crate::api::analytics::Question, ApiError> {
    let params = AnalyticsParams {
        group_by: Some(group_by.to_string()),
        from: Some(r.from.clone()),
        to: Some(r.to.clone()),
        bucket: Some(r.bucket.clone()),
        compare: None,
        // A page grouped by team shows every team: its team filter is left out.
        team: r.team.clone().filter(|_| group_by != "team"),
        repo: r.repo.clone(),
        agent: r.agent.clone(),
    };
    crate::api::analytics::query(&state.api, metric, &params)
}

/// Several metrics by one grouping: the rows of a table and of its CSV.
struct Grid {
    metrics: Vec<&'static str>,
    units: Vec<&'static str>,
    /// Keys in the first metric's order (largest first), then any others.
    keys: Vec<String>,
    /// `values[key][metric]` (`NaN`: no figure).
    values: Vec<Vec<f64>>,
    reasons: Vec<String>,
    /// The API's answers, one per metric: a page's chart of one of them reads it here
    /// instead of asking again.
    answers: Vec<Answer>,
}

impl Grid {
    /// The answer of one of its metrics.
    fn answer(&self, metric: &str) -> Result<&Answer, ApiError> {
        self.metrics
            .iter()
            .position(|m| *m == metric)
            .and_then(|i| self.answers.get(i))
            .ok_or_else(|| {
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the page asked no {metric}"),
                )
            })
    }
}

async fn grid(
    state: &DashboardState,
    group_by: &str,
    metrics: &[&'static str],
    r: &Range,
) -> Result<Grid, ApiError> {
    let mut g = Grid {
        metrics: metrics.to_vec(),
        units: Vec::new(),
        keys: Vec::new(),
        values: Vec::new(),
        reasons: Vec::new(),
        // Asked together: those summing the same rows take one scan.
        answers: {
            let questions = metrics
                .iter()
                .map(|m| question(state, m, group_by, r))
                .collect::<Result<Vec<_>, _>>()?;
            crate::api::analytics::answer_all(&state.api, &questions).await?
        },
    };
    for (mi, (m, a)) in metrics.iter().zip(&g.answers).enumerate() {
        g.units.push(a.unit);
        for reason in &a.reasons {
            let reason = format!("{m}: {reason}");
            if !g.reasons.contains(&reason) {
                g.reasons.push(reason);
            }
        }
        for group in &a.groups {
            let row = match g.keys.iter().position(|k| *k == group.key) {
                Some(i) => i,
                None => {
                    g.keys.push(group.key.clone());
                    g.values.push(vec![f64::NAN; metrics.len()]);
                    g.values.len() - 1
                }
            };
            g.values[row][mi] = group.total;
        }
    }
    Ok(g)
}

/// The export link of a grid: the same rows as CSV.
fn csv_link(group_by: &str, metrics: &[&str], r: &Range) -> String {
    format!(
        "/export.csv?group_by={}&metrics={}&{}",
        url_encode(group_by),
        url_encode(&metrics.join(",")),
        r.query()
    )
}

/// A grid as a table (the key column first; figures right-aligned, in their units).
fn grid_table(
    id: &str,
    caption: &str,
    key_name: &str,
    group_by: &str,
    g: &Grid,
    r: &Range,
) -> String {
    let mut head: Vec<&str> = vec![key_name];
    head.extend(g.metrics.iter().copied());
    let rows: Vec<Vec<String>> = g
        .keys
        .iter()
        .zip(&g.values)
        .map(|(k, vs)| {
            let mut row = vec![escape(k)];
            row.extend(vs.iter().zip(&g.units).map(|(v, u)| escape(&figure(*v, u))));
            row
        })
        .collect();
    let mut out = page::table(
        id,
        caption,
        &head,
        &rows,
        &csv_link(group_by, &g.metrics, r),
    );
    out.push_str(&page::reasons(&g.reasons));
    out
}

/// A chart of an answer's largest groups over its buckets.
fn group_chart(title: &str, a: &Answer) -> String {
    let labels: Vec<String> = a.series.iter().map(|p| p.start.clone()).collect();
    let lines: Vec<chart::Line<'_>> = a
        .groups
        .iter()
        .take(CHART_LINES)
        .map(|g| chart::Line {
            name: &g.key,
            values: g.series.iter().map(|p| p.value).collect(),
        })
        .collect();
    panel(&chart::lines(title, a.unit, &labels, &lines))
}

/// A chart of an answer's overall series.
fn total_chart(title: &str, a: &Answer) -> String {
    let labels: Vec<String> = a.series.iter().map(|p| p.start.clone()).collect();
    panel(&chart::lines(
        title,
        a.unit,
        &labels,
        &[chart::Line {
            name: title,
            values: a.series.iter().map(|p| p.value).collect(),
        }],
    ))
}

fn panel(inner: &str) -> String {
    format!(r#"<div class="panel">{inner}</div>"#)
}

fn quality_name(q: Quality) -> &'static str {
    match q {
        Quality::Exact => "exact",
        Quality::Estimated => "estimated",
        Quality::Partial => "partial",
    }
}

fn answer_tile(label: &str, id: &str, a: &Answer) -> String {
    page::tile(label, &figure(a.total, a.unit), quality_name(a.quality), id)
}

/// Draws a page from its parts, or the error that stopped it.
fn respond(
    state: &DashboardState,
    path: &str,
    title: &str,
    r: &Range,
    body: Result<String, ApiError>,
) -> Response {
    match body {
        Ok(body) => html(
            StatusCode::OK,
            page::frame(
                path,
                title,
                state.api.people,
                &format!(
                    "{}{body}",
                    page::filters(path, r, &presets(state, r), &choices(state))
                ),
            ),
        ),
        Err(e) => failed(state, path, e),
    }
}

async fn overview(State(state): State<DashboardState>, Query(f): Query<Filters>) -> Response {
    let r = range_of(&state, &f);
    let body = async {
        let (sessions, people, merged, waste, g) = tokio::try_join!(
            ask(&state, "sessions", "agent", &r),
            ask(&state, "active-people", "org", &r),
            ask(&state, "merged-prs", "agent", &r),
            ask(&state, "waste-share", "org", &r),
            grid(
                &state,
                "team",
                &["sessions", "cost", "cost-without-commit"],
                &r
            ),
        )?;
        let cost = g.answer("cost")?;
        let mut out = String::from(r#"<div class="tiles">"#);
        out.push_str(&answer_tile("Sessions", "tile-sessions", &sessions));
        out.push_str(&answer_tile("Active people", "tile-people", &people));
        out.push_str(&answer_tile("Spend", "tile-cost", cost));
        out.push_str(&answer_tile("Merged pull requests", "tile-merged", &merged));
        if let Some(split) = &merged.split {
            out.push_str(&page::tile(
                "Agent-assisted merged",
                &figure(split.agent_assisted_prs as f64, "pull requests"),
                "exact",
                "tile-assisted",
            ));
        }
        out.push_str(&answer_tile(
            "Waste (not shipped in 14 days)",
            "tile-waste",
            &waste,
        ));
        out.push_str("</div>");
        out.push_str("<h2>Spend</h2>");
        out.push_str(&total_chart("Spend (USD)", cost));
        out.push_str("<h2>Sessions by agent</h2>");
        out.push_str(&group_chart("Sessions by agent", &sessions));
        out.push_str("<h2>Active people</h2>");
        out.push_str(&total_chart("Active people", &people));
        // What the work turned into: merges, by the agents in them.
        out.push_str("<h2>Merged pull requests by agent (none: no agent)</h2>");
        out.push_str(&group_chart("Merged pull requests by agent", &merged));
        out.push_str(&grid_table("by-team", "By team", "team", "team", &g, &r));
        out.push_str(&page::reasons(&cost.reasons));
        Ok(out)
    }
    .await;
    respond(&state, "/", "Overview", &r, body)
}

async fn teams(State(state): State<DashboardState>, Query(f): Query<Filters>) -> Response {
    let r = range_of(&state, &f);
    let body = async {
        let g = grid(
            &state,
            "team",
            &[
                "sessions",
                "active-people",
                "cost",
                "tokens",
                "cost-without-commit",
                "cost-not-landed",
                "merged-prs",
            ],
            &r,
        )
        .await?;
        let mut out = group_chart("Spend by team (USD)", g.answer("cost")?);
        out.push_str(&grid_table("teams", "Teams", "team", "team", &g, &r));
        Ok(out)
    }
    .await;
    respond(&state, "/teams", "Teams", &r, body)
}

async fn repos(State(state): State<DashboardState>, Query(f): Query<Filters>) -> Response {
    let r = range_of(&state, &f);
    let body = async {
        let g = grid(
            &state,
            "repo",
            &[
                "sessions",
                "cost",
                "merged-prs",
                "pr-cycle-time",
                "ci-first-run-pass-rate",
                "change-failure-rate",
                "revert-rate",
            ],
            &r,
        )
        .await?;
        let bars: Vec<(String, f64)> = g
            .answer("cost")?
            .groups
            .iter()
            .take(12)
            .map(|g| (g.key.clone(), g.total))
            .collect();
        let mut out = panel(&chart::bars("Spend by repository (USD)", "usd", &bars));
        out.push_str(&grid_table(
            "repos",
            "Repositories",
            "repository",
            "repo",
            &g,
            &r,
        ));
        Ok(out)
    }
    .await;
    respond(&state, "/repos", "Repositories", &r, body)
}

async fn agents(State(state): State<DashboardState>, Query(f): Query<Filters>) -> Response {
    let r = range_of(&state, &f);
    let body = async {
        let (agents, models, workflows) = tokio::try_join!(
            grid(
                &state,
                "agent",
                &[
                    "sessions",
                    "active-people",
                    "cost",
                    "tokens",
                    "lines-added",
                    "tool-invocations",
                ],
                &r,
            ),
            grid(&state, "model", &["tokens", "cost", "cache-hit-ratio"], &r),
            grid(&state, "workflow", &["sessions", "cost"], &r),
        )?;
        let mut out = group_chart("Sessions by agent", agents.answer("sessions")?);
        out.push_str(&grid_table(
            "agents", "Agents", "agent", "agent", &agents, &r,
        ));
        out.push_str(&grid_table(
            "models", "Models", "model", "model", &models, &r,
        ));
        out.push_str(&grid_table(
            "workflows",
            "Tools, MCP servers, skills, sub-agents and commands",
            "workflow",
            "workflow",
            &workflows,
            &r,
        ));
        Ok(out)
    }
    .await;
    respond(&state, "/agents", "Agents & models", &r, body)
}

async fn people(State(state): State<DashboardState>, Query(f): Query<Filters>) -> Response {
    let r = range_of(&state, &f);
    let body = async {
        let g = grid(
            &state,
            "person",
            &["sessions", "cost", "tokens", "lines-added"],
            &r,
        )
        .await?;
        Ok(grid_table("people", "People", "person", "person", &g, &r))
    }
    .await;
    respond(&state, "/people", "People", &r, body)
}

/// Whether a listed pull request is one the filters keep: its repository, one of its
/// agents, its author's team (else its repository's owner, else unassigned).
fn pull_kept(state: &DashboardState, r: &Range, p: &crate::store::nodes::PullListed) -> bool {
    let agents = p.agents.as_deref().unwrap_or("");
    let team_ok = r.team.as_ref().is_none_or(|t| {
        state
            .api
            .reports
            .links
            .identities
            .teams_for(p.author_login.as_deref(), Some(&p.repo))
            .contains(t)
    });
    team_ok
        && r.repo.as_ref().is_none_or(|x| p.repo == *x)
        && r.agent
            .as_ref()
            .is_none_or(|a| agents.lines().any(|x| x == a))
}

/// The pull requests the list shows: updated in the range, kept by the filters, the
/// latest first.
async fn listed_pulls(
    state: &DashboardState,
    r: &Range,
) -> Result<Vec<crate::store::nodes::PullListed>, ApiError> {
    let zone = state.api.reports.zone;
    let from_ns = crate::api::analytics::parse_time(zone, "from", &r.from)?;
    let to_ns = crate::api::analytics::parse_time(zone, "to", &r.to)?;
    let mut listed = state
        .api
        .db
        .pulls_updated(from_ns, to_ns, PULLS_LISTED)
        .await?;
    listed.retain(|p| pull_kept(state, r, p));
    Ok(listed)
}

async fn pulls(State(state): State<DashboardState>, Query(f): Query<Filters>) -> Response {
    let r = range_of(&state, &f);
    let body = async {
        let listed = listed_pulls(&state, &r).await?;
        let rows: Vec<Vec<String>> = listed
            .iter()
            .map(|p| {
                let report = format!("/pulls/{}/{}", p.repo, p.number);
                vec![
                    format!(
                        r#"<a href="{}">{}#{}</a>"#,
                        escape(&report),
                        escape(&p.repo),
                        p.number
                    ),
                    escape(p.title.as_deref().unwrap_or("")),
                    escape(p.author_login.as_deref().unwrap_or("")),
                    escape(if p.merged { "merged" } else { &p.state }),
                    escape(match p.assisted {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "report not built yet",
                    }),
                    escape(&p.agents.as_deref().unwrap_or("").replace('\n', ", ")),
                    escape(&p.cost.map_or("–".into(), |c| figure(c, "usd"))),
                ]
            })
            .collect();
        let mut csv = format!("/export.csv?list=pulls&{}", r.query());
        if listed.len() as i64 == PULLS_LISTED {
            csv.push_str("&limit=200");
        }
        Ok(page::table(
            "pulls",
            &format!("Pull requests updated in the range (latest first, at most {PULLS_LISTED})"),
            &[
                "pull request",
                "title",
                "author",
                "state",
                "agent-assisted",
                "agents",
                "cost",
            ],
            &rows,
            &csv,
        ))
    }
    .await;
    respond(&state, "/pulls", "Pull requests", &r, body)
}

/// A pull request's report as the API's JSON gives it.
async fn pull_report(
    state: &DashboardState,
    name: &crate::ids::RepoName,
    number: i64,
) -> Result<Value, ApiError> {
    let built = crate::impact::pull::build(
        &state.api.db,
        &state.api.reports,
        name,
        crate::ids::PrNumber(number),
    )
    .await?
    .ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no pull request {name}#{number}"),
        )
    })?;
    Ok(serde_json::to_value(&built.report).unwrap_or_default())
}

/// One table of a pull request's page: its CSV header, and each row's values as the
/// report's JSON has them (numbers unformatted).
struct PullTable {
    head: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
}

enum Cell {
    Text(String),
    Bool(bool),
    Number(Option<f64>, &'static str),
}

impl PullTable {
    fn sessions(report: &Value) -> Self {
        let rows = report["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let text = |k: &str| Cell::Text(s[k].as_str().unwrap_or("").to_string());
                vec![
                    text("session_id"),
                    text("agent"),
                    text("login"),
                    Cell::Number(s["cost_in_pr_usd"].as_f64(), "usd"),
                    Cell::Number(s["lines_added"].as_f64(), "lines"),
                ]
            })
            .collect();
        Self {
            head: &[
                "session",
                "agent",
                "person",
                "cost_in_pr_usd",
                "lines_added",
            ],
            rows,
        }
    }

    fn commits(report: &Value) -> Self {
        let rows = report["commits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let text = |k: &str| Cell::Text(c[k].as_str().unwrap_or("").to_string());
                vec![
                    text("sha"),
                    text("subject"),
                    text("author"),
                    Cell::Bool(c["agent_assisted"] == true),
                ]
            })
            .collect();
        Self {
            head: &["sha", "subject", "author", "agent_assisted"],
            rows,
        }
    }

    /// The rows as the page shows them (escaped; short SHAs; formatted figures).
    fn html_rows(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(i, c)| match c {
                        Cell::Text(t) if self.head[i] == "sha" => escape(t.get(..12).unwrap_or(t)),
                        Cell::Text(t) => escape(t),
                        Cell::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
                        Cell::Number(v, unit) => escape(&figure(v.unwrap_or(f64::NAN), unit)),
                    })
                    .collect()
            })
            .collect()
    }

    fn csv(&self) -> String {
        let mut out = self.head.join(",");
        out.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Cell::Text(t) => page::csv_field(t),
                    Cell::Bool(b) => b.to_string(),
                    Cell::Number(v, _) => v.map_or(String::new(), raw_number),
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// `/pulls/{owner}/{repo}/{number}`: the report's figures and its graph.
async fn pull_page(
    State(state): State<DashboardState>,
    Path((owner, repo, number)): Path<(String, String, i64)>,
) -> Response {
    let body = async {
        let name = crate::ids::RepoName::from_parts(&owner, &repo)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
        let report = pull_report(&state, &name, number).await?;
        let t = &report["totals"];
        let n = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        let mut out = format!(
            r#"<p class="headline">{}</p><div class="tiles">"#,
            escape(report["headline"].as_str().unwrap_or(""))
        );
        for (label, id, v, unit) in [
            ("Sessions", "tile-sessions", n(&t["sessions"]), "sessions"),
            ("Agent cost", "tile-cost", n(&t["cost_usd"]), "usd"),
            ("Commits", "tile-commits", n(&t["commits"]), "commits"),
            (
                "Agent-assisted commits",
                "tile-agent-commits",
                n(&t["agent_commits"]),
                "commits",
            ),
            (
                "CI first-run pass rate",
                "tile-ci",
                n(&report["ci"]["first_run_pass_rate"]),
                "share",
            ),
        ] {
            out.push_str(&page::tile(label, &figure(v, unit), "exact", id));
        }
        out.push_str("</div><h2>What the work turned into</h2>");
        out.push_str(&panel(&pull::graph(&report)));
        let csv = |list: &str| {
            format!(
                "/export.csv?list={list}&repo={}&number={number}",
                url_encode(&name.to_string())
            )
        };
        let sessions = PullTable::sessions(&report);
        out.push_str(&page::table(
            "sessions",
            "Sessions",
            &[
                "session",
                "agent",
                "person",
                "cost in this PR",
                "lines added",
            ],
            &sessions.html_rows(),
            &csv("pull-sessions"),
        ));
        let commits = PullTable::commits(&report);
        out.push_str(&page::table(
            "commits",
            "Commits",
            &["commit", "subject", "author", "agent-assisted"],
            &commits.html_rows(),
            &csv("pull-commits"),
        ));
        let api = format!("/api/v1/repos/{name}/pulls/{number}/report");
        let _ = write!(
            out,
            r#"<p><a href="{}">The report as posted (Markdown)</a> · <a href="{}">as JSON</a></p>"#,
            escape(&format!("{api}?format=markdown")),
            escape(&format!("{api}?format=json"))
        );
        Ok::<_, ApiError>((
            format!("{name}#{number} {}", report["title"].as_str().unwrap_or("")),
            out,
        ))
    }
    .await;
    match body {
        Ok((title, body)) => html(
            StatusCode::OK,
            page::frame("/pulls", &title, state.api.people, &body),
        ),
        Err(e) => failed(&state, "/pulls", e),
    }
}

async fn alerts(State(state): State<DashboardState>, Query(f): Query<Filters>) -> Response {
    let body = async {
        let a = crate::api::analytics::alerts_of(&state.api, f.day.as_deref()).await?;
        let json = serde_json::to_value(&a.alerts).unwrap_or_default();
        let rows: Vec<Vec<String>> = json
            .as_array()
            .into_iter()
            .flatten()
            .map(|al| {
                let s = |k: &str| escape(al[k].as_str().unwrap_or(""));
                vec![s("level"), s("kind"), s("scope"), s("key"), s("message")]
            })
            .collect();
        let mut out = format!(
            r#"<form class="filters" method="get" action="/alerts"><label>Day <input type="date" name="day" value="{}"></label><button type="submit">Show</button></form>"#,
            escape(&a.day)
        );
        out.push_str(&page::table(
            "alerts",
            &format!("Alerts of {}", a.day),
            &["level", "kind", "scope", "team or person", "message"],
            &rows,
            &format!("/export.csv?list=alerts&day={}", url_encode(&a.day)),
        ));
        if !a.no_baseline.is_empty() {
            out.push_str(r#"<h2>No baseline yet</h2><ul class="reasons">"#);
            for n in &a.no_baseline {
                let _ = write!(out, "<li>{}</li>", escape(n));
            }
            out.push_str("</ul>");
        }
        Ok(out)
    }
    .await;
    match body {
        Ok(body) => html(
            StatusCode::OK,
            page::frame("/alerts", "Alerts", state.api.people, &body),
        ),
        Err(e) => failed(&state, "/alerts", e),
    }
}

/// How far back the Setup page and `tracelink status` look.
pub const SETUP_DAYS: i64 = 30;

/// What arrived in the last [`SETUP_DAYS`] days, as the Setup page and `tracelink
/// status` read it.
pub struct Arrivals {
    pub telemetry: Vec<crate::store::status::TelemetrySeen>,
    pub webhooks: Vec<crate::store::status::WebhooksSeen>,
    /// Sessions of people in no team.
    pub unassigned: i64,
    /// Users `identities` does not know (none without an identities file).
    pub unknown: Option<Unknown>,
}

impl Arrivals {
    /// Reads them; up to `named` unknown users by name.
    pub async fn read(
        db: &crate::store::Db,
        now_ns: i64,
        identities: Option<&crate::graph::identities::Identities>,
        named: usize,
    ) -> crate::store::Result<Self> {
        let since_ns = now_ns - SETUP_DAYS * 86_400 * 1_000_000_000;
        let unknown = match identities {
            Some(ids) => Some(unknown_users(&db.people_seen(since_ns).await?, ids, named)),
            None => None,
        };
        Ok(Self {
            telemetry: db.telemetry_seen(since_ns).await?,
            webhooks: db.webhooks_seen(since_ns).await?,
            unassigned: db.sessions_unassigned(since_ns).await?,
            unknown,
        })
    }

    /// [`missing`] of these arrivals.
    pub fn missing(&self, config: Option<Configured>) -> Vec<String> {
        missing(
            config,
            &self.telemetry,
            &self.webhooks,
            self.unassigned,
            self.unknown.as_ref(),
        )
    }
}

/// What is missing for tracelink to see everything, in words a person acts on: from
/// the configuration (`None`: not known, as for `tracelink status`) and from what
/// arrived in the last [`SETUP_DAYS`] days.
pub fn missing(
    config: Option<Configured>,
    telemetry: &[crate::store::status::TelemetrySeen],
    webhooks: &[crate::store::status::WebhooksSeen],
    unassigned: i64,
    unknown: Option<&Unknown>,
) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    if let Some(c) = config {
        for (ok, what) in [
            (
                c.webhook_secret,
                "No webhook secret (--webhook-secret): GitHub's deliveries are refused, so commits, pull requests and CI never arrive.",
            ),
            (
                c.github_app,
                "No GitHub App (--github-app-id and its key): reports are not posted on pull requests and nothing is backfilled.",
            ),
            (
                c.identities,
                "No identities file (--identities): sessions are matched to commit authors by email only, and every session counts for team unassigned.",
            ),
        ] {
            if !ok {
                missing.push(what.to_string());
            }
        }
    }
    if telemetry.is_empty() {
        missing.push(format!(
            "No agent telemetry in the last {SETUP_DAYS} days: point the agents' OTLP exporter at this server (README, Agents)."
        ));
    }
    if webhooks.iter().all(|w| w.repo.is_none()) {
        missing.push(format!(
            "No webhook delivery of a repository in the last {SETUP_DAYS} days: install the GitHub App on the repositories."
        ));
    }
    let no_repo: i64 = telemetry
        .iter()
        .filter(|t| t.repository.is_none())
        .map(|t| t.sessions)
        .sum();
    if no_repo > 0 {
        missing.push(format!(
            "{} no repository: set OTEL_RESOURCE_ATTRIBUTES=vcs.repository.name=owner/name for those agents.",
            sessions_verb(no_repo, "names", "name")
        ));
    }
    let no_user: i64 = telemetry.iter().map(|t| t.without_user).sum();
    if no_user > 0 {
        missing.push(format!(
            "{} no user: their agents export no user.email or user ID.",
            sessions_verb(no_user, "names", "name")
        ));
    }
    if let Some(u) = unknown.filter(|u| u.people > 0) {
        let mut m = format!(
            "{} {} the identities file does not know ran {} {}: add them as [[person]] with their emails or agent user IDs.",
            u.people,
            if u.people == 1 { "user" } else { "users" },
            u.sessions,
            if u.sessions == 1 {
                "session"
            } else {
                "sessions"
            }
        );
        if !u.top.is_empty() {
            let top: Vec<String> = u.top.iter().map(|(p, n)| format!("{p} ({n})")).collect();
            let _ = write!(m, " Most sessions: {}.", top.join(", "));
        }
        missing.push(m);
    }
    if unassigned > 0 {
        missing.push(format!(
            "{} of people in no team: add them to the identities file's teams.",
            sessions_verb(unassigned, "is", "are")
        ));
    }
    missing
}

/// `1 session names` / `3 sessions name`.
fn sessions_verb(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 session {one}")
    } else {
        format!("{n} sessions {many}")
    }
}

/// Users the identities file does not know, from what arrived lately.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unknown {
    /// Distinct users (emails or agent user IDs no person of the file has).
    pub people: usize,
    pub sessions: i64,
    /// The ones with most sessions (empty where people are not to be named).
    pub top: Vec<(String, i64)>,
}

/// Users named by the sessions of `seen` whom `identities` does not know; up to
/// `named` of them by name, most sessions first.
pub fn unknown_users(
    seen: &[crate::store::status::PersonSeen],
    identities: &crate::graph::identities::Identities,
    named: usize,
) -> Unknown {
    let mut out = Unknown::default();
    for p in seen {
        let Some(person) = p.person.as_deref() else {
            continue;
        };
        if identities.knows(person) {
            continue;
        }
        out.people += 1;
        out.sessions += p.sessions;
        if out.top.len() < named {
            out.top.push((person.to_string(), p.sessions));
        }
    }
    out
}

/// A time and how long ago it was: `2026-11-20T10:48:52Z (10 days ago)`.
pub fn ago(now_ns: i64, ns: i64) -> String {
    format!(
        "{} ({} ago)",
        crate::time::rfc3339(Some(ns), chrono::SecondsFormat::Secs).unwrap_or_default(),
        page::elapsed((now_ns - ns).max(0) / 1_000_000_000)
    )
}

/// `/setup`: what is configured, and when telemetry and webhooks last arrived, per agent
/// and repository, with what is missing.
async fn setup(State(state): State<DashboardState>) -> Response {
    let body = async {
        let now = crate::time::now_ns();
        let c = state.setup;
        // Only the identities file says who is unknown; names only with --people on.
        let arrived = Arrivals::read(
            &state.api.db,
            now,
            c.identities.then_some(&state.api.reports.links.identities),
            if state.api.people { 5 } else { 0 },
        )
        .await?;
        let configured = Configured {
            webhook_secret: state.webhook_secrets.read().is_ok_and(|s| !s.is_empty()),
            github_app: state.app.get().is_some(),
            identities: c.identities,
        };
        let missing = arrived.missing(Some(configured));
        let ago = |ns: Option<i64>| ns.map_or("–".into(), |t| escape(&ago(now, t)));
        let mut out =
            String::from(r#"<section class="panel" id="missing"><h2>What is missing</h2>"#);
        if missing.is_empty() {
            out.push_str("<p>Nothing: telemetry and webhooks are arriving.</p>");
        } else {
            out.push_str("<ul>");
            for m in &missing {
                let _ = write!(out, "<li>{}</li>", escape(m));
            }
            out.push_str("</ul>");
        }
        if !configured.github_app {
            out.push_str(r#"<p><a id="create-app" href="/setup/app">Create the GitHub App from tracelink's manifest</a> (GitHub asks you to confirm, then sends you back here).</p>"#);
        }
        let _ = write!(
            out,
            "<p>Ingest tokens: {}. Read tokens: {}.</p></section>",
            if c.ingest_tokens {
                "required"
            } else {
                "none (ingest is open to whoever reaches the ports)"
            },
            if !state.tokens.is_empty() {
                "required"
            } else {
                "none (the dashboard and API are open to whoever reaches the port)"
            },
        );
        let rows: Vec<Vec<String>> = arrived
            .telemetry
            .iter()
            .map(|t| {
                vec![
                    escape(t.agent.as_deref().unwrap_or("unknown")),
                    escape(t.repository.as_deref().unwrap_or("none named")),
                    escape(&figure(t.sessions as f64, "sessions")),
                    ago(t.last_ns),
                ]
            })
            .collect();
        out.push_str(&page::table(
            "telemetry",
            &format!("Agent telemetry, last {SETUP_DAYS} days"),
            &["agent", "repository", "sessions", "last arrived"],
            &rows,
            "/api/v1/sessions",
        ));
        let rows: Vec<Vec<String>> = arrived
            .webhooks
            .iter()
            .map(|w| {
                vec![
                    escape(w.repo.as_deref().unwrap_or("(no repository)")),
                    escape(&figure(w.deliveries as f64, "deliveries")),
                    escape(&figure(w.failed as f64, "deliveries")),
                    ago(Some(w.last_ns)),
                ]
            })
            .collect();
        out.push_str(&page::table(
            "webhooks",
            &format!("GitHub webhooks, last {SETUP_DAYS} days"),
            &["repository", "deliveries", "failed", "last arrived"],
            &rows,
            "/api/v1/deliveries",
        ));
        Ok::<_, ApiError>(out)
    }
    .await;
    match body {
        Ok(body) => html(
            StatusCode::OK,
            page::frame("/setup", "Setup", state.api.people, &body),
        ),
        Err(e) => failed(&state, "/setup", e),
    }
}

#[derive(Debug, Deserialize, Default)]
struct ExportParams {
    group_by: Option<String>,
    metrics: Option<String>,
    list: Option<String>,
    /// The pull request of `list=pull-sessions|pull-commits` (with `repo=`).
    number: Option<i64>,
    /// The page's filters.
    #[serde(flatten)]
    filters: Filters,
}

/// The metrics one export may name.
const MAX_EXPORT_METRICS: usize = 12;

/// `GET /export.csv?group_by=&metrics=a,b&from=&to=&bucket=`: a table's rows as CSV,
/// one column per metric (each group's total, as the API's JSON gives it); or
/// `list=pulls` / `list=alerts`; or a pull request's `list=pull-sessions` /
/// `list=pull-commits` (`repo=owner/name&number=N`), as its report's JSON gives them.
async fn export(State(state): State<DashboardState>, Query(p): Query<ExportParams>) -> Response {
    let r = range_of(&state, &p.filters);
    let out: Result<(String, String), ApiError> = async {
        match p.list.as_deref() {
            Some("pulls") => {
                let listed = listed_pulls(&state, &r).await?;
                let mut csv = String::from(
                    "repo,number,title,author,state,merged,agent_assisted,agents,cost\n",
                );
                for pr in listed {
                    let _ = writeln!(
                        csv,
                        "{},{},{},{},{},{},{},{},{}",
                        page::csv_field(&pr.repo),
                        pr.number,
                        page::csv_field(pr.title.as_deref().unwrap_or("")),
                        page::csv_field(pr.author_login.as_deref().unwrap_or("")),
                        page::csv_field(&pr.state),
                        pr.merged,
                        pr.assisted.map_or(String::new(), |a| a.to_string()),
                        page::csv_field(&pr.agents.unwrap_or_default().replace('\n', ";")),
                        pr.cost.map_or(String::new(), raw_number),
                    );
                }
                Ok(("pull-requests.csv".to_string(), csv))
            }
            Some("alerts") => {
                let a =
                    crate::api::analytics::alerts_of(&state.api, p.filters.day.as_deref()).await?;
                let day = a.day.clone();
                let json = serde_json::to_value(&a.alerts).unwrap_or_default();
                let mut csv =
                    String::from("level,kind,scope,key,value,threshold,quality,message\n");
                for al in json.as_array().into_iter().flatten() {
                    let s = |k: &str| page::csv_field(al[k].as_str().unwrap_or(""));
                    let n = |k: &str| al[k].as_f64().map_or(String::new(), raw_number);
                    let _ = writeln!(
                        csv,
                        "{},{},{},{},{},{},{},{}",
                        s("level"),
                        s("kind"),
                        s("scope"),
                        s("key"),
                        n("value"),
                        n("threshold"),
                        s("quality"),
                        s("message")
                    );
                }
                Ok((format!("alerts-{day}.csv"), csv))
            }
            Some(list @ ("pull-sessions" | "pull-commits")) => {
                let (Some(repo), Some(number)) = (p.filters.repo.as_deref(), p.number) else {
                    return Err(ApiError(
                        StatusCode::BAD_REQUEST,
                        format!("list={list} needs repo=owner/name and number="),
                    ));
                };
                let name = crate::ids::RepoName::parse(repo)
                    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("repo=: {e}")))?;
                let report = pull_report(&state, &name, number).await?;
                let (table, what) = if list == "pull-sessions" {
                    (PullTable::sessions(&report), "sessions")
                } else {
                    (PullTable::commits(&report), "commits")
                };
                let file = format!("{}-{number}-{what}.csv", name.to_string().replace('/', "-"));
                Ok((file, table.csv()))
            }
            Some(other) => Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("list={other:?}: one of pulls, alerts, pull-sessions, pull-commits"),
            )),
            None => {
                let group_by = p.group_by.clone().unwrap_or_else(|| "org".into());
                let names: Vec<&str> = p
                    .metrics
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect();
                if names.is_empty() || names.len() > MAX_EXPORT_METRICS {
                    return Err(ApiError(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "metrics=: name 1 to {MAX_EXPORT_METRICS} metrics, separated by commas"
                        ),
                    ));
                }
                let mut metrics: Vec<&'static str> = Vec::new();
                for n in names {
                    let m = crate::metrics::analytics::Metric::parse(n).ok_or_else(|| {
                        ApiError(
                            StatusCode::BAD_REQUEST,
                            format!(
                                "no analytics metric {n:?}; there are: {}",
                                crate::metrics::analytics::Metric::NAMES
                            ),
                        )
                    })?;
                    metrics.push(m.name());
                }
                let g = grid(&state, &group_by, &metrics, &r).await?;
                let mut csv = page::csv_field(&group_by);
                for m in &g.metrics {
                    csv.push(',');
                    csv.push_str(m);
                }
                csv.push('\n');
                for (k, vs) in g.keys.iter().zip(&g.values) {
                    csv.push_str(&page::csv_field(k));
                    for v in vs {
                        csv.push(',');
                        csv.push_str(&raw_number(*v));
                    }
                    csv.push('\n');
                }
                Ok((format!("{group_by}-{}-{}.csv", r.from, r.to), csv))
            }
        }
    }
    .await;
    match out {
        Ok((name, csv)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}\"",
                        name.replace(
                            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
                            "_"
                        )
                    ),
                ),
            ],
            csv,
        )
            .into_response(),
        Err(ApiError(status, message)) => (status, message).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_are_those_the_identities_file_does_not_name() {
        let ids = crate::graph::identities::Identities::parse(
            "[[person]]\nlogin = \"ana\"\nemails = [\"ana@acme.example\"]\n",
        )
        .unwrap();
        let seen = |person: Option<&str>, sessions| crate::store::status::PersonSeen {
            person: person.map(str::to_string),
            sessions,
        };
        let rows = [
            seen(Some("eve@acme.example"), 9),
            seen(Some("ana"), 7),
            seen(None, 5),
            seen(Some("0xdeadbeef"), 2),
            seen(Some("bob@acme.example"), 1),
        ];
        let u = unknown_users(&rows, &ids, 2);
        assert_eq!(
            u,
            Unknown {
                people: 3,
                sessions: 12,
                top: vec![("eve@acme.example".into(), 9), ("0xdeadbeef".into(), 2)],
            }
        );
        // Where people are not to be named, only the counts.
        let u = unknown_users(&rows, &ids, 0);
        assert_eq!((u.people, u.sessions, u.top.len()), (3, 12, 0));
        let line = missing(None, &[], &[], 0, Some(&u));
        assert!(
            line.iter().any(|m| m
                .starts_with("3 users the identities file does not know ran 12 sessions")
                && !m.contains("eve")),
            "{line:?}"
        );
    }

    #[test]
    fn only_local_paths_are_followed_after_signing_in() {
        assert_eq!(
            local_path(Some("/teams?from=2026-11-01")),
            "/teams?from=2026-11-01"
        );
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn the_cookie_is_a_digest_of_the_token_never_the_token() {
        let v = session_value("read-secret");
        assert_eq!(v.len(), 64);
        assert!(!v.contains("read-secret"));
        assert_ne!(v, session_value("other"));
    }
}
