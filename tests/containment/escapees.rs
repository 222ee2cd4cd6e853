//! A descendant that left the process group with `setsid` survives a group
//! kill, unless escapee hunting is on; then it is found by its token and
//! killed (process-group containment). Also: resource usage in the
//! terminal snapshot.

use procward::{CgroupMode, KillRequest, OutputEvent, Registry, RegistryConfig, SpawnRequest};

use crate::support::is_alive as alive;

/// Spawns a shell that starts `sleep 300` in a session of its own and
/// prints its pid; returns the handle and that pid.
async fn spawn_escapee(registry: &Registry) -> (procward::Snapshot, u32) {
    let spawned = registry
        .spawn(SpawnRequest::shell(
            // The escapee prints its pid only once it has left the group.
            "setsid sh -c 'echo $$; exec sleep 300' & wait",
        ))
        .await
        .expect("the shell starts");
    let mut feed = registry
        .subscribe(spawned.handle_id)
        .await
        .expect("subscribed");
    // What was printed before the subscription, then the live chunks.
    let earlier = registry
        .read(
            spawned.handle_id,
            procward::ReadRequest::new(procward::OutputStream::Stdout)
                .max_bytes(feed.subscribed.stdout_offset as usize),
        )
        .await
        .expect("read what came before");
    let mut text = String::from_utf8_lossy(&earlier.bytes).into_owned();
    while !text.contains('\n') {
        match feed.recv().await {
            Some(OutputEvent::Chunk { bytes, .. }) => {
                text.push_str(&String::from_utf8_lossy(&bytes))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let pid = text.trim().parse().expect("a pid");
    (spawned, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapee_hunting_kills_a_setsid_descendant() {
    // Process-group containment: the hunt is what catches the escapee
    // (under cgroup containment the cgroup does; tests/containment/cgroup.rs).
    let registry = Registry::start(
        RegistryConfig::default()
            .cgroup(CgroupMode::Off)
            .reap_orphans(true)
            .kill_escapees(true),
    )
    .await
    .unwrap();
    let (spawned, escapee) = spawn_escapee(&registry).await;
    assert!(alive(escapee));
    registry
        .kill(spawned.handle_id, KillRequest::default())
        .await
        .unwrap();
    // The hunt runs before the handle turns terminal.
    assert!(!alive(escapee), "the setsid descendant survived");
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hunting_a_setsid_descendant_survives_the_group_kill() {
    let registry = Registry::start(
        RegistryConfig::default()
            .cgroup(CgroupMode::Off)
            .reap_orphans(true),
    )
    .await
    .unwrap();
    let (spawned, escapee) = spawn_escapee(&registry).await;
    registry
        .kill(spawned.handle_id, KillRequest::default())
        .await
        .unwrap();
    let survived = alive(escapee);
    // Clean up by pid: this test must not leave it behind.
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(escapee as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    assert!(
        survived,
        "expected the escapee to survive a plain group kill"
    );
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_child_reports_its_cpu_time_and_memory() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let spawned = registry
        .spawn(SpawnRequest::shell(
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo $i",
        ))
        .await
        .unwrap();
    assert!(spawned.usage.is_none());
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.stdout.text(), "200000\n");
    let usage = done.usage.expect("usage once reaped");
    assert!(usage.user_time + usage.system_time > std::time::Duration::ZERO);
    // The tree's peak memory where a cgroup counted it, else unknown.
    assert!(usage.max_rss_kib.is_none_or(|kib| kib > 0), "{usage:?}");
    registry.shutdown().await.unwrap();
}
