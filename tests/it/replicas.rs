//! Three `tracelink serve` replicas on one PostgreSQL database behave as one process.
//!
//! Agent telemetry (OTLP/HTTP and gRPC), a flood of plain spans and GitHub webhooks are
//! spread round-robin over the replicas, as a load balancer would; every webhook is
//! delivered twice, to two replicas (GitHub redelivers). Midway one replica is killed
//! with SIGKILL and started again; what it was sent meanwhile goes to the others, as a
//! load balancer (and an exporter's or GitHub's retry) would send it. At the end:
//! every acknowledged span is stored exactly once, every delivery applied, each pull
//! request has exactly one comment on the fake GitHub, and every report, session and
//! comment equals what one SQLite process gives for the same input.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;
use tracelink::ids::{SpanId, TraceId};
use tracelink::store::{Db, Location};
use tracelink_dev::fake_github::{APP_ID, FakeFile, FakeGithub, INSTALLATION};
use tracelink_dev::pgtest;

use crate::sqlite::common::fixture;
use crate::sqlite::fixtures::FILES;
use crate::sqlite::reports::{
    BASE, CLAUDE_1, CLAUDE_2, Commit, HUMAN, MERGE, REPO, SECRET, ZERO, claude_code_commits, pull,
    push, workflow_run,
};

/// Pull requests of human commits beside the agent-assisted #7: (number, head, merge).
const HUMAN_PULLS: &[(i64, &str, &str)] = &[
    (
        8,
        "8888888888888888888888888888888888888888",
        "8000000000000000000000000000000000000008",
    ),
    (
        9,
        "9999999999999999999999999999999999999999",
        "9000000000000000000000000000000000000009",
    ),
    (
        10,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "a00000000000000000000000000000000000000a",
    ),
];
const PULLS: &[i64] = &[7, 8, 9, 10];
const LEASE_SECS: &str = "2";
const PATCH: &str = "@@ -1,1 +1,3 @@\n import { fetch } from './fetch';\n+export async function retry(fn) {\n+  return backoff(fn, 3);\n";

/// A fake GitHub that knows the pull requests and their commits' patches.
async fn github() -> FakeGithub {
    let fake = FakeGithub::start().await;
    fake.add_pull(
        REPO,
        7,
        HUMAN,
        vec![FakeFile::modified("src/http/retry.ts", PATCH)],
    );
    for sha in [CLAUDE_1, CLAUDE_2, HUMAN] {
        fake.add_commit(
            REPO,
            7,
            sha,
            vec![FakeFile::modified("src/http/retry.ts", PATCH)],
        );
    }
    for (n, head, _) in HUMAN_PULLS {
        let file = FakeFile::modified(&format!("docs/page{n}.md"), "@@ -0,0 +1 @@\n+words\n");
        fake.add_pull(REPO, *n as u64, head, vec![file.clone()]);
        fake.add_commit(REPO, *n as u64, head, vec![file]);
    }
    fake
}

