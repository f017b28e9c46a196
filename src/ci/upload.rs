//! `POST /api/v1/ci/uploads`: coverage and test reports from the GitHub Action.
//!
//! A multipart request: a part named `context` (JSON, [`Context`]) and one part per
//! report file (its file name taken from the part). In order:
//!
//! 1. **Auth**, before any part is read: `Authorization: Bearer <token>` is a static
//!    upload token ([`oidc::static_token_repositories`]) or a GitHub Actions OIDC token
//!    ([`oidc::Verifier`]); refused → 401 with the reason (503 when the issuer's keys
//!    cannot be fetched).
//! 2. **Parts, one at a time**, within the route's body limit (`--max-upload-bytes`, 413
//!    beyond) and at most [`MAX_FILES`] files. The context is checked as soon as it comes
//!    (the Action sends it first): missing or unreadable → 400 naming the field; for
//!    another repository than the credentials' → 401. Each file is read whole, **parsed**
//!    (format detected from content; 422 naming the file when it is none of the seven,
//!    or naming file, format and line when it cannot be read) and dropped before the next
//!    part is read, so an upload holds one file's bytes at a time beside its parsed
//!    reports — line ranges and test cases, at most [`MAX_UPLOAD_ENTRIES`] of them
//!    together, counted while each file is parsed (413 beyond). A file's error found
//!    before the context arrived is answered once the context has been checked. Then
//!    each report's paths are normalised to the repository (unmatched paths are
//!    reported, not stored). Nothing is stored unless every file reads.
//! 3. **Store** through the single writer ([`crate::store::uploads`]), durable before the
//!    answer: 201 when something new was stored, 200 when every file was already stored
//!    for this (run, attempt, job). The body is JSON (`files` with each one's format, line or
//!    test totals and unmatched paths; `stored`, `already_stored`), with a markdown
//!    `summary` for the job's step summary and the run's `trace_id`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::binding::{self, Pending};
use super::context::{Run, read_context};
use super::oidc::{self, AuthError, Principal};
use super::{Format, Report};
use crate::config::ServeArgs;
use crate::ids::{PrNumber, RepoName};
use crate::line_set::LineSetBuilder;
use crate::metrics::coverage::pct;
use crate::store::line_records::LineRecordRow;
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
    /// For the pull request's report summary in the answer.
    pub db: crate::store::Db,
    pub reports: std::sync::Arc<crate::impact::ReportContext>,
    /// Wakes the publisher: an upload queues the reports it changes.
    pub publisher: std::sync::Arc<tokio::sync::Notify>,
    /// Confirms a pull request's head the deliveries have not told yet.
    pub app: crate::github::app::AppSlot,
}

/// How uploads are authenticated and bounded.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub oidc_issuer: String,
    pub oidc_audience: String,
    /// `owner/repo` → static token.
    pub static_tokens: Vec<(String, String)>,
    /// `owner/repo` or `owner/*` (lower case): OIDC uploads accepted without an App
    /// installation or delivery naming the repository.
    pub upload_repos: Vec<String>,
    pub max_bytes: usize,
    /// Uploads being read and parsed ([`UPLOAD_SLOTS`]).
    pub slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// How long a report waits for more changes before it is published
    /// (`--comment-debounce-secs`): an upload queues its pull requests' reports.
    pub report_debounce: std::time::Duration,
    /// Verifies OIDC tokens and caches the issuer's keys.
    pub verifier: std::sync::Arc<oidc::Verifier>,
}

impl UploadConfig {
    /// Whether `--upload-repos` lists `repo` (lower case), by name or by its owner.
    pub fn listed(&self, repo: &str) -> bool {
        let owner = repo.split_once('/').map_or(repo, |(o, _)| o);
        self.upload_repos
            .iter()
            .any(|r| r == repo || r.strip_suffix("/*") == Some(owner))
    }

    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut static_tokens = Vec::new();
        for t in &args.upload_tokens {
            let (repo, token) = t.0.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--upload-token must be owner/repo=TOKEN (one was not)")
            })?;
            static_tokens.push((repo.trim().to_ascii_lowercase(), token.trim().to_string()));
        }
        let mut upload_repos = Vec::new();
        for r in &args.upload_repos {
            let r = r.trim().to_ascii_lowercase();
            match r.split_once('/') {
                Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => {
                    upload_repos.push(r)
                }
                _ => anyhow::bail!("--upload-repos takes owner/repo or owner/*, not {r:?}"),
            }
        }
        Ok(Self {
            oidc_issuer: args.oidc_issuer.clone(),
            oidc_audience: args.oidc_audience.clone(),
            static_tokens,
            upload_repos,
            max_bytes: args.max_upload_bytes,
            report_debounce: std::time::Duration::from_secs(args.comment_debounce),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(UPLOAD_SLOTS)),
            verifier: std::sync::Arc::new(oidc::Verifier::new(
                &args.oidc_issuer,
                &args.oidc_audience,
            )),
        })
    }
}

