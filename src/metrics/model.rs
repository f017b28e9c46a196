//! A pull request's impact as data: the model the comment, the check run, the JSON API,
//! the gRPC API and `tracelink report` all render ([`crate::report`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::sessions::TokenView;
use crate::graph::links::Evidence;
pub use crate::store::nodes::CommitSource;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PrReport {
    pub repository: String,
    pub number: i64,
    pub title: Option<String>,
    pub state: String,
    pub author: Option<String>,
    pub head_sha: String,
    pub base_ref: String,
    /// What the merge put on the base branch (a merge or squash commit, the last rebased
    /// copy), once merged.
    pub merge_commit_sha: Option<String>,
    /// One line a reviewer reads first.
    pub headline: String,
    pub totals: Totals,
    pub sessions: Vec<SessionSummary>,
    pub commits: Vec<CommitSummary>,
    /// Where the commit list came from; `head_only` when only the head is known.
    pub commit_list: CommitSource,
    /// Lines of the PR diff and the share agents wrote; `None` until patches are known.
    pub lines: Option<LineShare>,
    pub ci: CiSummary,
    pub deployments: Vec<DeploymentSummary>,
    pub incidents: Vec<IncidentSummary>,
    pub timing: Timing,
    /// Coverage at head vs base and patch coverage, once CI uploads exist.
    pub coverage: Option<serde_json::Value>,
    /// Why there is no coverage, where tracelink knows (a fork's pull request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_missing: Option<String>,
    /// Test outcomes, once CI uploads exist.
    pub tests: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Totals {
    pub sessions: usize,
    pub agents: Vec<String>,
    pub users: Vec<String>,
    pub commits: usize,
    pub agent_commits: usize,
    /// The pull request's cost: its commits' shares of their sessions' cost
    /// ([`crate::metrics::cost`]).
    pub cost_usd: Option<f64>,
    pub cost_estimated: bool,
    pub tokens: Option<TokenView>,
    pub active_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkView {
    pub sha: String,
    pub evidence: Evidence,
    pub confidence: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionSummary {
    pub session_id: String,
    pub agent: Option<String>,
    pub user: Option<String>,
    /// The user's GitHub login, where a commit or the identities file says it: the
    /// comment names people by login only, never by email.
    pub login: Option<String>,
    pub models: Vec<String>,
    pub tokens: Option<TokenView>,
    /// The whole session's cost.
    pub cost_usd: Option<f64>,
    /// The share of it this pull request's commits carry ([`crate::metrics::cost`]).
    pub cost_in_pr_usd: Option<f64>,
    pub cost_estimated: bool,
    pub active_seconds: Option<f64>,
    pub started_at: Option<String>,
    pub lines_added: Option<i64>,
    pub links: Vec<LinkView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommitSummary {
    pub sha: String,
    pub subject: Option<String>,
    pub author: Option<String>,
    pub authored_at: Option<String>,
    /// A session is linked to it, or an agent trailer names an agent.
    pub agent_assisted: bool,
    /// Agents its trailers name.
    pub agents: Vec<String>,
    /// Agents of the sessions linked to it.
    pub session_agents: Vec<String>,
    pub sessions: Vec<String>,
    /// What line records (git-ai notes, Agent Trace) say of its added lines, when there
    /// are any for it or for the commits it stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_records: Option<CommitLineRecords>,
}

/// A commit's added lines and those line records say agents wrote (evidence `lines`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommitLineRecords {
    /// Always `lines`: the evidence class of line records.
    pub evidence: &'static str,
    pub added: u64,
    pub agent_added: u64,
    /// Agents the records name.
    pub agents: Vec<String>,
    /// When the records are those of the commits it stands for (a squash or merge
    /// result, a rebased copy), their SHAs; empty for its own records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub carried_from: Vec<String>,
}

/// The part of the line share line records decided.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LineRecordShare {
    /// The PR's commits with line records (their own or carried).
    pub commits: usize,
    /// Added lines of the PR diff attributed to agents by line records; in `agent_added`.
    pub agent_added: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LineShare {
    pub added: u64,
    pub removed: u64,
    /// Added lines that a session-linked commit of the PR added, or that line records
    /// say an agent wrote.
    pub agent_added: u64,
    pub agent_share: f64,
    /// Added lines of commits an agent trailer marks but no session is linked to:
    /// marked as agent-written, with no telemetry; not in `agent_added`.
    pub trailer_only_added: u64,
    /// Present when some commits have line records: they decide those commits' lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_records: Option<LineRecordShare>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    pub kind: String,
    pub id: i64,
    pub attempt: i64,
    pub name: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct CiSummary {
    /// Runs at the PR's head (workflow runs, check suites, statuses).
    pub runs: Vec<RunSummary>,
    pub passed: usize,
    pub failed: usize,
    pub pending: usize,
    pub reruns: usize,
    /// First attempts that succeeded, over the PR's commits.
    pub first_run_pass_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeploymentSummary {
    pub id: i64,
    pub environment: String,
    pub state: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentSummary {
    pub number: i64,
    pub title: Option<String>,
    pub state: String,
    pub environment: String,
    /// The deployment that caused it (`None`: its root cause names a commit of the PR
    /// that no deployment has shipped yet).
    pub deployment: Option<i64>,
    /// How the deployment was found: its `root cause:` line, or by time (`fallback`).
    pub evidence: crate::graph::incidents::CauseEvidence,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Timing {
    pub first_session_at: Option<String>,
    pub created_at: Option<String>,
    pub merged_at: Option<String>,
    pub first_session_to_merge_seconds: Option<i64>,
    /// Seconds from merge to the first deployment containing the merge, per environment.
    pub merge_to_deploy_seconds: BTreeMap<String, i64>,
}
