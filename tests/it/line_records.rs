//! Line records end to end: a git-ai note and an Agent Trace document uploaded through the
//! CI upload endpoint decide which added lines of their commits agents wrote, in the PR
//! report built from the fake GitHub's patches; a commit without records keeps the
//! commit-level rule.

use std::time::Duration;

use serde_json::{Value, json};

use super::ci_upload::{STATIC_TOKEN, run_ctx, upload};
use super::common::TestApp;
use super::reports::*;
use tracelink_dev::fake_github::{FakeFile, FakeGithub, INSTALLATION};

/// Claude's first commit: five lines, three of them the agent's (1, 2 and 4).
const PATCH_MIXED: &str = "@@ -0,0 +1,5 @@\n+pub fn agent_one() {}\n+pub fn agent_two() {}\n+// written by hand\n+pub fn agent_three() {}\n+// also by hand\n";
/// Claude's second commit, without records: all its lines count (the session is linked).
const PATCH_TEST: &str = "@@ -0,0 +1,2 @@\n+#[test]\n+fn agent_test() {}\n";

fn git_ai_note(sha: &str) -> Vec<u8> {
    format!(
        "git-ai-note {sha}\nsrc/lib.rs\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-2\n  s_c9883b05a2487d::t_a1b2c3d4e5f678 4\n  h_31dce776f88375 3,5\n---\n{}\n",
        json!({
            "schema_version": "authorship/3.0.0",
            "git_ai_version": "1.4.5",
            "base_commit_sha": sha,
            "prompts": {},
            "humans": {"h_31dce776f88375": {"author": "Dev <dev@acme.example>"}},
            "sessions": {"s_c9883b05a2487d": {"agent_id": {"tool": "claude", "id": "conv-1", "model": "claude-sonnet-4-5"}}}
        })
    )
    .into_bytes()
}

pub async fn until_comment(app: &TestApp, fake: &FakeGithub, what: &str) -> String {
    until_comment_on(app, fake, 7, what).await
}

/// Waits (on the publisher's signal) until the report comment on `number` says `what`.
async fn until_comment_on(app: &TestApp, fake: &FakeGithub, number: u64, what: &str) -> String {
    let mut published = app.server.as_ref().unwrap().reports_published.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(c) = fake.comments(REPO, number).first()
            && c.body.contains(what)
        {
            return c.body.clone();
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout(left, published.changed())
            .await
            .is_err()
        {
            panic!(
                "timed out waiting for {what:?}: {:?}",
                fake.comments(REPO, number).first().map(|c| c.body.clone())
            );
        }
    }
}

/// A commit by dev@acme.example touching one file.
fn commit<'a>(sha: &'a str, message: &'a str, at: &'a str, file: &'a &'a str) -> Commit<'a> {
    Commit {
        sha,
        message,
        at,
        email: "dev@acme.example",
        login: "dev",
        files: std::slice::from_ref(file),
    }
}

/// A pull request (#7) of two commits by Claude Code's session, the first mixing agent
/// and hand-written lines, pushed and with the session's telemetry in; no PR event yet.
async fn mixed_pull() -> (FakeGithub, TestApp) {
    mixed_pull_with(|_| {}).await
}

