//! The GitHub Action's script run for real: bash with a fake `GITHUB_*` environment, a
//! fake pull_request event, a local fake OIDC issuer that also plays the runner's token
//! endpoint, against a running tracelink.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::ci_upload::{STATIC_TOKEN, app_with_issuer, ci_fixture, claims, fake_issuer, sign};
use super::common::TestApp;

const RUN_ID: &str = "4242";
const ATTEMPT: &str = "3";
const PR_HEAD: &str = "c0ffee0000000000000000000000000000000001";
const MERGE_SHA: &str = "feed000000000000000000000000000000000002";

/// A job's workspace and the files the runner gives a step.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let event = json!({
            "action": "synchronize", "number": 7,
            "pull_request": {"number": 7, "head": {"sha": PR_HEAD, "ref": "retry"},
                             "base": {"sha": "1111111111111111111111111111111111111111", "ref": "main"}},
            "repository": {"full_name": "Acme/Widgets"}
        });
        std::fs::write(dir.path().join("event.json"), event.to_string()).unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("reports")).unwrap();
        std::fs::create_dir_all(ws.join("node_modules/x")).unwrap();
        std::fs::write(ws.join("coverage.xml"), ci_fixture("coverage.xml")).unwrap();
        std::fs::write(ws.join("reports/junit.xml"), ci_fixture("pytest-junit.xml")).unwrap();
        // Not a report of this repository: skipped by the default search.
        std::fs::write(ws.join("node_modules/x/junit.xml"), b"not xml").unwrap();
        for f in ["summary.md", "output", "env"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        Runner { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap()
    }

    async fn run(&self, inputs: &[(&str, &str)], extra: &[(&str, String)]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("action/upload.sh");
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg(script)
            .current_dir(self.file("ws"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", "Acme/Widgets")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", self.file("event.json"))
            .env("GITHUB_SHA", MERGE_SHA)
            .env("GITHUB_REF", "refs/pull/7/merge")
            .env("GITHUB_RUN_ID", RUN_ID)
            .env("GITHUB_RUN_ATTEMPT", ATTEMPT)
            .env("GITHUB_JOB", "test")
            // The fixtures were written in /tmp/fx/py: that was their workspace.
            .env("GITHUB_WORKSPACE", "/tmp/fx/py")
            .env("GITHUB_STEP_SUMMARY", self.file("summary.md"))
            .env("GITHUB_OUTPUT", self.file("output"))
            .env("GITHUB_ENV", self.file("env"));
        for (k, v) in inputs {
            cmd.env(format!("INPUT_{k}"), v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().await.expect("bash runs")
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run's trace ID computed by hand: sha256("42423t"), first 32 hex digits.
fn expected_trace_id() -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{RUN_ID}{ATTEMPT}t").as_bytes());
    tracelink::ids::encode_hex(&h[..16])
}

#[tokio::test]
async fn the_action_uploads_with_the_runs_oidc_token() {
    let issuer = fake_issuer().await;
    let token = sign(&claims(&issuer.uri(), "Acme/Widgets"));
    // The runner's token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL already has a query).
    Mock::given(method("GET"))
        .and(path("/runner/token"))
        .and(query_param("api-version", "2.0"))
        .and(query_param("audience", "tracelink"))
        .and(header("authorization", "bearer runner-request-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 1, "value": token})))
        .expect(1)
        .mount(&issuer)
        .await;
    let mut app = app_with_issuer(&issuer).await;
    super::ci_upload::installed(&app, PR_HEAD).await;
    let runner = Runner::new();
    let out = runner
        .run(
            &[("URL", &format!("{}/", app.http)), ("FLAGS", "unit, py")],
            &[
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    format!("{}/runner/token?api-version=2.0", issuer.uri()),
                ),
                (
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                    "runner-request-token".into(),
                ),
            ],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("::add-mask::{token}")),
        "the token is masked in logs"
    );

    // What was stored: the PR head (not the merge commit), the run, both files.
    assert_eq!(
        app.dump(
            "ci_uploads",
            &[
                "id",
                "digest",
                "received_ns",
                "size_bytes",
                "covered",
                "coverable",
                "passed",
                "failed",
                "skipped"
            ]
        )
        .await,
        vec![
            format!(
                "'acme/widgets'|'{PR_HEAD}'|'refs/pull/7/merge'|4242|3|'test'|7|'py,unit'|'coverage.xml'|'cobertura'"
            ),
            format!(
                "'acme/widgets'|'{PR_HEAD}'|'refs/pull/7/merge'|4242|3|'test'|7|'py,unit'|'reports/junit.xml'|'junit'"
            ),
        ]
    );
    assert_eq!(
        app.count("ci_coverage").await,
        2,
        "workspace paths were stripped"
    );

    let trace_id = expected_trace_id();
    let summary = runner.read("summary.md");
    assert!(
        summary.starts_with("### tracelink: CI upload\n"),
        "{summary}"
    );
    assert!(
        summary.contains("| `coverage.xml` | cobertura | 66.67% of lines covered (14/21) |"),
        "{summary}"
    );
    assert!(
        summary.contains("| `reports/junit.xml` | junit | 4 passed, 2 failed, 1 skipped |"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("trace `{trace_id}`")),
        "{summary}"
    );
    assert_eq!(runner.read("output"), format!("trace-id={trace_id}\n"));
    let env = runner.read("env");
    let traceparent = env
        .strip_prefix(&format!("TRACEPARENT=00-{trace_id}-"))
        .and_then(|r| r.strip_suffix("-01\n"))
        .unwrap_or_else(|| panic!("TRACEPARENT: {env}"));
    assert_eq!(traceparent.len(), 16);
    assert!(traceparent.bytes().all(|b| b.is_ascii_hexdigit()), "{env}");

    // A re-run of the step stores nothing new and still succeeds.
    let out = runner
        .run(
            &[
                ("URL", &app.http),
                ("FLAGS", "unit py"),
                ("TOKEN", STATIC_TOKEN),
            ],
            &[],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already stored"),
        "{}",
        text(&out)
    );
    assert_eq!(app.count("ci_uploads").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_tracelink_warns_unless_asked_to_fail() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let runner = Runner::new();
    let inputs = [
        ("URL", url.as_str()),
        ("TOKEN", STATIC_TOKEN),
        ("FILES", "coverage.xml reports/*.xml"),
    ];
    let out = runner.run(&inputs, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("::warning title=tracelink::tracelink at"),
        "{}",
        text(&out)
    );
    // The trace context is exported all the same.
    assert_eq!(
        runner.read("output"),
        format!("trace-id={}\n", expected_trace_id())
    );

    let mut failing = inputs.to_vec();
    failing.push(("FAIL_ON_ERROR", "true"));
    let out = runner.run(&failing, &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("::error title=tracelink::"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn a_refused_upload_says_why() {
    let issuer = fake_issuer().await;
    let mut app: TestApp = app_with_issuer(&issuer).await;
    let runner = Runner::new();
    let out = runner
        .run(
            &[
                ("URL", &app.http),
                ("TOKEN", "wrong-token"),
                ("FAIL_ON_ERROR", "TRUE"),
            ],
            &[],
        )
        .await;
    assert!(!out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("tracelink refused the upload (HTTP 401): the bearer token is neither a known upload token nor a JWT"),
        "{}",
        text(&out)
    );
    // Without id-token permission and without a token, it says what to grant.
    let out = runner.run(&[("URL", &app.http)], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("id-token: write"),
        "{}",
        text(&out)
    );
    assert_eq!(app.count("ci_uploads").await, 0);
    app.stop().await;
}

/// Every file named in `files` that is missing is named in a warning; the upload goes on
/// with those that exist. When none exists, the step says so (not "set the files
/// input").
#[tokio::test]
async fn missing_files_are_each_named() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let runner = Runner::new();
    let out = runner
        .run(
            &[
                ("URL", &app.http),
                ("TOKEN", STATIC_TOKEN),
                ("FILES", "coverage.xml, missing.xml\nreports build/*.xml"),
            ],
            &[],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for w in [
        "::warning title=tracelink::missing.xml does not exist",
        "::warning title=tracelink::reports is not a file",
        "::warning title=tracelink::no file matches build/*.xml",
    ] {
        assert!(stdout.contains(w), "{w}\n{}", text(&out));
    }
    assert!(stdout.contains("tracelink: uploaded"), "{}", text(&out));
    assert_eq!(app.count("ci_uploads").await, 1, "coverage.xml went up");

    let out = runner
        .run(
            &[
                ("URL", &app.http),
                ("TOKEN", STATIC_TOKEN),
                ("FILES", "nope.xml"),
            ],
            &[],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nope.xml does not exist"), "{}", text(&out));
    assert!(
        stdout.contains("none of the files input exists or matches a file: nope.xml"),
        "{}",
        text(&out)
    );
    app.stop().await;
}

/// After an upload, the job summary also holds the pull request's report as it stands;
/// in deployment mode the Action reports the deployment of the commit it runs for,
/// authenticated like uploads.
#[tokio::test]
async fn the_job_summary_shows_the_pull_request_and_deployments_are_reported() {
    use super::reports::{deliver, pull};
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    deliver(
        &app,
        "pull_request",
        "pr-7",
        &pull("opened", 7, PR_HEAD, "retry", "2026-11-20T10:00:00Z", None),
    )
    .await;
    app.applied(1).await;
    let runner = Runner::new();
    let out = runner
        .run(&[("URL", &app.http), ("TOKEN", STATIC_TOKEN)], &[])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let summary = runner.read("summary.md");
    assert!(
        summary.starts_with("### tracelink: CI upload\n"),
        "{summary}"
    );
    assert!(
        summary.contains("### 🔗 tracelink · "),
        "the PR's report follows the upload table: {summary}"
    );

    let out = runner
        .run(
            &[
                ("URL", &app.http),
                ("TOKEN", STATIC_TOKEN),
                ("MODE", "deployment"),
                ("ENVIRONMENT", "staging"),
            ],
            &[],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "deployment of {PR_HEAD} to staging reported (success"
        )),
        "{}",
        text(&out)
    );
    app.applied(2).await;
    let (_, c) = app
        .get_json(&format!("/api/v1/repos/acme/widgets/commits/{PR_HEAD}"))
        .await;
    assert_eq!(c["deployments"][0]["environment"], "staging", "{c}");
    assert_eq!(c["deployments"][0]["state"], "success", "{c}");
    assert!(
        runner
            .read("summary.md")
            .contains("### tracelink: deployment"),
        "{}",
        runner.read("summary.md")
    );
    // Without an environment it says what is missing.
    let out = runner
        .run(
            &[
                ("URL", &app.http),
                ("TOKEN", STATIC_TOKEN),
                ("MODE", "deployment"),
            ],
            &[],
        )
        .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the environment input is required"),
        "{}",
        text(&out)
    );
    app.stop().await;
}

/// git-ai notes: the Action fetches origin's refs/notes/ai and sends the note of each of
/// the pull request's commits that has one as `git-ai/<sha>.txt`; without the notes ref on
/// origin it says nothing about them.
#[tokio::test]
async fn git_ai_notes_are_fetched_from_origin_and_sent_per_commit() {
    let issuer = fake_issuer().await;
    let mut app = app_with_issuer(&issuer).await;
    let runner = Runner::new();
    let ws = runner.file("ws");
    let home = runner.dir.path().to_path_buf();
    let git = |dir: &Path, args: &[&str]| -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@acme.example")
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@acme.example")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let origin = runner.file("origin.git");
    git(
        runner.dir.path(),
        &["init", "-q", "--bare", origin.to_str().unwrap()],
    );
    git(&ws, &["init", "-q", "-b", "retry"]);
    git(&ws, &["add", "coverage.xml"]);
    git(&ws, &["commit", "-q", "-m", "base"]);
    let base = git(&ws, &["rev-parse", "HEAD"]);
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(ws.join("src/lib.rs"), "a\nb\nc\nd\ne\n").unwrap();
    git(&ws, &["add", "src/lib.rs"]);
    git(&ws, &["commit", "-q", "-m", "agent and person"]);
    let mixed = git(&ws, &["rev-parse", "HEAD"]);
    std::fs::write(ws.join("src/more.rs"), "f\n").unwrap();
    git(&ws, &["add", "src/more.rs"]);
    git(&ws, &["commit", "-q", "-m", "no note"]);
    let head = git(&ws, &["rev-parse", "HEAD"]);
    git(&ws, &["remote", "add", "origin", origin.to_str().unwrap()]);
    git(&ws, &["push", "-q", "origin", "retry"]);
    let event = json!({
        "action": "synchronize", "number": 7,
        "pull_request": {"number": 7, "head": {"sha": head, "ref": "retry"},
                         "base": {"sha": base, "ref": "main"}},
        "repository": {"full_name": "Acme/Widgets"}
    });
    std::fs::write(runner.file("event.json"), event.to_string()).unwrap();
    let inputs = [("URL", app.http.as_str()), ("TOKEN", STATIC_TOKEN)];

    // No notes ref on origin: the reports go, and nothing is said about notes.
    let out = runner.run(&inputs, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("git-ai"), "{}", text(&out));
    assert!(!text(&out).contains("::warning"), "{}", text(&out));
    assert_eq!(app.count("line_records").await, 0);

    // git-ai's note on the mixed commit, pushed with the notes ref.
    let note = runner.file("note.txt");
    std::fs::write(
        &note,
        format!(
            "src/lib.rs\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-2,4\n---\n{}\n",
            json!({"schema_version": "authorship/3.0.0", "base_commit_sha": mixed, "prompts": {},
                   "sessions": {"s_c9883b05a2487d": {"agent_id": {"tool": "claude", "id": "c", "model": "m"}}}})
        ),
    )
    .unwrap();
    git(
        &ws,
        &[
            "notes",
            "--ref=ai",
            "add",
            "-F",
            note.to_str().unwrap(),
            &mixed,
        ],
    );
    git(&ws, &["push", "-q", "origin", "refs/notes/ai"]);
    // The runner's checkout has no notes: the Action fetches them.
    git(&ws, &["update-ref", "-d", "refs/notes/ai"]);

    let out = runner.run(&inputs, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 git-ai note(s) among 2 commit(s)"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains(&format!("git-ai/{mixed}.txt")),
        "{}",
        text(&out)
    );
    assert_eq!(app.count("line_records").await, 1);
    let rows = app
        .db()
        .line_records("acme/widgets", std::slice::from_ref(&mixed))
        .await
        .unwrap();
    assert_eq!(rows[&mixed].files["src/lib.rs"].encode(), "1-2,4");
    assert_eq!(rows[&mixed].agents, vec!["claude".to_string()]);
    app.stop().await;
}
