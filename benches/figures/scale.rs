//! `scale`: N running `sleep 600` children at once, for N on a ladder (100
//! to 5,000; to 1,000 with `--quick`). Each side spawns N in one burst and
//! keeps a wait per child, then kills them all (`kill_owner`), spawns N
//! again and shuts down with them running:
//!
//! - the library's `Registry`, in a probe process of its own (this bench
//!   started again with `--probe-scale library N`);
//! - a real `procward serve` process (the release binary, or the one
//!   `PROCWARD_SERVE_BIN` names) over stdin/stdout, with its default flags
//!   but `--max-handles` and an explicit `--shutdown-grace-ms 500`;
//! - raw `tokio::process` in a probe process: N `sleep`s with both pipes
//!   read by tasks and a wait task per child, then SIGKILL to each and a
//!   wait for all (its "shutdown" is the same kill of the second burst).
//!
//! Each side reports the burst's spawn time, RSS growth at the peak and
//! 12 s after the burst (3 s for raw), threads at the peak, descriptors per
//! child, the kill time (until answered and every wait returned), the p99
//! latency of an unrelated `poll` sent every 2 ms meanwhile, and the
//! shutdown time. N is capped so that a process holding N children stays
//! within `ulimit -n`. The ladder is printed as a table and drawn as an
//! SVG (docs/scale.svg for the full ladder).
//!
//! The bench is a child subreaper: whatever a probe or the server leaves
//! behind (even when one fails midway) comes to it and is SIGKILLed and
//! reaped; what was left is counted.

mod probe;
mod report;
mod server;

pub(crate) use probe::probe;
use report::{ladder_table, rows, secs, write_plot};
use server::serve_side;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::harness::Row;
use crate::{Opts, procfs};

/// The flag that makes the bench binary a scale probe.
pub(crate) const PROBE_FLAG: &str = "--probe-scale";
/// The number of running children per step.
const LADDER: [usize; 5] = [100, 500, 1_000, 2_000, 5_000];
/// The last step of `--quick`.
const QUICK_TOP: usize = 1_000;
/// How long after the burst the "after" RSS is read: past tokio's 10 s
/// keep-alive of idle blocking threads, so that the threads a burst grew
/// are gone and what they held shows whether memory comes back.
const AFTER: Duration = Duration::from_secs(12);
/// The same for raw tokio::process, which grows no thread.
const RAW_AFTER: Duration = Duration::from_secs(3);
/// Descriptors kept for everything but the children (runtime, pipes to
/// the server, the guard, libraries).
const RESERVE_FDS: u64 = 512;
/// Descriptors per child procward holds today (two pipes and the pidfd;
/// the "descriptors per child" row checks it), until a step measures them.
const ASSUMED_FDS_PER_CHILD: f64 = 3.0;
/// The server's `--shutdown-grace-ms` (its default, given explicitly so
/// that the shutdown target is computed from what the server ran with).
const SHUTDOWN_GRACE_MS: u64 = 500;
/// How often the unrelated poll is sent while a kill or a shutdown runs.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// How often threads and RSS are sampled during a burst.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// The longest a kill or a shutdown may take before the side is given up
/// (today's code needs minutes at 5,000 through the server).
const PHASE_DEADLINE: Duration = Duration::from_secs(900);
/// The longest the server may leave request bytes unread before the bench
/// decides it stopped reading (an in-flight bound, say) and gives up.
const STALL: Duration = Duration::from_secs(20);
/// How long the waits of the in-flight check stay pending.
const HOLD: Duration = Duration::from_secs(5);
/// The owner of the burst's children.
const OWNER: &str = "scale";
/// The owner of the handle the unrelated polls read.
const BYSTANDER: &str = "bystander";

/// What one side measured at one step. Times in seconds, memory in bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// Children per burst.
    n: usize,
    /// From the first spawn sent to the last one answered, per burst (the
    /// first burst, then the one before the shutdown).
    spawn: Vec<f64>,
    /// RSS before the first burst.
    rss_before: f64,
    /// Peak RSS (`VmHWM`) up to [`AFTER`] past the first burst.
    rss_peak: f64,
    /// RSS [`AFTER`] past the first burst.
    rss_after: f64,
    /// Threads before the first burst.
    threads_before: f64,
    /// Most threads seen from the first burst to [`AFTER`] past it.
    threads_peak: f64,
    /// Threads [`AFTER`] past the first burst.
    threads_after: f64,
    /// Open descriptors added by the first burst, per child.
    fds_per_child: f64,
    /// `kill_owner` (raw: SIGKILL to each) until answered.
    kill_answered: Option<f64>,
    /// The same, until answered and every wait has returned.
    kill: Option<f64>,
    /// Latencies of the unrelated polls sent during the kill.
    kill_polls: Vec<f64>,
    /// Shutdown with N running, until it returned (the server: until the
    /// process exited).
    shutdown: Option<f64>,
    /// Latencies of the unrelated polls sent during the shutdown, answered
    /// with a snapshot or an error.
    shutdown_polls: Vec<f64>,
    /// Of those, how many were answered with an error.
    shutdown_poll_errors: usize,
    /// Processes (zombies included) left behind once the side was done.
    left: usize,
    /// Of the waits pending at the shutdown, how many were answered
    /// `killed`.
    shutdown_waits_killed: Option<usize>,
    /// Why a part was not measured.
    note: Option<String>,
}

