//! Organisation analytics (`GET /api/v1/analytics/{metric}`): sessions, active people,
//! tokens and cost over time, grouped by organisation, team, repository, agent, model
//! or person. Pure functions over one [`SessionFact`] per session; the definitions are
//! in `docs/metrics.md`.
//!
//! - A session counts in the bucket (UTC day, ISO week from Monday, or month) in which
//!   it started.
//! - Grouped by team, a session counts in full for each team of its person, else for
//!   the team owning its repository, else for `unassigned`: team totals can add up to
//!   more than the organisation's (a person in two teams), never less.
//! - Grouped by model, a session counts for each model it used; its tokens and cost go
//!   to the model that spent them.
//! - Every figure says how far to trust it: `exact`, `estimated` (a cost from the price
//!   table, or split across models) or `partial` (some sessions could not be counted),
//!   with the reasons.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde::{Serialize, Serializer};

use crate::metrics::sessions::TokenView;
use crate::store::analytics::{
    Commits, CostHow, FactBuckets, FactKey, FactQuery, FactRow, FactValue, ModelFactRow, Only,
    PeopleTally, Tally,
};
use crate::time::{Zone, date_of_day, day_number};

/// What a metric is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The GitHub organisation: the owner of the session's repository.
    Org,
    Team,
    Repo,
    Agent,
    Model,
    Person,
    /// Each tool, MCP server, skill, sub-agent and slash command the sessions' telemetry
    /// names (`tool:Bash`, `skill:pdf`, `command:review`,
    /// `mcp:linear`): a session counts for each it used.
    Workflow,
}

impl GroupBy {
    pub const NAMES: &'static str = "org, team, repo, agent, model, person, workflow";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "org" => Self::Org,
            "team" => Self::Team,
            "repo" => Self::Repo,
            "agent" => Self::Agent,
            "model" => Self::Model,
            "person" => Self::Person,
            "workflow" => Self::Workflow,
            _ => return None,
        })
    }
}

/// The width of a series' buckets (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            _ => return None,
        })
    }

    /// The start of the bucket holding `ns`: a local midnight in `zone`.
    pub fn start(self, zone: Zone, ns: i64) -> i64 {
        let day = zone.day_of(ns);
        zone.day_start(match self {
            Bucket::Day => day,
            // 1970-01-01 was a Thursday: day 0 is three days after a Monday.
            Bucket::Week => day - (day + 3).rem_euclid(7),
            Bucket::Month => {
                let date = date_of_day(day);
                day_number(date.with_day(1).unwrap_or(date))
            }
        })
    }

    /// The start of the bucket after the one starting at `start`.
    fn next(self, zone: Zone, start: i64) -> i64 {
        let day = zone.day_of(start);
        zone.day_start(match self {
            Bucket::Day => day + 1,
            Bucket::Week => day + 7,
            Bucket::Month => {
                let d = date_of_day(day);
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).map_or(day + 31, day_number)
            }
        })
    }
}

/// The metrics the API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Sessions started.
    Sessions,
    /// Distinct people with a session started.
    ActivePeople,
    /// Tokens: input plus output (input counts cache reads and writes, output counts
    /// reasoning), with each kind broken down.
    Tokens,
    /// Cost in US dollars: the agent's own figure, else estimated from the price table.
    Cost,
    /// A quantity the agents report per session (requests, tool calls, lines, …),
    /// summed; sessions whose agent does not report it are left out (partial).
    Counter(Counted),
    /// Sessions linked to no commit (waste: work that produced nothing GitHub saw).
    SessionsWithoutCommit,
    /// The cost of the sessions linked to no commit.
    CostWithoutCommit,
    /// The cost of the sessions linked to commits none of which reached their
    /// repository's default branch within 14 days of the session's start (waste: work
    /// that was committed but never shipped).
    CostNotLanded,
    /// That cost's share of the cost of sessions linked to commits (of repositories
    /// whose default branch is known).
    WasteShare,
    /// Cache reads over input tokens (input counts cache reads and writes).
    CacheHitRatio,
    /// A figure of the pull requests merged ([`super::impact_analytics`]).
    Pulls(PullMetric),
    /// Sessions that ran headless (a script, an SDK, CI); sessions whose telemetry does
    /// not say are left out (partial).
    HeadlessSessions,
    /// Sessions run interactively; likewise.
    InteractiveSessions,
    /// A percentile of a per-session quantity ([`super::adoption`]).
    Spread(Spread),
    /// People whose first session (of the group: the team's, the agent's, …) started in
    /// the bucket ([`super::adoption`]).
    NewPeople,
    /// The share of a team's members (the identities file's) with a session in the
    /// bucket ([`super::adoption`]).
    TeamActiveShare,
}

/// A percentile of a per-session quantity over the sessions of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub of: SpreadOf,
    /// 50 or 90.
    pub percentile: u8,
}

/// What a [`Spread`] is taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpreadOf {
    /// From the session's first record to its last.
    Duration,
    /// The active time its agent reports.
    ActiveTime,
}

impl Spread {
    pub const ALL: [Spread; 4] = [
        Spread {
            of: SpreadOf::Duration,
            percentile: 50,
        },
        Spread {
            of: SpreadOf::Duration,
            percentile: 90,
        },
        Spread {
            of: SpreadOf::ActiveTime,
            percentile: 50,
        },
        Spread {
            of: SpreadOf::ActiveTime,
            percentile: 90,
        },
    ];

    pub fn name(self) -> &'static str {
        match (self.of, self.percentile) {
            (SpreadOf::Duration, 50) => "session-duration-p50",
            (SpreadOf::Duration, _) => "session-duration-p90",
            (SpreadOf::ActiveTime, 50) => "active-time-p50",
            (SpreadOf::ActiveTime, _) => "active-time-p90",
        }
    }
}

/// What is measured of merged pull requests, each split by agent involvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullMetric {
    /// Pull requests merged.
    MergedPrs,
    /// Median hours from the first commit's author time to the merge.
    CycleTime,
    /// The mean, over merged pull requests with CI, of the share of their head's CI
    /// runs whose first attempt passed.
    CiFirstRunPass,
    /// Of merged pull requests some deployment shipped, the share whose deployment
    /// caused an incident.
    ChangeFailureRate,
    /// The cost of agent-assisted merged pull requests (their commits' share of their
    /// sessions' cost), per pull request.
    CostPerMergedPr,
    /// The same cost per added line agents wrote that was merged.
    CostPerMergedLine,
    /// The share of merged pull requests reverted within 14 days of their merge.
    RevertRate,
    /// Incidents caused by the deployments that shipped merged pull requests.
    Incidents,
    /// Of merged pull requests' coverable added lines, the share CI saw run.
    PatchCoverage,
    /// The same of the agent-written added lines.
    AgentPatchCoverage,
    /// The same of the other added lines.
    OtherPatchCoverage,
    /// Their sessions' tokens (input plus output, whole sessions as the report's totals
    /// count them), per merged line agents added.
    TokensPerMergedLine,
}

