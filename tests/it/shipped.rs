//! Which pull requests a deployment's report changes: those it ships first — merged
//! into its commit or an ancestor, not behind an earlier deployment to the same
//! environment — however old the merge, and not every recently merged one.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tracelink::github::events::Event;
use tracelink::github::plan::plan;
use tracelink::store::github::Op;

use crate::reports::{Commit, REPO, ZERO, pull, push};

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
    tx.apply(&ops, now).await.unwrap();
    let prs = tx.affected_by(&ops, now).await.unwrap();
    tx.commit().await.unwrap();
    prs.into_iter().map(|(_, n)| n).collect()
}

#[tokio::test]
async fn a_deployment_queues_the_pull_requests_it_ships_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = tracelink::store::open(&dir.path().join("t.db"))
        .await
        .unwrap();
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
}
