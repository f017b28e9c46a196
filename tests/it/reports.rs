//! PR reports end to end: agent telemetry over OTLP and signed webhooks in, the report out
//! (JSON and the markdown comment, snapshot-tested), for each link rule.

use serde_json::{Value, json};

use super::common::{TestApp, fixture};

pub const SECRET: &str = "report-secret";
pub const REPO: &str = "acme/widgets";
pub const ZERO: &str = "0000000000000000000000000000000000000000";
pub const BASE: &str = "1111111111111111111111111111111111111111";
// Claude Code's two commits (the fixture's tool results name them).
pub const CLAUDE_1: &str = "9c0832b26219b10b65f2a64ef32be97e2e28f8da";
pub const CLAUDE_2: &str = "c4db930c2085a6ae302a52617d434bcc2df322c5";
// Gemini CLI's commits (its telemetry names no SHA).
const GEMINI_1: &str = "4e1d6528d825299de15dbf8944d9a05b1c517a63";
const GEMINI_2: &str = "a2f708bf0301c16e196f7b6808b770f9520c1e1d";
// Codex's commits (abbreviated in tool output only).
const CODEX_1: &str = "b214a4970b2727a50691f2d6ae07e4841b1c065a";
pub const HUMAN: &str = "2222222222222222222222222222222222222222";
pub const MERGE: &str = "3333333333333333333333333333333333333333";

pub struct Commit<'a> {
    pub sha: &'a str,
    pub message: &'a str,
    pub at: &'a str,
    pub email: &'a str,
    pub login: &'a str,
    pub files: &'a [&'a str],
}