/// The deliveries, in the order GitHub sent them: the attribution scenario (Claude
/// Code's commits, a rerun workflow, the merge, its deployment and an incident naming
/// it) and three human pull requests.
fn deliveries() -> Vec<(&'static str, String, Value)> {
    let mut out: Vec<(&str, String, Value)> = Vec::new();
    out.push((
        "push",
        "p-retry".into(),
        push("refs/heads/retry", ZERO, &claude_code_commits()),
    ));
    for (id, attempt, conclusion, at) in [
        ("w1", 1, "failure", "2026-11-21T16:05:00Z"),
        ("w2", 2, "success", "2026-11-21T16:09:00Z"),
    ] {
        out.push((
            "workflow_run",
            id.into(),
            workflow_run(555, attempt, HUMAN, conclusion, at),
        ));
    }
    out.push((
        "pull_request",
        "pr7-open".into(),
        pull("opened", 7, HUMAN, "retry", "2026-11-21T16:30:00Z", None),
    ));
    out.push((
        "pull_request",
        "pr7-merged".into(),
        pull(
            "closed",
            7,
            HUMAN,
            "retry",
            "2026-11-21T17:00:00Z",
            Some(MERGE),
        ),
    ));
    let merge = [Commit {
        sha: MERGE,
        message: "Merge pull request #7 from acme/retry",
        at: "2026-11-21T17:00:00Z",
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }];
    out.push((
        "push",
        "p-main".into(),
        push("refs/heads/main", BASE, &merge),
    ));
    out.push((
        "deployment",
        "d1".into(),
        json!({"action": "created", "repository": {"full_name": REPO},
        "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production",
            "creator": {"login": "deploy-bot"}, "created_at": "2026-11-21T18:30:00Z"}}),
    ));
    out.push(("deployment_status", "d2".into(), json!({"action": "created", "repository": {"full_name": REPO},
        "deployment_status": {"id": 77, "state": "success", "environment": "production", "created_at": "2026-11-21T18:35:00Z"},
        "deployment": {"id": 9001, "sha": MERGE, "ref": "main", "environment": "production", "created_at": "2026-11-21T18:30:00Z"}})));
    out.push(("issues", "i1".into(), json!({"action": "opened", "repository": {"full_name": REPO},
        "issue": {"number": 31, "title": "Checkout retries storm the API", "body": "Root cause: deployment 9001",
            "labels": [{"name": "incident"}], "state": "open", "created_at": "2026-11-21T19:00:00Z",
            "updated_at": "2026-11-21T19:00:00Z"}})));
    for (n, head, merged) in HUMAN_PULLS {
        let branch = format!("docs-{n}");
        let commit = [Commit {
            sha: head,
            message: "Document the retry policy",
            at: "2026-11-22T10:00:00Z",
            email: "writer@acme.example",
            login: "writer",
            files: &["docs/page.md"],
        }];
        out.push((
            "push",
            format!("p-{n}"),
            push(&format!("refs/heads/{branch}"), BASE, &commit),
        ));
        out.push((
            "pull_request",
            format!("pr{n}-open"),
            pull("opened", *n, head, &branch, "2026-11-22T10:05:00Z", None),
        ));
        out.push((
            "pull_request",
            format!("pr{n}-merged"),
            pull(
                "closed",
                *n,
                head,
                &branch,
                "2026-11-22T11:00:00Z",
                Some(merged),
            ),
        ));
    }
    for (_, _, payload) in &mut out {
        payload["installation"] = json!({"id": INSTALLATION});
    }
    out
}

/// The agent telemetry: each fixture's export requests one by one (a cumulative series'
/// points in the order the agent sent them), as (signal, request JSON).
fn telemetry() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for f in FILES {
        let doc: Value = serde_json::from_slice(&fixture(f)).unwrap();
        let (signal, key) = if f.ends_with("-metrics.json") {
            ("metrics", "resourceMetrics")
        } else if f.ends_with("-logs.json") {
            ("logs", "resourceLogs")
        } else {
            ("traces", "resourceSpans")
        };
        for entry in doc[key].as_array().unwrap() {
            out.push((signal, json!({ key: [entry] })));
        }
    }
    out
}

/// The replicas' addresses as the load balancer sees them: `None` while one is down.
type Nodes = Arc<RwLock<Vec<Option<(String, String)>>>>;

/// `tracelink serve` processes on one database.
struct Cluster {
    args: Vec<String>,
    children: Vec<Option<tokio::process::Child>>,
    nodes: Nodes,
}

impl Cluster {
    async fn start(db: &str, fake: &FakeGithub, replicas: usize) -> Cluster {
        let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/github-app/app-private-key.pem");
        let args = [
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--webhook-secret",
            SECRET,
            "--comment-debounce",
            "0",
            "--replica-lease",
            LEASE_SECS,
            "--github-app-id",
            &APP_ID.to_string(),
            "--github-private-key-file",
            &key.display().to_string(),
            "--github-api-url",
            &fake.url(),
            "--db",
            db,
        ]
        .map(String::from)
        .to_vec();
        let mut c = Cluster {
            args,
            children: (0..replicas).map(|_| None).collect(),
            nodes: Arc::new(RwLock::new(vec![None; replicas])),
        };
        for i in 0..replicas {
            c.up(i).await;
        }
        c
    }

