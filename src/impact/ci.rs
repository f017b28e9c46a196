//! A commit's coverage and tests sections, from its CI uploads: the store's rows, then
//! [`crate::metrics::coverage`].

use serde_json::Value;

use crate::metrics::coverage::{self, CoverageInputs, MAX_BASE_DEPTH};
use crate::store::uploads::{StoredCase, StoredUpload};
use crate::store::{self, Db};

/// The coverage section of `head_sha` against the nearest ancestor on `base_ref` with a
/// report, with patch coverage of `pr_added` and `agent_added` lines; `None` when head
/// has no coverage upload.
pub async fn coverage_section(
    db: &Db,
    repo: &str,
    head_sha: &str,
    base_ref: &str,
    pr_added: &[(String, Vec<u32>)],
    agent_added: &[(String, Vec<u32>)],
) -> store::Result<Option<Value>> {
    let repo = repo.to_ascii_lowercase();
    let head_sha = head_sha.to_ascii_lowercase();
    let mut head = Vec::new();
    for u in db.uploads(&repo, &head_sha, false).await? {
        let lines = db.coverage(u.id).await?;
        head.push((u, lines));
    }
    if head.is_empty() {
        return Ok(None);
    }
    let branch = base_ref.strip_prefix("refs/heads/").unwrap_or(base_ref);
    let ancestors = db
        .coverage_ancestors(
            &repo,
            &head_sha,
            &format!("refs/heads/{branch}"),
            MAX_BASE_DEPTH,
        )
        .await?;
    let base = match coverage::choose_base(&ancestors, &head_sha, branch) {
        Ok((sha, distance)) => {
            let mut lines = Vec::new();
            for u in db.uploads(&repo, &sha, false).await? {
                lines.push(db.coverage(u.id).await?);
            }
            Ok((sha, distance, lines))
        }
        Err(note) => Err(note),
    };
    Ok(coverage::coverage_section(CoverageInputs {
        head_sha: &head_sha,
        head: &head,
        branch,
        base,
        pr_added,
        agent_added,
        complete: db.upload_runs_complete(&repo, &head_sha).await?,
    }))
}

/// The tests section of `head_sha`, against `base_sha`'s test results when given;
/// `None` when head has no test report.
pub async fn tests_section(
    db: &Db,
    repo: &str,
    head_sha: &str,
    base_sha: Option<&str>,
) -> store::Result<Option<Value>> {
    let repo = repo.to_ascii_lowercase();
    let head_sha = head_sha.to_ascii_lowercase();
    let head = coverage::test_results(&test_uploads(db, &repo, &head_sha).await?);
    if head.is_empty() {
        return Ok(None);
    }
    let base = match base_sha {
        Some(b) => {
            let b = b.to_ascii_lowercase();
            let results = coverage::test_results(&test_uploads(db, &repo, &b).await?);
            Some((b, results))
        }
        None => None,
    };
    Ok(coverage::tests_section(
        &head,
        base.as_ref().map(|(sha, r)| (sha.as_str(), r)),
        db.upload_runs_complete(&repo, &head_sha).await?,
    ))
}

async fn test_uploads(
    db: &Db,
    repo: &str,
    sha: &str,
) -> store::Result<Vec<(StoredUpload, Vec<StoredCase>)>> {
    let mut out = Vec::new();
    for u in db.uploads(repo, sha, true).await? {
        let cases = db.test_cases(u.id).await?;
        out.push((u, cases));
    }
    Ok(out)
}
