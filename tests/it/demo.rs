//! `tracelink demo` end to end, as a process: a real tracelink, the in-process stand-in
//! for GitHub, the captured payloads and the bundled Claude Code session; the comment it
//! posted is printed, then the dashboard is served on a month of an organisation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_the_comment_it_posted() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(["demo", "--no-serve"])
        // Run from the repository, where webhooks/payloads is.
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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

/// `tracelink demo`: after the story, a month of a small organisation is
/// seeded and the dashboard served at the address it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_dashboard_on_a_month_of_an_organisation() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .arg("demo")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TRACELINK_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seeded = String::new();
    let url = tokio::time::timeout(std::time::Duration::from_secs(180), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("seeded") {
                seeded = line.clone();
            }
            if let Some(url) = line.strip_prefix("dashboard: ") {
                return url.to_string();
            }
        }
        panic!("the demo ended without serving");
    })
    .await
    .expect("the dashboard within 3 minutes");
    assert!(
        seeded.contains("sessions of 9 people in 3 teams"),
        "{seeded}"
    );
    let page = get(&url, "/").await;
    let sessions: i64 = page
        .split(r#"id="tile-sessions"><div class="label">Sessions</div><div class="value">"#)
        .nth(1)
        .and_then(|r| r.split('<').next())
        .map(|v| v.replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("{page}"));
    assert!(sessions > 100, "a month of sessions: {sessions}");
    // The story's repository names its default branch, and its session's commits
    // reached it: the waste share is judged, and none (the story's week, 2026-11-20).
    let story = get(&url, "/?from=2026-11-16&to=2026-11-23").await;
    assert!(
        story.contains(r#"id="tile-waste"><div class="label">Waste (not shipped in 14 days)</div><div class="value">0.0%<"#),
        "{story}"
    );
    let teams = get(&url, "/teams").await;
    for team in ["payments", "platform", "mobile"] {
        assert!(
            teams.contains(&format!("<td>{team}</td>")),
            "{team}: {teams}"
        );
    }
    // The story's pull request keeps its one session: the month's sessions, made from
    // the same vendor records, carry traces of their own.
    let pull = get(&url, "/pulls/acme/widgets/7").await;
    assert!(
        pull.contains(
            r#"id="tile-sessions"><div class="label">Sessions</div><div class="value">1<"#
        ),
        "{pull}"
    );
    let agents = get(&url, "/agents").await;
    for agent in ["claude-code", "codex", "gemini-cli"] {
        assert!(agents.contains(&format!("<td>{agent}</td>")), "{agent}");
    }
    child.kill().await.unwrap();
}

/// The demo writes a new database: it refuses to touch an existing file, and says which.
#[tokio::test]
async fn the_demo_will_not_write_into_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mine.db");
    std::fs::write(&db, b"precious").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"))
        .args(["demo", "--no-serve", "--db"])
        .arg(&db)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--db {}: the file exists", db.display())),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), b"precious");
}

/// `GET path` on the server at `url` (`http://host:port/`): the body of a 200.
async fn get(url: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Chunked or not, the markup is there to search.
    body.to_string()
}
