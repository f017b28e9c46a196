//! The analytics API's inputs: each session started in the range, as
//! [`crate::metrics::analytics`] counts it — who (a GitHub login through the identities
//! file, else the email, else the agent's user ID), which teams, its tokens and cost
//! read as the session view reads them.

use crate::metrics::alerts::{DayFigure, Scope};
use crate::metrics::analytics::Quality;
use crate::metrics::analytics::{self, Counted, SessionFact};
use crate::metrics::export::OrgFigures;
use crate::metrics::sessions::view;
use crate::store::analytics::{Commits, FactBuckets, FactKey, FactQuery, FactValue, Only, Tally};
use crate::store::{self, Conn, Db};

use super::ReportContext;

/// What a session counts as, or `None` when it started at no known time.
fn fact_of(ctx: &ReportContext, rec: crate::store::sessions::SessionRecord) -> Option<SessionFact> {
    let identities = &ctx.links.identities;
    let started_ns = rec.row.started_ns?;
    let duration_seconds = rec
        .row
        .ended_ns
        .filter(|e| *e >= started_ns)
        .map(|e| (e - started_ns) as f64 / 1e9);
    let headless = rec.row.headless.map(|h| h != 0);
    let v = view(&ctx.prices, rec);
    let login = identities.login_of(v.user.email.as_deref(), v.user.id.as_deref());
    let teams = identities.teams_for(login.as_deref(), v.repository.as_deref());
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
        (
            Counted::ToolExecutionTime,
            v.counters.get("tool_execution_ms").map(|c| c.value / 1e3),
        ),
        (
            Counted::McpToolInvocations,
            v.counters.get("mcp_tool_invocations").map(|c| c.value),
        ),
        (
            Counted::RequestTime,
            v.counters.get("request_ms").map(|c| c.value / 1e3),
        ),
        (Counted::Retries, v.counters.get("retries").map(|c| c.value)),
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
        duration_seconds,
        headless,
    })
}

/// Bumped when what a session's stored facts hold, or how they are computed, changes:
/// every session is computed again at the next start.
const FACTS_VERSION: u32 = 3;

/// What the stored facts are computed from (the facts' version, the identities file's
/// people and teams, the price table): when it changes, every session is counted again.
pub fn basis(ctx: &ReportContext) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!(
        "{FACTS_VERSION}\n{}\n{:?}\n{}",
        ctx.links.identities.fingerprint_text(),
        ctx.prices,
        ctx.zone.name()
    ));
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// Sessions computed per transaction.
const REFRESH_ROUND: i64 = 256;

/// Computes the queued sessions' facts again, a round at a time, until the queue is
/// empty (or holds only sessions another replica is computing) or `max` sessions were
/// done; returns how many were.
pub async fn refresh(
    db: &Db,
    conn: &mut Conn,
    ctx: &ReportContext,
    max: usize,
) -> store::Result<usize> {
    let mut done = 0;
    while done < max {
        let mut tx = conn.begin_write().await?;
        let claimed = tx.claim_analytics_queue(REFRESH_ROUND).await?;
        if claimed.is_empty() {
            tx.commit().await?;
            break;
        }
        let ids: Vec<i64> = claimed.iter().map(|q| q.session_id).collect();
        let mut rows = Vec::with_capacity(ids.len());
        let mut models = Vec::with_capacity(ids.len());
        let status = db.commit_status(&ids).await?;
        for rec in db.sessions_by_id(&ids).await? {
            let id = rec.row.id;
            if let Some(f) = fact_of(ctx, rec) {
                let (mut r, m) = analytics::fact_rows(id, &f, ctx.zone);
                let commits = status.get(&id).copied().unwrap_or(0);
                for row in &mut r {
                    row.commits = commits;
                }
                rows.extend(r);
                models.extend(m);
            }
        }
        tx.replace_analytics_facts(&claimed, &rows, &models).await?;
        tx.commit().await?;
        done += claimed.len();
    }
    Ok(done)
}

/// At start: when the stored facts were computed from another [`basis`], queues every
/// session to be computed again.
pub async fn on_new_basis(conn: &mut Conn, ctx: &ReportContext) -> store::Result<Option<u64>> {
    conn.analytics_on_new_basis(&basis(ctx), crate::time::now_ns())
        .await
}