/// [`mixed_pull`] with more settings.
pub async fn mixed_pull_with(
    configure: impl FnOnce(&mut tracelink::config::ServeArgs) + Send + 'static,
) -> (FakeGithub, TestApp) {
    let fake = FakeGithub::start().await;
    fake.add_pull(
        REPO,
        7,
        CLAUDE_2,
        vec![
            FakeFile::modified("src/lib.rs", PATCH_MIXED),
            FakeFile::modified("tests/lib_test.rs", PATCH_TEST),
        ],
    );
    fake.add_commit(
        REPO,
        7,
        CLAUDE_1,
        vec![FakeFile::modified("src/lib.rs", PATCH_MIXED)],
    );
    fake.add_commit(
        REPO,
        7,
        CLAUDE_2,
        vec![FakeFile::modified("tests/lib_test.rs", PATCH_TEST)],
    );
    let cfg = fake.app_config();
    let app = TestApp::spawn_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.upload_tokens = vec![format!("{REPO}={STATIC_TOKEN}").parse().unwrap()];
        a.github = (&cfg).into();
        a.comment_debounce = 0;
        configure(a);
    })
    .await;
    let mut push = push(
        "refs/heads/retry",
        ZERO,
        &[
            commit(
                CLAUDE_1,
                "Add the agent functions",
                "2026-11-20T09:13:48Z",
                &"src/lib.rs",
            ),
            commit(
                CLAUDE_2,
                "Test them",
                "2026-11-20T09:31:27Z",
                &"tests/lib_test.rs",
            ),
        ],
    );
    push["installation"] = json!({"id": INSTALLATION});
    deliver(&app, "push", "p1", &push).await;
    send_otlp(&app, "claude-code-logs.json").await;

    (fake, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_ai_note_gives_the_exact_agent_lines_of_a_mixed_commit() {
    let (fake, mut app) = mixed_pull().await;
    // The Action's upload: the note of the first commit, behind its `git-ai-note` line.
    let note = git_ai_note(CLAUDE_1);
    let ctx = run_ctx(CLAUDE_2, "refs/pull/7/merge", 900, 1, &[]);
    let (s, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&ctx),
        &[(&format!("git-ai/{CLAUDE_1}.txt"), &note)],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["files"][0]["format"], "git-ai");
    assert_eq!(
        b["files"][0]["line_records"],
        json!({"commits": 1, "files": 1, "agent_lines": 3})
    );
    assert!(
        b["summary"]
            .as_str()
            .unwrap()
            .contains("| git-ai | agent-written lines: 3 in 1 files of 1 commits |"),
        "{b}"
    );
    // Sent again: nothing new.
    let (s, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&ctx),
        &[(&format!("git-ai/{CLAUDE_1}.txt"), &note)],
    )
    .await;
    assert_eq!((s, &b["already_stored"]), (200, &json!(1)), "{b}");
    assert_eq!(app.db().row_count("line_records").await.unwrap(), 1);

    let mut opened = pull("opened", 7, CLAUDE_2, "retry", "2026-11-20T09:45:00Z", None);
    opened["installation"] = json!({"id": INSTALLATION});
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(2).await;

    // 7 added lines: 3 of the mixed commit's 5 (its line records), and both of the
    // linked commit without records (the commit-level rule). Without the note all 7
    // would count.
    let body = until_comment(
        &app,
        &fake,
        "| Lines | +7 / −0 · 5 added by agents (71%) · 3 by line records (1 commit) |",
    )
    .await;
    assert!(
        body.contains("3 of 5 added lines by agents (line records)"),
        "{body}"
    );

    app.linked_up().await;
    let (status, report) = app
        .get_json(&format!("/api/v1/repos/{REPO}/pulls/7/report?format=json"))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["lines"]["added"], 7);
    assert_eq!(report["lines"]["agent_added"], 5);
    assert_eq!(
        report["lines"]["line_records"],
        json!({"commits": 1, "agent_added": 3})
    );
    let commits = report["commits"].as_array().unwrap();
    let mixed = commits.iter().find(|c| c["sha"] == CLAUDE_1).unwrap();
    assert_eq!(
        mixed["line_records"],
        json!({"evidence": "lines", "added": 5, "agent_added": 3, "agents": ["claude"]})
    );
    let plain = commits.iter().find(|c| c["sha"] == CLAUDE_2).unwrap();
    assert_eq!(plain.get("line_records"), None, "{plain}");
    assert_eq!(plain["agent_assisted"], Value::Bool(true));

    // Squash-merged: the squash commit on main has no note; it takes the lines its
    // pull request's commits' records name, matched in the pull request's diff.
    let mut main = super::reports::push(
        "refs/heads/main",
        ZERO,
        &[commit(
            MERGE,
            "Agent functions (#7)",
            "2026-11-20T12:00:00Z",
            &"src/lib.rs",
        )],
    );
    main["installation"] = json!({"id": INSTALLATION});
    deliver(&app, "push", "p-main", &main).await;
    let mut merged = pull(
        "closed",
        7,
        CLAUDE_2,
        "retry",
        "2026-11-20T12:00:00Z",
        Some(MERGE),
    );
    merged["installation"] = json!({"id": INSTALLATION});
    deliver(&app, "pull_request", "pr-merged", &merged).await;
    app.applied(4).await;
    let (status, squash) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{MERGE}"))
        .await;
    assert_eq!(status, 200, "{squash}");
    assert_eq!(
        squash["line_records"],
        json!({"evidence": "lines", "added": 7, "agent_added": 3, "agents": ["claude"],
               "carried_from": [CLAUDE_1]})
    );
    let (_, own) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{CLAUDE_1}"))
        .await;
    assert_eq!(
        own["line_records"],
        json!({"evidence": "lines", "added": 5, "agent_added": 3, "agents": ["claude"]})
    );
    let (_, none) = app
        .get_json(&format!("/api/v1/repos/{REPO}/commits/{CLAUDE_2}"))
        .await;
    assert_eq!(none.get("line_records"), None, "{none}");
    app.stop().await;
}

