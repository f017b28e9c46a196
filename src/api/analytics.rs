//! `GET /api/v1/analytics/{metric}?group_by=&from=&to=&bucket=&compare=`: organisation analytics
//! (definitions in `docs/metrics.md`, the maths in [`crate::metrics::analytics`]).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, ApiState, Params};
use crate::metrics::analytics::{self, Bucket, GroupBy, Metric};
use crate::store::analytics::Only;

const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// The widest range one request may ask for.
const MAX_RANGE_DAYS: i64 = 3 * 366;

#[derive(Debug, Deserialize)]
pub struct AlertParams {
    day: Option<String>,
}

/// `GET /api/v1/alerts?day=YYYY-MM-DD` (default: today, UTC): spend and token spikes
/// per team (and person, with `--people on`) against their trailing 28 days, and teams'
/// monthly budgets (`docs/metrics.md`).
pub async fn alerts(
    State(state): State<ApiState>,
    Query(p): Query<AlertParams>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts_of(&state, p.day.as_deref()).await?).into_response())
}

/// The alerts of a day (`YYYY-MM-DD`; none: today in `--timezone`). The dashboard's
/// Alerts page asks through here too.
pub async fn alerts_of(
    state: &ApiState,
    day: Option<&str>,
) -> Result<crate::metrics::alerts::Alerts, ApiError> {
    let day = match day.filter(|s| !s.is_empty()) {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("day={d:?} is not a date (YYYY-MM-DD)"),
            )
        })?,
        None => state.reports.zone.date_of(crate::time::now_ns()),
    };
    let day_ns = day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("day={day} is out of range"),
            )
        })?;
    state.analytics.before_answering().await?;
    Ok(
        crate::impact::analytics::alerts_on(&state.db, &state.reports, &state.alerts, day_ns)
            .await?,
    )
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AnalyticsParams {
    pub group_by: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub bucket: Option<String>,
    pub compare: Option<String>,
    /// Only this team's, repository's, agent's sessions (and pull requests).
    pub team: Option<String>,
    pub repo: Option<String>,
    pub agent: Option<String>,
}

/// A question the analytics API answers: what, over which sessions, compared when.
#[derive(Debug, Clone)]
pub struct Question {
    pub q: analytics::Query,
    pub compare: Option<i64>,
    pub only: Only,
}

/// A time as a parameter gives it: an RFC 3339 time, or a date (its midnight, UTC).
/// An RFC 3339 time, or a date: its start in `zone`.
pub fn parse_time(zone: crate::time::Zone, name: &str, s: &str) -> Result<i64, ApiError> {
    crate::time::parse_rfc3339(s)
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| zone.midnight(d))
        })
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("{name}={s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
            )
        })
}

pub async fn analytics(
    State(state): State<ApiState>,
    Params(metric): Params<String>,
    Query(p): Query<AnalyticsParams>,
) -> Result<Response, ApiError> {
    let question = query(&state, &metric, &p)?;
    Ok(Json(answer(&state, &question).await?).into_response())
}

