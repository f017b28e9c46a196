//! What replicas share through the database, on either engine: claims on deliveries
//! and reports (disjoint while they live, passed on when they expire, never applied
//! under a lost claim), named leases, and the GitHub write budget.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracelink::store::deliveries::DeliveryRow;
use tracelink::store::writer::Work;
use tracelink::store::{self, Conn};
use tracelink::telemetry::Telemetry;

use super::common::TestDb;

const S: i64 = 1_000_000_000;

/// A database with `n` pending deliveries `d000`…, received in that order; returns the
/// store's further connections.
async fn with_deliveries(
    db: &TestDb,
    n: usize,
    conns: usize,
) -> (store::Store, Vec<Conn>, tokio::task::JoinHandle<()>) {
    let store = store::open(&db.location).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..conns {
        out.push(store.connect().await.unwrap());
    }
    let writer_conn = store.connect().await.unwrap();
    let (writer, task) = store::writer::spawn(writer_conn, 64, Arc::new(Telemetry::default()));
    for i in 0..n {
        writer
            .submit_work(Work::Delivery(DeliveryRow {
                delivery_id: format!("d{i:03}"),
                event: "ping".into(),
                action: None,
                repo: None,
                received_ns: 1_000 + i as i64,
                status: "pending",
                error: None,
                payload: bytes::Bytes::from_static(b"{}"),
            }))
            .await
            .unwrap();
    }
    drop(writer);
    (store, out, task)
}

