//! A fake GitHub at the HTTP boundary: a wiremock server whose one responder reads and
//! changes an in-memory model of an App, its installation tokens, repos, PRs, commits,
//! issue comments and check runs. It answers with the shapes of GitHub's REST API (the
//! examples in `tests/fixtures/github-app/api/`, values changed), checks credentials the
//! way GitHub does (an RS256 App JWT for `/app…`, an installation token elsewhere),
//! paginates with `Link` headers, gives every listing an ETag (answering 304 to a
//! matching `If-None-Match`), and records every write. Failures are injected in front of
//! the model: the next N requests to a path answer 5xx or a rate limit.
//!
//! A repository's history (for backfills) is added with [`FakeGithub::add_history`]:
//! default-branch commits with their parents, pull requests with their commits, commit
//! statuses, deployments with their statuses, and issues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::github::app::AppConfig;
use serde_json::{Value, json};
use wiremock::matchers::{any, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The fake App's id and slug; its comments are by `tracelink-test[bot]`.
pub const APP_ID: u64 = 4242;
pub const SLUG: &str = "tracelink-test";
/// The one installation of the App; it can see every repo of the fake.
pub const INSTALLATION: u64 = 77;

const PRIVATE_KEY: &str = include_str!("../../tests/fixtures/github-app/app-private-key.pem");
const PUBLIC_KEY: &str = include_str!("../../tests/fixtures/github-app/app-public-key.pem");
const TOKEN_JSON: &str =
    include_str!("../../tests/fixtures/github-app/api/installation-token.json");
const CHECK_RUN_JSON: &str = include_str!("../../tests/fixtures/github-app/api/check-run.json");
const COMMENT_JSON: &str = include_str!("../../tests/fixtures/github-app/api/issue-comment.json");
const DIFF_ENTRIES_JSON: &str =
    include_str!("../../tests/fixtures/github-app/api/diff-entry-items.json");
const COMMIT_ITEMS_JSON: &str =
    include_str!("../../tests/fixtures/github-app/api/commit-items.json");
const COMMIT_JSON: &str = include_str!("../../tests/fixtures/github-app/api/commit.json");
const PULL_JSON: &str = include_str!("../../tests/fixtures/github-app/api/pull-request.json");
const DEPLOYMENT_ITEMS_JSON: &str =
    include_str!("../../tests/fixtures/github-app/api/deployment-items.json");
const DEPLOYMENT_STATUS_ITEMS_JSON: &str =
    include_str!("../../tests/fixtures/github-app/api/deployment-status-items.json");
const INSTALLATION_JSON: &str =
    include_str!("../../tests/fixtures/github-app/api/installation.json");

/// A commit of a repository's history, as the commits listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRepoCommit {
    pub sha: String,
    pub message: String,
    pub name: String,
    pub email: String,
    pub login: String,
    /// RFC 3339.
    pub date: String,
    pub parents: Vec<String>,
}

/// A pull request of a repository's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    pub number: u64,
    pub title: String,
    pub login: String,
    pub head_ref: String,
    pub head_sha: String,
    pub base_sha: String,
    /// Its commits, oldest first.
    pub commits: Vec<String>,
    /// RFC 3339 times; merged ones are closed.
    pub created_at: String,
    pub updated_at: String,
    pub merged_at: Option<String>,
    pub merge_commit_sha: Option<String>,
}

/// A commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeStatus {
    pub id: u64,
    pub sha: String,
    pub context: String,
    pub state: String,
    pub at: String,
}

/// A deployment with its statuses `(id, state, at)`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDeployment {
    pub id: u64,
    pub sha: String,
    pub environment: String,
    pub created_at: String,
    pub statuses: Vec<(u64, String, String)>,
}

/// An issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIssue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

/// A repository's history for [`FakeGithub::add_history`].
#[derive(Debug, Clone, Default)]
pub struct FakeHistory {
    /// The default branch's commits, oldest first.
    pub commits: Vec<FakeRepoCommit>,
    /// Commits of pull request branches (not on the default branch).
    pub branch_commits: Vec<FakeRepoCommit>,
    pub pulls: Vec<FakePull>,
    pub statuses: Vec<FakeStatus>,
    pub deployments: Vec<FakeDeployment>,
    pub issues: Vec<FakeIssue>,
}

/// A changed file of a PR or a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFile {
    pub filename: String,
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
    pub patch: Option<String>,
}

impl FakeFile {
    /// A modified text file; additions and deletions are counted from the patch.
    pub fn modified(filename: &str, patch: &str) -> FakeFile {
        let count = |c| {
            patch
                .lines()
                .filter(|l| l.starts_with(c) && !l.starts_with(&format!("{c}{c}{c}")))
                .count() as u64
        };
        FakeFile {
            filename: filename.into(),
            status: "modified".into(),
            additions: count('+'),
            deletions: count('-'),
            patch: Some(patch.into()),
        }
    }