#[tokio::test]
async fn agent_trace_documents_are_stored_and_bad_ones_refused() {
    let issuer = super::ci_upload::fake_issuer().await;
    let mut app = super::ci_upload::app_with_issuer(&issuer).await;
    let ctx = run_ctx(CLAUDE_2, "refs/heads/main", 901, 1, &[]);
    let record = |sha: &str| {
        json!({"version": "0.1.0", "id": "550e8400-e29b-41d4-a716-446655440000",
            "timestamp": "2026-11-20T09:00:00Z", "vcs": {"type": "git", "revision": sha},
            "tool": {"name": "cursor", "version": "2.4.0"},
            "files": [{"path": "src/lib.rs", "conversations": [{
                "url": "https://api.cursor.com/v1/conversations/1",
                "contributor": {"type": "ai", "model_id": "anthropic/claude-opus-4-5-20251101"},
                "ranges": [{"start_line": 1, "end_line": 2}, {"start_line": 4, "end_line": 4}]}]}]})
        .to_string()
    };
    let jsonl = format!("{}\n{}\n", record(CLAUDE_1), record(CLAUDE_2));
    let (s, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&ctx),
        &[(".agent-trace/traces.jsonl", jsonl.as_bytes())],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["files"][0]["format"], "agent-trace");
    assert_eq!(
        b["files"][0]["line_records"],
        json!({"commits": 2, "files": 2, "agent_lines": 6})
    );
    assert_eq!(app.db().row_count("line_records").await.unwrap(), 2);
    // Line records are not coverage: no coverage at that commit.
    let pool = &app.server.as_ref().unwrap().db;
    assert!(
        pool.uploads(REPO, CLAUDE_2, false)
            .await
            .unwrap()
            .is_empty(),
        "line records are not coverage uploads"
    );

    // A broken document: 422 naming the file, format and line; nothing stored.
    let bad = format!(
        "{}\n{{\"version\": \"0.1.0\", \"files\": 3}}\n",
        record(CLAUDE_1)
    );
    let (s, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&run_ctx(CLAUDE_2, "refs/heads/main", 902, 1, &[])),
        &[("traces.jsonl", bad.as_bytes())],
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["format"], "agent-trace");
    assert_eq!(b["line"], 2);
    let bad_note = format!("git-ai-note {CLAUDE_1}\nsrc/lib.rs\n  k 0-3\n---\n{{}}\n");
    let (s, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&run_ctx(CLAUDE_2, "refs/heads/main", 903, 1, &[])),
        &[("note.txt", bad_note.as_bytes())],
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .starts_with("note.txt: git-ai line 3: line numbers start at 1"),
        "{b}"
    );
    assert_eq!(app.db().row_count("line_records").await.unwrap(), 2);
    app.stop().await;
}