fn ids(claimed: &[store::deliveries::PendingDelivery]) -> Vec<String> {
    claimed.iter().map(|d| d.delivery_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_claimed_by_one_replica_and_passes_on_when_its_claim_expires() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let (_store, mut conns, writer) = with_deliveries(&db, 10, 2).await;
    writer.await.unwrap();
    let (mut a, mut b) = (conns.remove(0), conns.remove(0));
    let now = 100 * S;

    // Oldest first, and disjoint while both claims live.
    let by_a = a.claim_deliveries("a", now, now + 30 * S, 4).await.unwrap();
    assert_eq!(ids(&by_a), ["d000", "d001", "d002", "d003"]);
    let by_b = b
        .claim_deliveries("b", now + 10 * S, now + 40 * S, 100)
        .await
        .unwrap();
    assert_eq!(ids(&by_b).len(), 6);
    assert_eq!(ids(&by_b)[0], "d004");
    let third = b
        .claim_deliveries("c", now + 29 * S, now + 60 * S, 100)
        .await;
    assert!(third.unwrap().is_empty(), "live claims are not taken");

    // `a` stalls past its claim: `b` takes its deliveries, and `a`, waking, finds them
    // gone and must not apply them.
    let later = now + 30 * S;
    let retaken = b
        .claim_deliveries("b", later, later + 30 * S, 100)
        .await
        .unwrap();
    assert_eq!(ids(&retaken), ["d000", "d001", "d002", "d003"]);
    let mut tx = a.begin_write().await.unwrap();
    assert!(
        !tx.take_delivery("d000", "a").await.unwrap(),
        "a lost claim applies nothing"
    );
    tx.commit().await.unwrap();
    let mut tx = b.begin_write().await.unwrap();
    assert!(tx.take_delivery("d000", "b").await.unwrap());
    assert!(
        !tx.take_delivery("d000", "b").await.unwrap(),
        "applied once"
    );
    tx.commit().await.unwrap();

    // A failed attempt gives the claim up; the delivery waits its retry time, then any
    // replica may claim it.
    let mut tx = b.begin_write().await.unwrap();
    let set_aside = tx
        .delivery_attempt_failed("d001", "b", "boom", 3, later)
        .await
        .unwrap();
    assert!(!set_aside);
    tx.commit().await.unwrap();
    let soon = a
        .claim_deliveries("a", later, later + S, 100)
        .await
        .unwrap();
    assert!(soon.is_empty(), "{:?}", ids(&soon));
    let after = a
        .claim_deliveries("a", later + 2 * S, later + 3 * S, 100)
        .await
        .unwrap();
    assert_eq!(ids(&after), ["d001"]);
}

/// Three replicas claiming at once, group after group until nothing is left: every
/// delivery is claimed exactly once (on PostgreSQL, rows another claim is taking are
/// skipped, not claimed twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_take_every_delivery_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let (_store, conns, writer) = with_deliveries(&db, 300, 3).await;
    writer.await.unwrap();
    let now = 100 * S;
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let owner = format!("r{i}");
            let mut mine = Vec::new();
            loop {
                let got = conn
                    .claim_deliveries(&owner, now, now + 30 * S, 16)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(ids(&got));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 300, "claimed {} times in all", all.len());
    assert_eq!(distinct.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_published_under_one_claim_and_stays_queued_when_touched_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let (_store, mut conns, writer) = with_deliveries(&db, 0, 2).await;
    writer.await.unwrap();
    let (mut a, mut b) = (conns.remove(0), conns.remove(0));
    let prs: BTreeSet<(String, i64)> = [
        ("acme/widgets".to_string(), 7),
        ("acme/widgets".to_string(), 8),
    ]
    .into();
    let now = 100 * S;
    let mut tx = a.begin().await.unwrap();
    tx.enqueue_reports(&prs, now, now).await.unwrap();
    tx.commit().await.unwrap();

    let by_a = a.claim_reports("a", now, now + 30 * S, 1).await.unwrap();
    assert_eq!((by_a[0].repo.as_str(), by_a[0].number), ("acme/widgets", 7));
    let by_b = b.claim_reports("b", now, now + 30 * S, 10).await.unwrap();
    assert_eq!(by_b.len(), 1);
    assert_eq!(by_b[0].number, 8);
    // The next claimable moment is when a claim expires.
    let mut tx = a.begin().await.unwrap();
    assert_eq!(tx.next_due().await.unwrap(), Some(now + 30 * S));
    tx.commit().await.unwrap();

    // PR 7 is touched while `a` publishes it: done, it stays queued and unclaimed.
    let mut tx = b.begin().await.unwrap();
    tx.enqueue_reports(&[("acme/widgets".to_string(), 7)].into(), now + S, now + S)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        a.renew_report("acme/widgets", 7, "a", now + 40 * S)
            .await
            .unwrap()
    );
    a.report_done("acme/widgets", 7, "a", by_a[0].touched_ns)
        .await
        .unwrap();
    let again = b
        .claim_reports("b", now + 2 * S, now + 32 * S, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "touched meanwhile: queued again");
    assert_eq!(again[0].number, 7);

    // `b`'s claim on 8 expires; `a` takes it, and `b` may no longer write it.
    let late = now + 31 * S;
    let taken = a.claim_reports("a", late, late + 30 * S, 10).await.unwrap();
    assert_eq!(taken.iter().map(|r| r.number).collect::<Vec<_>>(), [8]);
    assert!(
        !b.renew_report("acme/widgets", 8, "b", late + 30 * S)
            .await
            .unwrap()
    );
    b.report_done("acme/widgets", 8, "b", by_b[0].touched_ns)
        .await
        .unwrap();
    a.report_done("acme/widgets", 8, "a", taken[0].touched_ns)
        .await
        .unwrap();
    let mut tx = a.begin().await.unwrap();
    assert_eq!(
        tx.next_due().await.unwrap(),
        Some(now + 32 * S),
        "only PR 7 left, claimed by b"
    );
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_write_budget_and_named_leases_are_shared() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let (_store, mut conns, writer) = with_deliveries(&db, 0, 2).await;
    writer.await.unwrap();
    let (mut a, mut b) = (conns.remove(0), conns.remove(0));
    let now = 1_000 * S;
    let limits = [(4, 60 * S), (6, 3600 * S)];
    assert_eq!(a.take_github_writes(now, 2, &limits).await.unwrap(), None);
    assert_eq!(
        b.take_github_writes(now + S, 2, &limits).await.unwrap(),
        None
    );
    // Four in the minute, by two replicas: the next two wait for the first two.
    assert_eq!(
        a.take_github_writes(now + 2 * S, 2, &limits).await.unwrap(),
        Some(58 * S)
    );
    assert_eq!(
        b.take_github_writes(now + 60 * S, 2, &limits)
            .await
            .unwrap(),
        None
    );
    // Six in the hour.
    assert_eq!(
        a.take_github_writes(now + 200 * S, 2, &limits)
            .await
            .unwrap(),
        Some(3400 * S)
    );

    assert!(
        a.hold_lease("metrics", "a", now, now + 30 * S)
            .await
            .unwrap()
    );
    assert!(
        !b.hold_lease("metrics", "b", now + S, now + 31 * S)
            .await
            .unwrap()
    );
    assert!(
        a.hold_lease("metrics", "a", now + 10 * S, now + 40 * S)
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !b.hold_lease("metrics", "b", now + 39 * S, now + 69 * S)
            .await
            .unwrap()
    );
    assert!(
        b.hold_lease("metrics", "b", now + 40 * S, now + 70 * S)
            .await
            .unwrap(),
        "expired: taken"
    );
    assert!(
        !a.hold_lease("metrics", "a", now + 41 * S, now + 71 * S)
            .await
            .unwrap()
    );
    b.release_lease("metrics", "b").await.unwrap();
    assert!(
        a.hold_lease("metrics", "a", now + 42 * S, now + 72 * S)
            .await
            .unwrap(),
        "given up: taken at once"
    );
}

