//! What a GitHub Actions OIDC token lets an upload say about its commit and ref.
//!
//! Any workflow of a served repository can mint a token, on any branch: the upload's
//! context is bound to the run the token names, so one branch's workflow cannot become
//! another's coverage, nor `main`'s coverage base.
//!
//! - **Pull request runs** (`ref` = `refs/pull/N/merge`; the token's `sha` is GitHub's
//!   test merge): the upload is for pull request N, under that ref (so never a base),
//!   and its commit must be a head N has had — as the stored deliveries say, else as
//!   GitHub says (the upload may come before the `synchronize` delivery).
//! - **`workflow_run` runs** (how fork pull requests upload: the token's `ref` is the
//!   default branch): the upload names an open pull request whose head is its commit;
//!   it is stored under `refs/pull/N/head`, never as the default branch.
//! - **Every other run** (push, schedule, workflow_dispatch, …): the upload's commit and
//!   ref are the token's `sha` and `ref`. Only a workflow on the base branch supplies
//!   base coverage.
//!
//! The run and attempt must be the token's too. Static upload tokens are configured per
//! repository by the operator and are not bound.

use super::oidc::RunClaims;
use crate::store::uploads::UploadBatch;

/// What is left to confirm against the pull request's heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Nothing,
    /// The upload's commit must be a head pull request `number` has had (and be its
    /// current head of an open pull request when `open_head`).
    PullHead {
        number: i64,
        open_head: bool,
    },
}

/// The pull request number of `refs/pull/N/merge` (or `/head`).
fn pull_of_ref(git_ref: &str) -> Option<i64> {
    let rest = git_ref.strip_prefix("refs/pull/")?;
    let (n, kind) = rest.split_once('/')?;
    matches!(kind, "merge" | "head")
        .then(|| n.parse().ok())
        .flatten()
        .filter(|n| *n > 0)
}

/// Binds `batch` (the upload's context) to the run `claims` names; the refusal says
/// which claim the context contradicts.
pub fn bind(claims: &RunClaims, batch: &mut UploadBatch) -> Result<Pending, String> {
    if let Some(id) = claims.run_id
        && id != batch.run_id
    {
        return Err(format!(
            "the token is for run {id}, the upload says run {}",
            batch.run_id
        ));
    }
    if let Some(a) = claims.run_attempt
        && a != batch.attempt
    {
        return Err(format!(
            "the token is for attempt {a} of its run, the upload says attempt {}",
            batch.attempt
        ));
    }
    if let Some(n) = pull_of_ref(&claims.git_ref) {
        if batch.pr_number.is_some_and(|p| p != n) {
            return Err(format!(
                "the token is for a run of pull request #{n}, the upload says #{}",
                batch.pr_number.unwrap_or_default()
            ));
        }
        if batch.git_ref != claims.git_ref {
            return Err(format!(
                "the token is for ref {}, the upload says {}",
                claims.git_ref, batch.git_ref
            ));
        }
        batch.pr_number = Some(n);
        return Ok(Pending::PullHead {
            number: n,
            open_head: false,
        });
    }
    if claims.event_name == "workflow_run" {
        let Some(n) = batch.pr_number else {
            return Err(
                "a workflow_run upload names the pull request it is for (the Action's pr-number input); it is never stored as the default branch's coverage".into(),
            );
        };
        batch.git_ref = format!("refs/pull/{n}/head");
        return Ok(Pending::PullHead {
            number: n,
            open_head: true,
        });
    }
    if !batch.sha.eq_ignore_ascii_case(&claims.sha) {
        return Err(format!(
            "the token's {} run is for commit {}, the upload says {}",
            claims.event_name, claims.sha, batch.sha
        ));
    }
    if batch.git_ref != claims.git_ref {
        return Err(format!(
            "the token is for ref {}, the upload says {}",
            claims.git_ref, batch.git_ref
        ));
    }
    Ok(Pending::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "1111111111111111111111111111111111111111";
    const MERGE: &str = "2222222222222222222222222222222222222222";

    fn claims(event: &str, git_ref: &str, sha: &str) -> RunClaims {
        RunClaims {
            repository: "acme/widgets".into(),
            repository_id: Some(1),
            git_ref: git_ref.into(),
            sha: sha.into(),
            event_name: event.into(),
            run_id: Some(900),
            run_attempt: Some(1),
        }
    }

    fn batch(sha: &str, git_ref: &str, pr: Option<i64>) -> UploadBatch {
        UploadBatch {
            repo: "acme/widgets".into(),
            sha: sha.into(),
            git_ref: git_ref.into(),
            run_id: 900,
            attempt: 1,
            job: "test".into(),
            pr_number: pr,
            flags: String::new(),
            received_ns: 0,
            report_due_ns: 0,
            files: Vec::new(),
        }
    }

    #[test]
    fn a_push_run_uploads_its_own_commit_and_ref_only() {
        let c = claims("push", "refs/heads/feature", HEAD);
        let mut ok = batch(HEAD, "refs/heads/feature", None);
        assert_eq!(bind(&c, &mut ok), Ok(Pending::Nothing));
        // A feature branch's workflow claiming main's coverage.
        let err = bind(&c, &mut batch(HEAD, "refs/heads/main", None)).unwrap_err();
        assert!(err.contains("ref refs/heads/feature"), "{err}");
        let err = bind(&c, &mut batch(MERGE, "refs/heads/feature", None)).unwrap_err();
        assert!(err.contains(&format!("commit {HEAD}")), "{err}");
    }

    #[test]
    fn a_pull_request_run_is_bound_to_its_pull_request_and_ref() {
        let c = claims("pull_request", "refs/pull/7/merge", MERGE);
        let mut b = batch(HEAD, "refs/pull/7/merge", None);
        assert_eq!(
            bind(&c, &mut b),
            Ok(Pending::PullHead {
                number: 7,
                open_head: false
            })
        );
        assert_eq!(b.pr_number, Some(7));
        assert!(bind(&c, &mut batch(HEAD, "refs/pull/7/merge", Some(8))).is_err());
        assert!(bind(&c, &mut batch(HEAD, "refs/heads/main", Some(7))).is_err());
    }

    #[test]
    fn a_workflow_run_upload_is_for_a_pull_request_never_the_default_branch() {
        let c = claims("workflow_run", "refs/heads/main", MERGE);
        let mut b = batch(HEAD, "refs/heads/main", Some(12));
        assert_eq!(
            bind(&c, &mut b),
            Ok(Pending::PullHead {
                number: 12,
                open_head: true
            })
        );
        assert_eq!(b.git_ref, "refs/pull/12/head");
        assert!(bind(&c, &mut batch(HEAD, "refs/heads/main", None)).is_err());
    }

    #[test]
    fn the_run_and_attempt_are_the_tokens() {
        let c = claims("push", "refs/heads/main", HEAD);
        let mut b = batch(HEAD, "refs/heads/main", None);
        b.run_id = 901;
        assert!(bind(&c, &mut b).unwrap_err().contains("run 900"));
        let mut b = batch(HEAD, "refs/heads/main", None);
        b.attempt = 2;
        assert!(bind(&c, &mut b).unwrap_err().contains("attempt 1"));
    }

    #[test]
    fn pull_refs() {
        assert_eq!(pull_of_ref("refs/pull/42/merge"), Some(42));
        assert_eq!(pull_of_ref("refs/pull/42/head"), Some(42));
        assert_eq!(pull_of_ref("refs/pull/0/merge"), None);
        assert_eq!(pull_of_ref("refs/pull/x/merge"), None);
        assert_eq!(pull_of_ref("refs/heads/pull/1/merge"), None);
    }
}
