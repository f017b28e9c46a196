//! `tracelink demo`: the product with nothing set up. Starts tracelink on a temporary
//! database with an in-process stand-in for GitHub ([`github`], the fake the integration
//! tests use), replays the captured webhook payloads and a bundled Claude Code session
//! with the story of one pull request, and prints the comment and check run tracelink
//! posted. Then it seeds a month of a small organisation ([`org`]) over OTLP/HTTP and
//! serves the dashboard.

pub mod github;
pub mod org;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::{Value, json};

use crate::config::{DemoArgs, Secret, ServeArgs};
use crate::github::signature::sign;
use crate::server::Server;
use github::{FakeFile, FakeGithub, INSTALLATION};

const SECRET: &str = "demo-secret";
const REPO: &str = "acme/widgets";
const CLAUDE_LOGS: &str = include_str!("../../tests/fixtures/otlp/claude-code-logs.json");
const CLAUDE_METRICS: &str = include_str!("../../tests/fixtures/otlp/claude-code-metrics.json");
const CLAUDE_TRACES: &str = include_str!("../../tests/fixtures/otlp/claude-code-traces.json");

const C1: &str = "9c0832b26219b10b65f2a64ef32be97e2e28f8da";
const C2: &str = "c4db930c2085a6ae302a52617d434bcc2df322c5";
const HUMAN: &str = "5a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
const MERGE: &str = "e0f1d2c3b4a5968778695a4b3c2d1e0f12345678";
const BASE: &str = "0ddba11cafef00d0ddba11cafef00d0ddba11ca0";

