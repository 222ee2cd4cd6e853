//! cgroup containment beside process-group containment, in the same run:
//! the spawn rate of `/bin/true` (spawn + wait + release), and the time a
//! kill takes until terminal, for a small tree and for a 200-process tree
//! half of which left the group with `setsid`.
//!
//! Both registries run as `procward serve` does (orphan reaping, escapee
//! hunting); the process-group one has cgroups turned off. Skipped, with a
//! message, where no writable cgroup v2 hierarchy is found.

use std::time::{Duration, Instant};

use procward::{
    CgroupMode, Containment, KillRequest, Registry, RegistryConfig, SpawnRequest, Status,
};

use crate::Opts;
use crate::harness::{Row, Samples, Target, Unit, many, rate};

/// 100 `sleep`s in the group and 100 that left it with `setsid`, then the
/// shell becomes a `sleep` itself: 201 processes once it has.
const BIG_TREE: &str = "i=0; while [ $i -lt 100 ]; do sleep 300 & setsid sleep 300 & \
                        i=$((i+1)); done; exec sleep 300";

async fn registry(mode: CgroupMode) -> Option<Registry> {
    let config = RegistryConfig::default()
        .cgroup(mode)
        .reap_orphans(true)
        .kill_escapees(true)
        .max_handles(4096);
    match Registry::start(config).await {
        Ok(registry) => Some(registry),
        Err(err) => {
            eprintln!("  skipped: {err}");
            None
        }
    }
}

fn true_op(
    registry: &Registry,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + 'static {
    let registry = registry.clone();
    move || {
        let registry = registry.clone();
        Box::pin(async move {
            let spawned = registry
                .spawn(SpawnRequest::argv(["/bin/true"]))
                .await
                .expect("spawn");
            let done = registry.wait(spawned.handle_id, None).await.expect("wait");
            assert_eq!(done.snapshot.exit_code, Some(0));
            registry.release(spawned.handle_id).await.expect("release");
        })
    }
}

/// Spawn rates, cgroup and process group alternately, one sample each per
/// round.
async fn spawn_rates(
    cgroup: &Registry,
    group: &Registry,
    n: usize,
    in_flight: usize,
    rounds: usize,
) -> (Samples, Samples) {
    let (mut cg, mut pg) = (Samples::default(), Samples::default());
    many(n / 4, in_flight, true_op(cgroup)).await;
    many(n / 4, in_flight, true_op(group)).await;
    for round in 0..rounds {
        for side in [round % 2, 1 - round % 2] {
            let registry = if side == 0 { cgroup } else { group };
            let elapsed = many(n, in_flight, true_op(registry)).await;
            if side == 0 {
                cg.push(rate(n, elapsed));
            } else {
                pg.push(rate(n, elapsed));
            }
        }
    }
    (cg, pg)
}

/// Whether the tree led by `pid` has got going: its shell has forked
/// everything and runs `sleep` itself (the big tree), or has a child (the
/// small one).
fn going(pid: u32, big: bool) -> bool {
    if big {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    } else {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .is_ok_and(|c| !c.trim().is_empty())
    }
}

/// Spawns `line`, waits until it got going, kills it and returns how long
/// the kill took until terminal.
async fn kill_once(registry: &Registry, line: &str) -> Duration {
    let spawned = registry
        .spawn(SpawnRequest::shell(line))
        .await
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !going(spawned.pid, line == BIG_TREE) {
        assert!(Instant::now() < deadline, "the tree never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    let done = registry
        .kill(spawned.handle_id, KillRequest::default())
        .await
        .expect("kill");
    let elapsed = start.elapsed();
    assert_eq!(done.status, Status::Killed);
    registry.release(spawned.handle_id).await.expect("release");
    elapsed
}

pub(crate) async fn cgroup(opts: &Opts) -> Vec<Row> {
    let Some(cgroup) = registry(CgroupMode::Required).await else {
        return Vec::new();
    };
    let group = registry(CgroupMode::Off).await.expect("registry start");
    let probe = cgroup
        .spawn(SpawnRequest::argv(["/bin/true"]))
        .await
        .expect("spawn");
    assert_eq!(probe.containment, Containment::Cgroup);
    cgroup.wait(probe.handle_id, None).await.expect("wait");

    let (seq_cg, seq_pg) = spawn_rates(&cgroup, &group, 100, 1, opts.rounds(20)).await;
    let (par_cg, par_pg) = spawn_rates(&cgroup, &group, 320, 32, opts.rounds(16)).await;

    let small = "sleep 30; echo x";
    let (mut small_cg, mut small_pg) = (Samples::default(), Samples::default());
    for _ in 0..opts.rounds(40) {
        small_cg.push_duration(kill_once(&cgroup, small).await);
        small_pg.push_duration(kill_once(&group, small).await);
    }
    let mut big_cg = Samples::default();
    for _ in 0..opts.rounds(40) {
        big_cg.push_duration(kill_once(&cgroup, BIG_TREE).await);
    }
    // In a process group, the escapees keep the pipes open until the drain
    // grace (1 s) passes and the hunt finds them: a few samples say enough.
    let mut big_pg = Samples::default();
    for _ in 0..opts.rounds(5) {
        big_pg.push_duration(kill_once(&group, BIG_TREE).await);
    }
    cgroup.shutdown().await.expect("registry shutdown");
    group.shutdown().await.expect("registry shutdown");
    let big_cg_median = big_cg.clone();
    vec![
        Row::new(
            "cgroup: spawn+wait+release `/bin/true`, sequential",
            Unit::PerSec,
            seq_cg,
        )
        .baseline("same, process group", seq_pg)
        .paired()
        .target(Target::Ratio(0.80), "≥ 0.80×"),
        Row::new(
            "cgroup: spawn+wait+release `/bin/true`, 32 in flight",
            Unit::PerSec,
            par_cg,
        )
        .baseline("same, process group", par_pg)
        .paired()
        .target(Target::Ratio(0.80), "≥ 0.80×"),
        Row::new(
            "cgroup: kill `sh -c 'sleep 30; echo x'` until terminal",
            Unit::Seconds,
            small_cg,
        )
        .baseline("same, process group", small_pg)
        .target(Target::None, "report")
        .p99(),
        Row::new(
            "cgroup: kill a 201-process tree, 100 of them `setsid`, until terminal",
            Unit::Seconds,
            big_cg,
        )
        .baseline("same, process group + escapee hunt", big_pg)
        .target(Target::Absolute(20e-3), "≤ 20 ms p99")
        .p99(),
        Row::new(
            "cgroup: kill a 201-process tree, 100 of them `setsid` (median)",
            Unit::Seconds,
            big_cg_median,
        ),
    ]
}
