//! The GitHub App client: authenticates as the App (a JWT signed with its private key),
//! acts as one of its installations (a cached installation token), and does the few
//! things tracelink needs from GitHub: read a PR's files and commits, keep one report
//! comment per PR, keep one check run per head commit.
//!
//! It is the real `octocrab` client; the API base URL is configuration, so tests point it
//! at a fake GitHub. GitHub's limits are respected here, in one place: every call is
//! retried with bounded exponential back-off on 5xx, on 429 and on 403 rate limits
//! (`retry-after` and `x-ratelimit-reset` honoured, a long wait refused rather than
//! slept through), never on another 4xx. octocrab's own retry layer is switched off so
//! that the bound is this module's and nobody else's.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use octocrab::service::middleware::retry::RetryConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 4;
/// The first back-off; it doubles on each further attempt up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// The longest a rate limit is waited out; GitHub asking for longer fails the call.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// GitHub's advice for a rate limit that names no time: wait at least a minute.
const UNSPECIFIED_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// An installation token is renewed once it has less than this left (they last an hour).
const TOKEN_RENEW_MARGIN_MINUTES: i64 = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// GitHub lists at most this many files of a PR, and of a commit.
const MAX_FILES: usize = 3000;
/// GitHub lists at most this many commits of a PR.
const MAX_PR_COMMITS: usize = 250;
/// A guard against a `Link: rel="next"` that never ends.
const MAX_PAGES: usize = 100;
/// GitHub refuses a longer comment body (422).
const MAX_COMMENT_CHARS: usize = 65_536;
/// GitHub refuses a longer check run summary (422).
const MAX_SUMMARY_CHARS: usize = 65_535;
const CONCLUSIONS: &[&str] = &[
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
];

/// Who the App is and where GitHub's REST API answers (`https://api.github.com`, or a
/// GitHub Enterprise Server's `https://HOST/api/v3`).
#[derive(Clone)]
pub struct AppConfig {
    pub app_id: u64,
    /// The App's private key as GitHub hands it out (PEM, PKCS#1 or PKCS#8).
    pub private_key_pem: String,
    pub api_url: String,
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("app_id", &self.app_id)
            .field("private_key_pem", &"<redacted>")
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// What [`GithubApp::upsert_comment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentOutcome {
    Created {
        id: u64,
    },
    Updated {
        id: u64,
    },
    /// Our comment already says exactly this; nothing was written.
    Unchanged {
        id: u64,
    },
}

/// What [`GithubApp::upsert_check_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Created {
        id: u64,
    },
    Updated {
        id: u64,
    },
    /// Our check run already reports exactly this; nothing was written.
    Unchanged {
        id: u64,
    },
}

/// One file of a PR's or a commit's diff. `patch` is absent for binary files and for
/// diffs GitHub deems too large to show.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FilePatch {
    pub filename: String,
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
    #[serde(default)]
    pub patch: Option<String>,
}

/// Why a GitHub call failed. Every variant names the endpoint (method and path).
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// GitHub answered with an error status, after `attempts` tries if it was retryable.
    #[error("GitHub {endpoint} answered {status} after {attempts} attempt(s): {message}")]
    Status {
        endpoint: String,
        status: u16,
        message: String,
        attempts: u32,
    },
    /// GitHub asked for a longer pause than this client waits out.
    #[error(
        "GitHub {endpoint} is rate limited ({status}) for {wait_secs} s more, longer than the {max_secs} s this client waits"
    )]
    RateLimited {
        endpoint: String,
        status: u16,
        wait_secs: u64,
        max_secs: u64,
    },
    /// No HTTP answer (connection refused, reset, timed out), after `attempts` tries.
    #[error("GitHub {endpoint}: no answer after {attempts} attempt(s)")]
    Transport {
        endpoint: String,
        attempts: u32,
        #[source]
        source: octocrab::Error,
    },
    /// The request could not be made at all (signing the JWT, building the URI).
    #[error("GitHub {endpoint}: request not sent")]
    Client {
        endpoint: String,
        #[source]
        source: octocrab::Error,
    },
    /// A 2xx answer whose body is not the shape GitHub documents.
    #[error("GitHub {endpoint}: unexpected response body")]
    Body {
        endpoint: String,
        #[source]
        source: serde_json::Error,
    },
}

