//! Backfill: a repository's history fetched from the (fake) GitHub API gives the same
//! graph as the same history delivered by webhooks — pull request commit sets, commit
//! ancestry (what a deployment contains), DORA — for a server that got an installation
//! event and for `tracelink backfill` on a database; a second backfill only sends
//! conditional requests and changes nothing; one that GitHub interrupts resumes without
//! fetching finished pages again.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tracelink::github::backfill::{self, BackfillConfig};
use tracelink_dev::fake_github::{
    FakeDeployment, FakeGithub, FakeHistory, FakeIssue, FakePull, FakeRepoCommit, FakeStatus,
    INSTALLATION,
};

use super::common::TestApp;
use super::reports::{REPO, SECRET, deliver};

const A1: &str = "a100000000000000000000000000000000000000";
const F1: &str = "f100000000000000000000000000000000000000";
const F2: &str = "f200000000000000000000000000000000000000";
const M4: &str = "e400000000000000000000000000000000000000";
const B1: &str = "b100000000000000000000000000000000000000";
const C1: &str = "c100000000000000000000000000000000000000";
const C2: &str = "c200000000000000000000000000000000000000";
const G1: &str = "d100000000000000000000000000000000000000";
const CODEX: &str = "Cache\n\nCo-authored-by: Codex <codex@openai.com>";

