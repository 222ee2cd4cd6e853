//! Every short child's exit status reaches its snapshot, however many run
//! at once while the orphan reaper sweeps: the reaper must never reap a
//! leader behind its process actor's back. 32 callers spawn `/bin/true`
//! back to back, in cgroup and in process-group containment; before the
//! OS worker read its jobs before its notes of forked leaders, about one
//! child in a hundred came back `exited` with no exit code in cgroup mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::join_all;
use procward::{CgroupMode, Registry, RegistryConfig, SpawnRequest, Status};

const CALLERS: usize = 32;
const EACH: usize = 40;

async fn run(mode: CgroupMode) {
    let registry = Registry::start(
        RegistryConfig::default()
            .cgroup(mode)
            .reap_orphans(true)
            .kill_escapees(true)
            .max_handles(4 * CALLERS),
    )
    .await
    .expect("a registry");
    let lost = Arc::new(AtomicUsize::new(0));
    let callers = (0..CALLERS).map(|_| {
        let registry = registry.clone();
        let lost = lost.clone();
        async move {
            for _ in 0..EACH {
                let spawned = registry
                    .spawn(SpawnRequest::argv(["/bin/true"]))
                    .await
                    .expect("spawn /bin/true");
                let done = registry
                    .wait(spawned.handle_id, None)
                    .await
                    .expect("wait")
                    .snapshot;
                assert_eq!(done.status, Status::Exited, "{done:?}");
                if done.exit_code != Some(0) {
                    lost.fetch_add(1, Ordering::Relaxed);
                }
                registry.release(spawned.handle_id).await.expect("release");
            }
        }
    });
    join_all(callers).await;
    registry.shutdown().await.expect("shutdown");
    let lost = lost.load(Ordering::Relaxed);
    assert_eq!(
        lost,
        0,
        "{lost} of {} exit statuses lost ({mode:?})",
        CALLERS * EACH
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_exit_status_is_lost_in_a_burst() {
    run(CgroupMode::Auto).await;
    run(CgroupMode::Off).await;
}
