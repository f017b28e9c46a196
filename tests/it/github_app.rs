//! The GitHub App client, the real octocrab underneath, against the fake GitHub: one
//! report comment per PR kept in place, one check run per head commit, PR files and
//! commits with their patches, installation tokens cached, GitHub's errors and rate
//! limits retried within bounds or not at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracelink::github::app::{
    AppConfig, CheckOutcome, CommentOutcome, FilePatch, GithubApp, GithubError,
};

use tracelink::report::markdown::{MARKER as REPORT_MARKER, carries_personal_data};
use tracelink_dev::fake_github::{APP_ID, FakeFile, FakeGithub, INSTALLATION, SLUG};

const REPO: &str = "acme/widgets";
const PR: u64 = 7;
const HEAD: &str = "3dca65fa3e8d4b3da3f3d056c59aee1c50f41390";
const MARKER: &str = "<!-- tracelink:pr-report -->";

async fn github() -> (FakeGithub, GithubApp) {
    let fake = FakeGithub::start().await;
    fake.add_pull(
        REPO,
        PR,
        HEAD,
        vec![FakeFile::modified("src/lib.rs", "@@ -1 +1 @@\n-a\n+b")],
    );
    let app = GithubApp::new(&fake.app_config()).expect("app client");
    (fake, app)
}

fn report(text: &str) -> String {
    format!("{MARKER}\n## tracelink\n{text}")
}

#[tokio::test]
async fn report_comment_is_created_once_and_then_left_alone() {
    let (fake, app) = github().await;

    let first = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            MARKER,
            &report("2 sessions"),
            &|_| false,
        )
        .await
        .unwrap();
    let CommentOutcome::Created { id } = first else {
        panic!("{first:?}");
    };
    let again = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            MARKER,
            &report("2 sessions"),
            &|_| false,
        )
        .await
        .unwrap();

    assert_eq!(again, CommentOutcome::Unchanged { id });
    let comments = fake.comments(REPO, PR);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].login, format!("{SLUG}[bot]"));
    assert_eq!(comments[0].body, report("2 sessions"));
    assert_eq!(fake.writes().len(), 1, "the unchanged report wrote nothing");
}

#[tokio::test]
async fn a_changed_report_edits_the_same_comment_in_place() {
    let (fake, app) = github().await;
    let CommentOutcome::Created { id } = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            MARKER,
            &report("2 sessions"),
            &|_| false,
        )
        .await
        .unwrap()
    else {
        panic!("not created");
    };

    let outcome = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            MARKER,
            &report("3 sessions, 1 deploy"),
            &|_| false,
        )
        .await
        .unwrap();

    assert_eq!(outcome, CommentOutcome::Updated { id });
    let comments = fake.comments(REPO, PR);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, report("3 sessions, 1 deploy"));
    let writes: Vec<_> = fake
        .writes()
        .into_iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert_eq!(
        writes,
        [
            format!("POST /repos/{REPO}/issues/{PR}/comments"),
            format!("PATCH /repos/{REPO}/issues/comments/{id}"),
        ]
    );
}

/// A comment an older version wrote with the whole report (emails, per-session cost) in
/// its marker is deleted and posted anew: an edit would keep it in GitHub's history.
#[tokio::test]
async fn a_comment_holding_personal_data_is_deleted_and_posted_again() {
    let (fake, app) = github().await;
    let old = format!(
        "{REPORT_MARKER} {{\"repository\":\"{REPO}\",\"sessions\":[{{\"user\":\"dev@acme.example\",\"cost_usd\":1.5}}]}} -->\n## tracelink\nold"
    );
    let theirs = fake.add_comment(REPO, PR, &format!("{SLUG}[bot]"), "Bot", &old);
    let new = format!(
        "{REPORT_MARKER} {{\"digest\":\"ab\",\"number\":{PR},\"repository\":\"{REPO}\"}} -->\nnew"
    );

    let outcome = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            REPORT_MARKER,
            &new,
            &carries_personal_data,
        )
        .await
        .unwrap();
    let CommentOutcome::Replaced { old: gone, id } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(gone, theirs);
    let comments = fake.comments(REPO, PR);
    assert_eq!(comments.len(), 1);
    assert_eq!(
        (comments[0].id, comments[0].body.as_str()),
        (id, new.as_str())
    );
    assert!(!comments[0].body.contains('@'));
    // Written once in the new form: edited from then on, never replaced again.
    let again = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            REPORT_MARKER,
            &format!("{new}!"),
            &carries_personal_data,
        )
        .await
        .unwrap();
    assert_eq!(again, CommentOutcome::Updated { id });
}

