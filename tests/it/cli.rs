//! The `tracelink` binary's read commands against a database a real server filled:
//! `sessions` (what arrived, to check a set-up) and `report` with `--price-table` (the
//! same cost as the comment `serve` posts), and the start-up warning about models
//! without a price.

use std::process::{Output, Stdio};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::common::{TestApp, fixture};
use super::reports::{CLAUDE_1, CLAUDE_2, Commit, SECRET, ZERO, deliver, pull, push, send_otlp};

const CLAUDE_SESSION: &str = "82c3495f-998e-457a-875a-8643b934dd9c";
// Codex's commit in the fixtures (a co-author trailer links it).
const CODEX_1: &str = "b214a4970b2727a50691f2d6ae07e4841b1c065a";

/// `tracelink ARGS --db DB`, without the environment's price table.
pub async fn tracelink(args: &[&str], db: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("TRACELINK_PRICE_TABLE")
        .output()
        .await
        .expect("tracelink runs")
}

/// Its stdout, once it succeeded.
pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn commit<'a>(sha: &'a str, message: &'a str, at: &'a str, files: &'a [&'a str]) -> Commit<'a> {
    Commit {
        sha,
        message,
        at,
        email: "dev@acme.example",
        login: "dev",
        files,
    }
}

/// Gemini CLI's logs with its auxiliary model renamed to one no table prices.
fn gemini_logs_with_unpriced_model() -> Vec<u8> {
    String::from_utf8(fixture("gemini-cli-logs.json"))
        .unwrap()
        .replace("gemini-2.5-flash-lite", "mystery-model-1")
        .into_bytes()
}

#[tokio::test]
async fn sessions_lists_what_arrived_newest_first() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    send_otlp(&app, "claude-code-logs.json").await;
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            gemini_logs_with_unpriced_model(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    deliver(
        &app,
        "push",
        "p1",
        &push(
            "refs/heads/retry",
            ZERO,
            &[
                commit(CLAUDE_1, "Add retry", "2026-11-20T09:13:48Z", &[]),
                commit(CLAUDE_2, "Test retry", "2026-11-20T09:31:27Z", &[]),
            ],
        ),
    )
    .await;
    app.applied(1).await;
    app.linked_up().await;
    let api = app.session(CLAUDE_SESSION).await;
    app.stop().await;

    let out = stdout(&tracelink(&["sessions", "--last", "10"], &app.db_arg()).await);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    // Gemini CLI's session (09:40) came after Claude Code's (09:02).
    let gemini: Vec<&str> = lines[0].split(" · ").collect();
    assert_eq!(gemini[0], "gemini-cli", "{out}");
    assert_eq!(gemini[2], "dev@acme.example");
    assert!(gemini[4].starts_with("started 2026-11-20T09:"), "{out}");
    assert_eq!(gemini[6], "unpriced (no price for mystery-model-1)");
    assert_eq!(gemini[7], "0 commits linked");
    let claude: Vec<&str> = lines[1].split(" · ").collect();
    let tokens = &api["tokens"];
    assert_eq!(
        claude,
        [
            "claude-code",
            CLAUDE_SESSION,
            "dev@acme.example",
            api["repository"].as_str().unwrap_or("repository unknown"),
            &format!("started {}", api["started_at"].as_str().unwrap()),
            &format!("tokens {} in / {} out", tokens["input"], tokens["output"]),
            "$0.3653",
            "2 commits linked",
        ],
        "{out}"
    );

    // --last counts from the newest.
    let out = stdout(&tracelink(&["sessions", "--last", "1"], &app.db_arg()).await);
    assert_eq!(out.lines().count(), 1);
    assert!(out.starts_with("gemini-cli · "), "{out}");
}

#[tokio::test]
async fn sessions_says_when_there_is_nothing_to_list() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.db");
    let out = tracelink(&["sessions"], &missing.display().to_string()).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no database at") && err.contains("nowhere.db"),
        "{err}"
    );
    assert!(!missing.exists(), "a read must not create the database");

    let mut app = TestApp::spawn().await;
    app.stop().await;
    let out = stdout(&tracelink(&["sessions"], &app.db_arg()).await);
    assert!(out.starts_with("no sessions in "), "{out}");
}

