//! A node that dies (SIGKILL) fails the waits pending on it promptly with
//! NodeUnavailable, leaves no process behind, and the other nodes go on.

use std::time::{Duration, Instant};

use procward::cluster::{Placement, RemoteErrorKind};
use procward::{KillRequest, SpawnRequest, Status};

use crate::nodes::{Node, Scratch, alive, client_for, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_fails_pending_waits() {
    let scratch = Scratch::new("death");
    let cookie = scratch.cookie("cookie", "death-cookie", 0o600);
    let mut doomed = Node::start("doomed", &cookie);
    let survivor = Node::start("survivor", &cookie);
    let client = client_for("death-cookie", &[&doomed, &survivor]).await;

    let victim = client
        .spawn(
            SpawnRequest::shell("sleep 30 & sleep 30; wait"),
            Placement::Node("doomed".into()),
        )
        .await
        .unwrap();
    let other = client
        .spawn(
            SpawnRequest::argv(["sleep", "30"]),
            Placement::Node("survivor".into()),
        )
        .await
        .unwrap();

    let waiter = {
        let client = client.clone();
        let handle = victim.handle.clone();
        tokio::spawn(async move { client.wait(&handle, None).await })
    };
    // The wait is pending on the node before the node dies.
    let pending = client
        .wait(&victim.handle, Some(Duration::from_millis(20)))
        .await
        .unwrap();
    assert!(pending.timed_out);

    let node_pid = doomed.pid();
    let killed_at = Instant::now();
    doomed.kill9();
    let failed = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the pending wait hung after its node died")
        .unwrap()
        .unwrap_err();
    assert_eq!(failed.kind, RemoteErrorKind::NodeUnavailable, "{failed}");
    eprintln!("wait failed {:?} after SIGKILL", killed_at.elapsed());
    assert!(!alive(node_pid));

    let again = client.poll(&victim.handle).await.unwrap_err();
    assert_eq!(again.kind, RemoteErrorKind::NodeUnavailable);
    assert_eq!(client.nodes(), vec!["survivor".to_owned()]);

    // The dead node's children do not outlive it.
    eventually("the dead node's tree to be gone", || {
        !alive(victim.snapshot.pid) && !pgroup_has_members(victim.snapshot.pid)
    });

    // The survivor still answers.
    let done = client
        .kill(&other.handle, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(done.status, Status::Killed);
    assert!(!alive(other.snapshot.pid));
}

/// Whether any live process is in process group `pgid`.
fn pgroup_has_members(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.first().is_some_and(|s| !matches!(*s, "Z" | "X"))
            && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
    })
}
