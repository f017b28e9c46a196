//! `POST /api/v1/ci/uploads`: coverage and test reports from the GitHub Action.
//!
//! A multipart request: a part named `context` (JSON, [`Context`]) and one part per
//! report file (its file name taken from the part). In order:
//!
//! 1. **Auth**, before any part is read: `Authorization: Bearer <token>` is a static
//!    upload token ([`oidc::static_token_repositories`]) or a GitHub Actions OIDC token
//!    ([`oidc::Verifier`]); refused → 401 with the reason (503 when the issuer's keys
//!    cannot be fetched).
//! 2. **Parts**, within the route's body limit (`--max-upload-bytes`, 413 beyond) and at
//!    most [`MAX_FILES`] files. A missing or unreadable context → 400 naming the field;
//!    a context for another repository than the credentials' → 401.
//! 3. **Parse** each file (format detected from content; 422 naming the file when it is
//!    none of the five, or naming file, format and line when it cannot be read), and
//!    normalise its paths to the repository (unmatched paths are reported, not stored).
//!    Nothing is stored unless every file reads.
//! 4. **Store** through the single writer ([`crate::store::uploads`]), durable before the
//!    answer: 201 when something new was stored, 200 when every file was already stored
//!    for this (run, attempt, job). The body is JSON (`files` with each one's format, line or
//!    test totals and unmatched paths; `stored`, `already_stored`), with a markdown
//!    `summary` for the job's step summary and the run's `trace_id`.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Report;
use super::oidc::{self, AuthError, Principal};
use crate::config::ServeArgs;
use crate::store::uploads::{FileContent, TestCaseRow, UploadBatch, UploadFile};
use crate::store::writer::{SubmitError, Work};

/// Most report files in one upload.
pub const MAX_FILES: usize = 100;
/// Largest `context` part.
const MAX_CONTEXT_BYTES: usize = 64 * 1024;
/// Unmatched paths listed per file in the answer.
const MAX_UNMATCHED_SHOWN: usize = 20;

/// What the upload route needs.
#[derive(Clone)]
pub struct UploadState {
    pub uploads: std::sync::Arc<UploadConfig>,
    pub writer: crate::store::writer::WriterHandle,
}

/// How uploads are authenticated and bounded.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub oidc_issuer: String,
    pub oidc_audience: String,
    /// `owner/repo` → static token.
    pub static_tokens: Vec<(String, String)>,
    pub max_bytes: usize,
    /// Verifies OIDC tokens and caches the issuer's keys.
    pub verifier: std::sync::Arc<oidc::Verifier>,
}

impl UploadConfig {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut static_tokens = Vec::new();
        for t in &args.upload_tokens {
            let (repo, token) = t.0.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--upload-token must be owner/repo=TOKEN (one was not)")
            })?;
            static_tokens.push((repo.trim().to_ascii_lowercase(), token.trim().to_string()));
        }
        Ok(Self {
            oidc_issuer: args.oidc_issuer.clone(),
            oidc_audience: args.oidc_audience.clone(),
            static_tokens,
            max_bytes: args.max_upload_bytes,
            verifier: std::sync::Arc::new(oidc::Verifier::new(
                &args.oidc_issuer,
                &args.oidc_audience,
            )),
        })
    }
}

/// The run an upload comes from, as the Action sends it.
#[derive(Debug, Deserialize)]
pub struct Context {
    pub repository: String,
    /// The commit the reports are for: the PR head SHA on pull_request events.
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub run_id: Num,
    pub run_attempt: Num,
    pub job: String,
    #[serde(default)]
    pub pr_number: Option<Num>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    /// `$GITHUB_WORKSPACE`, stripped from report paths.
    #[serde(default)]
    pub workspace: Option<String>,
}

/// A number the Action may have written as a JSON number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Num {
    Int(i64),
    Text(String),
}

