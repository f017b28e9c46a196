//! The dashboard in a real browser (headless Chromium through chromedriver) on the
//! analytics suite's seeded database (four agents' sessions on 2026-11-20, Claude
//! Code's commits pushed): sign in with a read token, every page loads without a
//! script error, shows the API's figures, a filter changes them, and every table's CSV
//! is the API's answer. Each page's screenshot is saved in
//! `$CARGO_TARGET_TMPDIR/screenshots/`. `.ci/run` installs Chromium; elsewhere the test
//! is skipped without it.

use serde_json::{Value, json};

use crate::browser::{Driver, Session};
use crate::sqlite::analytics::app_with;

const TOKEN: &str = "read-secret-for-the-dashboard";
const RANGE: &str = "from=2026-11-16&to=2026-11-23&bucket=day";

async fn api(http: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{http}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn screenshot(s: &Session, name: &str) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = s.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Loads `path` and checks that it is the page titled `h1`, drawn without errors.
async fn open(s: &Session, http: &str, path: &str, h1: &str) {
    s.goto(&format!("{http}{path}")).await;
    assert_eq!(s.text("h1").await.as_deref(), Some(h1), "{path}");
    assert_eq!(s.page_errors().await, Vec::<String>::new(), "{path}");
}

/// The CSV the page's table `id` links to, fetched by the page (with its cookie).
async fn table_csv(s: &Session, id: &str) -> String {
    let v = s
        .run_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('#' + arguments[0] + ' caption a.csv');
             if (!a) { done('no CSV link'); return; }
             fetch(a.href).then(r => r.text()).then(done, e => done('failed: ' + e));",
            json!([id]),
        )
        .await;
    v.as_str().unwrap_or_default().to_string()
}

