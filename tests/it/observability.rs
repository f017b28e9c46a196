//! Prometheus and Grafana: the alert rules pass `promtool check rules` and their own
//! `promtool test rules`, and every metric the dashboard and the rules query is one a
//! running tracelink exports on `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sqlite::common::TestApp;
use crate::sqlite::fixtures::FILES;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `promtool`: `TRACELINK_PROMTOOL`, else on the PATH, else where `.ci/run` puts it.
fn promtool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRACELINK_PROMTOOL") {
        return Some(p.into());
    }
    let on_path = Command::new("promtool").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Some("promtool".into());
    }
    let cached = Path::new(&std::env::var_os("HOME")?).join(".cache/tracelink/promtool");
    cached.exists().then_some(cached)
}

/// The `tracelink_*` metric names a text mentions.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("tracelink_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_alert_rules_pass_promtool() {
    let Some(promtool) = promtool() else {
        assert!(
            std::env::var("CI").is_err(),
            "promtool not found (TRACELINK_PROMTOOL, PATH, ~/.cache/tracelink/promtool): .ci/run installs it"
        );
        eprintln!("skipped: promtool not found (.ci/run installs it)");
        return;
    };
    for args in [
        ["check", "rules", "tracelink.rules.yml"],
        ["test", "rules", "tracelink.rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(root().join("alerts"))
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn every_metric_the_dashboard_and_rules_query_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nteams = [\"payments\"]\n\n\
         [[team]]\nname = \"payments\"\nmonthly_budget_usd = 100\n",
    )
    .unwrap();
    let mut app = TestApp::spawn_with(|a| a.identities = Some(identities.clone())).await;
    for f in FILES {
        crate::sqlite::reports::send_otlp(&app, f).await;
    }
    let metrics = app
        .client
        .get(format!("{}/metrics", app.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: std::collections::BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("grafana/tracelink.json")).unwrap())
            .unwrap();
    let mut queried = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queried.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.len() >= 8, "{queried:?}");
    let rules = std::fs::read_to_string(root().join("alerts/tracelink.rules.yml")).unwrap();
    queried.extend(metric_names(&rules));
    let missing: Vec<&String> = queried.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\n{metrics}"
    );
    // The organisation's figures carry no person unless --people on.
    assert!(!metrics.contains("dev@acme.example"), "{metrics}");
    assert!(
        metrics.contains("tracelink_team_monthly_budget_usd{team=\"payments\"} 100"),
        "{metrics}"
    );
    app.stop().await;
}
