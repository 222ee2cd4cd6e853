//! Polls of a finished handle through the `Registry` handle (5 bytes and
//! 10 MiB of output; answered from the registry's index, with no message),
//! against the mutex registry procward replaces; a poll of a running
//! handle (one hop, to its process actor); and probes of what bounds them:
//! a bare ractor round trip, and a
//! [`SnapshotWatch`](procward::SnapshotWatch), the snapshot the process
//! actor publishes.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

use procward::{HandleId, Registry, RegistryConfig, Snapshot, SnapshotWatch, SpawnRequest};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::Opts;
use crate::harness::{Row, Samples, Target, Unit, many, rate};
use crate::replaced::ReplacedRegistry;

/// The lower bound of a locked map: snapshots behind a mutex, cloned out
/// on every poll (the registry procward replaces also decoded the output
/// on each poll: [`ReplacedRegistry`]).
#[derive(Clone, Default)]
struct MutexRegistry {
    table: Arc<Mutex<HashMap<HandleId, Snapshot>>>,
}

impl MutexRegistry {
    async fn poll(&self, id: HandleId) -> Option<Snapshot> {
        self.table.lock().expect("mutex poisoned").get(&id).cloned()
    }
}

/// The smallest ractor request: an actor that answers with a clone of the
/// snapshot it holds. A poll of a running handle is this plus an index
/// look-up and building the snapshot.
struct Holder;

/// Holder's one message: a reply port for the snapshot. A newtype, because
/// with the `cluster` feature every message implements `ractor::Message`
/// explicitly, which a foreign `RpcReplyPort` cannot.
struct Ask(RpcReplyPort<Snapshot>);

#[cfg(feature = "cluster")]
impl ractor::Message for Ask {}

impl Actor for Holder {
    type Msg = Ask;
    type State = Snapshot;
    type Arguments = Snapshot;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        snapshot: Snapshot,
    ) -> Result<Snapshot, ActorProcessingErr> {
        Ok(snapshot)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        Ask(reply): Ask,
        snapshot: &mut Snapshot,
    ) -> Result<(), ActorProcessingErr> {
        let _ = reply.send(snapshot.clone());
        Ok(())
    }
}

/// A finished handle whose stdout is what `argv` printed.
async fn finished(registry: &Registry, argv: &[&str]) -> Snapshot {
    let spawned = registry
        .spawn(SpawnRequest::argv(argv.iter().copied()))
        .await
        .expect("spawn");
    let done = registry.wait(spawned.handle_id, None).await.expect("wait");
    assert!(done.snapshot.status.is_terminal());
    done.snapshot
}

type Op = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn registry_poll(registry: &Registry, id: HandleId) -> impl Fn() -> Op + Clone + Send + 'static {
    let registry = registry.clone();
    move || {
        let registry = registry.clone();
        Box::pin(async move {
            black_box(registry.poll(id).await.expect("poll"));
        })
    }
}

fn registry_poll_shared(
    registry: &Registry,
    id: HandleId,
) -> impl Fn() -> Op + Clone + Send + 'static {
    let registry = registry.clone();
    move || {
        let registry = registry.clone();
        Box::pin(async move {
            black_box(registry.poll_shared(id).await.expect("poll_shared"));
        })
    }
}

fn mutex_poll(table: &MutexRegistry, id: HandleId) -> impl Fn() -> Op + Clone + Send + 'static {
    let table = table.clone();
    move || {
        let table = table.clone();
        Box::pin(async move {
            black_box(table.poll(id).await.expect("known handle"));
        })
    }
}

fn replaced_poll(replaced: &ReplacedRegistry, id: u64) -> impl Fn() -> Op + Clone + Send + 'static {
    let replaced = replaced.clone();
    move || {
        let replaced = replaced.clone();
        Box::pin(async move {
            black_box(replaced.poll(id).expect("known handle"));
        })
    }
}

fn holder_poll(actor: &ActorRef<Ask>) -> impl Fn() -> Op + Clone + Send + 'static {
    let actor = actor.clone();
    move || {
        let actor = actor.clone();
        Box::pin(async move {
            black_box(actor.call(Ask, None).await.expect("call"));
        })
    }
}

/// Polls per second of `op`, `n` polls by `callers` concurrent callers.
async fn polls<F>(n: usize, callers: usize, op: F) -> f64
where
    F: Fn() -> Op + Clone + Send + 'static,
{
    rate(n, many(n, callers, op).await)
}

