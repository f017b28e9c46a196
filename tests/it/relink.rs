//! `tracelink relink` and `POST /api/v1/admin/relink`: after the identities file changes,
//! stored links are computed again from the kept facts — through a running server or
//! on the database with none running — and doing it again changes nothing.

use serde_json::Value;

use super::cli::{stdout, tracelink};
use super::common::TestApp;
use super::reports::{
    DROID_2, SECRET, ZERO, deliver, droid_commits, pull, push, report, send_otlp,
};

/// Droid's session is known by an agent user id only: the identities file says who.
fn identities(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("identities.toml");
    std::fs::write(
        &path,
        "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nagent_ids = [\"usr_60ebb16b39a4a540b62e6c3d\"]\n",
    )
    .unwrap();
    path
}

async fn sessions_in_report(app: &TestApp) -> (i64, Value) {
    let (json, _) = report(app, 11).await;
    (json["totals"]["sessions"].as_i64().unwrap(), json)
}

async fn admin_relink(app: &TestApp, body: &str) -> (u16, Value) {
    let r = app
        .post(
            "/api/v1/admin/relink",
            "application/json",
            body.as_bytes().to_vec(),
            &[],
        )
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_follow_an_identities_change_after_a_relink() {
    let dir = tempfile::tempdir().unwrap();
    let people = identities(dir.path());
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    for f in ["droid-metrics.json", "droid-traces.json"] {
        send_otlp(&app, f).await;
    }
    let commits = droid_commits();
    deliver(&app, "push", "p", &push("refs/heads/cache", ZERO, &commits)).await;
    let opened = pull("opened", 11, DROID_2, "cache", "2026-11-20T11:00:00Z", None);
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(2).await;
    assert_eq!(
        sessions_in_report(&app).await.0,
        0,
        "a user id alone matches no one"
    );

    // The identities file gains the person; restarting alone relinks nothing.
    let path = people.clone();
    app.restart_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.identities = Some(path);
    })
    .await;
    assert_eq!(sessions_in_report(&app).await.0, 0);

    let (status, body) = admin_relink(&app, r#"{"repo": "Acme/Widgets"}"#).await;
    assert_eq!((status, body), (200, serde_json::json!({"queued": 1})));
    let (n, linked) = sessions_in_report(&app).await;
    assert_eq!(n, 1, "{linked}");
    let links = linked["sessions"][0]["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{linked}");
    assert!(links.iter().all(|l| l["evidence"] == "window"), "{linked}");

    // Again: nothing changes.
    let (status, _) = admin_relink(&app, "").await;
    assert_eq!(status, 200);
    assert_eq!(sessions_in_report(&app).await.1, linked);
    let (status, body) = admin_relink(&app, r#"{"since": "yesterday"}"#).await;
    assert_eq!(status, 400, "{body}");

    // The person leaves the file; with no server running, the CLI queues the relink
    // and the next start does it.
    let db = app.db_arg();
    app.stop().await;
    let out = stdout(&tracelink(&["relink", "--since", "2026-11-01T00:00:00Z"], &db).await);
    assert!(out.starts_with("1 sessions queued for relinking"), "{out}");
    app.restart_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()])
        .await;
    assert_eq!(sessions_in_report(&app).await.0, 0);
    app.stop().await;
}

/// The first start of a release whose link rules changed links every session again by
/// itself, in the background, with the queue on `/metrics`; a start with the same rules
/// leaves the stored links alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_with_new_link_rules_relinks_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let people = identities(dir.path());
    let configure = move |a: &mut tracelink::config::ServeArgs| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.identities = Some(people.clone());
    };
    let mut app = TestApp::spawn_with(configure.clone()).await;
    for f in ["droid-metrics.json", "droid-traces.json"] {
        send_otlp(&app, f).await;
    }
    deliver(
        &app,
        "push",
        "p",
        &push("refs/heads/cache", ZERO, &droid_commits()),
    )
    .await;
    let opened = pull("opened", 11, DROID_2, "cache", "2026-11-20T11:00:00Z", None);
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(2).await;
    app.linked_up().await;
    let (n, before) = sessions_in_report(&app).await;
    assert_eq!(n, 1, "{before}");

    // An older release's links, made by other rules.
    app.stop().await;
    let mut store = tracelink::store::open(app.location()).await.unwrap();
    let old = tracelink::graph::links::RULES_VERSION - 1;
    store.writer.as_if_linked_by_rules(old).await.unwrap();
    store.db.close().await;
    store.writer.close().await.unwrap();

    app.restart_with(configure.clone()).await;
    app.linked_up().await;
    let (n, after) = sessions_in_report(&app).await;
    assert_eq!(n, 1, "{after}");
    assert_eq!(after["sessions"], before["sessions"]);
    let metrics = reqwest::get(format!("{}/metrics", app.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\ntracelink_link_queue_sessions 0\n"),
        "{metrics}"
    );

    // Same rules: a start leaves the links as stored (here: none).
    app.stop().await;
    let mut store = tracelink::store::open(app.location()).await.unwrap();
    store
        .writer
        .as_if_linked_by_rules(tracelink::graph::links::RULES_VERSION)
        .await
        .unwrap();
    store.db.close().await;
    store.writer.close().await.unwrap();
    app.restart_with(configure).await;
    app.linked_up().await;
    assert_eq!(sessions_in_report(&app).await.0, 0);
    app.stop().await;
}
