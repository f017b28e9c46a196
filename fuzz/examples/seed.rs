//! Writes the seed inputs of every fuzz target into `fuzz/corpus/<target>/`, from the
//! repository's fixtures: the vendor OTLP/JSON sessions (one request per resource, as JSON
//! and encoded as protobuf), the captured webhook payloads and the commit messages they
//! carry, the CI report fixtures, and hand-written line records, upload contexts and
//! multipart uploads. Run it, then `cargo fuzz cmin <target>` (see README.md).
//!
//! ```sh
//! cd fuzz && cargo run --example seed
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};
use tracelink::ci::{self, Format};
use tracelink::otlp::{self, Encoding};
use tracelink_fuzz::BOUNDARY;

fn main() -> std::io::Result<()> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz
        .parent()
        .expect("fuzz/ is in the repository")
        .to_path_buf();
    // Where to write: fuzz/corpus, or the directory given.
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| fuzz.join("corpus"), PathBuf::from);
    let mut out = Seeds { dir, count: 0 };
    otlp_seeds(&root, &mut out)?;
    webhook_seeds(&root, &mut out)?;
    trailer_seeds(&root, &mut out)?;
    ci_seeds(&root, &mut out)?;
    line_record_seeds(&root, &mut out)?;
    upload_seeds(&root, &mut out)?;
    println!("{} seeds written under {}", out.count, out.dir.display());
    Ok(())
}

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    /// Writes one seed of a target.
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        self.count += 1;
        Ok(())
    }
}

fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}

