//! The gRPC API `tracelink.v1` (proto/tracelink/v1/report.proto), on the gRPC listener
//! beside OTLP, under the same bearer tokens.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::ids::{PrNumber, RepoName};
use crate::impact::ReportContext;
use crate::report::markdown;
use crate::store::Db;

#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("tracelink.v1");
}

use proto::report_service_server::{ReportService, ReportServiceServer};
use proto::{
    AgentSession, CommitLink, GetPullRequestReportRequest, GetPullRequestReportResponse,
    PullRequestSummary,
};

#[derive(Clone)]
pub struct Reports {
    pub readers: Db,
    pub ctx: Arc<ReportContext>,
    pub tokens: Arc<Vec<String>>,
}

impl Reports {
    pub fn server(self) -> ReportServiceServer<Self> {
        ReportServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl ReportService for Reports {
    async fn get_pull_request_report(
        &self,
        request: Request<GetPullRequestReportRequest>,
    ) -> Result<Response<GetPullRequestReportResponse>, Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if !crate::otlp::token_allowed(&self.tokens, crate::otlp::bearer(auth)) {
            return Err(Status::unauthenticated(
                "missing or wrong authorization: Bearer <token>",
            ));
        }
        let req = request.into_inner();
        let repo = RepoName::parse(&req.repository).map_err(|_| {
            Status::invalid_argument(format!("repository {:?} is not owner/repo", req.repository))
        })?;
        if req.number <= 0 {
            return Err(Status::invalid_argument(format!(
                "number {} is not a pull request number",
                req.number
            )));
        }
        let built =
            crate::impact::pull::build(&self.readers, &self.ctx, &repo, PrNumber(req.number))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "building a report failed");
                    Status::internal("building the report failed")
                })?;
        let Some(crate::impact::pull::Built { report: r, .. }) = built else {
            return Err(Status::not_found(format!(
                "no pull request {repo}#{}",
                req.number
            )));
        };
        let summary = PullRequestSummary {
            repository: r.repository.clone(),
            number: r.number,
            state: r.state.clone(),
            head_sha: r.head_sha.clone(),
            sessions: r.totals.sessions as u32,
            agents: r.totals.agents.clone(),
            commits: r.totals.commits as u32,
            agent_commits: r.totals.agent_commits as u32,
            cost_usd: r.totals.cost_usd,
            cost_estimated: r.totals.cost_estimated,
            lines_added: r.lines.as_ref().map(|l| l.added),
            agent_lines_added: r.lines.as_ref().map(|l| l.agent_added),
            ci_passed: r.ci.passed as u32,
            ci_failed: r.ci.failed as u32,
            deployments: r.deployments.len() as u32,
            incidents: r.incidents.len() as u32,
        };
        let sessions = r
            .sessions
            .iter()
            .map(|s| AgentSession {
                session_id: s.session_id.clone(),
                agent: s.agent.clone().unwrap_or_default(),
                user: s.user.clone().unwrap_or_default(),
                models: s.models.clone(),
                cost_usd: s.cost_usd,
                cost_estimated: s.cost_estimated,
                input_tokens: s.tokens.map_or(0, |t| t.input),
                output_tokens: s.tokens.map_or(0, |t| t.output),
                commits: s
                    .links
                    .iter()
                    .map(|l| CommitLink {
                        sha: l.sha.clone(),
                        evidence: l.evidence.as_str().to_string(),
                        confidence: l.confidence,
                    })
                    .collect(),
            })
            .collect();
        let json = serde_json::to_string(&r).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(GetPullRequestReportResponse {
            headline: r.headline.clone(),
            summary: Some(summary),
            sessions,
            markdown: markdown::render(&r),
            json,
        }))
    }
}
