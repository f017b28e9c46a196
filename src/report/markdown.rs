//! The PR comment: a headline, a short table, details folded, a mermaid graph, and a
//! hidden marker holding the report's JSON (by which the comment is found again).

use std::fmt::Write;

use crate::graph::incidents::CauseEvidence;
use crate::metrics::model::{CommitSource, PrReport};

/// The hidden marker that starts every report comment.
pub const MARKER: &str = "<!-- tracelink:pr-report";

/// GitHub refuses comments over 65,536 characters; stay well below.
const MAX_COMMENT: usize = 60_000;

fn agent_name(a: &str) -> &str {
    match a {
        "claude-code" => "Claude Code",
        "gemini-cli" => "Gemini CLI",
        "codex" => "Codex",
        "droid" => "Droid",
        "copilot" => "Copilot",
        "cursor" => "Cursor",
        other => other,
    }
}

fn usd(v: f64) -> String {
    if v >= 100.0 {
        format!("${v:.0}")
    } else {
        format!("${v:.2}")
    }
}

fn count(n: i64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.0}k", n as f64 / 1e3),
        n if n >= 1_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// A duration as people read it: the largest unit and the next, floored (`45 s`, `12 m`,
/// `4 m 22 s`, `1 h 57 m`, `2 d 3 h`). The one helper for every duration the report prints.
fn duration(secs: i64) -> String {
    if secs < 0 {
        return format!("−{}", duration(secs.saturating_neg()));
    }
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => pair(s / 60, "m", s % 60, "s"),
        s if s < 86_400 => pair(s / 3_600, "h", s % 3_600 / 60, "m"),
        s => pair(s / 86_400, "d", s % 86_400 / 3_600, "h"),
    }
}

/// Each session's label, in the report's order: the shortest prefix of at least 8
/// characters that no other session of the report starts with (the whole id when
/// needed), so two sessions never print alike. Used wherever a session is shown.
fn session_labels(r: &PrReport) -> Vec<String> {
    let ids: Vec<&str> = r.sessions.iter().map(|s| s.session_id.as_str()).collect();
    ids.iter()
        .map(|&id| {
            let ends = id
                .char_indices()
                .map(|(i, _)| i)
                .skip(8)
                .chain(std::iter::once(id.len()));
            for end in ends {
                let p = &id[..end];
                if ids.iter().all(|&o| o == id || !o.starts_with(p)) {
                    return p.to_string();
                }
            }
            id.to_string()
        })
        .collect()
}

/// What the sessions cost, never leaving out those with no price: `$0.26`,
/// `$0.26 + 2 sessions unpriced`, `cost unknown (2 sessions unpriced)`; `None` when no
/// session is priced and none is known to lack a price. `est_amount` follows the amount
/// and `est_end` the whole, when the cost is estimated.
fn cost_text(r: &PrReport, est_amount: &str, est_end: &str) -> Option<String> {
    let unpriced = r.sessions.iter().filter(|s| s.cost_usd.is_none()).count();
    let missing = format!(
        "{unpriced} session{} unpriced",
        if unpriced == 1 { "" } else { "s" }
    );
    let (est_amount, est_end) = if r.totals.cost_estimated {
        (est_amount, est_end)
    } else {
        ("", "")
    };
    match (r.totals.cost_usd, unpriced) {
        (Some(c), 0) => Some(format!("{}{est_amount}{est_end}", usd(c))),
        (Some(c), _) => Some(format!("{}{est_amount} + {missing}{est_end}", usd(c))),
        (None, 0) => None,
        (None, _) => Some(format!("cost unknown ({missing})")),
    }
}

/// What each evidence class means, under the sessions table.
const EVIDENCE_LEGEND: &str = "Evidence (confidence in brackets): trace/event — the commit or \
     the session's telemetry names the other (exact); coauthor — an agent co-author trailer \
     and that agent's session around the commit; merged — inherited from the commits a \
     merge, squash, rebase or amend stands for; window — same person, commit inside the \
     session's time window (scored).";

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Markdown table cells must not break the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn ci_line(r: &PrReport) -> String {
    let ci = &r.ci;
    if ci.runs.is_empty() {
        return "no runs reported yet".into();
    }
    let mut parts = Vec::new();
    if ci.failed > 0 {
        parts.push(format!("❌ {} failed", ci.failed));
    }
    if ci.passed > 0 {
        parts.push(format!("✅ {} passed", ci.passed));
    }
    if ci.pending > 0 {
        parts.push(format!("⏳ {} running", ci.pending));
    }
    if ci.reruns > 0 {
        parts.push(format!(
            "{} rerun{}",
            ci.reruns,
            if ci.reruns == 1 { "" } else { "s" }
        ));
    }
    if let Some(rate) = ci.first_run_pass_rate {
        parts.push(format!("first-run pass rate {:.0}%", rate * 100.0));
    }
    parts.join(" · ")
}

fn pct(v: &serde_json::Value) -> Option<String> {
    v.as_f64().map(|p| format!("{p:.1}%"))
}

