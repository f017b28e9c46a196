//! `tracelink demo`: a month of a small organisation for the dashboard.
//! Nine people in three teams, each owning a repository, run the fixtures' Claude Code,
//! Gemini CLI and Codex sessions (the vendors' own records, given new session IDs,
//! people, repositories and times) over OTLP/HTTP, as the agents export them:
//! - payments switches from Claude Code to Codex halfway (a policy change);
//! - one person of platform runs a dozen sessions in one day (a spend spike);
//! - an incident is opened against the story's deployment.

use serde_json::{Value, json};

const CLAUDE: &str = include_str!("../../tests/fixtures/otlp/claude-code-logs.json");
const GEMINI: &str = include_str!("../../tests/fixtures/otlp/gemini-cli-logs.json");
const CODEX: &str = include_str!("../../tests/fixtures/otlp/codex-logs.json");

const DAY_NS: i64 = 86_400 * 1_000_000_000;
const MINUTE_NS: i64 = 60 * 1_000_000_000;

/// `(login, team)`.
pub const PEOPLE: [(&str, &str); 9] = [
    ("ana", "payments"),
    ("ben", "payments"),
    ("cai", "payments"),
    ("dee", "platform"),
    ("eli", "platform"),
    ("fay", "platform"),
    ("gus", "mobile"),
    ("hal", "mobile"),
    ("ivy", "mobile"),
];

/// `(team, repository it owns)`.
pub const TEAMS: [(&str, &str); 3] = [
    ("payments", "acme/payments-api"),
    ("platform", "acme/platform"),
    ("mobile", "acme/mobile-app"),
];

/// The identities file of the organisation: people, their emails and teams, the
/// teams' repositories and budgets.
pub fn identities() -> String {
    let mut out = String::new();
    for (login, team) in PEOPLE {
        out.push_str(&format!(
            "[[person]]\nlogin = \"{login}\"\nemails = [\"{login}@acme.example\"]\nteams = [\"{team}\"]\n\n"
        ));
    }
    // The story's author, of the team owning its repository.
    out.push_str(
        "[[person]]\nlogin = \"dev\"\nemails = [\"dev@acme.example\"]\nteams = [\"platform\"]\n\n",
    );
    for (team, repo) in TEAMS {
        let story = if team == "platform" {
            ", \"acme/widgets\""
        } else {
            ""
        };
        out.push_str(&format!(
            "[[team]]\nname = \"{team}\"\nrepos = [\"{repo}\"{story}]\nmonthly_budget_usd = 25\n\n"
        ));
    }
    out
}

fn repo_of(team: &str) -> &'static str {
    TEAMS
        .iter()
        .find(|(t, _)| *t == team)
        .map_or("acme/widgets", |(_, r)| r)
}

/// Every `…UnixNano` time in the document moved by `shift` (0 stays 0: Codex sends
/// some), and every RFC 3339 time (the `event.timestamp` attributes some agents time
/// their events by).
fn shift_times(v: &mut Value, shift: i64) {
    match v {
        Value::String(s) => {
            if s.len() >= 20
                && s.as_bytes().get(4) == Some(&b'-')
                && let Some(t) = crate::time::parse_rfc3339(s)
                && let Some(moved) =
                    crate::time::rfc3339(Some(t + shift), chrono::SecondsFormat::Millis)
            {
                *s = moved;
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k.ends_with("UnixNano") {
                    let t = match x {
                        Value::String(s) => s.parse::<i64>().ok(),
                        Value::Number(n) => n.as_i64(),
                        _ => None,
                    };
                    if let Some(t) = t.filter(|t| *t > 0) {
                        *x = Value::String((t + shift).to_string());
                    }
                } else {
                    shift_times(x, shift);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift_times(x, shift)),
        _ => {}
    }
}

/// The earliest non-zero time in the document.
fn earliest(v: &Value) -> Option<i64> {
    match v {
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, x)| {
                if k.ends_with("UnixNano") {
                    match x {
                        Value::String(s) => s.parse::<i64>().ok(),
                        Value::Number(n) => n.as_i64(),
                        _ => None,
                    }
                    .filter(|t| *t > 0)
                } else {
                    earliest(x)
                }
            })
            .min(),
        Value::Array(a) => a.iter().filter_map(earliest).min(),
        _ => None,
    }
}

/// The distinct `traceId` and `spanId` values of the document.
fn trace_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("traceId" | "spanId" | "parentSpanId", Value::String(id))
                        if !id.is_empty() && !out.contains(id) =>
                    {
                        out.push(id.clone());
                    }
                    _ => trace_ids(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| trace_ids(x, out)),
        _ => {}
    }
}

/// A new ID as long as `id`, hex, the same for the same `(n, id)`.
fn new_id(n: usize, id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("tracelink demo {n} {id}").as_bytes());
    crate::ids::encode_hex(&digest)
        .chars()
        .take(id.len())
        .collect()
}

/// The values of the session-naming attributes in the document.
fn session_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(k)), Some(val)) = (m.get("key"), m.get("value"))
                && matches!(k.as_str(), "session.id" | "conversation.id")
                && let Some(s) = val["stringValue"].as_str()
                && !out.iter().any(|x| x == s)
            {
                out.push(s.to_string());
            }
            m.values().for_each(|x| session_ids(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| session_ids(x, out)),
        _ => {}
    }
}