fn stem(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Requests cut from each OTLP/JSON fixture, as written (number and string forms kept):
/// one per resource entry, and one per record (span, log record, metric) with its
/// resource and scope, so that every vendor's record kinds are also small seeds; each
/// also encoded as protobuf. Plus gzip bodies, one of them two gzip members.
fn otlp_seeds(root: &Path, out: &mut Seeds) -> std::io::Result<()> {
    let mut first_proto = None;
    for path in files(&root.join("tests/fixtures/otlp"))? {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let doc: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let Some((key, Value::Array(resources))) = doc.as_object().and_then(|o| o.iter().next())
        else {
            continue;
        };
        let (scopes_key, records_key) = match key.as_str() {
            "resourceSpans" => ("scopeSpans", "spans"),
            "resourceMetrics" => ("scopeMetrics", "metrics"),
            "resourceLogs" => ("scopeLogs", "logRecords"),
            other => panic!("{}: unexpected {other}", path.display()),
        };
        let fixture = stem(&path).trim_end_matches(".json").to_string();
        let mut requests = Vec::new();
        for (i, resource) in resources.iter().enumerate() {
            requests.push((format!("{fixture}-{i}"), json!({ key: [resource] })));
            let scopes = resource[scopes_key].as_array().cloned().unwrap_or_default();
            for (j, scope) in scopes.iter().enumerate() {
                let records = scope[records_key].as_array().cloned().unwrap_or_default();
                for (k, record) in records.into_iter().enumerate() {
                    let mut scope = scope.clone();
                    scope[records_key] = json!([record]);
                    let mut resource = resource.clone();
                    resource[scopes_key] = json!([scope]);
                    requests.push((format!("{fixture}-{i}-{j}-{k}"), json!({ key: [resource] })));
                }
            }
        }
        for (name, request) in requests {
            let json = serde_json::to_vec(&request)?;
            out.put("otlp_json", &format!("{name}.json"), &json)?;
            let proto = match key.as_str() {
                "resourceSpans" => decode::<ExportTraceServiceRequest>(&json),
                "resourceMetrics" => decode::<ExportMetricsServiceRequest>(&json),
                _ => decode::<ExportLogsServiceRequest>(&json),
            };
            out.put("otlp_protobuf", &format!("{name}.pb"), &proto)?;
            first_proto.get_or_insert(proto);
        }
    }
    let proto = first_proto.expect("OTLP fixtures");
    let one = gzip(&proto)?;
    out.put("otlp_protobuf", "gzip.pb.gz", &one)?;
    let (a, b) = proto.split_at(proto.len() / 2);
    let two = [gzip(a)?, gzip(b)?].concat();
    out.put("otlp_protobuf", "gzip-two-members.pb.gz", &two)?;
    Ok(())
}

fn decode<T>(json: &[u8]) -> Vec<u8>
where
    T: Message + Default + serde::de::DeserializeOwned,
{
    otlp::decode::<T>(json, Encoding::Json, "fixture")
        .expect("the fixtures are OTLP/JSON")
        .encode_to_vec()
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    enc.finish()
}

/// `<event>\n<payload>` for every captured payload (compact JSON), and the two events of
/// tracelink's deployments and incidents API.
fn webhook_seeds(root: &Path, out: &mut Seeds) -> std::io::Result<()> {
    for path in files(&root.join("webhooks/payloads"))? {
        let name = stem(&path);
        let event = name.split('.').next().unwrap();
        let payload: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let body = [
            format!("{event}\n").into_bytes(),
            serde_json::to_vec(&payload)?,
        ]
        .concat();
        out.put("webhook_event", &name, &body)?;
    }
    let deployment = json!({"repository": "Acme/Widgets", "environment": "production",
        "sha": "9c0832b26219b10b65f2a64ef32be97e2e28f8da", "status": "success",
        "external_id": "argo-42", "started_at": "2026-11-20T10:00:00Z",
        "finished_at": "2026-11-20T10:05:00Z", "source": "argocd"});
    let incident = json!({"repository": "acme/widgets", "external_id": "pd-7",
        "title": "checkout errors", "opened_at": "2026-11-20T11:00:00Z",
        "resolved_at": "2026-11-20T12:00:00Z", "environment": "production",
        "root_cause": "9c0832b26219b10b65f2a64ef32be97e2e28f8da", "source": "pagerduty"});
    for (event, body, name) in [
        (
            "tracelink.deployment",
            deployment,
            "tracelink.deployment.json",
        ),
        ("tracelink.incident", incident, "tracelink.incident.json"),
    ] {
        let bytes = [
            format!("{event}\n").into_bytes(),
            serde_json::to_vec(&body)?,
        ]
        .concat();
        out.put("webhook_event", name, &bytes)?;
    }
    Ok(())
}

/// Commit messages: those of the captured pushes, and the trailer forms tracelink reads.
fn trailer_seeds(root: &Path, out: &mut Seeds) -> std::io::Result<()> {
    let mut n = 0;
    for path in files(&root.join("webhooks/payloads"))? {
        if !stem(&path).starts_with("push.") {
            continue;
        }
        let payload: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let commits = payload["commits"].as_array().cloned().unwrap_or_default();
        for c in commits {
            if let Some(m) = c["message"].as_str() {
                out.put("commit_trailers", &format!("push-{n}"), m.as_bytes())?;
                n += 1;
            }
        }
    }
    let messages = [
        "Fix the parser\n\nLonger text.\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
        "Add retries\n\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nTracelink-Session: 0b5c2f9e-1111-4e0a-9c1e-2f5f0c4b6a77\nCo-authored-by: factory-droid[bot] <138933559+factory-droid[bot]@users.noreply.github.com>\n",
        "Refactor\r\n\r\nSome prose in the block\r\nSigned-off-by: Dev <dev@acme.example>\r\n(cherry picked from commit 9c0832b26219b10b65f2a64ef32be97e2e28f8da)\r\n",
        "Tidy\n\nMade-with: Cursor\nGenerated-by: GitHub Copilot\nAssisted-by: Gemini CLI\n  continued on a second line\n# a comment\n\n# Please enter the commit message\n",
        "Wip\n\nCo-authored-by: aider (gpt-4o) <noreply@aider.chat>\nCo-authored-by: Codex <codex@openai.com>\n# ------------------------ >8 ------------------------\ndiff --git a/x b/x\n",
        "Only a subject line",
    ];
    for (i, m) in messages.iter().enumerate() {
        out.put("commit_trailers", &format!("forms-{i}"), m.as_bytes())?;
    }
    Ok(())
}

/// The CI report fixtures, each under the target of the format it is detected as.
fn ci_seeds(root: &Path, out: &mut Seeds) -> std::io::Result<()> {
    for path in files(&root.join("tests/fixtures/ci"))? {
        let bytes = std::fs::read(&path)?;
        let target = match ci::detect(&bytes[..bytes.len().min(8192)]) {
            Some(Format::Lcov) => "ci_lcov",
            Some(Format::Cobertura) => "ci_cobertura",
            Some(Format::Jacoco) => "ci_jacoco",
            Some(Format::GoCover) => "ci_gocover",
            Some(Format::Junit) => "ci_junit",
            _ => continue,
        };
        out.put(target, &stem(&path), &bytes)?;
    }
    Ok(())
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// The metadata the line-records tests use (`tests/fixtures/lines/`).
fn git_ai_meta(root: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(root.join("tests/fixtures/lines/git-ai-meta.json"))
}

fn git_ai_note(meta: &str) -> String {
    format!(
        "git-ai-note {SHA}\nsrc/main.rs\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-10,15\n  s_c9883b05a2487d::t_a1b2c3d4e5f678 11-12\n  h_31dce776f88375 20-30\n\"src/my file.rs\"\n  abcd1234abcd1234 3,1-2\n---\n{meta}"
    )
}

/// The Agent Trace fixture with this revision.
fn agent_trace(root: &Path, revision: &str) -> std::io::Result<String> {
    let doc = std::fs::read_to_string(root.join("tests/fixtures/lines/agent-trace.json"))?;
    Ok(doc.trim_end().replace(SHA, revision))
}

/// git-ai notes and Agent Trace records, as the line-records tests write them.
fn line_record_seeds(root: &Path, out: &mut Seeds) -> std::io::Result<()> {
    let meta = git_ai_meta(root)?;
    out.put("lines_git_ai", "note", git_ai_note(&meta).as_bytes())?;
    let old = format!("git-ai-note {SHA}\na.rs\n  ffffffffffffffff 1\n---\n{meta}");
    out.put("lines_git_ai", "unknown-key", old.as_bytes())?;
    out.put("lines_agent_trace", "one", agent_trace(root, SHA)?.as_bytes())?;
    let other = "fedcba9876543210fedcba9876543210fedcba98";
    let jsonl = format!(
        "{}\n{}\n{{\"version\": \"0.1.0\", \"files\": [{{\"path\": \"x\", \"conversations\": []}}]}}\n",
        agent_trace(root, SHA)?.replace('\n', " "),
        agent_trace(root, other)?.replace('\n', " ")
    );
    out.put("lines_agent_trace", "jsonl", jsonl.as_bytes())?;
    Ok(())
}

fn context() -> Value {
    json!({"repository": "Acme/Widgets", "sha": SHA, "ref": "refs/pull/3/merge",
           "run_id": 7, "run_attempt": "2", "job": "test", "pr_number": 3,
           "flags": ["unit", "py"], "workspace": "/home/runner/work/widgets/widgets"})
}

/// Upload contexts, and multipart uploads of a context with each report fixture (and one
/// with all of them).
fn upload_seeds(root: &Path, out: &mut Seeds) -> std::io::Result<()> {
    out.put("upload_context", "full", &serde_json::to_vec(&context())?)?;
    let minimal = json!({"repository": "acme/widgets", "sha": SHA.repeat(2)[..64].to_string(),
        "ref": "", "run_id": "900", "run_attempt": 1, "job": "build", "pr_number": ""});
    out.put("upload_context", "minimal", &serde_json::to_vec(&minimal)?)?;

    let context = serde_json::to_vec(&context())?;
    let mut reports: Vec<(String, Vec<u8>)> = Vec::new();
    for path in files(&root.join("tests/fixtures/ci"))? {
        let bytes = std::fs::read(&path)?;
        if ci::detect(&bytes[..bytes.len().min(8192)]).is_some() {
            reports.push((stem(&path), bytes));
        }
    }
    reports.push(("note.git-ai".into(), git_ai_note(&git_ai_meta(root)?).into_bytes()));
    reports.push(("trace.json".into(), agent_trace(root, SHA)?.into_bytes()));
    for (name, bytes) in &reports {
        let body = multipart(
            &context,
            std::slice::from_ref(&(name.clone(), bytes.clone())),
        );
        out.put("upload_multipart", name, &body)?;
    }
    out.put("upload_multipart", "all", &multipart(&context, &reports))?;
    Ok(())
}

/// A `multipart/form-data` body as the Action sends it: the context, then the files.
fn multipart(context: &[u8], files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"context\"\r\nContent-Type: application/json\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(context);
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
    }
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}
