//! The DORA keys of a repository, split by agent involvement, from signed webhooks.

use serde_json::{Value, json};

use super::common::TestApp;
use super::reports::{Commit, SECRET, ZERO, deliver, push};

pub(crate) const A1: &str = "a100000000000000000000000000000000000000";
pub(crate) const A2: &str = "a200000000000000000000000000000000000000";
pub(crate) const B1: &str = "b100000000000000000000000000000000000000";
pub(crate) const C1: &str = "c100000000000000000000000000000000000000";
pub(crate) const C2: &str = "c200000000000000000000000000000000000000";

pub(crate) fn c<'a>(sha: &'a str, message: &'a str, at: &'a str) -> Commit<'a> {
    Commit {
        sha,
        message,
        at,
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }
}

/// main's history: A1 and A2 (Claude co-authored) on 1 November, B1 on the 2nd, C1
/// (Codex co-authored) and C2 on the 3rd.
pub(crate) fn main_history() -> Vec<(&'static str, Value)> {
    let claude = "Retry\n\nCo-Authored-By: Claude <noreply@anthropic.com>";
    let codex = "Cache\n\nCo-authored-by: Codex <codex@openai.com>";
    vec![
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
    ]
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

/// main's history deployed three times to production (A2, B1, C2), and two incidents:
/// #5 caused by deployment 3, #6 by the deployment that shipped B1.
fn widgets_deployed() -> Vec<(&'static str, Value)> {
    let mut deliveries = main_history();
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
    deliveries
}

#[tokio::test]
async fn dora_keys_split_by_agent_involvement() {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    let deliveries = widgets_deployed();
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

fn issue(
    action: &str,
    number: i64,
    body: &str,
    labels: &[&str],
    opened: &str,
    updated: &str,
    closed: Option<&str>,
) -> Value {
    json!({"action": action, "repository": {"full_name": "acme/widgets"},
        "issue": {"number": number, "title": "Outage", "body": body,
            "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
            "state": if closed.is_some() { "closed" } else { "open" }, "created_at": opened,
            "closed_at": closed, "updated_at": updated}})
}

/// The same three deployments, with incidents as teams write them: one without a root
/// cause (linked by time to the last deployment before it), one whose root cause was
/// edited (the new one replaces the old), one naming a pull request's merge commit (the
/// first deployment that shipped it, and the PR's report lists it), and one in another
/// environment (not production's). In two arrival orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_link_by_root_cause_fallback_and_edit_in_any_order() {
    let mut steps = main_history();
    steps.extend([(
        "pull_request",
        super::reports::pull("closed", 4, A2, "retry", "2026-11-01T07:00:00Z", Some(A2)),
    )]);
    steps.extend(deployment(1, A2, "2026-11-01T12:00:00Z"));
    steps.extend(deployment(2, B1, "2026-11-02T06:00:00Z"));
    steps.extend(deployment(3, C2, "2026-11-03T02:00:00Z"));
    steps.extend([
        // No root cause: deployment 2, the last before it opened. Restored in 2 h.
        (
            "issues",
            issue(
                "closed",
                7,
                "Checkout is slow.",
                &["incident"],
                "2026-11-02T10:00:00Z",
                "2026-11-02T12:00:00Z",
                Some("2026-11-02T12:00:00Z"),
            ),
        ),
        // Root cause A1 (deployment 1), then edited to C1 (deployment 3) and resolved
        // 41 h after it opened.
        (
            "issues",
            issue(
                "opened",
                8,
                "root cause: a100000000000000000000000000000000000000",
                &["incident"],
                "2026-11-01T13:00:00Z",
                "2026-11-01T13:00:00Z",
                None,
            ),
        ),
        (
            "issues",
            issue(
                "edited",
                8,
                "Found it.\nroot cause: c100000000000000000000000000000000000000",
                &["incident"],
                "2026-11-01T13:00:00Z",
                "2026-11-03T06:00:00Z",
                Some("2026-11-03T06:00:00Z"),
            ),
        ),
        // Staging: no staging deployment, so no production failure.
        (
            "issues",
            issue(
                "opened",
                9,
                "Flaky.",
                &["incident", "env:staging"],
                "2026-11-02T10:00:00Z",
                "2026-11-02T10:00:00Z",
                None,
            ),
        ),
        // Root cause: PR #4's merge commit, first shipped by deployment 1. Still open.
        (
            "issues",
            issue(
                "opened",
                10,
                "root cause: `a200000000000000000000000000000000000000`\nenvironment: production",
                &["incident"],
                "2026-11-01T15:00:00Z",
                "2026-11-01T15:00:00Z",
                None,
            ),
        ),
    ]);
    let n = steps.len();
    let mut seen = Vec::new();
    for order in [(0..n).collect::<Vec<_>>(), (0..n).rev().collect()] {
        let mut app =
            TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
        for &i in &order {
            deliver(&app, steps[i].0, &format!("d{i}"), &steps[i].1).await;
        }
        app.applied(n as u64).await;
        let (status, d) = app
            .get_json(
                "/api/v1/repos/acme/widgets/dora?since=2026-11-01T00:00:00Z&until=2026-11-05T00:00:00Z",
            )
            .await;
        assert_eq!(status, 200, "{d}");
        // Failed: 1 (#10), 2 (#7), 3 (#8 after its edit). Restored: #7 in 2 h (human
        // deployment 2), #8 in 41 h (agent deployment 3); #10 is open, #9 is staging's.
        assert_eq!(
            d["all"],
            json!({"deployments": 3, "deployments_per_day": 0.75, "changes": 5, "lead_time_median_hours": 6.0,
                "failed_deployments": 3, "change_failure_rate": 1.0, "incidents_restored": 2,
                "time_to_restore_median_hours": 21.5}),
            "order {order:?}"
        );
        // A2 is #4's merge result: its change starts at #4's first commit, A1 (12 h
        // before deployment 1); C1 took 2 h.
        assert_eq!(
            d["agent_assisted"],
            json!({"deployments": 2, "deployments_per_day": 0.5, "changes": 2, "lead_time_median_hours": 7.0,
                "failed_deployments": 2, "change_failure_rate": 1.0, "incidents_restored": 1,
                "time_to_restore_median_hours": 41.0}),
            "order {order:?}"
        );
        assert_eq!(
            d["not_agent_assisted"],
            json!({"deployments": 1, "deployments_per_day": 0.25, "changes": 3, "lead_time_median_hours": 6.0,
                "failed_deployments": 1, "change_failure_rate": 1.0, "incidents_restored": 1,
                "time_to_restore_median_hours": 2.0}),
            "order {order:?}"
        );
        let (status, r) = app
            .get_json("/api/v1/repos/acme/widgets/pulls/4/report?format=json")
            .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            r["incidents"],
            json!([{"number": 10, "title": "Outage", "state": "open", "environment": "production",
                "deployment": 1, "evidence": "root_cause"}]),
            "order {order:?}: only the incident of the deployment that shipped #4"
        );
        let (_, md) = app
            .get_json("/api/v1/repos/acme/widgets/pulls/4/report")
            .await;
        seen.push((order, d, r, md));
        app.stop().await;
    }
    assert_eq!(seen[0].1, seen[1].1);
    assert_eq!(seen[0].2, seen[1].2);
}

