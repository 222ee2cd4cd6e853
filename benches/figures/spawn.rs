//! Spawn + wait + release of `/bin/true`, one at a time and 32 in flight,
//! and the spawn rate of a registry full of finished handles.

use std::time::Instant;

use procward::{CgroupMode, Registry, RegistryConfig, SpawnRequest};
// Process-group containment, as raw tokio::process does; the `cgroup`
// group measures cgroup containment beside it.

use crate::harness::{Row, Samples, Target, Unit, many, rate};
use crate::replaced::ReplacedRegistry;
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

fn replaced_op(
    replaced: &ReplacedRegistry,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + 'static {
    let replaced = replaced.clone();
    move || {
        let replaced = replaced.clone();
        Box::pin(async move {
            let id = replaced.spawn(&[TRUE]);
            let done = replaced
                .wait(id, std::time::Duration::from_secs(60))
                .await
                .expect("replaced registry wait");
            assert_eq!(done.exit.and_then(|status| status.code()), Some(0));
            replaced.release(id);
        })
    }
}

/// `n` operations, `in_flight` at once, procward, raw and the replaced
/// registry in turn for `rounds` rounds: one throughput sample per round
/// and side.
async fn compare(registry: &Registry, n: usize, in_flight: usize, rounds: usize) -> [Samples; 3] {
    let replaced = ReplacedRegistry::default();
    let mut samples: [Samples; 3] = Default::default();
    // Warm-up: threads, allocator, the page cache of /bin/true.
    many(n / 4, in_flight, procward_op(registry, true)).await;
    many(n / 4, in_flight, raw_op()).await;
    many(n / 4, in_flight, replaced_op(&replaced)).await;
    for round in 0..rounds {
        // Rotate which side goes first, so drift hits all alike.
        for k in 0..3 {
            let side = (k + round) % 3;
            let elapsed = match side {
                0 => many(n, in_flight, procward_op(registry, true)).await,
                1 => many(n, in_flight, raw_op()).await,
                _ => many(n, in_flight, replaced_op(&replaced)).await,
            };
            samples[side].push(rate(n, elapsed));
        }
    }
    samples
}

pub(crate) async fn spawn_wait_release(opts: &Opts) -> Vec<Row> {
    let registry = Registry::start(RegistryConfig::default().cgroup(CgroupMode::Off))
        .await
        .expect("registry start");
    let [seq_pw, seq_raw, seq_old] = compare(&registry, 100, 1, opts.rounds(30)).await;
    let [par_pw, par_raw, par_old] = compare(&registry, 320, 32, opts.rounds(20)).await;
    registry.shutdown().await.expect("registry shutdown");
    let seq = "spawn+wait+release `/bin/true`, sequential";
    let par = "spawn+wait+release `/bin/true`, 32 in flight";
    vec![
        Row::new(seq, Unit::PerSec, seq_pw.clone())
            .baseline("tokio::process wait_with_output", seq_raw)
            .paired()
            .target(Target::Ratio(0.95), "≥ 0.95×"),
        Row::new(seq, Unit::PerSec, seq_pw)
            .baseline("replaced registry", seq_old)
            .paired()
            .target(Target::Ratio(1.0), "≥ 1.0×"),
        Row::new(par, Unit::PerSec, par_pw.clone())
            .baseline("tokio::process wait_with_output", par_raw)
            .paired()
            .target(Target::Ratio(1.0), "≥ 1.0×"),
        Row::new(par, Unit::PerSec, par_pw)
            .baseline("replaced registry", par_old)
            .paired()
            .target(Target::Ratio(1.0), "≥ 1.0×"),
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
