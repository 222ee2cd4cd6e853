//! Samples, their statistics, and the table every figure is printed in.

use std::fmt::Write as _;
use std::time::Duration;

/// What a figure's numbers measure, for formatting and for which way is
/// better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Operations per second (higher is better).
    PerSec,
    /// Bytes per second, printed in GB/s (higher is better).
    BytesPerSec,
    /// A duration in seconds, printed in µs or ms (lower is better).
    Seconds,
    /// Bytes, printed in KiB or MiB (lower is better).
    Bytes,
    /// A count (threads, descriptors, processes left), printed whole or
    /// with two decimals (lower is better).
    Count,
}

impl Unit {
    fn higher_is_better(self) -> bool {
        matches!(self, Unit::PerSec | Unit::BytesPerSec)
    }

    pub(crate) fn format(self, value: f64) -> String {
        match self {
            Unit::PerSec => format!("{}/s", thousands(value)),
            Unit::BytesPerSec => format!("{:.2} GB/s", value / 1e9),
            Unit::Seconds if value < 1e-3 => format!("{:.1} µs", value * 1e6),
            Unit::Seconds if value < 1.0 => format!("{:.2} ms", value * 1e3),
            Unit::Seconds => format!("{value:.2} s"),
            Unit::Bytes if value < 1024.0 * 1024.0 => format!("{:.1} KiB", value / 1024.0),
            Unit::Bytes => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
            Unit::Count if value.fract() == 0.0 => thousands(value),
            Unit::Count => format!("{value:.2}"),
        }
    }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The samples of one side of a figure, one per round (or per operation for
/// latencies).
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples(Vec<f64>);

impl Samples {
    pub(crate) fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    pub(crate) fn push_duration(&mut self, elapsed: Duration) {
        self.0.push(elapsed.as_secs_f64());
    }

    pub(crate) fn values(&self) -> &[f64] {
        &self.0
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The value below which `p` (0..=1) of the samples lie, nearest rank.
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        let sorted = self.sorted();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = (p * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub(crate) fn median(&self) -> f64 {
        let sorted = self.sorted();
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    pub(crate) fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub(crate) fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
}

/// Which statistic of the samples a figure is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    Median,
    P99,
}

/// A target a figure must meet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// procward / baseline ≥ this (for rates) or ≤ this (for costs).
    Ratio(f64),
    /// The procward figure itself ≥ this (rates) or ≤ this (costs).
    Absolute(f64),
    /// Reported only.
    None,
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) unit: Unit,
    pub(crate) stat: Stat,
    pub(crate) procward: Samples,
    pub(crate) baseline: Option<(String, Samples)>,
    pub(crate) target: Target,
    /// How the target reads in the table.
    pub(crate) target_text: String,
    /// Sample `i` of both sides comes from the same round: the ratio is
    /// then the median of the per-round ratios, which cancels the drift
    /// of a shared machine better than a ratio of medians.
    pub(crate) paired: bool,
}

impl Row {
    pub(crate) fn new(figure: impl Into<String>, unit: Unit, procward: Samples) -> Self {
        Row {
            figure: figure.into(),
            unit,
            stat: Stat::Median,
            procward,
            baseline: None,
            target: Target::None,
            target_text: "report".to_owned(),
            paired: false,
        }
    }

    /// Marks the samples as taken in pairs, one of each side per round.
    pub(crate) fn paired(mut self) -> Self {
        self.paired = true;
        self
    }

    pub(crate) fn baseline(mut self, name: impl Into<String>, samples: Samples) -> Self {
        self.baseline = Some((name.into(), samples));
        self
    }

    pub(crate) fn target(mut self, target: Target, text: impl Into<String>) -> Self {
        self.target = target;
        self.target_text = text.into();
        self
    }

    pub(crate) fn p99(mut self) -> Self {
        self.stat = Stat::P99;
        self
    }

    fn headline(&self, samples: &Samples) -> f64 {
        match self.stat {
            Stat::Median => samples.median(),
            Stat::P99 => samples.percentile(0.99),
        }
    }

    /// procward's headline figure over the baseline's: the median of the
    /// per-round ratios for paired medians, else the ratio of the
    /// headline figures.
    pub(crate) fn ratio(&self) -> Option<f64> {
        let (_, baseline) = self.baseline.as_ref()?;
        if self.procward.len() == 0 || baseline.len() == 0 {
            return None;
        }
        if self.paired && self.stat == Stat::Median && baseline.len() == self.procward.len() {
            let mut ratios = Samples::default();
            for (p, b) in self.procward.values().iter().zip(baseline.values()) {
                ratios.push(p / b);
            }
            return Some(ratios.median());
        }
        Some(self.headline(&self.procward) / self.headline(baseline))
    }

    pub(crate) fn met(&self) -> Option<bool> {
        let value = match self.target {
            Target::Ratio(_) => self.ratio()?,
            Target::Absolute(_) => self.headline(&self.procward),
            Target::None => return None,
        };
        let (Target::Ratio(bound) | Target::Absolute(bound)) = self.target else {
            return None;
        };
        Some(if self.unit.higher_is_better() {
            value >= bound
        } else {
            value <= bound
        })
    }

    fn cell(&self, samples: &Samples) -> String {
        if samples.len() == 0 {
            return "not measured".to_owned();
        }
        let label = match self.stat {
            Stat::Median => "",
            Stat::P99 => "p99 ",
        };
        format!(
            "{label}{} ({}–{}, n={})",
            self.unit.format(self.headline(samples)),
            self.unit.format(samples.min()),
            self.unit.format(samples.max()),
            samples.len()
        )
    }

    /// The row as a Markdown table line.
    pub(crate) fn markdown(&self) -> String {
        let (baseline_name, baseline_cell) = match &self.baseline {
            Some((name, samples)) => (name.clone(), self.cell(samples)),
            None => ("—".to_owned(), "—".to_owned()),
        };
        let ratio = self
            .ratio()
            .map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
        let met = match self.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            self.figure,
            self.cell(&self.procward),
            baseline_name,
            baseline_cell,
            ratio,
            self.target_text,
            met
        )
    }
}

pub(crate) const TABLE_HEADER: &str = "| figure | procward median (min–max) | baseline | baseline median (min–max) | ratio | target | met |\n|---|---|---|---|---|---|---|";

/// The whole table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::from(TABLE_HEADER);
    out.push('\n');
    for row in rows {
        let _ = writeln!(out, "{}", row.markdown());
    }
    out
}

/// Runs `op` `n` times with `in_flight` of them at once (each of
/// `in_flight` tasks runs them one after another), and returns how long
/// all took.
pub(crate) async fn many<F, Fut>(n: usize, in_flight: usize, op: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = Arc::new(AtomicUsize::new(0));
    let start = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let op = op.clone();
        let next = next.clone();
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                op().await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a benchmark task panicked");
    }
    start.elapsed()
}

/// Operations per second.
pub(crate) fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}