/// Coverage at head, against the base, of the patch and of the lines agents wrote. Until
/// every run with uploads at head has finished, no fall is claimed.
fn coverage_line(c: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(p) = pct(&c["head"]["pct"]) {
        parts.push(format!("{p} at head"));
    }
    let complete = c["complete"].as_bool().unwrap_or(false);
    match (
        c["delta_pp"].as_f64(),
        c["base"]["sha"].as_str(),
        c["base"]["ref"].as_str(),
    ) {
        (Some(d), Some(sha), Some(base)) if complete => {
            parts.push(format!("{d:+.1} pp vs {} `{}`", cell(base), short(sha)))
        }
        (Some(_), Some(sha), Some(base)) => parts.push(format!(
            "vs {} `{}` once CI finishes",
            cell(base),
            short(sha)
        )),
        _ => parts.push(format!(
            "no base: {}",
            cell(
                c["base_note"]
                    .as_str()
                    .unwrap_or("no report on the base branch")
            )
        )),
    }
    if let Some(p) = pct(&c["patch"]["pct"]) {
        parts.push(format!(
            "patch {p} ({}/{} lines)",
            c["patch"]["covered"], c["patch"]["coverable"]
        ));
    }
    if let Some(p) = pct(&c["agent_patch"]["pct"]) {
        parts.push(format!("agent-written lines {p}"));
    }
    if !complete {
        parts.push("⏳ CI still running".into());
    }
    parts.join(" · ")
}

fn tests_line(t: &serde_json::Value) -> String {
    let n = |k: &str| t[k].as_u64().unwrap_or(0);
    let mut parts = vec![format!("{} run", n("total"))];
    if n("failed") > 0 {
        let new = t["newly_failing"].as_array().map_or(0, |a| a.len());
        parts.push(if new > 0 {
            format!("❌ {} failed ({new} newly)", n("failed"))
        } else {
            format!("❌ {} failed", n("failed"))
        });
    }
    parts.push(format!("✅ {} passed", n("passed")));
    if n("skipped") > 0 {
        parts.push(format!("{} skipped", n("skipped")));
    }
    if let Some(f) = t["flaky"].as_array().filter(|f| !f.is_empty()) {
        parts.push(format!("{} flaky", f.len()));
    }
    parts.join(" · ")
}

/// Folded tables of the files with uncovered added lines and of the failed tests.
fn detail_tables(o: &mut String, r: &PrReport) {
    let missing = r
        .coverage
        .as_ref()
        .and_then(|c| c["missing"].as_array())
        .filter(|m| !m.is_empty());
    if let Some(missing) = missing {
        let _ = writeln!(
            o,
            "<details><summary>Files with missing lines ({})</summary>\n",
            missing.len()
        );
        let _ = writeln!(o, "| file | added lines not covered |\n|---|---|");
        for m in missing {
            let _ = writeln!(
                o,
                "| `{}` | {} |",
                cell(m["path"].as_str().unwrap_or("?")),
                cell(m["lines"].as_str().unwrap_or(""))
            );
        }
        o.push_str("\n</details>\n");
    }
    let failures = r
        .tests
        .as_ref()
        .and_then(|t| t["failures"].as_array())
        .filter(|f| !f.is_empty());
    if let Some(failures) = failures {
        let _ = writeln!(
            o,
            "<details><summary>Failed tests ({})</summary>\n",
            failures.len()
        );
        let _ = writeln!(o, "| test | message |\n|---|---|");
        for f in failures {
            let msg: String = f["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            let _ = writeln!(
                o,
                "| `{}` | {} |",
                cell(f["name"].as_str().unwrap_or("?")),
                cell(&msg)
            );
        }
        o.push_str("\n</details>\n");
    }
}

/// What a comment may show of people and cost (`--comment-people`, `--comment-cost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// People by GitHub login (else "a teammate"); when false, no one is named.
    pub people: bool,
    pub cost: CostShown,
}

/// Whom a comment names (`--comment-people`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CommentPeople {
    /// GitHub logins, else "a teammate"; never an email.
    Logins,
    /// No one.
    None,
}

/// How much of the cost a comment shows (`--comment-cost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostShown {
    /// The pull request's total and each session's share.
    PerSession,
    /// The pull request's total only.
    Total,
    /// No cost at all.
    None,
}

impl View {
    /// Everything: the API, `tracelink report` and private repositories by default.
    pub const FULL: View = View {
        people: true,
        cost: CostShown::PerSession,
    };

    /// What a repository's comments show: `cost` as set, else per session on a private
    /// repository and the total on a public one or one whose visibility is not known.
    pub fn of(people: CommentPeople, cost: Option<CostShown>, private: Option<bool>) -> View {
        View {
            people: people == CommentPeople::Logins,
            cost: cost.unwrap_or(if private == Some(true) {
                CostShown::PerSession
            } else {
                CostShown::Total
            }),
        }
    }
}

/// The one line a reviewer reads first.
pub fn headline(r: &PrReport) -> String {
    headline_for(r, View::FULL)
}

