//! CI uploads end to end: a local fake OIDC issuer (wiremock on loopback serving the
//! discovery document and JWKS; tokens signed here with a test-only key), real report
//! fixtures uploaded over HTTP, what was stored, and the coverage/test metrics of a PR.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::TestApp;
use super::reports::{Commit, REPO, SECRET, ZERO, deliver, push};

pub const KID: &str = "tracelink-test-key";
pub const STATIC_TOKEN: &str = "static-upload-token-for-widgets";
pub const HEAD: &str = "5555555555555555555555555555555555555555";

/// A fixture of `tests/fixtures/ci/`.
pub fn ci_fixture(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/ci/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn key(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&ci_fixture(name)).expect("test key")
}

/// A fake GitHub Actions OIDC issuer: discovery document and JWKS of the test key.
pub async fn fake_issuer() -> MockServer {
    let server = MockServer::start().await;
    let mut jwk = Jwk::from_encoding_key(&key("oidc-test-key.pem"), Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(KID.into());
    let jwks = JwkSet { keys: vec![jwk] };
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": server.uri(),
            "jwks_uri": format!("{}/.well-known/jwks", server.uri()),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&jwks))
        .mount(&server)
        .await;
    server
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// GitHub's test merge of pull request 7, the `sha` of its runs' tokens.
pub const TEST_MERGE: &str = "7777777777777777777777777777777777777777";

/// The claims GitHub puts in the token of a pull request 7 run (the ones tracelink
/// reads, and a few more).
pub fn claims(issuer: &str, repository: &str) -> Value {
    json!({
        "iss": issuer, "aud": "tracelink", "repository": repository,
        "sub": format!("repo:{repository}:pull_request"),
        "ref": "refs/pull/7/merge", "sha": TEST_MERGE, "event_name": "pull_request",
        "iat": now() - 10, "nbf": now() - 10, "exp": now() + 300,
    })
}

/// The claims of a `push` run's token for `sha` on `git_ref`.
pub fn push_claims(issuer: &str, repository: &str, sha: &str, git_ref: &str) -> Value {
    let mut c = claims(issuer, repository);
    c["sub"] = json!(format!("repo:{repository}:ref:{git_ref}"));
    c["ref"] = json!(git_ref);
    c["sha"] = json!(sha);
    c["event_name"] = json!("push");
    c
}

/// A token signed by the test key (or `key_file`), with key ID `kid`.
pub fn sign_with(claims: &Value, key_file: &str, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &key(key_file)).unwrap()
}

pub fn sign(claims: &Value) -> String {
    sign_with(claims, "oidc-test-key.pem", KID)
}

pub async fn app_with_issuer(issuer: &MockServer) -> TestApp {
    let uri = issuer.uri();
    TestApp::spawn_with(move |a| {
        a.oidc_issuer = uri;
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.upload_tokens = vec![format!("{REPO}={STATIC_TOKEN}").parse().unwrap()];
    })
    .await
}

/// The App installed on acme/widgets, as its first delivery says (an installation and a
/// repository named in any delivery make the repository one tracelink serves), and pull
/// request 7 open with head `pr_head`.
pub async fn installed(app: &TestApp, pr_head: &str) {
    deliver(
        app,
        "push",
        "installed",
        &push("refs/heads/main", ZERO, &[]),
    )
    .await;
    let opened = super::reports::pull("opened", 7, pr_head, "retry", "2026-11-20T09:45:00Z", None);
    deliver(app, "pull_request", "installed-pr", &opened).await;
    app.applied(2).await;
}

pub fn context(sha: &str, run_id: i64, attempt: i64, flags: &[&str]) -> Value {
    json!({"repository": "Acme/Widgets", "sha": sha, "ref": "refs/pull/7/merge",
           "run_id": run_id, "run_attempt": attempt, "job": "test", "pr_number": 7,
           "flags": flags, "workspace": "/tmp/fx/py"})
}

