//! The DORA keys of a repository, split by agent involvement, from signed webhooks.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::reports::{Commit, SECRET, ZERO, deliver, push};

const A1: &str = "a100000000000000000000000000000000000000";
const A2: &str = "a200000000000000000000000000000000000000";
const B1: &str = "b100000000000000000000000000000000000000";
const C1: &str = "c100000000000000000000000000000000000000";
const C2: &str = "c200000000000000000000000000000000000000";

fn c<'a>(sha: &'a str, message: &'a str, at: &'a str) -> Commit<'a> {
    Commit {
        sha,
        message,
        at,
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }
}

fn deployment(id: i64, sha: &str, at: &str) -> [(&'static str, Value); 2] {
    let d =
        json!({"id": id, "sha": sha, "ref": "main", "environment": "production", "created_at": at});
    [
        (
            "deployment",
            json!({"action": "created", "repository": {"full_name": "acme/widgets"}, "deployment": d}),
        ),
        (
            "deployment_status",
            json!({"action": "created", "repository": {"full_name": "acme/widgets"},
            "deployment_status": {"id": id * 10, "state": "success", "environment": "production", "created_at": at},
            "deployment": d}),
        ),
    ]
}

fn incident(number: i64, cause: &str, opened: &str, closed: &str) -> Value {
    json!({"action": "closed", "repository": {"full_name": "acme/widgets"},
        "issue": {"number": number, "title": "Outage", "body": format!("root cause: {cause}"),
            "labels": [{"name": "incident"}], "state": "closed", "created_at": opened,
            "closed_at": closed, "updated_at": closed}})
}

#[tokio::test]
async fn dora_keys_split_by_agent_involvement() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    let claude = "Retry\n\nCo-Authored-By: Claude <noreply@anthropic.com>";
    let codex = "Cache\n\nCo-authored-by: Codex <codex@openai.com>";
    let mut deliveries: Vec<(&str, Value)> = vec![
        (
            "push",
            push(
                "refs/heads/main",
                ZERO,
                &[
                    c(A1, "Init", "2026-11-01T00:00:00Z"),
                    c(A2, claude, "2026-11-01T06:00:00Z"),
                ],
            ),
        ),
        (
            "push",
            push(
                "refs/heads/main",
                A2,
                &[c(B1, "Fix", "2026-11-02T00:00:00Z")],
            ),
        ),
        (
            "push",
            push(
                "refs/heads/main",
                B1,
                &[
                    c(C1, codex, "2026-11-03T00:00:00Z"),
                    c(C2, "Docs", "2026-11-03T01:00:00Z"),
                ],
            ),
        ),
    ];
    deliveries.extend(deployment(1, A2, "2026-11-01T12:00:00Z"));
    deliveries.extend(deployment(2, B1, "2026-11-02T06:00:00Z"));
    deliveries.extend(deployment(3, C2, "2026-11-03T02:00:00Z"));
    deliveries.push((
        "issues",
        incident(
            5,
            "deployment 3",
            "2026-11-03T03:00:00Z",
            "2026-11-03T07:00:00Z",
        ),
    ));
    deliveries.push((
        "issues",
        incident(6, B1, "2026-11-02T08:00:00Z", "2026-11-02T09:00:00Z"),
    ));
    for (i, (event, payload)) in deliveries.iter().enumerate() {
        deliver(&app, event, &format!("d{i}"), payload).await;
    }
    app.applied(deliveries.len() as u64).await;

    let (status, d) = app
        .get_json(
            "/api/v1/repos/acme/widgets/dora?since=2026-11-01T00:00:00Z&until=2026-11-05T00:00:00Z",
        )
        .await;
    assert_eq!(status, 200, "{d}");
    // Deployment 1 ships A1 and A2 (agent), 2 ships B1, 3 ships C1 (agent) and C2.
    assert_eq!(
        d["all"],
        json!({"deployments": 3, "deployments_per_day": 0.75, "changes": 5, "lead_time_median_hours": 6.0,
            "failed_deployments": 2, "change_failure_rate": 0.667, "incidents_restored": 2,
            "time_to_restore_median_hours": 2.5})
    );
    assert_eq!(
        d["agent_assisted"],
        json!({"deployments": 2, "deployments_per_day": 0.5, "changes": 2, "lead_time_median_hours": 4.0,
            "failed_deployments": 1, "change_failure_rate": 0.5, "incidents_restored": 1,
            "time_to_restore_median_hours": 4.0})
    );
    assert_eq!(
        d["not_agent_assisted"],
        json!({"deployments": 1, "deployments_per_day": 0.25, "changes": 3, "lead_time_median_hours": 6.0,
            "failed_deployments": 1, "change_failure_rate": 1.0, "incidents_restored": 1,
            "time_to_restore_median_hours": 1.0})
    );
    let (status, body) = app
        .get_json("/api/v1/repos/acme/widgets/dora?since=soon")
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("since"));
    app.stop().await;
}