/// `tracelink report --price-table` prints the cost `serve` with the same file put in
/// the comment; without the file it prices from the built-in table.
#[tokio::test]
async fn report_reads_the_price_table_serve_reads() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    std::fs::write(
        &prices,
        r#"{"gpt-5.1-codex-max": {"input": 100.0, "output": 400.0, "cache_read": 10.0}}"#,
    )
    .unwrap();
    let mut app = TestApp::spawn_with(|a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.price_table = Some(prices.clone());
    })
    .await;
    send_otlp(&app, "codex-logs.json").await;
    deliver(
        &app,
        "push",
        "p1",
        &push(
            "refs/heads/widgets",
            ZERO,
            &[commit(
                CODEX_1,
                "Stabilize widget list pagination\n\nCo-authored-by: Codex <codex@openai.com>",
                "2026-11-20T10:21:16Z",
                &["src/widgets/list.ts"],
            )],
        ),
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
    app.linked_up().await;
    let (status, served) = app
        .get_json("/api/v1/repos/acme/widgets/pulls/9/report?format=json")
        .await;
    assert_eq!(status, 200, "{served}");
    app.stop().await;
    let served_cost = served["totals"]["cost_usd"].as_f64().expect("a cost");
    assert_eq!(served["totals"]["cost_estimated"], true);

    let json = |out: &Output| serde_json::from_str::<Value>(&stdout(out)).expect("JSON report");
    let with_file = json(
        &tracelink(
            &[
                "report",
                "acme/widgets#9",
                "--format",
                "json",
                "--price-table",
                prices.to_str().unwrap(),
            ],
            &app.db_arg(),
        )
        .await,
    );
    assert_eq!(with_file, served);
    let built_in = json(
        &tracelink(
            &["report", "acme/widgets#9", "--format", "json"],
            &app.db_arg(),
        )
        .await,
    );
    let built_in_cost = built_in["totals"]["cost_usd"].as_f64().expect("a cost");
    assert!(
        built_in_cost > 0.0 && built_in_cost < served_cost / 10.0,
        "built in {built_in_cost}, file {served_cost}"
    );
    // The environment variable is the flag's twin.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(["report", "acme/widgets#9", "--format", "json", "--db"])
        .arg(app.db_arg())
        .env("TRACELINK_PRICE_TABLE", &prices)
        .output()
        .await
        .unwrap();
    assert_eq!(json(&out), served);
}

/// `serve` names, once at start-up, the stored sessions' models that have no price.
#[tokio::test]
async fn serve_warns_about_stored_models_without_a_price() {
    let mut app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            gemini_logs_with_unpriced_model(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    send_otlp(&app, "codex-logs.json").await;
    app.stop().await;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--webhook-secret",
            SECRET,
        ])
        .arg("--db")
        .arg(app.db_arg())
        .env("TRACELINK_LOG", "warn")
        .env_remove("TRACELINK_PRICE_TABLE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tracelink serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("listening line");
    assert!(line.starts_with("tracelink listening"), "{line}");
    child.kill().await.unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("models without a price"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("mystery-model-1"), "{stderr}");
    for priced in ["gemini-3-pro-preview", "gpt-5.1-codex-max"] {
        assert!(!warnings[0].contains(priced), "{stderr}");
    }
}

/// A price file that adds one model leaves the built-in prices in place: Gemini CLI's
/// and Codex's sessions stay priced, the same as with no file.
#[tokio::test]
async fn a_price_file_adding_one_model_keeps_the_built_in_prices() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    std::fs::write(&prices, r#"{"glm-4.6": {"input": 0.6, "output": 2.2}}"#).unwrap();
    let mut costs = Vec::new();
    for file in [None, Some(prices.clone())] {
        let mut app = TestApp::spawn_with(|a| a.price_table = file).await;
        send_otlp(&app, "gemini-cli-logs.json").await;
        send_otlp(&app, "codex-logs.json").await;
        let gemini = app.session("8b28e113-8afe-400b-887c-f4b597e77315").await;
        let codex = app.session("01a1f86d-6000-751f-9f76-437310bf50d4").await;
        for s in [&gemini, &codex] {
            assert!(s["cost_usd"].as_f64().unwrap() > 0.0, "{s}");
            assert_eq!(s["cost_estimated"], true);
        }
        costs.push((gemini["cost_usd"].clone(), codex["cost_usd"].clone()));
        app.stop().await;
    }
    assert_eq!(costs[0], costs[1]);
}

