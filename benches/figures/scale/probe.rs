//! The probe processes of the `scale` group: the library's `Registry` and
//! raw `tokio::process`, each measured in a fresh process (this bench
//! started again with `--probe-scale SIDE N`) so that one side's freed
//! memory and threads are not the other's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Instant;

use procward::{HandleId, KillRequest, Registry, RegistryConfig, SpawnRequest};
use tokio::task::JoinSet;

use super::{
    AFTER, BYSTANDER, Measured, OWNER, POLL_EVERY, RAW_AFTER, Sampler, left_behind, record_burst,
};
use crate::{procfs, raw};

fn sleep_request() -> SpawnRequest {
    SpawnRequest::argv(["sleep", "600"])
}

/// Runs in the probe process: measures `side` (`library` or `raw`) at `n`
/// children and prints the [`Measured`] as one JSON line.
pub(crate) fn probe(side: &str, n: usize) {
    procfs::ensure_fd_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut measured = runtime.block_on(async {
        match side {
            "library" => library_side(n).await,
            _ => raw_side(n).await,
        }
    });
    drop(runtime);
    measured.left = left_behind();
    println!(
        "{}",
        serde_json::to_string(&measured).expect("serializing a measurement")
    );
}

/// Polls `id` every [`POLL_EVERY`] on a task of its own until stopped;
/// records each poll's latency, whatever the answer.
struct Poller {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<f64>, usize)>,
}