    /// A binary file: GitHub sends no patch for it.
    pub fn binary(filename: &str) -> FakeFile {
        FakeFile {
            filename: filename.into(),
            status: "added".into(),
            additions: 0,
            deletions: 0,
            patch: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub id: u64,
    pub login: String,
    /// `User` or `Bot`.
    pub user_type: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCheckRun {
    pub id: u64,
    pub app_id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
}

/// A write the model accepted: method, path and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub method: String,
    pub path: String,
    pub body: Value,
}

struct Pull {
    head_sha: String,
    files: Vec<FakeFile>,
    commits: Vec<String>,
    /// What the pulls listing says of it (pulls added by `add_pull` are not listed).
    history: Option<FakePull>,
}

struct Model {
    url: String,
    next_id: u64,
    /// Token → installation.
    tokens: HashMap<String, u64>,
    token_requests: usize,
    token_lifetime: chrono::Duration,
    pulls: HashMap<(String, u64), Pull>,
    commits: HashMap<(String, String), Vec<FakeFile>>,
    comments: HashMap<(String, u64), Vec<FakeComment>>,
    check_runs: HashMap<String, Vec<FakeCheckRun>>,
    writes: Vec<Write>,
    histories: HashMap<String, FakeHistory>,
    /// Requests that carried `If-None-Match`, and those answered 304.
    conditional: usize,
    not_modified: usize,
    /// The ETag of the listing just answered.
    last_etag: Option<String>,
    /// How long writes take to answer (`None`: at once).
    write_delay: Option<std::time::Duration>,
    /// Organisation → its teams: `(slug, member logins)`, in order.
    teams: std::collections::BTreeMap<String, Vec<(String, Vec<String>)>>,
}

pub struct FakeGithub {
    server: MockServer,
    model: Arc<Mutex<Model>>,
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        let server = MockServer::start().await;
        let model = Arc::new(Mutex::new(Model {
            url: server.uri(),
            next_id: 1000,
            tokens: HashMap::new(),
            token_requests: 0,
            token_lifetime: chrono::Duration::hours(1),
            pulls: HashMap::new(),
            commits: HashMap::new(),
            comments: HashMap::new(),
            check_runs: HashMap::new(),
            writes: Vec::new(),
            histories: HashMap::new(),
            conditional: 0,
            not_modified: 0,
            last_etag: None,
            write_delay: None,
            teams: Default::default(),
        }));
        Mock::given(any())
            .respond_with(Router(model.clone()))
            .with_priority(u8::MAX)
            .mount(&server)
            .await;
        FakeGithub { server, model }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// The configuration of the fake App: its id, its (test-only) key, this server.
    pub fn app_config(&self) -> AppConfig {
        AppConfig {
            app_id: APP_ID,
            private_key_pem: PRIVATE_KEY.into(),
            api_url: self.url(),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().expect("fake model lock")
    }

    /// Answers writes after `delay`, as GitHub's take a few hundred milliseconds (they
    /// are applied at once: a listing meanwhile sees them).
    pub fn set_write_delay(&self, delay: std::time::Duration) {
        self.model().write_delay = Some(delay);
    }

    /// Installation tokens minted from now on last this long (GitHub: one hour).
    pub fn set_token_lifetime(&self, lifetime: chrono::Duration) {
        self.model().token_lifetime = lifetime;
    }

    /// Adds a team to an organisation: the App's installation ([`INSTALLATION`]) then
    /// lists the organisation, and its teams and members answer.
    pub fn add_team(&self, org: &str, slug: &str, members: &[&str]) {
        self.model()
            .teams
            .entry(org.into())
            .or_default()
            .push((slug.into(), members.iter().map(|m| m.to_string()).collect()));
    }

    pub fn add_pull(&self, repo: &str, number: u64, head_sha: &str, files: Vec<FakeFile>) {
        self.model().pulls.insert(
            (repo.into(), number),
            Pull {
                head_sha: head_sha.into(),
                files,
                commits: Vec::new(),
                history: None,
            },
        );
    }

    /// Adds a repository's history: its pull requests become listed (with their commits),
    /// and its commits, statuses, deployments and issues answer the listings.
    pub fn add_history(&self, repo: &str, history: FakeHistory) {
        let mut m = self.model();
        for p in &history.pulls {
            m.pulls.insert(
                (repo.into(), p.number),
                Pull {
                    head_sha: p.head_sha.clone(),
                    files: Vec::new(),
                    commits: p.commits.clone(),
                    history: Some(p.clone()),
                },
            );
        }
        m.histories.insert(repo.into(), history);
    }

    /// Requests that carried `If-None-Match`, and how many of them were answered 304.
    pub fn conditional_requests(&self) -> (usize, usize) {
        let m = self.model();
        (m.conditional, m.not_modified)
    }

    /// Adds a commit to the repo and, as its newest, to the PR.
    pub fn add_commit(&self, repo: &str, pr: u64, sha: &str, files: Vec<FakeFile>) {
        let mut m = self.model();
        m.commits.insert((repo.into(), sha.into()), files);
        m.pulls
            .get_mut(&(repo.to_string(), pr))
            .expect("add_pull first")
            .commits
            .push(sha.into());
    }

    /// A comment written by someone else (not recorded as a write). Returns its id.
    pub fn add_comment(
        &self,
        repo: &str,
        pr: u64,
        login: &str,
        user_type: &str,
        body: &str,
    ) -> u64 {
        let mut m = self.model();
        let id = m.id();
        m.comments
            .entry((repo.into(), pr))
            .or_default()
            .push(FakeComment {
                id,
                login: login.into(),
                user_type: user_type.into(),
                body: body.into(),
            });
        id
    }

    /// A check run made by some App (not recorded as a write). Returns its id.
    pub fn add_check_run(
        &self,
        repo: &str,
        app_id: u64,
        head_sha: &str,
        name: &str,
        summary: &str,
    ) -> u64 {
        let mut m = self.model();
        let id = m.id();
        m.check_runs
            .entry(repo.into())
            .or_default()
            .push(FakeCheckRun {
                id,
                app_id,
                name: name.into(),
                head_sha: head_sha.into(),
                status: "completed".into(),
                conclusion: Some("neutral".into()),
                title: Some(name.into()),
                summary: Some(summary.into()),
            });
        id
    }

    pub fn comments(&self, repo: &str, pr: u64) -> Vec<FakeComment> {
        self.model()
            .comments
            .get(&(repo.to_string(), pr))
            .cloned()
            .unwrap_or_default()
    }

    pub fn check_runs(&self, repo: &str) -> Vec<FakeCheckRun> {
        self.model()
            .check_runs
            .get(repo)
            .cloned()
            .unwrap_or_default()
    }

    /// Installation tokens minted so far.
    pub fn token_requests(&self) -> usize {
        self.model().token_requests
    }

    /// Every write the model accepted, in order.
    pub fn writes(&self) -> Vec<Write> {
        self.model().writes.clone()
    }

    /// GitHub's side of the manifest flow: `code` (once) converts into App [`APP_ID`]
    /// with the fake's key and a webhook secret, which is returned. The answer has the
    /// fields GitHub documents for `POST /app-manifests/{code}/conversions`.
    pub async fn add_manifest_code(&self, code: &str) -> String {
        let secret = format!("whsec-{code}-6f1e2d");
        let body = json!({
            "id": APP_ID,
            "slug": "tracelink-acme",
            "node_id": "A_kwDOBVk6sM4AAXGw",
            "owner": {"login": "acme", "id": 1, "node_id": "O_kgDOAAAAAQ", "type": "Organization", "site_admin": false},
            "name": "tracelink (acme)",
            "description": "What did your AI coding agents' work turn into?",
            "external_url": "https://tl.acme.example",
            "html_url": "https://github.com/apps/tracelink-acme",
            "created_at": "2026-12-01T09:00:00Z",
            "updated_at": "2026-12-01T09:00:00Z",
            "permissions": {"metadata": "read", "contents": "read", "pull_requests": "write", "checks": "write"},
            "events": ["push", "pull_request"],
            "installations_count": 0,
            "client_id": "Iv23liTRACELINKacme01",
            "client_secret": "0c7e1a7f3f4b9d2e6a5c8b1d0e9f8a7b6c5d4e3f",
            "webhook_secret": secret,
            "pem": PRIVATE_KEY,
        });
        Mock::given(method("POST"))
            .and(path(format!("/app-manifests/{code}/conversions")))
            .respond_with(ResponseTemplate::new(201).set_body_json(body))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
            .await;
        secret
    }

    /// The next `count` requests matching the method and path regex answer `status`.
    pub async fn fail_next(&self, verb: &str, path: &str, status: u16, count: u64) {
        let answer = ResponseTemplate::new(status).set_body_json(json!({
            "message": "Server Error",
            "documentation_url": "https://docs.github.com/rest",
        }));
        self.inject(verb, path, answer, count).await;
    }

    /// The next `count` requests matching answer a secondary rate limit: 403 with
    /// `retry-after: {retry_after}`, as GitHub does.
    pub async fn rate_limit_next(&self, verb: &str, path: &str, retry_after: u64, count: u64) {
        let answer = ResponseTemplate::new(403)
            .insert_header("retry-after", retry_after.to_string().as_str())
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "4987")
            .set_body_json(json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            }));
        self.inject(verb, path, answer, count).await;
    }

