//! A small SVG line chart with log–log axes, for the `scale` plot. Written
//! by hand rather than with a plotting crate, so that CI (which builds the
//! benches) compiles nothing more for it.

use std::fmt::Write as _;

use crate::harness::Unit;

/// One line of a panel: a side's figure at each N.
pub(crate) struct Series {
    pub(crate) name: String,
    /// An SVG colour.
    pub(crate) color: String,
    /// (N, value), value > 0.
    pub(crate) points: Vec<(f64, f64)>,
}

/// One chart: a figure against N, every side a line.
pub(crate) struct Panel {
    pub(crate) title: String,
    /// Seconds or bytes.
    pub(crate) unit: Unit,
    pub(crate) series: Vec<Series>,
}

const PANEL_W: f64 = 390.0;
const PANEL_H: f64 = 310.0;
/// Room above the panels for the title and the legend.
const TOP: f64 = 62.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 18.0;
const ABOVE: f64 = 30.0;
const BELOW: f64 = 48.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The panels side by side, one legend for all (from the first panel's
/// series).
pub(crate) fn svg(title: &str, panels: &[Panel]) -> String {
    let width = PANEL_W * panels.len().max(1) as f64;
    let height = TOP + PANEL_H;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="12" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    if let Some(first) = panels.first() {
        for (i, series) in first.series.iter().enumerate() {
            let x = 14.0 + 190.0 * i as f64;
            let _ = writeln!(
                out,
                r#"<line x1="{x}" y1="43" x2="{}" y2="43" stroke="{}" stroke-width="2.5"/><circle cx="{}" cy="43" r="3" fill="{}"/><text x="{}" y="47">{}</text>"#,
                x + 28.0,
                series.color,
                x + 14.0,
                series.color,
                x + 34.0,
                escape(&series.name)
            );
        }
    }
    for (i, panel) in panels.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<g transform="translate({},{TOP})">"#,
            PANEL_W * i as f64
        );
        out.push_str(&draw(panel));
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// Values in the axis's unit: seconds, or MiB for bytes.
fn scaled(unit: Unit, value: f64) -> f64 {
    match unit {
        Unit::Bytes => value / (1024.0 * 1024.0),
        _ => value,
    }
}

/// A decade's label: `1 ms`, `10 s`, `100 MiB`.
fn label(unit: Unit, value: f64) -> String {
    let whole = |v: f64| {
        if v >= 1.0 {
            format!("{v:.0}")
        } else {
            format!("{v}")
        }
    };
    match unit {
        Unit::Bytes => format!("{} MiB", whole(value)),
        _ if value >= 1.0 => format!("{} s", whole(value)),
        _ if value >= 1e-3 => format!("{} ms", whole(value * 1e3)),
        _ => format!("{} µs", whole(value * 1e6)),
    }
}

fn draw(panel: &Panel) -> String {
    let mut out = String::new();
    let (x0, x1) = (LEFT, PANEL_W - RIGHT);
    let (y0, y1) = (ABOVE, PANEL_H - BELOW);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="18" text-anchor="middle" font-weight="bold">{}</text>"#,
        (x0 + x1) / 2.0,
        escape(&panel.title)
    );
    let points: Vec<(f64, f64)> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .map(|(x, y)| (x, scaled(panel.unit, y)))
        .filter(|&(x, y)| x > 0.0 && y > 0.0)
        .collect();
    if points.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">not measured</text>"#,
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0
        );
        return out;
    }
    let fold = |pick: fn(&(f64, f64)) -> f64, f: fn(f64, f64) -> f64, init: f64| {
        points.iter().map(pick).fold(init, f)
    };
    let (min_x, max_x) = (
        fold(|p| p.0, f64::min, f64::INFINITY),
        fold(|p| p.0, f64::max, 0.0),
    );
    let (min_y, max_y) = (
        fold(|p| p.1, f64::min, f64::INFINITY),
        fold(|p| p.1, f64::max, 0.0),
    );
    // x: the ladder with a little room each side; y: whole decades.
    let pad = ((max_x / min_x).log10() * 0.06).max(0.05);
    let (lx0, lx1) = (min_x.log10() - pad, max_x.log10() + pad);
    let ly0 = min_y.log10().floor();
    let ly1 = max_y.log10().ceil().max(ly0 + 1.0);
    let px = |x: f64| x0 + (x.log10() - lx0) / (lx1 - lx0) * (x1 - x0);
    let py = |y: f64| y1 - (y.log10() - ly0) / (ly1 - ly0) * (y1 - y0);

    for decade in (ly0 as i32)..=(ly1 as i32) {
        let value = 10f64.powi(decade);
        let y = py(value);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ccc"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            y + 4.0,
            label(panel.unit, value)
        );
        if decade < ly1 as i32 {
            for minor in [2.0, 5.0] {
                let y = py(value * minor);
                let _ = writeln!(
                    out,
                    r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/>"##
                );
            }
        }
    }
    let mut ticks: Vec<f64> = points.iter().map(|p| p.0).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for n in ticks {
        let x = px(n);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            y1 + 16.0,
            Unit::Count.format(n)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">running children N</text>"#,
        (x0 + x1) / 2.0,
        y1 + 36.0
    );
    for series in &panel.series {
        let coords: Vec<String> = series
            .points
            .iter()
            .map(|&(x, y)| (x, scaled(panel.unit, y)))
            .filter(|&(x, y)| x > 0.0 && y > 0.0)
            .map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if coords.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"/>"#,
            coords.join(" "),
            series.color
        );
        for point in &coords {
            let (cx, cy) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                out,
                r#"<circle cx="{cx}" cy="{cy}" r="3.5" fill="{}"/>"#,
                series.color
            );
        }
    }
    out
}
