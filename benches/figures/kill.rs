//! Kill until terminal: `sleep 30` alone (median) and a `sh` tree (p99),
//! against raw tokio::process killing the child (or its group) and waiting
//! for its exit and both pipes to close.

use std::time::{Duration, Instant};

use procward::{CgroupMode, KillRequest, Registry, RegistryConfig, SpawnRequest, Status};
// Process-group containment, as raw tokio::process does; the `cgroup`
// group measures cgroup containment beside it.

use crate::harness::{Row, Samples, Target, Unit};
use crate::replaced::ReplacedRegistry;
use crate::{Opts, raw};

/// Processes started per batch before they are killed one by one.
const BATCH: usize = 20;
/// Time for a batch to get going (for the tree: for `sh` to fork `sleep`).
const SETTLE: Duration = Duration::from_millis(40);

#[derive(Clone, Copy)]
enum Shape {
    /// `sleep 30`
    Alone,
    /// `sh -c 'sleep 30; echo x'`: the shell and its `sleep` child.
    Tree,
}

impl Shape {
    fn request(self) -> SpawnRequest {
        match self {
            Shape::Alone => SpawnRequest::argv(["sleep", "30"]),
            Shape::Tree => SpawnRequest::shell("sleep 30; echo x"),
        }
    }

    fn argv(self) -> &'static [&'static str] {
        match self {
            Shape::Alone => &["sleep", "30"],
            Shape::Tree => &["sh", "-c", "sleep 30; echo x"],
        }
    }

    fn raw(self) -> raw::Running {
        match self {
            Shape::Alone => raw::Running::spawn(raw::command(&["sleep", "30"])),
            Shape::Tree => {
                let mut cmd = raw::command(&["sh", "-c", "sleep 30; echo x"]);
                cmd.process_group(0);
                raw::Running::spawn(cmd)
            }
        }
    }
}

async fn procward_batch(registry: &Registry, shape: Shape, samples: &mut Samples) {
    let mut ids = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        ids.push(
            registry
                .spawn(shape.request())
                .await
                .expect("spawn")
                .handle_id,
        );
    }
    tokio::time::sleep(SETTLE).await;
    for id in ids {
        let start = Instant::now();
        let done = registry
            .kill(id, KillRequest::default())
            .await
            .expect("kill");
        samples.push_duration(start.elapsed());
        assert_eq!(done.status, Status::Killed);
        registry.release(id).await.expect("release");
    }
}

async fn raw_batch(shape: Shape, samples: &mut Samples) {
    let children: Vec<raw::Running> = (0..BATCH).map(|_| shape.raw()).collect();
    tokio::time::sleep(SETTLE).await;
    for child in children {
        let start = Instant::now();
        match shape {
            Shape::Alone => child.kill().await,
            Shape::Tree => child.kill_group().await,
        }
        samples.push_duration(start.elapsed());
    }
}

/// How long the replaced registry's kill may take before it counts as
/// never ending (its kill leaves a tree's `sleep` holding the pipes).
const REPLACED_GIVE_UP: Duration = Duration::from_secs(5);

/// A batch through the replaced registry; a kill that does not end within
/// [`REPLACED_GIVE_UP`] is sampled as that and cleaned up by a group kill.
/// `batch` children at once.
async fn replaced_batch(
    replaced: &ReplacedRegistry,
    shape: Shape,
    batch: usize,
    samples: &mut Samples,
) {
    let ids: Vec<u64> = (0..batch).map(|_| replaced.spawn(shape.argv())).collect();
    tokio::time::sleep(SETTLE).await;
    for id in ids {
        let start = Instant::now();
        let done = replaced.kill(id, REPLACED_GIVE_UP).await;
        samples.push_duration(start.elapsed());
        if done.is_some() {
            replaced.release(id);
        } else {
            replaced.kill_group_and_release(id).await;
        }
    }
}

async fn compare(registry: &Registry, shape: Shape, batches: usize) -> (Samples, Samples, Samples) {
    let replaced = ReplacedRegistry::default();
    let (mut pw, mut raw, mut old) = (Samples::default(), Samples::default(), Samples::default());
    let mut warm = Samples::default();
    procward_batch(registry, shape, &mut warm).await;
    raw_batch(shape, &mut warm).await;
    for batch in 0..batches {
        if batch % 2 == 0 {
            procward_batch(registry, shape, &mut pw).await;
            raw_batch(shape, &mut raw).await;
        } else {
            raw_batch(shape, &mut raw).await;
            procward_batch(registry, shape, &mut pw).await;
        }
        match shape {
            Shape::Alone => replaced_batch(&replaced, shape, BATCH, &mut old).await,
            // Each of its tree kills takes the whole give-up time: one.
            Shape::Tree if batch == 0 => replaced_batch(&replaced, shape, 1, &mut old).await,
            Shape::Tree => {}
        }
    }
    (pw, raw, old)
}

pub(crate) async fn kill(opts: &Opts) -> Vec<Row> {
    let registry = Registry::start(RegistryConfig::default().cgroup(CgroupMode::Off))
        .await
        .expect("registry start");
    let (alone_pw, alone_raw, alone_old) = compare(&registry, Shape::Alone, opts.rounds(10)).await;
    let (tree_pw, tree_raw, tree_old) = compare(&registry, Shape::Tree, opts.rounds(16)).await;
    registry.shutdown().await.expect("registry shutdown");
    let alone = "kill `sleep 30` until terminal";
    let tree = "kill `sh -c 'sleep 30; echo x'` until terminal";
    vec![
        Row::new(alone, Unit::Seconds, alone_pw.clone())
            .baseline("tokio::process kill + wait + pipes closed", alone_raw)
            .target(Target::Ratio(1.1), "≤ 1.1× median"),
        Row::new(alone, Unit::Seconds, alone_pw)
            .baseline("replaced registry", alone_old)
            .target(Target::Ratio(1.0), "≤ 1.0× median"),
        Row::new(tree, Unit::Seconds, tree_pw.clone())
            .baseline("tokio::process group kill + wait + pipes closed", tree_raw)
            .target(Target::Ratio(2.0), "≤ 2× p99")
            .p99(),
        Row::new(tree, Unit::Seconds, tree_pw)
            .baseline(
                "replaced registry (kills the leader only; gives up after 5 s)",
                tree_old,
            )
            .p99(),
    ]
}