/// The most entries one upload's parsed reports may hold together: line ranges of
/// coverage (covered and missed, per file) and of line records, and test cases. Lines
/// are never held one by one, so this bounds memory however many lines the ranges name.
pub const MAX_UPLOAD_ENTRIES: u64 = 2_000_000;

/// Uploads read and parsed at once: each holds one file of at most `--max-upload-bytes`
/// and at most [`MAX_UPLOAD_ENTRIES`] parsed entries, so this bounds what all of them hold
/// together.
pub const UPLOAD_SLOTS: usize = 2;
/// How long an upload waits for a slot before it is told to come back (429).
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why an upload was refused: the status and the JSON body.
#[derive(Debug)]
pub struct UploadError(pub(super) StatusCode, pub(super) Value);

impl UploadError {
    pub(super) fn bad(msg: impl Into<String>) -> Self {
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
        if self.0 == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
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
    // Memory: only so many uploads are read and parsed at once; the rest wait, briefly.
    let _slot = tokio::time::timeout(SLOT_WAIT, state.uploads.slots.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            UploadError(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": format!("{UPLOAD_SLOTS} uploads are being read already; retry after a few seconds")}),
            )
        })?;
    let mut multipart = multipart
        .map_err(|e| UploadError::bad(format!("expected a multipart/form-data body: {e}")))?;

    // Part by part: a file is parsed, and its bytes dropped, before the next is read.
    let mut parts = PartReader::default();
    let mut run: Option<Run> = None;
    let mut parsed = ParsedFiles::new(MAX_UPLOAD_ENTRIES);
    // A file's error found before the context came: the context's checks answer first.
    let mut held: Option<UploadError> = None;
    while let Some(part) = parts.next(&mut multipart).await? {
        match part {
            Part::Context(bytes) => {
                if run.is_some() {
                    return Err(UploadError::bad("more than one `context` part"));
                }
                run = Some(check_context(state, &principal, &bytes).await?);
                if let Some(e) = held.take() {
                    return Err(e);
                }
            }
            Part::File { name, bytes } => {
                if held.is_some() {
                    continue;
                }
                // Parsing is CPU work: off the async workers.
                let room = parsed.room();
                let file = tokio::task::spawn_blocking(move || parse_file(name, &bytes, room))
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "parsing an upload panicked");
                        UploadError(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            json!({"error": "reading the reports failed"}),
                        )
                    })?;
                match file.and_then(|f| parsed.push(f)) {
                    Ok(()) => {}
                    Err(e) if run.is_some() => return Err(e),
                    Err(e) => held = Some(e),
                }
            }
        }
    }
    let run = run.ok_or_else(|| UploadError::bad("missing the `context` part"))?;
    if parsed.is_empty() {
        return Err(UploadError::bad("no report files in the upload"));
    }
    let parsed = parsed.normalise(&run.repo, run.workspace.as_deref());

    let trace_id = crate::ids::encode_hex(&crate::ids::workflow_trace_id(run.run_id, run.attempt));
    let mut batch = run.batch;
    batch.report_due_ns = batch
        .received_ns
        .saturating_add(state.uploads.report_debounce.as_nanos() as i64);
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
    let pr_number = batch.pr_number;
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
    if written.inserted > 0 {
        state.publisher.notify_one();
    }
    let status = if written.inserted > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    // The pull request's report as it stands now, for the job summary (DESIGN.md §6).
    let pull_request_summary = match (pr_number, RepoName::parse(&repo)) {
        (Some(n), Ok(name)) => {
            match crate::impact::pull::build(&state.db, &state.reports, &name, PrNumber(n)).await {
                Ok(Some(b)) => {
                    let view = state.reports.comment_view(&state.db, &repo).await;
                    Some(crate::report::markdown::summary(&b.report, view))
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(%repo, number = n, error = %e, "building the report for an upload's answer");
                    None
                }
            }
        }
        _ => None,
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
            "pull_request_summary": pull_request_summary,
        }),
    ))
}

