//! What the `scale` group prints and draws: the rows with the issues'
//! targets, the whole ladder as a table, and the SVG plot.

use std::path::PathBuf;

use super::{AFTER, Measured, SHUTDOWN_GRACE_MS, Step};
use crate::Opts;
use crate::harness::{Row, Samples, Target, Unit};
use crate::plot::{Panel, Series};

pub(super) fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |s| format!("{s:.2} s"))
}

fn one(value: Option<f64>) -> Samples {
    let mut samples = Samples::default();
    if let Some(value) = value {
        samples.push(value);
    }
    samples
}

fn all(values: &[f64]) -> Samples {
    let mut samples = Samples::default();
    for &value in values {
        samples.push(value);
    }
    samples
}

/// Bursts as children spawned per second.
fn spawn_rates(m: &Measured) -> Samples {
    all(&m.spawn.iter().map(|s| m.n as f64 / s).collect::<Vec<_>>())
}

/// The step's samples of a figure, or none when the side measured none.
fn measured<T>(m: &Measured, figure: impl Fn(&Measured) -> T) -> Option<T> {
    (m.note.is_none() || !m.spawn.is_empty()).then(|| figure(m))
}

/// The rows with targets: issue 12's at 1,000 children, issue 20's at the
/// top step.
pub(super) fn rows(steps: &[Step]) -> Vec<Row> {
    let mut rows = Vec::new();
    let grace = SHUTDOWN_GRACE_MS as f64 / 1e3;
    if let Some(step) = steps.iter().find(|step| step.n == 1_000) {
        let n = step.n;
        for (side, m) in [("serve", &step.serve), ("library", &step.library)] {
            rows.push(
                Row::new(
                    format!("scale {n}: `kill_owner` until all terminal, {side}"),
                    Unit::Seconds,
                    one(m.kill),
                )
                .baseline("tokio::process kill + wait all", one(step.raw.kill))
                .target(Target::Absolute(1.0), "≤ 1 s"),
            );
            rows.push(
                Row::new(
                    format!("scale {n}: unrelated poll during `kill_owner`, {side}"),
                    Unit::Seconds,
                    all(&m.kill_polls),
                )
                .target(Target::Absolute(10e-3), "≤ 10 ms p99")
                .p99(),
            );
        }
        rows.push(
            Row::new(
                format!("scale {n}: shutdown with {n} running, serve (close stdin to exit)"),
                Unit::Seconds,
                one(step.serve.shutdown),
            )
            .baseline("tokio::process kill + wait all", one(step.raw.shutdown))
            .target(
                Target::Absolute(grace + 1.0),
                format!("≤ grace {grace} s + 1 s"),
            ),
        );
        rows.push(
            Row::new(
                format!("scale {n}: shutdown with {n} running, library"),
                Unit::Seconds,
                one(step.library.shutdown),
            )
            .baseline("tokio::process kill + wait all", one(step.raw.shutdown))
            .target(Target::Absolute(1.0), "≤ 1 s (no grace)"),
        );
        rows.push(
            Row::new(
                format!(
                    "scale {n}: unrelated poll during shutdown, library ({} of {} answered with an error)",
                    step.library.shutdown_poll_errors,
                    step.library.shutdown_polls.len()
                ),
                Unit::Seconds,
                all(&step.library.shutdown_polls),
            )
            .target(Target::None, "≤ 10 ms p99; not judged on errors")
            .p99(),
        );
    }
    let Some(top) = steps.last() else {
        return rows;
    };
    let n = top.n;
    let (serve, library, raw) = (&top.serve, &top.library, &top.raw);
    let per_child = |growth: f64| growth / n as f64;
    rows.extend([
        Row::new(
            format!("scale {n}: burst spawn, serve"),
            Unit::PerSec,
            spawn_rates(serve),
        )
        .baseline("tokio::process spawn loop", spawn_rates(raw))
        .paired()
        .target(Target::Ratio(0.8), "≥ 0.80×"),
        Row::new(
            format!("scale {n}: burst spawn time, serve"),
            Unit::Seconds,
            one(serve.first_spawn()),
        )
        .baseline("tokio::process spawn loop", one(raw.first_spawn()))
        .target(Target::Absolute(5.0), "≤ 5 s"),
        Row::new(
            format!("scale {n}: burst spawn, library"),
            Unit::PerSec,
            spawn_rates(library),
        )
        .baseline("tokio::process spawn loop", spawn_rates(raw))
        .paired(),
        Row::new(
            format!("scale {n}: server RSS growth at peak"),
            Unit::Bytes,
            one(measured(serve, Measured::growth_peak)),
        )
        .baseline("tokio::process, same process", one(Some(raw.growth_peak())))
        .target(Target::Absolute(100.0 * 1024.0 * 1024.0), "≤ 100 MiB"),
        Row::new(
            format!("scale {n}: server RSS per child at peak"),
            Unit::Bytes,
            one(measured(serve, |m| per_child(m.growth_peak()))),
        )
        .baseline(
            "library, same burst",
            one(measured(library, |m| per_child(m.growth_peak()))),
        )
        .target(Target::Absolute(16.0 * 1024.0), "≤ 16 KiB"),
        Row::new(
            format!(
                "scale {n}: server RSS per child {} s after the burst",
                AFTER.as_secs()
            ),
            Unit::Bytes,
            one(measured(serve, |m| per_child(m.growth_after()))),
        )
        .baseline(
            "library, same burst",
            one(measured(library, |m| per_child(m.growth_after()))),
        )
        .target(Target::Absolute(16.0 * 1024.0), "≤ 16 KiB"),
        Row::new(
            format!("scale {n}: server threads at peak"),
            Unit::Count,
            one(measured(serve, |m| m.threads_peak)),
        )
        .baseline("tokio::process, same process", one(Some(raw.threads_peak))),
        Row::new(
            format!("scale {n}: server descriptors per child"),
            Unit::Count,
            one(measured(serve, |m| m.fds_per_child)),
        )
        .baseline("tokio::process", one(Some(raw.fds_per_child)))
        .target(Target::Absolute(3.0), "≤ 3"),
        Row::new(
            format!("scale {n}: `kill_owner` until all terminal, serve"),
            Unit::Seconds,
            one(serve.kill),
        )
        .baseline("tokio::process kill + wait all", one(raw.kill))
        .target(Target::Absolute(2.0), "≤ 2 s"),
        Row::new(
            format!("scale {n}: unrelated poll during `kill_owner`, serve"),
            Unit::Seconds,
            all(&serve.kill_polls),
        )
        .target(Target::Absolute(10e-3), "≤ 10 ms p99")
        .p99(),
        Row::new(
            format!("scale {n}: shutdown with {n} running, serve"),
            Unit::Seconds,
            one(serve.shutdown),
        )
        .baseline("tokio::process kill + wait all", one(raw.shutdown))
        .target(
            Target::Absolute(grace + 2.0),
            format!("≤ grace {grace} s + 2 s"),
        ),
        Row::new(
            format!("scale {n}: processes left after the server exited"),
            Unit::Count,
            one(measured(serve, |m| m.left as f64)),
        )
        .target(Target::Absolute(0.0), "none"),
    ]);
    rows
}