    /// The next `count` requests matching answer an exhausted primary rate limit:
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` `reset_in` seconds on.
    pub async fn exhaust_rate_limit_next(&self, verb: &str, path: &str, reset_in: i64, count: u64) {
        let reset = chrono::Utc::now().timestamp() + reset_in;
        let answer = ResponseTemplate::new(403)
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
            .set_body_json(json!({
                "message": "API rate limit exceeded for installation ID 77.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }));
        self.inject(verb, path, answer, count).await;
    }

    async fn inject(&self, verb: &str, path: &str, answer: ResponseTemplate, count: u64) {
        Mock::given(method(verb))
            .and(path_regex(path))
            .respond_with(answer)
            .up_to_n_times(count)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// Requests received for exactly this method and path (query ignored), failed
    /// ones included.
    pub async fn requests_to(&self, verb: &str, path: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == path)
            .count()
    }

    /// Every request received, as `METHOD /path?query`.
    pub async fn requests(&self) -> Vec<String> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| match r.url.query() {
                Some(q) => format!("{} {}?{q}", r.method, r.url.path()),
                None => format!("{} {}", r.method, r.url.path()),
            })
            .collect()
    }
}

struct Router(Arc<Mutex<Model>>);

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        match self.0.lock() {
            Ok(mut model) => {
                let answer = model.answer(req);
                // A write is applied at once and answered after the delay, as GitHub's
                // take a few hundred milliseconds: what others read meanwhile sees it.
                match (req.method.as_str(), model.write_delay) {
                    ("POST" | "PATCH" | "PUT" | "DELETE", Some(d)) => answer.set_delay(d),
                    _ => answer,
                }
            }
            Err(_) => ResponseTemplate::new(500),
        }
    }
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
    }))
}

fn not_found() -> ResponseTemplate {
    error(404, "Not Found")
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture parses")
}

fn first_item(text: &str) -> Value {
    fixture(text)[0].clone()
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: Value,
}

impl Model {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Answers a request; a 200 with an ETag whose tag the request's `If-None-Match`
    /// names is answered 304 with no body, as GitHub does.
    fn answer(&mut self, req: &Request) -> ResponseTemplate {
        let sent = req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = self.route(req);
        let Some(sent) = sent else {
            return answer;
        };
        self.conditional += 1;
        // The listings leave their tag in the model (a template's headers cannot be
        // read back).
        match self.last_etag.take() {
            Some(tag) if tag == sent => {
                self.not_modified += 1;
                ResponseTemplate::new(304).insert_header("etag", tag.as_str())
            }
            _ => answer,
        }
    }

    fn route(&mut self, req: &Request) -> ResponseTemplate {
        self.last_etag = None;
        let segments: Vec<String> = req
            .url
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let verb = req.method.as_str();

        if seg.first() == Some(&"app") {
            if let Err(why) = self.check_jwt(req) {
                return error(401, &why);
            }
            return match (verb, seg.as_slice()) {
                ("GET", ["app"]) => self.app(),
                ("GET", ["app", "installations"]) => self.list_installations(),
                ("POST", ["app", "installations", id, "access_tokens"]) => self.mint_token(id),
                _ => not_found(),
            };
        }

        if let ("GET", ["repos", owner, name, "installation"]) = (verb, seg.as_slice()) {
            if let Err(why) = self.check_jwt(req) {
                return error(401, &why);
            }
            return self.repo_installation(owner, name);
        }
        let Some(token) = bearer(req) else {
            return error(401, "Requires authentication");
        };
        if !self.tokens.contains_key(&token) {
            return error(401, "Bad credentials");
        }
        match (verb, seg.as_slice()) {
            ("GET", ["orgs", org, "teams"]) => return self.list_teams(req, org),
            ("GET", ["orgs", org, "teams", slug, "members"]) => {
                return self.list_team_members(req, org, slug);
            }
            _ => {}
        }
        let ["repos", owner, name, rest @ ..] = seg.as_slice() else {
            return not_found();
        };
        let repo = format!("{owner}/{name}");
        let body: Value = req.body_json().unwrap_or(Value::Null);
        match (verb, rest) {
            ("GET", ["issues", n, "comments"]) => self.list_comments(req, &repo, n),
            ("POST", ["issues", n, "comments"]) => self.create_comment(req, &repo, n, body),
            ("PATCH", ["issues", "comments", id]) => self.edit_comment(req, &repo, id, body),
            ("DELETE", ["issues", "comments", id]) => self.delete_comment(req, &repo, id),
            ("GET", ["pulls"]) => self.list_pulls(req, &repo),
            ("GET", ["commits"]) => self.list_commits(req, &repo),
            ("GET", ["commits", sha, "statuses"]) => self.list_statuses(req, &repo, sha),
            ("GET", ["deployments"]) => self.list_deployments(req, &repo),
            ("GET", ["deployments", id, "statuses"]) => {
                self.list_deployment_statuses(req, &repo, id)
            }
            ("GET", ["issues"]) => self.list_issues(req, &repo),
            ("GET", ["pulls", n]) => self.get_pull(&repo, n),
            ("GET", ["pulls", n, "files"]) => self.pull_files(req, &repo, n),
            ("GET", ["pulls", n, "commits"]) => self.pull_commits(req, &repo, n),
            ("GET", ["commits", sha]) => self.commit(req, &repo, sha),
            ("GET", ["commits", sha, "check-runs"]) => self.list_check_runs(req, &repo, sha),
            ("POST", ["check-runs"]) => self.create_check_run(req, &repo, body),
            ("PATCH", ["check-runs", id]) => self.update_check_run(req, &repo, id, body),
            _ => not_found(),
        }
    }

    /// An RS256 JWT signed by the App's key, issued by the App, not expired.
    fn check_jwt(&self, req: &Request) -> Result<(), String> {
        let jwt = bearer(req).ok_or("A JSON web token could not be decoded")?;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes())
            .map_err(|e| format!("test public key: {e}"))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // octocrab writes `iss` as a number, which the library's own issuer check
        // (strings only) would call missing: it is checked below instead.
        validation.set_required_spec_claims(&["exp", "iat"]);
        let data = jsonwebtoken::decode::<Claims>(&jwt, &key, &validation)
            .map_err(|e| format!("A JSON web token could not be decoded: {e}"))?;
        let iss = match &data.claims.iss {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if iss != Some(APP_ID) {
            return Err(format!("'Issuer' claim ('iss') must be {APP_ID}"));
        }
        Ok(())
    }

    fn app(&self) -> ResponseTemplate {
        let mut app = fixture(CHECK_RUN_JSON)["app"].clone();
        app["id"] = json!(APP_ID);
        app["slug"] = json!(SLUG);
        app["name"] = json!("tracelink (test)");
        app["html_url"] = json!(format!("https://github.com/apps/{SLUG}"));
        ResponseTemplate::new(200).set_body_json(app)
    }

    /// `GET /app/installations`: the installation on each organisation with teams.
    fn list_installations(&mut self) -> ResponseTemplate {
        let body: Vec<Value> = self
            .teams
            .keys()
            .map(|org| {
                json!({"id": INSTALLATION, "app_id": APP_ID, "target_type": "Organization",
                    "account": {"login": org, "id": 1, "type": "Organization"}})
            })
            .collect();
        self.listing(Value::Array(body), None)
    }

    /// `GET /orgs/{org}/teams`, paged.
    fn list_teams(&mut self, req: &Request, org: &str) -> ResponseTemplate {
        let Some(teams) = self.teams.get(org) else {
            return not_found();
        };
        let items: Vec<Value> = teams
            .iter()
            .enumerate()
            .map(|(i, (slug, _))| {
                json!({"id": i + 1, "name": slug, "slug": slug, "privacy": "closed",
                    "permission": "pull", "parent": null})
            })
            .collect();
        self.paged(req, items)
    }

    /// `GET /orgs/{org}/teams/{slug}/members`, paged.
    fn list_team_members(&mut self, req: &Request, org: &str, slug: &str) -> ResponseTemplate {
        let Some((_, members)) = self
            .teams
            .get(org)
            .and_then(|t| t.iter().find(|(s, _)| s == slug))
        else {
            return not_found();
        };
        let items: Vec<Value> = members
            .iter()
            .enumerate()
            .map(|(i, login)| json!({"login": login, "id": i + 1, "type": "User"}))
            .collect();
        self.paged(req, items)
    }

    fn mint_token(&mut self, installation: &str) -> ResponseTemplate {
        if installation.parse::<u64>().ok() != Some(INSTALLATION) {
            return not_found();
        }
        self.token_requests += 1;
        let token = format!("ghs_fake{:032}", self.token_requests);
        self.tokens.insert(token.clone(), INSTALLATION);
        let mut body = fixture(TOKEN_JSON);
        body["token"] = json!(token);
        body["expires_at"] = json!(
            (chrono::Utc::now() + self.token_lifetime)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        body["repository_selection"] = json!("all");
        if let Some(obj) = body.as_object_mut() {
            obj.remove("repositories");
        }
        ResponseTemplate::new(201).set_body_json(body)
    }

    fn record(&mut self, req: &Request, body: Value) {
        self.writes.push(Write {
            method: req.method.to_string(),
            path: req.url.path().to_string(),
            body,
        });
    }

    /// One page of `items` as GitHub pages it: `per_page` (default `default`, at most
    /// `max`) and `page`, with `Link` to the first, previous, next and last pages.
    fn page(
        &self,
        req: &Request,
        items: Vec<Value>,
        default: usize,
        max: usize,
    ) -> (Vec<Value>, Option<String>) {
        let query: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let per_page = query
            .get("per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .clamp(1, max);
        let page: usize = query
            .get("page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1);
        let last = items.len().div_ceil(per_page).max(1);
        // Other parameters (state, since, labels) stay in the links, as GitHub's do.
        let rest: String = req
            .url
            .query_pairs()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| format!("&{k}={}", crate::ids::url_encode(&v)))
            .collect();
        let link = |p: usize, rel: &str| {
            format!(
                "<{}{}?per_page={per_page}&page={p}{rest}>; rel=\"{rel}\"",
                self.url,
                req.url.path()
            )
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < last {
            links.push(link(page + 1, "next"));
            links.push(link(last, "last"));
        }
        if page > 1 {
            links.push(link(1, "first"));
        }
        let slice = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        (slice, (!links.is_empty()).then(|| links.join(", ")))
    }

    fn paged(&mut self, req: &Request, items: Vec<Value>) -> ResponseTemplate {
        let (slice, link) = self.page(req, items, 30, 100);
        self.listing(Value::Array(slice), link)
    }

    /// A 200 listing with its `Link` and an ETag over its body and links.
    fn listing(&mut self, body: Value, link: Option<String>) -> ResponseTemplate {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.to_string().hash(&mut h);
        link.hash(&mut h);
        let tag = format!("W/\"{:016x}\"", h.finish());
        self.last_etag = Some(tag.clone());
        with_link(
            ResponseTemplate::new(200)
                .insert_header("etag", tag.as_str())
                .set_body_json(body),
            link,
        )
    }

    fn comment_json(&self, repo: &str, pr: u64, c: &FakeComment) -> Value {
        let mut v = fixture(COMMENT_JSON);
        v["id"] = json!(c.id);
        v["node_id"] = json!(format!("IC_fake{}", c.id));
        v["url"] = json!(format!(
            "{}/repos/{repo}/issues/comments/{}",
            self.url, c.id
        ));
        v["html_url"] = json!(format!(
            "https://github.com/{repo}/pull/{pr}#issuecomment-{}",
            c.id
        ));
        v["issue_url"] = json!(format!("{}/repos/{repo}/issues/{pr}", self.url));
        v["body"] = json!(c.body);
        v["user"]["login"] = json!(c.login);
        v["user"]["type"] = json!(c.user_type);
        v["user"]["id"] = json!(c.login.len() as u64 * 1000 + 7);
        v["author_association"] = json!(if c.user_type == "Bot" {
            "NONE"
        } else {
            "MEMBER"
        });
        v
    }

    fn list_comments(&mut self, req: &Request, repo: &str, n: &str) -> ResponseTemplate {
        let Some(pr) = self.pull_number(repo, n) else {
            return not_found();
        };
        let items = self
            .comments
            .get(&(repo.to_string(), pr))
            .map(|cs| cs.iter().map(|c| self.comment_json(repo, pr, c)).collect())
            .unwrap_or_default();
        self.paged(req, items)
    }

    fn create_comment(
        &mut self,
        req: &Request,
        repo: &str,
        n: &str,
        body: Value,
    ) -> ResponseTemplate {
        let Some(pr) = self.pull_number(repo, n) else {
            return not_found();
        };
        let Some(text) = body["body"].as_str() else {
            return error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
        };
        let comment = FakeComment {
            id: self.id(),
            login: format!("{SLUG}[bot]"),
            user_type: "Bot".into(),
            body: text.into(),
        };
        let answer = self.comment_json(repo, pr, &comment);
        self.comments
            .entry((repo.into(), pr))
            .or_default()
            .push(comment);
        self.record(req, body);
        ResponseTemplate::new(201).set_body_json(answer)
    }

    fn edit_comment(
        &mut self,
        req: &Request,
        repo: &str,
        id: &str,
        body: Value,
    ) -> ResponseTemplate {
        let Ok(id) = id.parse::<u64>() else {
            return not_found();
        };
        let Some(text) = body["body"].as_str().map(str::to_owned) else {
            return error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
        };
        let found = self.comments.iter_mut().find_map(|((r, pr), cs)| {
            (r == repo)
                .then(|| cs.iter_mut().find(|c| c.id == id).map(|c| (*pr, c)))
                .flatten()
        });
        let Some((pr, comment)) = found else {
            return not_found();
        };
        // An App may only edit its own comments.
        if comment.login != format!("{SLUG}[bot]") {
            return error(403, "Resource not accessible by integration");
        }
        comment.body = text;
        let comment = comment.clone();
        self.record(req, body);
        ResponseTemplate::new(200).set_body_json(self.comment_json(repo, pr, &comment))
    }

    fn delete_comment(&mut self, req: &Request, repo: &str, id: &str) -> ResponseTemplate {
        let Ok(id) = id.parse::<u64>() else {
            return not_found();
        };
        let Some(comments) = self
            .comments
            .iter_mut()
            .find_map(|((r, _), cs)| (r == repo && cs.iter().any(|c| c.id == id)).then_some(cs))
        else {
            return not_found();
        };
        // An App may only delete its own comments.
        if comments
            .iter()
            .any(|c| c.id == id && c.login != format!("{SLUG}[bot]"))
        {
            return error(403, "Resource not accessible by integration");
        }
        comments.retain(|c| c.id != id);
        self.record(req, Value::Null);
        ResponseTemplate::new(204)
    }

    fn pull_number(&self, repo: &str, n: &str) -> Option<u64> {
        let n = n.parse().ok()?;
        self.pulls.contains_key(&(repo.to_string(), n)).then_some(n)
    }

    fn pull(&self, repo: &str, n: &str) -> Option<&Pull> {
        self.pulls.get(&(repo.to_string(), n.parse().ok()?))
    }

    fn diff_entry(&self, repo: &str, sha: &str, f: &FakeFile) -> Value {
        let mut v = first_item(DIFF_ENTRIES_JSON);
        v["sha"] = json!(format!("{:040x}", f.filename.len() * 7919));
        v["filename"] = json!(f.filename);
        v["status"] = json!(f.status);
        v["additions"] = json!(f.additions);
        v["deletions"] = json!(f.deletions);
        v["changes"] = json!(f.additions + f.deletions);
        v["blob_url"] = json!(format!(
            "https://github.com/{repo}/blob/{sha}/{}",
            f.filename
        ));
        v["raw_url"] = json!(format!(
            "https://github.com/{repo}/raw/{sha}/{}",
            f.filename
        ));
        v["contents_url"] = json!(format!(
            "{}/repos/{repo}/contents/{}?ref={sha}",
            self.url, f.filename
        ));
        match &f.patch {
            Some(p) => v["patch"] = json!(p),
            None => {
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("patch");
                }
            }
        }
        v
    }

    fn pull_files(&mut self, req: &Request, repo: &str, n: &str) -> ResponseTemplate {
        let Some(pull) = self.pull(repo, n) else {
            return not_found();
        };
        let items = pull
            .files
            .iter()
            .take(3000)
            .map(|f| self.diff_entry(repo, &pull.head_sha, f))
            .collect();
        self.paged(req, items)
    }

    /// A pull request (open), with its head.
    fn get_pull(&self, repo: &str, n: &str) -> ResponseTemplate {
        let Some(pull) = self.pull(repo, n) else {
            return not_found();
        };
        let mut v: Value = serde_json::from_str(PULL_JSON).unwrap_or(Value::Null);
        v["number"] = json!(n.parse::<u64>().unwrap_or(0));
        v["state"] = json!("open");
        v["head"]["sha"] = json!(pull.head_sha);
        v["url"] = json!(format!("{}/repos/{repo}/pulls/{n}", self.url));
        ResponseTemplate::new(200).set_body_json(v)
    }

    fn pull_commits(&mut self, req: &Request, repo: &str, n: &str) -> ResponseTemplate {
        let Some(pull) = self.pull(repo, n) else {
            return not_found();
        };
        let items = pull
            .commits
            .iter()
            .take(250)
            .map(|sha| self.commit_item(repo, sha))
            .collect();
        self.paged(req, items)
    }

    /// A commit as the listings show it: from the repository's history when it is there.
    fn commit_item(&self, repo: &str, sha: &str) -> Value {
        let mut v = first_item(COMMIT_ITEMS_JSON);
        v["sha"] = json!(sha);
        v["url"] = json!(format!("{}/repos/{repo}/commits/{sha}", self.url));
        v["html_url"] = json!(format!("https://github.com/{repo}/commit/{sha}"));
        v["commit"]["tree"]["sha"] = json!(sha);
        v["parents"] = json!([]);
        let known = self.histories.get(repo).and_then(|h| {
            h.commits
                .iter()
                .chain(&h.branch_commits)
                .find(|c| c.sha == sha)
        });
        if let Some(c) = known {
            v["commit"]["message"] = json!(c.message);
            for who in ["author", "committer"] {
                v["commit"][who] = json!({"name": c.name, "email": c.email, "date": c.date});
                v[who]["login"] = json!(c.login);
            }
            v["parents"] = json!(
                c.parents
                    .iter()
                    .map(|p| json!({"sha": p, "url": format!("{}/repos/{repo}/commits/{p}", self.url),
                        "html_url": format!("https://github.com/{repo}/commit/{p}")}))
                    .collect::<Vec<_>>()
            );
        }
        v
    }

    fn history(&self, repo: &str) -> FakeHistory {
        self.histories.get(repo).cloned().unwrap_or_default()
    }

    /// `GET /repos/{o}/{r}/pulls`: listed pull requests, most recently updated first.
    fn list_pulls(&mut self, req: &Request, repo: &str) -> ResponseTemplate {
        let query: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let state = query.get("state").map_or("open", String::as_str);
        let mut pulls: Vec<FakePull> = self
            .pulls
            .iter()
            .filter(|((r, _), _)| r == repo)
            .filter_map(|(_, p)| p.history.clone())
            .filter(|p| state == "all" || (state == "open") == p.merged_at.is_none())
            .collect();
        pulls.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then(b.number.cmp(&a.number))
        });
        let items = pulls.iter().map(|p| self.pull_item(repo, p)).collect();
        self.paged(req, items)
    }

    fn pull_item(&self, repo: &str, p: &FakePull) -> Value {
        let mut v: Value = fixture(PULL_JSON);
        v["number"] = json!(p.number);
        v["id"] = json!(p.number * 1000);
        v["title"] = json!(p.title);
        v["url"] = json!(format!("{}/repos/{repo}/pulls/{}", self.url, p.number));
        v["state"] = json!(if p.merged_at.is_some() {
            "closed"
        } else {
            "open"
        });
        v["draft"] = json!(false);
        v["user"]["login"] = json!(p.login);
        v["head"]["ref"] = json!(p.head_ref);
        v["head"]["sha"] = json!(p.head_sha);
        v["head"]["repo"]["full_name"] = json!(repo);
        v["base"]["ref"] = json!("main");
        v["base"]["sha"] = json!(p.base_sha);
        v["base"]["repo"]["full_name"] = json!(repo);
        v["created_at"] = json!(p.created_at);
        v["updated_at"] = json!(p.updated_at);
        v["closed_at"] = json!(p.merged_at);
        v["merged_at"] = json!(p.merged_at);
        v["merge_commit_sha"] = json!(p.merge_commit_sha);
        // The listing's items carry no `merged` (only a single pull request does).
        if let Some(obj) = v.as_object_mut() {
            obj.remove("merged");
        }
        v
    }

    /// `GET /repos/{o}/{r}/commits?since=`: the default branch's commits, newest first.
    fn list_commits(&mut self, req: &Request, repo: &str) -> ResponseTemplate {
        let query: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let since = query.get("since").cloned().unwrap_or_default();
        let h = self.history(repo);
        let items = h
            .commits
            .iter()
            .rev()
            .filter(|c| rfc3339(&c.date) >= rfc3339(&since))
            .map(|c| self.commit_item(repo, &c.sha))
            .collect();
        self.paged(req, items)
    }

    /// `GET /repos/{o}/{r}/commits/{ref}/statuses`: newest first.
    fn list_statuses(&mut self, req: &Request, repo: &str, sha: &str) -> ResponseTemplate {
        let h = self.history(repo);
        let mut statuses: Vec<&FakeStatus> = h.statuses.iter().filter(|s| s.sha == sha).collect();
        statuses.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        let items = statuses
            .iter()
            .map(|s| {
                json!({"url": format!("{}/repos/{repo}/statuses/{sha}", self.url), "id": s.id,
                    "node_id": format!("SC_fake{}", s.id), "state": s.state, "description": null,
                    "target_url": null, "context": s.context, "created_at": s.at, "updated_at": s.at,
                    "avatar_url": null, "creator": null})
            })
            .collect();
        self.paged(req, items)
    }

    /// `GET /repos/{o}/{r}/deployments`: newest first.
    fn list_deployments(&mut self, req: &Request, repo: &str) -> ResponseTemplate {
        let h = self.history(repo);
        let mut ds: Vec<&FakeDeployment> = h.deployments.iter().collect();
        ds.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let items = ds
            .iter()
            .map(|d| {
                let mut v = first_item(DEPLOYMENT_ITEMS_JSON);
                v["id"] = json!(d.id);
                v["url"] = json!(format!("{}/repos/{repo}/deployments/{}", self.url, d.id));
                v["sha"] = json!(d.sha);
                v["ref"] = json!("main");
                v["environment"] = json!(d.environment);
                v["original_environment"] = json!(d.environment);
                v["created_at"] = json!(d.created_at);
                v["updated_at"] = json!(d.created_at);
                v["statuses_url"] = json!(format!(
                    "{}/repos/{repo}/deployments/{}/statuses",
                    self.url, d.id
                ));
                v["repository_url"] = json!(format!("{}/repos/{repo}", self.url));
                v
            })
            .collect();
        self.paged(req, items)
    }

    /// `GET /repos/{o}/{r}/deployments/{id}/statuses`: newest first.
    fn list_deployment_statuses(
        &mut self,
        req: &Request,
        repo: &str,
        id: &str,
    ) -> ResponseTemplate {
        let h = self.history(repo);
        let Some(d) = h.deployments.iter().find(|d| d.id.to_string() == id) else {
            return not_found();
        };
        let items = d
            .statuses
            .iter()
            .rev()
            .map(|(sid, state, at)| {
                let mut v = first_item(DEPLOYMENT_STATUS_ITEMS_JSON);
                v["id"] = json!(sid);
                v["url"] = json!(format!(
                    "{}/repos/{repo}/deployments/{id}/statuses/{sid}",
                    self.url
                ));
                v["state"] = json!(state);
                v["environment"] = json!(d.environment);
                v["created_at"] = json!(at);
                v["updated_at"] = json!(at);
                v["deployment_url"] = json!(format!("{}/repos/{repo}/deployments/{id}", self.url));
                v["repository_url"] = json!(format!("{}/repos/{repo}", self.url));
                v
            })
            .collect();
        self.paged(req, items)
    }

    /// `GET /repos/{o}/{r}/issues?labels=&state=&since=`: newest first.
    fn list_issues(&mut self, req: &Request, repo: &str) -> ResponseTemplate {
        let query: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let labels: Vec<String> = query
            .get("labels")
            .map(|l| {
                l.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let state = query.get("state").map_or("open", String::as_str);
        let since = query.get("since").cloned().unwrap_or_default();
        let h = self.history(repo);
        let mut issues: Vec<&FakeIssue> = h
            .issues
            .iter()
            .filter(|i| {
                labels
                    .iter()
                    .all(|l| i.labels.iter().any(|il| il.eq_ignore_ascii_case(l)))
            })
            .filter(|i| state == "all" || (state == "open") == i.closed_at.is_none())
            .filter(|i| rfc3339(&i.updated_at) >= rfc3339(&since))
            .collect();
        issues.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(b.number.cmp(&a.number))
        });
        let items = issues
            .iter()
            .map(|i| {
                json!({"id": i.number * 100, "node_id": format!("I_fake{}", i.number),
                    "url": format!("{}/repos/{repo}/issues/{}", self.url, i.number),
                    "number": i.number, "title": i.title, "body": i.body,
                    "state": if i.closed_at.is_some() { "closed" } else { "open" },
                    "labels": i.labels.iter().map(|l| json!({"name": l, "color": "d73a4a", "default": false})).collect::<Vec<_>>(),
                    "user": {"login": "oncall", "id": 9, "type": "User"},
                    "created_at": i.created_at, "updated_at": i.updated_at, "closed_at": i.closed_at,
                    "comments": 0, "locked": false, "author_association": "MEMBER"})
            })
            .collect();
        self.paged(req, items)
    }

    /// `GET /repos/{o}/{r}/installation` (as the App): the one installation.
    fn repo_installation(&self, owner: &str, name: &str) -> ResponseTemplate {
        let repo = format!("{owner}/{name}");
        if !self.histories.contains_key(&repo) && !self.pulls.keys().any(|(r, _)| *r == repo) {
            return not_found();
        }
        let mut v = fixture(INSTALLATION_JSON);
        v["id"] = json!(INSTALLATION);
        v["app_id"] = json!(APP_ID);
        v["access_tokens_url"] = json!(format!(
            "{}/app/installations/{INSTALLATION}/access_tokens",
            self.url
        ));
        ResponseTemplate::new(200).set_body_json(v)
    }

    /// A commit with its files; GitHub pages the files of a big commit, 300 a page.
    fn commit(&self, req: &Request, repo: &str, sha: &str) -> ResponseTemplate {
        let Some(files) = self.commits.get(&(repo.to_string(), sha.to_string())) else {
            return error(422, &format!("No commit found for SHA: {sha}"));
        };
        let entries: Vec<Value> = files
            .iter()
            .map(|f| self.diff_entry(repo, sha, f))
            .collect();
        let (page, link) = self.page(req, entries, 300, 300);
        let mut v = fixture(COMMIT_JSON);
        v["sha"] = json!(sha);
        v["url"] = json!(format!("{}/repos/{repo}/commits/{sha}", self.url));
        v["html_url"] = json!(format!("https://github.com/{repo}/commit/{sha}"));
        let (adds, dels) = files
            .iter()
            .fold((0, 0), |(a, d), f| (a + f.additions, d + f.deletions));
        v["stats"] = json!({"additions": adds, "deletions": dels, "total": adds + dels});
        v["files"] = json!(page);
        with_link(ResponseTemplate::new(200).set_body_json(v), link)
    }

    fn check_run_json(&self, repo: &str, c: &FakeCheckRun) -> Value {
        let mut v = fixture(CHECK_RUN_JSON);
        v["id"] = json!(c.id);
        v["node_id"] = json!(format!("CR_fake{}", c.id));
        v["head_sha"] = json!(c.head_sha);
        v["name"] = json!(c.name);
        v["external_id"] = json!("");
        v["url"] = json!(format!("{}/repos/{repo}/check-runs/{}", self.url, c.id));
        v["html_url"] = json!(format!("https://github.com/{repo}/runs/{}", c.id));
        v["status"] = json!(c.status);
        v["conclusion"] = json!(c.conclusion);
        v["output"]["title"] = json!(c.title);
        v["output"]["summary"] = json!(c.summary);
        v["output"]["text"] = Value::Null;
        v["output"]["annotations_count"] = json!(0);
        v["app"]["id"] = json!(c.app_id);
        v["app"]["slug"] = json!(if c.app_id == APP_ID {
            SLUG
        } else {
            "some-other-app"
        });
        v["pull_requests"] = json!([]);
        v
    }

    fn list_check_runs(&mut self, req: &Request, repo: &str, sha: &str) -> ResponseTemplate {
        let query: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let mut runs: Vec<&FakeCheckRun> = self
            .check_runs
            .get(repo)
            .map(|rs| rs.iter().filter(|r| r.head_sha == sha).collect())
            .unwrap_or_default();
        if let Some(name) = query.get("check_name") {
            runs.retain(|r| &r.name == name);
        }
        if let Some(app) = query.get("app_id") {
            runs.retain(|r| r.app_id.to_string() == *app);
        }
        // `filter=latest` (the default): the newest run of each name and app.
        if query.get("filter").is_none_or(|f| f == "latest") {
            let mut newest: HashMap<(&str, u64), &FakeCheckRun> = HashMap::new();
            for r in runs {
                let e = newest.entry((r.name.as_str(), r.app_id)).or_insert(r);
                if r.id > e.id {
                    *e = r;
                }
            }
            runs = newest.into_values().collect();
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        let items: Vec<Value> = runs.iter().map(|r| self.check_run_json(repo, r)).collect();
        let (page, link) = self.page(req, items.clone(), 30, 100);
        let body = json!({ "total_count": items.len(), "check_runs": page });
        self.listing(body, link)
    }

    fn create_check_run(&mut self, req: &Request, repo: &str, body: Value) -> ResponseTemplate {
        let (Some(name), Some(head_sha)) = (body["name"].as_str(), body["head_sha"].as_str())
        else {
            return error(
                422,
                "Invalid request.\n\n\"name\", \"head_sha\" weren't supplied.",
            );
        };
        let run = FakeCheckRun {
            id: self.id(),
            app_id: APP_ID,
            name: name.into(),
            head_sha: head_sha.into(),
            status: body["status"].as_str().unwrap_or("queued").into(),
            conclusion: body["conclusion"].as_str().map(str::to_owned),
            title: body["output"]["title"].as_str().map(str::to_owned),
            summary: body["output"]["summary"].as_str().map(str::to_owned),
        };
        let answer = self.check_run_json(repo, &run);
        self.check_runs.entry(repo.into()).or_default().push(run);
        self.record(req, body);
        ResponseTemplate::new(201).set_body_json(answer)
    }

    fn update_check_run(
        &mut self,
        req: &Request,
        repo: &str,
        id: &str,
        body: Value,
    ) -> ResponseTemplate {
        let Ok(id) = id.parse::<u64>() else {
            return not_found();
        };
        let Some(run) = self
            .check_runs
            .get_mut(repo)
            .and_then(|rs| rs.iter_mut().find(|r| r.id == id))
        else {
            return not_found();
        };
        if run.app_id != APP_ID {
            return error(403, "Resource not accessible by integration");
        }
        if let Some(name) = body["name"].as_str() {
            run.name = name.into();
        }
        if let Some(status) = body["status"].as_str() {
            run.status = status.into();
        }
        if let Some(conclusion) = body["conclusion"].as_str() {
            run.conclusion = Some(conclusion.into());
        }
        if let Some(title) = body["output"]["title"].as_str() {
            run.title = Some(title.into());
        }
        if let Some(summary) = body["output"]["summary"].as_str() {
            run.summary = Some(summary.into());
        }
        let run = run.clone();
        self.record(req, body);
        ResponseTemplate::new(200).set_body_json(self.check_run_json(repo, &run))
    }
}

fn bearer(req: &Request) -> Option<String> {
    let value = req.headers.get("authorization")?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))?;
    Some(token.trim().to_string())
}

fn with_link(answer: ResponseTemplate, link: Option<String>) -> ResponseTemplate {
    match link {
        Some(link) => answer.insert_header("link", link.as_str()),
        None => answer,
    }
}

/// Nanoseconds of an RFC 3339 time (0 when it is none).
fn rfc3339(t: &str) -> i64 {
    crate::time::parse_rfc3339(t).unwrap_or(0)
}