impl PullMetric {
    pub const ALL: [PullMetric; 12] = [
        PullMetric::MergedPrs,
        PullMetric::CycleTime,
        PullMetric::CiFirstRunPass,
        PullMetric::ChangeFailureRate,
        PullMetric::CostPerMergedPr,
        PullMetric::CostPerMergedLine,
        PullMetric::TokensPerMergedLine,
        PullMetric::RevertRate,
        PullMetric::Incidents,
        PullMetric::PatchCoverage,
        PullMetric::AgentPatchCoverage,
        PullMetric::OtherPatchCoverage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PullMetric::MergedPrs => "merged-prs",
            PullMetric::CycleTime => "pr-cycle-time",
            PullMetric::CiFirstRunPass => "ci-first-run-pass-rate",
            PullMetric::ChangeFailureRate => "change-failure-rate",
            PullMetric::CostPerMergedPr => "cost-per-merged-pr",
            PullMetric::CostPerMergedLine => "cost-per-merged-line",
            PullMetric::TokensPerMergedLine => "tokens-per-merged-line",
            PullMetric::RevertRate => "revert-rate",
            PullMetric::Incidents => "incidents",
            PullMetric::PatchCoverage => "patch-coverage",
            PullMetric::AgentPatchCoverage => "agent-patch-coverage",
            PullMetric::OtherPatchCoverage => "other-patch-coverage",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            PullMetric::MergedPrs => "pull requests",
            PullMetric::CycleTime => "hours",
            PullMetric::CiFirstRunPass
            | PullMetric::ChangeFailureRate
            | PullMetric::RevertRate
            | PullMetric::PatchCoverage
            | PullMetric::AgentPatchCoverage
            | PullMetric::OtherPatchCoverage => "share",
            PullMetric::Incidents => "incidents",
            PullMetric::CostPerMergedPr | PullMetric::CostPerMergedLine => "usd",
            PullMetric::TokensPerMergedLine => "tokens",
        }
    }
}

/// The per-session quantities the counter metrics sum: `(metric name, unit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counted {
    Requests,
    Errors,
    Prompts,
    ToolInvocations,
    ToolFailures,
    ToolRejections,
    LinesAdded,
    LinesRemoved,
    FilesModified,
    ActiveTime,
    ToolExecutionTime,
    McpToolInvocations,
    RequestTime,
    Retries,
}

impl Counted {
    pub const ALL: [Counted; 14] = [
        Counted::Requests,
        Counted::Errors,
        Counted::Prompts,
        Counted::ToolInvocations,
        Counted::ToolFailures,
        Counted::ToolRejections,
        Counted::LinesAdded,
        Counted::LinesRemoved,
        Counted::FilesModified,
        Counted::ActiveTime,
        Counted::ToolExecutionTime,
        Counted::McpToolInvocations,
        Counted::RequestTime,
        Counted::Retries,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counted::Requests => "requests",
            Counted::Errors => "errors",
            Counted::Prompts => "prompts",
            Counted::ToolInvocations => "tool-invocations",
            Counted::ToolFailures => "tool-failures",
            Counted::ToolRejections => "tool-rejections",
            Counted::LinesAdded => "lines-added",
            Counted::LinesRemoved => "lines-removed",
            Counted::FilesModified => "files-modified",
            Counted::ActiveTime => "active-time",
            Counted::ToolExecutionTime => "tool-execution-time",
            Counted::McpToolInvocations => "mcp-tool-invocations",
            Counted::RequestTime => "request-time",
            Counted::Retries => "retries",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Counted::Requests => "requests",
            Counted::Errors => "errors",
            Counted::Prompts => "prompts",
            Counted::ToolInvocations
            | Counted::ToolFailures
            | Counted::ToolRejections
            | Counted::McpToolInvocations => "tool calls",
            Counted::LinesAdded | Counted::LinesRemoved => "lines",
            Counted::FilesModified => "files",
            Counted::ActiveTime | Counted::ToolExecutionTime | Counted::RequestTime => "seconds",
            Counted::Retries => "requests",
        }
    }
}

impl Metric {
    pub const NAMES: &'static str = "sessions, active-people, tokens, cost, requests, errors, \
        prompts, tool-invocations, tool-failures, tool-rejections, lines-added, lines-removed, \
        files-modified, active-time, tool-execution-time, mcp-tool-invocations, request-time, retries, sessions-without-commit, cost-without-commit, \
        cost-not-landed, waste-share, cache-hit-ratio, merged-prs, \
        pr-cycle-time, ci-first-run-pass-rate, change-failure-rate, cost-per-merged-pr, \
        cost-per-merged-line, tokens-per-merged-line, revert-rate, incidents, patch-coverage, agent-patch-coverage, \
        other-patch-coverage, headless-sessions, interactive-sessions, \
        session-duration-p50, session-duration-p90, active-time-p50, active-time-p90, \
        new-people, team-active-share";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sessions" => Self::Sessions,
            "active-people" => Self::ActivePeople,
            "tokens" => Self::Tokens,
            "cost" => Self::Cost,
            "sessions-without-commit" => Self::SessionsWithoutCommit,
            "cost-without-commit" => Self::CostWithoutCommit,
            "cost-not-landed" => Self::CostNotLanded,
            "waste-share" => Self::WasteShare,
            "cache-hit-ratio" => Self::CacheHitRatio,
            "headless-sessions" => Self::HeadlessSessions,
            "interactive-sessions" => Self::InteractiveSessions,
            "new-people" => Self::NewPeople,
            "team-active-share" => Self::TeamActiveShare,
            _ => {
                if let Some(sp) = Spread::ALL.into_iter().find(|x| x.name() == s) {
                    Self::Spread(sp)
                } else if let Some(p) = PullMetric::ALL.into_iter().find(|p| p.name() == s) {
                    Self::Pulls(p)
                } else {
                    Self::Counter(Counted::ALL.into_iter().find(|c| c.name() == s)?)
                }
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Sessions => "sessions",
            Metric::ActivePeople => "active-people",
            Metric::Tokens => "tokens",
            Metric::Cost => "cost",
            Metric::Counter(c) => c.name(),
            Metric::Pulls(p) => p.name(),
            Metric::SessionsWithoutCommit => "sessions-without-commit",
            Metric::CacheHitRatio => "cache-hit-ratio",
            Metric::CostWithoutCommit => "cost-without-commit",
            Metric::CostNotLanded => "cost-not-landed",
            Metric::WasteShare => "waste-share",
            Metric::HeadlessSessions => "headless-sessions",
            Metric::InteractiveSessions => "interactive-sessions",
            Metric::Spread(sp) => sp.name(),
            Metric::NewPeople => "new-people",
            Metric::TeamActiveShare => "team-active-share",
        }
    }

    /// What is counted of each session it counts: the waste metrics count as
    /// `sessions` and `cost` do, over the sessions linked to no commit.
    fn base(self) -> Metric {
        match self {
            Metric::SessionsWithoutCommit => Metric::Sessions,
            Metric::CostWithoutCommit | Metric::CostNotLanded => Metric::Cost,
            m => m,
        }
    }

    pub(super) fn unit(self) -> &'static str {
        match self {
            Metric::Sessions => "sessions",
            Metric::ActivePeople => "people",
            Metric::Tokens => "tokens",
            Metric::Cost | Metric::CostWithoutCommit | Metric::CostNotLanded => "usd",
            Metric::Counter(c) => c.unit(),
            Metric::Pulls(p) => p.unit(),
            Metric::SessionsWithoutCommit => "sessions",
            Metric::CacheHitRatio | Metric::TeamActiveShare | Metric::WasteShare => "share",
            Metric::HeadlessSessions | Metric::InteractiveSessions => "sessions",
            Metric::Spread(_) => "seconds",
            Metric::NewPeople => "people",
        }
    }

    /// Whether a session's value can be told apart by model: tokens and cost can; the
    /// counters are the session's, not a model's.
    pub fn by_model(self) -> bool {
        !matches!(
            self,
            Metric::Counter(_)
                | Metric::Pulls(_)
                | Metric::HeadlessSessions
                | Metric::InteractiveSessions
                | Metric::Spread(_)
                | Metric::TeamActiveShare
        )
    }

    /// Whether its value is a session's that its agent may not report (a counter, the
    /// mode): sessions without it are left out, and the answer names their agents.
    pub fn reported(self) -> bool {
        matches!(
            self,
            Metric::Counter(_) | Metric::HeadlessSessions | Metric::InteractiveSessions
        ) || matches!(self, Metric::Spread(s) if s.of == SpreadOf::ActiveTime)
    }
}