fn headline_for(r: &PrReport, view: View) -> String {
    let t = &r.totals;
    let recorded = r
        .lines
        .as_ref()
        .and_then(|l| l.line_records.as_ref())
        .map_or(0, |lr| lr.agent_added);
    if t.sessions == 0 && t.agent_commits == 0 && recorded == 0 {
        return "No AI agent involvement found".into();
    }
    let mut parts = Vec::new();
    if t.sessions == 0 && t.agent_commits == 0 {
        parts.push("agent-written lines from line records (no session telemetry)".into());
    } else if t.sessions > 0 {
        let agents: Vec<&str> = t.agents.iter().map(|a| agent_name(a)).collect();
        parts.push(format!(
            "{} agent session{} ({})",
            t.sessions,
            if t.sessions == 1 { "" } else { "s" },
            agents.join(", ")
        ));
    } else {
        parts.push(format!(
            "{} agent-assisted commit{} (no session telemetry)",
            t.agent_commits,
            if t.agent_commits == 1 { "" } else { "s" }
        ));
    }
    if t.sessions > 0 && view.cost != CostShown::None {
        parts.extend(cost_text(r, " est.", ""));
    }
    match &r.lines {
        Some(l) if l.added > 0 && l.agent_added == 0 && l.trailer_only_added > 0 => {
            parts.push(format!(
                "{} added lines marked by agent trailers",
                l.trailer_only_added
            ))
        }
        Some(l) if l.added > 0 => parts.push(format!(
            "{:.0}% of added lines by agents",
            l.agent_share * 100.0
        )),
        _ => parts.push(format!(
            "{} of {} commits agent-assisted",
            t.agent_commits, t.commits
        )),
    }
    if !r.ci.runs.is_empty() {
        parts.push(if r.ci.failed > 0 {
            "CI failing".into()
        } else if r.ci.pending > 0 {
            "CI running".into()
        } else {
            "CI passing".into()
        });
    }
    let fell = r.coverage.as_ref().and_then(|c| {
        let complete = c["complete"].as_bool().unwrap_or(false);
        c["delta_pp"].as_f64().filter(|d| complete && *d <= -0.05)
    });
    if let Some(d) = fell {
        parts.push(format!("coverage {d:+.1} pp"));
    }
    if !r.incidents.is_empty() {
        parts.push(format!(
            "⚠️ {} incident{}",
            r.incidents.len(),
            if r.incidents.len() == 1 { "" } else { "s" }
        ));
    }
    parts.join(" · ")
}

/// JSON that can sit inside an HTML comment (no `--`).
/// The hidden marker: which report this is and a digest of its content — never the
/// report itself (its users and costs would be public in a public repository's PR, and
/// GitHub keeps every edit). The full report is served by the API and `tracelink report`.
/// Whether a report comment was written by a version that put personal data in it: its
/// hidden marker then held the whole report (emails, per-session cost) instead of the
/// report's id and digest. Such a comment is deleted and posted anew, not edited, since
/// GitHub keeps an edited comment's history.
pub fn carries_personal_data(body: &str) -> bool {
    let Some(start) = body.find(MARKER) else {
        return false;
    };
    let rest = &body[start + MARKER.len()..];
    let Some(end) = rest.find("-->") else {
        return true;
    };
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(rest[..end].trim()) {
        Ok(m) => m
            .keys()
            .any(|k| !matches!(k.as_str(), "repository" | "number" | "digest")),
        Err(_) => true,
    }
}

fn marker_json(r: &PrReport) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_string(r).unwrap_or_default();
    let digest = crate::ids::encode_hex(&Sha256::digest(json.as_bytes())[..16]);
    serde_json::json!({"repository": r.repository, "number": r.number, "digest": digest})
        .to_string()
        .replace("--", "-\\u002d")
}

/// A session's person as a comment names them: a GitHub login where known, else "a
/// teammate" — never an email or an agent account id.
fn person(s: &crate::metrics::model::SessionSummary) -> String {
    s.login.clone().unwrap_or_else(|| "a teammate".into())
}

/// The people of a report's sessions: their logins, and how many others.
fn people(r: &PrReport) -> String {
    let mut logins: Vec<&str> = r
        .sessions
        .iter()
        .filter_map(|s| s.login.as_deref())
        .collect();
    logins.sort_unstable();
    logins.dedup();
    let mut others: Vec<&str> = r
        .sessions
        .iter()
        .filter(|s| s.login.is_none())
        .filter_map(|s| s.user.as_deref())
        .collect();
    others.sort_unstable();
    others.dedup();
    let unknown = others.len()
        + usize::from(
            r.sessions
                .iter()
                .any(|s| s.login.is_none() && s.user.is_none()),
        );
    let mut out: Vec<String> = logins.iter().map(|l| l.to_string()).collect();
    match unknown {
        0 => {}
        1 => out.push("a teammate".into()),
        n => out.push(format!("{n} teammates")),
    }
    if out.is_empty() {
        "a teammate".into()
    } else {
        out.join(", ")
    }
}