/// Polls per second through a [`SnapshotWatch`]: each of `callers` holds
/// its own clone and reads it `n / callers` times.
async fn watch_polls(watch: &SnapshotWatch, n: usize, callers: usize) -> f64 {
    let start = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let watch = watch.clone();
        let per = n / callers;
        tasks.spawn(async move {
            for _ in 0..per {
                black_box(watch.get());
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("watch task");
    }
    rate(n - n % callers, start.elapsed())
}

pub(crate) async fn poll(opts: &Opts) -> Vec<Row> {
    let registry = Registry::start(RegistryConfig::default())
        .await
        .expect("registry start");
    let small = finished(&registry, &["printf", "hello"]).await;
    assert_eq!(small.stdout.bytes.len(), 5);
    let big = finished(&registry, &["head", "-c", "10485760", "/dev/zero"]).await;
    assert_eq!(big.stdout.bytes.len(), 10 << 20);

    let mutex = MutexRegistry::default();
    mutex
        .table
        .lock()
        .expect("mutex poisoned")
        .insert(small.handle_id, small.clone());
    let replaced = ReplacedRegistry::default();
    let old_id = replaced.spawn(&["printf", "hello"]);
    let old_done = replaced
        .wait(old_id, std::time::Duration::from_secs(60))
        .await
        .expect("replaced registry wait");
    assert_eq!(old_done.stdout, "hello");
    let (holder, holder_task) = Actor::spawn(None, Holder, small.clone())
        .await
        .expect("holder start");
    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "600"]))
        .await
        .expect("spawn");
    let watch = registry.watch(small.handle_id).await.expect("watch");
    assert_eq!(watch.get().handle_id, small.handle_id);

    let n = 80_000;
    let names = [
        "reg1", "mutex1", "reg8", "mutex8", "big1", "hold1", "hold8", "watch8", "old1", "old8",
        "run1", "shared1",
    ];
    let mut samples: HashMap<&str, Samples> = HashMap::new();
    let rounds = opts.rounds(12);
    for round in 0..=rounds {
        for k in 0..names.len() {
            // Rotate the order each round so drift hits every side alike.
            let name = names[(k + round) % names.len()];
            let value = match name {
                "reg1" => polls(n, 1, registry_poll(&registry, small.handle_id)).await,
                "shared1" => polls(n, 1, registry_poll_shared(&registry, small.handle_id)).await,
                "reg8" => polls(n, 8, registry_poll(&registry, small.handle_id)).await,
                "big1" => polls(n, 1, registry_poll(&registry, big.handle_id)).await,
                "run1" => polls(n / 4, 1, registry_poll(&registry, running.handle_id)).await,
                "mutex1" => polls(n, 1, mutex_poll(&mutex, small.handle_id)).await,
                "mutex8" => polls(n, 8, mutex_poll(&mutex, small.handle_id)).await,
                "hold1" => polls(n, 1, holder_poll(&holder)).await,
                "old1" => polls(n, 1, replaced_poll(&replaced, old_id)).await,
                "old8" => polls(n, 8, replaced_poll(&replaced, old_id)).await,
                "hold8" => polls(n, 8, holder_poll(&holder)).await,
                _ => watch_polls(&watch, n * 10, 8).await,
            };
            // Round 0 warms up.
            if round > 0 {
                samples.entry(name).or_default().push(value);
            }
        }
    }
    holder.stop(None);
    let _ = holder_task.await;
    registry
        .kill(running.handle_id, procward::KillRequest::default())
        .await
        .expect("kill");
    registry.shutdown().await.expect("registry shutdown");

    let mut take = |name: &str| samples.remove(name).unwrap_or_default();
    let reg1 = take("reg1");
    let big1 = take("big1");
    let mut big_cost = Samples::default();
    for rate in big1.values() {
        big_cost.push(1.0 / rate);
    }
    let mut small_cost = Samples::default();
    for rate in reg1.values() {
        small_cost.push(1.0 / rate);
    }
    let reg8 = take("reg8");
    let mutex8 = take("mutex8");
    replaced.release(old_id);
    let old1 = take("old1");
    vec![
        Row::new("poll, finished, 5 B, 1 caller", Unit::PerSec, reg1.clone())
            .baseline("replaced registry, 1 caller", old1.clone())
            .paired()
            .target(Target::Ratio(1.0), "≥ 1.0×"),
        Row::new(
            "poll_shared (`Arc<Snapshot>`), finished, 5 B, 1 caller",
            Unit::PerSec,
            take("shared1"),
        )
        .baseline("replaced registry, 1 caller", old1)
        .paired()
        .target(Target::Ratio(1.0), "≥ 1.0×"),
        Row::new("poll, finished, 5 B, 1 caller", Unit::PerSec, reg1.clone())
            .baseline("mutex map of snapshots, 1 caller", take("mutex1"))
            .paired(),
        Row::new("poll, finished, 5 B, 8 callers", Unit::PerSec, reg8.clone())
            .baseline("replaced registry, 8 callers", take("old8"))
            .paired(),
        Row::new("poll, finished, 5 B, 8 callers", Unit::PerSec, reg8.clone())
            .baseline("mutex map of snapshots, 8 callers", mutex8.clone())
            .paired()
            .target(Target::Absolute(700_000.0), "≥ 700,000/s"),
        Row::new(
            "poll, finished, 10 MiB, 1 caller (cost)",
            Unit::Seconds,
            big_cost,
        )
        .baseline("same poll of 5 B (cost)", small_cost)
        .paired()
        .target(Target::Absolute(20e-6), "≤ 20 µs"),
        Row::new("poll, finished, 10 MiB, 1 caller", Unit::PerSec, big1)
            .baseline("same poll of 5 B", reg1)
            .paired()
            .target(Target::Ratio(0.5), "within 2× (≥ 0.50×)"),
        Row::new(
            "probe: bare ractor call answering a snapshot, 8 callers",
            Unit::PerSec,
            take("hold8"),
        )
        .baseline("registry poll, 8 callers", reg8)
        .paired(),
        Row::new("poll, running, 1 caller", Unit::PerSec, take("run1"))
            .baseline(
                "probe: bare ractor call answering a snapshot, 1 caller",
                take("hold1"),
            )
            .paired(),
        Row::new(
            "poll through the handle's `SnapshotWatch` (no registry hop), finished, 8 callers",
            Unit::PerSec,
            take("watch8"),
        )
        .baseline("mutex map of snapshots, 8 callers", mutex8)
        .paired()
        .target(Target::Absolute(5_000_000.0), "≥ 5,000,000/s"),
    ]
}
