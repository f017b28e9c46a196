//! The window and event rules on the histories people have: a merge GitHub made beside the
//! merger's session, a session that starts after the commit, two sessions that could
//! each explain a commit, a session that worked on other files, and telemetry naming a
//! SHA from another repository. Read through the commit API.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::reports::{REPO, SECRET, ZERO, deliver};

const DEV: &str = "dev@acme.example";
const C1: &str = "a100000000000000000000000000000000000001";
const C2: &str = "a200000000000000000000000000000000000002";
const C3: &str = "a300000000000000000000000000000000000003";

/// Unix nanoseconds of `2026-11-20T{hh}:{mm}:00Z`.
fn at(hh: u32, mm: u32) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&format!("2026-11-20T{hh:02}:{mm:02}:00Z"))
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

fn kv(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// A gen_ai agent session of `DEV`: one chat span at each of `times` (ns), each naming
/// `files`; `repository` as the agent's resource says it.
fn session(conversation: &str, times: &[i64], files: &[&str], repository: Option<&str>) -> Value {
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
}

fn push(commits: &[Pushed<'_>]) -> Value {
    json!({
        "ref": "refs/heads/main", "before": ZERO, "after": commits.last().unwrap().sha,
        "repository": {"full_name": REPO}, "installation": {"id": 42},
        "commits": commits.iter().map(|c| {
            let time = chrono::DateTime::from_timestamp_nanos(c.at).to_rfc3339();
            let committer = if c.by_github {
                json!({"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"})
            } else {
                json!({"name": "dev", "email": DEV, "username": "dev"})
            };
            json!({
                "id": c.sha, "message": "change", "timestamp": time,
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
async fn linked(app: &TestApp, sha: &str) -> Vec<(String, String)> {
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

async fn app() -> TestApp {
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
            },
            // GitHub's merge button, by the same person, inside the window.
            Pushed {
                sha: C2,
                at: at(10, 20),
                files: &["src/a.rs"],
                by_github: true,
            },
            // After the last record, inside the grace period (30 min).
            Pushed {
                sha: C3,
                at: at(10, 50),
                files: &["src/a.rs"],
                by_github: false,
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
            },
            // Only the second one at 11:05 (its end plus grace; the first's ended 11:00).
            Pushed {
                sha: C2,
                at: at(11, 5),
                files: &["src/a.rs"],
                by_github: false,
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
            },
            Pushed {
                sha: C2,
                at: at(10, 20),
                files: &["src/a.rs", "src/b.rs"],
                by_github: false,
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
fn claude_commit_event(session: &str, sha: &str, repository: &str) -> Value {
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
