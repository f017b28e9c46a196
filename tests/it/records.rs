//! Deployments and incidents from outside GitHub (`POST /api/v1/deployments`,
//! `POST /api/v1/incidents`), mixed with GitHub's: the same DORA figures as the
//! all-GitHub history in `dora.rs`, and clear refusals.

use serde_json::{Value, json};

use super::common::TestApp;
use super::dora::{A1, A2, B1, C2, c, main_history};
use super::reports::{SECRET, ZERO, deliver, push};

const API_TOKEN: &str = "api-token-1";
const UPLOAD_TOKEN: &str = "widgets-ci-token";

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app
        .client
        .get(format!("{}{path}", app.http))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", app.http))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn deployment(
    external_id: &str,
    sha: &str,
    status: &str,
    started: &str,
    finished: Option<&str>,
) -> Value {
    json!({"repository": "acme/widgets", "environment": "production", "sha": sha, "status": status,
        "external_id": external_id, "source": "argocd", "started_at": started, "finished_at": finished})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_and_incidents_from_outside_github_count_in_dora() {
    let mut app = TestApp::spawn_with(|a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.ingest_tokens = vec![API_TOKEN.parse().unwrap()];
        a.upload_tokens = vec![format!("acme/widgets={UPLOAD_TOKEN}").parse().unwrap()];
    })
    .await;
    let gh_deployment = json!({"id": 1, "sha": A2, "ref": "main", "environment": "production",
        "created_at": "2026-11-01T12:00:00Z"});
    let mut steps = main_history();
    steps.extend([
        (
            "deployment",
            json!({"action": "created", "repository": {"full_name": "acme/widgets"}, "deployment": gh_deployment}),
        ),
        (
            "deployment_status",
            json!({"action": "created", "repository": {"full_name": "acme/widgets"},
            "deployment_status": {"id": 10, "state": "success", "environment": "production", "created_at": "2026-11-01T12:00:00Z"},
            "deployment": gh_deployment}),
        ),
    ]);
    for (i, (event, payload)) in steps.iter().enumerate() {
        deliver(&app, event, &format!("d{i}"), payload).await;
    }
    app.applied(steps.len() as u64).await;

    // Argo CD reports deployment 2 (an API token) and deployment 3 (the repository's CI
    // token), the latter first in progress, then finished.
    let (s, d2) = post(
        &app,
        "/api/v1/deployments",
        Some(API_TOKEN),
        &deployment(
            "sync-2",
            B1,
            "success",
            "2026-11-02T05:55:00Z",
            Some("2026-11-02T06:00:00Z"),
        ),
    )
    .await;
    assert_eq!(s, 202, "{d2}");
    let (s, started) = post(
        &app,
        "/api/v1/deployments",
        Some(UPLOAD_TOKEN),
        &deployment("sync-3", C2, "in_progress", "2026-11-03T01:55:00Z", None),
    )
    .await;
    assert_eq!(s, 202, "{started}");
    let finished = deployment(
        "sync-3",
        C2,
        "success",
        "2026-11-03T01:55:00Z",
        Some("2026-11-03T02:00:00Z"),
    );
    let (s, d3) = post(&app, "/api/v1/deployments", Some(UPLOAD_TOKEN), &finished).await;
    assert_eq!(s, 202, "{d3}");
    assert_eq!(d3["id"], started["id"], "one deployment per external id");
    let (s, again) = post(&app, "/api/v1/deployments", Some(UPLOAD_TOKEN), &finished).await;
    assert_eq!(
        (s, again["status"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );

    // PagerDuty: one incident naming the deployment, one with no root cause (the last
    // deployment before it opened: deployment 2).
    let (s, i1) = post(&app, "/api/v1/incidents", Some(API_TOKEN), &json!({
        "repository": "acme/widgets", "source": "pagerduty", "external_id": "P5", "title": "Checkout down",
        "opened_at": "2026-11-03T03:00:00Z", "resolved_at": "2026-11-03T07:00:00Z",
        "root_cause": d3["id"].to_string()})).await;
    assert_eq!(s, 202, "{i1}");
    let (s, i2) = post(&app, "/api/v1/incidents", Some(API_TOKEN), &json!({
        "repository": "acme/widgets", "source": "pagerduty", "external_id": "P6", "title": "Slow",
        "environment": "production", "opened_at": "2026-11-02T08:00:00Z", "resolved_at": "2026-11-02T09:00:00Z"})).await;
    assert_eq!(s, 202, "{i2}");
    app.applied(steps.len() as u64 + 5).await;

    let (status, d) = get(
        &app,
        "/api/v1/repos/acme/widgets/dora?since=2026-11-01T00:00:00Z&until=2026-11-05T00:00:00Z",
    )
    .await;
    assert_eq!(status, 200, "{d}");
    // As in dora.rs: deployment 1 ships A1 and A2 (agent), 2 ships B1, 3 ships C1
    // (agent) and C2; incidents on 3 (4 h) and 2 (1 h).
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
    let (_, commit) = get(&app, &format!("/api/v1/repos/acme/widgets/commits/{C2}")).await;
    assert_eq!(commit["deployments"][0]["id"], d3["id"], "{commit}");
    assert_eq!(commit["deployments"][0]["state"], "success", "{commit}");
    app.stop().await;
}

#[tokio::test]
async fn bad_records_are_refused_naming_the_problem() {
    let mut app = TestApp::spawn_with(|a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.ingest_tokens = vec![API_TOKEN.parse().unwrap()];
        a.upload_tokens = vec![format!("acme/widgets={UPLOAD_TOKEN}").parse().unwrap()];
    })
    .await;
    deliver(
        &app,
        "push",
        "p",
        &push(
            "refs/heads/main",
            ZERO,
            &[c(A1, "Init", "2026-11-01T00:00:00Z")],
        ),
    )
    .await;
    app.applied(1).await;
    let ok = deployment(
        "x",
        A1,
        "success",
        "2026-11-01T01:00:00Z",
        Some("2026-11-01T01:05:00Z"),
    );

    let (s, b) = post(&app, "/api/v1/deployments", None, &ok).await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = post(&app, "/api/v1/deployments", Some("nope"), &ok).await;
    assert_eq!(s, 401, "{b}");
    // The CI token of another repository.
    let mut other = ok.clone();
    other["repository"] = json!("acme/gadgets");
    let (s, b) = post(&app, "/api/v1/deployments", Some(UPLOAD_TOKEN), &other).await;
    assert_eq!(s, 401, "{b}");
    assert!(b["error"].as_str().unwrap().contains("acme/gadgets"), "{b}");
    // A repository tracelink does not serve.
    let (s, b) = post(&app, "/api/v1/deployments", Some(API_TOKEN), &other).await;
    assert_eq!((s, b["field"].as_str()), (422, Some("repository")), "{b}");
    // Bad fields.
    for (field, value, named) in [
        ("sha", json!("a1"), "sha"),
        ("status", json!("done"), "status"),
        ("finished_at", json!("tomorrow"), "finished_at"),
        ("surprise", json!(1), "surprise"),
    ] {
        let mut bad = ok.clone();
        bad[field] = value;
        let (s, b) = post(&app, "/api/v1/deployments", Some(API_TOKEN), &bad).await;
        assert_eq!(s, 400, "{field}: {b}");
        assert!(b["error"].as_str().unwrap().contains(named), "{field}: {b}");
    }
    let (s, b) = post(
        &app,
        "/api/v1/incidents",
        Some(API_TOKEN),
        &json!({
        "repository": "acme/widgets", "source": "pagerduty", "opened_at": "2026-11-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].as_str().unwrap().contains("external_id"), "{b}");
    assert_eq!(app.count("deployments").await, 0, "nothing half-written");
    app.stop().await;
}