pub fn push(git_ref: &str, before: &str, commits: &[Commit<'_>]) -> Value {
    json!({
        "ref": git_ref, "before": before, "after": commits.last().map_or(before, |c| c.sha),
        "repository": {"full_name": REPO},
        "installation": {"id": 42},
        "commits": commits.iter().map(|c| json!({
            "id": c.sha, "message": c.message, "timestamp": c.at,
            "author": {"name": c.login, "email": c.email, "username": c.login},
            "committer": {"name": c.login, "email": c.email, "username": c.login},
            "added": [], "modified": c.files, "removed": []
        })).collect::<Vec<_>>()
    })
}

pub fn pull(
    action: &str,
    number: i64,
    head: &str,
    head_ref: &str,
    updated: &str,
    merged: Option<&str>,
) -> Value {
    json!({
        "action": action,
        "repository": {"full_name": REPO},
        "installation": {"id": 42},
        "pull_request": {
            "number": number, "title": "Retry HTTP requests with backoff",
            "state": if merged.is_some() || action == "closed" { "closed" } else { "open" },
            "draft": false, "merged": merged.is_some(),
            "merge_commit_sha": merged,
            "user": {"login": "dev"},
            "head": {"ref": head_ref, "sha": head},
            "base": {"ref": "main", "sha": BASE},
            "created_at": "2026-11-20T09:00:00Z", "updated_at": updated,
            "closed_at": merged.map(|_| updated), "merged_at": merged.map(|_| updated)
        }
    })
}

pub fn workflow_run(id: i64, attempt: i64, head: &str, conclusion: &str, updated: &str) -> Value {
    json!({
        "action": "completed", "repository": {"full_name": REPO},
        "workflow_run": {"id": id, "run_attempt": attempt, "name": "ci", "event": "pull_request",
            "head_sha": head, "head_branch": "retry", "status": "completed", "conclusion": conclusion,
            "run_started_at": updated, "created_at": updated, "updated_at": updated}
    })
}

pub async fn deliver(app: &TestApp, event: &str, id: &str, payload: &Value) {
    let r = app
        .deliver(SECRET, event, id, payload.to_string().as_bytes())
        .await;
    let status = r.status();
    assert_eq!(status, 200, "{event} {id}: {}", r.text().await.unwrap());
}

pub async fn send_otlp(app: &TestApp, file: &str) {
    let signal = file.rsplit('-').next().unwrap().trim_end_matches(".json");
    let r = app
        .post(
            &format!("/v1/{signal}"),
            "application/json",
            fixture(file),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200, "{file}");
}

pub async fn report(app: &TestApp, number: i64) -> (Value, String) {
    app.linked_up().await;
    let (status, json) = app
        .get_json(&format!(
            "/api/v1/repos/{REPO}/pulls/{number}/report?format=json"
        ))
        .await;
    assert_eq!(status, 200, "{json}");
    let md = app
        .client
        .get(format!(
            "{}/api/v1/repos/{REPO}/pulls/{number}/report?format=markdown",
            app.http
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (json, md)
}

async fn app() -> TestApp {
    TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await
}

/// The marker's JSON: which report, and its digest.
fn marker_json(md: &str) -> Value {
    let line = md.lines().next().unwrap();
    let json = line
        .strip_prefix("<!-- tracelink:pr-report ")
        .and_then(|l| l.strip_suffix(" -->"))
        .unwrap();
    serde_json::from_str(json).unwrap()
}

/// Claude Code's two commits (the first with its trailers) and a reviewer's.
pub fn claude_code_commits() -> [Commit<'static>; 3] {
    [
        Commit {
            sha: CLAUDE_1,
            message: "Add exponential backoff retry to HTTP client\n\nTraceparent: 00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01\nCo-Authored-By: Claude <noreply@anthropic.com>",
            at: "2026-11-20T09:13:48Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/http/retry.ts"],
        },
        Commit {
            sha: CLAUDE_2,
            message: "Test backoff and honour Retry-After on 429",
            at: "2026-11-20T09:31:27Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["tests/http/retry.test.ts"],
        },
        Commit {
            sha: HUMAN,
            message: "Tidy README",
            at: "2026-11-21T16:00:00Z",
            email: "reviewer@acme.example",
            login: "reviewer",
            files: &["README.md"],
        },
    ]
}

#[tokio::test]
async fn claude_code_session_linked_by_trailer_and_telemetry() {
    let mut app = app().await;
    for f in [
        "claude-code-metrics.json",
        "claude-code-logs.json",
        "claude-code-traces.json",
    ] {
        send_otlp(&app, f).await;
    }
    let commits = claude_code_commits();
    deliver(
        &app,
        "push",
        "p1",
        &push("refs/heads/retry", ZERO, &commits),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "pr1",
        &pull("opened", 7, HUMAN, "retry", "2026-11-21T16:01:00Z", None),
    )
    .await;
    deliver(
        &app,
        "workflow_run",
        "w1",
        &workflow_run(555, 1, HUMAN, "failure", "2026-11-21T16:05:00Z"),
    )
    .await;
    deliver(
        &app,
        "workflow_run",
        "w2",
        &workflow_run(555, 2, HUMAN, "success", "2026-11-21T16:09:00Z"),
    )
    .await;
    app.applied(4).await;

    let (json, md) = report(&app, 7).await;
    assert_eq!(json["totals"]["sessions"], 1);
    assert_eq!(json["totals"]["agent_commits"], 2);
    assert_eq!(json["totals"]["commits"], 3);
    assert_eq!(json["totals"]["cost_usd"], 0.365276);
    let links = json["sessions"][0]["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(
        links.iter().find(|l| l["sha"] == CLAUDE_1).unwrap()["evidence"],
        "trace"
    );
    assert_eq!(
        links.iter().find(|l| l["sha"] == CLAUDE_2).unwrap()["evidence"],
        "event"
    );
    assert_eq!(json["ci"]["reruns"], 1);
    assert_eq!(json["ci"]["first_run_pass_rate"], 0.0);
    // The marker names the report and its digest, never its content: no email or cost
    // per person in a public comment (the API and `tracelink report` serve the JSON).
    let marker = marker_json(&md);
    assert_eq!(marker["repository"], REPO, "{marker}");
    assert_eq!(marker["number"], 7, "{marker}");
    assert_eq!(
        marker["digest"].as_str().map(str::len),
        Some(32),
        "{marker}"
    );
    assert!(marker.get("sessions").is_none(), "{marker}");
    assert!(
        !md.contains("dev@acme.example"),
        "people by login only: {md}"
    );
    assert!(md.contains("| Agent sessions | 1 by dev"), "{md}");
    super::common::assert_snapshot("reports__claude_code_report", &md);

    // `tracelink report` prints the same comment from the database file.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(["report", "Acme/Widgets#7", "--db"])
        .arg(app.db_arg())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), md);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(["report", "acme/widgets#7", "--format", "json", "--db"])
        .arg(app.db_arg())
        .output()
        .await
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(["report", "widgets-7", "--db"])
        .arg(app.db_arg())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not owner/repo#number"));

    // The commit API shows the same links.
    let (status, c) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{CLAUDE_1}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        c["sessions"][0]["session_key"],
        "82c3495f-998e-457a-875a-8643b934dd9c"
    );
    assert_eq!(c["sessions"][0]["evidence"], "trace");
    assert_eq!(c["agents"], json!(["claude-code"]));
    let (_, human) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{HUMAN}"))
        .await;
    assert_eq!(human["sessions"], json!([]));

    // The same report over gRPC (tracelink.v1.ReportService).
    use tracelink::api::grpc::proto::GetPullRequestReportRequest;
    use tracelink::api::grpc::proto::report_service_client::ReportServiceClient;
    let mut grpc = ReportServiceClient::connect(app.grpc.clone())
        .await
        .unwrap();
    let req = |repository: &str, number| GetPullRequestReportRequest {
        repository: repository.into(),
        number,
    };
    let r = grpc
        .get_pull_request_report(req("Acme/Widgets", 7))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.headline, json["headline"]);
    assert_eq!(r.markdown, md);
    assert_eq!(serde_json::from_str::<Value>(&r.json).unwrap(), json);
    let summary = r.summary.unwrap();
    assert_eq!(
        (summary.sessions, summary.commits, summary.agent_commits),
        (1, 3, 2)
    );
    assert_eq!(summary.cost_usd, Some(0.365276));
    assert_eq!(r.sessions[0].commits.len(), 2);
    let missing = grpc
        .get_pull_request_report(req(REPO, 404))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bad = grpc
        .get_pull_request_report(req("widgets", 7))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn pull_request_without_agents() {
    let mut app = app().await;
    let commits = [Commit {
        sha: HUMAN,
        message: "Fix typo",
        at: "2026-11-21T16:00:00Z",
        email: "reviewer@acme.example",
        login: "reviewer",
        files: &["README.md"],
    }];
    deliver(&app, "push", "p1", &push("refs/heads/typo", ZERO, &commits)).await;
    deliver(
        &app,
        "pull_request",
        "pr1",
        &pull("opened", 8, HUMAN, "typo", "2026-11-21T16:01:00Z", None),
    )
    .await;
    app.applied(2).await;
    let (json, md) = report(&app, 8).await;
    assert_eq!(json["headline"], "No AI agent involvement found");
    assert_eq!(json["sessions"], json!([]));
    super::common::assert_snapshot("reports__no_agents_report", &md);
    let (status, body) = app
        .get_json(&format!("/api/v1/repos/{REPO}/pulls/999/report"))
        .await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("#999"));
    app.stop().await;
}

