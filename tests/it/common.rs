//! Test harness: a real `tracelink` server on loopback ports with its own SQLite file.

use std::path::PathBuf;

use tracelink::config::ServeArgs;
use tracelink::server::Server;

pub struct TestApp {
    pub server: Option<Server>,
    pub http: String,
    pub grpc: String,
    pub client: reqwest::Client,
    /// Holds the database directory until the test ends.
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = ServeArgs::ephemeral(dir.path().join("tracelink.db"));
        configure(&mut args);
        let server = Server::start(&args).await.expect("server starts");
        TestApp {
            http: format!("http://{}", server.http_addr),
            grpc: format!("http://{}", server.grpc_addr),
            server: Some(server),
            client: reqwest::Client::new(),
            _dir: dir,
        }
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

    /// Rows in a table, read straight from the database file.
    pub async fn count(&self, table: &str) -> i64 {
        let server = self.server.as_ref().expect("running");
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&server.readers)
            .await
            .expect("count")
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