impl Num {
    fn get(&self) -> Option<i64> {
        match self {
            Num::Int(n) => Some(*n),
            Num::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// Why an upload was refused: the status and the JSON body.
#[derive(Debug)]
pub struct UploadError(StatusCode, Value);

impl UploadError {
    fn bad(msg: impl Into<String>) -> Self {
        UploadError(StatusCode::BAD_REQUEST, json!({ "error": msg.into() }))
    }
}

impl From<AuthError> for UploadError {
    fn from(e: AuthError) -> Self {
        let status = if e.is_unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        };
        UploadError(status, json!({ "error": e.to_string() }))
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(self.1)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

pub async fn receive(
    State(state): State<UploadState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match handle(&state, &headers, multipart).await {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &UploadState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Value), UploadError> {
    let principal = authenticate(state, headers).await?;
    let mut multipart = multipart
        .map_err(|e| UploadError::bad(format!("expected a multipart/form-data body: {e}")))?;

    let mut context: Option<Bytes> = None;
    let mut files: Vec<(String, Bytes)> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let part = field.name().unwrap_or("").to_string();
        if part == "context" {
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if bytes.len() > MAX_CONTEXT_BYTES {
                return Err(UploadError::bad("the context part is larger than 64 KiB"));
            }
            context = Some(bytes);
            continue;
        }
        let name = field
            .file_name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty() && n.len() <= 512)
            .ok_or_else(|| {
                UploadError::bad(format!("part {part:?} has no file name (or one too long)"))
            })?;
        if files.len() == MAX_FILES {
            return Err(UploadError::bad(format!(
                "more than {MAX_FILES} files in one upload"
            )));
        }
        let bytes = field.bytes().await.map_err(multipart_error)?;
        files.push((name, bytes));
    }
    let context = context.ok_or_else(|| UploadError::bad("missing the `context` part"))?;
    let run = read_context(&context)?;
    principal.allows(&run.repo)?;
    if files.is_empty() {
        return Err(UploadError::bad("no report files in the upload"));
    }

    let (repo, workspace) = (run.repo.clone(), run.workspace.clone());
    let parsed = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .map(|(name, bytes)| read_file(name, &bytes, &repo, workspace.as_deref()))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "parsing an upload panicked");
        UploadError(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "reading the reports failed"}),
        )
    })??;

    let trace_id = crate::ids::encode_hex(&crate::ids::workflow_trace_id(run.run_id, run.attempt));
    let mut batch = run.batch;
    let mut unmatched = Vec::with_capacity(parsed.len());
    for (file, u) in parsed {
        batch.files.push(file);
        unmatched.push(u);
    }
    let file_views: Vec<Value> = batch
        .files
        .iter()
        .zip(&unmatched)
        .map(|(f, u)| file_view(f, u))
        .collect();
    let summary = summary_markdown(&batch, &file_views, &trace_id);
    let (repo, sha, n_files) = (batch.repo.clone(), batch.sha.clone(), batch.files.len());
    let written = state
        .writer
        .submit_work(Work::Upload(Box::new(batch)))
        .await
        .map_err(|e| match e {
            SubmitError::Overloaded(_) => UploadError(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": e.to_string()}),
            ),
            SubmitError::ShuttingDown => UploadError(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": e.to_string()}),
            ),
            SubmitError::Storage(_) => {
                tracing::error!(error = %e, "storing an upload failed");
                UploadError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "storing the upload failed"}),
                )
            }
        })?;
    tracing::info!(%repo, %sha, files = n_files, stored = written.inserted, "CI upload");
    let status = if written.inserted > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        json!({
            "repository": repo,
            "sha": sha,
            "trace_id": trace_id,
            "stored": written.inserted,
            "already_stored": written.duplicates,
            "files": file_views,
            "summary": summary,
        }),
    ))
}