impl Poller {
    fn start(registry: &Registry, id: HandleId) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let registry = registry.clone();
        let task = tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while !stopping.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let answer = registry.poll(id).await;
                latencies.push(sent.elapsed().as_secs_f64());
                errors += usize::from(answer.is_err());
                tokio::time::sleep(POLL_EVERY).await;
            }
            (latencies, errors)
        });
        Poller { stop, task }
    }

    async fn stop(self) -> (Vec<f64>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Spawns `n` children at once, each on a task that then waits for it;
/// returns the time until every spawn was answered, and the wait tasks
/// (each ends with whether the child ended killed).
async fn library_burst(registry: &Registry, n: usize) -> (f64, JoinSet<bool>) {
    let (spawned, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut waits = JoinSet::new();
    let start = Instant::now();
    for _ in 0..n {
        let registry = registry.clone();
        let spawned = spawned.clone();
        waits.spawn(async move {
            let id = match registry.spawn(sleep_request().owner(OWNER)).await {
                Ok(snapshot) => snapshot.handle_id,
                Err(err) => {
                    let _ = spawned.send(Err(err.to_string()));
                    return false;
                }
            };
            // The wait's first poll sends its request; only then does the
            // child count as spawned and waited on, so that a shutdown
            // that follows the burst finds every wait already sent.
            let wait = registry.wait(id, None);
            tokio::pin!(wait);
            let first = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
            let _ = spawned.send(Ok(()));
            let done = match first {
                Poll::Ready(done) => done,
                Poll::Pending => wait.await,
            };
            matches!(done, Ok(done) if done.snapshot.status == procward::Status::Killed)
        });
    }
    drop(spawned);
    for _ in 0..n {
        match answers.recv().await {
            Some(Ok(())) => {}
            Some(Err(err)) => panic!("a burst spawn failed: {err}"),
            None => panic!("a burst task ended without answering"),
        }
    }
    (start.elapsed().as_secs_f64(), waits)
}

async fn library_side(n: usize) -> Measured {
    let me = std::process::id();
    let registry = Registry::start(RegistryConfig::default().max_handles(n + 64))
        .await
        .expect("registry start");
    // Warm-up: runtime threads, ractor, the allocator's arenas.
    for _ in 0..32 {
        let warm = registry.spawn(sleep_request()).await.expect("spawn");
        registry.release(warm.handle_id).await.expect("release");
    }
    let bystander = registry
        .spawn(sleep_request().owner(BYSTANDER))
        .await
        .expect("spawn")
        .handle_id;
    let mut m = Measured {
        n,
        ..Measured::default()
    };
    let sampler = Sampler::start(me);
    procfs::reset_peak();
    let before = procfs::status_of(me).expect("own status");
    let fds_before = procfs::open_fds();

    let (elapsed, mut waits) = library_burst(&registry, n).await;
    m.spawn.push(elapsed);
    tokio::time::sleep(AFTER).await;
    record_burst(&mut m, before, procfs::status_of(me), sampler.stop());
    m.fds_per_child = procfs::open_fds().saturating_sub(fds_before) as f64 / n as f64;

    let polls = Poller::start(&registry, bystander);
    let start = Instant::now();
    let killed = registry
        .kill_owner(OWNER, KillRequest::default())
        .await
        .expect("kill_owner");
    m.kill_answered = Some(start.elapsed().as_secs_f64());
    assert_eq!(killed.len(), n, "kill_owner killed every child");
    let mut not_killed = 0;
    while let Some(done) = waits.join_next().await {
        not_killed += usize::from(!done.unwrap_or(false));
    }
    m.kill = Some(start.elapsed().as_secs_f64());
    assert_eq!(not_killed, 0, "every wait answered `killed`");
    m.kill_polls = polls.stop().await.0;
    registry.release_owner(OWNER).await.expect("release_owner");

    let (elapsed, mut waits) = library_burst(&registry, n).await;
    m.spawn.push(elapsed);
    let polls = Poller::start(&registry, bystander);
    let start = Instant::now();
    registry.shutdown().await.expect("registry shutdown");
    m.shutdown = Some(start.elapsed().as_secs_f64());
    (m.shutdown_polls, m.shutdown_poll_errors) = polls.stop().await;
    let mut killed = 0;
    while let Some(done) = waits.join_next().await {
        killed += usize::from(done.unwrap_or(false));
    }
    m.shutdown_waits_killed = Some(killed);
    m
}

/// `n` raw children, each with its pipes read by tasks and a wait task;
/// returns the kill switches and the wait tasks.
fn raw_burst(n: usize) -> (Vec<tokio::sync::oneshot::Sender<()>>, JoinSet<()>) {
    let mut kills = Vec::with_capacity(n);
    let mut waits = JoinSet::new();
    for _ in 0..n {
        let child = raw::Running::spawn(raw::command(&["sleep", "600"]));
        let (kill, killed) = tokio::sync::oneshot::channel();
        kills.push(kill);
        waits.spawn(child.wait_or_kill(killed));
    }
    (kills, waits)
}

/// SIGKILL to every child through its wait task, and the time until every
/// wait task has seen its child exit and its pipes close.
async fn raw_kill_all(kills: Vec<tokio::sync::oneshot::Sender<()>>, mut waits: JoinSet<()>) -> f64 {
    let start = Instant::now();
    for kill in kills {
        let _ = kill.send(());
    }
    while let Some(done) = waits.join_next().await {
        done.expect("a raw wait task panicked");
    }
    start.elapsed().as_secs_f64()
}

async fn raw_side(n: usize) -> Measured {
    let me = std::process::id();
    let (kills, waits) = raw_burst(32);
    raw_kill_all(kills, waits).await;
    let mut m = Measured {
        n,
        ..Measured::default()
    };
    let sampler = Sampler::start(me);
    procfs::reset_peak();
    let before = procfs::status_of(me).expect("own status");
    let fds_before = procfs::open_fds();

    let start = Instant::now();
    let (kills, waits) = raw_burst(n);
    m.spawn.push(start.elapsed().as_secs_f64());
    tokio::time::sleep(RAW_AFTER).await;
    record_burst(&mut m, before, procfs::status_of(me), sampler.stop());
    m.fds_per_child = procfs::open_fds().saturating_sub(fds_before) as f64 / n as f64;
    let killed = raw_kill_all(kills, waits).await;
    m.kill_answered = Some(killed);
    m.kill = Some(killed);

    let start = Instant::now();
    let (kills, waits) = raw_burst(n);
    m.spawn.push(start.elapsed().as_secs_f64());
    m.shutdown = Some(raw_kill_all(kills, waits).await);
    m.shutdown_waits_killed = Some(n);
    m
}
