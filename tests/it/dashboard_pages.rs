//! The dashboard over plain HTTP, on both engines: who may read it, what its responses
//! promise the browser, that names from telemetry are shown as text, never as markup,
//! and that its CSV is the API's answer.

use serde_json::{Value, json};

use super::analytics::app_with;
use super::common::TestApp;

const TOKEN: &str = "dashboard-read-token";
const RANGE: &str = "from=2026-11-16&to=2026-11-23&bucket=week";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A Claude Code session (2026-11-20 12:00Z) whose tool is named with markup.
fn hostile_tool() -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "claude-code"}}
        ]},
        "scopeLogs": [{
            "scope": {"name": "com.anthropic.claude_code.events"},
            "logRecords": [{
                "timeUnixNano": "1795176000000000000",
                "body": {"stringValue": "claude_code.tool_result"},
                "attributes": [
                    {"key": "session.id", "value": {"stringValue": "hostile"}},
                    {"key": "event.name", "value": {"stringValue": "tool_result"}},
                    {"key": "tool_name", "value": {"stringValue": "<img src=x onerror=alert(1)>"}}
                ]
            }]
        }]
    }]})
}

/// `GET url` with the sign-in cookie, redirects not followed.
async fn signed_get(url: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

async fn signed_in_cookie(app: &TestApp) -> String {
    let r = client()
        .post(format!("{}/login", app.http))
        .form(&[("token", TOKEN), ("next", "/agents")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/agents");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        !cookie.contains(TOKEN),
        "the cookie holds a digest: {cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_dashboard_is_for_read_token_holders_and_escapes_what_telemetry_names() {
    let (mut app, _dir) = app_with(|a| {
        a.read_tokens = vec![tracelink::config::Secret(TOKEN.into())];
    })
    .await;
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            hostile_tool().to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    app.linked_up().await;
    app.analytics_counted().await;
    let http = app.http.clone();

    // Without signing in: pages send the browser to the sign-in page, CSV is refused,
    // and a wrong token is told so.
    let r = client()
        .get(format!("{http}/teams?{RANGE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fteams%3Ffrom%3D2026-11-16%26to%3D2026-11-23%26bucket%3Dweek"
    );
    let r = client()
        .get(format!("{http}/export.csv?group_by=team&metrics=cost"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(format!("{http}/login"))
        .form(&[("token", "wrong"), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("That is not a read token"));
    let r = client()
        .post(format!("{http}/login"))
        .form(&[("token", TOKEN), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/", "never off this server");

    let cookie = signed_in_cookie(&app).await;
    let r = signed_get(&format!("{http}/agents?{RANGE}"), &cookie).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("tool:&lt;img src=x onerror=alert(1)&gt;"),
        "the tool's name is text"
    );
    assert!(!page.contains("<img src=x"), "never markup");
    assert!(
        !page.contains(">People<"),
        "People is shown with --people on only"
    );
    // The filters suggest the identities file's teams and owned repositories, and the
    // agents tracelink recognises.
    assert!(
        page.contains(r#"<datalist id="team-choices"><option value="payments"><option value="platform"><option value="unassigned"></datalist>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<datalist id="repo-choices"><option value="acme/widgets"></datalist>"#)
    );
    assert!(page.contains(r#"<option value="gemini-cli">"#));

    // The workflows' CSV is the API's answer, the hostile name a plain field.
    let csv = signed_get(
        &format!("{http}/export.csv?group_by=workflow&metrics=sessions,cost&{RANGE}"),
        &cookie,
    )
    .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let api: Value = client()
        .get(format!(
            "{http}/api/v1/analytics/sessions?group_by=workflow&{RANGE}"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(csv.lines().next(), Some("workflow,sessions,cost"));
    assert_eq!(
        csv.lines().count() - 1,
        api["groups"].as_array().unwrap().len(),
        "{csv}"
    );
    let hostile = csv
        .lines()
        .find(|l| l.starts_with("tool:<img"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        hostile.starts_with("tool:<img src=x onerror=alert(1)>,1,"),
        "{hostile}"
    );

    // Setup says what is missing: this server has no GitHub App (it has a webhook
    // secret), and the push's deliveries arrived.
    let r = signed_get(&format!("{http}/setup"), &cookie).await;
    assert_eq!(r.status(), 200);
    let setup = r.text().await.unwrap();
    assert!(setup.contains("No GitHub App"), "{setup}");
    assert!(!setup.contains("No webhook secret"), "{setup}");
    assert!(
        setup.contains("<td>acme/widgets</td>"),
        "webhooks arrived: {setup}"
    );

    // Per-person views are off: the page says why.
    let r = signed_get(&format!("{http}/people?{RANGE}"), &cookie).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("--people on"));
    // A bad filter is named.
    let r = signed_get(&format!("{http}/teams?from=yesterday"), &cookie).await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("from=&quot;yesterday&quot;")
    );
    let r = signed_get(
        &format!("{http}/export.csv?group_by=team&metrics=spend"),
        &cookie,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("no analytics metric \"spend\"")
    );
    app.stop().await;
}
