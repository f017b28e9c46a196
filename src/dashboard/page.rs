//! The pages' frame, their filters, tables and figures. Everything that came from
//! telemetry or GitHub goes through [`escape`].

use std::fmt::Write;

pub use crate::ids::url_encode;

/// HTML-escapes text for an element's content or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Digits grouped by thousands: `12,345`.
fn grouped(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A figure as a person reads it, in its unit: `$1,234.57`, `45.2%`, `3.5 h`, `1,204`;
/// `–` for no figure.
pub fn figure(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    match unit {
        "usd" if v.abs() >= 100.0 => format!("${}", grouped(v.round() as i64)),
        "usd" if v != 0.0 && v.abs() < 0.01 => format!("${v:.4}"),
        "usd" => format!("${v:.2}"),
        "share" => format!("{:.1}%", v * 100.0),
        "hours" => format!("{v:.1} h"),
        "seconds" if v >= 3600.0 => format!("{:.1} h", v / 3600.0),
        "seconds" if v >= 60.0 => format!("{:.1} min", v / 60.0),
        "seconds" => format!("{v:.0} s"),
        _ if v.fract() == 0.0 && v.abs() < 9.0e15 => grouped(v as i64),
        _ => format!("{v:.2}"),
    }
}

/// A number as the API's JSON writes it (CSV cells): an integer when it is one, the
/// shortest decimal otherwise, empty for no figure.
pub fn raw_number(v: f64) -> String {
    if !v.is_finite() {
        String::new()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        (v as i64).to_string()
    } else {
        v.to_string()
    }
}

/// One CSV field (RFC 4180), with formula characters defused so a spreadsheet never
/// runs a name that came from telemetry.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The pages of the navigation: `(path, title)`.
pub const NAV: [(&str, &str); 8] = [
    ("/", "Overview"),
    ("/teams", "Teams"),
    ("/repos", "Repositories"),
    ("/agents", "Agents & models"),
    ("/people", "People"),
    ("/pulls", "Pull requests"),
    ("/alerts", "Alerts"),
    ("/setup", "Setup"),
];

/// A duration in seconds as a person says it: `42 s`, `5 min`, `3 h`, `2 days`.
pub fn elapsed(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// A whole page: the frame, the navigation (People only with `--people on`), the
/// title and `body`. The error hook (`dashboard.js`) loads first so that any script
/// error on the page is recorded.
pub fn frame(current: &str, title: &str, people: bool, body: &str) -> String {
    let mut nav = String::new();
    for (path, name) in NAV {
        if path == "/people" && !people {
            continue;
        }
        let _ = write!(
            nav,
            r#"<a href="{path}"{}>{name}</a>"#,
            if path == current {
                r#" aria-current="page""#
            } else {
                ""
            }
        );
    }
    document(
        title,
        &format!(
            r#"<header><span class="brand">tracelink</span><nav>{nav}</nav><form method="post" action="/logout"><button type="submit">Sign out</button></form></header>
<main><h1>{t}</h1>
{body}
</main>"#,
            t = escape(title),
        ),
    )
}

/// An HTML document: the head every page shares (the error hook first, the
/// stylesheet, `title · tracelink`), then `body` (markup, escaped by the caller).
pub fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<script src="/assets/dashboard.js"></script>
<link rel="stylesheet" href="/assets/dashboard.css">
<title>{} · tracelink</title></head>
<body>{body}</body></html>"#,
        escape(title)
    )
}

/// The range and bucket a page shows, as the URL gives them (`from`, `to`: dates).
#[derive(Debug, Clone, Default)]
pub struct Range {
    pub from: String,
    pub to: String,
    pub bucket: String,
    /// Only this team's, repository's, agent's sessions and pull requests.
    pub team: Option<String>,
    pub repo: Option<String>,
    pub agent: Option<String>,
}

impl Range {
    /// The query string these filters make (`from=…&to=…&bucket=…[&team=…]…`).
    pub fn query(&self) -> String {
        let mut q = format!(
            "from={}&to={}&bucket={}",
            url_encode(&self.from),
            url_encode(&self.to),
            url_encode(&self.bucket)
        );
        for (name, v) in [
            ("team", &self.team),
            ("repo", &self.repo),
            ("agent", &self.agent),
        ] {
            if let Some(v) = v {
                let _ = write!(q, "&{name}={}", url_encode(v));
            }
        }
        q
    }
}

