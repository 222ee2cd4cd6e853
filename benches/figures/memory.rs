//! Memory per running handle: 2,000 concurrent `sleep` children, parent
//! RSS delta / 2,000, against raw tokio::process children with a reader
//! task per pipe.
//!
//! Each measurement runs in a fresh process (this bench binary started
//! again with `--probe-memory`), so that memory freed by one side is not
//! reused by the other and the delta is what the children cost.
//!
//! The probe also counts the live heap ([`crate::heap`]): bytes and
//! allocations per handle, and the allocation sizes each handle holds,
//! printed beside the figure. A third probe, `actor`, starts the same
//! number of idle ractor actors (no state, linked to a supervisor as a
//! process actor is): what ractor alone costs per actor, the floor of one
//! actor per process.

use std::process::Command;
use std::time::Duration;

use procward::{Registry, RegistryConfig, SpawnRequest};

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::harness::{Row, Samples, Target, Unit};
use crate::{Opts, heap, procfs, raw};

/// Concurrent children per measurement.
pub(crate) const CHILDREN: usize = 2_000;
/// The flag that makes the bench binary a probe.
pub(crate) const PROBE_FLAG: &str = "--probe-memory";
/// Time for readers and watchers to park before memory is read.
const SETTLE: Duration = Duration::from_millis(300);

