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
use octocrab::models::AppId;
use octocrab::service::middleware::retry::RetryConfig;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OnceCell;

mod transport;
use transport::*;

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
/// Teams of an organisation, and members of a team, read at most.
const MAX_TEAMS: usize = 3000;
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
    /// Our old comment was deleted and this one posted in its place.
    Replaced {
        old: u64,
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

/// One page of a listing, fetched conditionally ([`GithubApp::page_if_changed`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    /// GitHub answered 304: the page is as it was when it gave the ETag sent.
    NotModified,
    Fresh {
        body: String,
        /// The next page's route (`Link: rel="next"`), if there is one.
        next: Option<String>,
        etag: Option<String>,
    },
}

/// A fetched page with what GitHub said is left of the installation's rate limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub page: Page,
    /// Requests left in the current window (`x-ratelimit-remaining`).
    pub remaining: Option<u64>,
    /// When the window resets, Unix seconds (`x-ratelimit-reset`).
    pub reset: Option<i64>,
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

/// The App this server acts as, if any: set at start from the flags or the stored App,
/// or while running when `/setup/app` creates one (the publisher and the upload checks
/// read it each time they need it, so a new App posts without a restart).
#[derive(Clone, Default)]
pub struct AppSlot(Arc<std::sync::RwLock<Option<Arc<GithubApp>>>>);

impl AppSlot {
    pub fn new(app: Option<Arc<GithubApp>>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(app)))
    }

    /// The App, if one is configured.
    pub fn get(&self) -> Option<Arc<GithubApp>> {
        // A poisoned lock still holds a whole `Option<Arc<_>>`: assignments cannot tear.
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set(&self, app: Arc<GithubApp>) {
        match self.0.write() {
            Ok(mut g) => *g = Some(app),
            Err(p) => *p.into_inner() = Some(app),
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
struct PullHead {
    state: String,
    head: CommitSha,
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
    /// until it is found. A body over GitHub's limit is cut, saying so. When `replace`
    /// says our comment must go (it holds what may not stay public: GitHub keeps an
    /// edited comment's history), it is deleted and posted anew instead of edited.
    pub async fn upsert_comment(
        &self,
        installation_id: u64,
        repo: &str,
        pr: u64,
        marker: &str,
        body: &str,
        replace: &(dyn Fn(&str) -> bool + Sync),
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
        if let Some(c) = &ours
            && replace(c.body.as_deref().unwrap_or_default())
        {
            let r = format!("{repo_route}/issues/comments/{}", c.id);
            self.request(auth, Verb::Delete, &r, None).await?;
            let r = format!("{repo_route}/issues/{pr}/comments");
            let created: Created = self
                .request(auth, Verb::Post, &r, Some(&payload))
                .await?
                .json()?;
            return Ok(CommentOutcome::Replaced {
                old: c.id,
                id: created.id,
            });
        }
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
            crate::ids::url_encode(name),
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

    /// A pull request's head SHA and whether it is open (`GET /repos/{o}/{r}/pulls/{n}`).
    pub async fn pull_head(
        &self,
        installation_id: u64,
        repo: &str,
        pr: u64,
    ) -> anyhow::Result<(String, bool)> {
        let inst = self.installation(installation_id)?;
        let route = format!("{}/pulls/{pr}", repo_route(repo)?);
        let pull: PullHead = self
            .request(Auth::Installation(&inst), Verb::Get, &route, None)
            .await?
            .json()?;
        Ok((pull.head.sha.to_ascii_lowercase(), pull.state == "open"))
    }

    /// One page under `route` (a route of the API, as [`Page::Fresh`]'s `next` is), sent
    /// with `If-None-Match: etag` when one is given: a 304 (which costs no rate limit)
    /// answers [`Page::NotModified`]. Retried like every call.
    pub async fn page_if_changed(
        &self,
        installation_id: u64,
        route: &str,
        etag: Option<&str>,
    ) -> anyhow::Result<Fetched> {
        anyhow::ensure!(
            route.starts_with("/repos/"),
            "GitHub route {route:?} is not a repository's"
        );
        let inst = self.installation(installation_id)?;
        let reply = self
            .request_if(Auth::Installation(&inst), Verb::Get, route, None, etag)
            .await?;
        let page = if reply.status == 304 {
            Page::NotModified
        } else {
            Page::Fresh {
                next: reply.next.map(|next| self.route_of(&next)).transpose()?,
                etag: reply.etag,
                body: reply.body,
            }
        };
        Ok(Fetched {
            page,
            remaining: reply.remaining,
            reset: reply.reset,
        })
    }

    /// The App's installations on organisations: `(installation id, organisation)`
    /// (`GET /app/installations`, as the App; the first 100).
    pub async fn org_installations(&self) -> anyhow::Result<Vec<(u64, String)>> {
        #[derive(Deserialize)]
        struct Account {
            login: String,
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct Found {
            id: u64,
            account: Option<Account>,
        }
        let found: Vec<Found> = self
            .request(
                Auth::App,
                Verb::Get,
                "/app/installations?per_page=100",
                None,
            )
            .await?
            .json()?;
        Ok(found
            .into_iter()
            .filter_map(|f| {
                let a = f.account?;
                (a.kind == "Organization").then_some((f.id, a.login))
            })
            .collect())
    }

    /// An organisation's teams' slugs (`GET /orgs/{org}/teams`, every page up to 3,000;
    /// the App needs the organisation permission "Members: read").
    pub async fn org_teams(&self, installation_id: u64, org: &str) -> anyhow::Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Team {
            slug: String,
        }
        let route = format!("{}/teams?per_page=100", org_route(org)?);
        let teams = self
            .all_pages(installation_id, route, MAX_TEAMS, |reply| {
                reply.json::<Vec<Team>>()
            })
            .await?;
        Ok(teams.into_iter().map(|t| t.slug).collect())
    }

    /// A team's members' logins (`GET /orgs/{org}/teams/{slug}/members`, every page up
    /// to 3,000; child teams' members included, as GitHub lists them).
    pub async fn team_members(
        &self,
        installation_id: u64,
        org: &str,
        slug: &str,
    ) -> anyhow::Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Member {
            login: String,
        }
        anyhow::ensure!(
            !slug.is_empty()
                && slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "team slug {slug:?} is not a GitHub team slug"
        );
        let route = format!("{}/teams/{slug}/members?per_page=100", org_route(org)?);
        let members = self
            .all_pages(installation_id, route, MAX_TEAMS, |reply| {
                reply.json::<Vec<Member>>()
            })
            .await?;
        Ok(members
            .into_iter()
            .map(|m| m.login.to_ascii_lowercase())
            .collect())
    }

    /// The App installation that can read `repo` (`GET /repos/{o}/{r}/installation`,
    /// as the App).
    pub async fn repo_installation(&self, repo: &str) -> anyhow::Result<u64> {
        #[derive(Deserialize)]
        struct Found {
            id: u64,
        }
        let route = format!("{}/installation", repo_route(repo)?);
        let found: Found = self
            .request(Auth::App, Verb::Get, &route, None)
            .await
            .with_context(|| format!("the App is not installed on {repo}, or cannot see it"))?
            .json()?;
        Ok(found.id)
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
}