/// The comment body, showing everything.
pub fn render(r: &PrReport) -> String {
    render_for(r, View::FULL)
}

/// The comment body, showing what `view` allows of people and cost.
pub fn render_for(r: &PrReport, view: View) -> String {
    let full = render_with(r, true, view);
    if full.len() <= MAX_COMMENT {
        return full;
    }
    // Too long for GitHub: drop the embedded JSON, then the folded lists.
    let compact = render_with(r, false, view);
    if compact.len() <= MAX_COMMENT {
        return compact;
    }
    let mut head = compact;
    let cut = head
        .find("<details>")
        .unwrap_or(head.len().min(MAX_COMMENT));
    head.truncate(cut);
    head.push_str(
        "\n_The details are too long for a comment: see `tracelink report` or the JSON API._\n",
    );
    head
}

fn render_with(r: &PrReport, with_json: bool, view: View) -> String {
    let mut o = String::with_capacity(4096);
    if with_json {
        let _ = writeln!(o, "{MARKER} {} -->", marker_json(r));
    } else {
        let _ = writeln!(
            o,
            "{MARKER} {{\"repository\":\"{}\",\"number\":{}}} -->",
            r.repository, r.number
        );
    }
    let _ = writeln!(o, "### 🔗 tracelink · {}\n", headline_for(r, view));
    let t = &r.totals;
    let _ = writeln!(o, "| | |\n|---|---|");
    if t.sessions > 0 {
        let active = t.active_seconds.map_or(String::new(), |a| {
            format!(" · {} active", duration(a as i64))
        });
        let by = if view.people {
            format!(" by {}", cell(&people(r)))
        } else {
            String::new()
        };
        let _ = writeln!(o, "| Agent sessions | {}{by}{active} |", t.sessions);
        if view.cost == CostShown::None {
        } else if let Some(c) = cost_text(
            r,
            "",
            " (estimated from token prices where the agent reports none)",
        ) {
            let _ = writeln!(o, "| Cost | {} |", c.replace("cost unknown", "unknown"));
        }
        if let Some(tk) = &t.tokens {
            let _ = writeln!(
                o,
                "| Tokens | {} in ({} from cache) · {} out |",
                count(tk.input),
                count(tk.cache_read),
                count(tk.output)
            );
        }
    }
    let _ = writeln!(
        o,
        "| Commits | {} of {} agent-assisted{} |",
        t.agent_commits,
        t.commits,
        match r.commit_list {
            CommitSource::HeadOnly => {
                " · only the head is known (its branch's pushes never arrived, as for a fork; the App lists the rest)"
            }
            CommitSource::ApiCapped => {
                " · GitHub lists a pull request's first 250 commits only: later ones are not counted"
            }
            _ => "",
        }
    );
    if let Some(l) = &r.lines {
        let marked = if l.trailer_only_added > 0 {
            format!(
                " · {} marked as agent-written, no telemetry",
                l.trailer_only_added
            )
        } else {
            String::new()
        };
        let recorded = match &l.line_records {
            Some(r) => format!(
                " · {} by line records ({} commit{})",
                r.agent_added,
                r.commits,
                if r.commits == 1 { "" } else { "s" }
            ),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "| Lines | +{} / −{} · {} added by agents ({:.0}%){recorded}{marked} |",
            l.added,
            l.removed,
            l.agent_added,
            l.agent_share * 100.0
        );
    }
    let _ = writeln!(o, "| CI at head | {} |", ci_line(r));
    if let Some(c) = &r.coverage {
        let _ = writeln!(o, "| Coverage | {} |", coverage_line(c));
    } else if let Some(why) = &r.coverage_missing {
        let _ = writeln!(o, "| Coverage | {} |", cell(why));
    }
    if let Some(t) = &r.tests {
        let _ = writeln!(o, "| Tests | {} |", tests_line(t));
    }
    // Only when a session came before the merge.
    if let Some(s) = r.timing.first_session_to_merge_seconds.filter(|s| *s >= 0) {
        let _ = writeln!(o, "| First session → merge | {} |", duration(s));
    }
    if !r.deployments.is_empty() {
        let shipped: Vec<String> = r
            .timing
            .merge_to_deploy_seconds
            .iter()
            .map(|(env, s)| match *s {
                s if s < 0 => format!("{} {} before merge", cell(env), duration(-s)),
                s => format!("{} {} after merge", cell(env), duration(s)),
            })
            .collect();
        let _ = writeln!(
            o,
            "| Shipped | {} |",
            if shipped.is_empty() {
                "deploying".into()
            } else {
                shipped.join(" · ")
            }
        );
    }
    if !r.incidents.is_empty() {
        let list: Vec<String> = r
            .incidents
            .iter()
            .map(|i| {
                let cause = match (i.deployment, i.evidence) {
                    (Some(d), CauseEvidence::RootCause) => format!("root cause: deployment {d}"),
                    (Some(d), CauseEvidence::Fallback) => {
                        format!("no root cause given: the last deployment before it, {d}")
                    }
                    (None, _) => "root cause: a commit of this PR, not deployed".into(),
                };
                format!(
                    "#{} {} ({}, {}; {})",
                    i.number,
                    cell(i.title.as_deref().unwrap_or("")),
                    i.state,
                    cell(&i.environment),
                    cause
                )
            })
            .collect();
        let _ = writeln!(o, "| Incidents | {} |", list.join(" · "));
    }
    o.push('\n');

    let labels = session_labels(r);
    if !r.sessions.is_empty() {
        let _ = writeln!(
            o,
            "<details><summary>Sessions ({})</summary>\n",
            r.sessions.len()
        );
        let user = if view.people { " user |" } else { "" };
        let cost = if view.cost == CostShown::PerSession {
            " cost |"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "| session | agent |{user} models | tokens in/out |{cost} evidence |\n|{}",
            "---|".repeat(5 + usize::from(view.people) + usize::from(!cost.is_empty()))
        );
        for (s, label) in r.sessions.iter().zip(&labels) {
            let evidence: Vec<String> = s
                .links
                .iter()
                .map(|l| {
                    format!(
                        "`{}` {} ({:.2})",
                        short(&l.sha),
                        l.evidence.as_str(),
                        l.confidence
                    )
                })
                .collect();
            let user = if view.people {
                format!(" {} |", cell(&person(s)))
            } else {
                String::new()
            };
            let cost = if view.cost == CostShown::PerSession {
                let c = s.cost_usd.map_or("—".into(), |c| {
                    let est = if s.cost_estimated { " est." } else { "" };
                    match s.cost_in_pr_usd {
                        // Part of the session went into other commits.
                        Some(p) if (p - (c * 1e6).round() / 1e6).abs() > 1e-9 => {
                            format!("{}{est} of {}", usd(p), usd(c))
                        }
                        _ => format!("{}{est}", usd(c)),
                    }
                });
                format!(" {c} |")
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "| `{}` | {} |{user} {} | {} |{cost} {} |",
                cell(label),
                cell(s.agent.as_deref().map(agent_name).unwrap_or("?")),
                cell(&s.models.join(", ")),
                s.tokens.map_or("—".into(), |t| format!(
                    "{} / {}",
                    count(t.input),
                    count(t.output)
                )),
                evidence.join("<br>")
            );
        }
        let _ = writeln!(o, "\n{EVIDENCE_LEGEND}");
        // The whole id of each session its label cuts short, once.
        let cut: Vec<String> = r
            .sessions
            .iter()
            .zip(&labels)
            .filter(|(s, label)| s.session_id != **label)
            .map(|(s, _)| format!("`{}`", cell(&s.session_id)))
            .collect();
        if !cut.is_empty() {
            let _ = writeln!(o, "\nSession ids: {}", cut.join(" · "));
        }
        if view.cost != CostShown::None {
            o.push_str(
                "\nCost: a session's cost is split over the commits it is directly linked to, by \
                 added lines; this pull request's cost is its commits' shares.\n",
            );
        }
        o.push_str("\n</details>\n");
    }
    if !r.commits.is_empty() {
        let _ = writeln!(
            o,
            "<details><summary>Commits ({})</summary>\n",
            r.commits.len()
        );
        if view.people {
            let _ = writeln!(
                o,
                "| commit | subject | author | agents |\n|---|---|---|---|"
            );
        } else {
            let _ = writeln!(o, "| commit | subject | agents |\n|---|---|---|");
        }
        for c in &r.commits {
            // Agents of linked sessions; apart, agents only a trailer names.
            let mut agents: Vec<String> = c
                .session_agents
                .iter()
                .map(|a| agent_name(a).to_string())
                .collect();
            if agents.is_empty() && !c.sessions.is_empty() {
                agents.push(format!(
                    "{} session{}",
                    c.sessions.len(),
                    if c.sessions.len() == 1 { "" } else { "s" }
                ));
            }
            for a in c.agents.iter().filter(|a| !c.session_agents.contains(a)) {
                agents.push(format!("{} (trailer, no telemetry)", agent_name(a)));
            }
            if let Some(r) = &c.line_records {
                agents.push(format!(
                    "{} of {} added lines by agents (line records{})",
                    r.agent_added,
                    r.added,
                    if r.carried_from.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " of {}",
                            r.carried_from
                                .iter()
                                .map(|s| short(s))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ));
            }
            let author = if view.people {
                format!(" {} |", cell(c.author.as_deref().unwrap_or("?")))
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "| `{}` | {} |{author} {} |",
                short(&c.sha),
                cell(c.subject.as_deref().unwrap_or("")),
                if agents.is_empty() {
                    "—".into()
                } else {
                    cell(&agents.join(", "))
                }
            );
        }
        o.push_str("\n</details>\n");
    }
    detail_tables(&mut o, r);
    if !r.ci.runs.is_empty() {
        let _ = writeln!(
            o,
            "<details><summary>CI runs at head ({})</summary>\n",
            r.ci.runs.len()
        );
        let _ = writeln!(o, "| run | attempt | status |\n|---|---|---|");
        for run in &r.ci.runs {
            let _ = writeln!(
                o,
                "| {} {} | {} | {} |",
                run.kind.replace('_', " "),
                cell(run.name.as_deref().unwrap_or(&run.id.to_string())),
                run.attempt,
                cell(
                    run.conclusion
                        .as_deref()
                        .or(run.status.as_deref())
                        .unwrap_or("?")
                )
            );
        }
        o.push_str("\n</details>\n");
    }
    if !r.sessions.is_empty() || !r.commits.is_empty() {
        o.push_str("<details><summary>Graph</summary>\n\n```mermaid\ngraph LR\n");
        for (i, (s, label)) in r.sessions.iter().zip(&labels).enumerate() {
            let _ = writeln!(
                o,
                "  s{i}[\"{} {}\"]",
                agent_name(s.agent.as_deref().unwrap_or("agent")),
                label.replace('"', "'")
            );
        }
        // Node ids are positions, not short SHAs: two commits may share a prefix.
        let node = |sha: &str| r.commits.iter().position(|c| c.sha == sha);
        for (i, c) in r.commits.iter().enumerate() {
            let _ = writeln!(o, "  c{i}[\"{}\"]", short(&c.sha));
        }
        for (i, s) in r.sessions.iter().enumerate() {
            for l in &s.links {
                if let Some(c) = node(&l.sha) {
                    let _ = writeln!(o, "  s{i} -->|{}| c{c}", l.evidence.as_str());
                }
            }
        }
        let head = node(&r.head_sha).map_or("head".to_string(), |i| format!("c{i}"));
        if node(&r.head_sha).is_none() {
            let _ = writeln!(o, "  head[\"{}\"]", short(&r.head_sha));
        }
        for run in &r.ci.runs {
            let _ = writeln!(
                o,
                "  {head} --> r{}_{}[\"{} {}\"]",
                run.id,
                run.attempt,
                run.kind.replace('_', " "),
                run.conclusion
                    .as_deref()
                    .or(run.status.as_deref())
                    .unwrap_or("?")
            );
        }
        // What was deployed is the merge result, not the PR's head.
        let shipped = match &r.merge_commit_sha {
            Some(m) => {
                let _ = writeln!(o, "  {head} ==>|merged| m[\"{}\"]", short(m));
                "m".to_string()
            }
            None => head.clone(),
        };
        for d in &r.deployments {
            let _ = writeln!(
                o,
                "  {shipped} -.-> d{}[\"deploy {} {}\"]",
                d.id,
                d.environment.replace('"', "'"),
                d.state.as_deref().unwrap_or("?")
            );
        }
        // Each incident from the deployment it is linked to (or the merge, when its root
        // cause is a commit no deployment has shipped yet).
        for i in &r.incidents {
            let from = match i.deployment {
                Some(d) if r.deployments.iter().any(|x| x.id == d) => format!("d{d}"),
                _ => shipped.clone(),
            };
            let style = match i.evidence {
                CauseEvidence::RootCause => "-->",
                CauseEvidence::Fallback => "-.->|by time|",
            };
            let _ = writeln!(
                o,
                "  {from} {style} i{}[\"incident #{}\"]",
                i.number, i.number
            );
        }
        o.push_str("```\n\n</details>\n");
    }
    o
}

