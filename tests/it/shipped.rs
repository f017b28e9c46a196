//! Which pull requests a deployment's or an incident's report changes: those a
//! deployment ships first — merged into its commit or an ancestor, not behind an earlier
//! deployment to the same environment — and those an incident's resolved cause reaches,
//! however old the merge, and not every recently merged one.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tracelink::github::events::Event;
use tracelink::github::plan::plan;
use tracelink::store::github::Op;

use super::reports::{Commit, REPO, ZERO, pull, push};

const OLD: &str = "a100000000000000000000000000000000000001";
const MID: &str = "a100000000000000000000000000000000000002";
const NEW: &str = "a100000000000000000000000000000000000003";

fn ops(event: &str, payload: &Value) -> Vec<Op> {
    let e = Event::parse(event, payload.to_string().as_bytes()).unwrap();
    plan(&e, "incident").unwrap()
}

fn deployment(id: i64, sha: &str, at: &str) -> Value {
    json!({"action": "created", "repository": {"full_name": REPO},
        "deployment": {"id": id, "sha": sha, "ref": "main", "environment": "production",
            "created_at": at}})
}

/// Applies a delivery's ops; the pull requests whose reports they change.
async fn affected(conn: &mut tracelink::store::Conn, event: &str, payload: Value) -> BTreeSet<i64> {
    let now = tracelink::time::now_ns();
    let ops = ops(event, &payload);
    let mut tx = conn.begin().await.unwrap();
    let prs = tracelink::github::processor::apply_ops(&mut tx, &ops, now, "production")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    prs.into_iter().map(|(_, n)| n).collect()
}

#[tokio::test]
async fn a_deployment_queues_the_pull_requests_it_ships_first() {
    let dir = tempfile::tempdir().unwrap();
    let database = super::common::TestDb::new(dir.path()).await;
    let mut store = tracelink::store::open(&database.location).await.unwrap();
    let commit = |sha, at| Commit {
        sha,
        message: "change",
        at,
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    };
    let main = push(
        "refs/heads/main",
        ZERO,
        &[
            commit(OLD, "2026-08-01T10:00:00Z"),
            commit(MID, "2026-09-15T10:00:00Z"),
            commit(NEW, "2026-11-20T10:00:00Z"),
        ],
    );
    // #5 merged four months ago, #6 ten days ago.
    let pr5 = pull("closed", 5, OLD, "old", "2026-08-01T10:00:00Z", Some(OLD));
    let pr6 = pull("closed", 6, NEW, "new", "2026-11-20T10:00:00Z", Some(NEW));
    let conn = &mut store.writer;
    affected(conn, "push", main).await;
    affected(conn, "pull_request", pr5).await;
    affected(conn, "pull_request", pr6).await;

    // The first deployment (of MID) ships #5, merged long ago, and not #6.
    assert_eq!(
        affected(
            conn,
            "deployment",
            deployment(1, MID, "2026-09-16T00:00:00Z")
        )
        .await,
        BTreeSet::from([5])
    );
    // It succeeds: still #5.
    assert_eq!(
        affected(
            conn,
            "deployment_status",
            deployment_status(11, 1, MID, "success", "2026-09-16T00:05:00Z")
        )
        .await,
        BTreeSet::from([5])
    );
    // The next ships #6 only: #5 is behind the first.
    assert_eq!(
        affected(
            conn,
            "deployment",
            deployment(2, NEW, "2026-11-21T00:00:00Z")
        )
        .await,
        BTreeSet::from([6])
    );
    // Another environment has shipped nothing yet: both.
    let mut staging = deployment(3, NEW, "2026-11-21T01:00:00Z");
    staging["deployment"]["environment"] = json!("staging");
    assert_eq!(
        affected(conn, "deployment", staging).await,
        BTreeSet::from([5, 6])
    );

    // A failed deployment ships nothing: the successful one after it ships what the
    // failed one held as well.
    let failed = to_qa(deployment_status(
        12,
        4,
        MID,
        "failure",
        "2026-11-22T00:05:00Z",
    ));
    assert_eq!(
        affected(conn, "deployment_status", failed).await,
        BTreeSet::from([5])
    );
    let redeploy = to_qa(deployment_status(
        13,
        5,
        NEW,
        "success",
        "2026-11-22T01:05:00Z",
    ));
    assert_eq!(
        affected(conn, "deployment_status", redeploy).await,
        BTreeSet::from([5, 6])
    );
}

