//! The window and event rules on the histories people have: a merge GitHub made beside the
//! merger's session, a session that starts after the commit, two sessions that could
//! each explain a commit, a session that worked on other files, and telemetry naming a
//! SHA from another repository. Read through the commit API.

use serde_json::{Value, json};

use super::common::TestApp;
use super::reports::{REPO, SECRET, ZERO, deliver};

pub(crate) const DEV: &str = "dev@acme.example";
const C1: &str = "a100000000000000000000000000000000000001";
const C2: &str = "a200000000000000000000000000000000000002";
const C3: &str = "a300000000000000000000000000000000000003";

/// Unix nanoseconds of `2026-11-20T{hh}:{mm}:00Z`.
pub(crate) fn at(hh: u32, mm: u32) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&format!("2026-11-20T{hh:02}:{mm:02}:00Z"))
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

pub(crate) fn kv(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// A gen_ai agent session of `DEV`: one chat span at each of `times` (ns), each naming
/// `files`; `repository` as the agent's resource says it.
pub(crate) fn session(
    conversation: &str,
    times: &[i64],
    files: &[&str],
    repository: Option<&str>,
) -> Value {
    let mut resource = vec![kv("service.name", "acme-agent")];
    if let Some(r) = repository {
        resource.push(kv("vcs.repository.url.full", r));
    }
    let spans: Vec<Value> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut attrs = vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.conversation.id", conversation),
                kv("gen_ai.request.model", "gpt-4o"),
                kv("user.email", DEV),
            ];
            for f in files {
                attrs.push(kv("code.file.path", f));
            }
            let trace = format!("{:0>32x}", conversation.len() * 1000 + i + 1);
            json!({
                "traceId": trace, "spanId": format!("{:0>16x}", i + 1), "name": "chat", "kind": 3,
                "startTimeUnixNano": t.to_string(), "endTimeUnixNano": (t + 1_000_000_000).to_string(),
                "attributes": attrs,
            })
        })
        .collect();
    json!({"resourceSpans": [{"resource": {"attributes": resource},
        "scopeSpans": [{"scope": {"name": "acme-agent"}, "spans": spans}]}]})
}

struct Pushed<'a> {
    sha: &'a str,
    at: i64,
    files: &'a [&'a str],
    /// Committed by GitHub (its merge button) rather than by the author.
    by_github: bool,
    message: &'a str,
}

fn push(commits: &[Pushed<'_>]) -> Value {
    push_on("main", ZERO, commits)
}

/// A push of `commits` to `branch` after `before`, authored by `DEV`.
fn push_on(branch: &str, before: &str, commits: &[Pushed<'_>]) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"), "before": before,
        "after": commits.last().unwrap().sha,
        "repository": {"full_name": REPO}, "installation": {"id": 42},
        "commits": commits.iter().map(|c| {
            let time = chrono::DateTime::from_timestamp_nanos(c.at).to_rfc3339();
            let committer = if c.by_github {
                json!({"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"})
            } else {
                json!({"name": "dev", "email": DEV, "username": "dev"})
            };
            json!({
                "id": c.sha, "message": c.message, "timestamp": time,
                "author": {"name": "dev", "email": DEV, "username": "dev"},
                "committer": committer,
                "added": [], "modified": c.files, "removed": []
            })
        }).collect::<Vec<_>>()
    })
}