/// How far a figure can be trusted; a group's or an answer's is its least trusted
/// part's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    #[default]
    Exact,
    Estimated,
    Partial,
}

/// One session as analytics counts it.
#[derive(Debug, Clone, Default)]
pub struct SessionFact {
    pub started_ns: i64,
    /// Who: the GitHub login, else the email, else the agent's user ID.
    pub person: Option<String>,
    /// The teams it counts for (never empty: `unassigned` when no team claims it).
    pub teams: Vec<String>,
    /// `owner/name`.
    pub repo: Option<String>,
    pub agent: Option<String>,
    pub tokens_by_model: BTreeMap<String, TokenView>,
    /// The session's cost: the agent's own figure, or estimated.
    pub cost_usd: Option<f64>,
    pub cost_estimated: bool,
    /// Each model's cost at the price table's rates (`None`: no price for it).
    pub priced_by_model: BTreeMap<String, Option<f64>>,
    /// The quantities the session's agent reported (absent: not reported).
    pub counted: BTreeMap<Counted, f64>,
    /// From its first record to its last, in seconds (`None`: not known).
    pub duration_seconds: Option<f64>,
    /// Whether it ran headless (`None`: its telemetry does not say).
    pub headless: Option<bool>,
}

/// What to answer.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub metric: Metric,
    pub group_by: GroupBy,
    pub bucket: Bucket,
    /// `[from_ns, to_ns)`.
    pub from_ns: i64,
    pub to_ns: i64,
    /// Where days begin (`--timezone`).
    pub zone: Zone,
}

/// A number as JSON: an integer when it is one; `null` for NaN (no figure: a median
/// of nothing).
pub(super) fn number<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        s.serialize_none()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    /// The bucket's first day (`YYYY-MM-DD`, UTC).
    pub start: String,
    #[serde(serialize_with = "number")]
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub key: String,
    #[serde(serialize_with = "number")]
    pub total: f64,
    pub quality: Quality,
    /// Tokens by kind (the `tokens` metric only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<BTreeMap<&'static str, i64>>,
    /// Agent-assisted pull requests apart from the others (pull request metrics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    pub series: Vec<Point>,
}

/// A pull request figure of the agent-assisted ones and of the others (`null`: none to
/// measure).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Split {
    #[serde(serialize_with = "number")]
    pub agent_assisted: f64,
    #[serde(serialize_with = "number")]
    pub not_agent_assisted: f64,
    pub agent_assisted_prs: usize,
    pub not_agent_assisted_prs: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answer {
    pub metric: &'static str,
    pub unit: &'static str,
    pub group_by: GroupBy,
    pub bucket: Bucket,
    pub from: String,
    pub to: String,
    /// Over every session once (team totals may add up to more).
    #[serde(serialize_with = "number")]
    pub total: f64,
    pub quality: Quality,
    /// Why a figure is estimated or partial.
    pub reasons: Vec<String>,
    /// Every session once, per bucket.
    pub series: Vec<Point>,
    /// Agent-assisted pull requests apart from the others (pull request metrics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Largest total first, then by key.
    pub groups: Vec<Group>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<Comparison>,
}

impl Answer {
    /// `q`'s answer with these figures (no split, no comparison).
    pub(super) fn new(
        q: &Query,
        total: f64,
        quality: Quality,
        reasons: BTreeSet<String>,
        series: Vec<Point>,
        groups: Vec<Group>,
    ) -> Self {
        Answer {
            metric: q.metric.name(),
            unit: q.metric.unit(),
            group_by: q.group_by,
            bucket: q.bucket,
            from: date_time(q.from_ns),
            to: date_time(q.to_ns),
            total,
            quality,
            reasons: reasons.into_iter().collect(),
            series,
            split: None,
            groups,
            compare: None,
        }
    }
}