/// The check run's (and the job's) summary: the table without the folded details,
/// showing what `view` allows.
pub fn summary(r: &PrReport, view: View) -> String {
    let full = render_with(r, false, view);
    let body = full
        .split_once('\n')
        .map_or(full.as_str(), |(_, rest)| rest);
    body.split("<details>")
        .next()
        .unwrap_or(body)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::links::Evidence;
    use crate::metrics::model::{
        CommitLineRecords, CommitSummary, LineRecordShare, LineShare, LinkView, SessionSummary,
        Timing, Totals,
    };

    const SHA: &str = "9c0832b26219b10b65f2a64ef32be97e2e28f8da";

    fn session(id: &str, cost: Option<f64>) -> SessionSummary {
        SessionSummary {
            session_id: id.into(),
            agent: Some("claude-code".into()),
            user: Some("dev@acme.example".into()),
            login: None,
            models: vec!["claude-sonnet-4-6".into()],
            tokens: None,
            cost_usd: cost,
            cost_in_pr_usd: cost,
            cost_estimated: false,
            active_seconds: None,
            started_at: None,
            lines_added: None,
            links: vec![LinkView {
                sha: SHA.into(),
                evidence: Evidence::Trace,
                confidence: 1.0,
                detail: String::new(),
            }],
        }
    }

    /// A PR of one commit and the given sessions; the totals follow the sessions.
    fn report(sessions: Vec<SessionSummary>) -> PrReport {
        let priced: Vec<f64> = sessions.iter().filter_map(|s| s.cost_usd).collect();
        let mut r = PrReport {
            repository: "acme/widgets".into(),
            number: 7,
            title: Some("Retry".into()),
            state: "open".into(),
            author: Some("dev".into()),
            head_sha: SHA.into(),
            base_ref: "main".into(),
            merge_commit_sha: None,
            headline: String::new(),
            totals: Totals {
                sessions: sessions.len(),
                agents: vec!["claude-code".into()],
                users: vec!["dev@acme.example".into()],
                commits: 1,
                agent_commits: 1,
                cost_usd: (!priced.is_empty()).then(|| priced.iter().sum()),
                ..Totals::default()
            },
            commits: vec![CommitSummary {
                sha: SHA.into(),
                subject: Some("Add retry".into()),
                author: Some("dev".into()),
                authored_at: None,
                agent_assisted: true,
                agents: vec![],
                session_agents: vec!["claude-code".into()],
                sessions: sessions.iter().map(|s| s.session_id.clone()).collect(),
                line_records: None,
            }],
            sessions,
            commit_list: CommitSource::Ancestry,
            lines: None,
            ci: Default::default(),
            deployments: vec![],
            incidents: vec![],
            timing: Timing::default(),
            coverage: None,
            coverage_missing: None,
            tests: None,
        };
        r.headline = headline(&r);
        r
    }

    /// The folded sessions details of a rendered comment.
    fn sessions_details(md: &str) -> &str {
        let start = md.find("<summary>Sessions").expect("sessions details");
        let len = md[start..].find("</details>").unwrap();
        &md[start..start + len]
    }

    #[test]
    fn line_records_alone_are_agent_involvement() {
        let mut r = report(vec![]);
        r.totals.agent_commits = 0;
        r.commits[0].line_records = Some(CommitLineRecords {
            evidence: "lines",
            added: 5,
            agent_added: 3,
            agents: vec!["claude".into()],
            carried_from: vec![],
        });
        r.lines = Some(LineShare {
            added: 5,
            removed: 0,
            agent_added: 3,
            agent_share: 0.6,
            trailer_only_added: 0,
            line_records: Some(LineRecordShare {
                commits: 1,
                agent_added: 3,
            }),
        });
        assert_eq!(
            headline(&r),
            "agent-written lines from line records (no session telemetry) · 60% of added lines by agents"
        );
        let md = render(&r);
        assert!(
            md.contains(
                "| Lines | +5 / −0 · 3 added by agents (60%) · 3 by line records (1 commit) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("3 of 5 added lines by agents (line records)"),
            "{md}"
        );
        r.lines.as_mut().unwrap().line_records = None;
        assert_eq!(headline(&r), "No AI agent involvement found");
    }

    #[test]
    fn session_labels_never_collide() {
        let r = report(vec![
            session("conv-nc-http", Some(0.1)),
            session("conv-nc-grpc", Some(0.1)),
            session("82c3495f-998e-457a-875a-8643b934dd9c", Some(0.1)),
            session("abc", Some(0.1)),
            // One id is a prefix of another: the shorter one is its whole id.
            session("conv-nc-http-2", Some(0.1)),
        ]);
        assert_eq!(
            session_labels(&r),
            [
                "conv-nc-http",
                "conv-nc-g",
                "82c3495f",
                "abc",
                "conv-nc-http-"
            ]
        );
        let md = render(&r);
        let details = sessions_details(&md);
        for label in [
            "conv-nc-http",
            "conv-nc-g",
            "82c3495f",
            "abc",
            "conv-nc-http-",
        ] {
            assert!(details.contains(&format!("| `{label}` |")), "{details}");
            assert!(md.contains(&format!("[\"Claude Code {label}\"]")), "{md}");
        }
        assert!(!md.contains("`conv-nc-` |"), "{md}");
        // Every full id once in the sessions details.
        for s in &r.sessions {
            assert_eq!(
                details.matches(&format!("`{}`", s.session_id)).count(),
                1,
                "{}: {details}",
                s.session_id
            );
        }
    }

    #[test]
    fn session_label_counts_characters_not_bytes() {
        let r = report(vec![
            session("ééééééééx1", None),
            session("ééééééééx2", None),
        ]);
        assert_eq!(session_labels(&r), ["ééééééééx1", "ééééééééx2"]);
        let r = report(vec![session("éééééééééé", None)]);
        assert_eq!(session_labels(&r), ["éééééééé"]);
    }

    #[test]
    fn evidence_legend_under_the_sessions_table_only() {
        let r = report(vec![session("82c3495f-998e", Some(0.1))]);
        let md = render(&r);
        let details = sessions_details(&md);
        let table = details.find("| session |").unwrap();
        let legend = details
            .find("Evidence (confidence in brackets): trace/event — ")
            .unwrap();
        assert!(legend > table, "{details}");
        for class in ["coauthor — ", "merged — ", "window — "] {
            assert!(details[legend..].contains(class), "{details}");
        }
        assert_eq!(md.matches("Evidence (confidence").count(), 1, "{md}");
        assert!(!summary(&r, View::FULL).contains("Evidence"));
        assert!(!r.headline.contains("Evidence"));
    }

    #[test]
    fn durations_as_people_read_them() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(720), "12 m");
        assert_eq!(duration(262), "4 m 22 s");
        assert_eq!(duration(117 * 60), "1 h 57 m");
        assert_eq!(duration(3_600), "1 h");
        assert_eq!(duration(2 * 86_400 + 3 * 3_600 + 59), "2 d 3 h");
        assert_eq!(duration(-90), "−1 m 30 s");
    }

    #[test]
    fn durations_printed_with_the_one_helper() {
        let mut r = report(vec![session("s-1", Some(0.1))]);
        r.totals.active_seconds = Some(262.9);
        r.timing.first_session_to_merge_seconds = Some(117 * 60);
        r.timing.merge_to_deploy_seconds = [("production".to_string(), 45)].into();
        r.deployments = vec![crate::metrics::model::DeploymentSummary {
            id: 1,
            environment: "production".into(),
            state: Some("success".into()),
            created_at: None,
        }];
        let md = render(&r);
        assert!(
            md.contains("| Agent sessions | 1 by a teammate · 4 m 22 s active |"),
            "{md}"
        );
        assert!(md.contains("| First session → merge | 1 h 57 m |"), "{md}");
        assert!(
            md.contains("| Shipped | production 45 s after merge |"),
            "{md}"
        );
        // A deployment stamped before the merge says so, not "after".
        r.timing.merge_to_deploy_seconds = [("production".to_string(), -75)].into();
        let md = render(&r);
        assert!(
            md.contains("| Shipped | production 1 m 15 s before merge |"),
            "{md}"
        );
    }

    #[test]
    fn unpriced_sessions_are_counted_in_the_headline_and_cost_row() {
        // Some priced.
        let r = report(vec![
            session("a-session", Some(0.26)),
            session("b-session", None),
            session("c-session", None),
        ]);
        assert!(
            r.headline.contains(" · $0.26 + 2 sessions unpriced · "),
            "{}",
            r.headline
        );
        assert!(render(&r).contains("| Cost | $0.26 + 2 sessions unpriced |"));
        let r = report(vec![
            session("a-session", Some(0.26)),
            session("b-session", None),
        ]);
        assert!(
            r.headline.contains(" · $0.26 + 1 session unpriced · "),
            "{}",
            r.headline
        );
        let mut r = report(vec![
            session("a-session", Some(0.26)),
            session("b-session", None),
        ]);
        r.totals.cost_estimated = true;
        assert!(headline(&r).contains(" · $0.26 est. + 1 session unpriced · "));
        assert!(render(&r).contains(
            "| Cost | $0.26 + 1 session unpriced (estimated from token prices where the agent reports none) |"
        ));
        // None priced.
        let r = report(vec![session("a-session", None), session("b-session", None)]);
        assert!(
            r.headline
                .contains(" · cost unknown (2 sessions unpriced) · "),
            "{}",
            r.headline
        );
        assert!(render(&r).contains("| Cost | unknown (2 sessions unpriced) |"));
        // All priced: as before.
        let r = report(vec![session("a-session", Some(0.26))]);
        assert!(r.headline.contains(" · $0.26 · "), "{}", r.headline);
        assert!(!r.headline.contains("unpriced"));
        assert!(render(&r).contains("| Cost | $0.26 |"));
    }

    #[test]
    fn no_first_session_to_merge_row_without_a_session_before_the_merge() {
        let mut r = report(vec![session("s-1", Some(0.1))]);
        r.timing.first_session_to_merge_seconds = Some(-3_600);
        let md = render(&r);
        assert!(!md.contains("First session"), "{md}");
        assert!(!md.contains("before merge"), "{md}");
        r.timing.first_session_to_merge_seconds = None;
        assert!(!render(&r).contains("First session"));
        r.timing.first_session_to_merge_seconds = Some(0);
        assert!(render(&r).contains("| First session → merge | 0 s |"));
    }

    #[test]
    fn the_comment_names_people_by_login_and_carries_no_email() {
        let mut known = session("s-known-1", Some(0.2));
        known.login = Some("octodev".into());
        let unknown = session("s-unknown-2", Some(0.1));
        let mut r = report(vec![known, unknown]);
        r.headline = headline(&r);
        let md = render(&r);
        assert!(!md.contains('@'), "no email, no mention: {md}");
        assert!(
            md.contains("| Agent sessions | 2 by octodev, a teammate"),
            "{md}"
        );
        let marker = md.lines().next().unwrap();
        assert!(marker.contains("\"digest\":"), "{marker}");
        assert!(
            !marker.contains("sessions"),
            "the marker holds no report: {marker}"
        );
    }

    #[test]
    fn comments_with_the_whole_report_in_their_marker_carry_personal_data() {
        let r = report(vec![session("82c3495f-998e", Some(0.1))]);
        assert!(!carries_personal_data(&render(&r)));
        let old = format!(
            "{MARKER} {} -->\n### tracelink",
            serde_json::to_string(&r).unwrap()
        );
        assert!(carries_personal_data(&old));
        assert!(carries_personal_data(&format!("{MARKER} not json -->")));
        assert!(!carries_personal_data("no marker here"));
    }
}
