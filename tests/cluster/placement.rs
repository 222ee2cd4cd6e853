//! Placement: a spawn names its node, or goes to the node running the
//! fewest processes.

use procward::cluster::{Placement, RemoteErrorKind};
use procward::{KillRequest, ListFilter, SpawnRequest, Status};

use crate::nodes::{Node, Scratch, alive, client_for, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_node_gets_the_spawn() {
    let scratch = Scratch::new("placement");
    let cookie = scratch.cookie("cookie", "placement-cookie", 0o600);
    let a = Node::start("node-a", &cookie);
    let b = Node::start("node-b", &cookie);
    let c = Node::start("node-c", &cookie);
    let client = client_for("placement-cookie", &[&a, &b, &c]).await;
    let mut names = client.nodes();
    names.sort();
    assert_eq!(names, ["node-a", "node-b", "node-c"]);

    let sleep = || SpawnRequest::argv(["sleep", "30"]);
    let mut pids = Vec::new();
    for node in ["node-a", "node-a", "node-b"] {
        let spawned = client
            .spawn(sleep(), Placement::Node(node.into()))
            .await
            .unwrap();
        assert_eq!(spawned.handle.node, node);
        pids.push(spawned.snapshot.pid);
    }
    // a runs 2, b runs 1, c runs 0.
    let placed = client.spawn(sleep(), Placement::LeastLoaded).await.unwrap();
    assert_eq!(placed.handle.node, "node-c");
    pids.push(placed.snapshot.pid);
    // now a 2, b 1, c 1: the tie goes to the first name.
    let placed = client.spawn(sleep(), Placement::LeastLoaded).await.unwrap();
    assert_eq!(placed.handle.node, "node-b");
    pids.push(placed.snapshot.pid);
    assert_eq!(client.info("node-a").await.unwrap().running, 2);

    let err = client
        .spawn(sleep(), Placement::Node("node-z".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, RemoteErrorKind::UnknownNode);

    // The client leaving kills what it spawned, on every node.
    client.shutdown().await.unwrap();
    for pid in pids {
        eventually("the client's processes to be killed", || !alive(pid));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_operations_reach_every_node() {
    let scratch = Scratch::new("owners");
    let cookie = scratch.cookie("cookie", "owners-cookie", 0o600);
    let a = Node::start("node-a", &cookie);
    let b = Node::start("node-b", &cookie);
    let client = client_for("owners-cookie", &[&a, &b]).await;

    let job = || SpawnRequest::argv(["sleep", "30"]).owner("job-9");
    let mut pids = Vec::new();
    for node in ["node-a", "node-b", "node-b"] {
        let spawned = client
            .spawn_detached(job(), Placement::Node(node.into()))
            .await
            .unwrap();
        pids.push(spawned.snapshot.pid);
    }
    let bystander = client
        .spawn(
            SpawnRequest::argv(["sleep", "30"]),
            Placement::Node("node-a".into()),
        )
        .await
        .unwrap();

    let mut killed = client
        .kill_owner("job-9", KillRequest::default())
        .await
        .unwrap();
    killed.sort_by(|x, y| x.handle.cmp(&y.handle));
    let nodes: Vec<&str> = killed.iter().map(|k| k.handle.node.as_str()).collect();
    assert_eq!(nodes, ["node-a", "node-b", "node-b"]);
    assert!(killed.iter().all(|k| k.snapshot.status == Status::Killed));
    for pid in pids {
        eventually("the owner's processes to be gone", || !alive(pid));
    }
    assert!(
        alive(bystander.snapshot.pid),
        "another owner's process was hit"
    );

    let owned = ListFilter::default().owner("job-9");
    assert_eq!(client.list(owned.clone()).await.unwrap().len(), 3);
    assert_eq!(client.release_owner("job-9").await.unwrap(), 3);
    assert!(client.list(owned).await.unwrap().is_empty());

    client
        .kill(&bystander.handle, KillRequest::default())
        .await
        .unwrap();
    client.shutdown().await.unwrap();
}
