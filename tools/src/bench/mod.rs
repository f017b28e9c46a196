//! `tracelink-dev bench …`: the benchmarks, with what they share: the child
//! `tracelink serve` they measure ([`ServerChild`]), CPU pinning with `taskset`, and a
//! minimal HTTP/1.1 client ([`HttpConn`]) that keeps the client's own cost small.
//!
//! - [`ingest`]: OTLP span ingest end to end, against the writer's ceiling and plain
//!   1 KB row inserts, with database round-trips per 1,000 spans;
//! - [`webhooks`]: webhook acknowledgement latency at a steady rate, and loss;
//! - [`report`]: building a large PR's report, cold and warm;
//!
//! Those three run on SQLite and PostgreSQL (`--engines sqlite,postgres`, a fresh
//! database per phase, see [`engines`]) and end with the figures side by side;
//! - [`parsers`]: CI report parse throughput per format;
//! - [`load`]: goodput, latency and memory under 1× and 2× the ingest rate, and
//!   `/healthz` under slow connections at a descriptor limit;
//! - [`soak`]: disk use under a steady span load with a short `--retain-raw`;
//! - [`replicas`]: OTLP/HTTP ingest and webhooks with one and with two `tracelink serve`
//!   replicas on one PostgreSQL database, requests spread round-robin;
//! - [`analytics`]: the analytics API's latency on a year of a large organisation,
//!   generated once and kept, on SQLite and PostgreSQL.
//!
//! Measure optimised builds: `cargo build --release -p tracelink -p tracelink-dev`, then
//! `./target/release/tracelink-dev bench …`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracelink::store::Location;

