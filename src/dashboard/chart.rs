//! Charts drawn on the server as SVG: no script, no CDN, they print and work
//! air-gapped. Colours and sizes are presentation attributes (the pages' Content
//! Security Policy allows no inline styles).

use std::fmt::Write;

use super::page::{escape, figure};

/// Series colours, distinguishable in colour-blind palettes (Okabe–Ito).
const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One line: a name and a value per x label (`NaN`: no value, the line breaks).
pub struct Line<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

/// The smallest "nice" number (1, 2 or 5 times a power of ten) at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|c| *c >= v * 0.999_999)
        .unwrap_or(10.0 * power)
}

/// A line chart of `lines` over `labels` (bucket starts), its y axis in `unit`. The
/// chart's title is the SVG's accessible name; each point's value is its tooltip.
pub fn lines(title: &str, unit: &str, labels: &[String], lines: &[Line<'_>]) -> String {
    let mut svg = String::with_capacity(4096);
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // Counts get whole-numbered gridlines.
    let counted = !matches!(unit, "usd" | "share" | "hours" | "seconds");
    let top = if counted {
        nice_ceiling(max).max(4.0)
    } else {
        nice_ceiling(max)
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = labels.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - v / top);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = escape(title)
    );
    for k in 0..=4 {
        let v = top * k as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd" stroke-width="1"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11" fill="#555">{label}</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = yy + 4.0,
            label = escape(&figure(v, unit)),
        );
    }
    // At most 8 x labels, evenly spread, always the first and the last, none
    // overlapping another (a label is about 6.2 units a character wide at this size).
    let step = n.div_ceil(8).max(1);
    let extent = |i: usize, label: &str| {
        let w = label.chars().count() as f64 * 6.2;
        match i {
            0 if n > 1 => (x(i), x(i) + w, "start"),
            _ if i + 1 == n && n > 1 => (x(i) - w, x(i), "end"),
            _ => (x(i) - w / 2.0, x(i) + w / 2.0, "middle"),
        }
    };
    let mut shown: Vec<usize> = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        if i % step != 0 && i + 1 != n {
            continue;
        }
        let (left, _, _) = extent(i, label);
        // The last label stays: the one before it gives way.
        while let Some(&p) = shown.last() {
            if extent(p, &labels[p]).1 + 8.0 <= left {
                break;
            }
            if i + 1 == n && p != 0 {
                shown.pop();
            } else {
                break;
            }
        }
        if shown
            .last()
            .is_none_or(|&p| extent(p, &labels[p]).1 + 8.0 <= left)
        {
            shown.push(i);
        }
    }
    for i in shown {
        let (_, _, anchor) = extent(i, &labels[i]);
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="{anchor}" font-size="11" fill="#555">{}</text>"##,
            x(i),
            HEIGHT - 8.0,
            escape(&labels[i])
        );
    }
    for (li, line) in lines.iter().enumerate() {
        let colour = PALETTE[li % PALETTE.len()];
        let mut path = String::new();
        let mut pen_down = false;
        for (i, v) in line.values.iter().enumerate() {
            if !v.is_finite() {
                pen_down = false;
                continue;
            }
            let _ = write!(
                path,
                "{}{:.1},{:.1} ",
                if pen_down { "L" } else { "M" },
                x(i),
                y(*v)
            );
            pen_down = true;
        }
        let _ = write!(
            svg,
            r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2"><title>{}</title></path>"#,
            path.trim_end(),
            escape(line.name)
        );
        for (i, v) in line.values.iter().enumerate() {
            if v.is_finite() {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}: {} {}</title></circle>"#,
                    x(i),
                    y(*v),
                    escape(line.name),
                    escape(labels.get(i).map_or("", String::as_str)),
                    escape(&figure(*v, unit)),
                );
            }
        }
    }
    svg.push_str("</svg>");
    if lines.len() > 1 {
        svg.push_str(r#"<ul class="legend">"#);
        for (li, line) in lines.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{}"/></svg> {}</li>"#,
                PALETTE[li % PALETTE.len()],
                escape(line.name)
            );
        }
        svg.push_str("</ul>");
    }
    svg
}

