//! The two engines' schemas stay one schema: `tools/pg_schema_check.py` applies every
//! SQLite migration and the PostgreSQL ones to scratch databases and compares tables,
//! columns, types, keys, indexes and foreign keys, and runs SQLite's scalar functions
//! the queries use on both engines with the same SQL text. A migration added to one
//! engine only fails here.

#[test]
fn the_postgres_schema_is_the_sqlite_schema() {
    let url = tracelink_dev::pgtest::server_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (credentials, host_port) = authority
        .rsplit_once('@')
        .unwrap_or(("postgres", authority));
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/pg_schema_check.py"
        ))
        .args(["--host", host, "--port", port, "--user", user])
        .env("PGPASSWORD", password)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().any(|l| l.starts_with("OK: ")), "{stdout}");
}