mod analytics;
mod engines;
mod ingest;
mod load;
mod parsers;
mod patch;
mod pool;
mod replicas;
mod report;
mod soak;
mod webhooks;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub kind: BenchKind,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchKind {
    /// OTLP trace ingest over HTTP/protobuf and gRPC into a child server, and the storage
    /// ceilings, on SQLite and PostgreSQL.
    Ingest(ingest::IngestArgs),
    /// GitHub webhook acknowledgement latency at a steady delivery rate, and loss, on
    /// SQLite and PostgreSQL.
    Webhooks(webhooks::WebhookArgs),
    /// Building a large PR's report, cold and warm, on SQLite and PostgreSQL.
    Report(report::ReportArgs),
    /// CI report parse throughput (MB/s) per format, on large generated reports.
    Parsers(parsers::ParserArgs),
    /// Patch coverage of a 5,000-line diff over 100k coverable lines, in memory.
    Patch(patch::PatchArgs),
    /// OTLP/HTTP goodput, p99 and peak RSS at 1× and 2× the ingest rate (clients honour
    /// Retry-After), and /healthz latency under slow connections at a descriptor limit.
    Load(load::LoadArgs),
    /// Disk use and rows under a steady OTLP/HTTP span load with a short `--retain-raw`,
    /// sampled every 10 s: flat once the window is full?
    Soak(soak::SoakArgs),
    /// OTLP/HTTP ingest and webhooks (acknowledgement, time to apply, exactly once) with
    /// one and with two replicas on one PostgreSQL database, spread round-robin.
    Replicas(replicas::ReplicaArgs),
    /// The analytics API's latency on a year of a 2,000-person organisation (500,000
    /// sessions, generated once and kept), on SQLite and PostgreSQL.
    Analytics(analytics::AnalyticsArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.kind {
        BenchKind::Ingest(a) => ingest::run(a),
        BenchKind::Webhooks(a) => webhooks::run(a),
        BenchKind::Report(a) => report::run(a),
        BenchKind::Parsers(a) => parsers::run(a),
        BenchKind::Patch(a) => patch::run(a),
        BenchKind::Load(a) => load::run(a),
        BenchKind::Soak(a) => soak::run(a),
        BenchKind::Replicas(a) => replicas::run(a),
        BenchKind::Analytics(a) => analytics::run(a),
    }
}

/// The `tracelink` executable the child servers run: `$TRACELINK_BIN` when set, else
/// `tracelink` beside this executable (the same Cargo target directory).
fn tracelink_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TRACELINK_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("TRACELINK_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    let me = std::env::current_exe().context("finding this executable")?;
    let dir = me
        .parent()
        .with_context(|| format!("{} has no parent directory", me.display()))?;
    let path = dir.join(format!("tracelink{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "the tracelink binary is not at {}: build it first with `cargo build --release --workspace` \
             (or `cargo build --release -p tracelink`), or point TRACELINK_BIN at one",
            path.display()
        );
    }
    Ok(path)
}

// ---------------------------------------------------------------------------------------
// Processes: pinning, the child server, /proc figures
// ---------------------------------------------------------------------------------------

fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins every thread of `pid` (`-a`: sqlx runs each SQLite connection on its own thread,
/// and threads created later inherit the affinity of their creator). A thread that ends
/// while taskset walks the list fails the call, so it is retried.
fn pin(pid: u32, core: usize) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let out = Command::new("taskset")
            .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
            .stdin(Stdio::null())
            .output()
            .context("running taskset")?;
        if out.status.success() {
            return Ok(());
        }
        if attempt == 5 {
            bail!(
                "taskset failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `tracelink serve` in a child process; killed on drop unless stopped.
struct ServerChild {
    child: Child,
    pid: u32,
    grpc: SocketAddr,
    http: SocketAddr,
    stopped: bool,
    /// Statements the server ran, when started with [`ServerChild::start_counting`].
    statements: Option<Arc<Mutex<StatementLog>>>,
}

/// Where a child server's stderr goes.
enum ChildStderr {
    /// To this process's stderr.
    Inherit,
    /// Read for sqlx's statement log ([`ServerChild::start_counting`]).
    CountStatements,
    /// Into a file (created or truncated), with this `TRACELINK_LOG` filter.
    File(PathBuf, &'static str),
}

/// Statements counted from the server's sqlx statement log (`sqlx::query` at debug):
/// by the statement's first words (`INSERT INTO <table>`, `SELECT`, `BEGIN`, …).
#[derive(Debug, Default, Clone)]
struct StatementLog {
    by_kind: BTreeMap<String, u64>,
}

impl StatementLog {
    /// The kind of statement a log line names, if it is a statement line.
    fn kind(line: &str) -> Option<String> {
        if !line.contains("sqlx::query") {
            return None;
        }
        let line = strip_ansi(line);
        let summary = line.split_once("summary=")?.1;
        let summary = summary.strip_prefix('"').unwrap_or(summary);
        let mut words = summary
            .split(|c: char| c.is_whitespace() || c == '"' || c == '(' || c == ';')
            .filter(|w| !w.is_empty());
        let first = words.next()?.to_ascii_uppercase();
        Some(match first.as_str() {
            "INSERT" | "DELETE" => {
                let _into = words.next();
                format!("{first} {}", words.next().unwrap_or("?"))
            }
            "UPDATE" => format!("{first} {}", words.next().unwrap_or("?")),
            _ => first,
        })
    }

    /// Transaction control: `BEGIN`, `COMMIT`, `ROLLBACK`, savepoints.
    fn is_transaction_control(kind: &str) -> bool {
        matches!(
            kind,
            "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "END" | "START"
        )
    }

    /// `self - earlier`, kind by kind.
    fn since(&self, earlier: &StatementLog) -> StatementLog {
        StatementLog {
            by_kind: self
                .by_kind
                .iter()
                .map(|(k, n)| (k.clone(), n - earlier.by_kind.get(k).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    /// Statements other than transaction control.
    fn statements(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| !Self::is_transaction_control(k))
            .map(|(_, n)| n)
            .sum()
    }

    /// Transaction control statements logged.
    fn transaction_control(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| Self::is_transaction_control(k))
            .map(|(_, n)| n)
            .sum()
    }
}

/// `line` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl ServerChild {
    fn start(exe: &Path, db: impl Into<Location>, core: Option<usize>) -> anyhow::Result<Self> {
        Self::start_with(exe, db, core, &[])
    }

    /// Starts the server with further `serve` flags.
    fn start_with(
        exe: &Path,
        db: impl Into<Location>,
        core: Option<usize>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        Self::spawn(exe, &db.into(), core, extra, ChildStderr::Inherit)
    }

    /// Starts the server with further `serve` flags, its log (`TRACELINK_LOG=filter`)
    /// written to the file `log`.
    fn start_logging(
        exe: &Path,
        db: impl Into<Location>,
        core: Option<usize>,
        extra: &[String],
        log: &Path,
        filter: &'static str,
    ) -> anyhow::Result<Self> {
        Self::spawn(
            exe,
            &db.into(),
            core,
            extra,
            ChildStderr::File(log.to_path_buf(), filter),
        )
    }

    /// Starts the server with sqlx's statement log on (`sqlx::query=debug`), every
    /// statement it runs counted from its stderr (other lines are passed on). The log
    /// costs time: measure throughput with a server started otherwise.
    fn start_counting(
        exe: &Path,
        db: impl Into<Location>,
        core: Option<usize>,
    ) -> anyhow::Result<Self> {
        Self::spawn(exe, &db.into(), core, &[], ChildStderr::CountStatements)
    }

    /// The statements counted so far (none unless started counting).
    fn statement_log(&self) -> Option<StatementLog> {
        let log = self.statements.as_ref()?;
        Some(log.lock().ok()?.clone())
    }

    fn spawn(
        exe: &Path,
        db: &Location,
        core: Option<usize>,
        extra: &[String],
        stderr: ChildStderr,
    ) -> anyhow::Result<Self> {
        let count_statements = matches!(stderr, ChildStderr::CountStatements);
        let mut cmd = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.arg("serve").arg("--db");
        // The URL itself (its Display masks a password).
        match db {
            Location::File(path) => cmd.arg(path),
            Location::Postgres(url) => cmd.arg(url),
        };
        cmd.args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ]);
        cmd.args(extra);
        // The child takes its settings from these flags and its defaults only.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TRACELINK_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env(
            "TRACELINK_LOG",
            match &stderr {
                ChildStderr::Inherit => "warn",
                ChildStderr::CountStatements => "warn,sqlx::query=debug",
                ChildStderr::File(_, filter) => filter,
            },
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(match &stderr {
            ChildStderr::Inherit => Stdio::inherit(),
            ChildStderr::CountStatements => Stdio::piped(),
            ChildStderr::File(path, _) => Stdio::from(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
        });
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        // taskset execs the server, so the child's pid is the server's.
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .context("the child server's stdout is not piped")?;
        let statements = if count_statements {
            let stderr = child
                .stderr
                .take()
                .context("the child server's stderr is not piped")?;
            let log = Arc::new(Mutex::new(StatementLog::default()));
            let counted = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    match StatementLog::kind(&line) {
                        Some(kind) => {
                            if let Ok(mut log) = counted.lock() {
                                *log.by_kind.entry(kind).or_default() += 1;
                            }
                        }
                        None if !line.contains("sqlx::query") => eprintln!("{line}"),
                        None => {}
                    }
                }
            });
            Some(log)
        } else {
            None
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut tx = Some(tx);
            while let Some(Ok(line)) = lines.next() {
                if let Some(tx) = tx.take_if(|_| line.starts_with("tracelink listening")) {
                    let _ = tx.send(line);
                }
            }
        });
        let mut server = ServerChild {
            child,
            pid,
            grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            stopped: false,
            statements,
        };
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                bail!(
                    "the server did not report its addresses (exit status: {})",
                    status.map_or("still running".to_string(), |s| s.to_string())
                );
            }
        };
        for word in line.split_whitespace() {
            if let Some(a) = word.strip_prefix("grpc=") {
                server.grpc = a
                    .parse()
                    .with_context(|| format!("gRPC address in {line:?}"))?;
            } else if let Some(a) = word.strip_prefix("http=") {
                server.http = a
                    .parse()
                    .with_context(|| format!("HTTP address in {line:?}"))?;
            }
        }
        if server.grpc.port() == 0 || server.http.port() == 0 {
            bail!("cannot read both addresses from {line:?}");
        }
        Ok(server)
    }

    /// Reads the peak RSS, sends SIGTERM and waits for a clean exit.
    fn stop(mut self) -> anyhow::Result<Option<u64>> {
        let peak = peak_rss_kib(self.pid);
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed ({status})", self.pid);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let exit = loop {
            if let Some(s) = self.child.try_wait().context("waiting for the server")? {
                break s;
            }
            if Instant::now() > deadline {
                bail!("the server did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.stopped = true;
        if !exit.success() {
            eprintln!("warning: the server exited with {exit}");
        }
        Ok(peak)
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A keep-alive HTTP/1.1 connection that can POST an OTLP payload.
pub(crate) struct HttpConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    head: Vec<u8>,
    /// The last response's `Retry-After`, in seconds.
    retry_after: Option<Duration>,
}

impl HttpConn {
    pub(crate) async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut conn = HttpConn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            head: Vec::with_capacity(256),
            retry_after: None,
        };
        conn.reconnect().await?;
        Ok(conn)
    }

    async fn reconnect(&mut self) -> anyhow::Result<()> {
        let s = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        s.set_nodelay(true)?;
        self.buf.clear();
        self.stream = Some(s);
        Ok(())
    }

    /// How long the last response asked the client to wait before retrying.
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// POSTs an OTLP/HTTP protobuf payload; returns the response status with its body.
    async fn post(&mut self, body: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        self.request("POST", "/v1/traces", body).await
    }

    /// Sends one request and returns the response status with its body.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, &[u8])> {
        self.request_with(
            method,
            path,
            "Content-Type: application/x-protobuf\r\n",
            body,
        )
        .await
    }

    /// Sends one request with extra header lines (each ending in `\r\n`).
    pub(crate) async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, &[u8])> {
        use std::io::Write;
        self.head.clear();
        write!(
            self.head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.addr
        )?;
        if method == "POST" {
            write!(self.head, "{headers}Content-Length: {}\r\n", body.len())?;
        }
        self.head.extend_from_slice(b"\r\n");
        if self.stream.is_none() {
            self.reconnect().await?;
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("not connected to {}", self.addr);
        };
        stream.write_all(&self.head).await?;
        stream.write_all(body).await?;

        // A previous response was consumed whole, so the buffer starts with this one.
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 * 1024 {
                bail!("response headers longer than 64 KiB");
            }
            self.buf.reserve(8 * 1024);
            if stream.read_buf(&mut self.buf).await? == 0 {
                bail!("the server closed the connection mid-response");
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).context("response head")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut length = 0usize;
        let mut close = false;
        self.retry_after = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .parse()
                    .with_context(|| format!("bad Content-Length {value:?}"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                bail!("chunked responses are not supported by the bench client");
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                close = true;
            } else if name.eq_ignore_ascii_case("retry-after") {
                self.retry_after = value.parse().ok().map(Duration::from_secs);
            }
        }
        let end = head_end + length;
        while self.buf.len() < end {
            self.buf.reserve(end - self.buf.len());
            if stream.read_buf(&mut self.buf).await? == 0 {
                bail!("the server closed the connection mid-body");
            }
        }
        if close {
            self.stream = None;
        }
        Ok((status, &self.buf[head_end..end]))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