fn deployment_status(id: i64, deployment: i64, sha: &str, state: &str, at: &str) -> Value {
    json!({"action": "created", "repository": {"full_name": REPO},
        "deployment": {"id": deployment, "sha": sha, "ref": "main", "environment": "production",
            "created_at": at},
        "deployment_status": {"id": id, "state": state, "environment": "production",
            "created_at": at}})
}

/// The same deployment status, to the `qa` environment.
fn to_qa(mut status: Value) -> Value {
    status["deployment"]["environment"] = json!("qa");
    status["deployment_status"]["environment"] = json!("qa");
    status
}

fn incident(number: i64, body: &str, opened: &str, updated: &str, labelled: bool) -> Value {
    let labels = if labelled {
        json!([{"name": "incident"}])
    } else {
        json!([])
    };
    json!({"action": "edited", "repository": {"full_name": REPO},
        "issue": {"number": number, "title": "Checkout fails", "body": body, "labels": labels,
            "state": "open", "created_at": opened, "updated_at": updated}})
}

#[tokio::test]
async fn an_incident_queues_the_pull_requests_its_cause_reaches_however_old() {
    let dir = tempfile::tempdir().unwrap();
    let database = super::common::TestDb::new(dir.path()).await;
    let mut store = tracelink::store::open(&database.location).await.unwrap();
    let commit = |sha, at| Commit {
        sha,
        message: "change",
        at,
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    };
    const OTHER: &str = "a100000000000000000000000000000000000009";
    let main = push(
        "refs/heads/main",
        ZERO,
        &[
            commit(OLD, "2025-03-01T10:00:00Z"),
            commit(MID, "2025-04-01T10:00:00Z"),
            commit(NEW, "2025-05-01T10:00:00Z"),
        ],
    );
    // Merged more than a year ago: #5 as OLD, #6 as MID, #7 as NEW; #8 was merged
    // yesterday into a commit no deployment ships.
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let yesterday = yesterday.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let conn = &mut store.writer;
    affected(conn, "push", main).await;
    for (n, sha, at) in [
        (5, OLD, "2025-03-01T10:00:00Z"),
        (6, MID, "2025-04-01T10:00:00Z"),
        (7, NEW, "2025-05-01T10:00:00Z"),
        (8, OTHER, yesterday.as_str()),
    ] {
        affected(
            conn,
            "pull_request",
            pull("closed", n, sha, "b", at, Some(sha)),
        )
        .await;
    }
    // Deployment 1 (MID) succeeded first, shipping #5 and #6; deployment 2 (NEW) #7.
    for (id, sha, at) in [
        (1, MID, "2025-04-02T00:00:00Z"),
        (2, NEW, "2025-05-02T00:00:00Z"),
    ] {
        affected(conn, "deployment", deployment(id, sha, at)).await;
        affected(
            conn,
            "deployment_status",
            deployment_status(100 + id, id, sha, "success", at),
        )
        .await;
    }

    // No root cause: the last successful deployment before it opened (2) shipped #7.
    assert_eq!(
        affected(
            conn,
            "issues",
            incident(
                40,
                "Checkout fails.",
                "2025-05-03T00:00:00Z",
                "2025-05-03T00:00:00Z",
                true
            )
        )
        .await,
        BTreeSet::from([7])
    );
    // A root cause naming deployment 1: what it shipped first.
    assert_eq!(
        affected(
            conn,
            "issues",
            incident(
                41,
                "root cause: deployment 1",
                "2025-05-03T00:00:00Z",
                "2025-05-03T00:00:00Z",
                true
            )
        )
        .await,
        BTreeSet::from([5, 6])
    );
    // A root cause naming OLD: the pull request merged as OLD, and what the first
    // deployment shipping OLD (1) shipped first.
    assert_eq!(
        affected(
            conn,
            "issues",
            incident(
                42,
                &format!("root cause: {OLD}"),
                "2025-05-03T00:00:00Z",
                "2025-05-03T00:00:00Z",
                true
            )
        )
        .await,
        BTreeSet::from([5, 6])
    );
    // Moving #41's cause to deployment 2: the reports it leaves and the one it joins.
    assert_eq!(
        affected(
            conn,
            "issues",
            incident(
                41,
                "root cause: deployment 2",
                "2025-05-03T00:00:00Z",
                "2025-05-04T00:00:00Z",
                true
            )
        )
        .await,
        BTreeSet::from([5, 6, 7])
    );
    // Taking the label off: the reports it showed on drop it; it reaches nothing more.
    assert_eq!(
        affected(
            conn,
            "issues",
            incident(
                41,
                "root cause: deployment 2",
                "2025-05-03T00:00:00Z",
                "2025-05-05T00:00:00Z",
                false
            )
        )
        .await,
        BTreeSet::from([7])
    );
}