impl Measured {
    fn growth_peak(&self) -> f64 {
        (self.rss_peak - self.rss_before).max(0.0)
    }

    fn growth_after(&self) -> f64 {
        (self.rss_after - self.rss_before).max(0.0)
    }

    fn first_spawn(&self) -> Option<f64> {
        self.spawn.first().copied()
    }
}

/// The three sides at one step.
struct Step {
    n: usize,
    raw: Measured,
    library: Measured,
    serve: Measured,
}

/// Samples the threads of a process while a burst runs.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut threads = 0;
            while !stopping.load(Ordering::Relaxed) {
                if let Some(status) = procfs::status_of(pid) {
                    threads = threads.max(status.threads);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            threads
        });
        Sampler { stop, thread }
    }

    /// The most threads seen.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// Waits up to a second for this process to have no child, then counts
/// (and SIGKILLs and reaps) those still there.
fn left_behind() -> usize {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !procfs::children().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    procfs::kill_and_reap_children()
}

/// Fills in what the first burst cost, from the status before it and now.
fn record_burst(
    m: &mut Measured,
    before: procfs::Status,
    now: Option<procfs::Status>,
    threads_peak: u64,
) {
    let now = now.unwrap_or_default();
    m.rss_before = before.rss as f64;
    m.rss_peak = now.peak_rss as f64;
    m.rss_after = now.rss as f64;
    m.threads_before = before.threads as f64;
    m.threads_peak = threads_peak.max(now.threads) as f64;
    m.threads_after = now.threads as f64;
}

/// Runs one probe process; a probe that fails is reported, and whatever
/// it left is killed and reaped.
fn run_probe(side: &str, n: usize) -> Measured {
    let exe = std::env::current_exe().expect("current exe");
    let output = Command::new(exe)
        .args([PROBE_FLAG, side, &n.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("starting the scale probe");
    let left = procfs::kill_and_reap_children();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str::<Measured>(line).ok());
    match parsed {
        Some(mut measured) if output.status.success() => {
            measured.left += left;
            measured
        }
        _ => Measured {
            n,
            left,
            note: Some(format!("the {side} probe failed ({})", output.status)),
            ..Measured::default()
        },
    }
}

/// Kills and reaps whatever the bench's children left, however the group
/// ends (a panic included).
struct Reaper;

impl Drop for Reaper {
    fn drop(&mut self) {
        let left = procfs::kill_and_reap_children();
        if left > 0 {
            eprintln!("  killed and reaped {left} processes left behind");
        }
    }
}

pub(crate) fn scale(opts: &Opts) -> Vec<Row> {
    let _reaper = Reaper;
    procfs::become_subreaper();
    let (before, limit) = procfs::ensure_fd_limit(u64::MAX);
    let limit = limit.unwrap_or(u64::MAX);
    eprintln!(
        "  ulimit -n: {} (raised from {}); {RESERVE_FDS} kept for other descriptors",
        limit,
        before.map_or("unlimited".to_owned(), |b| b.to_string())
    );
    let ladder: Vec<usize> = match &opts.scale_ladder {
        Some(ladder) => ladder.clone(),
        None if opts.quick => LADDER.iter().copied().filter(|&n| n <= QUICK_TOP).collect(),
        None => LADDER.to_vec(),
    };
    let mut fds_per_child = ASSUMED_FDS_PER_CHILD;
    let mut steps: Vec<Step> = Vec::new();
    for (i, &wanted) in ladder.iter().enumerate() {
        let cap = (limit.saturating_sub(RESERVE_FDS) as f64 / fds_per_child) as usize;
        let n = wanted.min(cap);
        if n < wanted {
            eprintln!(
                "  {wanted} children need more descriptors than ulimit -n {limit} allows at \
                 {fds_per_child} per child: measuring {n}"
            );
        }
        if steps.last().is_some_and(|step| step.n >= n) {
            continue;
        }
        let (mut raw, mut library, mut serve) = (None, None, None);
        // Rotate the order so that drift hits every side alike.
        for k in 0..3 {
            match (i + k) % 3 {
                0 => raw = Some(run_probe("raw", n)),
                1 => library = Some(run_probe("library", n)),
                _ => serve = Some(serve_side(n)),
            }
        }
        let step = Step {
            n,
            raw: raw.unwrap_or_default(),
            library: library.unwrap_or_default(),
            serve: serve.unwrap_or_default(),
        };
        eprintln!(
            "  {n}: spawn raw {} lib {} serve {}; kill raw {} lib {} serve {}; shutdown lib {} serve {}",
            secs(step.raw.first_spawn()),
            secs(step.library.first_spawn()),
            secs(step.serve.first_spawn()),
            secs(step.raw.kill),
            secs(step.library.kill),
            secs(step.serve.kill),
            secs(step.library.shutdown),
            secs(step.serve.shutdown),
        );
        // Cap later steps by what procward was seen to hold per child.
        let measured = step.library.fds_per_child.max(step.serve.fds_per_child);
        if measured > 0.0 {
            fds_per_child = ((measured * 10.0).round() / 10.0).ceil().max(1.0);
        }
        steps.push(step);
    }
    println!("\n{}", ladder_table(&steps));
    if steps.len() >= 2 {
        write_plot(&steps, opts);
    }
    rows(&steps)
}