/// The answer to `q` (with the comparison at `compare`, if any) from the stored facts.
pub async fn answer(
    db: &Db,
    ctx: &ReportContext,
    q: &analytics::Query,
    compare: Option<i64>,
    only: &Only,
) -> store::Result<analytics::Answer> {
    // Sessions being counted again: read once for the answer and its comparison.
    let queued = db.analytics_queued().await?;
    let out = answer_one(db, ctx, q, queued, only).await?;
    Ok(match compare {
        Some(at) => {
            let wq = analytics::weekly_query(q);
            let weekly = answer_one(db, ctx, &wq, queued, only).await?;
            analytics::answer_comparing(q, out, &weekly, at)
        }
        None => out,
    })
}

async fn answer_one(
    db: &Db,
    ctx: &ReportContext,
    q: &analytics::Query,
    queued: i64,
    only: &Only,
) -> store::Result<analytics::Answer> {
    use crate::metrics::adoption;
    use analytics::{Metric, SpreadOf};
    let fq = FactQuery {
        only: only.clone(),
        ..analytics::fact_query(q)
    };
    Ok(match q.metric {
        Metric::Spread(sp) => {
            let rows = db.analytics_values(&fq).await?;
            let missing = if sp.of == SpreadOf::ActiveTime {
                db.analytics_missing_agents(&fq).await?
            } else {
                Vec::new()
            };
            adoption::answer_spread(q, sp, &rows, &missing, queued)
        }
        Metric::NewPeople => {
            let firsts = db.analytics_first_seen(&fq).await?;
            let nameless = db.analytics_nameless(&fq).await?;
            adoption::answer_new_people(q, &firsts, nameless, queued)
        }
        Metric::TeamActiveShare => {
            let triples = db
                .analytics_people_triples(&FactQuery {
                    key: FactKey::Team,
                    ..fq
                })
                .await?;
            adoption::answer_team_share(q, &triples, &ctx.links.identities.members(), queued)
        }
        _ => analytics::answer(q, &sums(db, q, fq, queued).await?),
    })
}

async fn sums(
    db: &Db,
    q: &analytics::Query,
    fq: FactQuery,
    queued: i64,
) -> store::Result<analytics::Sums> {
    if q.metric == analytics::Metric::ActivePeople {
        return Ok(analytics::Sums {
            queued,
            people: Some(db.analytics_people(&fq).await?),
            ..Default::default()
        });
    }
    let tallies = db.analytics_tallies(&fq).await?;
    let overall = if q.group_by == analytics::GroupBy::Workflow {
        Some(db.analytics_tallies(&overall_query(&fq)).await?)
    } else {
        None
    };
    sums_of(db, q, &fq, queued, tallies, overall).await
}

/// What a workflow grouping's overall figures count: every session with a workflow,
/// once.
fn overall_query(fq: &FactQuery) -> FactQuery {
    FactQuery {
        key: FactKey::Org,
        with_workflow: true,
        ..fq.clone()
    }
}

/// The sums of `q` around its tallies (and, grouped by workflow, its overall ones).
async fn sums_of(
    db: &Db,
    q: &analytics::Query,
    fq: &FactQuery,
    queued: i64,
    tallies: Vec<Tally>,
    overall: Option<Vec<Tally>>,
) -> store::Result<analytics::Sums> {
    let mut sums = analytics::Sums {
        queued,
        tallies,
        overall,
        ..Default::default()
    };
    if matches!(
        q.metric,
        analytics::Metric::WasteShare | analytics::Metric::CostNotLanded
    ) {
        // Sessions counted as not landed may still land; `answer` says so when any is
        // counted.
        sums.landing_open =
            q.to_ns > crate::time::now_ns() - crate::store::analytics::LANDING_WINDOW_NS;
    }
    if q.metric == analytics::Metric::WasteShare {
        sums.denominators = Some(
            db.analytics_tallies(&FactQuery {
                commits: Commits::Judged,
                ..fq.clone()
            })
            .await?,
        );
    }
    if q.metric.reported() && sums.tallies.iter().any(|t| t.missing > 0) {
        sums.missing_agents = db.analytics_missing_agents(fq).await?;
    }
    Ok(sums)
}