/// The keys over every repository deployed to production: acme/widgets' three
/// deployments as above, and acme/gadgets' one (G1, authored 2026-11-02T00:00Z, shipped
/// at 10:00: 10 h, no agent). Pooled: every change's lead time in one median, failures
/// over all deployments — never an average of the repositories' figures.
#[tokio::test]
async fn dora_keys_rolled_up_across_repositories() {
    const G1: &str = "9100000000000000000000000000000000000000";
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    let mut deliveries = widgets_deployed();
    let mut gadgets = push(
        "refs/heads/main",
        ZERO,
        &[c(G1, "Init", "2026-11-02T00:00:00Z")],
    );
    gadgets["repository"]["full_name"] = json!("acme/gadgets");
    deliveries.push(("push", gadgets));
    let d = json!({"id": 7, "sha": G1, "ref": "main", "environment": "production",
        "created_at": "2026-11-02T10:00:00Z"});
    deliveries.push((
        "deployment",
        json!({"action": "created", "repository": {"full_name": "acme/gadgets"}, "deployment": d}),
    ));
    deliveries.push((
        "deployment_status",
        json!({"action": "created", "repository": {"full_name": "acme/gadgets"},
            "deployment_status": {"id": 70, "state": "success", "environment": "production",
                "created_at": "2026-11-02T10:00:00Z"},
            "deployment": d}),
    ));
    for (i, (event, payload)) in deliveries.iter().enumerate() {
        deliver(&app, event, &format!("d{i}"), payload).await;
    }
    app.applied(deliveries.len() as u64).await;

    const WINDOW: &str = "since=2026-11-01T00:00:00Z&until=2026-11-05T00:00:00Z";
    let (status, r) = app.get_json(&format!("/api/v1/dora?{WINDOW}")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["repositories"], 2);
    // Lead times 12, 6, 6, 2, 1 (widgets) and 10 (gadgets): median 6; the others' 12, 6,
    // 1 and 10: median 8.
    assert_eq!(
        r["all"],
        json!({"deployments": 4, "deployments_per_day": 1.0, "changes": 6, "lead_time_median_hours": 6.0,
            "failed_deployments": 2, "change_failure_rate": 0.5, "incidents_restored": 2,
            "time_to_restore_median_hours": 2.5})
    );
    assert_eq!(
        r["not_agent_assisted"],
        json!({"deployments": 2, "deployments_per_day": 0.5, "changes": 4, "lead_time_median_hours": 8.0,
            "failed_deployments": 1, "change_failure_rate": 0.5, "incidents_restored": 1,
            "time_to_restore_median_hours": 1.0})
    );
    assert_eq!(r["agent_assisted"]["deployments"], 2);
    assert_eq!(r["groups"][0]["key"], "acme");
    assert_eq!(
        r["groups"][0]["repositories"],
        json!(["acme/gadgets", "acme/widgets"])
    );

    let (_, r) = app
        .get_json(&format!("/api/v1/dora?group_by=repo&{WINDOW}"))
        .await;
    let keys: Vec<&str> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["acme/gadgets", "acme/widgets"]);
    assert_eq!(r["groups"][0]["all"]["lead_time_median_hours"], 10.0);
    assert_eq!(r["groups"][1]["all"]["change_failure_rate"], 0.667);
    // Nothing deployed to staging: zero deployments, no medians.
    let (_, r) = app
        .get_json(&format!("/api/v1/dora?environment=staging&{WINDOW}"))
        .await;
    assert_eq!(r["repositories"], 0);
    assert_eq!(r["all"]["deployments"], 0);
    assert_eq!(r["all"]["lead_time_median_hours"], Value::Null);
    let (status, body) = app.get_json("/api/v1/dora?group_by=person").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("org, team, repo"),
        "{body}"
    );
    app.stop().await;
}
