//! Memory per running handle: 2,000 concurrent `sleep` children, parent
//! RSS delta / 2,000, against raw tokio::process children with a reader
//! task per pipe.
//!
//! Each measurement runs in a fresh process (this bench binary started
//! again with `--probe-memory`), so that memory freed by one side is not
//! reused by the other and the delta is what the children cost.

use std::process::Command;
use std::time::Duration;

use procward::{Registry, RegistryConfig, SpawnRequest};

use crate::harness::{Row, Samples, Target, Unit};
use crate::{Opts, procfs, raw};

/// Concurrent children per measurement.
pub(crate) const CHILDREN: usize = 2_000;
/// The flag that makes the bench binary a probe.
pub(crate) const PROBE_FLAG: &str = "--probe-memory";
/// Time for readers and watchers to park before memory is read.
const SETTLE: Duration = Duration::from_millis(300);

/// Runs in the probe process: starts [`CHILDREN`] children on `side`
/// (`procward` or `raw`), prints `rss_delta fds_delta`, kills and reaps
/// them all.
pub(crate) fn probe(side: &str) {
    // procward holds 4 descriptors per child (2 pipes, the pidfd and the
    // watcher's duplicate of it); raw tokio::process 3 at most.
    let (before, now) = procfs::ensure_fd_limit((CHILDREN * 5 + 256) as u64);
    if before != now {
        eprintln!("  raised RLIMIT_NOFILE from {before:?} to {now:?}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        match side {
            "procward" => procward_side().await,
            _ => raw_side().await,
        }
    });
    assert!(
        procfs::children().is_empty(),
        "children left: {:?}",
        procfs::children()
    );
}

fn report(rss: (u64, u64), fds: (usize, usize)) {
    println!(
        "{} {}",
        rss.1 as i64 - rss.0 as i64,
        fds.1 as i64 - fds.0 as i64
    );
}

async fn procward_side() {
    let registry = Registry::start(RegistryConfig::default().max_handles(CHILDREN + 64))
        .await
        .expect("registry start");
    // Warm-up: runtime threads, ractor, the allocator's arenas.
    let mut warm = Vec::new();
    for _ in 0..32 {
        warm.push(
            registry
                .spawn(SpawnRequest::argv(["sleep", "30"]))
                .await
                .expect("spawn"),
        );
    }
    for spawned in warm {
        registry.release(spawned.handle_id).await.expect("release");
    }
    tokio::time::sleep(SETTLE).await;
    let (rss0, fds0) = (procfs::rss_bytes(), procfs::open_fds());
    for _ in 0..CHILDREN {
        registry
            .spawn(SpawnRequest::argv(["sleep", "30"]))
            .await
            .expect("spawn");
    }
    tokio::time::sleep(SETTLE).await;
    report((rss0, procfs::rss_bytes()), (fds0, procfs::open_fds()));
    registry.shutdown().await.expect("registry shutdown");
}

async fn raw_side() {
    let warm: Vec<raw::Running> = (0..32)
        .map(|_| raw::Running::spawn(raw::command(&["sleep", "30"])))
        .collect();
    for child in warm {
        child.kill().await;
    }
    tokio::time::sleep(SETTLE).await;
    let (rss0, fds0) = (procfs::rss_bytes(), procfs::open_fds());
    let children: Vec<raw::Running> = (0..CHILDREN)
        .map(|_| raw::Running::spawn(raw::command(&["sleep", "30"])))
        .collect();
    tokio::time::sleep(SETTLE).await;
    report((rss0, procfs::rss_bytes()), (fds0, procfs::open_fds()));
    for child in children {
        child.kill().await;
    }
}

/// Runs one probe process; returns bytes and descriptors per child.
fn run_probe(side: &str) -> (f64, f64) {
    let exe = std::env::current_exe().expect("current exe");
    let output = Command::new(exe)
        .args([PROBE_FLAG, side])
        .output()
        .expect("starting the memory probe");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "memory probe {side} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut numbers = stdout
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(|n| n.parse::<f64>().expect("probe output"));
    let rss = numbers.next().expect("rss delta");
    let fds = numbers.next().expect("fd delta");
    (rss / CHILDREN as f64, fds / CHILDREN as f64)
}

pub(crate) fn memory(opts: &Opts) -> Vec<Row> {
    let (mut pw, mut raw) = (Samples::default(), Samples::default());
    let (mut pw_fds, mut raw_fds) = (Samples::default(), Samples::default());
    for round in 0..opts.rounds(3) {
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let (bytes, fds) = run_probe("procward");
                pw.push(bytes);
                pw_fds.push(fds);
            } else {
                let (bytes, fds) = run_probe("raw");
                raw.push(bytes);
                raw_fds.push(fds);
            }
        }
    }
    eprintln!(
        "  descriptors per child: procward {:.2}, raw {:.2}",
        pw_fds.median(),
        raw_fds.median()
    );
    vec![
        Row::new(
            format!("RSS per running handle ({CHILDREN} `sleep`s)"),
            Unit::Bytes,
            pw,
        )
        .baseline("tokio::process child + 2 reader tasks", raw)
        .paired()
        .target(Target::Absolute(8.0 * 1024.0), "≤ 8 KiB"),
    ]
}