/// A time `hours` after midnight (UTC) ten days ago, RFC 3339: the history is recent,
/// whatever day the test runs.
fn at(hours: i64) -> String {
    let today = chrono::Utc::now().date_naive();
    let base = (today - chrono::Duration::days(10))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    (base + chrono::Duration::hours(hours)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

struct C {
    sha: &'static str,
    message: &'static str,
    hours: i64,
    parents: &'static [&'static str],
}

/// main: A1 ← M4 (merging #4's F1 ← F2) ← B1 ← C1 (Codex) ← C2; #9 (open) adds G1 on C2.
fn commits() -> (Vec<C>, Vec<C>) {
    let main = vec![
        C {
            sha: A1,
            message: "Init",
            hours: 0,
            parents: &[],
        },
        C {
            sha: M4,
            message: "Merge pull request #4 from acme/retry",
            hours: 6,
            parents: &[A1, F2],
        },
        C {
            sha: B1,
            message: "Fix",
            hours: 24,
            parents: &[M4],
        },
        C {
            sha: C1,
            message: CODEX,
            hours: 48,
            parents: &[B1],
        },
        C {
            sha: C2,
            message: "Docs",
            hours: 49,
            parents: &[C1],
        },
    ];
    let branches = vec![
        C {
            sha: F1,
            message: "Retry",
            hours: 2,
            parents: &[A1],
        },
        C {
            sha: F2,
            message: "Retry harder",
            hours: 3,
            parents: &[F1],
        },
        C {
            sha: G1,
            message: "Next",
            hours: 52,
            parents: &[C2],
        },
    ];
    (main, branches)
}

/// (id, sha, hours) of the successful production deployments.
const DEPLOYMENTS: [(u64, &str, i64); 3] = [(1, M4, 12), (2, B1, 30), (3, C2, 50)];

/// (number, root cause, opened, closed) of the incidents.
fn incidents() -> [(u64, String, i64, i64); 2] {
    [(5, "deployment 3".into(), 51, 55), (6, B1.into(), 32, 33)]
}

/// The history as the API lists it.
fn history() -> FakeHistory {
    let (main, branches) = commits();
    let fake = |c: &C| FakeRepoCommit {
        sha: c.sha.into(),
        message: c.message.into(),
        name: "dev".into(),
        email: "dev@acme.example".into(),
        login: "dev".into(),
        date: at(c.hours),
        parents: c.parents.iter().map(|p| p.to_string()).collect(),
    };
    FakeHistory {
        commits: main.iter().map(fake).collect(),
        branch_commits: branches.iter().map(fake).collect(),
        pulls: vec![
            FakePull {
                number: 4,
                title: "Retry".into(),
                login: "dev".into(),
                head_ref: "retry".into(),
                head_sha: F2.into(),
                base_sha: A1.into(),
                commits: vec![F1.into(), F2.into()],
                created_at: at(2),
                updated_at: at(6),
                merged_at: Some(at(6)),
                merge_commit_sha: Some(M4.into()),
            },
            FakePull {
                number: 9,
                title: "Next".into(),
                login: "dev".into(),
                head_ref: "next".into(),
                head_sha: G1.into(),
                base_sha: C2.into(),
                commits: vec![G1.into()],
                created_at: at(52),
                updated_at: at(52),
                merged_at: None,
                merge_commit_sha: None,
            },
        ],
        statuses: vec![FakeStatus {
            id: 71,
            sha: G1.into(),
            context: "ci/build".into(),
            state: "success".into(),
            at: at(53),
        }],
        deployments: DEPLOYMENTS
            .iter()
            .map(|(id, sha, h)| FakeDeployment {
                id: *id,
                sha: sha.to_string(),
                environment: "production".into(),
                created_at: at(*h),
                statuses: vec![(id * 10, "success".into(), at(*h))],
            })
            .collect(),
        issues: incidents()
            .into_iter()
            .map(|(n, cause, opened, closed)| FakeIssue {
                number: n,
                title: "Outage".into(),
                body: format!("root cause: {cause}"),
                labels: vec!["incident".into()],
                created_at: at(opened),
                updated_at: at(closed),
                closed_at: Some(at(closed)),
            })
            .chain([FakeIssue {
                number: 7,
                title: "Not an incident".into(),
                body: "root cause: deployment 1".into(),
                labels: vec!["bug".into()],
                created_at: at(40),
                updated_at: at(40),
                closed_at: None,
            }])
            .collect(),
    }
}

fn push_commit(c: &C) -> Value {
    json!({"id": c.sha, "message": c.message, "timestamp": at(c.hours),
        "author": {"name": "dev", "email": "dev@acme.example", "username": "dev"},
        "committer": {"name": "dev", "email": "dev@acme.example", "username": "dev"},
        "added": [], "modified": [], "removed": []})
}

/// The same history as GitHub delivers it: pushes (which name one parent each, by
/// order), pull requests, the status, deployments with statuses, incidents.
fn deliveries() -> Vec<(&'static str, Value)> {
    let (main, branches) = commits();
    let by = |sha: &str| {
        main.iter()
            .chain(&branches)
            .find(|c| c.sha == sha)
            .map(push_commit)
            .expect("known commit")
    };
    let push = |git_ref: &str, before: &str, shas: &[&str]| {
        json!({"ref": git_ref, "before": before, "after": shas.last(),
            "repository": {"full_name": REPO}, "installation": {"id": INSTALLATION},
            "commits": shas.iter().map(|s| by(s)).collect::<Vec<_>>()})
    };
    let zero = "0000000000000000000000000000000000000000";
    let mut out = vec![
        ("push", push("refs/heads/main", zero, &[A1])),
        ("push", push("refs/heads/retry", A1, &[F1, F2])),
        ("push", push("refs/heads/main", A1, &[F1, F2, M4])),
        ("push", push("refs/heads/main", M4, &[B1])),
        ("push", push("refs/heads/main", B1, &[C1, C2])),
        ("push", push("refs/heads/next", C2, &[G1])),
    ];
    for p in history().pulls {
        out.push((
            "pull_request",
            json!({"action": if p.merged_at.is_some() { "closed" } else { "opened" },
                "repository": {"full_name": REPO}, "installation": {"id": INSTALLATION},
                "pull_request": {"number": p.number, "title": p.title,
                    "state": if p.merged_at.is_some() { "closed" } else { "open" },
                    "draft": false, "merged": p.merged_at.is_some(),
                    "merge_commit_sha": p.merge_commit_sha, "user": {"login": p.login},
                    "head": {"ref": p.head_ref, "sha": p.head_sha, "repo": {"full_name": REPO}},
                    "base": {"ref": "main", "sha": p.base_sha, "repo": {"full_name": REPO}},
                    "created_at": p.created_at, "updated_at": p.updated_at,
                    "closed_at": p.merged_at, "merged_at": p.merged_at}}),
        ));
    }
    out.push((
        "status",
        json!({"id": 71, "sha": G1, "state": "success", "context": "ci/build",
            "created_at": at(53), "updated_at": at(53), "repository": {"full_name": REPO}}),
    ));
    for (id, sha, h) in DEPLOYMENTS {
        let d = json!({"id": id, "sha": sha, "ref": "main", "environment": "production",
            "created_at": at(h)});
        out.push((
            "deployment",
            json!({"action": "created", "repository": {"full_name": REPO}, "deployment": d}),
        ));
        out.push((
            "deployment_status",
            json!({"action": "created", "repository": {"full_name": REPO}, "deployment": d,
                "deployment_status": {"id": id * 10, "state": "success",
                    "environment": "production", "created_at": at(h)}}),
        ));
    }
    for (n, cause, opened, closed) in incidents() {
        out.push((
            "issues",
            json!({"action": "closed", "repository": {"full_name": REPO},
                "issue": {"number": n, "title": "Outage", "body": format!("root cause: {cause}"),
                    "labels": [{"name": "incident"}], "state": "closed",
                    "created_at": at(opened), "closed_at": at(closed), "updated_at": at(closed)}}),
        ));
    }
    out
}

/// What the graph says of the history: DORA over its days, each pull request's commits
/// and the deployments and incidents its report shows, and what deployment 3 contains.
async fn graph(db: &tracelink::store::Db, http: &TestApp) -> Value {
    let (status, dora) = http
        .get_json(&format!(
            "/api/v1/repos/{REPO}/dora?since={}&until={}",
            at(-24),
            at(24 * 5)
        ))
        .await;
    assert_eq!(status, 200, "{dora}");
    let mut pulls = serde_json::Map::new();
    for n in [4, 9] {
        let commits = db.pull_commits(REPO, n).await.unwrap().shas;
        let (status, report) = http
            .get_json(&format!("/api/v1/repos/{REPO}/pulls/{n}/report"))
            .await;
        assert_eq!(status, 200, "{report}");
        pulls.insert(
            n.to_string(),
            json!({"commits": commits, "deployments": report["deployments"],
                "incidents": report["incidents"], "ci": report["ci"]}),
        );
    }
    let contents: BTreeSet<String> = db
        .ancestry_edges(&format!("{REPO}@{C2}"), 100)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|(child, parent)| [child, parent])
        .collect();
    json!({"dora": dora, "pulls": pulls, "deployment_3_contains": contents})
}