/// Reads the context part and checks it against the credentials: the repository is
/// theirs and one tracelink serves, and an OIDC token's run is the upload's.
async fn check_context(
    state: &UploadState,
    principal: &Principal,
    bytes: &[u8],
) -> Result<Run, UploadError> {
    let mut run = read_context(bytes)?;
    principal.allows(&run.repo)?;
    let pending = match principal {
        Principal::Oidc(claims) => binding::bind(claims, &mut run.batch)
            .map_err(|e| UploadError(StatusCode::FORBIDDEN, json!({ "error": e })))?,
        Principal::Static { .. } => Pending::Nothing,
    };
    // Any workflow on github.com can mint a token with tracelink's audience: an OIDC
    // upload is for a repository tracelink serves, or one listed in --upload-repos.
    if matches!(principal, Principal::Oidc { .. }) && !state.uploads.listed(&run.repo) {
        let served = state.db.repo_served(&run.repo).await.map_err(|e| {
            tracing::error!(error = %e, "checking an upload's repository");
            UploadError(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "checking the repository failed"}),
            )
        })?;
        if !served {
            return Err(UploadError(
                StatusCode::FORBIDDEN,
                json!({"error": format!(
                    "tracelink serves no repository {}: install the App on it (or list it in --upload-repos)",
                    run.repo
                )}),
            ));
        }
    }
    // A repository deleted and re-created (or renamed away and its name taken) under
    // the same name is another repository: its id is not the one deliveries named.
    if let Principal::Oidc(claims) = principal
        && let Some(claimed) = claims.repository_id
    {
        let served = state.db.served_repo(&run.repo).await.map_err(|e| {
            tracing::error!(error = %e, "reading a served repository");
            UploadError(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "checking the repository failed"}),
            )
        })?;
        if let Some(known) = served.and_then(|s| s.repo_id)
            && known != claimed
        {
            return Err(UploadError(
                StatusCode::FORBIDDEN,
                json!({"error": format!(
                    "the token's repository_id {claimed} is not {} (id {known}, as GitHub's deliveries name it): a different repository under the same name",
                    run.repo
                )}),
            ));
        }
    }
    if let Pending::PullHead { number, open_head } = pending {
        confirm_pull_head(state, &run.repo, number, &run.batch.sha, open_head).await?;
    }
    Ok(run)
}

/// Confirms that `sha` is a head pull request `number` has had (its open head, when
/// `open_head`): as the stored deliveries say, else as GitHub says when the App can ask.
async fn confirm_pull_head(
    state: &UploadState,
    repo: &str,
    number: i64,
    sha: &str,
    open_head: bool,
) -> Result<(), UploadError> {
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, repo, number, "checking an upload's pull request head");
        UploadError(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "checking the pull request's head failed"}),
        )
    };
    let sha = sha.to_ascii_lowercase();
    let stored = state
        .db
        .pull_request(repo, number)
        .await
        .map_err(|e| failed(&e))?;
    let known = match &stored {
        Some(p) if open_head => p.state == "open" && p.head_sha == sha,
        Some(p) if p.head_sha == sha => true,
        Some(_) => state
            .db
            .pull_heads(repo, number)
            .await
            .map_err(|e| failed(&e))?
            .contains(&sha),
        None => false,
    };
    if known {
        return Ok(());
    }
    // The upload may come before the delivery that says so: ask GitHub.
    let installation = state
        .db
        .repo_installation(repo)
        .await
        .map_err(|e| failed(&e))?;
    if let (Some(app), Some(inst)) = (state.app.get(), installation) {
        match app.pull_head(inst as u64, repo, number as u64).await {
            Ok((head, open)) if head == sha && (open || !open_head) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, repo, number, "asking GitHub for a pull request's head");
                return Err(UploadError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": format!("commit {sha} is not a known head of pull request #{number}, and GitHub could not be asked; retry shortly")}),
                ));
            }
        }
    }
    let what = if open_head {
        "the head of open pull request"
    } else {
        "a head of pull request"
    };
    Err(UploadError(
        StatusCode::FORBIDDEN,
        json!({"error": format!("commit {sha} is not {what} #{number} of {repo}: an OIDC upload is for its own run's commit")}),
    ))
}

/// One part of an upload.
pub enum Part {
    /// The `context` part (at most 64 KiB).
    Context(Bytes),
    /// A report file: its name and bytes.
    File { name: String, bytes: Bytes },
}