impl GithubError {
    /// The HTTP status GitHub answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Status { status, .. } | GithubError::RateLimited { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// A GitHub App: its identity, and a client per installation it acts for.
pub struct GithubApp {
    app_id: u64,
    /// Authenticates as the App itself (a fresh JWT per request).
    app: Octocrab,
    /// `scheme://host[:port]` of the API, to turn pagination links back into routes.
    origin: String,
    slug: OnceCell<String>,
    installations: Mutex<HashMap<u64, Arc<Installation>>>,
}

/// One installation's client. octocrab caches the installation token inside it, so it
/// must live as long as the App: a client made per call would fetch a token per call.
struct Installation {
    id: u64,
    client: Octocrab,
    /// Held while the token is checked and renewed, so concurrent calls fetch one token.
    renewing: tokio::sync::Mutex<()>,
}

impl Installation {
    async fn fresh_token(&self) -> Result<(), octocrab::Error> {
        let _one_at_a_time = self.renewing.lock().await;
        self.client
            .installation_token_with_buffer(chrono::Duration::minutes(TOKEN_RENEW_MARGIN_MINUTES))
            .await
            .map(drop)
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    App,
    Installation(&'a Installation),
}

#[derive(Clone, Copy)]
enum Verb {
    Get,
    Post,
    Patch,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
        })
    }
}

/// A 2xx answer: its body and the next page, if the `Link` header names one.
struct Reply {
    endpoint: String,
    body: String,
    next: Option<String>,
}

impl Reply {
    fn json<T: DeserializeOwned>(&self) -> Result<T, GithubError> {
        serde_json::from_str(&self.body).map_err(|source| GithubError::Body {
            endpoint: self.endpoint.clone(),
            source,
        })
    }
}

/// An error answer, as much as the retry decision needs of it.
struct Refusal {
    status: u16,
    retry_after: Option<u64>,
    remaining: Option<u64>,
    reset: Option<i64>,
    message: String,
}

enum Failure {
    Refused(Refusal),
    Transport(octocrab::Error),
    Client(octocrab::Error),
}

/// A failed attempt: the endpoint it was for (the token endpoint when the token could
/// not be had) and what went wrong.
struct FailedAttempt {
    endpoint: String,
    failure: Failure,
}

impl FailedAttempt {
    fn from_octocrab(endpoint: String, error: octocrab::Error) -> Self {
        let failure = match error {
            octocrab::Error::GitHub { source, .. } => {
                let header = |name: &str| {
                    source
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                Failure::Refused(Refusal {
                    status: source.status_code.as_u16(),
                    retry_after: header("retry-after").and_then(|v| v.trim().parse().ok()),
                    remaining: header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
                    reset: header("x-ratelimit-reset").and_then(|v| v.trim().parse().ok()),
                    message: source.message.clone(),
                })
            }
            e @ (octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }) => {
                Failure::Transport(e)
            }
            e => Failure::Client(e),
        };
        FailedAttempt { endpoint, failure }
    }

    fn into_error(self, attempts: u32) -> GithubError {
        let endpoint = self.endpoint;
        match self.failure {
            Failure::Refused(r) => GithubError::Status {
                endpoint,
                status: r.status,
                message: r.message,
                attempts,
            },
            Failure::Transport(source) => GithubError::Transport {
                endpoint,
                attempts,
                source,
            },
            Failure::Client(source) => GithubError::Client { endpoint, source },
        }
    }
}

/// How long to wait before the next attempt, or `None` when retrying cannot help.
fn retry_delay(failure: &Failure, attempt: u32, now_unix: i64) -> Option<Duration> {
    let backoff = backoff(attempt);
    let r = match failure {
        Failure::Refused(r) => r,
        Failure::Transport(_) => return Some(backoff),
        Failure::Client(_) => return None,
    };
    let says_rate_limit = r.message.to_ascii_lowercase().contains("rate limit");
    let rate_limited = r.status == 429
        || (r.status == 403
            && (r.retry_after.is_some() || r.remaining == Some(0) || says_rate_limit));
    if rate_limited {
        return Some(if let Some(secs) = r.retry_after {
            Duration::from_secs(secs)
        } else if r.remaining == Some(0)
            && let Some(reset) = r.reset
        {
            // The reset time is a whole second; one more second covers clock skew.
            Duration::from_secs(u64::try_from(reset - now_unix).unwrap_or(0) + 1)
        } else {
            UNSPECIFIED_RATE_LIMIT_WAIT
        });
    }
    if r.status >= 500 {
        let asked = Duration::from_secs(r.retry_after.unwrap_or(0));
        return Some(backoff.max(asked));
    }
    None
}