/// Horizontal bars of `(label, value)`, largest first as given, in `unit`.
pub fn bars(title: &str, unit: &str, rows: &[(String, f64)]) -> String {
    let row_h = 22.0;
    let label_w = 180.0;
    let height = TOP + row_h * rows.len().max(1) as f64 + 4.0;
    let max = rows
        .iter()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = nice_ceiling(max);
    let plot_w = WIDTH - label_w - 110.0;
    let mut svg = String::with_capacity(2048);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = escape(title)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let yy = TOP + row_h * i as f64;
        let w = if v.is_finite() { plot_w * v / top } else { 0.0 };
        let _ = write!(
            svg,
            r##"<text x="{lx}" y="{ty:.1}" text-anchor="end" font-size="12" fill="#222">{l}</text><rect x="{label_w}" y="{yy:.1}" width="{w:.1}" height="{bh}" fill="{c}"><title>{l}: {f}</title></rect><text x="{vx:.1}" y="{ty:.1}" font-size="12" fill="#222">{f}</text>"##,
            lx = label_w - 8.0,
            ty = yy + 14.0,
            l = escape(label),
            bh = row_h - 6.0,
            c = PALETTE[0],
            vx = label_w + w + 6.0,
            f = escape(&figure(*v, unit)),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_labels_never_overlap_and_keep_the_first_and_the_last() {
        for n in [2, 7, 8, 9, 13, 31, 45, 90] {
            let labels: Vec<String> = (0..n).map(|i| format!("2026-11-{i:02}")).collect();
            let svg = lines(
                "Cost",
                "usd",
                &labels,
                &[Line {
                    name: "x",
                    values: vec![1.0; n],
                }],
            );
            let shown: Vec<(f64, &str, &str)> = svg
                .split(r#"<text x=""#)
                .skip(1)
                .filter_map(|t| {
                    let x: f64 = t.split('"').next()?.parse().ok()?;
                    let anchor = t.split(r#"text-anchor=""#).nth(1)?.split('"').next()?;
                    let text = t.split('>').nth(1)?.split('<').next()?;
                    text.starts_with("2026").then_some((x, anchor, text))
                })
                .collect();
            assert_eq!(shown.first().map(|s| s.2), Some("2026-11-00"), "{n}");
            assert_eq!(
                shown.last().map(|s| s.2.to_string()),
                Some(format!("2026-11-{:02}", n - 1)),
                "{n}"
            );
            assert!(shown.len() <= 9, "{n}: {shown:?}");
            // Each label's extent (62 units wide) clears the next one's.
            let span = |(x, a, _): (f64, &str, &str)| match a {
                "start" => (x, x + 62.0),
                "end" => (x - 62.0, x),
                _ => (x - 31.0, x + 31.0),
            };
            for w in shown.windows(2) {
                assert!(span(w[0]).1 < span(w[1]).0, "{n}: {shown:?}");
            }
        }
    }

    #[test]
    fn axes_end_on_nice_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.37), 0.5);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(2000.0), 2000.0);
    }

    #[test]
    fn names_from_telemetry_are_escaped_and_gaps_break_the_line() {
        let svg = lines(
            "Cost",
            "usd",
            &[
                "2026-11-16".into(),
                "2026-11-17".into(),
                "2026-11-18".into(),
            ],
            &[Line {
                name: "<script>alert(1)</script>",
                values: vec![1.0, f64::NAN, 3.0],
            }],
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        // Two pen-down moves: the missing middle value breaks the line.
        let d = svg.split(" d=\"").nth(1).and_then(|r| r.split('"').next());
        assert_eq!(d, Some("M64.0,156.0 M708.0,84.0"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
    }
}