/// Every group total of each metric the CSV has a column for, as the API answers.
async fn assert_csv_is_the_api(http: &str, csv: &str, group_by: &str) {
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(head[0], group_by, "{csv}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(!rows.is_empty(), "{csv}");
    for (i, metric) in head.iter().enumerate().skip(1) {
        let a = api(
            http,
            &format!("/api/v1/analytics/{metric}?group_by={group_by}&{RANGE}"),
        )
        .await;
        let groups = a["groups"].as_array().unwrap();
        for g in groups {
            let key = g["key"].as_str().unwrap();
            let row = rows
                .iter()
                .find(|r| r[0] == key)
                .unwrap_or_else(|| panic!("{metric}: {key} missing from {csv}"));
            let want = match &g["total"] {
                Value::Null => String::new(),
                v => v.to_string(),
            };
            assert_eq!(row[i], want, "{metric} of {key}");
        }
    }
}

#[tokio::test]
async fn the_dashboard_in_a_browser() {
    let Some(driver) = Driver::start().await else {
        assert!(
            std::env::var("CI").is_err(),
            "chromium and chromedriver not found: .ci/run installs them"
        );
        eprintln!("skipped: chromium and chromedriver not found (.ci/run installs them)");
        return;
    };
    let (mut app, _dir) = app_with(|a| {
        a.read_tokens = vec![tracelink::config::Secret(TOKEN.into())];
        a.people = tracelink::config::OnOff::On;
    })
    .await;
    let http = app.http.clone();
    let s = driver.session().await;

    // Signing in: the page asked for is where a person lands.
    s.goto(&format!("{http}/?{RANGE}")).await;
    s.wait_url("/login?next=").await;
    assert_eq!(s.page_errors().await, Vec::<String>::new());
    screenshot(&s, "login").await;
    s.type_into("#token", "not-the-token").await;
    s.click("button[type=submit]").await;
    assert_eq!(
        s.wait_text("[role=alert]").await,
        "That is not a read token of this server."
    );
    s.type_into("#token", TOKEN).await;
    s.click("button[type=submit]").await;
    assert_eq!(s.wait_url("/?from=").await, format!("{http}/?{RANGE}"));
    // The session cookie is HttpOnly: scripts cannot read it.
    assert_eq!(s.run("return document.cookie;", json!([])).await, "");

    // Overview: the API's figures.
    open(&s, &http, &format!("/?{RANGE}"), "Overview").await;
    let sessions = api(&http, &format!("/api/v1/analytics/sessions?{RANGE}")).await;
    assert_eq!(sessions["total"], 4);
    assert_eq!(s.text("#tile-sessions .value").await.as_deref(), Some("4"));
    let cost = api(&http, &format!("/api/v1/analytics/cost?{RANGE}")).await;
    let shown = s.text("#tile-cost .value").await.unwrap();
    assert_eq!(
        shown,
        format!("${:.2}", cost["total"].as_f64().unwrap()),
        "{cost}"
    );
    let points = s
        .run(
            "return document.querySelectorAll('svg.chart circle').length;",
            json!([]),
        )
        .await;
    assert!(
        points.as_u64().unwrap() >= 7,
        "the charts draw points: {points}"
    );
    screenshot(&s, "overview").await;
    assert_csv_is_the_api(&http, &table_csv(&s, "by-team").await, "team").await;

    // A filter lives in the URL and changes the figures: from the 21st on, none of the
    // sessions (all on the 20th) is in range.
    s.run(
        "document.querySelector('input[name=from]').value = '2026-11-21';",
        json!([]),
    )
    .await;
    s.click(".filters button[type=submit]").await;
    s.wait_url("from=2026-11-21").await;
    assert_eq!(s.text("#tile-sessions .value").await.as_deref(), Some("0"));
    assert_eq!(s.page_errors().await, Vec::<String>::new());

    // A team filter, also in the URL: the overview shows payments' sessions only.
    open(&s, &http, &format!("/?{RANGE}"), "Overview").await;
    s.type_into("input[name=team]", "payments").await;
    s.click(".filters button[type=submit]").await;
    s.wait_url("team=payments").await;
    let payments = api(
        &http,
        &format!("/api/v1/analytics/sessions?team=payments&{RANGE}"),
    )
    .await;
    assert!(payments["total"].as_i64().unwrap() < 4, "{payments}");
    assert_eq!(
        s.text("#tile-sessions .value").await,
        Some(payments["total"].to_string())
    );
    assert_eq!(s.page_errors().await, Vec::<String>::new());

    // Every other page.
    for (path, h1, table, group_by) in [
        ("/teams", "Teams", "teams", "team"),
        ("/repos", "Repositories", "repos", "repo"),
        ("/agents", "Agents & models", "agents", "agent"),
        ("/people", "People", "people", "person"),
    ] {
        open(&s, &http, &format!("{path}?{RANGE}"), h1).await;
        screenshot(&s, h1).await;
        assert_csv_is_the_api(&http, &table_csv(&s, table).await, group_by).await;
    }
    open(&s, &http, &format!("/agents?{RANGE}"), "Agents & models").await;
    let agents = s
        .run(
            "return [...document.querySelectorAll('#agents tbody tr td:first-child')].map(t => t.textContent);",
            json!([]),
        )
        .await;
    assert_eq!(
        agents,
        json!(["claude-code", "codex", "droid", "gemini-cli"]),
        "one row per agent"
    );
    assert_csv_is_the_api(&http, &table_csv(&s, "models").await, "model").await;

    // A pull request of Claude Code's commits, and its CI run.
    use crate::sqlite::reports::{HUMAN, deliver, pull, workflow_run};
    deliver(
        &app,
        "pull_request",
        "o7",
        &pull("opened", 7, HUMAN, "retry", "2026-11-21T16:01:00Z", None),
    )
    .await;
    deliver(
        &app,
        "workflow_run",
        "w7",
        &workflow_run(555, 1, HUMAN, "success", "2026-11-21T16:05:00Z"),
    )
    .await;
    app.applied(3).await;
    app.linked_up().await;
    open(&s, &http, &format!("/pulls?{RANGE}"), "Pull requests").await;
    screenshot(&s, "pull-requests").await;
    s.click("#pulls tbody a").await;
    assert_eq!(
        s.wait_text("h1").await,
        "acme/widgets#7 Retry HTTP requests with backoff"
    );
    assert_eq!(s.page_errors().await, Vec::<String>::new());
    let drawn = s
        .run(
            "return [document.querySelectorAll('svg.graph g.node').length, document.querySelectorAll('svg.graph path.edge').length];",
            json!([]),
        )
        .await;
    // One session, three commits, one run; the session's two commits and the head's run.
    assert_eq!(drawn, json!([5, 3]), "nodes and edges");
    screenshot(&s, "pull-request").await;
    // Its tables download as CSV, as the report's JSON has them.
    let report = api(
        &http,
        "/api/v1/repos/acme/widgets/pulls/7/report?format=json",
    )
    .await;
    let commits = table_csv(&s, "commits").await;
    let expected: Vec<String> = report["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{},{}", c["sha"].as_str().unwrap(), c["agent_assisted"]))
        .collect();
    let got: Vec<String> = commits
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{}", f[0], f[f.len() - 1])
        })
        .collect();
    assert_eq!(
        commits.lines().next(),
        Some("sha,subject,author,agent_assisted")
    );
    assert_eq!(got, expected, "{commits}");
    let sessions = table_csv(&s, "sessions").await;
    let first = &report["sessions"][0];
    let row: Vec<&str> = sessions.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(
        &row[..3],
        [
            first["session_id"].as_str().unwrap(),
            first["agent"].as_str().unwrap(),
            first["login"].as_str().unwrap_or(""),
        ],
        "{sessions}"
    );
    for (i, k) in [(3, "cost_in_pr_usd"), (4, "lines_added")] {
        assert_eq!(
            row[i].parse::<f64>().ok(),
            first[k].as_f64(),
            "{k}: {sessions}"
        );
    }
    open(&s, &http, "/alerts?day=2026-11-20", "Alerts").await;
    screenshot(&s, "alerts").await;
    // The budget of payments ($0.50 a month) is crossed by Claude Code's session.
    let alerts = api(&http, "/api/v1/alerts?day=2026-11-20").await;
    let rows = s
        .run(
            "return document.querySelectorAll('#alerts tbody tr').length;",
            json!([]),
        )
        .await;
    assert_eq!(
        rows.as_u64().unwrap() as usize,
        alerts["alerts"].as_array().unwrap().len().max(1)
    );

    open(&s, &http, "/setup", "Setup").await;
    screenshot(&s, "setup").await;
    let missing = s.text("#missing").await.unwrap();
    assert!(missing.contains("No GitHub App"), "{missing}");
    assert_eq!(
        s.text("#webhooks tbody td").await.as_deref(),
        Some("acme/widgets"),
        "the pushes arrived"
    );

    // Signing out ends the session.
    s.click("header form button").await;
    s.wait_url("/login").await;
    s.goto(&format!("{http}/teams")).await;
    s.wait_url("/login?next=%2Fteams").await;
    s.close().await;
    app.stop().await;
}
