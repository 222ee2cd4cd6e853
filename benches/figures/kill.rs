//! Kill until terminal: `sleep 30` alone (median) and a `sh` tree (p99),
//! against raw tokio::process killing the child (or its group) and waiting
//! for its exit and both pipes to close.

use std::time::{Duration, Instant};

use procward::{CgroupMode, KillRequest, Registry, RegistryConfig, SpawnRequest, Status};
// Process-group containment, as raw tokio::process does; the `cgroup`
// group measures cgroup containment beside it.

use crate::harness::{Row, Samples, Target, Unit};
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

async fn compare(registry: &Registry, shape: Shape, batches: usize) -> (Samples, Samples) {
    let (mut pw, mut raw) = (Samples::default(), Samples::default());
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
    }
    (pw, raw)
}

pub(crate) async fn kill(opts: &Opts) -> Vec<Row> {
    let registry = Registry::start(RegistryConfig::default().cgroup(CgroupMode::Off))
        .await
        .expect("registry start");
    let (alone_pw, alone_raw) = compare(&registry, Shape::Alone, opts.rounds(10)).await;
    let (tree_pw, tree_raw) = compare(&registry, Shape::Tree, opts.rounds(16)).await;
    registry.shutdown().await.expect("registry shutdown");
    vec![
        Row::new("kill `sleep 30` until terminal", Unit::Seconds, alone_pw)
            .baseline("tokio::process kill + wait + pipes closed", alone_raw)
            .target(Target::Absolute(1e-3), "≤ 1 ms median"),
        Row::new(
            "kill `sh -c 'sleep 30; echo x'` until terminal",
            Unit::Seconds,
            tree_pw,
        )
        .baseline("tokio::process group kill + wait + pipes closed", tree_raw)
        .target(Target::Absolute(50e-3), "≤ 50 ms p99")
        .p99(),
    ]
}