async fn delivered_by_webhooks() -> Value {
    let mut app = TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
    let steps = deliveries();
    for (i, (event, payload)) in steps.iter().enumerate() {
        deliver(&app, event, &format!("d{i}"), payload).await;
    }
    app.applied(steps.len() as u64).await;
    let g = graph(app.db(), &app).await;
    app.stop().await;
    g
}

async fn with_app(fake: &FakeGithub) -> TestApp {
    let cfg = fake.app_config();
    TestApp::spawn_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.github = (&cfg).into();
        // Reports wait: the App's own check run would otherwise join the history.
        a.comment_debounce = 3600;
    })
    .await
}

/// Waits on the server's signal until `n` backfill runs have ended.
async fn backfills_ended(app: &TestApp, n: u64) {
    let mut rx = app
        .server
        .as_ref()
        .expect("running")
        .backfills_ended
        .clone()
        .expect("a GitHub App is configured");
    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|c| *c >= n))
        .await
        .unwrap_or_else(|_| panic!("{n} backfills not ended in time"))
        .expect("backfill worker alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_backfills_the_same_graph_webhooks_give() {
    let expected = delivered_by_webhooks().await;
    // Non-trivial: three deployments, five changes, #4's two commits shipped by 1.
    assert_eq!(expected["dora"]["all"]["deployments"], 3, "{expected}");
    assert_eq!(expected["dora"]["all"]["changes"], 7, "{expected}");
    assert_eq!(expected["pulls"]["4"]["commits"], json!([F1, F2]));
    assert_eq!(expected["pulls"]["9"]["commits"], json!([G1]));

    let fake = FakeGithub::start().await;
    fake.add_history(REPO, history());
    let mut app = with_app(&fake).await;
    let installed = json!({"action": "created",
        "installation": {"id": INSTALLATION, "account": {"login": "acme"}, "updated_at": at(200)},
        "repositories": [{"full_name": REPO}]});
    deliver(&app, "installation", "install-1", &installed).await;
    app.applied(1).await;
    backfills_ended(&app, 1).await;
    let row = app.db().backfill(REPO).await.unwrap().expect("a backfill");
    assert_eq!(row.state, "done", "{row:?}");
    assert_eq!(row.installation_id, Some(INSTALLATION as i64));
    assert_eq!(row.pages_done, row.pages_found);

    let got = graph(app.db(), &app).await;
    assert_eq!(got, expected);
    // The API names the merge commit's second parent, which no push did.
    let (_, m4) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{M4}"))
        .await;
    assert_eq!(m4["parents"], json!([A1, F2]));
    // The progress is there for the admin API too.
    let (status, listed) = app
        .get_json(&format!("/api/v1/admin/backfill?repo={REPO}"))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["backfills"][0]["state"], "done");
    app.stop().await;
}

