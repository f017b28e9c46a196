//! `--retain-raw`: raw telemetry and processed delivery payloads past the window are
//! pruned in the background; every session fact, link and report stays as it was.
//! `tracelink stats` shows rows and bytes per table.

use std::time::Duration;

use serde_json::{Value, json};

use super::cli::{stdout, tracelink};
use super::common::TestApp;
use super::line_records::{mixed_pull_with, until_comment};
use super::reports::{CLAUDE_2, REPO, deliver, pull, send_otlp};
use tracelink_dev::fake_github::INSTALLATION;

const RAW: [&str; 5] = [
    "raw_records",
    "record_sessions",
    "spans",
    "log_events",
    "metric_points",
];

async fn raw_rows(app: &TestApp) -> i64 {
    let mut n = 0;
    for t in RAW {
        n += app.count(t).await;
    }
    n
}

/// What a user reads: the report and the session.
async fn readings(app: &TestApp) -> (Value, Value) {
    let (status, report) = app
        .get_json(&format!("/api/v1/repos/{REPO}/pulls/7/report?format=json"))
        .await;
    assert_eq!(status, 200, "{report}");
    let session = app.session("82c3495f-998e-457a-875a-8643b934dd9c").await;
    (report, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_data_past_the_window_is_pruned_and_reports_stay_the_same() {
    let (fake, mut app) = mixed_pull_with(|a| {
        a.retain_raw = tracelink::retention::Retention(Some(Duration::from_secs(5)))
    })
    .await;
    // Spans and metric points too (the session's logs came with the set-up).
    send_otlp(&app, "claude-code-traces.json").await;
    send_otlp(&app, "claude-code-metrics.json").await;
    let mut opened = pull("opened", 7, CLAUDE_2, "retry", "2026-11-20T09:45:00Z", None);
    opened["installation"] = json!({"id": INSTALLATION});
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(2).await;
    until_comment(&app, &fake, "| Agent sessions | 1 by dev").await;
    app.linked_up().await;
    let before = readings(&app).await;
    for signal in ["traces", "logs", "metrics"] {
        assert!(app.stored(signal).await > 0, "{signal} stored");
    }
    assert!(app.count("metric_points").await > 0);
    assert_eq!(app.db().delivery_payloads_kept().await.unwrap(), 2);

    // The pruner's rounds, until the window has passed over everything.
    let mut rounds = app.server.as_ref().unwrap().pruned.clone().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while raw_rows(&app).await > 0 || app.db().delivery_payloads_kept().await.unwrap() > 0 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout(left, rounds.changed()).await.is_err() {
            let mut left = Vec::new();
            for t in RAW {
                left.push((t, app.count(t).await));
            }
            panic!(
                "not pruned within 30 s: {left:?}, payloads {}",
                app.db().delivery_payloads_kept().await.unwrap()
            );
        }
    }
    assert_eq!(readings(&app).await, before);
    // A delivery sent again is still known: a duplicate, not applied twice.
    let r = app
        .deliver(
            super::reports::SECRET,
            "pull_request",
            "pr",
            opened.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate");

    let db = app.db_arg();
    app.stop().await;
    let text = stdout(&tracelink(&["stats"], &db).await);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no {name} line: {text}"))
    };
    assert_eq!(row("spans")[1], "0", "{text}");
    assert_eq!(row("sessions")[1], "1", "{text}");
    assert_eq!(row("raw_records")[1], "0", "{text}");
    assert_eq!(row("spans_id")[1], "(index)", "{text}");
    assert!(row("total")[1].parse::<i64>().unwrap() > 0, "{text}");
}

/// Raw records from before the window go by whole days: on PostgreSQL the day's
/// partition is dropped with the records' key rows (one statement per table, not a
/// delete per record); on SQLite the records go row by row. Either way the session
/// reads the same, and today's records stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_a_day_past_the_window_go_whole() {
    const DAY_NS: i64 = 86_400 * 1_000_000_000;
    let app = TestApp::spawn().await;
    for f in [
        "claude-code-traces.json",
        "claude-code-logs.json",
        "claude-code-metrics.json",
    ] {
        send_otlp(&app, f).await;
    }
    let session = app.session("82c3495f-998e-457a-875a-8643b934dd9c").await;
    let stored: Vec<i64> = {
        let mut v = Vec::new();
        for s in ["traces", "logs", "metrics"] {
            v.push(app.stored(s).await);
        }
        v
    };
    assert!(stored.iter().all(|n| *n > 0), "{stored:?}");
    let records = app.count("raw_records").await;
    let keys = app.count("metric_points").await;

    // Everything so far arrived three days ago; then one request arrives today.
    tracelink::store::testing::age_raw_records(&app.location(), 3 * DAY_NS)
        .await
        .unwrap();
    send_otlp(&app, "gemini-cli-logs.json").await;
    let partitions = app.db().raw_partitions().await.unwrap();
    if app.database.is_postgres() {
        // 3 and 2 days ago (made with the records moved there), today, tomorrow,
        // default.
        assert_eq!(partitions.len(), 5, "{partitions:?}");
    }

    let mut store = tracelink::store::open(app.location()).await.unwrap();
    let cutoff = tracelink::time::now_ns() - DAY_NS;
    let pruned = store.writer.prune_raw(cutoff, 1_000_000).await.unwrap();
    assert_eq!(pruned.records as i64, records, "{pruned:?}");
    assert_eq!(pruned.metric_points as i64, keys, "{pruned:?}");
    let whole_days = if app.database.is_postgres() { 2 } else { 0 };
    assert_eq!(pruned.partitions, whole_days, "{pruned:?}");
    // Nothing else was before the cutoff.
    let again = store.writer.prune_raw(cutoff, 1_000_000).await.unwrap();
    assert_eq!((again.records, again.partitions), (0, 0), "{again:?}");
    store.writer.close().await.unwrap();
    store.db.close().await;

    assert_eq!(app.count("raw_records").await, 1, "today's request stays");
    assert_eq!(app.stored("traces").await, 0);
    assert_eq!(app.stored("metrics").await, 0);
    assert_eq!(app.count("metric_points").await, 0);
    assert_eq!(
        app.session("82c3495f-998e-457a-875a-8643b934dd9c").await,
        session
    );
    if app.database.is_postgres() {
        let old = format!(
            "raw_records_{}",
            (chrono::Utc::now() - chrono::Duration::days(3)).format("%Y%m%d")
        );
        assert!(partitions.contains(&old), "{old} made: {partitions:?}");
        let left = app.db().raw_partitions().await.unwrap();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(!left.contains(&old), "{old} dropped: {left:?}");
    }
}
