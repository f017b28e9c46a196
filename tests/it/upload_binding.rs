//! An OIDC upload is bound to the run its token names: its commit, its ref, its pull
//! request and its run (`ci::binding`). Each forgery a workflow of a served repository
//! could try is refused with the claim it contradicts.

use serde_json::{Value, json};
use tracelink_dev::fake_github::{FakeGithub, INSTALLATION};

use super::ci_upload::{
    HEAD, app_with_issuer, ci_fixture, claims, context, fake_issuer, installed, push_claims, sign,
    upload,
};
use super::common::TestApp;
use super::reports::{REPO, SECRET, deliver, pull};

const FEATURE: &str = "f000000000000000000000000000000000000001";
const NEWER: &str = "f000000000000000000000000000000000000002";
const MAIN: &str = "a000000000000000000000000000000000000009";

fn coverage() -> Vec<u8> {
    ci_fixture("coverage.xml")
}

async fn refused(app: &TestApp, token: &str, ctx: &Value, reason: &str) {
    let cov = coverage();
    let (status, body) = upload(app, Some(token), Some(ctx), &[("coverage.xml", &cov)]).await;
    assert_eq!(status, 403, "{reason}: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(reason), "{error:?} should say {reason:?}");
}

async fn stored(app: &TestApp, token: &str, ctx: &Value) {
    let cov = coverage();
    let (status, body) = upload(app, Some(token), Some(ctx), &[("coverage.xml", &cov)]).await;
    assert_eq!(status, 201, "{body}");
}

fn branch_ctx(sha: &str, git_ref: &str, run: i64) -> Value {
    let mut c = context(sha, run, 1, &[]);
    c["ref"] = json!(git_ref);
    c["pr_number"] = Value::Null;
    c
}

/// The refs and commits of stored uploads, in order.
async fn stored_refs(app: &TestApp) -> Vec<(String, String)> {
    app.db()
        .dump_table("ci_uploads", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let cols: Vec<&str> = row.split('|').collect();
            (
                cols[2].trim_matches('\'').into(),
                cols[3].trim_matches('\'').into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_push_run_uploads_only_its_own_commit_on_its_own_ref() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    installed(&app, HEAD).await;
    let mut c = push_claims(&issuer.uri(), REPO, FEATURE, "refs/heads/feature");
    c["run_id"] = json!("900");
    c["run_attempt"] = json!("1");
    let token = sign(&c);
    // A feature branch's workflow making itself main's coverage base.
    refused(
        &app,
        &token,
        &branch_ctx(FEATURE, "refs/heads/main", 900),
        "the token is for ref refs/heads/feature, the upload says refs/heads/main",
    )
    .await;
    // Another commit's coverage.
    refused(
        &app,
        &token,
        &branch_ctx(MAIN, "refs/heads/feature", 900),
        &format!("the token's push run is for commit {FEATURE}"),
    )
    .await;
    // Another run's.
    refused(
        &app,
        &token,
        &branch_ctx(FEATURE, "refs/heads/feature", 901),
        "the token is for run 900, the upload says run 901",
    )
    .await;
    stored(
        &app,
        &token,
        &branch_ctx(FEATURE, "refs/heads/feature", 900),
    )
    .await;
    assert_eq!(
        stored_refs(&app).await,
        vec![(FEATURE.to_string(), "refs/heads/feature".to_string())]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_pull_request_run_uploads_only_for_a_head_its_pull_request_has_had() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    installed(&app, HEAD).await;
    let token = sign(&claims(&issuer.uri(), REPO));
    // Coverage for a commit pull request 7 never had (another PR's head, say).
    refused(
        &app,
        &token,
        &context(NEWER, 900, 1, &[]),
        &format!("commit {NEWER} is not a head of pull request #7"),
    )
    .await;
    // Another pull request than the token's.
    let mut other = context(HEAD, 900, 1, &[]);
    other["pr_number"] = json!(8);
    refused(
        &app,
        &token,
        &other,
        "the token is for a run of pull request #7, the upload says #8",
    )
    .await;
    // Under a branch ref, as base coverage.
    let mut as_main = context(HEAD, 900, 1, &[]);
    as_main["ref"] = json!("refs/heads/main");
    refused(
        &app,
        &token,
        &as_main,
        "the token is for ref refs/pull/7/merge",
    )
    .await;

    stored(&app, &token, &context(HEAD, 900, 1, &[])).await;
    // Pushed again: the new head, and the old one (a head it has had) still upload.
    let sync = pull(
        "synchronize",
        7,
        NEWER,
        "retry",
        "2026-11-20T10:45:00Z",
        None,
    );
    deliver(&app, "pull_request", "sync", &sync).await;
    app.applied(3).await;
    stored(&app, &token, &context(NEWER, 901, 1, &[])).await;
    stored(&app, &token, &context(HEAD, 902, 1, &[])).await;
    app.stop().await;
}

/// The upload may come before the `synchronize` delivery: GitHub confirms the head.
#[tokio::test]
async fn a_head_not_delivered_yet_is_confirmed_with_github() {
    let fake = FakeGithub::start().await;
    fake.add_pull(REPO, 7, NEWER, Vec::new());
    let issuer = fake_issuer().await;
    let uri = issuer.uri();
    let cfg = fake.app_config();
    let mut app = TestApp::spawn_with(move |a| {
        a.oidc_issuer = uri;
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.github = (&cfg).into();
    })
    .await;
    // Installed through the fake's installation.
    let mut opened = pull("opened", 7, HEAD, "retry", "2026-11-20T09:45:00Z", None);
    opened["installation"] = json!({"id": INSTALLATION});
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(1).await;
    let token = sign(&claims(&issuer.uri(), REPO));
    stored(&app, &token, &context(NEWER, 900, 1, &[])).await;
    refused(
        &app,
        &token,
        &context(FEATURE, 901, 1, &[]),
        &format!("commit {FEATURE} is not a head of pull request #7"),
    )
    .await;
    app.stop().await;
}

/// How fork pull requests upload: a `workflow_run` workflow on the default branch. Its
/// token's ref is the default branch; the upload is stored for the pull request, never
/// as the default branch's coverage.
#[tokio::test]
async fn a_workflow_run_upload_is_for_an_open_pull_request_never_the_base() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    installed(&app, HEAD).await;
    let mut c = push_claims(&issuer.uri(), REPO, MAIN, "refs/heads/main");
    c["event_name"] = json!("workflow_run");
    let token = sign(&c);
    let mut ctx = context(HEAD, 900, 1, &[]);
    ctx["ref"] = json!("refs/heads/main");
    stored(&app, &token, &ctx).await;
    assert_eq!(
        stored_refs(&app).await,
        vec![(HEAD.to_string(), "refs/pull/7/head".to_string())]
    );
    // Naming no pull request, it would be main's coverage.
    refused(
        &app,
        &token,
        &branch_ctx(MAIN, "refs/heads/main", 901),
        "a workflow_run upload names the pull request",
    )
    .await;
    // Not the pull request's head.
    let mut stale = context(FEATURE, 902, 1, &[]);
    stale["ref"] = json!("refs/heads/main");
    refused(
        &app,
        &token,
        &stale,
        &format!("commit {FEATURE} is not the head of open pull request #7"),
    )
    .await;
    app.stop().await;
}

/// A repository deleted and re-created under the same name is another repository: a
/// token whose `repository_id` is not the one deliveries named is refused.
#[tokio::test]
async fn a_token_for_another_repository_under_the_same_name_is_refused() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let mut opened = pull("opened", 7, HEAD, "retry", "2026-11-20T09:45:00Z", None);
    opened["repository"]["id"] = json!(1296269);
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(1).await;
    let mut c = claims(&issuer.uri(), REPO);
    c["repository_id"] = json!("424242");
    refused(
        &app,
        &sign(&c),
        &context(HEAD, 900, 1, &[]),
        "the token's repository_id 424242 is not acme/widgets (id 1296269",
    )
    .await;
    c["repository_id"] = json!("1296269");
    stored(&app, &sign(&c), &context(HEAD, 900, 1, &[])).await;
    app.stop().await;
}

/// A fork's workflows get no OIDC token: the report of a fork's pull request says why
/// its coverage is missing and how to send it; a pull request from a branch of the
/// repository says nothing of it.
#[tokio::test]
async fn a_forks_report_says_why_its_coverage_is_missing() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let mut fork = pull("opened", 7, HEAD, "main", "2026-11-20T09:45:00Z", None);
    fork["pull_request"]["head"]["repo"] = json!({"full_name": "forker/widgets"});
    let mut own = pull(
        "opened",
        8,
        FEATURE,
        "feature",
        "2026-11-20T09:45:00Z",
        None,
    );
    own["pull_request"]["head"]["repo"] = json!({"full_name": REPO});
    deliver(&app, "pull_request", "fork", &fork).await;
    deliver(&app, "pull_request", "own", &own).await;
    app.applied(2).await;
    let (json, md) = super::reports::report(&app, 7).await;
    assert!(
        md.contains("| Coverage | none uploaded: this pull request comes from a fork"),
        "{md}"
    );
    assert!(json["coverage_missing"].as_str().is_some(), "{json}");
    let (json, md) = super::reports::report(&app, 8).await;
    assert!(!md.contains("| Coverage |"), "{md}");
    assert_eq!(json.get("coverage_missing"), None);
    app.stop().await;
}