/// A multipart body: the context part (when given), then one part per file.
pub fn multipart(context: Option<&Value>, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----tracelink-test-boundary-5f2a";
    let mut body = Vec::new();
    if let Some(c) = context {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"context\"\r\nContent-Type: application/json\r\n\r\n{c}\r\n")
                .as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn upload(
    app: &TestApp,
    token: Option<&str>,
    context: Option<&Value>,
    files: &[(&str, &[u8])],
) -> (u16, Value) {
    let (content_type, body) = multipart(context, files);
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    let r = app
        .post("/api/v1/ci/uploads", &content_type, body, &headers)
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn trace_hex(run: i64, attempt: i64) -> String {
    tracelink::ids::encode_hex(&tracelink::ids::workflow_trace_id(run, attempt))
}

#[tokio::test]
async fn oidc_upload_of_real_reports_is_stored_once() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let token = sign(&claims(&issuer.uri(), "acme/Widgets"));
    let cov = ci_fixture("coverage.xml");
    let junit = ci_fixture("pytest-junit.xml");
    let files: [(&str, &[u8]); 2] = [("coverage.xml", &cov), ("reports/pytest-junit.xml", &junit)];
    let ctx = context(HEAD, 900, 1, &["unit"]);
    // Any workflow on github.com can mint a token for tracelink's audience: before the
    // App is installed on the repository, its uploads are refused.
    let (status, body) = upload(&app, Some(&token), Some(&ctx), &files).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("install the App"),
        "{body}"
    );
    installed(&app, HEAD).await;
    let (status, body) = upload(&app, Some(&token), Some(&ctx), &files).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["trace_id"], trace_hex(900, 1));
    assert_eq!(body["stored"], 2);
    // coverage.py's own report: 21 statements, 7 missed.
    assert_eq!(body["files"][0]["format"], "cobertura");
    assert_eq!(
        body["files"][0]["lines"],
        json!({"covered": 14, "coverable": 21, "pct": 66.67})
    );
    assert_eq!(body["files"][0]["unmatched"], json!([]));
    // pytest: 1 failed, 4 passed, 1 skipped, 1 error.
    assert_eq!(
        body["files"][1]["tests"],
        json!({"passed": 4, "failed": 2, "skipped": 1})
    );
    let summary = body["summary"].as_str().unwrap();
    assert!(
        summary.contains("| `coverage.xml` | cobertura | 66.67% of lines covered (14/21) |"),
        "{summary}"
    );
    assert!(
        summary.contains("| `reports/pytest-junit.xml` | junit | 4 passed, 2 failed, 1 skipped |"),
        "{summary}"
    );
    assert!(summary.contains(&trace_hex(900, 1)), "{summary}");

    assert_eq!(
        app.dump("ci_uploads", &["id", "digest", "received_ns", "size_bytes"])
            .await,
        vec![
            format!(
                "'acme/widgets'|'{HEAD}'|'refs/pull/7/merge'|900|1|'test'|7|'unit'|'coverage.xml'|'cobertura'|14|21|NULL|NULL|NULL"
            ),
            format!(
                "'acme/widgets'|'{HEAD}'|'refs/pull/7/merge'|900|1|'test'|7|'unit'|'reports/pytest-junit.xml'|'junit'|NULL|NULL|4|2|1"
            ),
        ]
    );
    assert_eq!(
        app.dump("ci_coverage", &["upload_id"]).await,
        vec![
            "'calc/ops.py'|'1-2,5-6,8,11-15,19'|'7,16,20-23'".to_string(),
            "'calc/text.py'|'1-2,5'|'6'".to_string(),
        ]
    );
    assert_eq!(app.count("ci_test_cases").await, 7);
    let from_run = app
        .db()
        .links_by_relation("upload", "from_run")
        .await
        .unwrap();
    assert_eq!(
        from_run
            .iter()
            .filter(|l| l.to_key == "workflow_run:900:1")
            .count(),
        2
    );
    let for_commit = app
        .db()
        .links_by_relation("upload", "for_commit")
        .await
        .unwrap();
    assert_eq!(
        for_commit
            .iter()
            .filter(|l| l.to_key == format!("acme/widgets@{HEAD}"))
            .count(),
        2
    );

    // The Action retried: nothing new is stored, and it is told so.
    let (status, again) = upload(&app, Some(&token), Some(&ctx), &files).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["stored"].clone(), again["already_stored"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(app.count("ci_uploads").await, 2);
    assert_eq!(app.count("ci_test_cases").await, 7);
    // The uploads' four, and pull request 7's head.
    assert_eq!(app.count("links").await, 5);
    // The JWKS was fetched once for both requests.
    let fetched = issuer.received_requests().await.unwrap();
    assert_eq!(
        fetched
            .iter()
            .filter(|r| r.url.path() == "/.well-known/jwks")
            .count(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn refused_tokens_are_401_with_the_reason() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let iss = issuer.uri();
    let cov = ci_fixture("coverage.lcov");
    let ctx = context(HEAD, 900, 1, &[]);
    let good = claims(&iss, "acme/widgets");
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "missing Authorization"),
        (
            "expired",
            Some(sign(&with("exp", json!(now() - 3600)))),
            "token expired",
        ),
        (
            "forged",
            Some(sign_with(&good, "oidc-forger-key.pem", KID)),
            "bad signature",
        ),
        (
            "unknown key",
            Some(sign_with(&good, "oidc-forger-key.pem", "another-kid")),
            "unknown signing key",
        ),
        (
            "audience",
            Some(sign(&with("aud", json!("someone-else")))),
            "audience \"someone-else\" does not include the configured audience \"tracelink\"",
        ),
        (
            "issuer",
            Some(sign(&with("iss", json!("https://evil.example")))),
            "issuer \"https://evil.example\" is not the configured issuer",
        ),
        (
            "repository",
            Some(sign(&with("repository", json!("acme/other")))),
            "repository claim \"acme/other\" does not match the upload's repository \"acme/widgets\"",
        ),
        (
            "not a token",
            Some("garbage".into()),
            "neither a known upload token nor a JWT",
        ),
    ];
    for (what, token, reason) in cases {
        let (status, body) = upload(
            &app,
            token.as_deref(),
            Some(&ctx),
            &[("coverage.lcov", &cov)],
        )
        .await;
        assert_eq!(status, 401, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or("");
        assert!(error.contains(reason), "{what}: {error}");
    }
    // Within a minute the unknown key caused no second fetch of the JWKS.
    let fetched = issuer.received_requests().await.unwrap();
    assert_eq!(
        fetched
            .iter()
            .filter(|r| r.url.path() == "/.well-known/jwks")
            .count(),
        1
    );
    assert_eq!(app.count("ci_uploads").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn static_tokens_upload_for_their_repository_only() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let cov = ci_fixture("jest-cobertura.xml");
    let junit = ci_fixture("jest-junit.xml");
    let mut ctx = context(HEAD, 901, 1, &["js"]);
    ctx["workspace"] = json!("/tmp/fx/js");
    let files: [(&str, &[u8]); 2] = [("cobertura-coverage.xml", &cov), ("jest-junit.xml", &junit)];
    let (status, body) = upload(&app, Some(STATIC_TOKEN), Some(&ctx), &files).await;
    assert_eq!(status, 201, "{body}");
    // jest's own table: all files 60% of lines; 3 passed, 1 failed, 1 skipped.
    assert_eq!(body["files"][0]["lines"]["pct"], 60.0);
    assert_eq!(
        body["files"][1]["tests"],
        json!({"passed": 3, "failed": 1, "skipped": 1})
    );

    let mut other = ctx.clone();
    other["repository"] = json!("acme/other");
    let (status, body) = upload(&app, Some(STATIC_TOKEN), Some(&other), &files).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"],
        "the upload token is for acme/widgets, not for \"acme/other\""
    );
    let (status, _) = upload(
        &app,
        Some("static-upload-token-for-widgetz"),
        Some(&ctx),
        &files,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(app.count("ci_uploads").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn unreadable_uploads_are_refused_and_store_nothing() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let ctx = context(HEAD, 902, 1, &[]);
    let good = ci_fixture("coverage.lcov");
    let broken = b"<?xml version=\"1.0\"?>\n<coverage line-rate=\"1\">\n<packages><package name=\"p\"><classes>\n<class filename=\"a.py\"><lines><line number=\"x\" hits=\"1\"/></lines></class>\n</classes></package></packages></coverage>\n";
    let files: [(&str, &[u8]); 2] = [("coverage.lcov", &good), ("cov/broken.xml", broken)];
    let (status, body) = upload(&app, Some(STATIC_TOKEN), Some(&ctx), &files).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["file"], "cov/broken.xml");
    assert_eq!(body["format"], "cobertura");
    assert_eq!(body["line"], 4);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("cov/broken.xml: cobertura line 4:"),
        "{body}"
    );

    let (status, body) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&ctx),
        &[("results.json", b"{\"tests\": []}")],
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["file"], "results.json");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("format not recognised"),
        "{body}"
    );

    let mut no_job = ctx.clone();
    no_job.as_object_mut().unwrap().remove("job");
    let (status, body) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&no_job),
        &[("coverage.lcov", &good)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing field `job`"),
        "{body}"
    );
    let mut bad_sha = ctx.clone();
    bad_sha["sha"] = json!("main");
    let (status, body) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&bad_sha),
        &[("coverage.lcov", &good)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("context.sha:"),
        "{body}"
    );
    let (status, body) = upload(&app, Some(STATIC_TOKEN), None, &[("coverage.lcov", &good)]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "missing the `context` part");
    assert_eq!(app.count("ci_uploads").await, 0);
    app.stop().await;
}