/// A failed start says why in one sentence, never a backtrace, even with RUST_BACKTRACE
/// set.
#[tokio::test]
async fn a_failed_start_is_one_sentence_not_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args([
            "serve",
            "--http-listen",
            "0.0.0.0:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(dir.path().join("t.db"))
        .env("RUST_BACKTRACE", "1")
        .env("TRACELINK_LOG", "error")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("tracelink: refusing to listen on 0.0.0.0:0"),
        "{err}"
    );
    assert!(
        !err.contains("Stack backtrace") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// `tracelink status`: on an empty database it says what is missing; once a session
/// and a push arrived, it lists them per agent and repository, and what they lack (the
/// session names no repository).
#[tokio::test]
async fn status_says_what_arrived_and_what_is_missing() {
    let mut app = TestApp::spawn().await;
    app.stop().await;
    let out = stdout(&tracelink(&["status"], &app.db_arg()).await);
    assert!(
        out.contains("Agent telemetry, last 30 days:\n  none\n")
            && out.contains("GitHub webhooks, last 30 days:\n  none\n")
            && out.contains("  - No agent telemetry in the last 30 days")
            && out.contains("  - No webhook delivery of a repository in the last 30 days"),
        "{out}"
    );

    // The identities file knows ana, not dev.
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        "[[person]]\nlogin = \"ana\"\nemails = [\"ana@acme.example\"]\n",
    )
    .unwrap();
    let mut app = TestApp::spawn_with(|a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.identities = Some(identities.clone());
    })
    .await;
    // A session started now, naming a user but no repository.
    let now = tracelink::time::now_ns();
    let logs = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": [{
            "timeUnixNano": now.to_string(),
            "body": {"stringValue": "claude_code.user_prompt"},
            "attributes": [
                {"key": "session.id", "value": {"stringValue": "status-now"}},
                {"key": "event.name", "value": {"stringValue": "user_prompt"}},
                {"key": "user.email", "value": {"stringValue": "dev@acme.example"}}
            ]
        }]}]
    }]});
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            logs.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    deliver(
        &app,
        "push",
        "p1",
        &push(
            "refs/heads/retry",
            ZERO,
            &[commit(CLAUDE_1, "Add retry", "2026-11-20T09:13:48Z", &[])],
        ),
    )
    .await;
    app.applied(1).await;
    app.analytics_counted().await;
    app.stop().await;
    let out = stdout(&tracelink(&["status"], &app.db_arg()).await);
    // Who is unknown needs the identities file.
    assert!(!out.contains("does not know"), "{out}");
    let known = stdout(
        &tracelink(
            &["status", "--identities", identities.to_str().unwrap()],
            &app.db_arg(),
        )
        .await,
    );
    assert!(
        known.contains("  - 1 user the identities file does not know ran 1 session: add them as [[person]] with their emails or agent user IDs. Most sessions: dev@acme.example (1)."),
        "{known}"
    );
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?}: {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let claude = line("claude-code");
    assert_eq!(
        &claude[..5],
        ["claude-code", "(no", "repository)", "1", "sessions"],
        "{out}"
    );
    // Seconds ago (the analytics count in between may take one or two).
    let ago: Vec<&str> = claude[claude.len() - 3..].to_vec();
    assert!(
        ago[0].trim_start_matches('(').parse::<u64>().unwrap() < 30 && ago[1..] == ["s", "ago)"],
        "{out}"
    );
    let widgets = line("acme/widgets");
    assert_eq!(
        &widgets[..5],
        ["acme/widgets", "1", "deliveries", "(0", "failed)"],
        "{out}"
    );
    assert!(
        out.contains("  - 1 session names no repository: set OTEL_RESOURCE_ATTRIBUTES"),
        "{out}"
    );
    assert!(!out.contains("No agent telemetry"), "{out}");
}