/// A session's facts as `analytics_facts` and `analytics_model_facts` hold them: one row
/// per team it counts for, one per model it used (its cost split as the model grouping
/// counts it), each first row marked so every other grouping counts the session once.
pub fn fact_rows(
    session_id: i64,
    f: &SessionFact,
    zone: Zone,
) -> (Vec<FactRow>, Vec<ModelFactRow>) {
    let day = zone.day_of(f.started_ns);
    let kinds = |t: &TokenView| {
        [
            t.input,
            t.output,
            t.cache_read,
            t.cache_creation,
            t.reasoning,
        ]
    };
    let mut all = TokenView::default();
    for t in f.tokens_by_model.values() {
        all.input += t.input;
        all.output += t.output;
        all.cache_read += t.cache_read;
        all.cache_creation += t.cache_creation;
        all.reasoning += t.reasoning;
    }
    let mut teams: Vec<&str> = Vec::with_capacity(f.teams.len().max(1));
    for t in &f.teams {
        if !teams.contains(&t.as_str()) {
            teams.push(t);
        }
    }
    if teams.is_empty() {
        teams.push(crate::graph::identities::UNASSIGNED);
    }
    let counted = Counted::ALL.map(|c| f.counted.get(&c).copied());
    let org = f
        .repo
        .as_deref()
        .and_then(|r| r.split_once('/'))
        .map(|(o, _)| o.to_string());
    let rows = teams
        .iter()
        .enumerate()
        .map(|(i, team)| FactRow {
            started_ns: f.started_ns,
            day,
            session_id,
            team: team.to_string(),
            first_team: i == 0,
            person: f.person.clone(),
            agent: f.agent.clone(),
            repo: f.repo.clone(),
            org: org.clone(),
            tokens: kinds(&all),
            cost: f.cost_usd,
            cost_estimated: f.cost_estimated,
            counted,
            duration_seconds: f.duration_seconds,
            headless: f.headless,
            commits: 0,
        })
        .collect();
    let whole_how = if f.cost_estimated {
        CostHow::Estimated
    } else {
        CostHow::Exact
    };
    let models = if f.tokens_by_model.is_empty() {
        vec![ModelFactRow {
            started_ns: f.started_ns,
            day,
            session_id,
            model: None,
            first_model: true,
            person: f.person.clone(),
            tokens: [0; 5],
            cost: f.cost_usd,
            cost_how: whole_how,
        }]
    } else {
        f.tokens_by_model
            .iter()
            .enumerate()
            .map(|(i, (m, t))| {
                let (cost, cost_how) = model_cost(f, m, whole_how);
                ModelFactRow {
                    started_ns: f.started_ns,
                    day,
                    session_id,
                    model: Some(m.clone()),
                    first_model: i == 0,
                    person: f.person.clone(),
                    tokens: kinds(t),
                    cost,
                    cost_how,
                }
            })
            .collect()
    };
    (rows, models)
}

/// Model `m`'s share of the session's cost: all of it when it is the only model; else
/// the price table's figure for it (an estimated cost), or the reported cost split in
/// proportion to the models' price-table cost, or (no price for some) to their tokens.
fn model_cost(f: &SessionFact, m: &str, whole_how: CostHow) -> (Option<f64>, CostHow) {
    let Some(cost) = f.cost_usd else {
        return (None, whole_how);
    };
    if f.tokens_by_model.len() <= 1 {
        return (Some(cost), whole_how);
    }
    let mine = f.priced_by_model.get(m).copied().flatten();
    if f.cost_estimated {
        return (Some(mine.unwrap_or(0.0)), CostHow::Estimated);
    }
    let priced: Option<f64> = f.priced_by_model.values().copied().sum();
    match priced {
        Some(all) if all > 0.0 => (
            Some(cost * mine.unwrap_or(0.0) / all),
            CostHow::SplitByPrice,
        ),
        _ => {
            let all: f64 = f.tokens_by_model.values().map(token_total).sum();
            let mine = f.tokens_by_model.get(m).map_or(0.0, token_total);
            (
                Some(if all > 0.0 { cost * mine / all } else { 0.0 }),
                CostHow::SplitByTokens,
            )
        }
    }
}

/// What the store sums for `q`.
pub fn fact_query(q: &Query) -> FactQuery {
    FactQuery {
        key: match q.group_by {
            GroupBy::Org => FactKey::Org,
            GroupBy::Team => FactKey::Team,
            GroupBy::Repo => FactKey::Repo,
            GroupBy::Agent => FactKey::Agent,
            GroupBy::Person => FactKey::Person,
            GroupBy::Model => FactKey::Model,
            GroupBy::Workflow => FactKey::Workflow,
        },
        value: match q.metric.base() {
            Metric::Tokens | Metric::CacheHitRatio => FactValue::Tokens,
            Metric::Cost | Metric::WasteShare => FactValue::Cost,
            Metric::Counter(c) => counted_value(c),
            Metric::HeadlessSessions => FactValue::Mode { headless: true },
            Metric::InteractiveSessions => FactValue::Mode { headless: false },
            Metric::Spread(Spread {
                of: SpreadOf::Duration,
                ..
            }) => FactValue::Duration,
            Metric::Spread(Spread {
                of: SpreadOf::ActiveTime,
                ..
            }) => counted_value(Counted::ActiveTime),
            _ => FactValue::Sessions,
        },
        buckets: match q.bucket {
            Bucket::Day => FactBuckets::Day,
            Bucket::Week => FactBuckets::Week,
            Bucket::Month => FactBuckets::Starting(
                bucket_starts(q)
                    .into_iter()
                    .map(|s| q.zone.day_of(s))
                    .collect(),
            ),
        },
        from_ns: q.from_ns,
        to_ns: q.to_ns,
        commits: match q.metric {
            Metric::SessionsWithoutCommit | Metric::CostWithoutCommit => Commits::None,
            Metric::CostNotLanded | Metric::WasteShare => Commits::Unlanded,
            _ => Commits::Any,
        },
        only: Only::default(),
        with_workflow: false,
        tokens: matches!(q.metric.base(), Metric::Tokens | Metric::CacheHitRatio),
    }
}

fn counted_value(c: Counted) -> FactValue {
    FactValue::Counted(Counted::ALL.iter().position(|x| *x == c).unwrap_or(0))
}

/// What the store summed for a query ([`fact_query`]).
#[derive(Debug, Clone, Default)]
pub struct Sums {
    pub tallies: Vec<Tally>,
    /// Distinct people (`active-people` only).
    pub people: Option<PeopleTally>,
    /// The agents of sessions lacking the value (a counter or a cost), when any did.
    pub missing_agents: Vec<Option<String>>,
    /// Sessions whose facts are being computed again (not counted as they are now).
    pub queued: i64,
    /// What the answer's total and series count, when the groups' rows cannot say it
    /// (grouped by workflow: a session of several tools counts once): the sessions'
    /// tallies per bucket.
    pub overall: Option<Vec<Tally>>,
    /// A ratio's denominators read apart from its numerators (`waste-share`: the cost
    /// of every session whose landing is judged), keyed and bucketed as the tallies.
    pub denominators: Option<Vec<Tally>>,
    /// Some sessions counted as not landed started less than 14 days ago: their commits
    /// may still reach the default branch.
    pub landing_open: bool,
}