async fn send(app: &TestApp, body: &Value) {
    let r = app
        .post(
            "/v1/traces",
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
}

/// `(session, evidence)` of every session the commit API links to `sha`.
pub(crate) async fn linked(app: &TestApp, sha: &str) -> Vec<(String, String)> {
    app.linked_up().await;
    let (status, c) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{sha}"))
        .await;
    assert_eq!(status, 200, "{c}");
    c["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["session_key"].as_str().unwrap().to_string(),
                s["evidence"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) async fn app() -> TestApp {
    TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await
}

fn window(key: &str) -> Vec<(String, String)> {
    vec![(key.to_string(), "window".to_string())]
}

#[tokio::test]
async fn a_session_explains_its_own_commits_and_not_the_merge_github_made() {
    let mut app = app().await;
    // Active 10:00–10:30 on src/a.rs.
    send(
        &app,
        &session("conv-a", &[at(10, 0), at(10, 30)], &["src/a.rs"], None),
    )
    .await;
    deliver(
        &app,
        "push",
        "p1",
        &push(&[
            // A minute before the first record: inside the clock skew.
            Pushed {
                sha: C1,
                at: at(9, 59),
                files: &["src/a.rs"],
                by_github: false,
                message: "change",
            },
            // GitHub's merge button, by the same person, inside the window.
            Pushed {
                sha: C2,
                at: at(10, 20),
                files: &["src/a.rs"],
                by_github: true,
                message: "change",
            },
            // After the last record, inside the grace period (30 min).
            Pushed {
                sha: C3,
                at: at(10, 50),
                files: &["src/a.rs"],
                by_github: false,
                message: "change",
            },
        ]),
    )
    .await;
    app.applied(1).await;
    assert_eq!(linked(&app, C1).await, window("conv-a"));
    assert_eq!(linked(&app, C2).await, vec![], "GitHub made it");
    assert_eq!(linked(&app, C3).await, window("conv-a"));
    app.stop().await;
}

#[tokio::test]
async fn a_session_that_starts_after_the_commit_did_not_make_it() {
    let mut app = app().await;
    // The commit at 10:00; the session starts at 10:05 (beyond the 2-minute skew), well
    // within what the grace period would allow after a session's end.
    deliver(
        &app,
        "push",
        "p1",
        &push(&[Pushed {
            sha: C1,
            at: at(10, 0),
            files: &["src/a.rs"],
            by_github: false,
            message: "change",
        }]),
    )
    .await;
    app.applied(1).await;
    send(
        &app,
        &session("conv-late", &[at(10, 5), at(10, 40)], &[], None),
    )
    .await;
    assert_eq!(linked(&app, C1).await, vec![]);
    app.stop().await;
}

#[tokio::test]
async fn a_commit_two_sessions_could_explain_is_linked_to_neither() {
    let mut app = app().await;
    send(
        &app,
        &session("conv-one", &[at(10, 0), at(10, 30)], &[], None),
    )
    .await;
    send(
        &app,
        &session("conv-two", &[at(10, 10), at(10, 40)], &[], None),
    )
    .await;
    deliver(
        &app,
        "push",
        "p1",
        &push(&[
            // Both sessions are active at 10:20.
            Pushed {
                sha: C1,
                at: at(10, 20),
                files: &["src/a.rs"],
                by_github: false,
                message: "change",
            },
            // Only the second one at 11:05 (its end plus grace; the first's ended 11:00).
            Pushed {
                sha: C2,
                at: at(11, 5),
                files: &["src/a.rs"],
                by_github: false,
                message: "change",
            },
        ]),
    )
    .await;
    app.applied(1).await;
    assert_eq!(linked(&app, C1).await, vec![], "two candidates: none");
    assert_eq!(linked(&app, C2).await, window("conv-two"));
    app.stop().await;
}

#[tokio::test]
async fn a_session_that_named_files_explains_only_commits_touching_one() {
    let mut app = app().await;
    send(
        &app,
        &session(
            "conv-files",
            &[at(10, 0), at(10, 30)],
            &["/home/dev/widgets/src/a.rs"],
            None,
        ),
    )
    .await;
    deliver(
        &app,
        "push",
        "p1",
        &push(&[
            Pushed {
                sha: C1,
                at: at(10, 10),
                files: &["src/b.rs"],
                by_github: false,
                message: "change",
            },
            Pushed {
                sha: C2,
                at: at(10, 20),
                files: &["src/a.rs", "src/b.rs"],
                by_github: false,
                message: "change",
            },
        ]),
    )
    .await;
    app.applied(1).await;
    assert_eq!(linked(&app, C1).await, vec![], "no file in common");
    assert_eq!(linked(&app, C2).await, window("conv-files"));
    app.stop().await;
}

/// A Claude Code `tool_result` event naming `sha` after a git commit, from a session
/// whose repository is `repository`.
pub(crate) fn claude_commit_event(session: &str, sha: &str, repository: &str) -> Value {
    let params = json!({"git_commit_id": sha}).to_string();
    json!({"resourceLogs": [{
        "resource": {"attributes": [kv("service.name", "claude-code"),
            kv("vcs.repository.url.full", repository)]},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": [{
            "timeUnixNano": at(10, 0).to_string(),
            "body": {"stringValue": "claude_code.tool_result"},
            "attributes": [kv("event.name", "tool_result"), kv("session.id", session),
                kv("user.email", DEV), kv("tool_name", "Bash"), kv("success", "true"),
                kv("tool_parameters", &params)]
        }]}]
    }]})
}

