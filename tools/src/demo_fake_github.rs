//! A tiny in-process GitHub for `tracelink demo`: just enough of the REST API for the App
//! to post its comment and check run, answering from an in-memory model.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
pub struct Model {
    /// (repo, pr) → files of the PR diff.
    pub pulls: BTreeMap<(String, u64), (Vec<String>, Vec<Value>)>,
    /// (repo, sha) → files of the commit.
    pub commits: BTreeMap<(String, String), Vec<Value>>,
    /// (repo, pr) → comments (id, body).
    pub comments: BTreeMap<(String, u64), Vec<(u64, String)>>,
    /// id → (repo, name, head_sha, title, summary).
    pub check_runs: BTreeMap<u64, (String, String, String, String, String)>,
    next_id: u64,
}

pub const SLUG: &str = "tracelink-demo";

#[derive(Clone, Default)]
pub struct FakeGithub {
    pub model: Arc<Mutex<Model>>,
}

type Shared = State<FakeGithub>;

impl FakeGithub {
    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves the fake on a loopback port; returns its base URL.
    pub async fn start(&self) -> anyhow::Result<String> {
        let app = Router::new()
            .route(
                "/app",
                get(|| async { Json(json!({"id": 1, "slug": SLUG, "name": "tracelink demo"})) }),
            )
            .route("/app/installations/{id}/access_tokens", post(token))
            .route("/repos/{o}/{r}/pulls/{n}/commits", get(pull_commits))
            .route("/repos/{o}/{r}/pulls/{n}/files", get(pull_files))
            .route("/repos/{o}/{r}/commits/{sha}", get(commit))
            .route("/repos/{o}/{r}/commits/{sha}/check-runs", get(check_runs))
            .route(
                "/repos/{o}/{r}/issues/{n}/comments",
                get(comments).post(create_comment),
            )
            .route("/repos/{o}/{r}/issues/comments/{id}", patch(edit_comment))
            .route("/repos/{o}/{r}/check-runs", post(create_check_run))
            .route("/repos/{o}/{r}/check-runs/{id}", patch(edit_check_run))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(format!("http://{addr}"))
    }
}

async fn token() -> (StatusCode, Json<Value>) {
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    (
        StatusCode::CREATED,
        Json(
            json!({"token": "ghs_demo", "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": {"pull_requests": "write", "checks": "write"}, "repository_selection": "all"}),
        ),
    )
}

async fn pull_commits(
    State(f): Shared,
    Path((o, r, n)): Path<(String, String, u64)>,
) -> Json<Value> {
    let m = f.model();
    let shas = m
        .pulls
        .get(&(format!("{o}/{r}"), n))
        .map(|p| p.0.clone())
        .unwrap_or_default();
    Json(Value::Array(
        shas.into_iter().map(|sha| json!({"sha": sha})).collect(),
    ))
}

async fn pull_files(State(f): Shared, Path((o, r, n)): Path<(String, String, u64)>) -> Json<Value> {
    let m = f.model();
    Json(Value::Array(
        m.pulls
            .get(&(format!("{o}/{r}"), n))
            .map(|p| p.1.clone())
            .unwrap_or_default(),
    ))
}

async fn commit(
    State(f): Shared,
    Path((o, r, sha)): Path<(String, String, String)>,
) -> Json<Value> {
    let m = f.model();
    let files = m
        .commits
        .get(&(format!("{o}/{r}"), sha.clone()))
        .cloned()
        .unwrap_or_default();
    Json(json!({"sha": sha, "files": files}))
}

fn comment_json(id: u64, body: &str) -> Value {
    json!({"id": id, "body": body, "user": {"login": format!("{SLUG}[bot]"), "type": "Bot"}})
}

async fn comments(State(f): Shared, Path((o, r, n)): Path<(String, String, u64)>) -> Json<Value> {
    let m = f.model();
    let list = m
        .comments
        .get(&(format!("{o}/{r}"), n))
        .cloned()
        .unwrap_or_default();
    Json(Value::Array(
        list.iter().map(|(id, b)| comment_json(*id, b)).collect(),
    ))
}

async fn create_comment(
    State(f): Shared,
    Path((o, r, n)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut m = f.model();
    m.next_id += 1;
    let id = m.next_id;
    let text = body["body"].as_str().unwrap_or_default().to_string();
    m.comments
        .entry((format!("{o}/{r}"), n))
        .or_default()
        .push((id, text.clone()));
    (StatusCode::CREATED, Json(comment_json(id, &text)))
}

async fn edit_comment(
    State(f): Shared,
    Path((_o, _r, id)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut m = f.model();
    let text = body["body"].as_str().unwrap_or_default().to_string();
    for list in m.comments.values_mut() {
        for c in list.iter_mut().filter(|c| c.0 == id) {
            c.1 = text.clone();
        }
    }
    Json(comment_json(id, &text))
}

fn run_json(id: u64, run: &(String, String, String, String, String)) -> Value {
    json!({"id": id, "name": run.1, "head_sha": run.2, "status": "completed", "conclusion": "neutral",
        "output": {"title": run.3, "summary": run.4}, "app": {"id": 1}})
}

async fn check_runs(
    State(f): Shared,
    Path((o, r, sha)): Path<(String, String, String)>,
) -> Json<Value> {
    let m = f.model();
    let repo = format!("{o}/{r}");
    let runs: Vec<Value> = m
        .check_runs
        .iter()
        .filter(|(_, c)| c.0 == repo && c.2 == sha)
        .map(|(id, c)| run_json(*id, c))
        .collect();
    Json(json!({"total_count": runs.len(), "check_runs": runs}))
}

async fn create_check_run(
    State(f): Shared,
    Path((o, r)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut m = f.model();
    m.next_id += 1;
    let id = m.next_id;
    let run = (
        format!("{o}/{r}"),
        body["name"].as_str().unwrap_or_default().to_string(),
        body["head_sha"].as_str().unwrap_or_default().to_string(),
        body["output"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["output"]["summary"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let json = run_json(id, &run);
    m.check_runs.insert(id, run);
    (StatusCode::CREATED, Json(json))
}

async fn edit_check_run(
    State(f): Shared,
    Path((_o, _r, id)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut m = f.model();
    let Some(run) = m.check_runs.get_mut(&id) else {
        return Json(json!({}));
    };
    if let Some(t) = body["output"]["title"].as_str() {
        run.3 = t.to_string();
    }
    if let Some(s) = body["output"]["summary"].as_str() {
        run.4 = s.to_string();
    }
    Json(run_json(id, run))
}
