//! Where a session's cost went (`GET /api/v1/sessions/{id}`): a share per commit it is
//! directly linked to, the pull requests carrying each share, and what none carries.
//! The shares add up to the session's cost.

use super::common::TestApp;
use super::reports::{
    CLAUDE_1, CLAUDE_2, Commit, REPO, SECRET, ZERO, deliver, pull, push, send_otlp,
};

const SESSION: &str = "82c3495f-998e-457a-875a-8643b934dd9c";

fn commit<'a>(sha: &'a str, at: &'a str) -> Commit<'a> {
    Commit {
        sha,
        message: "change",
        at,
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }
}

/// The Claude Code session names two commits: one in PR #11, one pushed straight to
/// main. Half its cost is in the PR; the other half is shown outside any PR.
#[tokio::test]
async fn a_sessions_cost_outside_pull_requests_is_shown_as_such() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    for f in ["claude-code-metrics.json", "claude-code-logs.json"] {
        send_otlp(&app, f).await;
    }
    deliver(
        &app,
        "push",
        "d1",
        &push(
            "refs/heads/one",
            ZERO,
            &[commit(CLAUDE_1, "2026-11-20T09:13:48Z")],
        ),
    )
    .await;
    deliver(
        &app,
        "push",
        "d2",
        &push(
            "refs/heads/main",
            ZERO,
            &[commit(CLAUDE_2, "2026-11-20T09:31:27Z")],
        ),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "d3",
        &pull("opened", 11, CLAUDE_1, "one", "2026-11-20T10:00:00Z", None),
    )
    .await;
    app.applied(3).await;
    app.linked_up().await;

    let s = app.session(SESSION).await;
    assert_eq!(s["cost_usd"], 0.365276, "{s}");
    let shares = s["cost_shares"].as_array().expect("shares");
    let by_sha = |sha: &str| {
        shares
            .iter()
            .find(|x| x["sha"] == sha)
            .unwrap_or_else(|| panic!("no share for {sha}: {s}"))
    };
    assert_eq!(shares.len(), 2, "{s}");
    assert_eq!(by_sha(CLAUDE_1)["pull_requests"], serde_json::json!([11]));
    assert_eq!(by_sha(CLAUDE_1)["share_usd"], 0.182638);
    assert_eq!(by_sha(CLAUDE_1)["evidence"], "event");
    assert_eq!(by_sha(CLAUDE_1)["repository"], REPO);
    assert_eq!(by_sha(CLAUDE_2)["pull_requests"], serde_json::json!([]));
    assert_eq!(s["cost_outside_pull_requests_usd"], 0.182638, "{s}");

    // The PR's cost is its half, and PR + outside is the session's cost.
    let (status, r) = app
        .get_json(&format!("/api/v1/repos/{REPO}/pulls/11/report?format=json"))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["totals"]["cost_usd"], 0.182638);
    app.stop().await;
}
