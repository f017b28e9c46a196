//! Commit statuses (CircleCI, Buildkite, Jenkins report this way) as GitHub delivers
//! them: every status has its own id, a context goes `pending` → `success` or
//! `failure`. One run per (commit, context), the newest status standing, in whatever
//! order the deliveries arrive.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::common::TestApp;
use super::reports::{CLAUDE_2, REPO, SECRET, ZERO, deliver, pull};

/// A real `status` payload (`webhooks/payloads/status.1.json`) for `context` at the PR
/// head, in `state` at minute `minute` past ten.
fn status(id: i64, context: &str, state: &str, minute: u32) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("webhooks/payloads/status.1.json");
    let mut p: Value =
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
    let at = format!("2026-11-20T10:{minute:02}:00+00:00");
    p["id"] = json!(id);
    p["sha"] = json!(CLAUDE_2);
    p["name"] = json!(REPO);
    p["repository"]["full_name"] = json!(REPO);
    p["context"] = json!(context);
    p["state"] = json!(state);
    p["created_at"] = json!(at);
    p["updated_at"] = json!(at);
    p
}

fn head_push() -> Value {
    json!({
        "ref": "refs/heads/retry", "before": ZERO, "after": CLAUDE_2,
        "repository": {"full_name": REPO},
        "commits": [{"id": CLAUDE_2, "message": "Test backoff", "timestamp": "2026-11-20T09:31:27Z",
            "author": {"name": "dev", "email": "dev@acme.example", "username": "dev"},
            "committer": {"name": "dev", "email": "dev@acme.example", "username": "dev"},
            "added": [], "modified": ["src/a.rs"], "removed": []}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_status_context_is_one_run_with_its_newest_state() {
    let steps: Vec<(&str, Value)> = vec![
        ("push", head_push()),
        (
            "pull_request",
            pull("opened", 7, CLAUDE_2, "retry", "2026-11-20T10:00:00Z", None),
        ),
        ("status", status(101, "ci/circleci: build", "pending", 1)),
        ("status", status(102, "buildkite/lint", "pending", 1)),
        ("status", status(103, "ci/circleci: build", "success", 6)),
        ("status", status(104, "buildkite/lint", "failure", 4)),
    ];
    let n = steps.len();
    let mut seen = Vec::new();
    for order in [
        (0..n).collect::<Vec<_>>(),
        (0..n).rev().collect(),
        vec![4, 0, 5, 2, 1, 3],
        vec![3, 5, 1, 4, 0, 2],
    ] {
        let mut app =
            TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
        for &i in &order {
            deliver(&app, steps[i].0, &format!("d{i}"), &steps[i].1).await;
        }
        app.applied(n as u64).await;
        let (status, r) = app
            .get_json(&format!("/api/v1/repos/{REPO}/pulls/7/report?format=json"))
            .await;
        assert_eq!(status, 200, "{r}");
        let ci = r["ci"].clone();
        assert_eq!(ci["passed"], 1, "order {order:?}: {ci}");
        assert_eq!(ci["failed"], 1, "order {order:?}: {ci}");
        assert_eq!(ci["pending"], 0, "order {order:?}: {ci}");
        let runs: Vec<(String, String)> = ci["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["conclusion"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect();
        assert_eq!(
            runs,
            vec![
                ("buildkite/lint".to_string(), "failure".to_string()),
                ("ci/circleci: build".to_string(), "success".to_string()),
            ],
            "order {order:?}"
        );
        let (_, c) = app
            .get_json(&format!("/api/v1/repos/{REPO}/commits/{CLAUDE_2}"))
            .await;
        assert_eq!(c["runs"].as_array().map(Vec::len), Some(2), "{c}");
        let (_, md) = app
            .get_json(&format!("/api/v1/repos/{REPO}/pulls/7/report?format=json"))
            .await;
        seen.push((order, md));
        assert_eq!(app.count("ci_runs").await, 2, "one row per context");
        app.stop().await;
    }
    for (order, r) in &seen[1..] {
        assert_eq!(r, &seen[0].1, "order {order:?}");
    }
}