fn kinds_add(into: &mut BTreeMap<&'static str, i64>, t: &Tally) {
    for (k, v) in [
        ("input", t.input),
        ("output", t.output),
        ("cache_read", t.cache_read),
        ("cache_creation", t.cache_creation),
        ("reasoning", t.reasoning),
    ] {
        *into.entry(k).or_default() += v;
    }
}

fn token_total(t: &TokenView) -> f64 {
    (t.input + t.output) as f64
}

/// Rounds a dollar figure's floating-point noise below a micro-dollar away.
pub(super) fn dollars(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

/// The starts of `q`'s buckets: from the one holding `from`, up to `to`.
pub(super) fn bucket_starts(q: &Query) -> Vec<i64> {
    let mut starts = Vec::new();
    let mut s = q.bucket.start(q.zone, q.from_ns);
    while s < q.to_ns && starts.len() < 10_000 {
        starts.push(s);
        s = q.bucket.next(q.zone, s);
    }
    starts
}

pub(super) fn points(
    zone: Zone,
    starts: &[i64],
    values: impl IntoIterator<Item = f64>,
    round: impl Fn(f64) -> f64,
) -> Vec<Point> {
    starts
        .iter()
        .zip(values)
        .map(|(s, v)| Point {
            start: zone.date_of(*s).format("%Y-%m-%d").to_string(),
            value: round(v),
        })
        .collect()
}

/// The answer to `q` from what the store summed for it.
pub fn answer(q: &Query, sums: &Sums) -> Answer {
    let starts = bucket_starts(q);
    let slot = |day: i64| {
        starts
            .partition_point(|b| *b <= q.zone.day_start(day))
            .checked_sub(1)
    };
    let key_of = |k: &Option<String>| k.clone().unwrap_or_else(|| "unknown".to_string());

    struct Acc {
        total: f64,
        quality: Quality,
        kinds: Option<BTreeMap<&'static str, i64>>,
        series: Vec<f64>,
        /// A ratio's denominators (`cache-hit-ratio`): the totals and series divide by
        /// them at the end.
        den: f64,
        den_series: Vec<f64>,
    }
    let new_acc = || Acc {
        total: 0.0,
        quality: Quality::Exact,
        kinds: None,
        series: vec![0.0; starts.len()],
        den: 0.0,
        den_series: vec![0.0; starts.len()],
    };
    let ratio = matches!(q.metric, Metric::CacheHitRatio | Metric::WasteShare);
    let mut den = 0.0;
    let mut overall_den = vec![0.0; starts.len()];
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let mut reasons = BTreeSet::new();
    let mut total = 0.0;
    let mut quality = Quality::Exact;
    // Every session once, per bucket.
    let mut overall = vec![0.0; starts.len()];
    let base = q.metric.base();
    if let Some(people) = sums
        .people
        .as_ref()
        .filter(|_| base == Metric::ActivePeople)
    {
        for (bucket, key, n) in &people.by_bucket_key {
            if let Some(i) = slot(*bucket) {
                groups.entry(key_of(key)).or_insert_with(new_acc).series[i] += *n as f64;
            }
        }
        for (key, n) in &people.by_key {
            groups.entry(key_of(key)).or_insert_with(new_acc).total = *n as f64;
        }
        for (bucket, n) in &people.by_bucket {
            if let Some(i) = slot(*bucket) {
                overall[i] += *n as f64;
            }
        }
        total = people.total as f64;
        if people.nameless > 0 {
            reasons.insert(format!(
                "{} sessions name no user and are not counted as people",
                people.nameless
            ));
            quality = Quality::Partial;
        }
    } else {
        for t in &sums.tallies {
            let Some(i) = slot(t.bucket) else {
                continue;
            };
            let (value, value_den) = if base == Metric::CacheHitRatio {
                (t.cache_read as f64, t.input as f64)
            } else {
                (t.value.unwrap_or(0.0), 0.0)
            };
            // The sessions' whole value, once, whatever the groups they share: a
            // session's models' shares add up to it; by team, its first team's row.
            let (whole, whole_den) = match (base, q.group_by) {
                (Metric::CacheHitRatio, GroupBy::Team) => {
                    (t.whole_cache_read as f64, t.whole_input as f64)
                }
                (Metric::Sessions, _) | (_, GroupBy::Team) => (t.whole.unwrap_or(0.0), 0.0),
                _ => (value, value_den),
            };
            if sums.overall.is_none() {
                total += whole;
                overall[i] += whole;
                den += whole_den;
                overall_den[i] += whole_den;
            }
            let mut q_here = Quality::Exact;
            if t.missing > 0 {
                q_here = Quality::Partial;
                if base == Metric::Cost {
                    reasons.insert(
                        "sessions without a cost (none reported, and no price for their models) are left out".into(),
                    );
                }
            }
            let notes = [
                (
                    t.estimated,
                    "costs not reported by the agent are estimated from the price table",
                ),
                (
                    t.split_by_price,
                    "a reported cost of several models is split in proportion to their price-table cost",
                ),
                (
                    t.split_by_tokens,
                    "a reported cost of several models is split in proportion to their tokens",
                ),
            ];
            for (n, why) in notes {
                if n > 0 {
                    reasons.insert(why.to_string());
                    q_here = q_here.max(Quality::Estimated);
                }
            }
            let acc = groups.entry(key_of(&t.key)).or_insert_with(new_acc);
            acc.quality = acc.quality.max(q_here);
            quality = quality.max(q_here);
            if base == Metric::Tokens {
                kinds_add(acc.kinds.get_or_insert_with(BTreeMap::new), t);
            }
            acc.total += value;
            acc.series[i] += value;
            acc.den += value_den;
            acc.den_series[i] += value_den;
        }
        // Every session once, one row each (no grouping's rows to pick from).
        for t in sums.overall.iter().flatten() {
            let Some(i) = slot(t.bucket) else {
                continue;
            };
            let (whole, whole_den) = if base == Metric::CacheHitRatio {
                (t.cache_read as f64, t.input as f64)
            } else {
                (t.value.unwrap_or(0.0), 0.0)
            };
            total += whole;
            overall[i] += whole;
            den += whole_den;
            overall_den[i] += whole_den;
        }
        for t in sums.denominators.iter().flatten() {
            let Some(i) = slot(t.bucket) else {
                continue;
            };
            let value = t.value.unwrap_or(0.0);
            let whole = if q.group_by == GroupBy::Team {
                t.whole.unwrap_or(0.0)
            } else {
                value
            };
            den += whole;
            overall_den[i] += whole;
            let acc = groups.entry(key_of(&t.key)).or_insert_with(new_acc);
            acc.den += value;
            acc.den_series[i] += value;
            if t.missing > 0 {
                acc.quality = acc.quality.max(Quality::Partial);
                quality = quality.max(Quality::Partial);
                reasons.insert(
                    "sessions without a cost (none reported, and no price for their models) are left out".into(),
                );
            }
        }
        if base.reported() {
            for agent in &sums.missing_agents {
                reasons.insert(missing_reason(base, agent.as_deref()));
            }
        }
    }
    if sums.landing_open && !sums.tallies.is_empty() {
        reasons.insert(
            "sessions started less than 14 days ago may still see their commits reach the default branch".into(),
        );
        quality = Quality::Partial;
        for acc in groups.values_mut() {
            acc.quality = Quality::Partial;
        }
    }
    if sums.queued > 0 {
        reasons.insert(format!(
            "{} sessions changed moments ago and are being counted again",
            sums.queued
        ));
        quality = Quality::Partial;
    }
    let round = |v: f64| match base {
        Metric::Cost => dollars(v),
        Metric::CacheHitRatio | Metric::WasteShare => (v * 1e4).round() / 1e4,
        _ => v,
    };
    // A ratio of nothing is no figure (null), not 0.
    let over = |num: f64, den: f64| {
        if !ratio {
            num
        } else if den > 0.0 {
            num / den
        } else {
            f64::NAN
        }
    };
    let divided = |num: Vec<f64>, den: &[f64]| -> Vec<f64> {
        num.into_iter().zip(den).map(|(n, d)| over(n, *d)).collect()
    };
    let total = over(total, den);
    let overall = divided(overall, &overall_den);
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|(key, acc)| Group {
            key,
            total: round(over(acc.total, acc.den)),
            quality: acc.quality,
            kinds: acc.kinds,
            split: None,
            series: points(q.zone, &starts, divided(acc.series, &acc.den_series), round),
        })
        .collect();
    sort_groups(&mut out);
    Answer::new(
        q,
        round(total),
        quality,
        reasons,
        points(q.zone, &starts, overall, round),
        out,
    )
}

