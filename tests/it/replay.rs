//! Deliveries that cannot be applied: one never holds the others back, and once the
//! cause is fixed `tracelink deliveries replay` applies it through the current code.

use super::cli::{stdout, tracelink};
use super::common::TestApp;
use super::reports::{Commit, REPO, SECRET, ZERO, deliver, push};

const POISON: &str = "dead000000000000000000000000000000000001";

fn commit(sha: &str) -> Commit<'_> {
    Commit {
        sha,
        message: "change",
        at: "2026-11-20T10:00:00Z",
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    }
}

/// One delivery that cannot be applied among ten good ones: the good ones are applied,
/// the bad one set aside with its reason. Returns the fault, to fix it.
async fn one_delivery_set_aside(
    configure: impl FnOnce(&mut tracelink::config::ServeArgs) + Send + 'static,
) -> (TestApp, tracelink::store::testing::Fault) {
    let app = TestApp::spawn_with(|a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        configure(a);
    })
    .await;
    // Storing this commit fails, as a bug or a broken disk would make it.
    let fault = tracelink::store::testing::Fault::inject(&app.location(), POISON)
        .await
        .unwrap();
    deliver(
        &app,
        "push",
        "poison",
        &push("refs/heads/bad", ZERO, &[commit(POISON)]),
    )
    .await;
    let good: Vec<String> = (1..=10).map(|i| format!("{i:0>40x}")).collect();
    for (i, sha) in good.iter().enumerate() {
        deliver(
            &app,
            "push",
            &format!("good-{i}"),
            &push(&format!("refs/heads/b{i}"), ZERO, &[commit(sha)]),
        )
        .await;
    }
    // The ten good ones are applied; the bad one is set aside after its attempts.
    app.applied(11).await;
    for sha in &good {
        let (status, _) = app
            .get_json(&format!("/api/v1/repos/{REPO}/commits/{sha}"))
            .await;
        assert_eq!(status, 200, "{sha} applied");
    }
    let (status, _) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{POISON}"))
        .await;
    assert_eq!(status, 404);
    let (_, failed) = app.get_json("/api/v1/deliveries?status=failed").await;
    let list = failed["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{failed}");
    let error = list[0]["error"].as_str().unwrap();
    assert!(
        error.contains("injected fault") && error.contains("3 attempts"),
        "{error}"
    );
    (app, fault)
}

/// It is applied again once fixed: applied, and no longer listed as failed.
async fn applied_after_replay(app: &TestApp) {
    app.server.as_ref().unwrap().processor_wake();
    app.applied(12).await;
    let (status, c) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{POISON}"))
        .await;
    assert_eq!(status, 200, "{c}");
    let (_, failed) = app.get_json("/api/v1/deliveries?status=failed").await;
    assert_eq!(failed["deliveries"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_cannot_be_applied_is_set_aside_and_replayed_after_the_fix() {
    let (mut app, fault) = one_delivery_set_aside(|_| {}).await;

    // Fixed: the replay applies it through the running server.
    fault.remove().await.unwrap();
    let out = stdout(
        &tracelink(
            &["deliveries", "replay", "--status", "failed"],
            &app.db_arg(),
        )
        .await,
    );
    assert!(out.starts_with("1 deliveries marked for replay"), "{out}");
    applied_after_replay(&app).await;
    app.stop().await;
}

/// The admin endpoint does the same through the running server's writer; only an admin
/// token may call it (an ingest token may not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_replays_with_an_admin_token_only() {
    let (mut app, fault) = one_delivery_set_aside(|a| {
        a.admin_tokens = vec!["admin-secret".parse().unwrap()];
        a.ingest_tokens = vec!["ingest-secret".parse().unwrap()];
    })
    .await;
    fault.remove().await.unwrap();
    let replay = |token: Option<&'static str>, body: &'static str| {
        let app = &app;
        async move {
            let bearer = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = bearer
                .as_deref()
                .map(|b| vec![("authorization", b)])
                .unwrap_or_default();
            let r = app
                .post(
                    "/api/v1/admin/deliveries/replay",
                    "application/json",
                    body.as_bytes().to_vec(),
                    &headers,
                )
                .await;
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    for token in [None, Some("ingest-secret"), Some("wrong")] {
        let (status, body) = replay(token, r#"{"status": "failed"}"#).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("admin token"),
            "{body}"
        );
    }
    let (status, body) = replay(Some("admin-secret"), r#"{"status": "broken"}"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = replay(Some("admin-secret"), r#"{"status": "failed"} trailing"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = replay(Some("admin-secret"), r#"{"status": "failed"}"#).await;
    assert_eq!((status, body), (200, serde_json::json!({"marked": 1})));
    applied_after_replay(&app).await;
    app.stop().await;
}
