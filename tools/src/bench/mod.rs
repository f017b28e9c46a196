//! `tracelink-dev bench …`: the benchmarks, with what they share: the child
//! `tracelink serve` they measure ([`ServerChild`]), CPU pinning with `taskset`, and a
//! minimal HTTP/1.1 client ([`HttpConn`]) that keeps the client's own cost small.
//!
//! - [`ingest`]: OTLP span ingest end to end, against the SQLite writer's ceiling;
//! - [`webhooks`]: webhook acknowledgement latency at a steady rate, and loss;
//! - [`report`]: building a large PR's report, cold and warm;
//! - [`parsers`]: CI report parse throughput per format;
//! - [`load`]: goodput, latency and memory under 1× and 2× the ingest rate, and
//!   `/healthz` under slow connections at a descriptor limit;
//! - [`soak`]: disk use under a steady span load with a short `--retain-raw`.
//!
//! Measure optimised builds: `cargo build --release -p tracelink -p tracelink-dev`, then
//! `./target/release/tracelink-dev bench …`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod ingest;
mod load;
mod parsers;
mod patch;
mod pool;
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
    /// OTLP trace ingest over HTTP/protobuf and gRPC into a child server, and the SQLite ceiling.
    Ingest(ingest::IngestArgs),
    /// GitHub webhook acknowledgement latency at a steady delivery rate, and loss.
    Webhooks(webhooks::WebhookArgs),
    /// Building a large PR's report from a file database, cold and warm.
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
}

impl ServerChild {
    fn start(exe: &Path, db: &Path, core: Option<usize>) -> anyhow::Result<Self> {
        Self::start_with(exe, db, core, &[])
    }

    /// Starts the server with further `serve` flags.
    fn start_with(
        exe: &Path,
        db: &Path,
        core: Option<usize>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut cmd = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.arg("serve").arg("--db").arg(db).args([
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
        cmd.env("TRACELINK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        // taskset execs the server, so the child's pid is the server's.
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .context("the child server's stdout is not piped")?;
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
