//! The GitHub App end to end: telemetry and signed webhooks in, one comment and one check
//! run on a fake GitHub (the real octocrab client at the HTTP boundary) out.

use std::time::Duration;

use serde_json::json;

use super::common::TestApp;
use super::reports::*;
use tracelink_dev::fake_github::{FakeFile, FakeGithub, INSTALLATION, SLUG};

const PATCH_PR: &str = "@@ -1,2 +1,5 @@\n import { fetch } from './fetch';\n+export async function retry(fn) {\n+  return backoff(fn, 3);\n+}\n+// reviewed by a human\n";
const PATCH_CLAUDE: &str = "@@ -1,1 +1,4 @@\n import { fetch } from './fetch';\n+export async function retry(fn) {\n+  return backoff(fn, 3);\n+}\n";

async fn app(fake: &FakeGithub) -> TestApp {
    let cfg = fake.app_config();
    TestApp::spawn_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.github = (&cfg).into();
        a.comment_debounce = 0;
    })
    .await
}

/// Waits (on the publisher's signal, never a sleep) until `done` holds.
async fn until(app: &TestApp, what: &str, done: impl Fn() -> bool) {
    let mut published = app.server.as_ref().unwrap().reports_published.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout(left, published.changed())
            .await
            .is_err()
        {
            panic!("timed out waiting for {what}");
        }
    }
}