#[tokio::test]
async fn window_and_coauthor_rules_link_agents_that_name_no_commit() {
    let mut app = app().await;
    for f in [
        "gemini-cli-metrics.json",
        "gemini-cli-logs.json",
        "codex-logs.json",
    ] {
        send_otlp(&app, f).await;
    }
    let commits = [
        // Gemini CLI names no SHA: person + time + files.
        Commit {
            sha: GEMINI_1,
            message: "Validate widget input",
            at: "2026-11-20T09:52:04Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/widgets/create.ts", "src/widgets/validation.ts"],
        },
        Commit {
            sha: GEMINI_2,
            message: "Reject negative quantity",
            at: "2026-11-20T09:56:17Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/widgets/validation.ts"],
        },
        // Codex: a co-author trailer and the author's Codex session around the commit.
        Commit {
            sha: CODEX_1,
            message: "Stabilize widget list pagination\n\nCo-authored-by: Codex <codex@openai.com>",
            at: "2026-11-20T10:21:16Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/widgets/list.ts"],
        },
    ];
    deliver(
        &app,
        "push",
        "p1",
        &push("refs/heads/widgets", ZERO, &commits),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "pr1",
        &pull(
            "opened",
            9,
            CODEX_1,
            "widgets",
            "2026-11-20T10:30:00Z",
            None,
        ),
    )
    .await;
    app.applied(2).await;
    let (json, md) = report(&app, 9).await;
    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{json}");
    let gemini = sessions
        .iter()
        .find(|s| s["agent"] == "gemini-cli")
        .unwrap();
    for l in gemini["links"].as_array().unwrap() {
        assert_eq!(l["evidence"], "window");
        let c = l["confidence"].as_f64().unwrap();
        assert!(c > 0.5 && c < 0.9, "scored below exact evidence: {c}");
    }
    let codex = sessions.iter().find(|s| s["agent"] == "codex").unwrap();
    assert_eq!(codex["links"][0]["evidence"], "coauthor");
    assert_eq!(codex["links"][0]["sha"], CODEX_1);
    assert_eq!(json["totals"]["cost_estimated"], true);
    super::common::assert_snapshot("reports__window_and_coauthor_report", &md);
    app.stop().await;
}