/// The whole ladder, one column per step.
pub(super) fn ladder_table(steps: &[Step]) -> String {
    type Cell = fn(&Measured) -> Option<String>;
    fn time(value: Option<f64>) -> Option<String> {
        value.map(|s| Unit::Seconds.format(s))
    }
    fn p99(values: &[f64]) -> Option<String> {
        (!values.is_empty()).then(|| Unit::Seconds.format(all(values).percentile(0.99)))
    }
    let lines: [(&str, Cell); 12] = [
        ("burst spawn (first; second)", |m| {
            (!m.spawn.is_empty()).then(|| {
                m.spawn
                    .iter()
                    .map(|s| Unit::Seconds.format(*s))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        }),
        ("RSS growth at peak", |m| {
            (m.rss_peak > 0.0).then(|| Unit::Bytes.format(m.growth_peak()))
        }),
        ("RSS growth after the burst (raw 3 s, others 12 s)", |m| {
            (m.rss_peak > 0.0).then(|| Unit::Bytes.format(m.growth_after()))
        }),
        ("RSS per child at peak; after", |m| {
            (m.rss_peak > 0.0).then(|| {
                format!(
                    "{}; {}",
                    Unit::Bytes.format(m.growth_peak() / m.n as f64),
                    Unit::Bytes.format(m.growth_after() / m.n as f64)
                )
            })
        }),
        ("threads before → peak → after", |m| {
            (m.threads_peak > 0.0).then(|| {
                format!(
                    "{} → {} → {}",
                    m.threads_before, m.threads_peak, m.threads_after
                )
            })
        }),
        ("descriptors per child", |m| {
            (m.rss_peak > 0.0).then(|| format!("{:.2}", m.fds_per_child))
        }),
        ("kill all: answered; all waits returned", |m| {
            Some(format!("{}; {}", time(m.kill_answered)?, time(m.kill)?))
        }),
        ("unrelated poll during the kill, p99 (n)", |m| {
            Some(format!("{} ({})", p99(&m.kill_polls)?, m.kill_polls.len()))
        }),
        ("shutdown with N running", |m| time(m.shutdown)),
        ("waits answered `killed` at shutdown", |m| {
            m.shutdown_waits_killed.map(|k| format!("{k} of {}", m.n))
        }),
        ("unrelated poll during shutdown, p99 (n, errors)", |m| {
            Some(format!(
                "{} ({}, {})",
                p99(&m.shutdown_polls)?,
                m.shutdown_polls.len(),
                m.shutdown_poll_errors
            ))
        }),
        ("processes left behind", |m| Some(m.left.to_string())),
    ];
    let mut out = String::from("| figure | side |");
    for step in steps {
        out.push_str(&format!(" N = {} |", step.n));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(steps.len()));
    for (figure, cell) in lines {
        for (side, pick) in [
            ("raw", (|s: &Step| &s.raw) as fn(&Step) -> &Measured),
            ("library", |s: &Step| &s.library),
            ("serve", |s: &Step| &s.serve),
        ] {
            let cells: Vec<String> = steps
                .iter()
                .map(|step| cell(pick(step)).unwrap_or_else(|| "—".to_owned()))
                .collect();
            if cells.iter().all(|c| c == "—") {
                continue;
            }
            out.push_str(&format!("\n| {figure} | {side} | {} |", cells.join(" | ")));
        }
    }
    for step in steps {
        for (side, m) in [
            ("raw", &step.raw),
            ("library", &step.library),
            ("serve", &step.serve),
        ] {
            if let Some(note) = &m.note {
                out.push_str(&format!("\n\n{side} at N = {}: {note}", step.n));
            }
        }
    }
    out
}

/// Draws spawn time, kill time and RSS growth against N, each side a line.
pub(super) fn write_plot(steps: &[Step], opts: &Opts) {
    type Side = fn(&Step) -> &Measured;
    let sides: [(&str, &str, Side); 3] = [
        ("procward serve", "#d62728", |s| &s.serve),
        ("procward library", "#1f77b4", |s| &s.library),
        ("raw tokio::process", "#7f7f7f", |s| &s.raw),
    ];
    let series = |value: fn(&Measured) -> Option<f64>| -> Vec<Series> {
        sides
            .iter()
            .map(|(name, color, pick)| Series {
                name: (*name).to_owned(),
                color: (*color).to_owned(),
                points: steps
                    .iter()
                    .filter_map(|step| Some((step.n as f64, value(pick(step))?)))
                    .filter(|&(_, y)| y > 0.0)
                    .collect(),
            })
            .collect()
    };
    let panels = [
        Panel {
            title: "Burst spawn of N (until all answered)".to_owned(),
            unit: Unit::Seconds,
            series: series(|m| m.first_spawn()),
        },
        Panel {
            title: "Kill all N (until all terminal)".to_owned(),
            unit: Unit::Seconds,
            series: series(|m| m.kill),
        },
        Panel {
            title: "RSS growth at peak".to_owned(),
            unit: Unit::Bytes,
            series: series(|m| (m.rss_peak > 0.0).then(|| m.growth_peak())),
        },
    ];
    let svg = crate::plot::svg(
        "procward at scale: N running `sleep` children (log–log)",
        &panels,
    );
    let path = match (&opts.scale_svg, opts.quick || opts.scale_ladder.is_some()) {
        (Some(path), _) => path.clone(),
        (None, false) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/scale.svg"),
        (None, true) => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scale.svg"),
    };
    match std::fs::write(&path, svg) {
        Ok(()) => eprintln!("  plot written to {}", path.display()),
        Err(err) => eprintln!("  could not write {}: {err}", path.display()),
    }
}