/// Reads an upload's parts one at a time: a context of at most 64 KiB, and at most
/// [`MAX_FILES`] files, each with a file name.
#[derive(Default)]
pub struct PartReader {
    files: usize,
}

impl PartReader {
    /// The next part, read whole (within the route's body limit); `None` after the last.
    pub async fn next(&mut self, multipart: &mut Multipart) -> Result<Option<Part>, UploadError> {
        let Some(field) = multipart.next_field().await.map_err(multipart_error)? else {
            return Ok(None);
        };
        let part = field.name().unwrap_or("").to_string();
        if part == "context" {
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if bytes.len() > MAX_CONTEXT_BYTES {
                return Err(UploadError::bad("the context part is larger than 64 KiB"));
            }
            return Ok(Some(Part::Context(bytes)));
        }
        let name = field
            .file_name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty() && n.len() <= 512)
            .ok_or_else(|| {
                UploadError::bad(format!("part {part:?} has no file name (or one too long)"))
            })?;
        if self.files == MAX_FILES {
            return Err(UploadError::bad(format!(
                "more than {MAX_FILES} files in one upload"
            )));
        }
        self.files += 1;
        let bytes = field.bytes().await.map_err(multipart_error)?;
        Ok(Some(Part::File { name, bytes }))
    }
}

/// One report file, parsed, its paths not yet placed in the repository.
pub struct ParsedFile {
    name: String,
    format: Format,
    /// SHA-256 of the file's bytes, hex.
    digest: String,
    size_bytes: i64,
    report: Report,
}

impl ParsedFile {
    /// What the report holds in memory: line ranges of coverage (covered and coverable)
    /// and of line records, test cases.
    pub fn entries(&self) -> u64 {
        match &self.report {
            Report::Coverage(c) => c.ranges() as u64,
            Report::Tests(t) => t.len() as u64,
            Report::Lines(records) => records.iter().map(|r| r.ranges.len() as u64).sum(),
        }
    }
}

/// What a file may hold while it is parsed: what is left of its upload's cap on entries.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    left: u64,
    cap: u64,
}

/// An upload's parsed files, held until the upload is stored: at most `max_entries`
/// entries ([`ParsedFile::entries`]) together.
pub struct ParsedFiles {
    files: Vec<ParsedFile>,
    entries: u64,
    max_entries: u64,
}

impl ParsedFiles {
    pub fn new(max_entries: u64) -> Self {
        ParsedFiles {
            files: Vec::new(),
            entries: 0,
            max_entries,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Entries held.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// What the next file may hold.
    pub fn room(&self) -> Room {
        Room {
            left: self.max_entries.saturating_sub(self.entries),
            cap: self.max_entries,
        }
    }

    /// Keeps a parsed file; 413 naming the cap when the upload's reports would hold more
    /// than it allows.
    pub fn push(&mut self, file: ParsedFile) -> Result<(), UploadError> {
        self.entries = self.entries.saturating_add(file.entries());
        if self.entries > self.max_entries {
            return Err(UploadError(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": format!(
                    "the upload's reports hold more than {} line ranges and test cases together (at {}); upload fewer or smaller reports",
                    self.max_entries, file.name
                )}),
            ));
        }
        self.files.push(file);
        Ok(())
    }

    /// Places every report's paths in the repository: the files as the store keeps them,
    /// each with the paths that could not be placed.
    pub fn normalise(self, repo: &str, workspace: Option<&str>) -> Vec<(UploadFile, Vec<String>)> {
        self.files
            .into_iter()
            .map(|f| normalise_file(f, repo, workspace))
            .collect()
    }
}

async fn authenticate(state: &UploadState, headers: &HeaderMap) -> Result<Principal, UploadError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = crate::otlp::bearer(auth)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    Ok(principal(&state.uploads, token).await?)
}