async fn authenticate(state: &UploadState, headers: &HeaderMap) -> Result<Principal, UploadError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = crate::otlp::bearer(auth)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    let repositories = oidc::static_token_repositories(&state.uploads.static_tokens, token);
    if !repositories.is_empty() {
        return Ok(Principal::Static { repositories });
    }
    if !oidc::looks_like_jwt(token) {
        return Err(AuthError::UnknownToken.into());
    }
    Ok(state.uploads.verifier.verify(token).await?)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> UploadError {
    UploadError(
        e.status(),
        json!({ "error": format!("reading the upload: {}", e.body_text()) }),
    )
}

/// The context, checked: the batch to store (without files) and what parsing needs.
struct Run {
    repo: String,
    run_id: i64,
    attempt: i64,
    workspace: Option<String>,
    batch: UploadBatch,
}

fn read_context(bytes: &[u8]) -> Result<Run, UploadError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let c: Context = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            UploadError::bad(format!("context: {}", e.inner()))
        } else {
            UploadError::bad(format!("context.{path}: {}", e.inner()))
        }
    })?;
    let repo = c.repository.trim().to_ascii_lowercase();
    let valid_repo = match repo.split_once('/') {
        Some((o, n)) => {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 100
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            ok(o) && ok(n)
        }
        None => false,
    };
    if !valid_repo {
        return Err(UploadError::bad(format!(
            "context.repository: {:?} is not owner/name",
            c.repository
        )));
    }
    let sha = crate::ids::CommitSha::parse(&c.sha)
        .map_err(|e| UploadError::bad(format!("context.sha: {e}")))?;
    let positive = |field: &str, n: &Num| {
        n.get()
            .filter(|v| *v > 0)
            .ok_or_else(|| UploadError::bad(format!("context.{field}: not a positive integer")))
    };
    let run_id = positive("run_id", &c.run_id)?;
    let attempt = positive("run_attempt", &c.run_attempt)?;
    let pr_number = match &c.pr_number {
        None => None,
        Some(Num::Text(s)) if s.trim().is_empty() => None,
        Some(n) => Some(positive("pr_number", n)?),
    };
    let job = c.job.trim().to_string();
    if job.is_empty() || job.len() > 256 {
        return Err(UploadError::bad(
            "context.job: empty or longer than 256 bytes",
        ));
    }
    let git_ref = c.git_ref.trim().to_string();
    if git_ref.len() > 1024 {
        return Err(UploadError::bad("context.ref: longer than 1024 bytes"));
    }
    let mut flags: Vec<String> = c
        .flags
        .unwrap_or_default()
        .iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    if let Some(bad) = flags.iter().find(|f| {
        f.len() > 64
            || !f
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }) {
        return Err(UploadError::bad(format!(
            "context.flags: {bad:?} is not a flag (letters, digits, - _ . only, up to 64)"
        )));
    }
    flags.sort();
    flags.dedup();
    let workspace = c.workspace.filter(|w| !w.trim().is_empty());
    Ok(Run {
        repo: repo.clone(),
        run_id,
        attempt,
        workspace,
        batch: UploadBatch {
            repo,
            sha: sha.to_string(),
            git_ref,
            run_id,
            attempt,
            job,
            pr_number,
            flags: flags.join(","),
            received_ns: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
            files: Vec::new(),
        },
    })
}

