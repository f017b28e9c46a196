//! `tracelink.toml`: `config check` prints what `serve` would run with and where each
//! setting came from (flags over the environment over the file), secrets masked; a bad
//! file is refused naming the setting; `serve` runs with the file's settings.

use std::process::Stdio;
use std::time::Duration;

fn tracelink() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracelink"));
    for var in [
        "TRACELINK_CONFIG",
        "TRACELINK_PEOPLE",
        "TRACELINK_READ_TOKENS",
        "TRACELINK_HTTP_LISTEN",
        "TRACELINK_DB",
        "TRACELINK_LINK_GRACE_SECS",
        "TRACELINK_WEBHOOK_SECRET",
        "TRACELINK_PRICE_TABLE",
    ] {
        c.env_remove(var);
    }
    c
}

fn line<'a>(out: &'a str, setting: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(setting))
        .unwrap_or_else(|| panic!("no {setting}: {out}"))
}

#[tokio::test]
async fn config_check_says_what_serve_would_run_with() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tracelink.toml");
    std::fs::write(
        &file,
        format!(
            "db = \"{}\"\nhttp-listen = \"127.0.0.1:4999\"\nread_tokens = [\"r-one\", \"r-two\"]\n\
             webhook-secret = \"wh-value-xyz\"\npeople = \"on\"\nlink-grace-secs = 900\n",
            dir.path().join("t.db").display()
        ),
    )
    .unwrap();
    let out = tracelink()
        .args(["config", "check", "--config"])
        .arg(&file)
        .arg("--people=off")
        .env("TRACELINK_LINK_GRACE_SECS", "60")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(&format!("config file: {}\n", file.display())),
        "{text}"
    );
    assert!(line(&text, "http-listen").contains("127.0.0.1:4999"));
    assert!(line(&text, "http-listen").ends_with("(config file)"));
    assert!(
        line(&text, "people").contains("off"),
        "the flag wins: {text}"
    );
    assert!(line(&text, "people").ends_with("(command line)"));
    assert!(
        line(&text, "link-grace-secs").contains("60"),
        "the environment wins"
    );
    assert!(line(&text, "link-grace-secs").ends_with("(environment)"));
    assert!(line(&text, "read-token").contains("******** (2 set)"));
    assert!(line(&text, "grpc-listen").ends_with("(default)"));
    for secret in ["r-one", "r-two", "wh-value-xyz"] {
        assert!(!text.contains(secret), "{secret} printed: {text}");
    }
    assert!(text.ends_with("ok: serve would start with these settings\n"));

    // A misspelt setting, a bad value, a missing identities file: named, exit 1.
    for (content, says) in [
        (
            "htp-listen = \"127.0.0.1:1\"\n",
            "unknown setting \"htp-listen\"",
        ),
        (
            "http-listen = \"here\"\n",
            "invalid value 'here' for '--http-listen <HTTP_LISTEN>'",
        ),
        (
            "identities = \"/nowhere/identities.toml\"\n",
            "/nowhere/identities.toml",
        ),
    ] {
        std::fs::write(&file, content).unwrap();
        let out = tracelink()
            .args(["config", "check", "--config"])
            .arg(&file)
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{content}");
        assert!(err.contains(says), "{content}: {err}");
    }
}

#[tokio::test]
async fn serve_runs_with_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("tracelink.toml"),
        format!(
            "db = \"{}\"\nhttp-listen = \"127.0.0.1:{port}\"\ngrpc-listen = \"127.0.0.1:0\"\nread-token = [\"from-the-file\"]\n",
            dir.path().join("t.db").display()
        ),
    )
    .unwrap();
    // ./tracelink.toml is read without --config.
    let mut child = tracelink()
        .arg("serve")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http.get(format!("{url}/healthz")).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http
        .get(format!("{url}/api/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the file's read token is required");
    let r = http
        .get(format!("{url}/api/v1/sessions"))
        .bearer_auth("from-the-file")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().await.unwrap();
}