/// Who a CI token speaks for: a static upload token's repositories, or a verified GitHub
/// Actions OIDC token's repository.
pub async fn principal(cfg: &UploadConfig, token: &str) -> Result<Principal, AuthError> {
    let repositories = oidc::static_token_repositories(&cfg.static_tokens, token);
    if !repositories.is_empty() {
        return Ok(Principal::Static { repositories });
    }
    if !oidc::looks_like_jwt(token) {
        return Err(AuthError::UnknownToken);
    }
    cfg.verifier.verify(token).await
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> UploadError {
    UploadError(
        e.status(),
        json!({ "error": format!("reading the upload: {}", e.body_text()) }),
    )
}

/// Detects and parses one file, holding no more than `room` while it reads; 422 when it
/// cannot be read, 413 naming the upload's cap when it holds too much. Blocking work.
pub fn parse_file(name: String, bytes: &[u8], room: Room) -> Result<ParsedFile, UploadError> {
    let unprocessable = |body: Value| UploadError(StatusCode::UNPROCESSABLE_ENTITY, body);
    let head = &bytes[..bytes.len().min(8192)];
    let Some(format) = super::detect(head) else {
        return Err(unprocessable(json!({
            "error": format!("{name}: format not recognised (tracelink reads lcov, Cobertura XML, JaCoCo XML, Go coverprofiles, JUnit XML, git-ai notes behind a `git-ai-note <sha>` line and Agent Trace JSON)"),
            "file": name,
        })));
    };
    let report = super::parse_within(bytes, format, room.left).map_err(|e| {
        if e.over_limit {
            return UploadError(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({
                    "error": format!(
                        "the upload's reports hold more than {} line ranges and test cases together (at {name}, {format} line {}); upload fewer or smaller reports",
                        room.cap,
                        e.line.unwrap_or(0)
                    ),
                    "file": name,
                }),
            );
        }
        unprocessable(json!({
            "error": format!("{name}: {e}"),
            "file": name,
            "format": format.as_str(),
            "line": e.line,
        }))
    })?;
    Ok(ParsedFile {
        name,
        format,
        digest: crate::ids::encode_hex(&Sha256::digest(bytes)),
        size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        report,
    })
}

/// Places a parsed file's paths in the repository: the file as the store keeps it, and
/// the paths that could not be placed.
fn normalise_file(f: ParsedFile, repo: &str, workspace: Option<&str>) -> (UploadFile, Vec<String>) {
    let (content, unmatched) = match f.report {
        Report::Coverage(c) => {
            let (c, unmatched) = c.normalise_paths(repo, workspace);
            (coverage_rows(c), unmatched)
        }
        Report::Tests(mut t) => {
            let unmatched = super::normalise_test_files(&mut t, repo, workspace);
            (
                FileContent::Tests(t.into_iter().map(test_row).collect()),
                unmatched,
            )
        }
        Report::Lines(records) => {
            let (records, unmatched) = super::lines::normalise_paths(records, repo, workspace);
            (FileContent::Lines(line_rows(records)), unmatched)
        }
    };
    (
        UploadFile {
            name: f.name,
            format: f.format.as_str(),
            digest: f.digest,
            size_bytes: f.size_bytes,
            content,
        },
        unmatched,
    )
}

/// A parsed coverage report as the store keeps it: covered and missed lines per file.
fn coverage_rows(c: super::LineCoverage) -> FileContent {
    let (covered, coverable) = c.totals();
    FileContent::Coverage {
        covered: i64::try_from(covered).unwrap_or(i64::MAX),
        coverable: i64::try_from(coverable).unwrap_or(i64::MAX),
        files: c
            .files
            .into_iter()
            .map(|(path, f)| {
                let missed = f.missed();
                (path, f.covered, missed)
            })
            .collect(),
    }
}

/// Line records as the store keeps them: one row per (commit, path, agent, model), the
/// lines of every session merged.
fn line_rows(records: Vec<super::lines::LineRecord>) -> Vec<LineRecordRow> {
    type Key = (String, String, String, String);
    let mut rows: BTreeMap<Key, (BTreeSet<String>, LineSetBuilder)> = BTreeMap::new();
    for r in records {
        let e = rows
            .entry((r.commit, r.path, r.agent, r.model.unwrap_or_default()))
            .or_default();
        e.0.extend(r.session);
        for (a, b) in r.ranges {
            e.1.insert_range(a, b);
        }
    }
    rows.into_iter()
        .map(
            |((sha, path, agent, model), (sessions, lines))| LineRecordRow {
                sha,
                path,
                agent,
                model,
                sessions: sessions.into_iter().collect(),
                lines: lines.build(),
            },
        )
        .collect()
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
        FileContent::Lines(rows) => {
            let commits: BTreeSet<&str> = rows.iter().map(|r| r.sha.as_str()).collect();
            let files: BTreeSet<(&str, &str)> = rows
                .iter()
                .map(|r| (r.sha.as_str(), r.path.as_str()))
                .collect();
            v["line_records"] = json!({
                "commits": commits.len(),
                "files": files.len(),
                "agent_lines": rows.iter().map(|r| r.lines.len()).sum::<u64>(),
            });
        }
    }
    v
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
        } else if let Some(l) = f.get("line_records") {
            format!(
                "agent-written lines: {} in {} files of {} commits",
                l["agent_lines"], l["files"], l["commits"]
            )
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

    #[test]
    fn unreadable_files_name_file_format_and_line() {
        let e = parse_file("a.info".into(), b"SF:a.c\nDA:x,1\n", ROOM)
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
        let e = parse_file("x.json".into(), b"{}", ROOM)
            .map(drop)
            .unwrap_err();
        assert!(
            e.1["error"]
                .as_str()
                .unwrap()
                .contains("x.json: format not recognised")
        );
    }

    const ROOM: Room = Room {
        left: MAX_UPLOAD_ENTRIES,
        cap: MAX_UPLOAD_ENTRIES,
    };

    fn amplified_profile(blocks: usize) -> Vec<u8> {
        let mut p = String::from("mode: set\n");
        for i in 0..blocks {
            p.push_str(&format!(
                "github.com/acme/widgets/f{i}.go:1.1,100000.1 1 1\n"
            ));
        }
        p.into_bytes()
    }

    #[test]
    fn parsed_files_hold_ranges_and_the_upload_cap_holds() {
        // 500 blocks of 100,000 lines: 1,000 entries held (a covered and a coverable
        // range per file), not 50,000,000.
        let amp = parse_file("amp.out".into(), &amplified_profile(500), ROOM).unwrap();
        assert_eq!(amp.entries(), 1000);

        let mut parsed = ParsedFiles::new(2500);
        for _ in 0..2 {
            parsed
                .push(parse_file("amp.out".into(), &amplified_profile(500), ROOM).unwrap())
                .unwrap();
        }
        assert_eq!(parsed.entries(), 2000);
        let e = parsed
            .push(parse_file("third.out".into(), &amplified_profile(500), ROOM).unwrap())
            .map(drop)
            .unwrap_err();
        assert_eq!(e.0, StatusCode::PAYLOAD_TOO_LARGE);
        let msg = e.1["error"].as_str().unwrap();
        assert!(
            msg.contains("more than 2500 line ranges and test cases") && msg.contains("third.out"),
            "{msg}"
        );

        // The cap holds while a file is read, not only after: with room for 500 more, a
        // profile stops at the block that would take the 501st range.
        let mut parsed = ParsedFiles::new(1500);
        parsed
            .push(parse_file("amp.out".into(), &amplified_profile(500), parsed.room()).unwrap())
            .unwrap();
        let e = parse_file("next.out".into(), &amplified_profile(500), parsed.room())
            .map(drop)
            .unwrap_err();
        assert_eq!(e.0, StatusCode::PAYLOAD_TOO_LARGE);
        let msg = e.1["error"].as_str().unwrap();
        assert!(
            msg.contains("more than 1500 line ranges and test cases")
                && msg.contains("next.out, go line 252"),
            "{msg}"
        );

        // Every format counts: test cases, and line records' ranges.
        let junit =
            b"<testsuite name=\"s\"><testcase name=\"a\"/><testcase name=\"b\"/></testsuite>";
        assert_eq!(
            parse_file("t.xml".into(), junit, ROOM).unwrap().entries(),
            2
        );
        // Room for one test case, two in the report.
        let room = Room { left: 1, cap: 7 };
        let e = parse_file("t.xml".into(), junit, room)
            .map(drop)
            .unwrap_err();
        assert_eq!(e.0, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", e.1);
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let trace = format!(
            r#"{{"version":"0.1.0","vcs":{{"type":"git","revision":"{sha}"}},"tool":{{"name":"cursor"}},"files":[{{"path":"src/a.rs","conversations":[{{"contributor":{{"type":"ai","model_id":"m"}},"ranges":[{{"start_line":1,"end_line":100000}},{{"start_line":200000,"end_line":300000}}]}}]}}]}}"#
        );
        let lines = parse_file("trace.json".into(), trace.as_bytes(), ROOM).unwrap();
        assert_eq!(lines.entries(), 2);
        let (file, _) = normalise_file(lines, "acme/demo", None);
        match file.content {
            FileContent::Lines(rows) => {
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].lines.ranges(), &[(1, 100_000), (200_000, 300_000)]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn percentages_round_to_two_decimals() {
        assert_eq!(pct(2, 3), Some(66.67));
        assert_eq!(pct(0, 0), None);
        assert_eq!(pct(5, 5), Some(100.0));
    }
}