#[tokio::test]
async fn someone_elses_comment_quoting_the_marker_is_not_ours() {
    let (fake, app) = github().await;
    let human = fake.add_comment(REPO, PR, "mallory", "User", &report("fake numbers"));
    let other_bot = fake.add_comment(REPO, PR, "other-app[bot]", "Bot", &report("theirs"));
    let impostor = fake.add_comment(REPO, PR, SLUG, "User", &report("a user named like us"));

    let outcome = app
        .upsert_comment(INSTALLATION, REPO, PR, MARKER, &report("ours"), &|_| false)
        .await
        .unwrap();

    let CommentOutcome::Created { id } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(![human, other_bot, impostor].contains(&id));
    let bodies: Vec<_> = fake
        .comments(REPO, PR)
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(
        bodies,
        [
            report("fake numbers"),
            report("theirs"),
            report("a user named like us"),
            report("ours")
        ]
    );
}

#[tokio::test]
async fn our_comment_is_found_on_the_second_page() {
    let (fake, app) = github().await;
    for i in 0..150 {
        fake.add_comment(REPO, PR, "octocat", "User", &format!("comment {i}"));
    }
    let ours = fake.add_comment(REPO, PR, &format!("{SLUG}[bot]"), "Bot", &report("old"));
    fake.add_comment(REPO, PR, "octocat", "User", "after the report");

    let outcome = app
        .upsert_comment(INSTALLATION, REPO, PR, MARKER, &report("new"), &|_| false)
        .await
        .unwrap();

    assert_eq!(outcome, CommentOutcome::Updated { id: ours });
    let requests = fake.requests().await;
    let list = format!("GET /repos/{REPO}/issues/{PR}/comments");
    let pages: Vec<_> = requests.iter().filter(|r| r.starts_with(&list)).collect();
    assert_eq!(pages.len(), 2, "{requests:#?}");
    assert!(pages[1].contains("page=2"), "{pages:?}");
    assert_eq!(fake.comments(REPO, PR).len(), 152, "no new comment");
    assert_eq!(fake.comments(REPO, PR)[150].body, report("new"));
}

#[tokio::test]
async fn check_run_is_created_then_updated_in_place() {
    let (fake, app) = github().await;
    // Another App's run of the same name on the same commit is not ours to touch.
    let theirs = fake.add_check_run(REPO, 1, HEAD, "tracelink", "someone else's");

    let created = app
        .upsert_check_run(
            INSTALLATION,
            REPO,
            HEAD,
            "tracelink",
            "2 sessions",
            "**2** sessions",
            "neutral",
        )
        .await
        .unwrap();
    let CheckOutcome::Created { id } = created else {
        panic!("{created:?}");
    };
    assert_ne!(id, theirs);
    let same = app
        .upsert_check_run(
            INSTALLATION,
            REPO,
            HEAD,
            "tracelink",
            "2 sessions",
            "**2** sessions",
            "neutral",
        )
        .await
        .unwrap();
    let updated = app
        .upsert_check_run(
            INSTALLATION,
            REPO,
            HEAD,
            "tracelink",
            "1 incident",
            "**1** incident",
            "failure",
        )
        .await
        .unwrap();

    assert_eq!(same, CheckOutcome::Unchanged { id });
    assert_eq!(updated, CheckOutcome::Updated { id });
    let ours: Vec<_> = fake
        .check_runs(REPO)
        .into_iter()
        .filter(|r| r.app_id == APP_ID)
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].id, id);
    assert_eq!(ours[0].status, "completed");
    assert_eq!(ours[0].conclusion.as_deref(), Some("failure"));
    assert_eq!(ours[0].title.as_deref(), Some("1 incident"));
    assert_eq!(ours[0].summary.as_deref(), Some("**1** incident"));
    assert_eq!(fake.writes().len(), 2, "create and one update");
    let theirs_now = fake
        .check_runs(REPO)
        .into_iter()
        .find(|r| r.id == theirs)
        .unwrap();
    assert_eq!(theirs_now.summary.as_deref(), Some("someone else's"));
}

#[tokio::test]
async fn a_bad_conclusion_is_refused_before_any_request() {
    let (fake, app) = github().await;
    let err = app
        .upsert_check_run(INSTALLATION, REPO, HEAD, "tracelink", "t", "s", "great")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("\"great\" is not a check run conclusion"),
        "{err}"
    );
    assert!(fake.writes().is_empty());
}

