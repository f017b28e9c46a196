//! Spend alerts (`GET /api/v1/alerts`): a day's spend or tokens far above a team's (or a
//! person's) own trailing 28 days, and teams' monthly budgets. Pure functions over each
//! team's and person's daily figures ([`DayFigure`], summed from the same stored facts
//! the analytics API reads); definitions in `docs/metrics.md`.
//!
//! - **Spikes.** For each team (and each person, with `--people on`), the day's value
//!   against the 28 days before it, days without sessions counting as 0: an alert when
//!   it exceeds median + k × 1.4826 × MAD (k = 4 by default; 1.4826 × MAD estimates the
//!   standard deviation robustly) and, for spend, is at least the minimum ($20 by
//!   default). A MAD of 0 is "no baseline yet": no spike alert, only the budget rule.
//! - **Budgets.** A team's spend in the calendar month (UTC) up to the end of the day,
//!   against its `monthly_budget_usd`: a warning from 80%, critical from 100%.

use std::collections::BTreeMap;

use serde::Serialize;

use super::analytics::Quality;

const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// Days of baseline before the day judged.
pub const BASELINE_DAYS: usize = 28;
/// 1.4826 × MAD estimates a normal distribution's standard deviation.
const MAD_SCALE: f64 = 1.4826;

/// The alert settings (`--alert-mads`, `--alert-min-usd`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// k: how many scaled MADs above the median a day must be.
    pub mads: f64,
    /// The least spend in a day that raises a spend spike.
    pub min_usd: f64,
    /// Whether people are judged too (`--people on`).
    pub people: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mads: 4.0,
            min_usd: 20.0,
            people: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    SpendSpike,
    TokensSpike,
    Budget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Team,
    Person,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub kind: Kind,
    pub level: Level,
    pub scope: Scope,
    /// The team's name, or the person.
    pub key: String,
    /// The day's spend or tokens; for a budget, the month's spend so far.
    pub value: f64,
    /// What `value` crossed: the spike threshold, or 80% / 100% of the budget.
    pub threshold: f64,
    /// The baseline's median and MAD (spikes), or the budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mad: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// `estimated` or `partial` when the spend behind it is (`docs/metrics.md`).
    pub quality: Quality,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alerts {
    /// The day judged (`YYYY-MM-DD`, UTC).
    pub day: String,
    /// Most severe first.
    pub alerts: Vec<Alert>,
    /// Teams and people whose baseline does not vary yet (MAD 0), so no spike can be
    /// judged: `team payments: spend`.
    pub no_baseline: Vec<String>,
}

/// A team's or person's figures of one UTC day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayFigure {
    pub scope: Scope,
    pub key: String,
    /// The day's start (UTC midnight).
    pub day_ns: i64,
    /// Spend in US dollars (sessions without a cost count 0, and make it partial).
    pub spend: f64,
    /// Input plus output tokens.
    pub tokens: f64,
    pub quality: Quality,
}