// ---- Scenario: coverage on main, a PR with less of it ----

const MAIN_1: &str = "a000000000000000000000000000000000000001";
const MAIN_2: &str = "a000000000000000000000000000000000000002";
const PR_1: &str = "b000000000000000000000000000000000000001";
const PR_2: &str = "b000000000000000000000000000000000000002";

/// An lcov report with runner paths: (path, covered lines, missed lines).
pub fn lcov(files: &[(&str, &[u32], &[u32])]) -> Vec<u8> {
    let mut s = String::new();
    for (path, covered, missed) in files {
        s.push_str(&format!(
            "TN:\nSF:/home/runner/work/widgets/widgets/{path}\n"
        ));
        let mut lines: Vec<(u32, u32)> = covered.iter().map(|l| (*l, 3)).collect();
        lines.extend(missed.iter().map(|l| (*l, 0)));
        lines.sort();
        for (l, h) in lines {
            s.push_str(&format!("DA:{l},{h}\n"));
        }
        s.push_str("end_of_record\n");
    }
    s.into_bytes()
}

pub fn junit(cases: &[(&str, bool)]) -> Vec<u8> {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<testsuite name=\"widgets\" tests=\"2\">\n");
    for (name, ok) in cases {
        if *ok {
            s.push_str(&format!(
                "<testcase classname=\"widgets.retry\" name=\"{name}\" time=\"0.1\"/>\n"
            ));
        } else {
            s.push_str(&format!("<testcase classname=\"widgets.retry\" name=\"{name}\" time=\"0.1\"><failure message=\"{name} broke\">trace</failure></testcase>\n"));
        }
    }
    s.push_str("</testsuite>\n");
    s.into_bytes()
}

