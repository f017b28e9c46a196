//! A pull request's commits are its own, on the histories GitHub produces: a fork's PR
//! whose head branch shares the base repository's branch name, a branch name reused after
//! a merge, and a force-push that drops commits. Without the App, the list is the head's
//! ancestry back to the base; where that is unknown, only the head, and the report says so.

use serde_json::{Value, json};

use super::common::TestApp;
use super::reports::{REPO, SECRET, ZERO, deliver};

pub(crate) const B: &str = "b000000000000000000000000000000000000000";

pub(crate) fn push(branch: &str, before: &str, forced: bool, commits: &[(&str, &str)]) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"), "before": before, "forced": forced,
        "after": commits.last().map_or(before, |c| c.0),
        "repository": {"full_name": REPO}, "installation": {"id": 42},
        "commits": commits.iter().map(|(sha, at)| json!({
            "id": sha, "message": format!("commit {}", &sha[..4]), "timestamp": at,
            "author": {"name": "dev", "email": "dev@acme.example", "username": "dev"},
            "committer": {"name": "dev", "email": "dev@acme.example", "username": "dev"},
            "added": [], "modified": ["src/a.rs"], "removed": []
        })).collect::<Vec<_>>()
    })
}

pub(crate) fn pull(number: i64, head_repo: &str, head_ref: &str, head: &str) -> Value {
    json!({
        "action": "opened", "repository": {"full_name": REPO}, "installation": {"id": 42},
        "pull_request": {
            "number": number, "title": "Change", "state": "open", "draft": false,
            "merged": false, "merge_commit_sha": null, "user": {"login": "dev"},
            "head": {"ref": head_ref, "sha": head, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "sha": B, "repo": {"full_name": REPO}},
            "created_at": "2026-11-20T12:00:00Z", "updated_at": "2026-11-20T12:00:00Z"
        }
    })
}

pub(crate) async fn commits_of(app: &TestApp, number: i64) -> (Vec<String>, Value) {
    let (status, r) = app
        .get_json(&format!(
            "/api/v1/repos/{REPO}/pulls/{number}/report?format=json"
        ))
        .await;
    assert_eq!(status, 200, "{r}");
    let shas = r["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap().to_string())
        .collect();
    (shas, r["commit_list"].clone())
}

/// In four arrival orders (as received, reversed, two shuffles): the same commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_requests_commits_are_its_own() {
    let m1 = "1100000000000000000000000000000000000001";
    let m2 = "1200000000000000000000000000000000000002";
    let x1 = "a100000000000000000000000000000000000001";
    let y1 = "a200000000000000000000000000000000000002";
    let f1 = "f100000000000000000000000000000000000001";
    let f2 = "f200000000000000000000000000000000000002";
    let f3 = "f300000000000000000000000000000000000003";
    let fork_head = "e100000000000000000000000000000000000001";
    let deliveries = [
        (
            "push",
            push("main", ZERO, false, &[(B, "2026-11-20T08:00:00Z")]),
        ),
        (
            "push",
            push(
                "main",
                B,
                false,
                &[(m1, "2026-11-20T08:10:00Z"), (m2, "2026-11-20T08:20:00Z")],
            ),
        ),
        // `fix`, merged and deleted, then recreated from the base for another PR.
        (
            "push",
            push("fix", B, false, &[(x1, "2026-11-20T09:00:00Z")]),
        ),
        ("push", push("fix", x1, false, &[])),
        (
            "push",
            push("fix", B, false, &[(y1, "2026-11-20T10:00:00Z")]),
        ),
        // `feat`: two commits, then a force-push that replaces both with one.
        (
            "push",
            push(
                "feat",
                B,
                false,
                &[(f1, "2026-11-20T09:30:00Z"), (f2, "2026-11-20T09:40:00Z")],
            ),
        ),
        (
            "push",
            push("feat", f2, true, &[(f3, "2026-11-20T11:00:00Z")]),
        ),
        ("pull_request", pull(30, REPO, "fix", y1)),
        ("pull_request", pull(31, REPO, "feat", f3)),
        // A fork's PR from its `main`: its pushes never reach this repository.
        (
            "pull_request",
            pull(32, "contributor/widgets", "main", fork_head),
        ),
    ];
    let n = deliveries.len();
    for order in [
        (0..n).collect::<Vec<_>>(),
        (0..n).rev().collect(),
        vec![7, 2, 9, 0, 5, 1, 8, 3, 6, 4],
        vec![9, 8, 4, 6, 1, 3, 0, 7, 5, 2],
    ] {
        let mut app =
            TestApp::spawn_with(|a| a.webhook_secrets = vec![SECRET.parse().unwrap()]).await;
        for &i in &order {
            let (event, body) = &deliveries[i];
            deliver(&app, event, &format!("h{i}"), body).await;
        }
        app.applied(n as u64).await;

        let (fix, source) = commits_of(&app, 30).await;
        assert_eq!(
            fix,
            vec![y1],
            "the reused branch's old commit is not this PR's (order {order:?})"
        );
        assert_eq!(source, "ancestry");
        let (feat, _) = commits_of(&app, 31).await;
        assert_eq!(feat, vec![f3], "what the force-push replaced left the PR");
        let (fork, source) = commits_of(&app, 32).await;
        assert_eq!(fork, vec![fork_head], "never the base repository's main");
        assert_eq!(source, "head_only");
        let (_, md) = {
            let md = app
                .client
                .get(format!(
                    "{}/api/v1/repos/{REPO}/pulls/32/report?format=markdown",
                    app.http
                ))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            ((), md)
        };
        assert!(md.contains("only the head is known"), "{md}");
        // The commit API agrees: main's commits belong to no PR, y1 to #30 only.
        for (sha, prs) in [
            (m1, json!([])),
            (y1, json!([30])),
            (x1, json!([])),
            (f1, json!([])),
        ] {
            let (_, c) = app
                .get_json(&format!("/api/v1/repos/{REPO}/commits/{sha}"))
                .await;
            assert_eq!(c["pull_requests"], prs, "{sha}: {c}");
        }
        app.stop().await;
    }
}