/// Records follow a commit to its copies: amended and force-pushed, the replacement (no
/// note of its own) takes the lines its original's note names, by file and content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amended_copy_takes_its_originals_line_records() {
    const AMENDED: &str = "d4db930c2085a6ae302a52617d434bcc2df322c5";
    let patch = || vec![FakeFile::modified("src/lib.rs", PATCH_MIXED)];
    let fake = FakeGithub::start().await;
    fake.add_pull(REPO, 9, CLAUDE_2, patch());
    fake.add_commit(REPO, 9, CLAUDE_2, patch());
    let cfg = fake.app_config();
    let mut app = TestApp::spawn_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.upload_tokens = vec![format!("{REPO}={STATIC_TOKEN}").parse().unwrap()];
        a.github = (&cfg).into();
        a.comment_debounce = 0;
    })
    .await;
    send_otlp(&app, "claude-code-logs.json").await;
    let (s, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&run_ctx(CLAUDE_2, "refs/pull/9/merge", 900, 1, &[])),
        &[(&format!("git-ai/{CLAUDE_2}.txt"), &git_ai_note(CLAUDE_2))],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let commit = |sha, message| Commit {
        sha,
        message,
        at: "2026-11-20T09:31:27Z",
        email: "dev@acme.example",
        login: "dev",
        files: &["src/lib.rs"],
    };
    let with_installation = |mut v: Value| {
        v["installation"] = json!({"id": INSTALLATION});
        v
    };
    deliver(
        &app,
        "push",
        "p1",
        &with_installation(push(
            "refs/heads/retry",
            ZERO,
            &[commit(CLAUDE_2, "Agent functions")],
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
    let first = until_comment_on(
        &app,
        &fake,
        9,
        "3 of 5 added lines by agents (line records)",
    )
    .await;
    assert!(
        first.contains("| Lines | +5 / −0 · 3 added by agents (60%)"),
        "{first}"
    );

    // Amended and force-pushed: GitHub now lists only the replacement, without a note.
    fake.add_pull(REPO, 9, AMENDED, patch());
    fake.add_commit(REPO, 9, AMENDED, patch());
    let mut forced = with_installation(push(
        "refs/heads/retry",
        CLAUDE_2,
        &[commit(AMENDED, "Agent functions, reworded")],
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
    let body = until_comment_on(
        &app,
        &fake,
        9,
        "3 of 5 added lines by agents (line records of c4db930)",
    )
    .await;
    assert!(
        body.contains(
            "| Lines | +5 / −0 · 3 added by agents (60%) · 3 by line records (1 commit) |"
        ),
        "{body}"
    );
    app.linked_up().await;
    let (_, r) = app
        .get_json(&format!("/api/v1/repos/{REPO}/pulls/9/report?format=json"))
        .await;
    assert_eq!(r["commits"][0]["sha"], AMENDED, "{r}");
    assert_eq!(
        r["commits"][0]["line_records"],
        json!({"evidence": "lines", "added": 5, "agent_added": 3, "agents": ["claude"], "carried_from": [CLAUDE_2]})
    );
    assert_eq!(r["lines"]["agent_added"], 3, "{r}");
    app.stop().await;
}

/// Line records uploaded after the report was published change it: the upload queues
/// the report again, with no other event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_uploaded_after_the_report_updates_it() {
    let (fake, mut app) = mixed_pull().await;
    let mut opened = pull("opened", 7, CLAUDE_2, "retry", "2026-11-20T09:45:00Z", None);
    opened["installation"] = json!({"id": INSTALLATION});
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(2).await;
    let before = until_comment(&app, &fake, "| Lines | +7 / −0 · 7 added by agents").await;
    assert!(!before.contains("line records"), "{before}");

    let ctx = run_ctx(CLAUDE_2, "refs/pull/7/merge", 901, 1, &[]);
    let (s, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&ctx),
        &[(&format!("git-ai/{CLAUDE_1}.txt"), &git_ai_note(CLAUDE_1))],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    until_comment(
        &app,
        &fake,
        "| Lines | +7 / −0 · 5 added by agents (71%) · 3 by line records (1 commit) |",
    )
    .await;
    assert_eq!(fake.comments(REPO, 7).len(), 1, "edited, not posted again");
    app.stop().await;
}