/// The answers to several questions (no comparisons) at once, in their order: those
/// summing the same sessions' rows (sessions, cost, tokens, the counters … of one
/// grouping and range) are tallied in one scan; the others are asked one by one, side
/// by side.
pub async fn answer_all(
    db: &Db,
    ctx: &ReportContext,
    questions: &[(&analytics::Query, &Only)],
) -> store::Result<Vec<analytics::Answer>> {
    use analytics::Metric;
    let queued = db.analytics_queued().await?;
    let plain = |q: &analytics::Query| {
        !matches!(
            q.metric,
            Metric::Spread(_)
                | Metric::NewPeople
                | Metric::TeamActiveShare
                | Metric::ActivePeople
                | Metric::Pulls(_)
        )
    };
    let fqs: Vec<FactQuery> = questions
        .iter()
        .map(|(q, only)| FactQuery {
            only: (*only).clone(),
            ..analytics::fact_query(q)
        })
        .collect();
    // Batches of plain questions over the same rows; the rest alone.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for (i, (q, _)) in questions.iter().enumerate() {
        let with = batches
            .iter_mut()
            .find(|b| plain(q) && plain(questions[b[0]].0) && fqs[b[0]].same_rows(&fqs[i]));
        match with {
            Some(b) => b.push(i),
            None => batches.push(vec![i]),
        }
    }
    let answered = futures_util::future::try_join_all(batches.iter().map(|b| {
        let fqs = &fqs;
        async move {
            let (q0, only0) = questions[b[0]];
            if b.len() == 1 {
                return Ok(vec![answer_one(db, ctx, q0, queued, only0).await?]);
            }
            let batch: Vec<FactQuery> = b.iter().map(|&i| fqs[i].clone()).collect();
            let tallies = db.analytics_tallies_of(&batch).await?;
            let overall = if q0.group_by == analytics::GroupBy::Workflow {
                let all: Vec<FactQuery> = batch.iter().map(overall_query).collect();
                Some(db.analytics_tallies_of(&all).await?)
            } else {
                None
            };
            let mut overall = overall.map(Vec::into_iter);
            let mut out = Vec::with_capacity(b.len());
            for (&i, t) in b.iter().zip(tallies) {
                let o = overall.as_mut().and_then(Iterator::next);
                let sums = sums_of(db, questions[i].0, &fqs[i], queued, t, o).await?;
                out.push(analytics::answer(questions[i].0, &sums));
            }
            Ok::<_, store::Error>(out)
        }
    }))
    .await?;
    let mut by_index: Vec<Option<analytics::Answer>> = vec![None; questions.len()];
    for (b, answers) in batches.iter().zip(answered) {
        for (&i, a) in b.iter().zip(answers) {
            by_index[i] = Some(a);
        }
    }
    Ok(by_index.into_iter().flatten().collect())
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// A day's figures of a team's or person's tallies.
fn day_figure(scope: Scope, t: &Tally) -> Option<DayFigure> {
    Some(DayFigure {
        scope,
        key: t.key.clone()?,
        day_ns: t.bucket.saturating_mul(DAY_NS),
        spend: t.value.unwrap_or(0.0),
        tokens: (t.input + t.output) as f64,
        quality: if t.missing > 0 {
            Quality::Partial
        } else if t.estimated > 0 {
            Quality::Estimated
        } else {
            Quality::Exact
        },
    })
}

/// A day-by-day query of the stored facts over the local days (`--timezone`) from the
/// one numbered `from_ns / DAY_NS` up to the one numbered `to_ns / DAY_NS`. Alerts and
/// `/metrics` count days by their number (`day × DAY_NS`: the local date's midnight as
/// if it were UTC), which keeps their arithmetic whole days long; the sessions' starts
/// are filtered by the local midnights' real instants.
fn daily(
    zone: crate::time::Zone,
    key: FactKey,
    value: FactValue,
    from_ns: i64,
    to_ns: i64,
) -> FactQuery {
    FactQuery {
        key,
        value,
        buckets: FactBuckets::Day,
        from_ns: zone.day_start(from_ns.div_euclid(DAY_NS)),
        to_ns: zone.day_start(to_ns.div_euclid(DAY_NS)),
        commits: Commits::Any,
        only: Only::default(),
        with_workflow: false,
        // Alerts judge tokens too; /metrics sums them by model.
        tokens: true,
    }
}

