//! A client leaving kills what it spawned on the node, except what it
//! spawned detached; a node stopped with SIGTERM leaves nothing behind.

use procward::cluster::{Placement, RemoteHandle};
use procward::{ListFilter, SpawnRequest};

use crate::nodes::{Node, Scratch, alive, client_for, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_kills_its_processes_but_not_detached_ones() {
    let scratch = Scratch::new("session");
    let cookie = scratch.cookie("cookie", "session-cookie", 0o600);
    let mut node = Node::start("keeper", &cookie);
    let here = || Placement::Node("keeper".into());

    let leaving = client_for("session-cookie", &[&node]).await;
    let tied = leaving
        .spawn(SpawnRequest::argv(["sleep", "30"]), here())
        .await
        .unwrap();
    let detached = leaving
        .spawn_detached(SpawnRequest::argv(["sleep", "30"]).owner("batch"), here())
        .await
        .unwrap();
    leaving.shutdown().await.unwrap();
    eventually("the tied process to be killed", || {
        !alive(tied.snapshot.pid)
    });
    assert!(alive(detached.snapshot.pid));

    // Another client still finds the detached process by node and id.
    let other = client_for("session-cookie", &[&node]).await;
    let filter = ListFilter::default().owner("batch");
    let listed = other.list(filter).await.unwrap();
    let handles: Vec<&RemoteHandle> = listed.iter().map(|(h, _)| h).collect();
    assert_eq!(handles, vec![&detached.handle]);
    assert!(other.poll(&detached.handle).await.unwrap().running());

    // SIGTERM: the node kills and reaps everything before it exits.
    assert!(node.terminate(), "node did not exit cleanly on SIGTERM");
    assert!(!alive(detached.snapshot.pid));
}