/// Why sessions of `agent` are left out of `m` (a [`Metric::reported`] metric).
pub(super) fn missing_reason(m: Metric, agent: Option<&str>) -> String {
    let what = match m {
        Metric::Counter(c) => c.name(),
        Metric::Spread(_) => "active time",
        _ => "whether they ran headless",
    };
    format!(
        "sessions of agents that do not report {what} are left out: {}",
        agent.unwrap_or("unknown")
    )
}

/// Groups largest first, then by key; those without a figure (a ratio or median of
/// nothing) last.
pub(super) fn sort_groups(groups: &mut [Group]) {
    let rank = |g: &Group| {
        if g.total.is_nan() {
            f64::NEG_INFINITY
        } else {
            g.total
        }
    };
    groups.sort_by(|a, b| rank(b).total_cmp(&rank(a)).then_with(|| a.key.cmp(&b.key)));
}

/// Before and after a date (`compare=`): the mean of the whole weeks before it and of
/// those after it, and the change in standard deviations of the weeks before.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub at: String,
    pub weeks_before: usize,
    pub weeks_after: usize,
    #[serde(flatten)]
    pub overall: Effect,
    /// `partial` when either side has fewer than 4 whole weeks.
    pub quality: Quality,
    pub reasons: Vec<String>,
    pub groups: Vec<GroupEffect>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Effect {
    #[serde(serialize_with = "number")]
    pub mean_before: f64,
    #[serde(serialize_with = "number")]
    pub mean_after: f64,
    /// The sample standard deviation of the weekly values before.
    #[serde(serialize_with = "maybe_number")]
    pub sd_before: Option<f64>,
    /// `(mean_after − mean_before) / sd_before`, to 4 decimals; `None` when the weeks
    /// before do not vary (or are fewer than 2).
    #[serde(serialize_with = "maybe_number")]
    pub effect: Option<f64>,
}

fn maybe_number<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => number(v, s),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupEffect {
    pub key: String,
    #[serde(flatten)]
    pub effect: Effect,
}

/// Whole weeks needed on each side for a comparison to be more than partial.
const MIN_WEEKS: usize = 4;

fn effect(before: &[f64], after: &[f64], round: &impl Fn(f64) -> f64) -> Effect {
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (mb, ma) = (mean(before), mean(after));
    let sd = (before.len() >= 2).then(|| {
        (before.iter().map(|x| (x - mb).powi(2)).sum::<f64>() / (before.len() - 1) as f64).sqrt()
    });
    let four = |v: f64| (v * 1e4).round() / 1e4;
    Effect {
        mean_before: round(mb),
        mean_after: round(ma),
        sd_before: sd.map(round),
        effect: sd
            .filter(|s| *s > 0.0 && !after.is_empty())
            .map(|s| four((ma - mb) / s)),
    }
}

/// `q`'s answer `out` with the comparison at `at_ns`, from `weekly`, the same query's
/// answer by ISO week ([`weekly`]): over whole weeks inside the range, those ending by
/// `at_ns` before it and those starting from it after (a week holding the date is in
/// neither).
pub fn answer_comparing(q: &Query, mut out: Answer, weekly: &Answer, at_ns: i64) -> Answer {
    let wq = weekly_query(q);
    let starts = bucket_starts(&wq);
    let side = |values: &[f64]| {
        let (mut before, mut after) = (Vec::new(), Vec::new());
        for (s, v) in starts.iter().zip(values) {
            let end = Bucket::Week.next(q.zone, *s);
            if *s < q.from_ns || end > q.to_ns {
                continue;
            }
            if end <= at_ns {
                before.push(*v);
            } else if *s >= at_ns {
                after.push(*v);
            }
        }
        (before, after)
    };
    let round = |v: f64| match q.metric.base() {
        Metric::Cost => dollars(v),
        _ => (v * 1e6).round() / 1e6,
    };
    let values = |p: &[Point]| p.iter().map(|p| p.value).collect::<Vec<_>>();
    let (before, after) = side(&values(&weekly.series));
    let mut reasons = Vec::new();
    let quality = if before.len() < MIN_WEEKS || after.len() < MIN_WEEKS {
        reasons.push(format!(
            "fewer than {MIN_WEEKS} whole weeks on a side: {} before, {} after",
            before.len(),
            after.len()
        ));
        Quality::Partial
    } else {
        Quality::Exact
    };
    let overall = effect(&before, &after, &round);
    if overall.effect.is_none() {
        reasons.push(
            "the weeks before do not vary: no standard deviation to measure the change in".into(),
        );
    }
    out.compare = Some(Comparison {
        at: date_time(at_ns),
        weeks_before: before.len(),
        weeks_after: after.len(),
        overall,
        quality,
        reasons,
        groups: weekly
            .groups
            .iter()
            .map(|g| {
                let (b, a) = side(&values(&g.series));
                GroupEffect {
                    key: g.key.clone(),
                    effect: effect(&b, &a, &round),
                }
            })
            .collect(),
    });
    out
}

