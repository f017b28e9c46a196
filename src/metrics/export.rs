//! The organisation's figures on `/metrics`, for Prometheus and the Grafana dashboard
//! (`grafana/tracelink.json`) and rules (`alerts/tracelink.rules.yml`): spend, sessions,
//! active people and tokens today and this month (UTC), budgets, and the alerts
//! `GET /api/v1/alerts` raises. Labels are bounded: team, agent, model, alert kind —
//! never a person, unless `--people on` lets alerts name one.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::alerts::{Alerts, DayFigure, Scope};

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// A label value as the exposition format writes it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Every metric family [`render`] writes (each with its HELP and TYPE even when it has
/// no series yet).
pub const FAMILIES: [&str; 6] = [
    "tracelink_team_spend_usd",
    "tracelink_team_sessions",
    "tracelink_team_active_people",
    "tracelink_model_tokens",
    "tracelink_team_monthly_budget_usd",
    "tracelink_alert_active",
];

/// What the organisation's figures are made of, per UTC day since the month began
/// (summed from the stored facts).
#[derive(Debug, Clone, Default)]
pub struct OrgFigures {
    /// Each team's spend per day (other scopes are ignored).
    pub team_days: Vec<DayFigure>,
    /// Sessions per team, agent and day (start of day).
    pub team_agent_sessions: Vec<(String, String, i64, u64)>,
    /// Distinct people per team: today, and this month.
    pub team_people_day: BTreeMap<String, u64>,
    pub team_people_month: BTreeMap<String, u64>,
    /// Tokens (input + output) per model and day.
    pub model_tokens: Vec<(String, i64, i64)>,
}