/// One agent session: `template`'s records as `person` in `repo`, starting at
/// `start_ns`, its IDs made unique by `n`.
fn session(template: &str, n: usize, person: &str, repo: &str, start_ns: i64) -> Value {
    let mut ids = Vec::new();
    let parsed: Value = serde_json::from_str(template).unwrap_or(Value::Null);
    session_ids(&parsed, &mut ids);
    let mut text = template.replace("dev@acme.example", &format!("{person}@acme.example"));
    for (i, id) in ids.iter().enumerate() {
        text = text.replace(id.as_str(), &format!("demo-{n:05}-{i}-{person}"));
    }
    // New trace and span IDs too: the template's trace is the one the story's commit
    // names, and each of these sessions is its own work.
    let mut traces = Vec::new();
    trace_ids(&parsed, &mut traces);
    for id in &traces {
        text = text.replace(id.as_str(), &new_id(n, id));
    }
    let mut v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let shift = earliest(&v).map_or(0, |t| start_ns - t);
    shift_times(&mut v, shift);
    for rl in v["resourceLogs"].as_array_mut().into_iter().flatten() {
        if let Some(attrs) = rl["resource"]["attributes"].as_array_mut() {
            attrs.retain(|a| a["key"] != "vcs.repository.name");
            attrs.push(json!({"key": "vcs.repository.name", "value": {"stringValue": repo}}));
        }
    }
    v
}

/// The sessions of `days` days ending at `end_ns` (a midnight), in order.
/// Sessions that would start after `until_ns` (later today) are left out.
pub fn sessions(days: i64, end_ns: i64, until_ns: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut n = 0;
    for d in 0..days {
        let day_ns = end_ns - (days - d) * DAY_NS;
        let weekday = (day_ns / DAY_NS + 4).rem_euclid(7); // 0 = Sunday
        if weekday == 0 || weekday == 6 {
            continue;
        }
        for (i, (person, team)) in PEOPLE.iter().enumerate() {
            if (d as usize + i).is_multiple_of(4) {
                continue; // a day off the agents
            }
            let template = match *team {
                "payments" if d < days / 2 => CLAUDE,
                "payments" => CODEX,
                "platform" => GEMINI,
                _ => CLAUDE,
            };
            let start = day_ns + 9 * 60 * MINUTE_NS + (i as i64) * 25 * MINUTE_NS;
            if start < until_ns {
                out.push(session(template, n, person, repo_of(team), start));
            }
            n += 1;
        }
        // The spike: eli of platform runs a dozen Claude Code sessions one afternoon.
        if d == days - 6 {
            for k in 0..12 {
                let start = day_ns + 13 * 60 * MINUTE_NS + k * 20 * MINUTE_NS;
                if start < until_ns {
                    out.push(session(CLAUDE, n, "eli", "acme/platform", start));
                }
                n += 1;
            }
        }
    }
    out
}

/// An incident issue against deployment `deployment` of `repo`, opened at `opened`.
pub fn incident(repo: &str, installation: u64, deployment: i64, opened: &str) -> Value {
    json!({"action": "opened", "repository": {"full_name": repo}, "installation": {"id": installation},
        "issue": {"number": 41, "title": "Checkout requests time out after the retry change",
            "state": "open", "labels": [{"name": "incident"}],
            "body": format!("environment: production\nroot cause: deployment {deployment}"),
            "user": {"login": "oncall"}, "created_at": opened, "updated_at": opened}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_of_sessions_with_a_policy_change_and_a_spike() {
        let end = 1_796_083_200 * 1_000_000_000; // 2026-12-01T00:00Z
        let all = sessions(30, end, end);
        // Nothing starts after the given time (the demo runs mid-day).
        let noon = end - DAY_NS / 2;
        assert!(
            sessions(30, end, noon)
                .iter()
                .all(|v| earliest(v).is_some_and(|t| t < noon))
        );
        assert!(all.len() > 100, "{}", all.len());
        let text: Vec<String> = all.iter().map(Value::to_string).collect();
        assert!(text.iter().all(|t| !t.contains("dev@acme.example")));
        assert!(
            text.iter()
                .any(|t| t.contains("codex") && t.contains("ana@acme.example"))
        );
        assert!(
            text.iter()
                .filter(|t| t.contains("eli@acme.example"))
                .count()
                > 12
        );
        // Every session is in the month, by its nanosecond times and by its RFC 3339
        // ones (what Codex times its events by).
        fn rfc3339_times(v: &Value, out: &mut Vec<i64>) {
            match v {
                Value::String(s) => out.extend(crate::time::parse_rfc3339(s)),
                Value::Object(m) => m.values().for_each(|x| rfc3339_times(x, out)),
                Value::Array(a) => a.iter().for_each(|x| rfc3339_times(x, out)),
                _ => {}
            }
        }
        for v in &all {
            let t = earliest(v).unwrap();
            assert!(t >= end - 30 * DAY_NS && t < end, "{t}");
            let mut times = Vec::new();
            rfc3339_times(v, &mut times);
            assert!(
                times.iter().all(|&x| x >= end - 30 * DAY_NS && x < end),
                "{times:?}"
            );
        }
        // None carries the template's traces (the story's commit names one of them).
        assert!(
            text.iter()
                .all(|t| !t.contains("b3334784fc61510ab4e4362d0249eb86"))
        );
        let mut traces = Vec::new();
        for v in &all {
            trace_ids(v, &mut traces);
        }
        assert!(traces.len() > 1000, "{}", traces.len());
        let mut ids = Vec::new();
        for v in &all {
            let mut one = Vec::new();
            session_ids(v, &mut one);
            ids.extend(one);
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