#[tokio::test]
async fn telemetry_naming_a_sha_links_it_only_in_the_sessions_repository() {
    let mut app = app().await;
    deliver(
        &app,
        "push",
        "p1",
        &push(&[Pushed {
            sha: C1,
            at: at(9, 0),
            files: &[],
            by_github: false,
            message: "change",
        }]),
    )
    .await;
    app.applied(1).await;
    for (session, repository) in [
        ("fork-session", "https://github.com/contributor/widgets.git"),
        ("own-session", "https://github.com/acme/widgets.git"),
    ] {
        let r = app
            .post(
                "/v1/logs",
                "application/json",
                claude_commit_event(session, C1, repository)
                    .to_string()
                    .into_bytes(),
                &[],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let s = app.session("fork-session").await;
    assert_eq!(s["repository"], "contributor/widgets", "{s}");
    assert_eq!(s["commits"], json!([C1]), "the session names it: {s}");
    assert_eq!(
        linked(&app, C1).await,
        vec![("own-session".to_string(), "event".to_string())]
    );
    app.stop().await;
}

pub(crate) const FEATURE_1: &str = "f100000000000000000000000000000000000001";
pub(crate) const FEATURE_2: &str = "f200000000000000000000000000000000000002";
const SQUASH: &str = "5500000000000000000000000000000000000055";
pub(crate) const BASE_TIP: &str = "b000000000000000000000000000000000000000";

/// A push of `commits` (each `(sha, minute, message, by GitHub)`) to `branch` after `before`.
pub(crate) fn push_to(branch: &str, before: &str, commits: &[(&str, i64, &str, bool)]) -> Value {
    let pushed: Vec<Pushed<'_>> = commits
        .iter()
        .map(|(sha, at, message, by_github)| Pushed {
            sha,
            at: *at,
            files: &["src/a.rs"],
            by_github: *by_github,
            message,
        })
        .collect();
    push_on(branch, before, &pushed)
}

/// main's first commit, at 08:00.
pub(crate) fn base_push() -> Value {
    push_to("main", ZERO, &[(BASE_TIP, at(8, 0), "Base", false)])
}

/// The feature branch: two commits at 10:10 and 10:20, inside the sessions' windows.
pub(crate) fn feature_push() -> Value {
    push_to(
        "feature",
        BASE_TIP,
        &[
            (FEATURE_1, at(10, 10), "Part one", false),
            (FEATURE_2, at(10, 20), "Part two", false),
        ],
    )
}

pub(crate) fn merged_pull(number: i64, head: &str, merge: &str, at: i64) -> Value {
    let time = chrono::DateTime::from_timestamp_nanos(at).to_rfc3339();
    json!({
        "action": "closed", "repository": {"full_name": REPO}, "installation": {"id": 42},
        "pull_request": {
            "number": number, "title": "Feature", "state": "closed", "draft": false,
            "merged": true, "merge_commit_sha": merge, "user": {"login": "dev"},
            "head": {"ref": "feature", "sha": head}, "base": {"ref": "main", "sha": BASE_TIP},
            "created_at": time, "updated_at": time, "closed_at": time, "merged_at": time
        }
    })
}

pub(crate) fn deployed(id: i64, sha: &str, at: i64) -> [(&'static str, Value); 2] {
    let time = chrono::DateTime::from_timestamp_nanos(at).to_rfc3339();
    let d = json!({"id": id, "sha": sha, "ref": "main", "environment": "production", "created_at": time});
    [
        (
            "deployment",
            json!({"action": "created", "repository": {"full_name": REPO}, "deployment": d}),
        ),
        (
            "deployment_status",
            json!({"action": "created", "repository": {"full_name": REPO},
            "deployment_status": {"id": id * 10, "state": "success", "environment": "production",
                "created_at": time}, "deployment": d}),
        ),
    ]
}

pub(crate) async fn dora(app: &TestApp) -> Value {
    let (status, d) = app
        .get_json(&format!(
            "/api/v1/repos/{REPO}/dora?environment=production&since=2026-11-20T00:00:00Z&until=2026-11-21T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 200, "{d}");
    d
}

/// An agent session's two commits on a branch, squashed by GitHub onto main at 12:00 and
/// deployed at 13:00: the squash commit carries the session (`merged`), is agent-assisted
/// in the commit API and in DORA, and its lead time starts at the branch's first commit.
#[tokio::test]
async fn a_squash_merge_carries_its_pull_requests_sessions() {
    let mut app = app().await;
    send(
        &app,
        &session("conv-squash", &[at(10, 0), at(10, 30)], &["src/a.rs"], None),
    )
    .await;
    let mut n = 0;
    let mut step = async |app: &TestApp, event: &str, body: Value| {
        n += 1;
        deliver(app, event, &format!("d{n}"), &body).await;
    };
    step(&app, "push", base_push()).await;
    step(&app, "push", feature_push()).await;
    step(
        &app,
        "push",
        push_to(
            "main",
            BASE_TIP,
            &[(SQUASH, at(12, 0), "Feature (#5)", true)],
        ),
    )
    .await;
    step(
        &app,
        "pull_request",
        merged_pull(5, FEATURE_2, SQUASH, at(12, 0)),
    )
    .await;
    for (event, body) in deployed(1, SQUASH, at(13, 0)) {
        step(&app, event, body).await;
    }
    app.applied(6).await;

    assert_eq!(linked(&app, FEATURE_1).await, window("conv-squash"));
    assert_eq!(
        linked(&app, SQUASH).await,
        vec![("conv-squash".to_string(), "merged".to_string())],
        "the squash commit stands for the PR's commits"
    );
    let (_, c) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{SQUASH}"))
        .await;
    assert_eq!(c["agent_assisted"], true, "{c}");

    let d = dora(&app).await;
    assert_eq!(d["agent_assisted"]["deployments"], 1, "{d}");
    assert_eq!(d["not_agent_assisted"]["deployments"], 0, "{d}");
    // The squash: from the PR's first commit (10:10) to the deployment (13:00), not from
    // the merge (12:00). The base commit (08:00) shipped with it, by a person.
    assert_eq!(d["agent_assisted"]["changes"], 1, "{d}");
    assert_eq!(d["agent_assisted"]["lead_time_median_hours"], 2.83, "{d}");
    assert_eq!(
        d["not_agent_assisted"]["lead_time_median_hours"], 5.0,
        "{d}"
    );
    app.stop().await;
}

/// GitHub's rebase merge re-creates the PR's commits on main (same author, author time
/// and message, committed by GitHub): each copy carries its original's session.
#[tokio::test]
async fn rebased_copies_carry_their_originals_sessions() {
    let mut app = app().await;
    send(
        &app,
        &session("conv-rebase", &[at(10, 0), at(10, 30)], &["src/a.rs"], None),
    )
    .await;
    let copy_1 = "c100000000000000000000000000000000000001";
    let copy_2 = "c200000000000000000000000000000000000002";
    deliver(&app, "push", "d1", &base_push()).await;
    deliver(&app, "push", "d2", &feature_push()).await;
    // The copies keep the author time; GitHub commits them at 12:00.
    deliver(
        &app,
        "push",
        "d3",
        &push_to(
            "main",
            BASE_TIP,
            &[
                (copy_1, at(10, 10), "Part one", true),
                (copy_2, at(10, 20), "Part two", true),
            ],
        ),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "d4",
        &merged_pull(6, FEATURE_2, copy_2, at(12, 0)),
    )
    .await;
    app.applied(4).await;
    for copy in [copy_1, copy_2] {
        assert_eq!(
            linked(&app, copy).await,
            vec![("conv-rebase".to_string(), "merged".to_string())],
            "{copy}"
        );
    }
    app.stop().await;
}

/// One Claude Code session names two commits, each in its own pull request: each PR
/// carries half the session's cost (no patch sizes known: equal shares), and the two
/// halves add up to the session's cost.
#[tokio::test]
async fn a_session_in_two_pull_requests_is_not_counted_twice() {
    use super::reports::{CLAUDE_1, CLAUDE_2, Commit, pull, push, send_otlp};
    let mut app = app().await;
    for f in ["claude-code-metrics.json", "claude-code-logs.json"] {
        send_otlp(&app, f).await;
    }
    let commit = |sha, at| Commit {
        sha,
        message: "change",
        at,
        email: DEV,
        login: "dev",
        files: &[],
    };
    deliver(
        &app,
        "push",
        "d1",
        &push(
            "refs/heads/one",
            ZERO,
            &[commit(CLAUDE_1, "2026-11-20T09:13:48Z")],
        ),
    )
    .await;
    deliver(
        &app,
        "push",
        "d2",
        &push(
            "refs/heads/two",
            ZERO,
            &[commit(CLAUDE_2, "2026-11-20T09:31:27Z")],
        ),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "d3",
        &pull("opened", 11, CLAUDE_1, "one", "2026-11-20T10:00:00Z", None),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "d4",
        &pull("opened", 12, CLAUDE_2, "two", "2026-11-20T10:00:00Z", None),
    )
    .await;
    app.applied(4).await;
    let session_cost = app.session("82c3495f-998e-457a-875a-8643b934dd9c").await["cost_usd"]
        .as_f64()
        .unwrap();
    assert_eq!(session_cost, 0.365276);
    let mut total = 0.0;
    for number in [11, 12] {
        let (status, r) = app
            .get_json(&format!(
                "/api/v1/repos/{REPO}/pulls/{number}/report?format=json"
            ))
            .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["totals"]["cost_usd"], 0.182638, "PR #{number}: {r}");
        assert_eq!(
            r["sessions"][0]["cost_usd"], 0.365276,
            "the session's own cost"
        );
        assert_eq!(r["sessions"][0]["cost_in_pr_usd"], 0.182638);
        total += r["totals"]["cost_usd"].as_f64().unwrap();
    }
    assert!((total - session_cost).abs() < 1e-6, "{total}");
    app.stop().await;
}

/// The squash scenario with its telemetry and deliveries in shuffled orders: the same
/// links on the squash commit, the same report, the same DORA keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_squash_scenario_does_not_depend_on_arrival_order() {
    let steps: Vec<(&str, Value)> = {
        let mut v = vec![
            ("push", base_push()),
            ("push", feature_push()),
            (
                "push",
                push_to(
                    "main",
                    BASE_TIP,
                    &[(SQUASH, at(12, 0), "Feature (#5)", true)],
                ),
            ),
            ("pull_request", merged_pull(5, FEATURE_2, SQUASH, at(12, 0))),
        ];
        v.extend(deployed(1, SQUASH, at(13, 0)));
        v
    };
    let telemetry = session("conv-squash", &[at(10, 0), at(10, 30)], &["src/a.rs"], None);
    let n = steps.len() + 1;
    let mut seen: Vec<(Vec<usize>, Value, Value, Value)> = Vec::new();
    for order in [
        (0..n).collect::<Vec<_>>(),
        (0..n).rev().collect(),
        vec![3, 6, 0, 5, 2, 1, 4],
        vec![6, 2, 4, 0, 3, 1, 5],
    ] {
        let mut app = app().await;
        let mut delivered = 0;
        for &i in &order {
            if i == steps.len() {
                send(&app, &telemetry).await;
            } else {
                deliver(&app, steps[i].0, &format!("o{i}"), &steps[i].1).await;
                delivered += 1;
            }
        }
        app.applied(delivered).await;
        // Telemetry after the deliveries is linked off the request path: wait for it.
        app.linked_up().await;
        let d = dora(&app).await;
        let (_, c) = app
            .get_json(&format!("/api/v1/repos/{REPO}/commits/{SQUASH}"))
            .await;
        let (_, r) = app
            .get_json(&format!("/api/v1/repos/{REPO}/pulls/5/report?format=json"))
            .await;
        seen.push((order, c["sessions"].clone(), r, d));
        app.stop().await;
    }
    let (_, links, report, keys) = &seen[0];
    assert_eq!(links[0]["evidence"], "merged", "{links}");
    for (order, l, r, d) in &seen[1..] {
        assert_eq!(l, links, "order {order:?}");
        assert_eq!(r, report, "order {order:?}");
        assert_eq!(d, keys, "order {order:?}");
    }
}

/// `git commit --amend` keeps the author, author time and message: the replacement a
/// force-push brings carries the session that named its original (`merged`), while the
/// original keeps its own evidence.
#[tokio::test]
async fn an_amended_commit_keeps_its_originals_session() {
    let mut app = app().await;
    let amended = "f1b0000000000000000000000000000000000001";
    // Committed (and amended) at 08:00; the session that names the original runs at
    // 10:00, too late to explain either by time.
    deliver(
        &app,
        "push",
        "a1",
        &push_to("feature", ZERO, &[(FEATURE_1, at(8, 0), "Part one", false)]),
    )
    .await;
    deliver(
        &app,
        "push",
        "a2",
        &push_to(
            "feature",
            FEATURE_1,
            &[(amended, at(8, 0), "Part one", false)],
        ),
    )
    .await;
    app.applied(2).await;
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            claude_commit_event(
                "claude-amend",
                FEATURE_1,
                "https://github.com/acme/widgets.git",
            )
            .to_string()
            .into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        linked(&app, FEATURE_1).await,
        vec![("claude-amend".to_string(), "event".to_string())]
    );
    assert_eq!(
        linked(&app, amended).await,
        vec![("claude-amend".to_string(), "merged".to_string())]
    );
    app.stop().await;
}