/// Runs in the probe process: starts [`CHILDREN`] children on `side`
/// (`procward` or `raw`, or as many idle actors for `actor`), prints what
/// they cost ([`report`]), kills and reaps them all.
pub(crate) fn probe(side: &str) {
    // procward holds 3 descriptors per child (2 pipes and the pidfd); raw
    // tokio::process 3 at most. Room for more, should that grow.
    let (before, now) = procfs::ensure_fd_limit((CHILDREN * 5 + 256) as u64);
    if before != now {
        eprintln!("  raised RLIMIT_NOFILE from {before:?} to {now:?}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    heap::start();
    runtime.block_on(async {
        match side {
            "procward" => procward_side().await,
            "actor" => actor_side().await,
            _ => raw_side().await,
        }
    });
    assert!(
        procfs::children().is_empty(),
        "children left: {:?}",
        procfs::children()
    );
}

/// Prints the live heap's sizes per handle on stderr, then the line
/// [`run_probe`] reads: RSS and descriptor deltas, heap bytes and
/// allocations per handle.
fn report(rss: (u64, u64), fds: (usize, usize), heap: (heap::Live, heap::Live)) {
    report_kernel();
    let (bytes, allocations, sizes) = heap.1.per_handle(&heap.0, CHILDREN);
    let sizes: Vec<String> = sizes
        .iter()
        .map(|(size, per)| format!("{per:.2}×{size}"))
        .collect();
    eprintln!(
        "    live allocations per handle (count×bytes): {}",
        sizes.join(" ")
    );
    println!(
        "{} {} {bytes} {allocations}",
        rss.1 as i64 - rss.0 as i64,
        fds.1 as i64 - fds.0 as i64
    );
}

/// Kernel memory taken at the first call, the second prints what grew
/// since, per handle (the whole machine's slab caches: other work moves it
/// too; the children's own kernel memory is in it).
fn report_kernel() {
    static BEFORE: std::sync::OnceLock<std::collections::BTreeMap<String, i64>> =
        std::sync::OnceLock::new();
    let Some(before) = BEFORE.get() else {
        let _ = BEFORE.set(procfs::kernel_memory());
        return;
    };
    let mut grown: Vec<(String, i64)> = procfs::kernel_memory()
        .into_iter()
        .map(|(cache, bytes)| {
            let delta = bytes - before.get(&cache).copied().unwrap_or(0);
            (cache, delta)
        })
        .filter(|(_, delta)| delta.abs() >= (CHILDREN * 16) as i64)
        .collect();
    grown.sort_by_key(|(_, delta)| -delta);
    let total: i64 = grown.iter().map(|(_, d)| d).sum();
    let caches: Vec<String> = grown
        .iter()
        .take(12)
        .map(|(cache, d)| format!("{cache} {}", d / CHILDREN as i64))
        .collect();
    eprintln!(
        "    kernel memory per handle: {} B ({})",
        total / CHILDREN as i64,
        caches.join(", ")
    );
}

/// An actor that does nothing: ractor's own cost per actor.
struct Idle;

/// What an idle actor is sent: never anything.
#[derive(Debug)]
struct Nothing;

#[cfg(feature = "cluster")]
impl ractor::Message for Nothing {}

impl Actor for Idle {
    type Msg = Nothing;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Nothing>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    /// As a supervisor, outlives its children (the default stops).
    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<Nothing>,
        _: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

async fn actor_side() {
    let (supervisor, supervisor_task) = Actor::spawn(None, Idle, ()).await.expect("supervisor");
    let start = |n: usize| {
        let supervisor = supervisor.get_cell();
        async move {
            let mut actors = Vec::with_capacity(n);
            for _ in 0..n {
                let (actor, _) = Actor::spawn_linked(None, Idle, (), supervisor.clone())
                    .await
                    .expect("idle actor");
                actors.push(actor);
            }
            actors
        }
    };
    let warm = start(32).await;
    for actor in warm {
        actor.stop(None);
    }
    tokio::time::sleep(SETTLE).await;
    let mut actors = Vec::with_capacity(CHILDREN);
    report_kernel();
    let (rss0, fds0, heap0) = (procfs::rss_bytes(), procfs::open_fds(), heap::live());
    actors.extend(start(CHILDREN).await);
    tokio::time::sleep(SETTLE).await;
    report(
        (rss0, procfs::rss_bytes()),
        (fds0, procfs::open_fds()),
        (heap0, heap::live()),
    );
    supervisor.stop(None);
    let _ = supervisor_task.await;
    drop(actors);
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
    report_kernel();
    let (rss0, fds0, heap0) = (procfs::rss_bytes(), procfs::open_fds(), heap::live());
    for _ in 0..CHILDREN {
        registry
            .spawn(SpawnRequest::argv(["sleep", "30"]))
            .await
            .expect("spawn");
    }
    tokio::time::sleep(SETTLE).await;
    report(
        (rss0, procfs::rss_bytes()),
        (fds0, procfs::open_fds()),
        (heap0, heap::live()),
    );
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
    report_kernel();
    let (rss0, fds0, heap0) = (procfs::rss_bytes(), procfs::open_fds(), heap::live());
    let children: Vec<raw::Running> = (0..CHILDREN)
        .map(|_| raw::Running::spawn(raw::command(&["sleep", "30"])))
        .collect();
    tokio::time::sleep(SETTLE).await;
    report(
        (rss0, procfs::rss_bytes()),
        (fds0, procfs::open_fds()),
        (heap0, heap::live()),
    );
    for child in children {
        child.kill().await;
    }
}

/// What one probe measured, per child (or per actor).
#[derive(Default)]
struct Probe {
    rss: Samples,
    fds: Samples,
    heap: Samples,
    allocations: Samples,
}

/// Runs one probe process and adds what it measured to `into`; passes on
/// its heap composition line.
fn run_probe(side: &str, into: &mut Probe) {
    let exe = std::env::current_exe().expect("current exe");
    let output = Command::new(exe)
        .args([PROBE_FLAG, side])
        .output()
        .expect("starting the memory probe");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "memory probe {side} failed: {stderr}\n{stdout}",
    );
    for line in stderr
        .lines()
        .filter(|l| l.contains("live allocations") || l.contains("kernel memory"))
    {
        eprintln!("  {side}:{line}");
    }
    let mut numbers = stdout
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(|n| n.parse::<f64>().expect("probe output"));
    let mut next = |what: &str| numbers.next().unwrap_or_else(|| panic!("no {what}"));
    let n = CHILDREN as f64;
    into.rss.push(next("rss delta") / n);
    into.fds.push(next("fd delta") / n);
    into.heap.push(next("heap bytes"));
    into.allocations.push(next("heap allocations"));
}

pub(crate) fn memory(opts: &Opts) -> Vec<Row> {
    let (mut pw, mut raw, mut actor) = (Probe::default(), Probe::default(), Probe::default());
    for round in 0..opts.rounds(3) {
        let mut sides = [
            ("procward", &mut pw),
            ("raw", &mut raw),
            ("actor", &mut actor),
        ];
        sides.rotate_left(round % 3);
        for (side, into) in sides {
            run_probe(side, into);
        }
    }
    eprintln!(
        "  descriptors per child: procward {:.2}, raw {:.2}",
        pw.fds.median(),
        raw.fds.median()
    );
    for (side, probe) in [("procward", &pw), ("raw", &raw), ("idle actor", &actor)] {
        eprintln!(
            "  {side}: heap {:.0} B in {:.1} allocations per handle, RSS {:.0} B",
            probe.heap.median(),
            probe.allocations.median(),
            probe.rss.median()
        );
    }
    vec![
        Row::new(
            format!("RSS per running handle ({CHILDREN} `sleep`s)"),
            Unit::Bytes,
            pw.rss,
        )
        .baseline("tokio::process child + 2 reader tasks", raw.rss)
        .paired()
        .target(Target::Absolute(8.0 * 1024.0), "≤ 8 KiB"),
        Row::new(
            format!("heap per running handle ({CHILDREN} `sleep`s)"),
            Unit::Bytes,
            pw.heap,
        )
        .baseline("an idle ractor actor, linked", actor.heap)
        .paired(),
        Row::new(
            format!("RSS per idle ractor actor ({CHILDREN}, linked)"),
            Unit::Bytes,
            actor.rss,
        ),
    ]
}
