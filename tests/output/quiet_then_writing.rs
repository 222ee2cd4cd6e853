//! Children whose pipes stay quiet, then print, go quiet and print again,
//! hundreds at once: every reader wakes for each line, with nothing of a
//! writing pipe made before the first byte (the I/O task polls readiness by
//! hand and makes its permits and block on the first output).

use futures::future::join_all;
use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest, Status, Stdin};

use crate::support::eventually;

const CHILDREN: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_pipes_wake_for_every_line_at_scale() {
    let registry = Registry::start(RegistryConfig::default().max_handles(CHILDREN + 16))
        .await
        .unwrap();
    // Each child waits for a line on stdin before each print, so its pipes
    // are quiet until the test says go, and quiet again in between.
    let script =
        "read go; echo out; echo err >&2; read go; echo more; echo less >&2; exec sleep 30";
    let spawns =
        (0..CHILDREN).map(|_| registry.spawn(SpawnRequest::shell(script).stdin(Stdin::Pipe)));
    let ids: Vec<_> = join_all(spawns)
        .await
        .into_iter()
        .map(|spawned| spawned.unwrap().handle_id)
        .collect();
    for (round, (stdout, stderr)) in [("out\n", "err\n"), ("out\nmore\n", "err\nless\n")]
        .into_iter()
        .enumerate()
    {
        join_all(ids.iter().map(|&id| registry.write(id, "go\n")))
            .await
            .into_iter()
            .for_each(|written| written.unwrap());
        for &id in &ids {
            let registry = &registry;
            eventually(format!("{id}'s output of round {round}"), || async move {
                let snap = registry.poll(id).await.unwrap();
                assert_eq!(snap.status, Status::Running, "{id} ended early: {snap:?}");
                snap.stdout.text() == stdout && snap.stderr.text() == stderr
            })
            .await;
        }
    }
    let kills = ids
        .iter()
        .map(|&id| registry.kill(id, KillRequest::default()));
    for killed in join_all(kills).await {
        let killed = killed.unwrap();
        assert_eq!(killed.status, Status::Killed, "{killed:?}");
        assert_eq!(killed.stdout.text(), "out\nmore\n");
        assert_eq!(killed.stderr.text(), "err\nless\n");
    }
    registry.shutdown().await.unwrap();
}
