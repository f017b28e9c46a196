//! Creating the GitHub App from the manifest (`/setup/app`) against the fake GitHub:
//! the form, the manifest posted to GitHub's web URL with a signed state, GitHub's code
//! exchanged on the API URL, the App stored sealed, its webhooks accepted and its
//! reports posted at once (no restart), the page closed afterwards, and the App read back at the next start — only with the same
//! `TRACELINK_SECRET_KEY`.

use serde_json::{Value, json};

use super::common::TestApp;
use super::reports::{CLAUDE_2 as HEAD, REPO, pull};
use tracelink_dev::fake_github::{APP_ID, FakeFile, FakeGithub, INSTALLATION};

const SECRET_KEY: &str = "a-secret-key-for-the-setup-test";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `name="…" value="…"` (HTML-escaped) in a page.
fn attribute_after<'a>(page: &'a str, marker: &str, attr: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker}: {page}"));
    let rest = &page[at..];
    let start = rest.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    let len = rest[start..].find('"').unwrap();
    &rest[start..start + len]
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_app_is_created_from_the_manifest_and_read_back_at_start() {
    let fake = FakeGithub::start().await;
    let configure = |a: &mut tracelink::config::ServeArgs| {
        a.secret_key = Some(tracelink::config::Secret(SECRET_KEY.into()));
        a.github.github_api_url = fake.url();
        a.github.github_web_url = format!("{}/web", fake.url());
        a.public_url = Some("https://tl.acme.example".into());
        a.comment_debounce = 0;
    };
    let mut app = TestApp::spawn_with(configure).await;
    let http = app.http.clone();
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1});

    // Before: no webhook secret, every delivery refused.
    let r = app
        .deliver("anything", "ping", "before", ping.to_string().as_bytes())
        .await;
    assert_eq!(r.status(), 401);

    let r = client()
        .get(format!("{http}/setup/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let form = r.text().await.unwrap();
    assert!(
        form.contains(r#"value="https://tl.acme.example""#),
        "{form}"
    );

    // An organisation name that is not one is refused, naming it.
    let r = client()
        .post(format!("{http}/setup/app"))
        .form(&[
            ("organization", "acme corp"),
            ("public_url", "https://tl.acme.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not a GitHub organisation name")
    );

    let r = client()
        .post(format!("{http}/setup/app"))
        .form(&[
            ("organization", "acme"),
            ("public_url", "https://tl.acme.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("form-action 'self' {}", fake.url())),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    let action = unescape(attribute_after(&page, "id=\"to-github\"", "action"));
    let prefix = format!(
        "{}/web/organizations/acme/settings/apps/new?state=",
        fake.url()
    );
    assert!(action.starts_with(&prefix), "{action}");
    let state = action[prefix.len()..].to_string();
    let manifest: Value = serde_json::from_str(&unescape(attribute_after(
        &page,
        "name=\"manifest\"",
        "value",
    )))
    .unwrap();
    assert_eq!(
        manifest["hook_attributes"]["url"],
        "https://tl.acme.example/webhooks/github"
    );
    assert_eq!(
        manifest["redirect_url"],
        "https://tl.acme.example/setup/app/callback"
    );

    // A state this server did not sign is refused before GitHub is asked.
    let r = client()
        .get(format!(
            "{http}/setup/app/callback?code=c0de1&state=9999999999.00"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        fake.requests_to("POST", "/app-manifests/c0de1/conversions")
            .await,
        0
    );

    // GitHub sends the person back with a code.
    let webhook_secret = fake.add_manifest_code("c0de1").await;
    let r = client()
        .get(format!(
            "{http}/setup/app/callback?code=c0de1&state={state}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done = r.text().await.unwrap();
    assert!(done.contains("tracelink (acme)"), "{done}");
    assert_eq!(
        attribute_after(&done, "id=\"install\"", "href"),
        "https://github.com/apps/tracelink-acme/installations/new"
    );
    // Its webhooks are accepted at once.
    let r = app
        .deliver(
            &webhook_secret,
            "ping",
            "after",
            ping.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The Setup page says so at once: the webhook secret is no longer missing.
    let setup = client()
        .get(format!("{http}/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!setup.contains("No webhook secret"), "{setup}");
    assert!(!setup.contains("No GitHub App"), "{setup}");
    assert!(
        done.contains("This server posts reports as the App from now on"),
        "{done}"
    );
    // And it posts as the App at once, without a restart: a pull request opened on an
    // installation gets its comment and check run.
    fake.add_pull(
        REPO,
        7,
        HEAD,
        vec![FakeFile::modified("README.md", "@@ -0,0 +1 @@\n+retries\n")],
    );
    let mut opened = pull("opened", 7, HEAD, "retry", "2026-11-20T09:40:00Z", None);
    opened["installation"] = json!({"id": INSTALLATION});
    let r = app
        .deliver(
            &webhook_secret,
            "pull_request",
            "opened",
            opened.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut published = app.server.as_ref().unwrap().reports_published.clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while fake.comments(REPO, 7).is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::timeout(left, published.changed())
            .await
            .expect("the report posted by the App created a moment ago")
            .unwrap();
    }
    assert!(
        fake.comments(REPO, 7)[0]
            .body
            .starts_with("<!-- tracelink:pr-report")
    );
    assert_eq!(fake.check_runs(REPO).len(), 1);
    // The key is stored sealed, never as PEM.
    let stored = app.db().github_app_stored().await.unwrap().unwrap();
    assert_eq!(stored.app_id, APP_ID as i64);
    assert!(!String::from_utf8_lossy(&stored.private_key_sealed).contains("PRIVATE KEY"));
    assert!(!String::from_utf8_lossy(&stored.webhook_secret_sealed).contains(&webhook_secret));
    // The setup is closed now.
    for path in [
        "/setup/app",
        &format!("/setup/app/callback?code=c0de1&state={state}"),
    ] {
        let r = client().get(format!("{http}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 409, "{path}");
    }

    // The next start reads the App (no App flags) and its webhook secret.
    app.restart_with(configure).await;
    let r = app
        .deliver(
            &webhook_secret,
            "ping",
            "restarted",
            ping.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let setup = client()
        .get(format!("{}/setup", app.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!setup.contains("No GitHub App"), "{setup}");
    assert!(!setup.contains("No webhook secret"), "{setup}");

    // Under another secret key it does not start, and says why.
    app.stop().await;
    let mut args = tracelink::config::ServeArgs::ephemeral(app.location());
    configure(&mut args);
    args.secret_key = Some(tracelink::config::Secret(
        "another-secret-key-entirely".into(),
    ));
    let err = format!(
        "{:#}",
        tracelink::server::Server::start(&args).await.err().unwrap()
    );
    assert!(
        err.contains("tracelink-acme") && err.contains("does not open with this key"),
        "{err}"
    );
    let mut args = tracelink::config::ServeArgs::ephemeral(app.location());
    configure(&mut args);
    args.secret_key = None;
    let err = format!(
        "{:#}",
        tracelink::server::Server::start(&args).await.err().unwrap()
    );
    assert!(err.contains("TRACELINK_SECRET_KEY"), "{err}");
}