fn config() -> BackfillConfig {
    BackfillConfig {
        incident_label: "incident".into(),
        incident_environment: "production".into(),
        links: Default::default(),
        debounce: Duration::from_secs(60),
        publisher: None,
        pseudonyms: None,
    }
}

/// `tracelink backfill`'s own path: on the database, no server.
async fn backfill_here(
    fake: &FakeGithub,
    db: &tracelink::store::Location,
) -> anyhow::Result<tracelink::store::backfill::BackfillRow> {
    let store = tracelink::store::open(db).await?;
    let mut lines = Vec::new();
    let mut progress =
        |row: &tracelink::store::backfill::BackfillRow| lines.push(backfill::progress_line(row));
    let done = backfill::here(
        store,
        &fake.app_config(),
        &config(),
        REPO,
        Duration::from_secs(30 * 86_400),
        &mut progress,
    )
    .await;
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with(&format!("backfill {REPO}: ")),
        "progress: {lines:?}"
    );
    done
}

/// Every table a backfill writes, as text.
async fn facts(db: &tracelink::store::Location) -> Vec<Vec<String>> {
    let db = tracelink::store::Db::open_read_only(db).await.unwrap();
    let mut out = Vec::new();
    // Links keep when they were first seen, queued reports when they were queued.
    for (table, skip) in [
        ("commits", &[][..]),
        ("links", &["first_seen_ns"][..]),
        ("pull_requests", &[]),
        ("pull_request_commits", &[]),
        ("ci_runs", &[]),
        ("deployments", &[]),
        ("deployment_statuses", &[]),
        ("incidents", &[]),
        ("report_queue", &["due_ns", "touched_ns"]),
    ] {
        out.push(db.dump_table(table, skip).await.unwrap());
    }
    db.close().await;
    out
}

#[tokio::test]
async fn a_second_backfill_sends_conditional_requests_and_changes_nothing() {
    let fake = FakeGithub::start().await;
    fake.add_history(REPO, history());
    let dir = tempfile::tempdir().unwrap();
    let database = super::common::TestDb::new(dir.path()).await;
    let db = database.location.clone();

    let first = backfill_here(&fake, &db).await.unwrap();
    assert_eq!(first.state, "done");
    assert_eq!(first.pages_not_modified, 0);
    // 4 listings, 3 listings per pull request (2), one per deployment (3).
    assert_eq!(first.pages_fetched, 4 + 3 * 2 + 3);
    assert_eq!(fake.conditional_requests(), (0, 0));
    let before = facts(&db).await;
    assert!(before[0].len() >= 8, "commits: {:?}", before[0]);

    let second = backfill_here(&fake, &db).await.unwrap();
    assert_eq!(second.state, "done");
    assert_eq!(second.pages_fetched, 0);
    assert_eq!(second.pages_not_modified, first.pages_fetched);
    assert_eq!(fake.conditional_requests(), (13, 13));
    assert_eq!(facts(&db).await, before);
}

