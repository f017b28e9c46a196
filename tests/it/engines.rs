//! What only the PostgreSQL engine has to show: replicas starting together on an empty
//! database migrate it once, and a URL with the wrong database says so.

use tracelink::store::Location;
use tracelink_dev::pgtest;

/// Three processes' worth of `store::open` at once on a new database: each migration is
/// applied once (the migrator holds an advisory lock), and all three serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let db = pgtest::Database::create_empty().await.unwrap();
    let location = Location::Postgres(db.url().to_string());
    let (a, b, c) = tokio::join!(
        tracelink::store::open(&location),
        tracelink::store::open(&location),
        tracelink::store::open(&location)
    );
    let stores = [a, b, c].map(|s| s.expect("each start succeeds"));
    let applied = stores[0].db.row_count("link_rules").await.unwrap();
    assert_eq!(applied, 0, "the schema is there and empty");
    let migrations = stores[0].db.applied_migrations().await.unwrap();
    assert_eq!(
        migrations,
        tracelink::store::PG_MIGRATOR.iter().count() as i64,
        "each migration recorded once"
    );
    for s in stores {
        s.writer.close().await.unwrap();
        s.db.close().await;
    }
}

/// A URL naming a database that does not exist fails the start with PostgreSQL's reason
/// and where it looked, never a panic.
#[tokio::test]
async fn a_missing_database_is_a_clear_error() {
    let url = pgtest::with_database(&pgtest::server_url(), "tl_no_such_database");
    let err = match tracelink::store::open(Location::Postgres(url)).await {
        Ok(_) => panic!("opened a database that does not exist"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("opening database postgres://"), "{err}");
    assert!(
        err.contains("\"tl_no_such_database\" does not exist"),
        "{err}"
    );
}

/// PostgreSQL restarting (or a failover, or the network) cuts every connection: the
/// next export is written on a new connection, not refused, and nothing acknowledged
/// before is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_reconnects_when_postgres_drops_its_connection() {
    use crate::postgres::common::TestApp;
    use crate::postgres::reports::{SECRET, ZERO, claude_code_commits, deliver, push, send_otlp};
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    send_otlp(&app, "claude-code-logs.json").await;
    let logs = app.stored("logs").await;
    assert!(logs > 0);

    // What a restart does to tracelink's connections: every backend of its database
    // is terminated.
    let Location::Postgres(url) = app.location() else {
        panic!("a PostgreSQL test database");
    };
    let name = url.rsplit('/').next().unwrap().to_string();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&pgtest::server_url())
        .await
        .unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        !killed.is_empty() && killed.iter().all(|k| *k),
        "{killed:?}"
    );

    send_otlp(&app, "claude-code-metrics.json").await;
    assert_eq!(app.stored("logs").await, logs);
    assert!(app.stored("metrics").await > 0);
    // The webhook processor's connection was cut too: the delivery is applied on a
    // new one.
    let commits = claude_code_commits();
    deliver(
        &app,
        "push",
        "p1",
        &push("refs/heads/retry", ZERO, &commits),
    )
    .await;
    app.applied(1).await;
    assert_eq!(app.count("commits").await, 3);
    app.stop().await;
}
