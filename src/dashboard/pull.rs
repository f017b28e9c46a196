//! A pull request's page: its report's figures and the graph of what the agents' work
//! turned into — sessions → commits → CI runs → deployments → incidents — drawn as SVG.

use std::fmt::Write;

use serde_json::Value;

use super::page::{escape, figure};

const COLUMNS: [&str; 5] = ["Sessions", "Commits", "CI runs", "Deployments", "Incidents"];
const COLUMN_W: f64 = 200.0;
const NODE_W: f64 = 170.0;
const NODE_H: f64 = 34.0;
const ROW_H: f64 = 46.0;
const TOP: f64 = 30.0;
/// Nodes drawn per column; the rest are counted in a last node.
const MAX_ROWS: usize = 12;

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One node: its label (and the tooltip giving it whole).
struct Node {
    key: String,
    label: String,
    detail: String,
    fill: &'static str,
}

/// The graph of a report (its JSON, as the API gives it).
pub fn graph(report: &Value) -> String {
    let arr = |k: &str| report[k].as_array().cloned().unwrap_or_default();
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let mut columns: [Vec<Node>; 5] = Default::default();
    let mut edges: Vec<(String, String)> = Vec::new();

    for session in arr("sessions") {
        let id = s(&session, "session_id");
        let agent = s(&session, "agent");
        let cost = session["cost_in_pr_usd"]
            .as_f64()
            .or_else(|| session["cost_usd"].as_f64());
        columns[0].push(Node {
            key: format!("s:{id}"),
            label: format!(
                "{} {}",
                if agent.is_empty() { "session" } else { &agent },
                cost.map_or(String::new(), |c| figure(c, "usd"))
            ),
            detail: format!("session {id}"),
            fill: "#e8f1fa",
        });
        for link in session["links"].as_array().into_iter().flatten() {
            edges.push((format!("s:{id}"), format!("c:{}", s(link, "sha"))));
        }
    }
    let commits = arr("commits");
    for c in &commits {
        let sha = s(c, "sha");
        columns[1].push(Node {
            key: format!("c:{sha}"),
            label: format!(
                "{} {}",
                &sha.get(..7).unwrap_or(&sha),
                truncate(c["subject"].as_str().unwrap_or(""), 14)
            ),
            detail: format!("{sha} {}", s(c, "subject")),
            fill: if c["agent_assisted"] == true {
                "#e6f4ee"
            } else {
                "#f2f2f2"
            },
        });
    }
    // CI ran on the head; deployments shipped the merge (else the head).
    let head = report["head_sha"].as_str().unwrap_or("");
    let shipped = report["merge_commit_sha"]
        .as_str()
        .filter(|m| commits.iter().any(|c| c["sha"] == *m))
        .unwrap_or(head);
    for run in report["ci"]["runs"].as_array().into_iter().flatten() {
        let key = format!("r:{}:{}:{}", s(run, "kind"), run["id"], run["attempt"]);
        let outcome = run["conclusion"]
            .as_str()
            .or(run["status"].as_str())
            .unwrap_or("")
            .to_string();
        columns[2].push(Node {
            key: key.clone(),
            label: format!("{} {}", truncate(&s(run, "name"), 14), outcome),
            detail: format!(
                "{} {} attempt {}: {outcome}",
                s(run, "kind"),
                s(run, "name"),
                run["attempt"]
            ),
            fill: match outcome.as_str() {
                "success" => "#e6f4ee",
                "failure" | "timed_out" | "cancelled" | "error" => "#fbe9e7",
                _ => "#f2f2f2",
            },
        });
        edges.push((format!("c:{head}"), key));
    }
    for d in arr("deployments") {
        let key = format!("d:{}", d["id"]);
        columns[3].push(Node {
            key: key.clone(),
            label: format!("{} {}", truncate(&s(&d, "environment"), 12), s(&d, "state")),
            detail: format!("deployment {} to {}", d["id"], s(&d, "environment")),
            fill: "#fff6e0",
        });
        edges.push((format!("c:{shipped}"), key));
    }
    for i in arr("incidents") {
        let key = format!("i:{}", i["number"]);
        columns[4].push(Node {
            key: key.clone(),
            label: format!("#{} {}", i["number"], truncate(&s(&i, "title"), 14)),
            detail: format!("incident #{} {}", i["number"], s(&i, "title")),
            fill: "#fbe9e7",
        });
        if let Some(d) = i["deployment"].as_i64() {
            edges.push((format!("d:{d}"), key));
        }
    }
    for col in &mut columns {
        if col.len() > MAX_ROWS {
            let more = col.len() - (MAX_ROWS - 1);
            col.truncate(MAX_ROWS - 1);
            col.push(Node {
                key: String::new(),
                label: format!("+{more} more"),
                detail: format!("{more} more not drawn"),
                fill: "#ffffff",
            });
        }
    }
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let width = COLUMN_W * 5.0;
    let height = TOP + ROW_H * rows as f64 + 8.0;
    let position = |key: &str| {
        columns.iter().enumerate().find_map(|(ci, col)| {
            col.iter()
                .position(|n| !n.key.is_empty() && n.key == key)
                .map(|ri| (ci, ri))
        })
    };
    let at = |ci: usize, ri: usize| (10.0 + COLUMN_W * ci as f64, TOP + ROW_H * ri as f64);
    let mut svg = format!(
        r#"<svg class="chart graph" viewBox="0 0 {width} {height}" role="img" aria-label="Sessions, commits, CI runs, deployments and incidents of this pull request" xmlns="http://www.w3.org/2000/svg">"#
    );
    for (ci, name) in COLUMNS.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="16" font-size="12" font-weight="600" fill="#555">{name}</text>"##,
            10.0 + COLUMN_W * ci as f64
        );
    }
    for (from, to) in &edges {
        let (Some((fc, fr)), Some((tc, tr))) = (position(from), position(to)) else {
            continue;
        };
        let (x1, y1) = at(fc, fr);
        let (x2, y2) = at(tc, tr);
        let (x1, y1, x2, y2) = (x1 + NODE_W, y1 + NODE_H / 2.0, x2, y2 + NODE_H / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = write!(
            svg,
            r##"<path class="edge" d="M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}" fill="none" stroke="#8a96a3" stroke-width="1.5"/>"##
        );
    }
    for (ci, col) in columns.iter().enumerate() {
        for (ri, n) in col.iter().enumerate() {
            let (x, y) = at(ci, ri);
            let _ = write!(
                svg,
                r##"<g class="node"><title>{d}</title><rect x="{x:.1}" y="{y:.1}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{f}" stroke="#b8c2cc"/><text x="{tx:.1}" y="{ty:.1}" font-size="12" fill="#1d2329">{l}</text></g>"##,
                d = escape(&n.detail),
                f = n.fill,
                tx = x + 8.0,
                ty = y + 21.0,
                l = escape(&truncate(&n.label, 24)),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_graph_joins_sessions_to_what_they_became() {
        let report = json!({
            "head_sha": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "merge_commit_sha": null,
            "sessions": [{"session_id": "s1", "agent": "claude-code", "cost_usd": 0.5,
                "links": [{"sha": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}],
            "commits": [
                {"sha": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "subject": "Retry <b>", "agent_assisted": true},
                {"sha": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "subject": "Fix", "agent_assisted": false}
            ],
            "ci": {"runs": [{"kind": "workflow_run", "id": 1, "attempt": 1, "name": "test", "conclusion": "failure"}]},
            "deployments": [{"id": 9, "environment": "production", "state": "success"}],
            "incidents": [{"number": 4, "title": "Checkout down", "deployment": 9}]
        });
        let svg = graph(&report);
        assert_eq!(svg.matches(r#"<g class="node">"#).count(), 6);
        // session→commit, head→run, shipped commit→deployment, deployment→incident
        assert_eq!(svg.matches(r#"class="edge""#).count(), 4);
        assert!(svg.contains("Retry &lt;b&gt;"));
        assert!(!svg.contains("<b>"));
    }
}