fn with_installation(mut v: serde_json::Value) -> serde_json::Value {
    v["installation"] = json!({"id": INSTALLATION});
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_comment_and_check_run_kept_current_after_merge() {
    let fake = FakeGithub::start().await;
    fake.add_pull(
        REPO,
        7,
        CLAUDE_2,
        vec![FakeFile::modified("src/http/retry.ts", PATCH_PR)],
    );
    fake.add_commit(
        REPO,
        7,
        CLAUDE_1,
        vec![FakeFile::modified("src/http/retry.ts", PATCH_CLAUDE)],
    );
    fake.add_commit(
        REPO,
        7,
        CLAUDE_2,
        vec![FakeFile::modified(
            "tests/http/retry.test.ts",
            "@@ -0,0 +1 @@\n+test();\n",
        )],
    );
    let mut app = app(&fake).await;

    let commits = [
        Commit {
            sha: CLAUDE_1,
            message: "Add exponential backoff retry to HTTP client",
            at: "2026-11-20T09:13:48Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["src/http/retry.ts"],
        },
        Commit {
            sha: CLAUDE_2,
            message: "Test backoff and honour Retry-After on 429",
            at: "2026-11-20T09:31:27Z",
            email: "dev@acme.example",
            login: "dev",
            files: &["tests/http/retry.test.ts"],
        },
    ];
    deliver(
        &app,
        "push",
        "p1",
        &with_installation(push("refs/heads/retry", ZERO, &commits)),
    )
    .await;
    let merged = with_installation(pull(
        "closed",
        7,
        CLAUDE_2,
        "retry",
        "2026-11-20T12:00:00Z",
        Some(MERGE),
    ));
    deliver(&app, "pull_request", "pr-closed", &merged).await;
    app.applied(2).await;
    until(&app, "the first comment", || {
        fake.comments(REPO, 7).len() == 1
    })
    .await;
    let first = fake.comments(REPO, 7);
    assert_eq!(first[0].login, format!("{SLUG}[bot]"));
    assert!(first[0].body.starts_with("<!-- tracelink:pr-report"));
    assert!(
        first[0].body.contains("No AI agent involvement found"),
        "{}",
        first[0].body
    );
    let writes = fake.writes().len();

    // A redelivery, and a delivery that changes nothing in the report: no write.
    deliver(&app, "pull_request", "pr-closed", &merged).await;
    deliver(&app, "pull_request", "pr-closed-again", &merged).await;
    app.applied(3).await;
    until(&app, "the unchanged report to be checked", || {
        app.server
            .as_ref()
            .unwrap()
            .reports_published
            .borrow()
            .to_owned()
            >= 2
    })
    .await;
    assert_eq!(
        fake.writes().len(),
        writes,
        "an unchanged report writes nothing"
    );

    // Telemetry arrives after the merge: the same comment is edited in place.
    send_otlp(&app, "claude-code-logs.json").await;
    until(&app, "the comment to name the session", || {
        fake.comments(REPO, 7)[0]
            .body
            .contains("1 agent session (Claude Code)")
    })
    .await;
    let comments = fake.comments(REPO, 7);
    assert_eq!(comments.len(), 1, "one comment per PR, edited in place");
    assert_eq!(comments[0].id, first[0].id);
    // Lines: 3 of the PR's 4 added lines were added by the agent-linked commit.
    assert!(
        comments[0]
            .body
            .contains("| Lines | +4 / −0 · 3 added by agents (75%) |"),
        "{}",
        comments[0].body
    );
    let runs = fake.check_runs(REPO);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].name, "tracelink");
    assert_eq!(runs[0].head_sha, CLAUDE_2);
    assert!(
        runs[0]
            .title
            .as_deref()
            .unwrap()
            .starts_with("1 agent session (Claude Code)")
    );
    assert_eq!(runs[0].conclusion.as_deref(), Some("neutral"));
    // The links the report used are stored in the graph.
    let authored = app
        .db()
        .links_by_relation("session", "authored")
        .await
        .unwrap();
    assert_eq!(authored.iter().filter(|l| l.evidence == "event").count(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_delta_patch_coverage_and_tests_in_the_comment() {
    use super::ci_upload::{STATIC_TOKEN, junit, lcov, run_ctx, upload};
    const MAIN_1: &str = "a000000000000000000000000000000000000001";
    const MAIN_2: &str = "a000000000000000000000000000000000000002";
    const PR_1: &str = "b000000000000000000000000000000000000001";
    const PR_2: &str = "b000000000000000000000000000000000000002";
    let lib_patch = "@@ -8,3 +8,7 @@\n keep\n keep\n-old\n+changed\n+new\n+new\n+new\n+new\n";
    let util_patch = "@@ -5,1 +5,4 @@\n keep\n+a\n+b\n+c\n";
    let fake = FakeGithub::start().await;
    fake.add_pull(
        REPO,
        7,
        PR_2,
        vec![
            FakeFile::modified("src/lib.rs", lib_patch),
            FakeFile::modified("src/util.rs", util_patch),
        ],
    );
    fake.add_commit(
        REPO,
        7,
        PR_1,
        vec![FakeFile::modified("src/lib.rs", lib_patch)],
    );
    fake.add_commit(
        REPO,
        7,
        PR_2,
        vec![FakeFile::modified("src/util.rs", util_patch)],
    );
    let cfg = fake.app_config();
    let mut app = TestApp::spawn_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.upload_tokens = vec![format!("{REPO}={STATIC_TOKEN}").parse().unwrap()];
        a.github = (&cfg).into();
        a.comment_debounce = 0;
    })
    .await;
    let c = |sha, message, at| Commit {
        sha,
        message,
        at,
        email: "dev@acme.example",
        login: "dev",
        files: &[],
    };
    deliver(
        &app,
        "push",
        "m",
        &push(
            "refs/heads/main",
            ZERO,
            &[
                c(MAIN_1, "one", "2026-11-19T10:00:00Z"),
                c(MAIN_2, "two", "2026-11-19T11:00:00Z"),
            ],
        ),
    )
    .await;
    deliver(
        &app,
        "push",
        "b",
        &with_installation(push(
            "refs/heads/retry",
            MAIN_2,
            &[
                c(
                    PR_1,
                    "Retry\n\nCo-Authored-By: Claude <noreply@anthropic.com>",
                    "2026-11-20T09:00:00Z",
                ),
                c(PR_2, "Util", "2026-11-20T09:30:00Z"),
            ],
        )),
    )
    .await;
    deliver(&app, "workflow_run", "w", &json!({"action": "completed", "repository": {"full_name": REPO},
        "workflow_run": {"id": 900, "run_attempt": 1, "name": "ci", "head_sha": PR_2, "status": "completed",
            "conclusion": "failure", "updated_at": "2026-11-20T09:40:00Z"}})).await;
    app.applied(3).await;

    let tok = Some(STATIC_TOKEN);
    let base = lcov(&[
        ("src/lib.rs", &[1, 2, 3, 4, 5, 6, 7, 8, 9], &[10]),
        ("src/util.rs", &[1, 2, 3, 4, 5], &[]),
    ]);
    let (s, b) = upload(
        &app,
        tok,
        Some(&run_ctx(MAIN_2, "refs/heads/main", 800, 1, &["unit"])),
        &[
            ("lcov.info", &base),
            (
                "junit.xml",
                &junit(&[("retries", true), ("gives_up", true)]),
            ),
        ],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let head = lcov(&[
        (
            "src/lib.rs",
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 11],
            &[10, 12, 13, 14],
        ),
        ("src/util.rs", &[1, 2, 3, 4, 5, 6], &[7, 8]),
    ]);
    let (s, b) = upload(
        &app,
        tok,
        Some(&run_ctx(PR_2, "refs/pull/7/merge", 900, 1, &["unit"])),
        &[
            ("lcov.info", &head),
            (
                "junit.xml",
                &junit(&[("retries", true), ("gives_up", false)]),
            ),
        ],
    )
    .await;
    assert_eq!(s, 201, "{b}");

    deliver(
        &app,
        "pull_request",
        "pr",
        &with_installation(pull(
            "opened",
            7,
            PR_2,
            "retry",
            "2026-11-20T09:45:00Z",
            None,
        )),
    )
    .await;
    app.applied(4).await;
    until(&app, "coverage in the comment", || {
        fake.comments(REPO, 7)
            .first()
            .is_some_and(|c| c.body.contains("| Coverage |"))
    })
    .await;
    let body = fake.comments(REPO, 7)[0].body.clone();
    // Head 16 of 22 lines vs main 14 of 15; of the PR's 8 added lines 2 are covered. The
    // 5 lines of the commit only a trailer marks are not agent-written lines (no session
    // is linked): they are shown apart, and no agent patch coverage is claimed.
    assert!(
        body.contains(
            "| Coverage | 72.7% at head · -20.6 pp vs main `a000000` · patch 25.0% (2/8 lines) |"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "| Lines | +8 / −1 · 0 added by agents (0%) · 5 marked as agent-written, no telemetry |"
        ),
        "{body}"
    );
    assert!(
        body.contains("| Tests | 2 run · ❌ 1 failed (1 newly) · ✅ 1 passed |"),
        "{body}"
    );
    assert!(body.contains("| `src/lib.rs` | 10,12-14 |"), "{body}");
    let visible = body.split_once('\n').unwrap().1;
    super::common::assert_snapshot("publish__pr_comment_with_coverage", visible);
    app.stop().await;
}