/// Runs the demo; with `--no-serve` it ends once the comment is printed.
pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if let Some(db) = &args.db {
        anyhow::ensure!(
            !db.exists(),
            "--db {}: the file exists; the demo writes a new database (name another file, or remove it)",
            db.display()
        );
        return story(db, args).await;
    }
    let dir = std::env::temp_dir().join(format!("tracelink-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = story(&dir.join("tracelink.db"), args).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn patch(lines: &[&str]) -> String {
    let mut p = format!("@@ -0,0 +1,{} @@\n", lines.len());
    for l in lines {
        p.push('+');
        p.push_str(l);
        p.push('\n');
    }
    p
}

fn file(name: &str, lines: &[&str]) -> FakeFile {
    FakeFile::modified(name, &patch(lines))
}

async fn story(db: &std::path::Path, demo: &DemoArgs) -> anyhow::Result<()> {
    let serve = !demo.no_serve;
    // The fake GitHub knows the PR's diff and its commits' patches.
    let fake = FakeGithub::start().await;
    let retry = [
        "export async function retry(fn, attempts = 3) {",
        "  return backoff(fn, attempts);",
        "}",
    ];
    let tests = ["test('retries 429', () => expectRetry(429));"];
    let readme = ["Requests are retried with backoff."];
    fake.add_pull(
        REPO,
        7,
        HUMAN,
        vec![
            file("src/http/retry.ts", &retry),
            file("tests/http/retry.test.ts", &tests),
            file("README.md", &readme),
        ],
    );
    fake.add_commit(REPO, 7, C1, vec![file("src/http/retry.ts", &retry)]);
    fake.add_commit(REPO, 7, C2, vec![file("tests/http/retry.test.ts", &tests)]);
    fake.add_commit(REPO, 7, HUMAN, vec![file("README.md", &readme)]);
    let app = fake.app_config();
    let api_url = app.api_url.clone();

    let mut args = ServeArgs::ephemeral(db.to_path_buf());
    args.http_listen = demo.http_listen;
    args.webhook_secrets = vec![Secret(SECRET.into())];
    args.github = (&app).into();
    args.comment_debounce = 0;
    if serve {
        let identities = db.with_extension("identities.toml");
        std::fs::write(&identities, org::identities())
            .with_context(|| format!("writing {}", identities.display()))?;
        args.identities = Some(identities);
        args.people = crate::config::OnOff::On;
    }
    let server = Server::start(&args).await?;
    let http: HttpClient =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
    println!("tracelink demo");
    println!(
        "  tracelink   grpc={} http={}",
        server.grpc_addr, server.http_addr
    );
    println!("  database    {}", db.display());
    println!("  GitHub      {api_url} (an in-process stand-in: nothing leaves this machine)");
    println!("  (the server's log: TRACELINK_LOG=info tracelink demo)");

    // Every captured payload of webhooks/payloads (when run from the repository).
    let mut replayed = (0, 0);
    if let Ok(entries) = std::fs::read_dir("webhooks/payloads") {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let Some(name) = p.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                continue;
            };
            let event = name.split('.').next().unwrap_or_default().to_string();
            let body = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            let status = deliver(&http, server.http_addr, &event, &name, body.into()).await?;
            replayed.0 += 1;
            if status == 200 {
                replayed.1 += 1;
            }
        }
        println!(
            "  replayed    {} captured deliveries from webhooks/payloads ({} stored)",
            replayed.0, replayed.1
        );
    } else {
        println!("  (run from the repository's directory to also replay webhooks/payloads)");
    }

    // Claude Code's session, exported as the agent does.
    let grpc = format!("http://{}", server.grpc_addr);
    MetricsServiceClient::connect(grpc.clone())
        .await?
        .export(serde_json::from_str::<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
        >(CLAUDE_METRICS)?)
        .await?;
    LogsServiceClient::connect(grpc.clone())
        .await?
        .export(serde_json::from_str::<
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
        >(CLAUDE_LOGS)?)
        .await?;
    TraceServiceClient::connect(grpc)
        .await?
        .export(serde_json::from_str::<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >(CLAUDE_TRACES)?)
        .await?;
    println!("  sent        a Claude Code session (metrics, logs, traces over OTLP/gRPC)");

    // What GitHub tells the App: the branch, the PR, CI, the merge, the deploy.
    let inst = json!({"id": INSTALLATION});
    let repo = json!({"full_name": REPO, "default_branch": "main"});
    let commit = |sha: &str, msg: &str, at: &str, who: &str| {
        json!({"id": sha, "message": msg, "timestamp": at,
            "author": {"name": who, "email": format!("{who}@acme.example"), "username": who},
            "added": [], "modified": [], "removed": []})
    };
    let story = [
        (
            "push",
            json!({"ref": "refs/heads/retry", "before": BASE, "after": HUMAN, "repository": repo, "installation": inst,
            "commits": [
                commit(C1, "Add exponential backoff retry to HTTP client\n\nTraceparent: 00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01\nCo-Authored-By: Claude <noreply@anthropic.com>", "2026-11-20T09:13:48Z", "dev"),
                commit(C2, "Test backoff and honour Retry-After on 429\n\nCo-Authored-By: Claude <noreply@anthropic.com>", "2026-11-20T09:31:27Z", "dev"),
                commit(HUMAN, "Document retries in the README", "2026-11-20T10:05:00Z", "reviewer")]}),
        ),
        (
            "pull_request",
            pull("opened", "open", None, "2026-11-20T09:40:00Z"),
        ),
        (
            "workflow_run",
            json!({"action": "completed", "repository": repo, "installation": inst,
            "workflow_run": {"id": 4242, "run_attempt": 1, "name": "ci", "event": "pull_request", "head_sha": HUMAN,
                "head_branch": "retry", "status": "completed", "conclusion": "success",
                "run_started_at": "2026-11-20T10:06:00Z", "updated_at": "2026-11-20T10:11:00Z"}}),
        ),
        (
            "pull_request",
            pull("closed", "closed", Some(MERGE), "2026-11-20T11:00:00Z"),
        ),
        (
            "push",
            json!({"ref": "refs/heads/main", "before": BASE, "after": MERGE, "repository": repo, "installation": inst,
            "commits": [commit(MERGE, "Merge pull request #7 from acme/retry", "2026-11-20T11:00:00Z", "dev")]}),
        ),
        (
            "deployment",
            json!({"action": "created", "repository": repo, "installation": inst,
            "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production", "created_at": "2026-11-20T11:40:00Z"}}),
        ),
        (
            "deployment_status",
            json!({"action": "created", "repository": repo, "installation": inst,
            "deployment_status": {"id": 1, "state": "success", "environment": "production", "created_at": "2026-11-20T11:45:00Z"},
            "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production", "created_at": "2026-11-20T11:40:00Z"}}),
        ),
    ];
    for (i, (event, payload)) in story.iter().enumerate() {
        let status = deliver(
            &http,
            server.http_addr,
            event,
            &format!("demo-{i}"),
            payload.to_string().into(),
        )
        .await?;
        anyhow::ensure!(
            status == 200,
            "the demo's {event} delivery was answered {status}"
        );
    }
    println!("  delivered   the story of {REPO}#7: push, pull request, CI, merge, deployment\n");

    // The publisher posts when the report settles.
    let mut published = server.reports_published.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let done = || {
        fake.comments(REPO, 7)
            .into_iter()
            .next()
            .map(|c| c.body)
            .filter(|b| b.contains("agent session") && b.contains("after merge"))
    };
    while done().is_none() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout(left, published.changed())
            .await
            .is_err()
        {
            anyhow::bail!("the report was not posted within 90 s");
        }
    }
    let comment = done().unwrap_or_default();
    // GitHub hides the first line: the marker naming the report and its digest.
    let visible = comment
        .split_once('\n')
        .map_or(comment.as_str(), |(_, rest)| rest);
    println!(
        "The comment tracelink posted on {REPO}#7 (its hidden first line, the marker, left out):\n"
    );
    println!("{visible}");
    if let Some(run) = fake.check_runs(REPO).into_iter().next() {
        println!(
            "Check run \"{}\" on {}: {}\n",
            run.name,
            run.head_sha.get(..7).unwrap_or(&run.head_sha),
            run.title.unwrap_or_default()
        );
    }
    if serve {
        // A month of a small organisation, ending today.
        let end = (crate::time::now_ns() / 86_400_000_000_000 + 1) * 86_400_000_000_000;
        // Sessions take up to an hour: none starts in the last one (or later today).
        let sessions = org::sessions(30, end, crate::time::now_ns() - 3_600_000_000_000);
        for s in &sessions {
            let status = post(
                &http,
                server.http_addr,
                "/v1/logs",
                &[],
                s.to_string().into(),
            )
            .await?;
            anyhow::ensure!(status == 200, "OTLP/HTTP answered {status}");
        }
        let incident = org::incident(REPO, INSTALLATION, 9001, "2026-11-20T12:10:00Z");
        let status = deliver(
            &http,
            server.http_addr,
            "issues",
            "demo-incident",
            incident.to_string().into(),
        )
        .await?;
        anyhow::ensure!(status == 200, "the incident delivery answered {status}");
        // The dashboard's first look shows it all: sessions linked and counted.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while server.db.relinks_queued().await? > 0 || server.db.analytics_queued().await? > 0 {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the seeded sessions were not linked and counted within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "  seeded      {} sessions of 9 people in 3 teams over 30 days (payments moves from Claude Code to Codex halfway; a spend spike; an incident)",
            sessions.len()
        );
        println!(
            "\ndashboard: http://{addr}/\n  {REPO}#7 and its graph: http://{addr}/pulls/{REPO}/7\n(Ctrl-C stops)",
            addr = server.http_addr
        );
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        server.shutdown().await?;
        return Ok(());
    }
    println!(
        "Next: `tracelink demo` (without --no-serve) shows the dashboard on a month of a small organisation; `tracelink serve` runs it for real (README: Configuration)."
    );
    server.shutdown().await?;
    Ok(())
}