pub fn run_ctx(sha: &str, git_ref: &str, run: i64, attempt: i64, flags: &[&str]) -> Value {
    json!({"repository": REPO, "sha": sha, "ref": git_ref, "run_id": run, "run_attempt": attempt,
           "job": "test", "flags": flags})
}

fn workflow_run(id: i64, attempt: i64, head: &str, status: &str) -> Value {
    json!({
        "action": if status == "completed" { "completed" } else { "in_progress" },
        "repository": {"full_name": REPO},
        "workflow_run": {"id": id, "run_attempt": attempt, "name": "ci", "event": "pull_request",
            "head_sha": head, "head_branch": "retry", "status": status,
            "conclusion": if status == "completed" { Value::from("success") } else { Value::Null },
            "run_started_at": "2026-11-21T16:00:00Z", "created_at": "2026-11-21T16:00:00Z",
            "updated_at": format!("2026-11-21T16:0{attempt}:00Z")}
    })
}

fn commit<'a>(sha: &'a str, message: &'a str) -> Commit<'a> {
    Commit {
        sha,
        message,
        at: "2026-11-20T10:00:00Z",
        email: "dev@acme.example",
        login: "dev",
        files: &["src/lib.rs"],
    }
}

#[tokio::test]
async fn pull_request_with_less_coverage_than_main() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    deliver(
        &app,
        "push",
        "p-main",
        &push(
            "refs/heads/main",
            ZERO,
            &[commit(MAIN_1, "one"), commit(MAIN_2, "two")],
        ),
    )
    .await;
    deliver(
        &app,
        "push",
        "p-pr",
        &push(
            "refs/heads/retry",
            MAIN_2,
            &[commit(PR_1, "retry"), commit(PR_2, "tests")],
        ),
    )
    .await;
    deliver(
        &app,
        "workflow_run",
        "w1",
        &workflow_run(900, 1, PR_2, "completed"),
    )
    .await;
    deliver(
        &app,
        "workflow_run",
        "w2",
        &workflow_run(900, 2, PR_2, "in_progress"),
    )
    .await;
    app.applied(4).await;

    let tok = Some(STATIC_TOKEN);
    // main: 19 of 20 lines covered.
    let base_cov = lcov(&[
        ("src/lib.rs", &[1, 2, 3, 4, 5, 6, 7, 8, 9], &[10]),
        ("src/util.rs", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &[]),
    ]);
    let base_tests = junit(&[("retries", true), ("gives_up", true)]);
    let ctx = run_ctx(MAIN_2, "refs/heads/main", 800, 1, &["unit"]);
    let (s, b) = upload(
        &app,
        tok,
        Some(&ctx),
        &[("lcov.info", &base_cov), ("junit.xml", &base_tests)],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // An earlier PR commit's upload must not be taken for the base.
    let ctx = run_ctx(PR_1, "refs/pull/7/merge", 850, 1, &["unit"]);
    let (s, b) = upload(&app, tok, Some(&ctx), &[("lcov.info", &base_cov)]).await;
    assert_eq!(s, 201, "{b}");

    // The PR head: a unit run and an integration run.
    let unit = lcov(&[
        (
            "src/lib.rs",
            &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[10, 11, 12, 13, 14],
        ),
        ("src/util.rs", &[1, 2, 3, 4, 5], &[6, 7, 8, 9, 10]),
    ]);
    let integration = lcov(&[("src/lib.rs", &[11], &[1])]);
    let (s, b) = upload(
        &app,
        tok,
        Some(&run_ctx(PR_2, "refs/pull/7/merge", 900, 1, &["unit"])),
        &[
            ("lcov.info", &unit),
            (
                "junit.xml",
                &junit(&[("retries", true), ("gives_up", false), ("backs_off", false)]),
            ),
        ],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = upload(
        &app,
        tok,
        Some(&run_ctx(
            PR_2,
            "refs/pull/7/merge",
            900,
            2,
            &["integration"],
        )),
        &[
            ("lcov.info", &integration),
            ("junit.xml", &junit(&[("backs_off", true)])),
        ],
    )
    .await;
    assert_eq!(s, 201, "{b}");

    let pool = &app.server.as_ref().unwrap().db;
    let lib_patch = "@@ -8,3 +8,7 @@\n keep\n keep\n-old\n+changed\n+new\n+new\n+new\n+new\n";
    let pr_added = vec![
        (
            "src/lib.rs".to_string(),
            tracelink::metrics::diff::added_numbers(lib_patch),
        ),
        ("src/util.rs".to_string(), vec![6, 7, 8]),
        ("README.md".to_string(), vec![3]),
    ];
    assert_eq!(pr_added[0].1, vec![10, 11, 12, 13, 14]);
    let agent_added = vec![("src/lib.rs".to_string(), vec![11, 12, 13, 14])];
    let section =
        tracelink::impact::ci::coverage_section(pool, REPO, PR_2, "main", &pr_added, &agent_added)
            .await
            .unwrap()
            .expect("coverage at head");
    assert_eq!(section["base"]["sha"], MAIN_2);
    assert_eq!(section["base"]["distance"], 2);
    assert_eq!(section["head"]["pct"], 62.5);
    assert_eq!(section["delta_pp"], -32.5);
    assert_eq!(
        section["patch"],
        json!({"covered": 1, "coverable": 8, "pct": 12.5})
    );
    assert_eq!(
        section["agent_patch"],
        json!({"covered": 1, "coverable": 4, "pct": 25.0})
    );
    assert_eq!(section["complete"], false, "attempt 2 is still running");
    super::common::assert_snapshot(
        "ci_upload__pr_coverage_section",
        &serde_json::to_string_pretty(&section).unwrap(),
    );

    let tests = tracelink::impact::ci::tests_section(pool, REPO, PR_2, Some(MAIN_2))
        .await
        .unwrap()
        .expect("tests at head");
    assert_eq!(tests["newly_failing"], json!(["widgets.retry::gives_up"]));
    assert_eq!(tests["flaky"], json!(["widgets.retry::backs_off"]));
    super::common::assert_snapshot(
        "ci_upload__pr_tests_section",
        &serde_json::to_string_pretty(&tests).unwrap(),
    );

    // Once the rerun completes, the figures are final.
    deliver(
        &app,
        "workflow_run",
        "w3",
        &workflow_run(900, 2, PR_2, "completed"),
    )
    .await;
    app.applied(5).await;
    let pool = &app.server.as_ref().unwrap().db;
    let section = tracelink::impact::ci::coverage_section(pool, REPO, PR_2, "main", &pr_added, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(section["complete"], true);
    assert_eq!(section["agent_patch"], Value::Null);

    // No base: a commit whose ancestry is unknown, and a branch without uploads.
    let (s, _) = upload(
        &app,
        tok,
        Some(&run_ctx(HEAD, "refs/pull/8/merge", 901, 1, &[])),
        &[("lcov.info", &unit)],
    )
    .await;
    assert_eq!(s, 201);
    let orphan = tracelink::impact::ci::coverage_section(pool, REPO, HEAD, "main", &[], &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orphan["base"], Value::Null);
    assert_eq!(orphan["delta_pp"], Value::Null);
    assert!(
        orphan["base_note"]
            .as_str()
            .unwrap()
            .contains("ancestry of 5555555 is not known"),
        "{orphan}"
    );
    let other = tracelink::impact::ci::coverage_section(pool, REPO, PR_2, "release", &[], &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        other["base_note"],
        "no known ancestor of b000000 is on release"
    );
    let none = tracelink::impact::ci::coverage_section(pool, REPO, MAIN_1, "main", &[], &[])
        .await
        .unwrap();
    assert_eq!(none, None, "no upload at that commit");
    app.stop().await;
}

#[tokio::test]
async fn uploads_beyond_the_size_cap_are_413() {
    let mut app = TestApp::spawn_with(|a| {
        a.max_upload_bytes = 4096;
        a.upload_tokens = vec![format!("{REPO}={STATIC_TOKEN}").parse().unwrap()];
    })
    .await;
    let big = ci_fixture("jest-junit.xml").repeat(4);
    assert!(big.len() > 4096);
    let ctx = context(HEAD, 903, 1, &[]);
    let (status, body) = upload(&app, Some(STATIC_TOKEN), Some(&ctx), &[("junit.xml", &big)]).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(app.count("ci_uploads").await, 0);
    app.stop().await;
}

/// `--upload-repos` lets a repository's CI upload before any delivery names it; another
/// repository's token is still refused.
#[tokio::test]
async fn listed_repositories_upload_before_the_app_names_them() {
    let issuer = fake_issuer().await;
    let uri = issuer.uri();
    let mut app = TestApp::spawn_with(move |a| {
        a.oidc_issuer = uri;
        a.upload_repos = vec!["acme/*".into()];
    })
    .await;
    let cov = ci_fixture("coverage.xml");
    let files: [(&str, &[u8]); 1] = [("coverage.xml", &cov)];
    let token = sign(&push_claims(
        &issuer.uri(),
        "acme/widgets",
        HEAD,
        "refs/heads/main",
    ));
    let mut ctx = context(HEAD, 1, 1, &[]);
    ctx["ref"] = json!("refs/heads/main");
    ctx["pr_number"] = Value::Null;
    let (status, body) = upload(&app, Some(&token), Some(&ctx), &files).await;
    assert_eq!(status, 201, "{body}");
    let stranger = sign(&push_claims(
        &issuer.uri(),
        "stranger/random-repo",
        HEAD,
        "refs/heads/main",
    ));
    ctx["run_id"] = json!(2);
    ctx["repository"] = json!("stranger/random-repo");
    let (status, body) = upload(&app, Some(&stranger), Some(&ctx), &files).await;
    assert_eq!(status, 403, "{body}");
    app.stop().await;
}

/// Uploads are read and parsed a few at a time, whatever the number of clients: with
/// every slot held by an upload whose body never ends, another is told to come back
/// (429 with Retry-After) instead of adding its files to memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_few_uploads_are_read_at_once() {
    use tokio::io::AsyncWriteExt;
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let host = app.http.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..tracelink::ci::upload::UPLOAD_SLOTS {
        let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "POST /api/v1/ci/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {STATIC_TOKEN}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        held.push(s);
    }
    let cov = ci_fixture("coverage.xml");
    let files: [(&str, &[u8]); 1] = [("coverage.xml", &cov)];
    let (content_type, body) = multipart(Some(&context(HEAD, 900, 1, &[])), &files);
    // The held uploads may not have reached their slots yet (a busy machine): until they
    // have, this one is read and answered; once they have, it is refused.
    let started = std::time::Instant::now();
    loop {
        let r = app
            .post(
                "/api/v1/ci/uploads",
                &content_type,
                body.clone(),
                &[("authorization", &format!("Bearer {STATIC_TOKEN}"))],
            )
            .await;
        if r.status().as_u16() == 429 {
            assert_eq!(r.headers()["retry-after"], "5");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "never refused while every slot was held: {}",
            r.status()
        );
    }
    // The slots free when those uploads end.
    drop(held);
    let (status, b) = upload(
        &app,
        Some(STATIC_TOKEN),
        Some(&context(HEAD, 902, 1, &[])),
        &files,
    )
    .await;
    assert_eq!(status, 201, "{b}");
    app.stop().await;
}

/// An upload's files are read, parsed and dropped one at a time, not all held first: an
/// unreadable second file is answered (422 naming it) while the body is still arriving —
/// the server read no further — and nothing of the upload is stored, the good first file
/// included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_parsed_as_they_arrive_and_an_upload_is_stored_whole_or_not_at_all() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let host = app.http.trim_start_matches("http://").to_string();
    let good = ci_fixture("coverage.lcov");
    let files: [(&str, &[u8]); 2] = [("good.info", &good), ("bad.info", b"SF:a.c\nDA:x,1\n")];
    let (content_type, body) = multipart(Some(&context(HEAD, 901, 1, &[])), &files);
    let boundary = content_type.rsplit('=').next().unwrap();
    // Everything but the closing delimiter, then a third part that never ends.
    let mut sent = body[..body.len() - format!("--{boundary}--\r\n").len()].to_vec();
    sent.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"third.info\"\r\n\r\nSF:")
            .as_bytes(),
    );
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "POST /api/v1/ci/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {STATIC_TOKEN}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        sent.len() + 10_000_000
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&sent).await.unwrap();
    // The answer comes with 10 MB of the body still unsent.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(8).any(|w| w == b"bad.info") {
                break;
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "answered before the body ended: {answer}");
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("bad.info: lcov line 2"), "{answer}");
    drop(s);
    assert_eq!(app.count("ci_uploads").await, 0, "nothing half-written");
    assert_eq!(app.count("ci_coverage").await, 0, "nothing half-written");
    app.stop().await;
}
