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
