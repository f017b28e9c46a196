//! Test harness: a real `tracelink` server on loopback ports with a database of its
//! own: a SQLite file in a temporary directory, or (under `postgres::`) a PostgreSQL
//! database created for the test from a migrated template and dropped after it.

use std::path::PathBuf;

use tracelink::config::ServeArgs;
use tracelink::server::Server;
use tracelink::store::{Engine, Location};

/// The engine this copy of the suite runs on (`main.rs` compiles it twice).
pub fn engine() -> Engine {
    if module_path!().contains("postgres") {
        Engine::Postgres
    } else {
        Engine::Sqlite
    }
}

/// A database for one test: a file in `dir`, or a PostgreSQL database that is dropped
/// when this is dropped.
pub struct TestDb {
    pub location: Location,
    /// Dropped with the test: the PostgreSQL database goes with it.
    _pg: Option<tracelink_dev::pgtest::Database>,
}

impl TestDb {
    pub async fn new(dir: &std::path::Path) -> TestDb {
        match engine() {
            Engine::Sqlite => TestDb {
                location: Location::File(dir.join("tracelink.db")),
                _pg: None,
            },
            Engine::Postgres => {
                let db = tracelink_dev::pgtest::Database::create()
                    .await
                    .expect("a PostgreSQL test database (is PostgreSQL running? set TRACELINK_TEST_POSTGRES)");
                TestDb {
                    location: Location::Postgres(db.url().to_string()),
                    _pg: Some(db),
                }
            }
        }
    }

    /// `--db` for a `tracelink` process.
    pub fn arg(&self) -> String {
        match &self.location {
            Location::File(p) => p.display().to_string(),
            Location::Postgres(url) => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.location, Location::Postgres(_))
    }
}

pub struct TestApp {
    pub server: Option<Server>,
    pub http: String,
    pub grpc: String,
    pub client: reqwest::Client,
    /// The test's database, dropped when the test ends.
    pub database: TestDb,
    /// Holds the database directory until the test ends.
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = TestDb::new(dir.path()).await;
        let mut args = ServeArgs::ephemeral(&database.location);
        configure(&mut args);
        let server = Server::start(&args).await.expect("server starts");
        TestApp {
            http: format!("http://{}", server.http_addr),
            grpc: format!("http://{}", server.grpc_addr),
            server: Some(server),
            client: reqwest::Client::new(),
            database,
            _dir: dir,
        }
    }

    /// A test app around a server started elsewhere, on a database the caller owns.
    // Only the migrate-data test, compiled once, attaches; the PostgreSQL copy of the
    // suite does not.
    #[allow(dead_code)]
    pub fn attach(server: Server, location: Location) -> TestApp {
        TestApp {
            http: format!("http://{}", server.http_addr),
            grpc: format!("http://{}", server.grpc_addr),
            database: TestDb {
                location,
                _pg: None,
            },
            server: Some(server),
            client: reqwest::Client::new(),
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The server's database file (SQLite only: what only a file has).
    pub fn db_path(&self) -> PathBuf {
        match &self.database.location {
            Location::File(p) => p.clone(),
            Location::Postgres(_) => panic!("the PostgreSQL engine has no database file"),
        }
    }

    /// Where the server's database is.
    pub fn location(&self) -> Location {
        self.database.location.clone()
    }

    /// `--db` for a `tracelink` process on the server's database.
    pub fn db_arg(&self) -> String {
        self.database.arg()
    }

    /// POSTs a body to an OTLP/HTTP path.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.http))
            .header("content-type", content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    pub async fn session(&self, id: &str) -> serde_json::Value {
        let (status, body) = self.get_json(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(status, 200, "session {id}: {body}");
        body
    }

    /// Rows in a table (the store's test helper).
    pub async fn count(&self, table: &str) -> i64 {
        self.db().row_count(table).await.expect("count")
    }

    /// Spans, log records or points (`traces`, `logs`, `metrics`) stored.
    pub async fn stored(&self, signal: &str) -> i64 {
        self.db().stored_rows(signal).await.expect("stored rows")
    }

    /// The running server's database (its read side).
    pub fn db(&self) -> &tracelink::store::Db {
        &self.server.as_ref().expect("running").db
    }

    /// POSTs a webhook delivery signed with `secret`.
    pub async fn deliver(
        &self,
        secret: &str,
        event: &str,
        id: &str,
        body: &[u8],
    ) -> reqwest::Response {
        self.client
            .post(format!("{}/webhooks/github", self.http))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", id)
            .header(
                "x-hub-signature-256",
                tracelink::github::signature::sign(secret, body),
            )
            .body(body.to_vec())
            .send()
            .await
            .expect("request sent")
    }

    /// Waits until the webhook processor has applied `n` deliveries in all.
    pub async fn applied(&self, n: u64) {
        let mut rx = self
            .server
            .as_ref()
            .expect("running")
            .deliveries_applied
            .clone();
        tokio::time::timeout(std::time::Duration::from_secs(20), rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} deliveries not applied in time"))
            .expect("processor alive");
    }

    /// Waits until the links of every session whose telemetry was acknowledged are
    /// stored (the relink queue is empty).
    pub async fn linked_up(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.db().relinks_queued().await.expect("queue") > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "sessions not linked in time"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits until analytics' background refresher has computed the facts of every
    /// session that changed (its queue is empty): nothing it writes later can race a
    /// reading of the database.
    pub async fn analytics_counted(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.db().analytics_queued().await.expect("queue") > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "analytics facts not computed in time"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Every row of a table as text, sorted, without the given columns.
    pub async fn dump(&self, table: &str, skip: &[&str]) -> Vec<String> {
        self.db().dump_table(table, skip).await.expect("rows")
    }

    /// Stops the server and starts another on the same database with these settings.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut ServeArgs)) {
        self.stop().await;
        let mut args = ServeArgs::ephemeral(&self.database.location);
        configure(&mut args);
        let server = Server::start(&args).await.expect("server restarts");
        self.http = format!("http://{}", server.http_addr);
        self.grpc = format!("http://{}", server.grpc_addr);
        self.server = Some(server);
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
    }
}

/// A fixture file of `tests/fixtures/otlp/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/otlp")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The machine-readable totals block of the fixtures' README.
pub fn expected_totals() -> serde_json::Value {
    let readme = String::from_utf8(fixture("README.md")).expect("utf-8");
    let after = readme
        .rsplit("<!-- expected-totals -->")
        .next()
        .expect("expected-totals marker");
    let json = after
        .split("```json")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("json block");
    serde_json::from_str(json).expect("totals parse")
}

/// Asserts a snapshot both engines share (`tests/it/snapshots/<name>.snap`): a report
/// that reads differently on SQLite and on PostgreSQL fails one of them.
pub fn assert_snapshot(name: &str, value: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, value));
}
