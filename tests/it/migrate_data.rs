//! `tracelink migrate-data`: a SQLite installation with attributed sessions, CI runs, a
//! deployment and an incident moves to PostgreSQL, and a server on the new database
//! gives the same reports.

use serde_json::json;
use tracelink::config::ServeArgs;
use tracelink::server::Server;
use tracelink::store::Location;
use tracelink_dev::pgtest;

use crate::sqlite::common::TestApp;
use crate::sqlite::reports::{
    BASE, Commit, HUMAN, MERGE, REPO, SECRET, ZERO, claude_code_commits, deliver, pull, push,
    report, send_otlp, workflow_run,
};

/// The attribution scenario: Claude Code's session linked by trailer and telemetry, a
/// human commit, a rerun workflow, the merge deployed and an incident naming it.
async fn scenario(app: &TestApp) {
    for f in [
        "claude-code-metrics.json",
        "claude-code-logs.json",
        "claude-code-traces.json",
    ] {
        send_otlp(app, f).await;
    }
    let commits = claude_code_commits();
    deliver(app, "push", "p1", &push("refs/heads/retry", ZERO, &commits)).await;
    for (id, attempt, conclusion, at) in [
        ("w1", 1, "failure", "2026-11-21T16:05:00Z"),
        ("w2", 2, "success", "2026-11-21T16:09:00Z"),
    ] {
        let run = workflow_run(555, attempt, HUMAN, conclusion, at);
        deliver(app, "workflow_run", id, &run).await;
    }
    deliver(
        app,
        "pull_request",
        "pr1",
        &pull(
            "closed",
            7,
            HUMAN,
            "retry",
            "2026-11-21T17:00:00Z",
            Some(MERGE),
        ),
    )
    .await;
    let main = [Commit {
        sha: MERGE,
        message: "Merge pull request #7 from acme/retry",
        at: "2026-11-21T17:00:00Z",
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }];
    deliver(app, "push", "p2", &push("refs/heads/main", BASE, &main)).await;
    deliver(
        app,
        "deployment",
        "d1",
        &json!({"action": "created", "repository": {"full_name": REPO},
        "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production",
            "creator": {"login": "deploy-bot"}, "created_at": "2026-11-21T18:30:00Z"}}),
    )
    .await;
    deliver(app, "deployment_status", "d2", &json!({"action": "created", "repository": {"full_name": REPO},
        "deployment_status": {"id": 77, "state": "success", "environment": "production", "created_at": "2026-11-21T18:35:00Z"},
        "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production", "created_at": "2026-11-21T18:30:00Z"}})).await;
    deliver(app, "issues", "i1", &json!({"action": "opened", "repository": {"full_name": REPO},
        "issue": {"number": 31, "title": "Checkout retries storm the API", "body": "Root cause: deployment 9001",
            "labels": [{"name": "incident"}], "state": "open", "created_at": "2026-11-21T19:00:00Z",
            "updated_at": "2026-11-21T19:00:00Z"}})).await;
    app.applied(8).await;
}

async fn migrate_data(from: &str, to: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(["migrate-data", "--from", from, "--to", to])
        .output()
        .await
        .expect("tracelink runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_installation_moves_to_postgres_with_identical_reports() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    scenario(&app).await;
    let (json_before, md_before) = report(&app, 7).await;
    assert_eq!(json_before["totals"]["sessions"], 1, "{json_before}");
    assert_eq!(json_before["deployments"][0]["id"], 9001, "{json_before}");
    assert_eq!(json_before["incidents"][0]["number"], 31, "{json_before}");
    // The service goes on running: what its background tasks still had to write is
    // written before the copy is compared with the source.
    app.linked_up().await;
    app.analytics_counted().await;
    let sessions = app.count("sessions").await;
    let links = app.count("links").await;
    let file = app.db_arg();

    let pg = pgtest::Database::create().await.unwrap();
    let out = migrate_data(&file, pg.url()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every table's rows counted equal, 1 pull requests' reports identical"),
        "{stdout}"
    );
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no {name} line: {stdout}"))
    };
    assert_eq!(
        row("sessions")[1..],
        [sessions.to_string(), sessions.to_string()]
    );
    assert_eq!(row("links")[1..], [links.to_string(), links.to_string()]);

    // A server on the new database serves the same report, and goes on from there:
    // generated ids continue after the copied ones.
    app.stop().await;
    let mut args = ServeArgs::ephemeral(Location::Postgres(pg.url().to_string()));
    args.webhook_secrets = vec![SECRET.parse().unwrap()];
    let server = Server::start(&args)
        .await
        .expect("serves the moved database");
    let mut moved = TestApp::attach(server, args.db.clone());
    let (json_after, md_after) = report(&moved, 7).await;
    assert_eq!(json_after, json_before);
    assert_eq!(md_after, md_before);
    send_otlp(&moved, "gemini-cli-logs.json").await;
    assert_eq!(moved.count("sessions").await, sessions + 1);

    // Into a database that holds data: refused, nothing written.
    let again = migrate_data(&file, pg.url()).await;
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already holds data"), "{err}");
    assert_eq!(moved.count("sessions").await, sessions + 1);
    // The other way round is not what it does.
    let back = migrate_data(pg.url(), &file).await;
    assert!(!back.status.success());
    assert!(
        String::from_utf8_lossy(&back.stderr).contains("moves a SQLite installation"),
        "{back:?}"
    );
    moved.stop().await;
}