/// The question a request asks (and the `compare=` time), or a 400/403/404 naming what
/// is wrong with it. The dashboard asks through here too.
pub fn query(state: &ApiState, metric: &str, p: &AnalyticsParams) -> Result<Question, ApiError> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    let metric = Metric::parse(metric).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "no analytics metric {metric:?}; there are: {}",
                Metric::NAMES
            ),
        )
    })?;
    let group_by = match p.group_by.as_deref().filter(|s| !s.is_empty()) {
        None => GroupBy::Org,
        Some(g) => GroupBy::parse(g)
            .ok_or_else(|| bad(format!("group_by={g:?}: one of {}", GroupBy::NAMES)))?,
    };
    if let (Metric::Pulls(_), GroupBy::Model) = (metric, group_by) {
        return Err(bad(format!(
            "{} is counted per pull request, not per model: group by org, team, repo, agent or person",
            metric.name()
        )));
    }
    if group_by == GroupBy::Model && !metric.by_model() {
        return Err(bad(format!(
            "{} is counted per session, not per model: group by org, team, repo, agent or person",
            metric.name()
        )));
    }
    if group_by == GroupBy::Workflow
        && matches!(
            metric,
            Metric::Pulls(_) | Metric::Spread(_) | Metric::WasteShare
        )
    {
        return Err(bad(format!(
            "{} cannot be grouped by workflow: a percentile, a share or a pull request figure is not a sum over the tools a session used",
            metric.name()
        )));
    }
    if metric == Metric::TeamActiveShare && group_by != GroupBy::Team {
        return Err(bad(
            "team-active-share is the share of a team's members active: group_by=team".into(),
        ));
    }
    if group_by == GroupBy::Person && !state.people {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "per-person views are off: group_by=person needs tracelink started with --people on"
                .into(),
        ));
    }
    let bucket = match p.bucket.as_deref().filter(|s| !s.is_empty()) {
        None => Bucket::Day,
        Some(b) => {
            Bucket::parse(b).ok_or_else(|| bad(format!("bucket={b:?}: one of day, week, month")))?
        }
    };
    let zone = state.reports.zone;
    let to_ns = match p.to.as_deref().filter(|s| !s.is_empty()) {
        Some(t) => parse_time(zone, "to", t)?,
        None => crate::time::now_ns(),
    };
    let from_ns = match p.from.as_deref().filter(|s| !s.is_empty()) {
        Some(f) => parse_time(zone, "from", f)?,
        None => to_ns - 30 * DAY_NS,
    };
    if from_ns >= to_ns {
        return Err(bad("from must be before to".into()));
    }
    if to_ns - from_ns > MAX_RANGE_DAYS * DAY_NS {
        return Err(bad(format!(
            "the range is longer than {MAX_RANGE_DAYS} days; ask for less"
        )));
    }
    let compare = match p.compare.as_deref().filter(|s| !s.is_empty()) {
        Some(c) => {
            let at = parse_time(zone, "compare", c)?;
            if at <= from_ns || at >= to_ns {
                return Err(bad(format!(
                    "compare={c:?} is not inside the range from..to"
                )));
            }
            Some(at)
        }
        None => None,
    };
    if compare.is_some() && matches!(metric, Metric::Pulls(_)) {
        return Err(bad(format!(
            "compare= is not available for {}: it compares sums of weeks",
            metric.name()
        )));
    }
    let named = |name: &str, v: &Option<String>| -> Result<Option<String>, ApiError> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) if s.len() > 255 => Err(bad(format!("{name}= is longer than 255 bytes"))),
            Some(s) => Ok(Some(s.to_string())),
        }
    };
    let only = Only {
        team: named("team", &p.team)?,
        repo: named("repo", &p.repo)?,
        agent: named("agent", &p.agent)?,
    };
    if only.team.is_some() && group_by == GroupBy::Team {
        return Err(bad(
            "team= with group_by=team: one team is one group; leave out one of them".into(),
        ));
    }
    if only.team.is_some() && group_by == GroupBy::Person && !state.people {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "per-person views are off: group_by=person needs tracelink started with --people on"
                .into(),
        ));
    }
    let q = analytics::Query {
        metric,
        group_by,
        bucket,
        from_ns,
        to_ns,
        zone,
    };
    Ok(Question { q, compare, only })
}

/// The answers to several questions, in their order: those the stored session facts
/// answer without a comparison are asked together (one scan for those summing the same
/// rows, [`crate::impact::analytics::answer_all`]); the others one by one, side by side.
pub async fn answer_all(
    state: &ApiState,
    questions: &[Question],
) -> Result<Vec<analytics::Answer>, ApiError> {
    let together = |q: &Question| q.compare.is_none() && !matches!(q.q.metric, Metric::Pulls(_));
    let alone = futures_util::future::try_join_all(
        questions
            .iter()
            .filter(|q| !together(q))
            .map(|q| answer(state, q)),
    );
    let batched: Vec<(&analytics::Query, &Only)> = questions
        .iter()
        .filter(|q| together(q))
        .map(|q| (&q.q, &q.only))
        .collect();
    let batch = async {
        if batched.is_empty() {
            return Ok(Vec::new());
        }
        state.analytics.before_answering().await?;
        crate::impact::analytics::answer_all(&state.db, &state.reports, &batched).await
    };
    let (alone, batch) = tokio::join!(alone, batch);
    let (mut alone, mut batch) = (alone?.into_iter(), batch?.into_iter());
    Ok(questions
        .iter()
        .filter_map(|q| {
            if together(q) {
                batch.next()
            } else {
                alone.next()
            }
        })
        .collect())
}

/// The answer to a question [`query`] read.
pub async fn answer(state: &ApiState, question: &Question) -> Result<analytics::Answer, ApiError> {
    let Question { q, compare, only } = question;
    Ok(match q.metric {
        Metric::Pulls(m) => {
            crate::impact::analytics::answer_pulls(&state.db, &state.reports, q, m, only).await?
        }
        _ => {
            state.analytics.before_answering().await?;
            crate::impact::analytics::answer(&state.db, &state.reports, q, *compare, only).await?
        }
    })
}