#[tokio::test]
async fn pr_files_commits_and_commit_files_come_with_their_patches() {
    let fake = FakeGithub::start().await;
    let mut files: Vec<FakeFile> = (0..130)
        .map(|i| {
            FakeFile::modified(
                &format!("src/m{i:03}.rs"),
                &format!("@@ -1 +1,2 @@\n a\n+line {i}"),
            )
        })
        .collect();
    files.push(FakeFile::binary("logo.png"));
    fake.add_pull(REPO, PR, HEAD, files.clone());
    let shas = [
        "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        "b1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        HEAD,
    ];
    for sha in shas {
        fake.add_commit(
            REPO,
            PR,
            sha,
            vec![FakeFile::modified(
                "README.md",
                &format!("@@ -1 +1 @@\n-old\n+{sha}"),
            )],
        );
    }
    let app = GithubApp::new(&fake.app_config()).unwrap();

    let got = app.pull_files(INSTALLATION, REPO, PR).await.unwrap();
    let commits = app.pull_commits(INSTALLATION, REPO, PR).await.unwrap();
    let first = app.commit_files(INSTALLATION, REPO, shas[0]).await.unwrap();

    let want: Vec<FilePatch> = files
        .iter()
        .map(|f| FilePatch {
            filename: f.filename.clone(),
            status: f.status.clone(),
            additions: f.additions,
            deletions: f.deletions,
            patch: f.patch.clone(),
        })
        .collect();
    assert_eq!(
        got, want,
        "all 131 files over two pages, the binary one without a patch"
    );
    assert_eq!(got[7].patch.as_deref(), Some("@@ -1 +1,2 @@\n a\n+line 7"));
    assert_eq!(got[7].additions, 1);
    assert_eq!(commits, shas, "oldest first");
    assert_eq!(
        first,
        [FilePatch {
            filename: "README.md".into(),
            status: "modified".into(),
            additions: 1,
            deletions: 1,
            patch: Some(format!("@@ -1 +1 @@\n-old\n+{}", shas[0])),
        }]
    );
}

#[tokio::test]
async fn server_errors_are_retried_transparently() {
    let (fake, app) = github().await;
    let path = format!("/repos/{REPO}/pulls/{PR}/files");
    fake.fail_next("GET", &path, 502, 2).await;

    let files = app.pull_files(INSTALLATION, REPO, PR).await.unwrap();

    assert_eq!(files.len(), 1);
    assert_eq!(fake.requests_to("GET", &path).await, 3);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let (fake, app) = github().await;
    let path = format!("/repos/{REPO}/pulls/{PR}/files");
    fake.fail_next("GET", &path, 503, 100).await;

    let err = app.pull_files(INSTALLATION, REPO, PR).await.unwrap_err();

    let msg = err.to_string();
    assert!(
        msg.contains(&format!("GET {path}")) && msg.contains("503"),
        "{msg}"
    );
    assert!(msg.contains("after 4 attempt(s)"), "{msg}");
    assert_eq!(fake.requests_to("GET", &path).await, 4);
}

#[tokio::test]
async fn a_secondary_rate_limit_waits_as_long_as_github_asks() {
    let (fake, app) = github().await;
    let path = format!("/repos/{REPO}/issues/{PR}/comments");
    fake.rate_limit_next("POST", &path, 1, 1).await;

    let start = Instant::now();
    let outcome = app
        .upsert_comment(INSTALLATION, REPO, PR, MARKER, &report("x"), &|_| false)
        .await
        .unwrap();

    assert!(
        matches!(outcome, CommentOutcome::Created { .. }),
        "{outcome:?}"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fake.requests_to("POST", &path).await, 2);
    assert_eq!(fake.comments(REPO, PR).len(), 1);
}

#[tokio::test]
async fn an_exhausted_rate_limit_waits_for_the_reset() {
    let (fake, app) = github().await;
    let path = format!("/repos/{REPO}/pulls/{PR}/commits");
    fake.exhaust_rate_limit_next("GET", &path, 0, 1).await;

    let start = Instant::now();
    app.pull_commits(INSTALLATION, REPO, PR).await.unwrap();

    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fake.requests_to("GET", &path).await, 2);
}

