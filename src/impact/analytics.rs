//! The analytics API's inputs: each session started in the range, as
//! [`crate::metrics::analytics`] counts it — who (a GitHub login through the identities
//! file, else the email, else the agent's user ID), which teams, its tokens and cost
//! read as the session view reads them.

use crate::metrics::analytics::{Counted, SessionFact};
use crate::metrics::sessions::view;
use crate::store::{self, Db};

use super::ReportContext;

pub async fn session_facts(
    db: &Db,
    ctx: &ReportContext,
    from_ns: i64,
    to_ns: i64,
) -> store::Result<Vec<SessionFact>> {
    let identities = &ctx.links.identities;
    let records = db.sessions_started_between(from_ns, to_ns).await?;
    let keys: Vec<&str> = records.iter().map(|r| r.row.session_key.as_str()).collect();
    let linked: std::collections::HashSet<String> = db
        .links_of_sessions(&keys)
        .await?
        .into_iter()
        .map(|l| l.from_key)
        .collect();
    Ok(records
        .into_iter()
        .filter_map(|rec| {
            let started_ns = rec.row.started_ns?;
            let has_commit = linked.contains(&rec.row.session_key);
            let v = view(&ctx.prices, rec);
            let login = identities.login_of(v.user.email.as_deref(), v.user.id.as_deref());
            let mut teams: Vec<String> = login
                .as_deref()
                .map(|l| identities.teams_of(l).to_vec())
                .unwrap_or_default();
            if teams.is_empty()
                && let Some(t) = v
                    .repository
                    .as_deref()
                    .and_then(|r| identities.repo_team(r))
            {
                teams.push(t.to_string());
            }
            if teams.is_empty() {
                teams.push(crate::graph::identities::UNASSIGNED.to_string());
            }
            let priced_by_model = v
                .tokens_by_model
                .iter()
                .map(|(m, t)| {
                    let tokens = crate::facts::Tokens([
                        t.input,
                        t.output,
                        t.cache_read,
                        t.cache_creation,
                        t.reasoning,
                    ]);
                    (m.clone(), ctx.prices.cost(m, &tokens))
                })
                .collect();
            let counted = [
                (Counted::Requests, v.llm_requests.map(|x| x as f64)),
                (Counted::Errors, v.errors.map(|x| x as f64)),
                (Counted::Prompts, v.prompts.map(|x| x as f64)),
                (
                    Counted::ToolInvocations,
                    v.tool_invocations.map(|x| x as f64),
                ),
                (Counted::ToolFailures, v.tool_failures.map(|x| x as f64)),
                (Counted::ToolRejections, v.tool_rejections.map(|x| x as f64)),
                (Counted::LinesAdded, v.lines_added.map(|x| x as f64)),
                (Counted::LinesRemoved, v.lines_removed.map(|x| x as f64)),
                (Counted::FilesModified, v.files_modified.map(|x| x as f64)),
                (Counted::ActiveTime, v.active_seconds),
            ]
            .into_iter()
            .filter_map(|(c, x)| Some((c, x?)))
            .collect();
            Some(SessionFact {
                started_ns,
                person: login
                    .or(v.user.email.map(|e| e.to_ascii_lowercase()))
                    .or(v.user.id),
                teams,
                repo: v.repository.map(|r| r.to_ascii_lowercase()),
                agent: v.agent,
                tokens_by_model: v.tokens_by_model,
                cost_usd: v.cost_usd,
                cost_estimated: v.cost_estimated,
                priced_by_model,
                counted,
                has_commit,
            })
        })
        .collect())
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The sessions an alert judgement of the UTC day starting at `day_ns` reads (its month
/// so far and the 28 days before it), the month's start, and the alerts.
async fn judged(
    db: &Db,
    ctx: &ReportContext,
    settings: &crate::metrics::alerts::Settings,
    day_ns: i64,
) -> store::Result<(Vec<SessionFact>, i64, crate::metrics::alerts::Alerts)> {
    use chrono::Datelike;
    let day = chrono::DateTime::from_timestamp_nanos(day_ns).date_naive();
    let month_ns = day
        .with_day(1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
        .unwrap_or(day_ns);
    let from = month_ns.min(day_ns - crate::metrics::alerts::BASELINE_DAYS as i64 * DAY_NS);
    let facts = session_facts(db, ctx, from, day_ns + DAY_NS).await?;
    let budgets = ctx.links.identities.budgets();
    let alerts = crate::metrics::alerts::evaluate(&facts, day_ns, month_ns, budgets, settings);
    Ok((facts, month_ns, alerts))
}

/// The alerts of the UTC day starting at `day_ns` (`GET /api/v1/alerts`).
pub async fn alerts_on(
    db: &Db,
    ctx: &ReportContext,
    settings: &crate::metrics::alerts::Settings,
    day_ns: i64,
) -> store::Result<crate::metrics::alerts::Alerts> {
    Ok(judged(db, ctx, settings, day_ns).await?.2)
}

/// The alerts of the day holding `now_ns` (UTC).
pub async fn alerts_at(
    db: &Db,
    ctx: &ReportContext,
    settings: &crate::metrics::alerts::Settings,
    now_ns: i64,
) -> store::Result<crate::metrics::alerts::Alerts> {
    alerts_on(db, ctx, settings, now_ns.div_euclid(DAY_NS) * DAY_NS).await
}

/// The organisation's figures for `/metrics` at `now_ns`: today (UTC) and this month,
/// and today's alerts.
pub async fn org_figures(
    db: &Db,
    ctx: &ReportContext,
    settings: &crate::metrics::alerts::Settings,
    now_ns: i64,
) -> store::Result<String> {
    let day_ns = now_ns.div_euclid(DAY_NS) * DAY_NS;
    let (facts, month_ns, alerts) = judged(db, ctx, settings, day_ns).await?;
    Ok(crate::metrics::export::render(
        &facts,
        day_ns,
        month_ns,
        ctx.links.identities.budgets(),
        &alerts,
    ))
}