/// What an alert judgement of the UTC day starting at `day_ns` reads (each team's, and
/// person's, daily spend and tokens over its month so far and the 28 days before it),
/// its month's start, and the alerts.
async fn judged(
    db: &Db,
    ctx: &ReportContext,
    settings: &crate::metrics::alerts::Settings,
    day_ns: i64,
) -> store::Result<(Vec<DayFigure>, i64, crate::metrics::alerts::Alerts)> {
    use chrono::Datelike;
    let day = chrono::DateTime::from_timestamp_nanos(day_ns).date_naive();
    let month_ns = day
        .with_day(1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
        .unwrap_or(day_ns);
    let from = month_ns.min(day_ns - crate::metrics::alerts::BASELINE_DAYS as i64 * DAY_NS);
    let to = day_ns + DAY_NS;
    let mut days: Vec<DayFigure> = db
        .analytics_tallies(&daily(ctx.zone, FactKey::Team, FactValue::Cost, from, to))
        .await?
        .iter()
        .filter_map(|t| day_figure(Scope::Team, t))
        .collect();
    if settings.people {
        days.extend(
            db.analytics_tallies(&daily(ctx.zone, FactKey::Person, FactValue::Cost, from, to))
                .await?
                .iter()
                .filter_map(|t| day_figure(Scope::Person, t)),
        );
    }
    let budgets = ctx.links.identities.budgets();
    let alerts = crate::metrics::alerts::evaluate(&days, day_ns, month_ns, budgets, settings);
    Ok((days, month_ns, alerts))
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
    alerts_on(db, ctx, settings, ctx.zone.day_of(now_ns) * DAY_NS).await
}

/// The organisation's figures for `/metrics` at `now_ns`: today (UTC) and this month,
/// and today's alerts.
pub async fn org_figures(
    db: &Db,
    ctx: &ReportContext,
    settings: &crate::metrics::alerts::Settings,
    now_ns: i64,
) -> store::Result<String> {
    let day_ns = ctx.zone.day_of(now_ns) * DAY_NS;
    let (team_days, month_ns, alerts) = judged(db, ctx, settings, day_ns).await?;
    let to = day_ns + DAY_NS;
    let team_agent_sessions = db
        .analytics_tallies(&daily(
            ctx.zone,
            FactKey::TeamAgent,
            FactValue::Sessions,
            month_ns,
            to,
        ))
        .await?
        .into_iter()
        .filter_map(|t| {
            let (team, agent) = store::analytics::split_team_agent(t.key.as_deref()?)?;
            Some((team, agent, t.bucket * DAY_NS, t.rows_summed.max(0) as u64))
        })
        .collect();
    let people = db
        .analytics_people(&daily(
            ctx.zone,
            FactKey::Team,
            FactValue::Sessions,
            month_ns,
            to,
        ))
        .await?;
    let today = day_ns / DAY_NS;
    let model_tokens = db
        .analytics_tallies(&daily(
            ctx.zone,
            FactKey::Model,
            FactValue::Tokens,
            month_ns,
            to,
        ))
        .await?
        .into_iter()
        .filter_map(|t| Some((t.key?, t.bucket * DAY_NS, t.input + t.output)))
        .collect();
    let figures = OrgFigures {
        team_days,
        team_agent_sessions,
        team_people_day: people
            .by_bucket_key
            .iter()
            .filter(|(b, _, _)| *b == today)
            .filter_map(|(_, k, n)| Some((k.clone()?, (*n).max(0) as u64)))
            .collect(),
        team_people_month: people
            .by_key
            .iter()
            .filter_map(|(k, n)| Some((k.clone()?, (*n).max(0) as u64)))
            .collect(),
        model_tokens,
    };
    Ok(crate::metrics::export::render(
        &figures,
        day_ns,
        month_ns,
        ctx.links.identities.budgets(),
        &alerts,
    ))
}

/// The connection analytics' facts are computed on: a background task keeps them up to
/// date, and a request takes it to count what changed moments ago before answering.
#[derive(Clone)]
pub struct Refresher {
    conn: std::sync::Arc<tokio::sync::Mutex<Conn>>,
    db: Db,
    ctx: std::sync::Arc<ReportContext>,
}

/// Sessions computed per hold of the refresher's connection, so a request waits for at
/// most one such round of the background task.
const HOLD_ROUND: usize = 2_048;

/// Queued sessions a request counts itself before answering; with more queued (a
/// recount after the identities file changed) it answers at once, marked partial.
pub const INLINE_MAX: i64 = 5_000;

impl Refresher {
    pub fn new(conn: Conn, db: Db, ctx: std::sync::Arc<ReportContext>) -> Self {
        Refresher {
            conn: std::sync::Arc::new(tokio::sync::Mutex::new(conn)),
            db,
            ctx,
        }
    }

    /// The database's read side.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Computes queued sessions' facts until the queue is empty (or `max` are done).
    pub async fn catch_up(&self, max: usize) -> store::Result<usize> {
        let mut done = 0;
        while done < max {
            let n = {
                let mut conn = self.conn.lock().await;
                refresh(&self.db, &mut conn, &self.ctx, HOLD_ROUND.min(max - done)).await?
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Before answering: counts the sessions queued, unless there are more than
    /// [`INLINE_MAX`].
    pub async fn before_answering(&self) -> store::Result<()> {
        let queued = self.db.analytics_queued().await?;
        if queued > 0 && queued <= INLINE_MAX {
            self.catch_up(INLINE_MAX as usize).await?;
        }
        Ok(())
    }

    /// Keeps the facts up to date every second until `stopped`.
    pub fn spawn(
        self,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                if *stopped.borrow() {
                    return;
                }
                match self.catch_up(usize::MAX).await {
                    Ok(n) => {
                        if n >= HOLD_ROUND {
                            let left = self.db.analytics_queued().await.unwrap_or(-1);
                            tracing::info!(counted = n, left, "analytics: sessions counted again");
                        }
                        failing = false;
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "analytics: counting changed sessions failed; retrying every second");
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    _ = stopped.changed() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        })
    }
}

/// A pull request's facts for analytics, from its report as just built.
pub fn pull_fact(r: &crate::metrics::model::PrReport) -> store::analytics::PullFact {
    let at = |s: &Option<String>| s.as_deref().and_then(crate::time::parse_rfc3339);
    let coverage = |part: &str, what: &str| {
        r.coverage
            .as_ref()
            .and_then(|c| c.get(part)?.get(what)?.as_i64())
    };
    let mut agents: std::collections::BTreeSet<&str> =
        r.totals.agents.iter().map(String::as_str).collect();
    for c in &r.commits {
        agents.extend(c.agents.iter().map(String::as_str));
        agents.extend(c.session_agents.iter().map(String::as_str));
    }
    store::analytics::PullFact {
        repo: r.repository.clone(),
        number: r.number,
        author: r.author.clone(),
        state: r.state.clone(),
        merged_ns: at(&r.timing.merged_at),
        first_commit_ns: r.commits.iter().filter_map(|c| at(&c.authored_at)).min(),
        assisted: i64::from(r.totals.agent_commits > 0),
        agents: agents.into_iter().collect::<Vec<_>>().join("\n"),
        cost: r.totals.cost_usd,
        cost_estimated: i64::from(r.totals.cost_estimated),
        tokens: r.totals.tokens.as_ref().map(|t| t.input + t.output),
        lines_added: r.lines.as_ref().map(|l| l.added as i64),
        agent_lines_added: r.lines.as_ref().map(|l| l.agent_added as i64),
        ci_first_run_pass: r.ci.first_run_pass_rate,
        incidents: r.incidents.len() as i64,
        deployments: r.deployments.len() as i64,
        patch_covered: coverage("patch", "covered"),
        patch_coverable: coverage("patch", "coverable"),
        agent_patch_covered: coverage("agent_patch", "covered"),
        agent_patch_coverable: coverage("agent_patch", "coverable"),
    }
}

/// The answer to a pull request metric `m` over those merged in `q`'s range.
pub async fn answer_pulls(
    db: &Db,
    ctx: &ReportContext,
    q: &analytics::Query,
    m: analytics::PullMetric,
    only: &Only,
) -> store::Result<analytics::Answer> {
    use crate::metrics::impact_analytics::{Pull, answer};
    let identities = &ctx.links.identities;
    let mut pulls: Vec<Pull> = db
        .pull_facts_merged_between(q.from_ns, q.to_ns)
        .await?
        .into_iter()
        .map(|fact| {
            let teams = identities.teams_for(fact.author.as_deref(), Some(&fact.repo));
            Pull {
                fact,
                teams,
                reverted_ns: None,
                revert_window_open: false,
            }
        })
        .collect();
    // A team's, a repository's, an agent's pull requests.
    pulls.retain(|p| {
        only.team.as_ref().is_none_or(|t| p.teams.contains(t))
            && only.repo.as_ref().is_none_or(|r| p.fact.repo == *r)
            && only
                .agent
                .as_ref()
                .is_none_or(|a| p.fact.agents.lines().any(|x| x == a))
    });
    if m == analytics::PullMetric::RevertRate {
        let mut reverted: std::collections::HashMap<(String, i64), Option<i64>> =
            std::collections::HashMap::new();
        for (repo, number, at) in db.pull_reverts_merged_between(q.from_ns, q.to_ns).await? {
            let e = reverted.entry((repo, number)).or_insert(at);
            // The earliest revert; one of unknown time counts as in time.
            *e = match (*e, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
        }
        let now = crate::time::now_ns();
        for p in &mut pulls {
            if let Some(at) = reverted.get(&(p.fact.repo.clone(), p.fact.number)) {
                p.reverted_ns = Some(at.or(p.fact.merged_ns).unwrap_or(now));
            }
            p.revert_window_open = p
                .fact
                .merged_ns
                .is_some_and(|m| now - m < crate::metrics::impact_analytics::REVERT_WINDOW_NS);
        }
    }
    let uncounted = db.pulls_merged_without_facts(q.from_ns, q.to_ns).await?;
    Ok(answer(q, m, &pulls, uncounted))
}