    async fn up(&mut self, i: usize) {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
            .args(&self.args)
            .env("TRACELINK_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("tracelink serve starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().expect("listening line");
        let addr = |key: &str| {
            let v = line.split(key).nth(1).unwrap_or_else(|| panic!("{line:?}"));
            format!("http://{}", v.split_whitespace().next().unwrap())
        };
        let (http, grpc) = (addr("http="), addr("grpc="));
        self.nodes.write().unwrap()[i] = Some((http, grpc));
        self.children[i] = Some(child);
    }

    async fn kill(&mut self, i: usize) {
        self.nodes.write().unwrap()[i] = None;
        let mut child = self.children[i].take().unwrap();
        child.start_kill().expect("SIGKILL");
        child.wait().await.unwrap();
    }

    fn http(&self, i: usize) -> String {
        self.nodes.read().unwrap()[i].clone().unwrap().0
    }

    /// Stops every replica (SIGTERM: each flushes and gives its leases up).
    async fn stop(mut self) {
        for child in self.children.iter_mut().flatten() {
            let pid = child.id().unwrap().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
    }
}

/// The replica for the `k`-th request, skipping those down; waits while all are.
async fn pick(nodes: &Nodes, k: usize) -> (String, String) {
    loop {
        let all = nodes.read().unwrap().clone();
        let n = all.len();
        if let Some(node) = (0..n).find_map(|j| all[(k + j) % n].clone()) {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends until a replica acknowledges, moving to the next replica on a refusal or a
/// cut connection (a load balancer's retry).
async fn until_acked<F, Fut>(nodes: &Nodes, k: usize, what: &str, send: F)
where
    F: Fn((String, String)) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    for attempt in 0..200 {
        let node = pick(nodes, k + attempt).await;
        match send(node).await {
            Ok(()) => return,
            Err(_) if attempt < 199 => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("{what}: never acknowledged: {e}"),
        }
    }
}

async fn deliver(client: &reqwest::Client, nodes: &Nodes, k: usize, d: &(&str, String, Value)) {
    let (event, id, payload) = d;
    let body = payload.to_string();
    until_acked(nodes, k, id, |(http, _)| {
        let body = body.clone();
        async move {
            let r = client
                .post(format!("{http}/webhooks/github"))
                .header("content-type", "application/json")
                .header("x-github-event", *event)
                .header("x-github-delivery", id.as_str())
                .header(
                    "x-hub-signature-256",
                    tracelink::github::signature::sign(SECRET, body.as_bytes()),
                )
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            match r.status().as_u16() {
                200 => Ok(()),
                s => Err(format!("{s}: {}", r.text().await.unwrap_or_default())),
            }
        }
    })
    .await;
}

/// One export request, over OTLP/HTTP JSON (even `k`) or gRPC (odd `k`).
async fn export(client: &reqwest::Client, nodes: &Nodes, k: usize, signal: &str, req: &Value) {
    until_acked(nodes, k, signal, |(http, grpc)| async move {
        if k.is_multiple_of(2) {
            let url = format!("{http}/v1/{signal}");
            return post_ok(client, url, "application/json", req.to_string()).await;
        }
        let e = |e: &dyn std::fmt::Display| e.to_string();
        match signal {
            "metrics" => {
                let req: ExportMetricsServiceRequest = serde_json::from_value(req.clone()).unwrap();
                let mut c = MetricsServiceClient::connect(grpc)
                    .await
                    .map_err(|x| e(&x))?;
                c.export(req).await.map_err(|x| e(&x))?;
            }
            "logs" => {
                let req: ExportLogsServiceRequest = serde_json::from_value(req.clone()).unwrap();
                let mut c = LogsServiceClient::connect(grpc).await.map_err(|x| e(&x))?;
                c.export(req).await.map_err(|x| e(&x))?;
            }
            _ => {
                let req: ExportTraceServiceRequest = serde_json::from_value(req.clone()).unwrap();
                let mut c = TraceServiceClient::connect(grpc).await.map_err(|x| e(&x))?;
                c.export(req).await.map_err(|x| e(&x))?;
            }
        }
        Ok(())
    })
    .await;
}

/// POSTs a body; `Ok` on 200.
async fn post_ok(
    client: &reqwest::Client,
    url: String,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Result<(), String> {
    let r = client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match r.status().as_u16() {
        200 => Ok(()),
        s => Err(format!("{s}: {}", r.text().await.unwrap_or_default())),
    }
}

/// Waits until the shared queues stay empty: every delivery applied, every report
/// published, every session linked.
async fn settled(db: &Db, fakes: &FakeGithub) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    let mut last = None;
    while quiet < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not settled in time: {last:?}"
        );
        let q = db.shared_queues().await.unwrap();
        let now = (q, fakes.writes().len());
        let empty =
            q.deliveries_pending == 0 && q.reports_queued == 0 && q.link_queue_sessions == 0;
        quiet = if empty && last == Some(now) {
            quiet + 1
        } else {
            0
        };
        last = Some(now);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let q = db.shared_queues().await.unwrap();
    assert_eq!(q.deliveries_failed, 0, "{q:?}");
}

/// What a reader sees: each pull request's report (JSON and markdown) and each session.
async fn observed(client: &reqwest::Client, http: &str, db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    for n in PULLS {
        for format in ["json", "markdown"] {
            let url = format!("{http}/api/v1/repos/{REPO}/pulls/{n}/report?format={format}");
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "PR {n}");
            out.push(r.text().await.unwrap());
        }
    }
    let list: Value = client
        .get(format!("{http}/api/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for s in list["sessions"].as_array().unwrap() {
        let id = s["session_id"].as_str().unwrap();
        let one = client
            .get(format!("{http}/api/v1/sessions/{id}"))
            .send()
            .await
            .unwrap();
        out.push(one.text().await.unwrap());
    }
    out.push(format!(
        "sessions: {}",
        db.row_count("sessions").await.unwrap()
    ));
    out.push(format!("links: {}", db.row_count("links").await.unwrap()));
    out
}

/// Each pull request's comment on the fake GitHub, asserting there is exactly one.
fn one_comment_each(fake: &FakeGithub) -> Vec<String> {
    PULLS
        .iter()
        .map(|n| {
            let c = fake.comments(REPO, *n as u64);
            assert_eq!(c.len(), 1, "PR {n}: exactly one comment, got {c:?}");
            c[0].body.clone()
        })
        .collect()
}

/// One process on SQLite, fed the same telemetry and deliveries in order: what the
/// replicas must give.
async fn single_process() -> (Vec<String>, Vec<String>, i64) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.db").display().to_string();
    let fake = github().await;
    let cluster = Cluster::start(&file, &fake, 1).await;
    let client = reqwest::Client::new();
    for (k, (signal, req)) in telemetry().iter().enumerate() {
        export(&client, &cluster.nodes, k, signal, req).await;
    }
    for d in &deliveries() {
        deliver(&client, &cluster.nodes, 0, d).await;
    }
    let db = Db::open_read_only(Location::File(file.into()))
        .await
        .unwrap();
    settled(&db, &fake).await;
    let seen = observed(&client, &cluster.http(0), &db).await;
    let comments = one_comment_each(&fake);
    let spans = db.stored_rows("traces").await.unwrap();
    cluster.stop().await;
    db.close().await;
    (seen, comments, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_killed_give_what_one_process_gives() {
    let (want, want_comments, fixture_spans) = single_process().await;

    let pg = pgtest::Database::create().await.unwrap();
    let fake = github().await;
    let mut cluster = Cluster::start(pg.url(), &fake, 3).await;
    let nodes = cluster.nodes.clone();
    let client = reqwest::Client::new();

    // A flood of plain spans over both transports, every request sent until a replica
    // acknowledges it.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(TraceId, SpanId)>>> = Arc::default();
    let requests = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for w in 0..3u32 {
        let (stop, acked, requests, nodes) =
            (stop.clone(), acked.clone(), requests.clone(), nodes.clone());
        let client = client.clone();
        flood.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) || n < 40 {
                // 100 plain spans, unique to (worker, n).
                let (req, ids) = crate::sqlite::durability::request(w * 100_000 + n);
                let ids: Vec<(TraceId, SpanId)> = ids
                    .into_iter()
                    .map(|(t, s)| (TraceId(t), SpanId(s)))
                    .collect();
                let k = (w + n) as usize;
                let body = req.encode_to_vec();
                until_acked(&nodes, k, "spans", |(http, grpc)| {
                    let (req, body, client) = (req.clone(), body.clone(), client.clone());
                    async move {
                        if k.is_multiple_of(2) {
                            let url = format!("{http}/v1/traces");
                            return post_ok(&client, url, "application/x-protobuf", body).await;
                        }
                        let mut c = TraceServiceClient::connect(grpc)
                            .await
                            .map_err(|e| e.to_string())?;
                        c.export(req).await.map_err(|e| e.to_string())?;
                        Ok(())
                    }
                })
                .await;
                acked.lock().unwrap().extend(ids);
                requests.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }

    // Telemetry and deliveries at once; each delivery sent to two replicas.
    let halfway = Arc::new(Notify::new());
    let sender = {
        let (nodes, client, halfway) = (nodes.clone(), client.clone(), halfway.clone());
        tokio::spawn(async move {
            let deliveries = deliveries();
            let telemetry = telemetry();
            let steps = deliveries.len().max(telemetry.len());
            for k in 0..steps {
                if k == steps / 3 {
                    halfway.notify_one();
                }
                if let Some((signal, req)) = telemetry.get(k) {
                    export(&client, &nodes, k, signal, req).await;
                }
                if let Some(d) = deliveries.get(k) {
                    deliver(&client, &nodes, k, d).await;
                    deliver(&client, &nodes, k + 1, d).await;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };

    halfway.notified().await;
    let before = requests.load(Ordering::Relaxed);
    cluster.kill(1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.up(1).await;
    sender.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    let after = requests.load(Ordering::Relaxed);
    assert!(after > before, "spans flowed across the kill");

    let db = Db::open_read_only(Location::Postgres(pg.url().to_string()))
        .await
        .unwrap();
    settled(&db, &fake).await;

    // Every acknowledged span, exactly once.
    let acked = acked.lock().unwrap().clone();
    let stored = db.span_ids().await.unwrap();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged span {id:?} lost");
    }
    let rows = db.stored_rows("traces").await.unwrap();
    assert_eq!(
        rows,
        acked.len() as i64 + fixture_spans,
        "stored spans = acknowledged flood + the agents' spans, none twice"
    );
    assert_eq!(stored.len() as i64, rows, "no span stored twice");

    // Every delivery applied, none failed (checked by `settled`); one comment per pull
    // request, as one process writes it; the same reports and sessions.
    assert_eq!(one_comment_each(&fake), want_comments);
    for i in 0..3 {
        let seen = observed(&client, &cluster.http(i), &db).await;
        assert_eq!(seen, want, "replica {i} reads what one process gives");
    }

    // Every replica is ready; one exports the shared figures.
    let mut exporters = 0;
    for i in 0..3 {
        let http = cluster.http(i);
        let r = client.get(format!("{http}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "replica {i}: {}", r.text().await.unwrap());
        let m = client
            .get(format!("{http}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("\ntracelink_replica_exports_shared 1\n") {
            exporters += 1;
            assert!(
                m.contains("\ntracelink_shared_deliveries_pending 0\n"),
                "{m}"
            );
        } else {
            assert!(!m.contains("tracelink_shared_deliveries_pending"), "{m}");
        }
    }
    assert_eq!(exporters, 1, "one replica exports the shared figures");
    cluster.stop().await;
    db.close().await;
}