#[tokio::test]
async fn an_interrupted_backfill_resumes_without_fetching_finished_pages() {
    let fake = FakeGithub::start().await;
    fake.add_history(REPO, history());
    let dir = tempfile::tempdir().unwrap();
    let database = super::common::TestDb::new(dir.path()).await;
    let db = database.location.clone();
    let deployments = format!("/repos/{REPO}/deployments");
    let pulls = format!("/repos/{REPO}/pulls");
    // GitHub fails the deployments listing for every attempt of the first run.
    fake.fail_next("GET", &format!("^{deployments}$"), 502, 4)
        .await;

    let failed = backfill_here(&fake, &db).await.unwrap_err();
    let why = format!("{failed:#}");
    assert!(
        why.contains("GET /repos/acme/widgets/deployments") && why.contains("502"),
        "{why}"
    );
    let stopped = tracelink::store::Db::open_read_only(&db)
        .await
        .unwrap()
        .backfill(REPO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.state, "failed");
    assert!(stopped.error.as_deref().unwrap_or("").contains("502"));
    assert_eq!(stopped.pages_fetched, 2, "the pulls and commits listings");
    assert_eq!(fake.requests_to("GET", &pulls).await, 1);

    let resumed = backfill_here(&fake, &db).await.unwrap();
    assert_eq!(resumed.state, "done");
    assert_eq!(resumed.pages_done, resumed.pages_found);
    // Finished pages are not fetched again; what stopped is fetched (4 failed + 1).
    assert_eq!(fake.requests_to("GET", &pulls).await, 1);
    assert_eq!(
        fake.requests_to("GET", &format!("/repos/{REPO}/commits"))
            .await,
        1
    );
    assert_eq!(fake.requests_to("GET", &deployments).await, 5);
    assert_eq!(resumed.pages_fetched, 4 + 3 * 2 + 3);

    // And the result is a whole backfill's.
    let clean_dir = tempfile::tempdir().unwrap();
    let clean_database = super::common::TestDb::new(clean_dir.path()).await;
    let clean_db = clean_database.location.clone();
    let clean_fake = FakeGithub::start().await;
    clean_fake.add_history(REPO, history());
    backfill_here(&clean_fake, &clean_db).await.unwrap();
    assert_eq!(facts(&db).await, facts(&clean_db).await);
}

#[tokio::test]
async fn tracelink_backfill_prints_its_progress_and_needs_the_app() {
    let fake = FakeGithub::start().await;
    fake.add_history(REPO, history());
    let dir = tempfile::tempdir().unwrap();
    let database = super::common::TestDb::new(dir.path()).await;
    let cfg = fake.app_config();
    let app_id = cfg.app_id.to_string();
    let key = dir.path().join("app.pem");
    std::fs::write(&key, &cfg.private_key_pem).unwrap();
    let key = key.to_string_lossy().to_string();
    let out = super::cli::tracelink(
        &[
            "backfill",
            REPO,
            "--since",
            "30d",
            "--github-app-id",
            &app_id,
            "--github-private-key-file",
            &key,
            "--github-api-url",
            &cfg.api_url,
        ],
        &database.arg(),
    )
    .await;
    let text = super::cli::stdout(&out);
    assert!(
        text.contains(&format!(
            "backfill {REPO}: 13 of 13 pages done (13 fetched, 0 not modified), done\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("backfill of acme/widgets done: 13 pages fetched, 0 not modified"),
        "{text}"
    );

    let out = super::cli::tracelink(&["backfill", REPO], &database.arg()).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--github-app-id"), "{err}");
    let out = super::cli::tracelink(
        &[
            "backfill",
            REPO,
            "--since",
            "soon",
            "--github-app-id",
            &app_id,
        ],
        &database.arg(),
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"soon\" is not a duration"), "{err}");
}

#[tokio::test]
async fn the_admin_route_starts_a_backfill_on_the_running_server() {
    let post = |app: &TestApp, body: Value| {
        let req = app
            .client
            .post(format!("{}/api/v1/admin/backfill", app.http))
            .body(body.to_string());
        async move {
            let r = req.send().await.expect("request sent");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Without an App there is nothing to read the API as.
    let mut plain = TestApp::spawn().await;
    let (status, body) = post(&plain, json!({"repo": REPO})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--github-app-id"),
        "{body}"
    );
    plain.stop().await;

    let fake = FakeGithub::start().await;
    fake.add_history(REPO, history());
    let mut app = with_app(&fake).await;
    let (status, body) = post(&app, json!({"repo": REPO, "since": "soon"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("\"soon\" is not a duration"),
        "{body}"
    );
    let (status, body) = post(&app, json!({"since": "30d"})).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = post(&app, json!({"repo": REPO, "since": "30d"})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["backfill"]["repo"], REPO);
    backfills_ended(&app, 1).await;
    let row = app.db().backfill(REPO).await.unwrap().expect("a backfill");
    assert_eq!(
        (row.state.as_str(), row.pages_done, row.pages_found),
        ("done", 13, 13)
    );
    // The App's installation was looked up (no delivery named one).
    assert_eq!(row.installation_id, Some(INSTALLATION as i64));
    app.stop().await;
}