#[tokio::test]
async fn a_rate_limit_longer_than_a_minute_fails_at_once() {
    let (fake, app) = github().await;
    let path = format!("/repos/{REPO}/pulls/{PR}/files");
    fake.rate_limit_next("GET", &path, 3600, 1).await;

    let start = Instant::now();
    let err = app.pull_files(INSTALLATION, REPO, PR).await.unwrap_err();

    assert!(start.elapsed() < Duration::from_secs(5));
    match err.downcast_ref::<GithubError>() {
        Some(GithubError::RateLimited {
            status: 403,
            wait_secs: 3600,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&format!("GET {path}")), "{err}");
}

#[tokio::test]
async fn a_not_found_is_not_retried_and_names_the_path() {
    let (fake, app) = github().await;

    let err = app.pull_files(INSTALLATION, REPO, 404).await.unwrap_err();

    let path = format!("/repos/{REPO}/pulls/404/files");
    let msg = err.to_string();
    assert!(msg.contains(&format!("GET {path}")), "{msg}");
    assert!(msg.contains("404") && msg.contains("Not Found"), "{msg}");
    assert_eq!(
        err.downcast_ref::<GithubError>()
            .and_then(GithubError::status),
        Some(404)
    );
    assert_eq!(fake.requests_to("GET", &path).await, 1, "not retried");
}

#[tokio::test]
async fn a_permission_403_is_not_retried() {
    let (fake, app) = github().await;
    // A 403 that is no rate limit is a permission problem: it comes back at once.
    app.upsert_comment(INSTALLATION, REPO, PR, MARKER, &report("a"), &|_| false)
        .await
        .unwrap();
    fake.fail_next(
        "PATCH",
        r"^/repos/acme/widgets/issues/comments/\d+$",
        403,
        5,
    )
    .await;

    let err = app
        .upsert_comment(INSTALLATION, REPO, PR, MARKER, &report("b"), &|_| false)
        .await
        .unwrap_err();

    assert!(err.to_string().contains("403"), "{err}");
    let patches = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.starts_with("PATCH"))
        .count();
    assert_eq!(patches, 1, "not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installation_token_is_fetched_once_for_many_calls() {
    let (fake, app) = github().await;
    let app = Arc::new(app);

    // Concurrent first calls on a fresh client share one token request.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.pull_commits(INSTALLATION, REPO, PR).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }

    for i in 0..5 {
        app.upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            MARKER,
            &report(&i.to_string()),
            &|_| false,
        )
        .await
        .unwrap();
        app.pull_files(INSTALLATION, REPO, PR).await.unwrap();
    }
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(
        fake.requests_to(
            "POST",
            &format!("/app/installations/{INSTALLATION}/access_tokens")
        )
        .await,
        1
    );
    assert_eq!(
        fake.requests_to("GET", "/app").await,
        1,
        "the slug is cached too"
    );
}

#[tokio::test]
async fn a_token_close_to_expiry_is_renewed() {
    let (fake, app) = github().await;
    // Shorter than the renewal margin: every call needs a fresh token.
    fake.set_token_lifetime(chrono::Duration::minutes(2));

    for _ in 0..3 {
        app.pull_commits(INSTALLATION, REPO, PR).await.unwrap();
    }

    assert_eq!(fake.token_requests(), 3);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried_too() {
    let (fake, app) = github().await;
    fake.fail_next("POST", r"^/app/installations/\d+/access_tokens$", 500, 1)
        .await;

    app.pull_commits(INSTALLATION, REPO, PR).await.unwrap();

    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn an_unknown_installation_names_the_token_endpoint() {
    let (_fake, app) = github().await;

    let err = app.pull_files(999, REPO, PR).await.unwrap_err();

    let msg = err.to_string();
    assert!(
        msg.contains("POST /app/installations/999/access_tokens") && msg.contains("404"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_wrong_app_id_is_refused_by_github() {
    let fake = FakeGithub::start().await;
    let app = GithubApp::new(&AppConfig {
        app_id: APP_ID + 1,
        ..fake.app_config()
    })
    .unwrap();

    let err = app.slug().await.unwrap_err();

    let msg = err.to_string();
    assert!(msg.contains("GET /app") && msg.contains("401"), "{msg}");
}

#[tokio::test]
async fn a_malformed_private_key_fails_with_a_clear_message() {
    let fake = FakeGithub::start().await;
    let broken = [
        "not a key at all".to_string(),
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".to_string(),
        fake.app_config().private_key_pem.replace("MII", "MIJ"),
    ];
    for pem in broken {
        let err = match GithubApp::new(&AppConfig {
            private_key_pem: pem.clone(),
            ..fake.app_config()
        }) {
            Ok(_) => panic!("accepted {pem:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("GitHub App {APP_ID} private key")),
            "{err}"
        );
        assert!(err.contains(".pem file GitHub generated"), "{err}");
        assert!(!err.contains("MII"), "the key is not echoed: {err}");
    }
}

#[tokio::test]
async fn a_bad_repo_name_is_refused_before_any_request() {
    let (fake, app) = github().await;
    let err = app
        .pull_files(INSTALLATION, "acme/widgets/../x", PR)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not \"owner/name\""), "{err}");
    assert!(fake.requests().await.is_empty());
}

#[tokio::test]
async fn a_failed_create_is_not_retried_blindly_and_the_next_upsert_creates_once() {
    let (fake, app) = github().await;
    let path = format!("/repos/{REPO}/issues/{PR}/comments");
    fake.fail_next("POST", &path, 502, 1).await;
    let err = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            MARKER,
            &report("1 session"),
            &|_| false,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("POST") && err.contains("502"), "{err}");
    // The publisher tries again later: the upsert looks for our comment first.
    let outcome = app
        .upsert_comment(
            INSTALLATION,
            REPO,
            PR,
            MARKER,
            &report("1 session"),
            &|_| false,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, CommentOutcome::Created { .. }),
        "{outcome:?}"
    );
    assert_eq!(fake.comments(REPO, PR).len(), 1);
}
