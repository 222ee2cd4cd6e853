//! Spawn + wait + release of `/bin/true`, one at a time and 32 in flight,
//! and the spawn rate of a registry full of finished handles.

use std::time::Instant;

use procward::{CgroupMode, Registry, RegistryConfig, SpawnRequest};
// Process-group containment, as raw tokio::process does; the `cgroup`
// group measures cgroup containment beside it.

use crate::harness::{Row, Samples, Target, Unit, many, rate};
use crate::{Opts, raw};

const TRUE: &str = "/bin/true";

/// One procward spawn + wait (+ release) of `/bin/true`, with capture.
async fn procward_true(registry: &Registry, release: bool) {
    let spawned = registry
        .spawn(SpawnRequest::argv([TRUE]))
        .await
        .expect("procward spawn");
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .expect("procward wait");
    assert_eq!(done.snapshot.exit_code, Some(0));
    if release {
        registry
            .release(spawned.handle_id)
            .await
            .expect("procward release");
    }
}

fn procward_op(
    registry: &Registry,
    release: bool,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + 'static {
    let registry = registry.clone();
    move || {
        let registry = registry.clone();
        Box::pin(async move { procward_true(&registry, release).await })
    }
}

fn raw_op()
-> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + 'static {
    || {
        Box::pin(async {
            raw::run_to_end(&[TRUE]).await;
        })
    }
}

/// `n` operations, `in_flight` at once, procward and raw alternately for
/// `rounds` rounds: one throughput sample per round and side.
async fn compare(
    registry: &Registry,
    n: usize,
    in_flight: usize,
    rounds: usize,
) -> (Samples, Samples) {
    let (mut procward, mut raw) = (Samples::default(), Samples::default());
    // Warm-up: threads, allocator, the page cache of /bin/true.
    many(n / 4, in_flight, procward_op(registry, true)).await;
    many(n / 4, in_flight, raw_op()).await;
    for round in 0..rounds {
        // Alternate which side goes first, so drift hits both alike.
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let elapsed = many(n, in_flight, procward_op(registry, true)).await;
                procward.push(rate(n, elapsed));
            } else {
                let elapsed = many(n, in_flight, raw_op()).await;
                raw.push(rate(n, elapsed));
            }
        }
    }
    (procward, raw)
}

pub(crate) async fn spawn_wait_release(opts: &Opts) -> Vec<Row> {
    let registry = Registry::start(RegistryConfig::default().cgroup(CgroupMode::Off))
        .await
        .expect("registry start");
    let (seq_pw, seq_raw) = compare(&registry, 100, 1, opts.rounds(30)).await;
    let (par_pw, par_raw) = compare(&registry, 320, 32, opts.rounds(20)).await;
    registry.shutdown().await.expect("registry shutdown");
    vec![
        Row::new(
            "spawn+wait+release `/bin/true`, sequential",
            Unit::PerSec,
            seq_pw,
        )
        .baseline("tokio::process wait_with_output", seq_raw)
        .paired()
        .target(Target::Ratio(0.90), "≥ 0.90×"),
        Row::new(
            "spawn+wait+release `/bin/true`, 32 in flight",
            Unit::PerSec,
            par_pw,
        )
        .baseline("tokio::process wait_with_output", par_raw)
        .paired()
        .target(Target::Ratio(0.90), "≥ 0.90×"),
    ]
}

/// A registry holding `cap` finished handles: every further spawn evicts
/// the oldest.
async fn full_registry(cap: usize) -> Registry {
    let registry = Registry::start(
        RegistryConfig::default()
            .cgroup(CgroupMode::Off)
            .max_handles(cap),
    )
    .await
    .expect("registry start");
    many(cap, 32, procward_op(&registry, false)).await;
    registry
}

/// Handles in the table (a listing also shows receipts of evicted ones).
async fn live_handles(registry: &Registry) -> usize {
    let listed = registry.list().await.expect("list");
    listed.iter().filter(|summary| !summary.evicted).count()
}

pub(crate) async fn full_registry_spawn_rate(opts: &Opts) -> Vec<Row> {
    let full_cap = opts.full_cap;
    let started = Instant::now();
    let full = full_registry(full_cap).await;
    let filled_in = started.elapsed();
    assert_eq!(live_handles(&full).await, full_cap, "the registry is full");
    eprintln!(
        "  pre-filled a registry of cap {full_cap} in {:.1} s ({:.0} spawns/s)",
        filled_in.as_secs_f64(),
        rate(full_cap, filled_in),
    );
    let small = full_registry(64).await;
    let (mut big_rates, mut small_rates) = (Samples::default(), Samples::default());
    let n = 320;
    for round in 0..opts.rounds(16) {
        for side in [round % 2, 1 - round % 2] {
            let registry = if side == 0 { &full } else { &small };
            let elapsed = many(n, 32, procward_op(registry, false)).await;
            if side == 0 {
                big_rates.push(rate(n, elapsed));
            } else {
                small_rates.push(rate(n, elapsed));
            }
        }
    }
    assert_eq!(live_handles(&full).await, full_cap);
    full.shutdown().await.expect("registry shutdown");
    small.shutdown().await.expect("registry shutdown");
    vec![
        Row::new(
            format!("spawn+wait, 32 in flight, registry full at cap {full_cap} (evicting)"),
            Unit::PerSec,
            big_rates,
        )
        .baseline("same, cap 64", small_rates)
        .paired()
        .target(Target::Ratio(0.90), "≥ 0.90×"),
    ]
}
