//! The `context` part of a CI upload: which repository, commit, ref, run, attempt, job,
//! pull request and flags the reports belong to, checked field by field (a 400 names the
//! field).

use serde::Deserialize;

use super::upload::UploadError;
use crate::store::uploads::UploadBatch;

/// The run an upload comes from, as the Action sends it.
#[derive(Debug, Deserialize)]
pub struct Context {
    pub repository: String,
    /// The commit the reports are for: the PR head SHA on pull_request events.
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub run_id: Num,
    pub run_attempt: Num,
    pub job: String,
    #[serde(default)]
    pub pr_number: Option<Num>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    /// `$GITHUB_WORKSPACE`, stripped from report paths.
    #[serde(default)]
    pub workspace: Option<String>,
}

/// A number the Action may have written as a JSON number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Num {
    Int(i64),
    Text(String),
}

impl Num {
    fn get(&self) -> Option<i64> {
        match self {
            Num::Int(n) => Some(*n),
            Num::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// The context, checked: the batch to store (without files) and what parsing needs.
pub struct Run {
    pub(super) repo: String,
    pub(super) run_id: i64,
    pub(super) attempt: i64,
    pub(super) workspace: Option<String>,
    pub(super) batch: UploadBatch,
}

pub fn read_context(bytes: &[u8]) -> Result<Run, UploadError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let c: Context = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            UploadError::bad(format!("context: {}", e.inner()))
        } else {
            UploadError::bad(format!("context.{path}: {}", e.inner()))
        }
    })?;
    de.end()
        .map_err(|e| UploadError::bad(format!("context: data after the JSON object: {e}")))?;
    let repo = c.repository.trim().to_ascii_lowercase();
    let valid_repo = match repo.split_once('/') {
        Some((o, n)) => {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 100
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            ok(o) && ok(n)
        }
        None => false,
    };
    if !valid_repo {
        return Err(UploadError::bad(format!(
            "context.repository: {:?} is not owner/name",
            c.repository
        )));
    }
    let sha = crate::ids::CommitSha::parse(&c.sha)
        .map_err(|e| UploadError::bad(format!("context.sha: {e}")))?;
    let positive = |field: &str, n: &Num| {
        n.get()
            .filter(|v| *v > 0)
            .ok_or_else(|| UploadError::bad(format!("context.{field}: not a positive integer")))
    };
    let run_id = positive("run_id", &c.run_id)?;
    let attempt = positive("run_attempt", &c.run_attempt)?;
    let pr_number = match &c.pr_number {
        None => None,
        Some(Num::Text(s)) if s.trim().is_empty() => None,
        Some(n) => Some(positive("pr_number", n)?),
    };
    let job = c.job.trim().to_string();
    if job.is_empty() || job.len() > 256 {
        return Err(UploadError::bad(
            "context.job: empty or longer than 256 bytes",
        ));
    }
    let git_ref = c.git_ref.trim().to_string();
    if git_ref.len() > 1024 {
        return Err(UploadError::bad("context.ref: longer than 1024 bytes"));
    }
    let mut flags: Vec<String> = c
        .flags
        .unwrap_or_default()
        .iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    if let Some(bad) = flags.iter().find(|f| {
        f.len() > 64
            || !f
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }) {
        return Err(UploadError::bad(format!(
            "context.flags: {bad:?} is not a flag (letters, digits, - _ . only, up to 64)"
        )));
    }
    flags.sort();
    flags.dedup();
    let workspace = c.workspace.filter(|w| !w.trim().is_empty());
    Ok(Run {
        repo: repo.clone(),
        run_id,
        attempt,
        workspace,
        batch: UploadBatch {
            repo,
            sha: sha.to_string(),
            git_ref,
            run_id,
            attempt,
            job,
            pr_number,
            flags: flags.join(","),
            received_ns: crate::time::now_ns(),
            report_due_ns: 0,
            files: Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use super::*;

    fn ctx(v: Value) -> Result<Run, UploadError> {
        read_context(v.to_string().as_bytes())
    }

    fn err(r: Result<Run, UploadError>) -> String {
        match r {
            Err(UploadError(s, b)) => {
                assert_eq!(s, StatusCode::BAD_REQUEST);
                b["error"].as_str().unwrap_or("").to_string()
            }
            Ok(_) => panic!("expected a refusal"),
        }
    }

    fn good() -> Value {
        json!({"repository": "Acme/Demo", "sha": "A".repeat(40), "ref": "refs/pull/3/merge",
               "run_id": 7, "run_attempt": "2", "job": "test", "pr_number": "",
               "flags": ["unit", "py", "unit"], "workspace": ""})
    }

    #[test]
    fn context_is_read_and_normalised() {
        let r = ctx(good()).map_err(|e| e.1).unwrap();
        assert_eq!(r.repo, "acme/demo");
        assert_eq!(r.batch.sha, "a".repeat(40));
        assert_eq!((r.run_id, r.attempt), (7, 2));
        assert_eq!(r.batch.flags, "py,unit");
        assert_eq!(r.batch.pr_number, None);
        assert_eq!(r.workspace, None);
    }

    #[test]
    fn context_errors_name_the_field() {
        let mut v = good();
        v.as_object_mut().unwrap().remove("job");
        assert!(err(ctx(v)).contains("missing field `job`"));
        let mut v = good();
        v["sha"] = json!("abc");
        assert!(err(ctx(v)).starts_with("context.sha:"));
        let mut v = good();
        v["run_id"] = json!(-1);
        assert!(err(ctx(v)).starts_with("context.run_id:"));
        let mut v = good();
        v["flags"] = json!(["a b"]);
        assert!(err(ctx(v)).starts_with("context.flags:"));
        let mut v = good();
        v["repository"] = json!("nope");
        assert!(err(ctx(v)).starts_with("context.repository:"));
        assert!(err(read_context(b"{")).starts_with("context"));
    }
}