#[tokio::test]
async fn telemetry_after_merge_updates_the_report_with_deploys_and_incidents() {
    let mut app = app().await;
    let commits = [
        Commit {
            sha: CLAUDE_1,
            message: "Add exponential backoff retry to HTTP client",
            at: "2026-11-20T09:13:48Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/http/retry.ts"],
        },
        Commit {
            sha: CLAUDE_2,
            message: "Test backoff and honour Retry-After on 429",
            at: "2026-11-20T09:31:27Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["tests/http/retry.test.ts"],
        },
    ];
    deliver(
        &app,
        "push",
        "p1",
        &push("refs/heads/retry", ZERO, &commits),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "pr1",
        &pull(
            "closed",
            7,
            CLAUDE_2,
            "retry",
            "2026-11-20T12:00:00Z",
            Some(MERGE),
        ),
    )
    .await;
    let main = [Commit {
        sha: MERGE,
        message: "Merge pull request #7 from acme/retry",
        at: "2026-11-20T12:00:00Z",
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }];
    deliver(&app, "push", "p2", &push("refs/heads/main", BASE, &main)).await;
    deliver(
        &app,
        "deployment",
        "d1",
        &json!({"action": "created", "repository": {"full_name": REPO},
        "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production",
            "creator": {"login": "deploy-bot"}, "created_at": "2026-11-20T13:30:00Z"}}),
    )
    .await;
    deliver(&app, "deployment_status", "d2", &json!({"action": "created", "repository": {"full_name": REPO},
        "deployment_status": {"id": 77, "state": "success", "environment": "production", "created_at": "2026-11-20T13:35:00Z"},
        "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production", "created_at": "2026-11-20T13:30:00Z"}})).await;
    deliver(&app, "issues", "i1", &json!({"action": "opened", "repository": {"full_name": REPO},
        "issue": {"number": 31, "title": "Checkout retries storm the API", "body": "Root cause: deployment 9001",
            "labels": [{"name": "incident"}], "state": "open", "created_at": "2026-11-20T15:00:00Z",
            "updated_at": "2026-11-20T15:00:00Z"}})).await;
    app.applied(6).await;

    let (before, md_before) = report(&app, 7).await;
    assert_eq!(before["totals"]["sessions"], 0);
    assert_eq!(before["deployments"][0]["id"], 9001);
    assert_eq!(
        before["timing"]["merge_to_deploy_seconds"]["production"],
        5400
    );
    assert_eq!(before["incidents"][0]["number"], 31);
    super::common::assert_snapshot("reports__merged_before_telemetry", &md_before);

    for f in ["claude-code-metrics.json", "claude-code-logs.json"] {
        send_otlp(&app, f).await;
    }
    let (after, md_after) = report(&app, 7).await;
    assert_eq!(after["totals"]["sessions"], 1);
    assert_eq!(after["totals"]["cost_usd"], 0.365276);
    assert!(
        after["timing"]["first_session_to_merge_seconds"]
            .as_i64()
            .unwrap()
            > 0
    );
    super::common::assert_snapshot("reports__merged_after_telemetry", &md_after);
    app.stop().await;
}