/// What the filter inputs suggest (any other value may still be typed).
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub teams: Vec<String>,
    pub repos: Vec<String>,
    pub agents: Vec<String>,
}

/// The filter form (a GET form: the filters live in the URL) and quick ranges.
pub fn filters(path: &str, r: &Range, presets: &[(String, Range)], choices: &Choices) -> String {
    let mut out = format!(
        r#"<form class="filters" method="get" action="{path}">
<label>From <input type="date" name="from" value="{from}"></label>
<label>To <input type="date" name="to" value="{to}"></label>
<label>Per <select name="bucket">"#,
        from = escape(&r.from),
        to = escape(&r.to),
    );
    for b in ["day", "week", "month"] {
        let _ = write!(
            out,
            r#"<option value="{b}"{}>{b}</option>"#,
            if b == r.bucket { " selected" } else { "" }
        );
    }
    out.push_str("</select></label>");
    for (name, label, v, hint, options) in [
        ("team", "Team", &r.team, "all teams", &choices.teams),
        (
            "repo",
            "Repository",
            &r.repo,
            "all repositories",
            &choices.repos,
        ),
        ("agent", "Agent", &r.agent, "all agents", &choices.agents),
    ] {
        let _ = write!(
            out,
            r#"<label>{label} <input name="{name}" list="{name}-choices" value="{}" placeholder="{hint}" size="14"></label><datalist id="{name}-choices">"#,
            escape(v.as_deref().unwrap_or(""))
        );
        for o in options {
            let _ = write!(out, r#"<option value="{}">"#, escape(o));
        }
        out.push_str("</datalist>");
    }
    out.push_str(r#"<button type="submit">Apply</button><span class="presets">"#);
    for (name, p) in presets {
        let _ = write!(
            out,
            r#"<a href="{path}?{}">{}</a>"#,
            escape(&p.query()),
            escape(name)
        );
    }
    out.push_str("</span></form>");
    out
}

/// A figure tile: a label, the figure, and its quality when not exact.
pub fn tile(label: &str, value: &str, quality: &str, id: &str) -> String {
    let note = if quality == "exact" {
        String::new()
    } else {
        format!(
            r#"<span class="quality {q}">{q}</span>"#,
            q = escape(quality)
        )
    };
    format!(
        r#"<div class="tile" id="{id}"><div class="label">{}</div><div class="value">{}</div>{note}</div>"#,
        escape(label),
        escape(value),
    )
}

/// A table: a caption, the header, rows of already-escaped cells, and the link that
/// downloads the same rows (as CSV from `/export.csv`, else the API's JSON).
pub fn table(id: &str, caption: &str, head: &[&str], rows: &[Vec<String>], csv: &str) -> String {
    let mut out = format!(
        r#"<section class="table"><table id="{id}"><caption>{} <a class="csv" href="{}" download>{}</a></caption><thead><tr>"#,
        escape(caption),
        escape(csv),
        if csv.contains(".csv?") { "CSV" } else { "JSON" }
    );
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            r#"<tr><td colspan="{}" class="empty">Nothing in this range.</td></tr>"#,
            head.len()
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
    out
}

/// Notes on why figures are estimated or partial.
pub fn reasons(reasons: &[String]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let mut out = String::from(r#"<ul class="reasons">"#);
    for r in reasons {
        let _ = write!(out, "<li>{}</li>", escape(r));
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_in_their_units() {
        assert_eq!(figure(0.365276, "usd"), "$0.37");
        assert_eq!(figure(0.004, "usd"), "$0.0040");
        assert_eq!(figure(12345.6, "usd"), "$12,346");
        assert_eq!(figure(0.4567, "share"), "45.7%");
        assert_eq!(figure(1204.0, "sessions"), "1,204");
        assert_eq!(figure(-1234567.0, "tokens"), "-1,234,567");
        assert_eq!(figure(5400.0, "seconds"), "1.5 h");
        assert_eq!(figure(f64::NAN, "share"), "–");
    }

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("acme/widgets"), "acme/widgets");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-3.5"), "-3.5");
        assert_eq!(raw_number(0.365276), "0.365276");
        assert_eq!(raw_number(3.0), "3");
        assert_eq!(raw_number(f64::NAN), "");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<img src=x onerror="alert('1')">&"#),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }
}
