//! GitHub webhooks through the real endpoint with real signatures: every captured
//! payload becomes the nodes and links it implies; forgeries, replays and bad payloads
//! are refused; arrival order does not change the stored graph.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::common::TestApp;

const SECRET: &str = "it's a secret to everybody";

fn payloads() -> Vec<(String, String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("webhooks/payloads");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            let event = name.split('.').next().unwrap().to_string();
            (name, event, std::fs::read(&p).unwrap())
        })
        .collect()
}

async fn app() -> TestApp {
    TestApp::spawn_with(|a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        // The captured issues carry `bug`, not `incident`: treat `bug` as the incident label.
        a.incident_label = "BUG".into();
    })
    .await
}

async fn deliver_all(app: &TestApp, order: &[usize]) {
    let all = payloads();
    for &i in order {
        let (name, event, body) = &all[i];
        let resp = app.deliver(SECRET, event, name, body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{name}: {text}");
        assert!(text.contains("stored"), "{name}: {text}");
    }
    app.applied(order.len() as u64).await;
}

async fn commit(app: &TestApp, repo: &str, sha: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/v1/repos/{repo}/commits/{sha}"))
        .await;
    assert_eq!(status, 200, "commit {repo}@{sha}: {body}");
    body
}

#[tokio::test]
async fn every_captured_payload_becomes_its_nodes_and_links() {
    let mut app = app().await;
    let all = payloads();
    assert!(
        all.len() >= 80,
        "webhooks/payloads holds the captured examples"
    );
    deliver_all(&app, &(0..all.len()).collect::<Vec<_>>()).await;
    let (status, processed) = app
        .get_json("/api/v1/deliveries?status=processed&limit=1000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(processed["deliveries"].as_array().unwrap().len(), all.len());

    for (name, event, body) in &all {
        let p: Value = serde_json::from_slice(body).unwrap();
        let repo = p["repository"]["full_name"].as_str().unwrap_or_default();
        match event.as_str() {
            "push" => {
                let commits = p["commits"].as_array().unwrap();
                let forced = p["forced"].as_bool().unwrap_or(false);
                let mut parent = if forced {
                    "0000000000000000000000000000000000000000".to_string()
                } else {
                    p["before"].as_str().unwrap().to_string()
                };
                for c in commits {
                    let got = commit(&app, repo, c["id"].as_str().unwrap()).await;
                    assert_eq!(got["message"], c["message"], "{name}");
                    assert_eq!(got["author"]["email"], c["author"]["email"], "{name}");
                    assert_eq!(got["author"]["login"], c["author"]["username"], "{name}");
                    if parent != "0000000000000000000000000000000000000000" {
                        assert_eq!(
                            got["parents"],
                            json!([parent]),
                            "{name}: parents chain from `before`"
                        );
                    }
                    for f in c["added"].as_array().unwrap() {
                        assert!(
                            got["files"]
                                .as_array()
                                .unwrap()
                                .contains(&json!({"path": f, "change": "added"}))
                        );
                    }
                    parent = c["id"].as_str().unwrap().to_string();
                }
            }
            "pull_request" => {
                let pr = &p["pull_request"];
                let (status, got) = app
                    .get_json(&format!("/api/v1/repos/{repo}/pulls/{}", pr["number"]))
                    .await;
                assert_eq!(status, 200, "{name}");
                assert!(
                    got["head_shas"]
                        .as_array()
                        .unwrap()
                        .contains(&pr["head"]["sha"]),
                    "{name}"
                );
                let c = commit(&app, repo, pr["head"]["sha"].as_str().unwrap()).await;
                assert!(
                    c["pull_requests"]
                        .as_array()
                        .unwrap()
                        .contains(&pr["number"]),
                    "{name}"
                );
            }
            "workflow_run" | "workflow_job" | "check_suite" | "check_run" => {
                let obj = &p[event.as_str()];
                let c = commit(&app, repo, obj["head_sha"].as_str().unwrap()).await;
                assert!(
                    c["runs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["kind"] == event.as_str() && r["id"] == obj["id"]),
                    "{name}: {c}"
                );
            }
            "status" => {
                let c = commit(&app, repo, p["sha"].as_str().unwrap()).await;
                assert!(
                    c["runs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["kind"] == "status" && r["id"] == p["id"]),
                    "{name}"
                );
            }
            "deployment" | "deployment_status" => {
                let d = &p["deployment"];
                let c = commit(&app, repo, d["sha"].as_str().unwrap()).await;
                // The captured examples reuse one deployment ID with several
                // environments; which one is kept is fixed (see the order test).
                assert!(
                    c["deployments"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x["id"] == d["id"]),
                    "{name}: {c}"
                );
            }
            "issues" => {
                let labelled = p["issue"]["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["name"].as_str().unwrap().eq_ignore_ascii_case("bug"));
                let number = p["issue"]["number"].as_i64().unwrap();
                let issues = app.db().issues().await.unwrap();
                let rows = issues
                    .iter()
                    .filter(|i| i.repo == repo.to_ascii_lowercase() && i.number == number)
                    .count();
                assert_eq!(rows, 1, "{name}: labelled {labelled}");
            }
            "installation" | "installation_repositories" => {
                let id = p["installation"]["id"].as_i64().unwrap();
                let installation = app.db().installation(id).await.unwrap();
                if event == "installation" {
                    let i = installation.as_ref().expect("installation stored");
                    assert_ne!(i.state, "unknown", "{name}");
                }
                for r in p["repositories_added"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(p["repositories"].as_array().into_iter().flatten())
                {
                    let full = r["full_name"].as_str().unwrap().to_ascii_lowercase();
                    let repos = &installation.as_ref().expect("installation").repositories;
                    assert_eq!(
                        repos.iter().filter(|(r, _)| *r == full).count(),
                        1,
                        "{name}"
                    );
                }
            }
            "ping" => {}
            other => panic!("no assertion for event {other}"),
        }
    }

    // Final states: the newest version of each object wins.
    let (_, pr) = app
        .get_json("/api/v1/repos/Codertocat/Hello-World/pulls/2")
        .await;
    assert_eq!(
        pr["state"], "closed",
        "closed at 15:21:18 outranks the open events of that second"
    );
    assert_eq!(pr["merged"], false);
    let c = commit(
        &app,
        "Codertocat/Hello-World",
        "5779607b49aab1200488439f02372c57b4f75444",
    )
    .await;
    let run = c["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == 1589141559)
        .unwrap()
        .clone();
    // python3: hashlib.sha256(b"15891415591t").hexdigest()[:32]
    assert_eq!(run["trace_id"], "4b088c714b8ad2c2dfc4e5b68e8379f8");
    let c = commit(
        &app,
        "Codertocat/Hello-World",
        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
    )
    .await;
    assert_eq!(c["deployments"][0]["state"], "success");
    app.stop().await;
}

#[tokio::test]
async fn arrival_order_does_not_change_the_graph() {
    let n = payloads().len();
    let forward: Vec<usize> = (0..n).collect();
    let backward: Vec<usize> = (0..n).rev().collect();
    // A fixed permutation: multiply by a unit modulo n.
    let step = (1..n)
        .rev()
        .find(|k| gcd(*k, n) == 1 && *k > n / 3)
        .unwrap();
    let shuffled: Vec<usize> = (0..n).map(|i| (i * step + 7) % n).collect();
    let mut dumps = Vec::new();
    for order in [forward, backward, shuffled] {
        let mut app = app().await;
        deliver_all(&app, &order).await;
        let mut dump = Vec::new();
        for table in [
            "commits",
            "commit_trailers",
            "commit_agents",
            "commit_files",
            "commit_refs",
            "pull_requests",
            "ci_runs",
            "deployments",
            "deployment_statuses",
            "incidents",
            "installations",
            "installation_repositories",
        ] {
            dump.push((table, app.dump(table, &[]).await));
        }
        dump.push(("links", app.dump("links", &["first_seen_ns"]).await));
        dumps.push(dump);
        app.stop().await;
    }
    let rows: usize = dumps[0].iter().map(|(_, rows)| rows.len()).sum();
    assert!(rows > 30, "the graph has content: {rows} rows");
    for (table, rows) in &dumps[0] {
        if !["commit_trailers", "commit_agents", "commit_refs"].contains(table) {
            assert!(!rows.is_empty(), "{table} is empty");
        }
    }
    assert_eq!(dumps[0], dumps[1], "reversed order");
    assert_eq!(dumps[0], dumps[2], "shuffled order");
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn push_with_trailers() -> Vec<u8> {
    let base = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    json!({
        "ref": "refs/heads/agent-work",
        "before": base,
        "after": "c4db930c2085a6ae302a52617d434bcc2df322c5",
        "repository": {"full_name": "acme/widgets"},
        "commits": [
            {"id": "9c0832b26219b10b65f2a64ef32be97e2e28f8da",
             "message": "Add exponential backoff retry to HTTP client\n\nTraceparent: 00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01\nTracelink-Session: 82c3495f-998e-457a-875a-8643b934dd9c\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
             "timestamp": "2026-11-20T09:13:48Z",
             "author": {"name": "Dev", "email": "dev@acme.example", "username": "dev"},
             "added": ["src/http/retry.ts"], "modified": ["src/http/client.ts"], "removed": []},
            {"id": "c4db930c2085a6ae302a52617d434bcc2df322c5",
             "message": "Test backoff\n\nNo trailer here: just a paragraph.",
             "timestamp": "2026-11-20T09:31:27Z",
             "author": {"name": "Dev", "email": "dev@acme.example", "username": "dev"}}
        ]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn trailers_mark_commits_agent_assisted_before_any_telemetry() {
    let mut app = app().await;
    let resp = app
        .deliver(SECRET, "push", "push-1", &push_with_trailers())
        .await;
    assert_eq!(resp.status(), 200);
    app.applied(1).await;
    let c = commit(
        &app,
        "acme/widgets",
        "9c0832b26219b10b65f2a64ef32be97e2e28f8da",
    )
    .await;
    assert_eq!(c["agent_assisted"], true);
    assert_eq!(c["agents"], json!(["claude-code"]));
    assert_eq!(
        c["parents"],
        json!(["6113728f27ae82c7b1a177c8d03f9e96e0adf246"])
    );
    assert_eq!(c["trailers"][0]["key"], "Traceparent");
    assert_eq!(c["authored_at"], "2026-11-20T09:13:48Z");
    let traceparent = app
        .db()
        .links_by_relation("commit", "traceparent")
        .await
        .unwrap();
    assert_eq!(
        traceparent
            .iter()
            .filter(|l| l.to_key == "b3334784fc61510ab4e4362d0249eb86")
            .count(),
        1
    );
    let named = app
        .db()
        .links_by_relation("commit", "session")
        .await
        .unwrap();
    assert_eq!(
        named
            .iter()
            .filter(|l| l.to_key == "82c3495f-998e-457a-875a-8643b934dd9c")
            .count(),
        1
    );
    let second = commit(
        &app,
        "acme/widgets",
        "c4db930c2085a6ae302a52617d434bcc2df322c5",
    )
    .await;
    assert_eq!(second["agent_assisted"], false);
    assert_eq!(second["trailers"], json!([]));
    assert_eq!(
        second["parents"],
        json!(["9c0832b26219b10b65f2a64ef32be97e2e28f8da"])
    );
    app.stop().await;
}

#[tokio::test]
async fn forged_replayed_and_unreadable_deliveries_are_refused() {
    let mut app = app().await;
    let body = push_with_trailers();
    let url = format!("{}/webhooks/github", app.http);
    let post = |sig: Option<String>, body: Vec<u8>, id: &str| {
        let mut req = app
            .client
            .post(&url)
            .header("x-github-event", "push")
            .header("x-github-delivery", id)
            .body(body);
        if let Some(sig) = sig {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send()
    };
    let sign = tracelink::github::signature::sign;

    let r = post(Some(sign("wrong secret", &body)), body.clone(), "a")
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("does not match"));
    let r = post(None, body.clone(), "b").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("missing X-Hub-Signature-256")
    );
    let r = post(
        Some(sign(SECRET, b"{\"other\": \"body\"}")),
        body.clone(),
        "c",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401, "a signature of a different body");
    let big = vec![b' '; 25 * 1024 * 1024 + 1];
    let r = post(Some(sign(SECRET, &big)), big, "d").await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        app.count("deliveries").await,
        0,
        "nothing stored for refused deliveries"
    );

    // Truncated JSON of a consumed event: 400 naming the problem, recorded as failed.
    let truncated = body[..body.len() / 2].to_vec();
    let r = post(Some(sign(SECRET, &truncated)), truncated, "e")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("push payload"));
    // A readable payload with an unusable field names the field.
    let bad = json!({"ref": "refs/heads/x", "before": "0000000000000000000000000000000000000000",
        "after": "x", "repository": {"full_name": "acme/widgets"},
        "commits": [{"id": "not-a-sha", "message": "m"}]})
    .to_string()
    .into_bytes();
    let r = post(Some(sign(SECRET, &bad)), bad, "f").await.unwrap();
    assert_eq!(r.status(), 400);
    let msg = r.text().await.unwrap();
    assert!(msg.contains("commits[0].id"), "{msg}");
    let missing = json!({"action": "completed", "repository": {"full_name": "acme/widgets"},
        "workflow_run": {"id": 1, "status": "completed"}})
    .to_string()
    .into_bytes();
    let r = app.deliver(SECRET, "workflow_run", "g", &missing).await;
    assert_eq!(r.status(), 400);
    let msg = r.text().await.unwrap();
    assert!(
        msg.contains("workflow_run") && msg.contains("head_sha"),
        "{msg}"
    );
    let (status, failed) = app.get_json("/api/v1/deliveries?status=failed").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = failed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{failed}");
    for id in ["e", "f", "g"] {
        assert!(ids.contains(&id), "{failed}");
    }

    // Unknown events and actions: 202, counted, not stored.
    let r = app
        .deliver(SECRET, "star", "h", b"{\"action\": \"created\"}")
        .await;
    assert_eq!(r.status(), 202);
    let pinned = json!({"action": "pinned", "issue": {"number": 1}, "repository": {"full_name": "acme/widgets"}})
        .to_string()
        .into_bytes();
    let r = app.deliver(SECRET, "issues", "i", &pinned).await;
    assert_eq!(r.status(), 202);
    assert_eq!(app.count("deliveries").await, 3);

    // A redelivery answers 200 and changes nothing.
    let r = app.deliver(SECRET, "push", "push-1", &body).await;
    assert_eq!(r.text().await.unwrap(), "{\"status\":\"stored\"}");
    app.applied(1).await;
    let before = app.dump("commits", &[]).await;
    let r = app.deliver(SECRET, "push", "push-1", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{\"status\":\"duplicate\"}");
    assert_eq!(app.count("deliveries").await, 4);
    assert_eq!(app.dump("commits", &[]).await, before);

    let (_, metrics) = (
        0,
        app.client
            .get(format!("{}/metrics", app.http))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    for (outcome, n) in [
        ("unauthorized", 3),
        ("failed", 3),
        ("ignored", 2),
        ("stored", 1),
        ("duplicate", 1),
    ] {
        assert!(
            metrics.contains(&format!(
                "tracelink_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}"
            )),
            "{outcome} {n}: {metrics}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn without_a_secret_every_delivery_is_refused() {
    let mut app = TestApp::spawn().await;
    let r = app
        .deliver("anything", "ping", "p", b"{\"zen\": \"hi\"}")
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("no webhook secret is configured")
    );
    assert_eq!(app.count("deliveries").await, 0);
    app.stop().await;
}

fn issue(action: &str, state: &str, updated: &str, labels: &[&str], body: &str) -> Vec<u8> {
    let mut p: Value = serde_json::from_slice(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("webhooks/payloads/issues.opened.1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    p["action"] = json!(action);
    p["issue"]["state"] = json!(state);
    p["issue"]["updated_at"] = json!(updated);
    p["issue"]["body"] = json!(body);
    p["issue"]["labels"] = json!(
        labels
            .iter()
            .map(|l| json!({"name": l}))
            .collect::<Vec<_>>()
    );
    p["issue"]["closed_at"] = if state == "closed" {
        json!(updated)
    } else {
        Value::Null
    };
    p.to_string().into_bytes()
}

#[tokio::test]
async fn incidents_link_their_root_cause_and_resolve_in_any_order() {
    let sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    let body = format!("Checkout is down.\n\nRoot cause: {sha}\n");
    let deliveries = [
        (
            "opened",
            issue(
                "opened",
                "open",
                "2026-11-20T11:00:00Z",
                &["Incident"],
                &body,
            ),
        ),
        (
            "closed",
            issue(
                "closed",
                "closed",
                "2026-11-20T12:00:00Z",
                &["Incident"],
                &body,
            ),
        ),
        (
            "labeled-late",
            issue(
                "labeled",
                "open",
                "2026-11-20T11:30:00Z",
                &["Incident", "sev1"],
                &body,
            ),
        ),
    ];
    for order in [[0, 1, 2], [1, 2, 0]] {
        let mut app = app_with_label("incident").await;
        for &i in &order {
            let (id, payload) = &deliveries[i];
            assert_eq!(
                app.deliver(SECRET, "issues", id, payload).await.status(),
                200
            );
        }
        app.applied(3).await;
        let c = commit(&app, "Codertocat/Hello-World", sha).await;
        assert_eq!(c["incidents"], json!([1]), "order {order:?}");
        let issues = app.db().issues().await.unwrap();
        assert_eq!(
            issues
                .iter()
                .filter(|i| i.state == "resolved" && i.is_incident)
                .count(),
            1,
            "closed is newest, whatever arrived last (order {order:?})"
        );
        app.stop().await;
    }
    // An issue without the label is no incident.
    let mut app = app_with_label("incident").await;
    let plain = issue("opened", "open", "2026-11-20T11:00:00Z", &["bug"], &body);
    assert_eq!(
        app.deliver(SECRET, "issues", "x", &plain).await.status(),
        200
    );
    app.applied(1).await;
    let issues = app.db().issues().await.unwrap();
    assert_eq!(issues.iter().filter(|i| i.is_incident).count(), 0);
    app.stop().await;
}

async fn app_with_label(label: &str) -> TestApp {
    let label = label.to_string();
    TestApp::spawn_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.incident_label = label;
    })
    .await
}