/// The figures for the UTC day starting at `day_ns` and its month (from
/// `month_start_ns`), and the alerts judged for the day.
pub fn render(
    o: &OrgFigures,
    day_ns: i64,
    month_start_ns: i64,
    budgets: &BTreeMap<String, f64>,
    alerts: &Alerts,
) -> String {
    let periods = |at: i64| -> &'static [&'static str] {
        if at < month_start_ns || at >= day_ns + DAY_NS {
            &[]
        } else if at >= day_ns {
            &["day", "month"]
        } else {
            &["month"]
        }
    };
    let mut spend: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for f in o.team_days.iter().filter(|f| f.scope == Scope::Team) {
        for p in periods(f.day_ns) {
            *spend.entry((&f.key, p)).or_default() += f.spend;
        }
    }
    let mut sessions: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for (team, agent, at, n) in &o.team_agent_sessions {
        for p in periods(*at) {
            *sessions.entry((team, agent, p)).or_default() += n;
        }
    }
    let mut people: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (period, by_team) in [("day", &o.team_people_day), ("month", &o.team_people_month)] {
        for (team, n) in by_team {
            people.insert((team, period), *n);
        }
    }
    let mut tokens: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (model, at, n) in &o.model_tokens {
        for p in periods(*at) {
            *tokens.entry((model, p)).or_default() += n;
        }
    }
    let mut out = String::new();
    family(
        &mut out,
        FAMILIES[0],
        "Spend in US dollars (reported, or estimated from the price table) of the sessions started today or this month (UTC), by team.",
    );
    for ((team, period), v) in &spend {
        let _ = writeln!(
            out,
            "{}{{team=\"{}\",period=\"{period}\"}} {}",
            FAMILIES[0],
            label(team),
            (v * 1e9).round() / 1e9
        );
    }
    family(
        &mut out,
        FAMILIES[1],
        "Agent sessions started today or this month (UTC), by team and agent.",
    );
    for ((team, agent, period), n) in &sessions {
        let _ = writeln!(
            out,
            "{}{{team=\"{}\",agent=\"{}\",period=\"{period}\"}} {n}",
            FAMILIES[1],
            label(team),
            label(agent)
        );
    }
    family(
        &mut out,
        FAMILIES[2],
        "People with an agent session started today or this month (UTC), by team.",
    );
    for ((team, period), n) in &people {
        let _ = writeln!(
            out,
            "{}{{team=\"{}\",period=\"{period}\"}} {n}",
            FAMILIES[2],
            label(team),
        );
    }
    family(
        &mut out,
        FAMILIES[3],
        "Input plus output tokens of the sessions started today or this month (UTC), by model.",
    );
    for ((model, period), n) in &tokens {
        let _ = writeln!(
            out,
            "{}{{model=\"{}\",period=\"{period}\"}} {n}",
            FAMILIES[3],
            label(model)
        );
    }
    family(
        &mut out,
        FAMILIES[4],
        "Teams' monthly budgets in US dollars, from the identities file.",
    );
    for (team, b) in budgets {
        let _ = writeln!(out, "{}{{team=\"{}\"}} {b}", FAMILIES[4], label(team));
    }
    family(
        &mut out,
        FAMILIES[5],
        "1 for each alert GET /api/v1/alerts raises today: spend or token spikes against the trailing 28 days, and budgets.",
    );
    for a in &alerts.alerts {
        let kind = serde_json::to_value(a.kind).unwrap_or_default();
        let level = serde_json::to_value(a.level).unwrap_or_default();
        let scope = serde_json::to_value(a.scope).unwrap_or_default();
        let _ = writeln!(
            out,
            "{}{{kind=\"{}\",level=\"{}\",scope=\"{}\",key=\"{}\"}} 1",
            FAMILIES[5],
            kind.as_str().unwrap_or(""),
            level.as_str().unwrap_or(""),
            scope.as_str().unwrap_or(""),
            label(&a.key)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::alerts::{Settings, evaluate};

    #[test]
    fn figures_today_and_this_month_by_team_with_bounded_labels() {
        let month = 20_000 * DAY_NS;
        let day = month + 10 * DAY_NS;
        let spent = |at: i64, usd: f64| DayFigure {
            scope: Scope::Team,
            key: "pay\"ments".into(),
            day_ns: at,
            spend: usd,
            tokens: 0.0,
            quality: crate::metrics::analytics::Quality::Exact,
        };
        let team = || "pay\"ments".to_string();
        let o = OrgFigures {
            team_days: vec![
                spent(month + DAY_NS, 2.5),
                spent(day, 1.0),
                spent(month - DAY_NS, 99.0), // last month
            ],
            team_agent_sessions: vec![
                (team(), "claude-code".into(), month + DAY_NS, 1),
                (team(), "claude-code".into(), day, 1),
                (team(), "claude-code".into(), month - DAY_NS, 1),
            ],
            team_people_day: [(team(), 1)].into(),
            team_people_month: [(team(), 2)].into(),
            model_tokens: vec![("sonnet".into(), day, 120)],
        };
        let budgets: BTreeMap<String, f64> = [("pay\"ments".to_string(), 4.0)].into();
        let alerts = evaluate(&o.team_days, day, month, &budgets, &Settings::default());
        let text = render(&o, day, month, &budgets, &alerts);
        for line in [
            "tracelink_team_spend_usd{team=\"pay\\\"ments\",period=\"day\"} 1",
            "tracelink_team_spend_usd{team=\"pay\\\"ments\",period=\"month\"} 3.5",
            "tracelink_team_sessions{team=\"pay\\\"ments\",agent=\"claude-code\",period=\"month\"} 2",
            "tracelink_team_active_people{team=\"pay\\\"ments\",period=\"day\"} 1",
            "tracelink_team_active_people{team=\"pay\\\"ments\",period=\"month\"} 2",
            "tracelink_model_tokens{model=\"sonnet\",period=\"day\"} 120",
            "tracelink_team_monthly_budget_usd{team=\"pay\\\"ments\"} 4",
            "tracelink_alert_active{kind=\"budget\",level=\"warning\",scope=\"team\",key=\"pay\\\"ments\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(
            !text.contains("ann") && !text.contains("bob"),
            "no person labels: {text}"
        );
        for f in FAMILIES {
            assert!(text.contains(&format!("# TYPE {f} gauge")), "{f}");
        }
    }
}
