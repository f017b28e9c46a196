//! What a public pull request's comment shows of people and cost: logins (never an
//! email), the total cost but not each person's session cost; private repositories show
//! the per-session cost; `--comment-people none` and `--comment-cost none` show neither.

use serde_json::json;

use super::common::TestApp;
use super::line_records::{mixed_pull_with, until_comment};
use super::reports::{deliver, pull};
use tracelink::report::markdown::{CommentPeople, CostShown};
use tracelink_dev::fake_github::{FakeGithub, INSTALLATION};

/// Opens pull request 7 in a repository of this visibility and returns its comment.
async fn comment(app: &TestApp, fake: &FakeGithub, private: bool, what: &str) -> String {
    let mut opened = pull(
        "opened",
        7,
        super::reports::CLAUDE_2,
        "retry",
        "2026-11-20T09:45:00Z",
        None,
    );
    opened["installation"] = json!({"id": INSTALLATION});
    opened["repository"]["private"] = json!(private);
    opened["repository"]["id"] = json!(1296269);
    deliver(app, "pull_request", "pr", &opened).await;
    app.applied(2).await;
    until_comment(app, fake, what).await
}

/// The header of the comment's sessions table.
fn sessions_header(body: &str) -> &str {
    body.lines()
        .find(|l| l.starts_with("| session |"))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_repository_shows_logins_and_the_total_cost_only() {
    let (fake, mut app) = mixed_pull_with(|_| {}).await;
    let body = comment(&app, &fake, false, "| Cost | $0.37 |").await;
    assert!(body.contains("| Agent sessions | 1 by dev"), "{body}");
    assert_eq!(
        sessions_header(&body),
        "| session | agent | user | models | tokens in/out | evidence |"
    );
    assert!(
        !body.contains("dev@acme.example") && !body.contains('@'),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_shows_each_sessions_cost() {
    let (fake, mut app) = mixed_pull_with(|_| {}).await;
    let body = comment(&app, &fake, true, "| Cost | $0.37 |").await;
    assert_eq!(
        sessions_header(&body),
        "| session | agent | user | models | tokens in/out | cost | evidence |"
    );
    assert!(!body.contains('@'), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_can_name_no_one_and_show_no_cost() {
    let (fake, mut app) = mixed_pull_with(|a| {
        a.comment_people = CommentPeople::None;
        a.comment_cost = Some(CostShown::None);
    })
    .await;
    let body = comment(&app, &fake, true, "| Agent sessions | 1 |").await;
    assert!(!body.contains('$'), "{body}");
    assert!(!body.contains("| Cost |"), "{body}");
    assert!(
        !body.contains(" dev ") && !body.contains("by dev"),
        "{body}"
    );
    assert_eq!(
        sessions_header(&body),
        "| session | agent | models | tokens in/out | evidence |"
    );
    assert!(body.contains("| commit | subject | agents |"), "{body}");
    // The API (a read token's holder) still shows everything.
    let (_, report) = app
        .get_json(&format!(
            "/api/v1/repos/{}/pulls/7/report?format=json",
            super::reports::REPO
        ))
        .await;
    assert!(report["totals"]["cost_usd"].as_f64().is_some(), "{report}");
    app.stop().await;
}