fn pull(action: &str, state: &str, merge: Option<&str>, updated: &str) -> Value {
    json!({"action": action, "repository": {"full_name": REPO, "default_branch": "main"}, "installation": {"id": INSTALLATION},
        "pull_request": {"number": 7, "title": "Retry HTTP requests with backoff", "state": state,
            "merged": merge.is_some(), "merge_commit_sha": merge, "user": {"login": "dev"},
            "head": {"ref": "retry", "sha": HUMAN}, "base": {"ref": "main", "sha": BASE},
            "created_at": "2026-11-20T09:40:00Z", "updated_at": updated,
            "closed_at": merge.map(|_| updated), "merged_at": merge.map(|_| updated)}})
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// POSTs `body` as JSON to tracelink's HTTP listener; returns the status.
async fn post(
    http: &HttpClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> anyhow::Result<u16> {
    let mut req = hyper::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let res = http
        .request(req.body(Full::new(body))?)
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = res.status().as_u16();
    // Read to the end so the connection is reused.
    res.into_body().collect().await?;
    Ok(status)
}

/// Delivers a webhook as GitHub does: signed with the webhook secret.
async fn deliver(
    http: &HttpClient,
    addr: SocketAddr,
    event: &str,
    id: &str,
    body: Bytes,
) -> anyhow::Result<u16> {
    let headers = [
        ("x-github-event", event.to_string()),
        ("x-github-delivery", id.to_string()),
        ("x-hub-signature-256", sign(SECRET, &body)),
    ];
    post(http, addr, "/webhooks/github", &headers, body).await
}