/// Deterministic shuffles (a small LCG) of `0..n`, plus identity and reverse.
pub(crate) fn orders(n: usize, count: usize) -> Vec<Vec<usize>> {
    let mut out = vec![(0..n).collect::<Vec<_>>(), (0..n).rev().collect()];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < count {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            v.swap(i, (state >> 33) as usize % (i + 1));
        }
        out.push(v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_report_do_not_depend_on_arrival_order() {
    let commits = [
        Commit {
            sha: CLAUDE_1,
            message: "Add exponential backoff retry to HTTP client\n\nTraceparent: 00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01",
            at: "2026-11-20T09:13:48Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/http/retry.ts"],
        },
        Commit {
            sha: CLAUDE_2,
            message: "Test backoff",
            at: "2026-11-20T09:31:27Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["tests/http/retry.test.ts"],
        },
        Commit {
            sha: GEMINI_1,
            message: "Validate widget input",
            at: "2026-11-20T09:52:04Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/widgets/create.ts"],
        },
    ];
    let push = push("refs/heads/retry", ZERO, &commits);
    let pr = pull("opened", 7, GEMINI_1, "retry", "2026-11-20T10:00:00Z", None);
    let run = workflow_run(555, 1, GEMINI_1, "success", "2026-11-20T10:05:00Z");
    let mut reports = Vec::new();
    for order in orders(7, 6) {
        let mut app = app().await;
        let mut deliveries = 0;
        for step in &order {
            match step {
                0 => send_otlp(&app, "claude-code-logs.json").await,
                1 => send_otlp(&app, "claude-code-metrics.json").await,
                2 => send_otlp(&app, "claude-code-traces.json").await,
                3 => send_otlp(&app, "gemini-cli-logs.json").await,
                4 => deliver(&app, "push", "p", &push).await,
                5 => deliver(&app, "pull_request", "pr", &pr).await,
                _ => deliver(&app, "workflow_run", "w", &run).await,
            }
            if *step >= 4 {
                deliveries += 1;
            }
        }
        app.applied(deliveries).await;
        let (json, md) = report(&app, 7).await;
        assert_eq!(json["totals"]["sessions"], 2, "order {order:?}: {json}");
        reports.push((order, json, md));
        app.stop().await;
    }
    let (_, first_json, first_md) = &reports[0];
    for (order, json, md) in &reports[1..] {
        assert_eq!(json, first_json, "order {order:?}");
        assert_eq!(md, first_md, "order {order:?}");
    }
    let links: Vec<(&str, &str)> = first_json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["links"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (l["sha"].as_str().unwrap(), l["evidence"].as_str().unwrap()))
        })
        .collect();
    assert!(links.contains(&(CLAUDE_1, "trace")), "{links:?}");
    assert!(links.contains(&(CLAUDE_2, "event")), "{links:?}");
    assert!(links.contains(&(GEMINI_1, "window")), "{links:?}");
}

pub const DROID_1: &str = "d3c99dcbe924d16e86342e096dc8c81a27e21e22";
pub const DROID_2: &str = "2d80b6a68e79e89893151faefa50d9780a423801";

/// The two commits Droid's fixture session made, by dev@acme.example, on `cache`.
pub fn droid_commits() -> [Commit<'static>; 2] {
    [
        Commit {
            sha: DROID_1,
            message: "Replace widget cache with LRU + TTL",
            at: "2026-11-20T10:44:13Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/cache/lru.ts"],
        },
        Commit {
            sha: DROID_2,
            message: "Document LRU cache settings",
            at: "2026-11-20T10:47:36Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["README.md"],
        },
    ]
}

#[tokio::test]
async fn identities_file_links_sessions_known_only_by_agent_user_id() {
    // Droid exports a user id, no email: only the identities file says who that is.
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nagent_ids = [\"usr_60ebb16b39a4a540b62e6c3d\"]\n",
    )
    .unwrap();
    let commits = droid_commits();
    for with_identities in [false, true] {
        let path = identities.clone();
        let mut app = TestApp::spawn_with(move |a| {
            a.webhook_secrets = vec![SECRET.parse().unwrap()];
            if with_identities {
                a.identities = Some(path);
            }
        })
        .await;
        for f in ["droid-metrics.json", "droid-traces.json"] {
            send_otlp(&app, f).await;
        }
        deliver(&app, "push", "p", &push("refs/heads/cache", ZERO, &commits)).await;
        deliver(
            &app,
            "pull_request",
            "pr",
            &pull("opened", 11, DROID_2, "cache", "2026-11-20T11:00:00Z", None),
        )
        .await;
        app.applied(2).await;
        let (json, _) = report(&app, 11).await;
        if with_identities {
            let s = &json["sessions"][0];
            assert_eq!(s["agent"], "droid", "{json}");
            for l in s["links"].as_array().unwrap() {
                assert_eq!(l["evidence"], "window");
                assert!(
                    l["detail"].as_str().unwrap().contains("same repository"),
                    "{l}"
                );
            }
            assert_eq!(s["links"].as_array().unwrap().len(), 2);
        } else {
            assert_eq!(
                json["totals"]["sessions"], 0,
                "a user id alone matches no one: {json}"
            );
        }
        app.stop().await;
    }
}