/// One team's or person's daily figures: 28 baseline days, then the day judged.
#[derive(Default)]
struct Daily {
    spend: [f64; BASELINE_DAYS + 1],
    tokens: [f64; BASELINE_DAYS + 1],
    quality: Quality,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The baseline's median and MAD.
fn median_mad(baseline: &[f64]) -> (f64, f64) {
    let mut v = baseline.to_vec();
    let m = median(&mut v);
    let mut dev: Vec<f64> = baseline.iter().map(|x| (x - m).abs()).collect();
    (m, median(&mut dev))
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// The alerts for the UTC day starting at `day_ns`, from the daily figures of the 28
/// days before it, of it, and since the start of its month (others are ignored).
pub fn evaluate(
    days: &[DayFigure],
    day_ns: i64,
    month_start_ns: i64,
    budgets: &BTreeMap<String, f64>,
    s: &Settings,
) -> Alerts {
    let first = day_ns - BASELINE_DAYS as i64 * DAY_NS;
    let end = day_ns + DAY_NS;
    let mut daily: BTreeMap<(Scope, String), Daily> = BTreeMap::new();
    let mut month: BTreeMap<String, (f64, Quality)> = BTreeMap::new();
    for f in days {
        if f.day_ns >= end || (f.scope == Scope::Person && !s.people) {
            continue;
        }
        if f.scope == Scope::Team && f.day_ns >= month_start_ns {
            let m = month.entry(f.key.clone()).or_insert((0.0, Quality::Exact));
            m.0 += f.spend;
            m.1 = m.1.max(f.quality);
        }
        if f.day_ns < first {
            continue;
        }
        let i = ((f.day_ns - first) / DAY_NS) as usize;
        let d = daily.entry((f.scope, f.key.clone())).or_default();
        d.spend[i] += f.spend;
        d.tokens[i] += f.tokens;
        if i == BASELINE_DAYS {
            d.quality = d.quality.max(f.quality);
        }
    }

    let mut alerts = Vec::new();
    let mut no_baseline = Vec::new();
    let scope_name = |sc: Scope| match sc {
        Scope::Team => "team",
        Scope::Person => "person",
    };
    for ((scope, key), d) in &daily {
        for (kind, values, what) in [
            (Kind::SpendSpike, &d.spend, "spend"),
            (Kind::TokensSpike, &d.tokens, "tokens"),
        ] {
            let (med, mad) = median_mad(&values[..BASELINE_DAYS]);
            let today = values[BASELINE_DAYS];
            if mad == 0.0 {
                no_baseline.push(format!("{} {key}: {what}", scope_name(*scope)));
                continue;
            }
            let threshold = med + s.mads * MAD_SCALE * mad;
            let enough = kind != Kind::SpendSpike || today >= s.min_usd;
            if today > threshold && enough {
                let (value, threshold, median, mad) = match kind {
                    Kind::SpendSpike => (
                        round(today, 6),
                        round(threshold, 6),
                        round(med, 6),
                        round(mad, 6),
                    ),
                    _ => (today, round(threshold, 1), med, mad),
                };
                alerts.push(Alert {
                    kind,
                    level: Level::Critical,
                    scope: *scope,
                    key: key.clone(),
                    value,
                    threshold,
                    median: Some(median),
                    mad: Some(mad),
                    budget_usd: None,
                    quality: if kind == Kind::SpendSpike {
                        d.quality
                    } else {
                        Quality::Exact
                    },
                    message: format!(
                        "{} {key}: {what} of {value} on the day, above {threshold} (median {median} + {} × 1.4826 × MAD {mad} of the 28 days before)",
                        scope_name(*scope),
                        s.mads
                    ),
                });
            }
        }
    }
    for (team, budget) in budgets {
        let (spent, quality) = month.get(team).copied().unwrap_or((0.0, Quality::Exact));
        let share = spent / budget;
        let (level, at) = if share >= 1.0 {
            (Level::Critical, 1.0)
        } else if share >= 0.8 {
            (Level::Warning, 0.8)
        } else {
            continue;
        };
        let spent = round(spent, 6);
        alerts.push(Alert {
            kind: Kind::Budget,
            level,
            scope: Scope::Team,
            key: team.clone(),
            value: spent,
            threshold: round(budget * at, 6),
            median: None,
            mad: None,
            budget_usd: Some(*budget),
            quality,
            message: format!(
                "team {team}: ${spent} spent this month, {:.0}% of its ${budget} budget",
                share * 100.0
            ),
        });
    }
    // Most severe first, then by kind, scope and name.
    alerts.sort_by(|a, b| {
        b.level
            .cmp(&a.level)
            .then(a.kind.cmp(&b.kind))
            .then(a.scope.cmp(&b.scope))
            .then_with(|| a.key.cmp(&b.key))
    });
    Alerts {
        day: chrono::DateTime::from_timestamp_nanos(day_ns)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string(),
        alerts,
        no_baseline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY0: i64 = 20_000 * DAY_NS; // 2024-10-04

    /// A day's spend of a team and of its one person.
    fn spend(day: i64, team: &str, person: &str, usd: f64) -> [DayFigure; 2] {
        let figure = |scope, key: &str| DayFigure {
            scope,
            key: key.into(),
            day_ns: DAY0 + day * DAY_NS,
            spend: usd,
            tokens: 0.0,
            quality: Quality::Exact,
        };
        [figure(Scope::Team, team), figure(Scope::Person, person)]
    }

    #[test]
    fn a_day_far_above_its_own_baseline_alerts_and_a_flat_baseline_does_not() {
        let mut facts = Vec::new();
        // payments: $5 on 14 days and $3 on the other 14: median 4, MAD 1, so the
        // threshold is 4 + 4 × 1.4826 × 1 = 9.9304. Then $30 on the day.
        for d in 0..28 {
            facts.extend(spend(
                d,
                "payments",
                "ann",
                if d % 2 == 0 { 5.0 } else { 3.0 },
            ));
        }
        facts.extend(spend(28, "payments", "ann", 30.0));
        // search: $2 every day (MAD 0: no baseline), then $25.
        for d in 0..28 {
            facts.extend(spend(d, "search", "bob", 2.0));
        }
        facts.extend(spend(28, "search", "bob", 25.0));
        // infra: the same shape as payments but only $15 on the day: under the $20 floor.
        for d in 0..28 {
            facts.extend(spend(d, "infra", "cy", if d % 2 == 0 { 5.0 } else { 3.0 }));
        }
        facts.extend(spend(28, "infra", "cy", 15.0));
        let day = DAY0 + 28 * DAY_NS;
        let a = evaluate(&facts, day, DAY0, &BTreeMap::new(), &Settings::default());
        assert_eq!(a.alerts.len(), 1, "{:#?}", a.alerts);
        let alert = &a.alerts[0];
        assert_eq!(
            (
                alert.kind,
                alert.scope,
                alert.key.as_str(),
                alert.value,
                alert.threshold
            ),
            (Kind::SpendSpike, Scope::Team, "payments", 30.0, 9.9304)
        );
        assert_eq!((alert.median, alert.mad), (Some(4.0), Some(1.0)));
        // No tokens anywhere: every tokens baseline is flat, as is search's spend.
        assert!(a.no_baseline.contains(&"team search: spend".to_string()));
        assert!(a.no_baseline.contains(&"team payments: tokens".to_string()));
        // People are judged only with --people on.
        let people = Settings {
            people: true,
            ..Settings::default()
        };
        let a = evaluate(&facts, day, DAY0, &BTreeMap::new(), &people);
        let keys: Vec<(Scope, &str)> = a.alerts.iter().map(|a| (a.scope, a.key.as_str())).collect();
        assert_eq!(keys, [(Scope::Team, "payments"), (Scope::Person, "ann")]);
    }

    #[test]
    fn budgets_warn_from_80_percent_and_are_critical_from_100() {
        // This month (from day 20): payments $85 of $100, search $120 of $100, infra $10.
        let facts: Vec<DayFigure> = [
            spend(19, "payments", "ann", 500.0), // last month
            spend(20, "payments", "ann", 60.0),
            spend(28, "payments", "ann", 25.0),
            spend(21, "search", "bob", 120.0),
            spend(22, "infra", "cy", 10.0),
            spend(29, "infra", "cy", 900.0), // after the day
        ]
        .concat();
        let budgets: BTreeMap<String, f64> = [
            ("payments".to_string(), 100.0),
            ("search".to_string(), 100.0),
            ("infra".to_string(), 100.0),
        ]
        .into();
        let month_start = DAY0 + 20 * DAY_NS;
        let a = evaluate(
            &facts,
            DAY0 + 28 * DAY_NS,
            month_start,
            &budgets,
            &Settings::default(),
        );
        let got: Vec<(Level, &str, f64, f64)> = a
            .alerts
            .iter()
            .filter(|a| a.kind == Kind::Budget)
            .map(|a| (a.level, a.key.as_str(), a.value, a.threshold))
            .collect();
        assert_eq!(
            got,
            [
                (Level::Critical, "search", 120.0, 100.0),
                (Level::Warning, "payments", 85.0, 80.0)
            ]
        );
        assert_eq!(
            a.alerts[0].message,
            "team search: $120 spent this month, 120% of its $100 budget"
        );
    }
}
