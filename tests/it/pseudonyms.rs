//! `--pseudonymize-users`: no email or agent user id is stored — not on sessions, not on
//! commits, not in the kept webhook payloads — and sessions still link to their commits
//! through the identities file, keyed the same way.

use super::common::TestApp;
use super::reports::{
    DROID_2, SECRET, ZERO, deliver, droid_commits, pull, push, report, send_otlp,
};

const AGENT_ID: &str = "usr_60ebb16b39a4a540b62e6c3d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_address_is_stored_and_links_still_match() {
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        format!("[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nagent_ids = [\"{AGENT_ID}\"]\n"),
    )
    .unwrap();
    let mut app = TestApp::spawn_with(move |a| {
        a.webhook_secrets = vec![SECRET.parse().unwrap()];
        a.identities = Some(identities);
        a.pseudonymize_users = true;
        a.secret_key = Some("a secret of sufficient length".parse().unwrap());
    })
    .await;
    for f in [
        "droid-metrics.json",
        "droid-traces.json",
        "claude-code-logs.json",
    ] {
        send_otlp(&app, f).await;
    }
    let mut commits = droid_commits();
    commits[0].message =
        "Replace widget cache with LRU + TTL\n\nCo-authored-by: Ann <ann@corp.example>";
    deliver(&app, "push", "p", &push("refs/heads/cache", ZERO, &commits)).await;
    let opened = pull("opened", 11, DROID_2, "cache", "2026-11-20T11:00:00Z", None);
    deliver(&app, "pull_request", "pr", &opened).await;
    app.applied(2).await;

    // Droid's session, known by its user id only, links through the identities file.
    let (json, _) = report(&app, 11).await;
    let droid = json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["agent"] == "droid")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(droid["links"].as_array().unwrap().len(), 2, "{json}");

    let mut stored = Vec::new();
    for t in ["sessions", "commits", "commit_trailers"] {
        stored.extend(app.dump(t, &[]).await);
    }
    stored.extend(app.db().raw_records().await.unwrap());
    for p in app.db().delivery_payloads().await.unwrap() {
        stored.push(String::from_utf8_lossy(&p).into_owned());
    }
    let stored = stored.join("\n");
    for personal in [
        "dev@acme.example",
        "ann@corp.example",
        AGENT_ID,
        "20e450ac-9246-466e-ac8f-6ee95ab141df",
    ] {
        assert!(!stored.contains(personal), "{personal} is stored");
    }
    assert!(stored.contains("@pseudonymous.invalid"), "{stored}");
    app.stop().await;
}