/// A rolling upgrade: the next release's replica migrated the database first. This
/// release still starts on it and reports ready; a database missing one of this
/// release's migrations is not ready, and says which.
#[tokio::test]
async fn a_schema_one_release_ahead_is_ready_and_one_behind_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let mut store = store::open(&db.location).await.unwrap();
    assert_eq!(store.db.readiness().await, Ok(()));
    store
        .writer
        .record_newer_migration(99_990_101)
        .await
        .unwrap();
    store.writer.close().await.unwrap();
    store.db.close().await;

    let mut again = store::open(&db.location)
        .await
        .expect("starts on a schema a newer release migrated");
    assert_eq!(again.db.readiness().await, Ok(()));
    let last = match db.location.engine() {
        store::Engine::Sqlite => store::MIGRATOR.iter().last(),
        store::Engine::Postgres => store::PG_MIGRATOR.iter().last(),
    }
    .unwrap();
    again.writer.forget_migration(last.version).await.unwrap();
    let why = again.db.readiness().await.unwrap_err();
    assert!(
        why.contains(&format!("migrations not applied: {} ", last.version)),
        "{why}"
    );
    again.writer.close().await.unwrap();
    again.db.close().await;
}

/// A Claude Code token counter's cumulative point: `value` input tokens so far at the
/// `k`-th export.
fn token_point(k: i64, value: f64) -> serde_json::Value {
    let attr = |key: &str, v: &str| serde_json::json!({"key": key, "value": {"stringValue": v}});
    serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [attr("service.name", "claude-code")]},
        "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [{
            "name": "claude_code.token.usage", "unit": "tokens",
            "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
                "attributes": [attr("session.id", "race-session"), attr("model", "claude-sonnet-4-6"),
                               attr("type", "input")],
                "startTimeUnixNano": "1795165325000000000",
                "timeUnixNano": (1_795_165_385_000_000_000i64 + k * 1_000_000_000).to_string(),
                "asDouble": value
            }]}
        }]}]
    }]})
}