/// Detects, parses and normalises one file; 422 when it cannot be read.
fn read_file(
    name: String,
    bytes: &[u8],
    repo: &str,
    workspace: Option<&str>,
) -> Result<(UploadFile, Vec<String>), UploadError> {
    let unprocessable = |body: Value| UploadError(StatusCode::UNPROCESSABLE_ENTITY, body);
    let head = &bytes[..bytes.len().min(8192)];
    let Some(format) = super::detect(head) else {
        return Err(unprocessable(json!({
            "error": format!("{name}: format not recognised (tracelink reads lcov, Cobertura XML, JaCoCo XML, Go coverprofiles and JUnit XML)"),
            "file": name,
        })));
    };
    let report = super::parse(bytes, format).map_err(|e| {
        unprocessable(json!({
            "error": format!("{name}: {e}"),
            "file": name,
            "format": format.as_str(),
            "line": e.line,
        }))
    })?;
    let (content, unmatched) = match report {
        Report::Coverage(c) => {
            let (c, unmatched) = c.normalise_paths(repo, workspace);
            (coverage_rows(&c), unmatched)
        }
        Report::Tests(mut t) => {
            let unmatched = super::normalise_test_files(&mut t, repo, workspace);
            (
                FileContent::Tests(t.into_iter().map(test_row).collect()),
                unmatched,
            )
        }
    };
    let digest = crate::ids::encode_hex(&Sha256::digest(bytes));
    Ok((
        UploadFile {
            name,
            format: format.as_str(),
            digest,
            size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            content,
        },
        unmatched,
    ))
}

/// A parsed coverage report as the store keeps it: covered and missed lines per file.
fn coverage_rows(c: &super::LineCoverage) -> FileContent {
    let (covered, coverable) = c.totals();
    FileContent::Coverage {
        covered: i64::try_from(covered).unwrap_or(i64::MAX),
        coverable: i64::try_from(coverable).unwrap_or(i64::MAX),
        files: c
            .files
            .iter()
            .map(|(path, lines)| {
                let hit = lines
                    .iter()
                    .filter(|(_, h)| **h > 0)
                    .map(|(l, _)| *l)
                    .collect();
                let missed = lines
                    .iter()
                    .filter(|(_, h)| **h == 0)
                    .map(|(l, _)| *l)
                    .collect();
                (path.clone(), hit, missed)
            })
            .collect(),
    }
}

fn test_row(t: super::TestCase) -> TestCaseRow {
    TestCaseRow {
        suite: t.suite,
        classname: t.classname,
        name: t.name,
        file: t.file,
        outcome: t.outcome.as_str(),
        duration_s: t.duration_s,
        message: t.message,
    }
}

/// One file of the answer: `{name, format, digest, lines | tests, unmatched, unmatched_count}`.
fn file_view(f: &UploadFile, unmatched: &[String]) -> Value {
    let mut v = json!({
        "name": f.name,
        "format": f.format,
        "digest": f.digest,
        "unmatched": unmatched.iter().take(MAX_UNMATCHED_SHOWN).collect::<Vec<_>>(),
        "unmatched_count": unmatched.len(),
    });
    match &f.content {
        FileContent::Coverage {
            covered, coverable, ..
        } => {
            v["lines"] = json!({
                "covered": covered,
                "coverable": coverable,
                "pct": pct(*covered as u64, *coverable as u64),
            });
        }
        FileContent::Tests(t) => {
            let (passed, failed, skipped) =
                t.iter().fold((0, 0, 0), |(p, f, s), t| match t.outcome {
                    "passed" => (p + 1, f, s),
                    "skipped" => (p, f, s + 1),
                    _ => (p, f + 1, s),
                });
            v["tests"] = json!({"passed": passed, "failed": failed, "skipped": skipped});
        }
    }
    v
}

/// A percentage with two decimals; `None` for 0 of 0.
pub fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

