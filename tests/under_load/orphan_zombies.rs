//! In orphan-reaping mode every orphan procward adopts is reaped, whatever
//! its process group: a child that leaves its group and forks hundreds of
//! children it never waits for leaves no zombie behind once it is killed.

use std::time::Duration;

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
