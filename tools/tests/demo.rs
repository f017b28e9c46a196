//! `tracelink-dev demo` end to end: a real tracelink, the fake GitHub, the captured
//! payloads and the bundled Claude Code session; the comment it posted is printed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_the_comment_it_posted() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink-dev"))
        .arg("demo")
        // Run from the repository, where webhooks/payloads is.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("TRACELINK_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("replayed    91 captured deliveries from webhooks/payloads (91 stored)"),
        "{stdout}"
    );
    assert!(stdout.contains("### 🔗 tracelink · 1 agent session (Claude Code) · $0.37 · 80% of added lines by agents · CI passing"), "{stdout}");
    assert!(
        stdout.contains("| Shipped | production 40 m after merge |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Check run \"tracelink\" on 5a1b2c3: 1 agent session (Claude Code)"),
        "{stdout}"
    );
}