/// The markdown the Action writes to the job's step summary.
fn summary_markdown(b: &UploadBatch, files: &[Value], trace_id: &str) -> String {
    let mut s = String::from(
        "### tracelink: CI upload\n\n| file | format | result |\n| --- | --- | --- |\n",
    );
    for f in files {
        let result = if let Some(l) = f.get("lines") {
            match l["pct"].as_f64() {
                Some(p) => format!(
                    "{p:.2}% of lines covered ({}/{})",
                    l["covered"], l["coverable"]
                ),
                None => "no coverable lines".to_string(),
            }
        } else if let Some(t) = f.get("tests") {
            format!(
                "{} passed, {} failed, {} skipped",
                t["passed"], t["failed"], t["skipped"]
            )
        } else {
            String::new()
        };
        let name = f["name"].as_str().unwrap_or("").replace('|', "\\|");
        let _ = writeln!(
            s,
            "| `{name}` | {} | {result} |",
            f["format"].as_str().unwrap_or("")
        );
    }
    let unmatched: Vec<&str> = files
        .iter()
        .flat_map(|f| f["unmatched"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if !unmatched.is_empty() {
        let _ = writeln!(
            s,
            "\nPaths not found in the repository (left out): {}",
            unmatched
                .iter()
                .take(10)
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let flags = if b.flags.is_empty() {
        String::new()
    } else {
        format!(" · flags `{}`", b.flags)
    };
    let _ = writeln!(
        s,
        "\nCommit `{}` · run {} attempt {} · job `{}`{flags} · trace `{trace_id}`",
        &b.sha[..b.sha.len().min(12)],
        b.run_id,
        b.attempt,
        b.job
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(v: Value) -> Result<Run, UploadError> {
        read_context(v.to_string().as_bytes())
    }

    fn err(r: Result<Run, UploadError>) -> String {
        match r {
            Err(UploadError(s, b)) => {
                assert_eq!(s, StatusCode::BAD_REQUEST);
                b["error"].as_str().unwrap_or("").to_string()
            }
            Ok(_) => panic!("expected a refusal"),
        }
    }

    fn good() -> Value {
        json!({"repository": "Acme/Demo", "sha": "A".repeat(40), "ref": "refs/pull/3/merge",
               "run_id": 7, "run_attempt": "2", "job": "test", "pr_number": "",
               "flags": ["unit", "py", "unit"], "workspace": ""})
    }

    #[test]
    fn context_is_read_and_normalised() {
        let r = ctx(good()).map_err(|e| e.1).unwrap();
        assert_eq!(r.repo, "acme/demo");
        assert_eq!(r.batch.sha, "a".repeat(40));
        assert_eq!((r.run_id, r.attempt), (7, 2));
        assert_eq!(r.batch.flags, "py,unit");
        assert_eq!(r.batch.pr_number, None);
        assert_eq!(r.workspace, None);
    }

    #[test]
    fn context_errors_name_the_field() {
        let mut v = good();
        v.as_object_mut().unwrap().remove("job");
        assert!(err(ctx(v)).contains("missing field `job`"));
        let mut v = good();
        v["sha"] = json!("abc");
        assert!(err(ctx(v)).starts_with("context.sha:"));
        let mut v = good();
        v["run_id"] = json!(-1);
        assert!(err(ctx(v)).starts_with("context.run_id:"));
        let mut v = good();
        v["flags"] = json!(["a b"]);
        assert!(err(ctx(v)).starts_with("context.flags:"));
        let mut v = good();
        v["repository"] = json!("nope");
        assert!(err(ctx(v)).starts_with("context.repository:"));
        assert!(err(read_context(b"{")).starts_with("context"));
    }

    #[test]
    fn unreadable_files_name_file_format_and_line() {
        let e = read_file("a.info".into(), b"SF:a.c\nDA:x,1\n", "acme/demo", None)
            .map(drop)
            .unwrap_err();
        assert_eq!(e.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.1["format"], "lcov");
        assert_eq!(e.1["line"], 2);
        assert!(
            e.1["error"]
                .as_str()
                .unwrap()
                .starts_with("a.info: lcov line 2:")
        );
        let e = read_file("x.json".into(), b"{}", "acme/demo", None)
            .map(drop)
            .unwrap_err();
        assert!(
            e.1["error"]
                .as_str()
                .unwrap()
                .contains("x.json: format not recognised")
        );
    }

    #[test]
    fn percentages_round_to_two_decimals() {
        assert_eq!(pct(2, 3), Some(66.67));
        assert_eq!(pct(0, 0), None);
        assert_eq!(pct(5, 5), Some(100.0));
    }
}
