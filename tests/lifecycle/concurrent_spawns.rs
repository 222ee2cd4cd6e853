//! Concurrent spawns are isolated: each handle gets its own process and
//! exactly its own output.

use std::collections::HashSet;

use procward::{Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_spawns_each_get_their_own_output() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                // Several writes per stream, so output of different children
                // would interleave if it were mixed up.
                let request = SpawnRequest::shell(
                    r#"for n in 1 2 3; do echo "out-$MARK-$n"; echo "err-$MARK-$n" >&2; done"#,
                )
                .env("MARK", i.to_string());
                let snap = registry.spawn(request).await.unwrap();
                let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
                (i, snap, end)
            })
        })
        .collect();

    let mut ids = HashSet::new();
    let mut pids = HashSet::new();
    for task in tasks {
        let (i, snap, end) = task.await.unwrap();
        assert!(
            ids.insert(snap.handle_id),
            "id {} given twice",
            snap.handle_id
        );
        assert!(pids.insert(snap.pid), "pid {} given twice", snap.pid);
        assert_eq!(end.handle_id, snap.handle_id);
        assert_eq!(end.status, Status::Exited);
        assert_eq!(end.exit_code, Some(0));
        assert_eq!(
            end.stdout.text(),
            format!("out-{i}-1\nout-{i}-2\nout-{i}-3\n")
        );
        assert_eq!(
            end.stderr.text(),
            format!("err-{i}-1\nerr-{i}-2\nerr-{i}-3\n")
        );
    }
    assert_eq!(registry.list().await.unwrap().len(), 32);

    registry.shutdown().await.unwrap();
    for pid in pids {
        support::wait_group_gone(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_many_running_trees_leaves_the_others_alone() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let gate = support::Gate::new();

    let mut snaps = Vec::new();
    for i in 0..8 {
        let snap = registry
            .spawn(gate.shell(&format!("echo survivor-{i}")))
            .await
            .unwrap();
        snaps.push(snap);
    }
    let victim = snaps.remove(3);
    let killed = registry
        .kill(victim.handle_id, procward::KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Killed);
    support::wait_group_gone(victim.pid).await;
    for snap in &snaps {
        assert!(registry.poll(snap.handle_id).await.unwrap().running());
        assert!(support::is_alive(snap.pid));
    }

    gate.open();
    for snap in &snaps {
        let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
        assert_eq!(end.status, Status::Exited);
        assert!(end.stdout.text().starts_with("survivor-"));
    }

    registry.shutdown().await.unwrap();
    for snap in &snaps {
        support::wait_group_gone(snap.pid).await;
    }
}