/// `q` by ISO week: what a comparison reads.
pub fn weekly_query(q: &Query) -> Query {
    Query {
        bucket: Bucket::Week,
        ..*q
    }
}

pub(super) fn date_time(ns: i64) -> String {
    crate::time::rfc3339(Some(ns), chrono::SecondsFormat::Secs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600 * 1_000_000_000;

    /// `q`'s answer over these sessions, as the API gives it: their rows stored in a
    /// fresh SQLite database and summed there. (Waste, which reads the stored links, is
    /// tested end to end in `tests/it/analytics.rs`.)
    fn answer(q: &Query, facts: &[SessionFact]) -> Answer {
        answered(q, facts, None)
    }

    fn answer_comparing(q: &Query, facts: &[SessionFact], at: i64) -> Answer {
        answered(q, facts, Some(at))
    }

    fn answered(q: &Query, facts: &[SessionFact], at: Option<i64>) -> Answer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::store::open(dir.path().join("analytics.db"))
                .await
                .unwrap();
            let mut conn = store.writer;
            let (mut rows, mut models, mut done) = (Vec::new(), Vec::new(), Vec::new());
            for (i, f) in facts.iter().enumerate() {
                let id = i as i64 + 1;
                let (r, m) = fact_rows(id, f, Zone::UTC);
                rows.extend(r);
                models.extend(m);
                done.push(crate::store::links::QueuedSession {
                    session_id: id,
                    touched_ns: 0,
                });
            }
            let mut tx = conn.begin_write().await.unwrap();
            tx.replace_analytics_facts(&done, &rows, &models)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            // What `impact::analytics::answer` reads (metrics may not import impact).
            let sums = |q: Query| {
                let db = store.db.clone();
                async move {
                    let fq = fact_query(&q);
                    let mut sums = Sums::default();
                    if q.metric == Metric::ActivePeople {
                        sums.people = Some(db.analytics_people(&fq).await.unwrap());
                    } else {
                        sums.tallies = db.analytics_tallies(&fq).await.unwrap();
                        sums.missing_agents = db.analytics_missing_agents(&fq).await.unwrap();
                    }
                    sums
                }
            };
            let out = super::answer(q, &sums(*q).await);
            match at {
                Some(at) => {
                    let wq = weekly_query(q);
                    let weekly = super::answer(&wq, &sums(wq).await);
                    super::answer_comparing(q, out, &weekly, at)
                }
                None => out,
            }
        })
    }

    const DAY_NS: i64 = 86_400 * 1_000_000_000;

    fn at(date: &str) -> i64 {
        Zone::UTC.midnight(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
    }

    fn tokens(input: i64, output: i64) -> TokenView {
        TokenView {
            input,
            output,
            ..Default::default()
        }
    }

    #[test]
    fn buckets_are_utc_days_iso_weeks_and_months() {
        let utc = Zone::UTC;
        let t = at("2026-11-26") + 13 * H; // a Thursday
        assert_eq!(Bucket::Day.start(utc, t), at("2026-11-26"));
        assert_eq!(
            Bucket::Week.start(utc, t),
            at("2026-11-23"),
            "the Monday before"
        );
        assert_eq!(Bucket::Week.start(utc, at("2026-11-23")), at("2026-11-23"));
        assert_eq!(Bucket::Month.start(utc, t), at("2026-11-01"));
        assert_eq!(Bucket::Month.next(utc, at("2026-12-01")), at("2027-01-01"));
    }

    #[test]
    fn buckets_begin_at_local_midnight_with_a_timezone() {
        let la = Zone::parse("America/Los_Angeles").unwrap();
        // 2026-11-26T05:00Z is still the 25th in Los Angeles (UTC−8).
        let t = at("2026-11-26") + 5 * H;
        assert_eq!(Bucket::Day.start(la, t), at("2026-11-25") + 8 * H);
        assert_eq!(Bucket::Week.start(la, t), at("2026-11-23") + 8 * H);
        // November 2026 began on Pacific daylight time (UTC−7), December on standard.
        assert_eq!(Bucket::Month.start(la, t), at("2026-11-01") + 7 * H);
        assert_eq!(
            Bucket::Month.next(la, at("2026-11-01") + 7 * H),
            at("2026-12-01") + 8 * H
        );
        // A session at 23:30 local on 25 November counts on the 25th.
        let mut f = facts()[0].clone();
        f.started_ns = at("2026-11-26") + 7 * H + 30 * 60 * 1_000_000_000;
        let (rows, _) = fact_rows(1, &f, la);
        assert_eq!(rows[0].day, la.day_of(at("2026-11-25") + 12 * H));
        assert_eq!(fact_rows(1, &f, Zone::UTC).0[0].day, rows[0].day + 1);
    }

    fn facts() -> Vec<SessionFact> {
        let mut a = SessionFact {
            started_ns: at("2026-11-02") + H,
            person: Some("dev".into()),
            teams: vec!["payments".into(), "search".into()],
            repo: Some("acme/checkout".into()),
            agent: Some("claude-code".into()),
            cost_usd: Some(1.5),
            ..Default::default()
        };
        a.tokens_by_model.insert("sonnet".into(), tokens(100, 50));
        a.tokens_by_model.insert("haiku".into(), tokens(30, 20));
        a.priced_by_model.insert("sonnet".into(), Some(0.9));
        a.priced_by_model.insert("haiku".into(), Some(0.1));
        let mut b = SessionFact {
            started_ns: at("2026-11-10") + H,
            person: Some("dev".into()),
            teams: vec!["payments".into(), "search".into()],
            repo: Some("acme/checkout".into()),
            agent: Some("codex".into()),
            cost_usd: Some(0.25),
            cost_estimated: true,
            ..Default::default()
        };
        b.tokens_by_model.insert("gpt".into(), tokens(10, 5));
        b.priced_by_model.insert("gpt".into(), Some(0.25));
        let c = SessionFact {
            started_ns: at("2026-11-10") + 2 * H,
            person: None,
            teams: vec!["unassigned".into()],
            repo: None,
            agent: Some("droid".into()),
            ..Default::default()
        };
        vec![a, b, c]
    }

    fn q(metric: Metric, group_by: GroupBy) -> Query {
        Query {
            metric,
            group_by,
            bucket: Bucket::Week,
            from_ns: at("2026-11-01"),
            to_ns: at("2026-11-15"),
            zone: Zone::UTC,
        }
    }

    fn totals(a: &Answer) -> Vec<(String, f64, Quality)> {
        a.groups
            .iter()
            .map(|g| (g.key.clone(), g.total, g.quality))
            .collect()
    }

    #[test]
    fn sessions_by_team_count_in_each_team_and_once_in_all() {
        let a = answer(&q(Metric::Sessions, GroupBy::Team), &facts());
        assert_eq!(a.total, 3.0);
        assert_eq!(
            totals(&a),
            [
                ("payments".into(), 2.0, Quality::Exact),
                ("search".into(), 2.0, Quality::Exact),
                ("unassigned".into(), 1.0, Quality::Exact)
            ]
        );
        // Weeks from Monday 26 October (the week holding 1 November).
        let series: Vec<(&str, f64)> = a.groups[0]
            .series
            .iter()
            .map(|p| (p.start.as_str(), p.value))
            .collect();
        assert_eq!(
            series,
            [
                ("2026-10-26", 0.0),
                ("2026-11-02", 1.0),
                ("2026-11-09", 1.0)
            ]
        );
    }

    #[test]
    fn active_people_are_distinct_and_nameless_sessions_make_it_partial() {
        let a = answer(&q(Metric::ActivePeople, GroupBy::Agent), &facts());
        assert_eq!(a.total, 1.0, "dev, twice");
        assert_eq!(a.quality, Quality::Partial);
        assert_eq!(
            a.reasons,
            ["1 sessions name no user and are not counted as people"]
        );
        assert_eq!(
            totals(&a),
            [
                ("claude-code".into(), 1.0, Quality::Exact),
                ("codex".into(), 1.0, Quality::Exact)
            ]
        );
    }

    #[test]
    fn cost_by_model_splits_a_reported_cost_by_price_and_says_so() {
        let a = answer(&q(Metric::Cost, GroupBy::Model), &facts());
        assert_eq!(
            a.total, 1.75,
            "1.5 reported + 0.25 estimated; the droid session has none"
        );
        assert_eq!(a.quality, Quality::Partial);
        assert_eq!(
            totals(&a),
            [
                ("sonnet".into(), 1.35, Quality::Estimated),
                ("gpt".into(), 0.25, Quality::Estimated),
                ("haiku".into(), 0.15, Quality::Estimated),
                ("unknown".into(), 0.0, Quality::Partial),
            ]
        );
        let by_agent = answer(&q(Metric::Cost, GroupBy::Agent), &facts());
        assert_eq!(
            totals(&by_agent),
            [
                ("claude-code".into(), 1.5, Quality::Exact),
                ("codex".into(), 0.25, Quality::Estimated),
                ("droid".into(), 0.0, Quality::Partial),
            ]
        );
        assert_eq!(by_agent.reasons.len(), 2, "{:?}", by_agent.reasons);
    }

    #[test]
    fn counters_sum_what_agents_report_and_name_those_that_do_not() {
        let mut f = facts();
        f[0].counted.insert(Counted::Requests, 16.0);
        f[1].counted.insert(Counted::Requests, 4.0);
        let a = answer(&q(Metric::Counter(Counted::Requests), GroupBy::Team), &f);
        assert_eq!(a.total, 20.0);
        assert_eq!(a.quality, Quality::Partial);
        assert_eq!(
            a.reasons,
            ["sessions of agents that do not report requests are left out: droid"]
        );
        assert_eq!(
            totals(&a),
            [
                ("payments".into(), 20.0, Quality::Exact),
                ("search".into(), 20.0, Quality::Exact),
                ("unassigned".into(), 0.0, Quality::Partial)
            ]
        );
        assert_eq!(
            Metric::parse("tool-rejections"),
            Some(Metric::Counter(Counted::ToolRejections))
        );
        assert!(!Metric::parse("lines-added").unwrap().by_model());
    }

    #[test]
    fn before_and_after_a_date_in_standard_deviations_of_the_weeks_before() {
        // Sessions per week: 2, 4, 2, 4 in the four weeks from Monday 5 October, then
        // 6, 6, 6, 6 from Monday 2 November.
        let mut f = Vec::new();
        for (week, n) in [2, 4, 2, 4, 6, 6, 6, 6].iter().enumerate() {
            for k in 0..*n {
                f.push(SessionFact {
                    started_ns: at("2026-10-05") + week as i64 * 7 * DAY_NS + k * H,
                    person: Some(format!("p{k}")),
                    teams: vec!["payments".into()],
                    agent: Some(if week < 4 { "codex" } else { "claude-code" }.into()),
                    ..Default::default()
                });
            }
        }
        let q = Query {
            metric: Metric::Sessions,
            group_by: GroupBy::Team,
            bucket: Bucket::Month,
            from_ns: at("2026-10-05"),
            to_ns: at("2026-11-30"),
            zone: Zone::UTC,
        };
        let a = answer_comparing(&q, &f, at("2026-11-02"));
        let c = a.compare.unwrap();
        assert_eq!((c.weeks_before, c.weeks_after), (4, 4));
        assert_eq!(c.quality, Quality::Exact);
        // Mean 3 before, 6 after; sample SD of 2, 4, 2, 4 is √(4/3) = 1.1547: 2.5981 SDs.
        assert_eq!(
            c.overall,
            Effect {
                mean_before: 3.0,
                mean_after: 6.0,
                sd_before: Some(1.154701),
                effect: Some(2.5981)
            }
        );
        assert_eq!(c.groups[0].key, "payments");
        // A date leaving three weeks before: partial, and says so.
        let a = answer_comparing(&q, &f, at("2026-10-28"));
        let c = a.compare.unwrap();
        assert_eq!(
            (c.weeks_before, c.weeks_after, c.quality),
            (3, 4, Quality::Partial)
        );
        assert_eq!(
            c.reasons,
            ["fewer than 4 whole weeks on a side: 3 before, 4 after"]
        );
        // Monthly overall series: 12 in October, 24 in November.
        let months: Vec<f64> = a.series.iter().map(|p| p.value).collect();
        assert_eq!(months, [12.0, 24.0]);
    }

    #[test]
    fn tokens_are_input_plus_output_with_kinds() {
        let a = answer(&q(Metric::Tokens, GroupBy::Org), &facts());
        assert_eq!(a.total, 215.0);
        assert_eq!(a.groups[0].key, "acme");
        assert_eq!(a.groups[0].total, 215.0);
        let kinds = a.groups[0].kinds.as_ref().unwrap();
        assert_eq!((kinds["input"], kinds["output"]), (140, 75));
        let by_model = answer(&q(Metric::Tokens, GroupBy::Model), &facts());
        assert_eq!(by_model.total, 215.0);
        assert_eq!(by_model.groups[0].key, "sonnet");
        assert_eq!(by_model.groups[0].total, 150.0);
    }
}