/// `git commit --amend` with a reworded message, force-pushed: nothing but the change
/// itself ties the replacement to its original. Its patch (fetched for the report) has
/// the original's patch id, so it inherits the session that named the original
/// (`merged`), and the report still counts the session and the agent-assisted commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amended_commit_with_a_new_message_keeps_its_session_by_patch_id() {
    const AMENDED: &str = "d4db930c2085a6ae302a52617d434bcc2df322c5";
    let patch = || vec![FakeFile::modified("src/http/retry.ts", PATCH_CLAUDE)];
    let fake = FakeGithub::start().await;
    fake.add_pull(REPO, 9, CLAUDE_2, patch());
    fake.add_commit(REPO, 9, CLAUDE_2, patch());
    let mut app = app(&fake).await;
    send_otlp(&app, "claude-code-logs.json").await;
    let commit = |sha, message| Commit {
        sha,
        message,
        at: "2026-11-20T09:31:27Z",
        email: "dev@acme.example",
        login: "dev",
        files: &["src/http/retry.ts"],
    };
    deliver(
        &app,
        "push",
        "p1",
        &with_installation(push(
            "refs/heads/retry",
            ZERO,
            &[commit(CLAUDE_2, "Test backoff")],
        )),
    )
    .await;
    deliver(
        &app,
        "pull_request",
        "o1",
        &with_installation(pull(
            "opened",
            9,
            CLAUDE_2,
            "retry",
            "2026-11-20T10:00:00Z",
            None,
        )),
    )
    .await;
    app.applied(2).await;
    until(&app, "the first comment", || {
        fake.comments(REPO, 9).len() == 1
    })
    .await;

    // Amended and force-pushed: GitHub now lists only the replacement.
    fake.add_pull(REPO, 9, AMENDED, patch());
    fake.add_commit(REPO, 9, AMENDED, patch());
    let mut forced = with_installation(push(
        "refs/heads/retry",
        CLAUDE_2,
        &[commit(AMENDED, "Retry: test the backoff schedule")],
    ));
    forced["forced"] = json!(true);
    deliver(&app, "push", "p2", &forced).await;
    deliver(
        &app,
        "pull_request",
        "s1",
        &with_installation(pull(
            "synchronize",
            9,
            AMENDED,
            "retry",
            "2026-11-20T11:00:00Z",
            None,
        )),
    )
    .await;
    app.applied(4).await;
    // The report of the new head: its commit's patch fetched, and linked.
    until(&app, "the replacement to inherit the session", || {
        fake.comments(REPO, 9)[0].body.contains("`d4db930` merged")
    })
    .await;

    let (_, c) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{AMENDED}"))
        .await;
    let sessions = c["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{c}");
    assert_eq!(
        sessions[0]["session_key"],
        "82c3495f-998e-457a-875a-8643b934dd9c"
    );
    assert_eq!(sessions[0]["evidence"], "merged", "{c}");
    assert_eq!(sessions[0]["original"], CLAUDE_2, "{c}");
    assert_eq!(c["agent_assisted"], true);
    // The original keeps its own evidence.
    let (_, o) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{CLAUDE_2}"))
        .await;
    assert_eq!(o["sessions"][0]["evidence"], "event", "{o}");

    let (_, r) = app
        .get_json(&format!("/api/v1/repos/{REPO}/pulls/9/report?format=json"))
        .await;
    assert_eq!(r["commits"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["commits"][0]["sha"], AMENDED);
    assert_eq!(r["totals"]["sessions"], 1, "{r}");
    assert_eq!(r["totals"]["agent_commits"], 1, "{r}");
    app.stop().await;
}
