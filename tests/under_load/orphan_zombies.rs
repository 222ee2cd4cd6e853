//! In orphan-reaping mode every orphan procward adopts is reaped, whatever
//! its process group: a child that leaves its group and forks hundreds of
//! children it never waits for leaves no zombie behind once it is killed.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::join_all;

use procward::{Registry, RegistryConfig, SpawnRequest, Status};

use crate::support::{children_of, raw_pid, wait_until};

/// Our zombie children whose process group is `pgid`.
fn zombies_in(pgid: u32) -> usize {
    children_of(std::process::id())
        .iter()
        .filter(|p| p.is_zombie() && p.pgrp == raw_pid(pgid))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombies_of_a_killed_escapee_are_reaped() {
    let registry = Registry::start(
        RegistryConfig::default()
            .reap_orphans(true)
            .kill_escapees(true)
            .drain_grace(Duration::from_millis(50)),
    )
    .await
    .unwrap();
    // The leader forks an escapee, which starts a session of its own,
    // forks 300 children that exit at once, never waits for them, lets go
    // of the pipes and sleeps. The leader prints the escapee's pid once the
    // 300 are forked, and exits. The hunt kills the escapee; it and its 300
    // zombies come to us.
    let script = "import os, time\n\
                  r, w = os.pipe()\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    \
                      os.setsid()\n    \
                      for _ in range(300):\n        \
                          if os.fork() == 0:\n            os._exit(0)\n    \
                      os.write(w, b'x')\n    \
                      os.close(1)\n    os.close(2)\n    \
                      time.sleep(300)\n\
                  else:\n    \
                      os.read(r, 1)\n    \
                      print(pid, flush=True)\n";
    for _ in 0..3 {
        let snap = registry
            .spawn(SpawnRequest::argv(["python3", "-c", script]))
            .await
            .unwrap();
        let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
        assert_eq!(done.status, Status::Exited);
        let escapee: u32 = done
            .stdout
            .text()
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no escapee pid in {:?}", done.stdout.text()));
        wait_until(format!("escapee {escapee}'s zombies to be reaped"), || {
            zombies_in(escapee) == 0 && crate::support::stat(escapee).is_none()
        })
        .await;
    }
    registry.shutdown().await.unwrap();
}

/// Under cgroup containment too, the orphans a tree hands us are reaped:
/// two hundred trees whose leader exits at once, each leaving four
/// children that the tree's kill turns into our zombies, and a hundred
/// running trees killed by the registry's stop. None is left a zombie,
/// and none at all once the shutdown returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_of_trees_in_cgroups_are_reaped() {
    let config = RegistryConfig::default()
        .cgroup(procward::CgroupMode::Required)
        .reap_orphans(true)
        .max_handles(400)
        .drain_grace(Duration::from_millis(5));
    let registry = match Registry::start(config).await {
        Ok(registry) => registry,
        Err(err) => {
            println!("skipped: no writable cgroup v2 hierarchy here ({err})");
            return;
        }
    };
    // Other tests of this binary run at once: only zombies in the groups
    // of this test's trees (each leader leads its own) count.
    let zombies_of = |groups: &HashSet<u32>| {
        children_of(std::process::id())
            .into_iter()
            .filter(|p| p.is_zombie() && u32::try_from(p.pgrp).is_ok_and(|g| groups.contains(&g)))
            .collect::<Vec<_>>()
    };
    let tree = "for i in 1 2 3 4; do sleep 30 & done; exit 0";
    let spawns = (0..200).map(|_| registry.spawn(SpawnRequest::shell(tree)));
    let mut groups = HashSet::new();
    for spawned in join_all(spawns).await {
        let spawned = spawned.unwrap();
        groups.insert(spawned.pid);
        let done = registry
            .wait(spawned.handle_id, None)
            .await
            .unwrap()
            .snapshot;
        assert_eq!(done.status, Status::Exited, "{done:?}");
    }
    wait_until("the killed trees' orphans to be reaped", || {
        zombies_of(&groups).is_empty()
    })
    .await;
    // Trees killed while running, then the registry stopped at once: their
    // orphans are reaped before the shutdown returns.
    let spawns =
        (0..100).map(|_| registry.spawn(SpawnRequest::shell("sleep 30 & sleep 30 & wait")));
    let mut groups = HashSet::new();
    for spawned in join_all(spawns).await {
        groups.insert(spawned.unwrap().pid);
    }
    registry.shutdown().await.unwrap();
    let left = zombies_of(&groups);
    assert!(left.is_empty(), "zombies left after the shutdown: {left:?}");
}