/// `BACKOFF_BASE` doubled per attempt already made, capped at `BACKOFF_CAP`.
fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP)
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let mut fields = part.split(';');
        let url = fields.next()?.trim().strip_prefix('<')?.strip_suffix('>')?;
        fields
            .any(|f| f.trim() == r#"rel="next""#)
            .then(|| url.to_string())
    })
}

/// `owner/name`, checked so it can only ever be two path segments.
fn repo_route(repo: &str) -> anyhow::Result<String> {
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok(owner) && ok(name) => Ok(format!("/repos/{owner}/{name}")),
        _ => bail!("repository {repo:?} is not \"owner/name\""),
    }
}

fn check_sha(sha: &str) -> anyhow::Result<()> {
    if (7..=64).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        bail!("{sha:?} is not a commit SHA")
    }
}

/// Percent-encodes a query parameter value.
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `text` cut to at most `max` characters, saying so at the end when it was cut.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    const NOTE: &str = "\n\n… (truncated: GitHub's length limit)";
    let keep = max - NOTE.chars().count();
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(NOTE);
    out
}

fn same_text(a: &str, b: &str) -> bool {
    a.replace("\r\n", "\n") == b.replace("\r\n", "\n")
}

#[derive(Deserialize)]
struct AppInfo {
    slug: String,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    /// Null for a deleted account.
    #[serde(default)]
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

#[derive(Deserialize)]
struct CheckRunList {
    check_runs: Vec<CheckRun>,
}

#[derive(Deserialize)]
struct CheckRun {
    id: u64,
    name: String,
    head_sha: String,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
    output: CheckOutput,
}

#[derive(Deserialize)]
struct CheckOutput {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
struct CommitSha {
    sha: String,
}

#[derive(Deserialize)]
struct CommitDetail {
    #[serde(default)]
    files: Vec<FilePatch>,
}

impl GithubApp {
    /// A client for the App. Must be called inside a Tokio runtime. Fails, naming the
    /// problem, when the private key is not a usable RSA key or the API URL is not a URL.
    pub fn new(cfg: &AppConfig) -> anyhow::Result<Self> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(cfg.private_key_pem.as_bytes()).map_err(
            |e| {
                anyhow::anyhow!(
                    "GitHub App {} private key is not an RSA private key in PEM form ({e}); \
                     use the .pem file GitHub generated for the App",
                    cfg.app_id
                )
            },
        )?;
        // The PEM parser only checks the framing; signing once proves the key itself.
        let probe = json!({"iss": cfg.app_id, "iat": 0, "exp": 1});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &probe,
            &key,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "GitHub App {} private key cannot sign a JWT ({e}); \
                 use the .pem file GitHub generated for the App",
                cfg.app_id
            )
        })?;

        let api_url = cfg.api_url.trim_end_matches('/');
        let origin = ["https://", "http://"]
            .iter()
            .find_map(|scheme| {
                let rest = api_url.strip_prefix(scheme)?;
                let host = rest.split('/').next().filter(|h| !h.is_empty())?;
                Some(format!("{scheme}{host}"))
            })
            .with_context(|| format!("GitHub API URL {:?} is not an http(s) URL", cfg.api_url))?;

        let app = Octocrab::builder()
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .base_uri(api_url)
            .with_context(|| format!("GitHub API URL {:?} is not a URL", cfg.api_url))?
            .app(AppId(cfg.app_id), key)
            .build()
            .context("building the GitHub client")?;
        Ok(GithubApp {
            app_id: cfg.app_id,
            app,
            origin,
            slug: OnceCell::new(),
            installations: Mutex::new(HashMap::new()),
        })
    }

    /// The App's own slug (`GET /app` with the JWT), fetched once.
    pub async fn slug(&self) -> anyhow::Result<String> {
        let slug = self
            .slug
            .get_or_try_init(|| async {
                let app: AppInfo = self
                    .request(Auth::App, Verb::Get, "/app", None)
                    .await?
                    .json()?;
                anyhow::ensure!(!app.slug.is_empty(), "GitHub GET /app: the App has no slug");
                Ok::<_, anyhow::Error>(app.slug)
            })
            .await?;
        Ok(slug.clone())
    }

    /// Creates, edits or leaves alone the PR's report comment. Ours is the comment by
    /// `<slug>[bot]` whose body contains `marker`; every page of comments is searched
    /// until it is found. A body over GitHub's limit is cut, saying so.
    pub async fn upsert_comment(
        &self,
        installation_id: u64,
        repo: &str,
        pr: u64,
        marker: &str,
        body: &str,
    ) -> anyhow::Result<CommentOutcome> {
        anyhow::ensure!(!marker.is_empty(), "the comment marker is empty");
        let repo_route = repo_route(repo)?;
        let body = fit(body, MAX_COMMENT_CHARS);
        let bot = format!("{}[bot]", self.slug().await?);
        let inst = self.installation(installation_id)?;
        let auth = Auth::Installation(&inst);

        let mut route = Some(format!("{repo_route}/issues/{pr}/comments?per_page=100"));
        let mut pages = 0;
        let mut ours = None;
        while let Some(r) = route.take() {
            pages += 1;
            let reply = self.request(auth, Verb::Get, &r, None).await?;
            let comments: Vec<Comment> = reply.json()?;
            ours = comments.into_iter().find(|c| {
                c.user
                    .as_ref()
                    .is_some_and(|u| u.login == bot && u.kind == "Bot")
                    && c.body.as_deref().is_some_and(|b| b.contains(marker))
            });
            if ours.is_some() || pages >= MAX_PAGES {
                break;
            }
            route = reply.next.map(|next| self.route_of(&next)).transpose()?;
        }

        let payload = json!({ "body": body });
        match ours {
            Some(c) if same_text(c.body.as_deref().unwrap_or_default(), &body) => {
                Ok(CommentOutcome::Unchanged { id: c.id })
            }
            Some(c) => {
                let r = format!("{repo_route}/issues/comments/{}", c.id);
                let edited: Created = self
                    .request(auth, Verb::Patch, &r, Some(&payload))
                    .await?
                    .json()?;
                Ok(CommentOutcome::Updated { id: edited.id })
            }
            None => {
                let r = format!("{repo_route}/issues/{pr}/comments");
                let created: Created = self
                    .request(auth, Verb::Post, &r, Some(&payload))
                    .await?
                    .json()?;
                Ok(CommentOutcome::Created { id: created.id })
            }
        }
    }

    /// Creates or updates the check run named `name` on `head_sha`, completed with the
    /// given conclusion, title and summary markdown. Only this App's check runs are
    /// considered; one that already says exactly this is left alone.
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert_check_run(
        &self,
        installation_id: u64,
        repo: &str,
        head_sha: &str,
        name: &str,
        title: &str,
        summary: &str,
        conclusion: &str,
    ) -> anyhow::Result<CheckOutcome> {
        let repo_route = repo_route(repo)?;
        check_sha(head_sha)?;
        anyhow::ensure!(!name.is_empty(), "the check run name is empty");
        anyhow::ensure!(
            CONCLUSIONS.contains(&conclusion),
            "{conclusion:?} is not a check run conclusion (one of {})",
            CONCLUSIONS.join(", ")
        );
        let summary = fit(summary, MAX_SUMMARY_CHARS);
        let inst = self.installation(installation_id)?;
        let auth = Auth::Installation(&inst);

        let list = format!(
            "{repo_route}/commits/{head_sha}/check-runs?check_name={}&app_id={}&filter=latest&per_page=100",
            query_value(name),
            self.app_id
        );
        let runs: CheckRunList = self.request(auth, Verb::Get, &list, None).await?.json()?;
        let existing = runs
            .check_runs
            .into_iter()
            .filter(|c| c.name == name && c.head_sha.eq_ignore_ascii_case(head_sha))
            .max_by_key(|c| c.id);

        let mut payload = json!({
            "name": name,
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "output": { "title": title, "summary": summary },
        });
        match existing {
            Some(c)
                if c.status == "completed"
                    && c.conclusion.as_deref() == Some(conclusion)
                    && c.output.title.as_deref() == Some(title)
                    && c.output
                        .summary
                        .as_deref()
                        .is_some_and(|s| same_text(s, &summary)) =>
            {
                Ok(CheckOutcome::Unchanged { id: c.id })
            }
            Some(c) => {
                let r = format!("{repo_route}/check-runs/{}", c.id);
                let run: Created = self
                    .request(auth, Verb::Patch, &r, Some(&payload))
                    .await?
                    .json()?;
                Ok(CheckOutcome::Updated { id: run.id })
            }
            None => {
                payload["head_sha"] = json!(head_sha);
                let r = format!("{repo_route}/check-runs");
                let run: Created = self
                    .request(auth, Verb::Post, &r, Some(&payload))
                    .await?
                    .json()?;
                Ok(CheckOutcome::Created { id: run.id })
            }
        }
    }

    /// The PR's files with their patches (every page, up to GitHub's 3000-file limit).
    pub async fn pull_files(
        &self,
        installation_id: u64,
        repo: &str,
        pr: u64,
    ) -> anyhow::Result<Vec<FilePatch>> {
        let route = format!("{}/pulls/{pr}/files?per_page=100", repo_route(repo)?);
        self.all_pages(installation_id, route, MAX_FILES, |reply| reply.json())
            .await
    }

    /// The PR's commits (every page, up to GitHub's 250-commit limit), oldest first.
    pub async fn pull_commits(
        &self,
        installation_id: u64,
        repo: &str,
        pr: u64,
    ) -> anyhow::Result<Vec<String>> {
        let route = format!("{}/pulls/{pr}/commits?per_page=100", repo_route(repo)?);
        let commits = self
            .all_pages(installation_id, route, MAX_PR_COMMITS, |reply| {
                reply.json::<Vec<CommitSha>>()
            })
            .await?;
        Ok(commits.into_iter().map(|c| c.sha).collect())
    }

    /// One commit's files with their patches (`GET /repos/{o}/{r}/commits/{sha}`; a big
    /// commit's files come over several pages, up to GitHub's 3000-file limit).
    pub async fn commit_files(
        &self,
        installation_id: u64,
        repo: &str,
        sha: &str,
    ) -> anyhow::Result<Vec<FilePatch>> {
        check_sha(sha)?;
        let route = format!("{}/commits/{sha}", repo_route(repo)?);
        self.all_pages(installation_id, route, MAX_FILES, |reply| {
            reply.json::<CommitDetail>().map(|c| c.files)
        })
        .await
    }

    /// Every item of a paginated listing, following `Link: rel="next"`, at most `max`.
    async fn all_pages<T>(
        &self,
        installation_id: u64,
        first: String,
        max: usize,
        items: impl Fn(&Reply) -> Result<Vec<T>, GithubError>,
    ) -> anyhow::Result<Vec<T>> {
        let inst = self.installation(installation_id)?;
        let mut out = Vec::new();
        let mut route = Some(first);
        let mut pages = 0;
        while let Some(r) = route.take() {
            pages += 1;
            let reply = self
                .request(Auth::Installation(&inst), Verb::Get, &r, None)
                .await?;
            out.extend(items(&reply)?);
            if out.len() >= max || pages >= MAX_PAGES {
                out.truncate(max);
                break;
            }
            route = reply.next.map(|next| self.route_of(&next)).transpose()?;
        }
        Ok(out)
    }

    /// The installation's client, made once and kept (with its token cache).
    fn installation(&self, id: u64) -> anyhow::Result<Arc<Installation>> {
        let mut map = self
            .installations
            .lock()
            .map_err(|_| anyhow::anyhow!("GitHub installation clients: lock poisoned"))?;
        if let Some(inst) = map.get(&id) {
            return Ok(inst.clone());
        }
        let client = self
            .app
            .installation(InstallationId(id))
            .with_context(|| format!("GitHub installation {id}: client"))?;
        let inst = Arc::new(Installation {
            id,
            client,
            renewing: tokio::sync::Mutex::new(()),
        });
        map.insert(id, inst.clone());
        Ok(inst)
    }

    /// A pagination link as a route under the configured API URL. octocrab only sends
    /// credentials with relative routes (or to api.github.com), so links are followed
    /// as routes, and a link to another host is refused.
    fn route_of(&self, url: &str) -> anyhow::Result<String> {
        if url.starts_with('/') {
            return Ok(url.to_string());
        }
        url.strip_prefix(&self.origin)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "GitHub pagination link {url:?} is not under {}",
                    self.origin
                )
            })
    }

    /// One call, retried within GitHub's limits (see the module docs).
    async fn request(
        &self,
        auth: Auth<'_>,
        verb: Verb,
        route: &str,
        body: Option<&Value>,
    ) -> Result<Reply, GithubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failed = match self.attempt(auth, verb, route, body).await {
                Ok(reply) => return Ok(reply),
                Err(failed) => failed,
            };
            // A create that failed with a server error or a broken connection may still
            // have happened: retrying it could create twice. The caller's next upsert
            // looks for what exists first, so it is left to that.
            let ambiguous = match &failed.failure {
                Failure::Refused(r) => r.status >= 500,
                _ => true,
            };
            if matches!(verb, Verb::Post) && ambiguous && !route.ends_with("/access_tokens") {
                return Err(failed.into_error(attempt));
            }
            let now = chrono::Utc::now().timestamp();
            let Some(wait) = retry_delay(&failed.failure, attempt, now) else {
                return Err(failed.into_error(attempt));
            };
            if wait > MAX_WAIT
                && let Failure::Refused(r) = &failed.failure
            {
                return Err(GithubError::RateLimited {
                    endpoint: failed.endpoint,
                    status: r.status,
                    wait_secs: wait.as_secs(),
                    max_secs: MAX_WAIT.as_secs(),
                });
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(failed.into_error(attempt));
            }
            let status = match &failed.failure {
                Failure::Refused(r) => Some(r.status),
                _ => None,
            };
            tracing::warn!(
                endpoint = %failed.endpoint,
                ?status,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "GitHub call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        auth: Auth<'_>,
        verb: Verb,
        route: &str,
        body: Option<&Value>,
    ) -> Result<Reply, FailedAttempt> {
        let client = match auth {
            Auth::App => &self.app,
            Auth::Installation(inst) => {
                inst.fresh_token().await.map_err(|e| {
                    FailedAttempt::from_octocrab(
                        format!("POST /app/installations/{}/access_tokens", inst.id),
                        e,
                    )
                })?;
                &inst.client
            }
        };
        let endpoint = format!("{verb} {route}");
        let sent = match verb {
            Verb::Get => client._get(route).await,
            Verb::Post => client._post(route, body).await,
            Verb::Patch => client._patch(route, body).await,
        };
        let response = sent.map_err(|e| FailedAttempt::from_octocrab(endpoint.clone(), e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let next = header("link").as_deref().and_then(next_link);
        let retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
        let remaining = header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok());
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse().ok());
        let text = client.body_to_string(response).await;
        if (200..300).contains(&status) {
            let body = text.map_err(|e| FailedAttempt::from_octocrab(endpoint.clone(), e))?;
            return Ok(Reply {
                endpoint,
                body,
                next,
            });
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            message: String,
        }
        let text = text.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or_else(|_| text.trim().chars().take(200).collect());
        Err(FailedAttempt {
            endpoint,
            failure: Failure::Refused(Refusal {
                status,
                retry_after,
                remaining,
                reset,
                message,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> Refusal {
        Refusal {
            status,
            retry_after: None,
            remaining: None,
            reset: None,
            message: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), BACKOFF_CAP);
    }

    #[test]
    fn which_answers_are_retried() {
        let delay = |r: Refusal| retry_delay(&Failure::Refused(r), 1, 1_000);
        assert_eq!(delay(refused(502)), Some(BACKOFF_BASE));
        assert_eq!(delay(refused(404)), None);
        assert_eq!(delay(refused(422)), None);
        // A 403 that is not a rate limit is a permission problem.
        assert_eq!(delay(refused(403)), None);
        let mut secondary = refused(403);
        secondary.retry_after = Some(3);
        assert_eq!(delay(secondary), Some(Duration::from_secs(3)));
        let mut primary = refused(403);
        primary.remaining = Some(0);
        primary.reset = Some(1_010);
        assert_eq!(delay(primary), Some(Duration::from_secs(11)));
        let mut worded = refused(403);
        worded.message = "You have exceeded a secondary rate limit.".into();
        assert_eq!(delay(worded), Some(UNSPECIFIED_RATE_LIMIT_WAIT));
        assert_eq!(delay(refused(429)), Some(UNSPECIFIED_RATE_LIMIT_WAIT));
    }

    #[test]
    fn next_link_is_found_among_others() {
        let link = r#"<https://api.github.com/repositories/1/issues/2/comments?page=1>; rel="prev", <https://api.github.com/repositories/1/issues/2/comments?page=3>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?page=5>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?page=3")
        );
        assert_eq!(next_link(r#"<https://x/y?page=1>; rel="first""#), None);
    }

    #[test]
    fn repo_must_be_owner_slash_name() {
        assert_eq!(repo_route("acme/widgets").unwrap(), "/repos/acme/widgets");
        for bad in ["acme", "acme/", "/w", "a/b/c", "a/..", "a/b?x=1", "a b/c"] {
            assert!(repo_route(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_text_is_cut_with_a_note() {
        let cut = fit(&"é".repeat(100), 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with("length limit)"));
        assert_eq!(fit("short", 60), "short");
    }
}