/// Two replicas receive the points of one cumulative series at once, each its share in
/// order: the session counts the series' last total, never a stretch twice. (What keeps
/// it so today is that each write upserts the session's row first, whose lock orders the
/// writers of its series; the series' last point is also replaced by compare-and-set,
/// which alone would keep it — with the old unconditional upsert this test still passes,
/// because of the row lock.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cumulative_series_split_over_two_replicas_counts_once() {
    let mut one = super::common::TestApp::spawn().await;
    let two =
        tracelink::server::Server::start(&tracelink::config::ServeArgs::ephemeral(one.location()))
            .await
            .unwrap();
    let client = reqwest::Client::new();
    let mut senders = Vec::new();
    for (parity, http) in [
        (0, one.http.clone()),
        (1, format!("http://{}", two.http_addr)),
    ] {
        let client = client.clone();
        senders.push(tokio::spawn(async move {
            for k in (1..=120i64).filter(|k| k % 2 == parity) {
                let r = client
                    .post(format!("{http}/v1/metrics"))
                    .header("content-type", "application/json")
                    .body(token_point(k, (k * 10) as f64).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let session = one.session("race-session").await;
    assert_eq!(
        session["tokens_by_model"]["claude-sonnet-4-6"]["input"], 1200,
        "{session}"
    );
    two.shutdown().await.unwrap();
    one.stop().await;
}

/// Three replicas' publishers wake at the same moment for the same pull request (its
/// report came due while each was waiting for it), and GitHub's writes take a while:
/// one claims the report and writes its comment and check run; the others write
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_racing_for_one_report_write_it_once() {
    use super::reports::{CLAUDE_2, SECRET, ZERO, claude_code_commits, deliver, pull, push};
    use tracelink_dev::fake_github::{FakeFile, FakeGithub, INSTALLATION};

    let fake = FakeGithub::start().await;
    fake.set_write_delay(std::time::Duration::from_millis(400));
    let patch = FakeFile::modified("src/http/retry.ts", "@@ -0,0 +1 @@\n+retry();\n");
    fake.add_pull(REPO_NAME, 7, CLAUDE_2, vec![patch.clone()]);
    for c in claude_code_commits() {
        fake.add_commit(REPO_NAME, 7, c.sha, vec![patch.clone()]);
    }
    let cfg = fake.app_config();
    let configure = |a: &mut tracelink::config::ServeArgs| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.github = (&cfg).into();
        a.comment_debounce = 2;
    };
    let mut one = super::common::TestApp::spawn_with(configure).await;
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut args = tracelink::config::ServeArgs::ephemeral(one.location());
        configure(&mut args);
        others.push(tracelink::server::Server::start(&args).await.unwrap());
    }

    // The pull request arrives at the first replica: its report is due in 2 s.
    let with_installation = |mut v: serde_json::Value| {
        v["installation"] = serde_json::json!({"id": INSTALLATION});
        v
    };
    let commits = claude_code_commits();
    let pushed = push("refs/heads/retry", ZERO, &commits[..2]);
    deliver(&one, "push", "p1", &with_installation(pushed)).await;
    let opened = pull("opened", 7, CLAUDE_2, "retry", "2026-11-21T16:30:00Z", None);
    deliver(&one, "pull_request", "pr7", &with_installation(opened)).await;
    one.applied(2).await;
    // The other two publishers wake (new telemetry) and see it due at the same moment.
    let client = reqwest::Client::new();
    for (s, file) in others
        .iter()
        .zip(["gemini-cli-logs.json", "codex-logs.json"])
    {
        let mut relinked = s.publisher.relinked.clone();
        relinked.borrow_and_update();
        let r = client
            .post(format!("http://{}/v1/logs", s.http_addr))
            .header("content-type", "application/json")
            .body(super::common::fixture(file))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::timeout(std::time::Duration::from_secs(10), relinked.changed())
            .await
            .expect("the publisher woke")
            .unwrap();
    }

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while fake.writes().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no report written");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Time for a second publisher to have written, had it not been refused the claim.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let writes: Vec<String> = fake
        .writes()
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert_eq!(
        writes.len(),
        2,
        "one comment and one check run, written once: {writes:?}"
    );
    assert_eq!(fake.comments(REPO_NAME, 7).len(), 1);
    for s in others {
        s.shutdown().await.unwrap();
    }
    one.stop().await;
}

const REPO_NAME: &str = super::reports::REPO;
