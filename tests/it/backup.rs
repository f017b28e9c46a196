//! Backups: a consistent copy taken while serving, and a database file that is whole on
//! its own after a clean stop (nothing left in `tracelink.db-wal`).

use super::common::TestApp;
use super::reports::send_otlp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_while_serving_and_a_whole_file_after_stopping() {
    let mut app = TestApp::spawn().await;
    for f in ["claude-code-logs.json", "claude-code-metrics.json"] {
        send_otlp(&app, f).await;
    }
    let (sessions, events) = (app.count("sessions").await, app.stored("logs").await);
    assert!(sessions >= 1 && events >= 1);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let backup = |target: &std::path::Path| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
            .arg("backup")
            .arg(target)
            .arg("--db")
            .arg(app.db_arg())
            .output()
    };
    let out = backup(&copy).await.unwrap();
    if app.database.is_postgres() {
        // A PostgreSQL database is backed up with its own tools; the command says so
        // and writes nothing.
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!copy.exists());
        app.stop().await;
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up"));
    let restored = tracelink::store::open(&copy).await.unwrap();
    assert_eq!(restored.db.row_count("sessions").await.unwrap(), sessions);
    assert_eq!(restored.db.stored_rows("logs").await.unwrap(), events);
    restored.db.close().await;
    // Never over an existing file.
    let again = backup(&copy).await.unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{again:?}"
    );

    // After a clean stop the file alone, copied without its -wal, holds everything.
    let path = app.db_path();
    app.stop().await;
    let wal = path.with_file_name("tracelink.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
        "the write-ahead log is empty after a clean stop"
    );
    let alone = dir.path().join("alone.db");
    std::fs::copy(&path, &alone).unwrap();
    let store = tracelink::store::open(&alone).await.unwrap();
    assert_eq!(store.db.row_count("sessions").await.unwrap(), sessions);
    store.db.close().await;
}
