//! Spawn, poll, wait, read, kill, list and release on a remote node.

use std::time::Duration;

use procward::__test_support::procfs;
use procward::cluster::{ClientOptions, ClusterClient, Placement, RemoteErrorKind, RemoteHandle};
use procward::{KillRequest, ListFilter, OutputStream, ReadRequest, SpawnRequest, Status, Stdin};

use crate::nodes::{Node, Scratch, alive, client_for, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_handle_lifecycle() {
    let scratch = Scratch::new("ops");
    let cookie = scratch.cookie("cookie", "ops-cookie\n", 0o600);
    let node = Node::start("alpha", &cookie);
    let client = client_for("ops-cookie", &[&node]).await;

    let echo = client
        .spawn(
            SpawnRequest::argv(["echo", "hello"]),
            Placement::Node("alpha".into()),
        )
        .await
        .unwrap();
    assert_eq!(echo.handle.node, "alpha");
    let done = client.wait(&echo.handle, None).await.unwrap();
    assert_eq!(done.snapshot.status, Status::Exited);
    assert_eq!(done.snapshot.stdout.text(), "hello\n");
    let read = client
        .read(
            &echo.handle,
            ReadRequest::new(OutputStream::Stdout).offset(2),
        )
        .await
        .unwrap();
    assert_eq!(&read.bytes[..], b"llo\n");

    let sleeper = client
        .spawn(
            SpawnRequest::argv(["sleep", "30"]),
            Placement::Node("alpha".into()),
        )
        .await
        .unwrap();
    assert!(alive(sleeper.snapshot.pid));
    let polled = client.poll(&sleeper.handle).await.unwrap();
    assert!(polled.running());
    let waited = client
        .wait(&sleeper.handle, Some(Duration::from_millis(50)))
        .await
        .unwrap();
    assert!(waited.timed_out && waited.snapshot.running());

    let listed = client.list(ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|(handle, _)| handle.node == "alpha"));

    let killed = client
        .kill(&sleeper.handle, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Killed);
    eventually("the sleeper to be gone", || !alive(sleeper.snapshot.pid));

    assert!(client.release(&sleeper.handle).await.unwrap());
    let gone = client.poll(&sleeper.handle).await.unwrap_err();
    assert_eq!(gone.kind, RemoteErrorKind::UnknownHandle);
    assert!(!client.release(&sleeper.handle).await.unwrap());

    let missing = client
        .spawn(
            SpawnRequest::argv(["/no/such/program"]),
            Placement::Node("alpha".into()),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.kind, RemoteErrorKind::SpawnFailed);

    let nowhere = RemoteHandle {
        node: "omega".into(),
        id: echo.handle.id,
    };
    let err = client.poll(&nowhere).await.unwrap_err();
    assert_eq!(err.kind, RemoteErrorKind::UnknownNode);

    client.shutdown().await.unwrap();
    let mut node = node;
    assert!(node.terminate(), "node did not exit cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_stdin_pause_resume_and_release_owner() {
    let scratch = Scratch::new("ops-control");
    let cookie = scratch.cookie("cookie", "ops-cookie\n", 0o600);
    let node = Node::start("alpha", &cookie);
    let client = client_for("ops-cookie", &[&node]).await;
    let alpha = || Placement::Node("alpha".into());

    // stdin: written in order, then closed; `cat` echoes it and ends.
    let cat = client
        .spawn(SpawnRequest::argv(["cat"]).stdin(Stdin::Pipe), alpha())
        .await
        .unwrap();
    client.write(&cat.handle, "to ").await.unwrap();
    client.write(&cat.handle, b"cat\n".to_vec()).await.unwrap();
    client.close_stdin(&cat.handle).await.unwrap();
    let done = client.wait(&cat.handle, None).await.unwrap();
    assert_eq!(done.snapshot.stdout.text(), "to cat\n");
    let closed = client.write(&cat.handle, "late").await.unwrap_err();
    assert_eq!(closed.kind, RemoteErrorKind::StdinClosed);

    let sleeper = client
        .spawn(SpawnRequest::argv(["sleep", "30"]), alpha())
        .await
        .unwrap();
    let not_piped = client.write(&sleeper.handle, "x").await.unwrap_err();
    assert_eq!(not_piped.kind, RemoteErrorKind::StdinNotPiped);

    // pause and resume reach the tree.
    let paused = client.pause(&sleeper.handle).await.unwrap();
    assert!(paused.paused);
    let pid = sleeper.snapshot.pid;
    eventually("the sleeper to be stopped", || stopped(pid) == Some(true));
    let resumed = client.resume(&sleeper.handle).await.unwrap();
    assert!(!resumed.paused);
    eventually("the sleeper to run again", || stopped(pid) == Some(false));

    // release_owner kills and forgets every handle of an owner.
    let owned = client
        .spawn_detached(
            SpawnRequest::argv(["sleep", "30"]).owner("batch-7"),
            alpha(),
        )
        .await
        .unwrap();
    assert_eq!(client.release_owner("batch-7").await.unwrap(), 1);
    eventually("the owned sleeper to be gone", || {
        !alive(owned.snapshot.pid)
    });
    let gone = client.poll(&owned.handle).await.unwrap_err();
    assert_eq!(gone.kind, RemoteErrorKind::UnknownHandle);

    client
        .kill(&sleeper.handle, KillRequest::default())
        .await
        .unwrap();
    client.shutdown().await.unwrap();
}

/// The state letter of a process in /proc, if it exists.
/// Whether `pid` is stopped by a pause: frozen in its cgroup (cgroup
/// containment, where the node has one) or in state `T` (SIGSTOP).
fn stopped(pid: u32) -> Option<bool> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    if path.contains("/procward-") {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = mountinfo.lines().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            after
                .starts_with("cgroup2 ")
                .then(|| before.split_whitespace().nth(4))?
        })?;
        let events = std::path::Path::new(mount)
            .join(path.trim_start_matches('/'))
            .join("cgroup.events");
        let events = std::fs::read_to_string(events).ok()?;
        return Some(events.lines().any(|line| line == "frozen 1"));
    }
    Some(state_of(pid)? == 'T')
}

fn state_of(pid: u32) -> Option<char> {
    let stat = procfs::read_stat(i32::try_from(pid).ok()?, &mut String::new())?;
    Some(stat.state)
}

/// Several clients in one process, connecting at once: ractor_cluster
/// numbers sessions per `NodeServer`, so their sessions share node ids
/// and their nodes' gateways share remote pids. Each client must still
/// reach its own node, and keep reaching it when the others leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_in_one_process_each_reach_their_own_node() {
    let scratch = Scratch::new("ops-many");
    let cookie = scratch.cookie("cookie", "ops-cookie\n", 0o600);
    let names = ["n0", "n1", "n2"];
    let nodes: Vec<Node> = names
        .iter()
        .map(|name| Node::start(name, &cookie))
        .collect();
    let connecting: Vec<_> = nodes
        .iter()
        .map(|node| {
            let addr = node.addr.clone();
            tokio::spawn(async move {
                let client = ClusterClient::start(ClientOptions::new("ops-cookie"))
                    .await
                    .unwrap();
                let name = client.connect(addr).await.unwrap();
                (client, name)
            })
        })
        .collect();
    let mut clients = Vec::new();
    for (index, task) in connecting.into_iter().enumerate() {
        let (client, name) = task.await.unwrap();
        assert_eq!(
            name, names[index],
            "client {index} connected to another node"
        );
        clients.push(client);
    }
    for (index, client) in clients.iter().enumerate() {
        let info = client.info(names[index]).await.unwrap();
        assert_eq!(info.node, names[index]);
    }
    for (index, client) in clients.iter().enumerate() {
        client.shutdown().await.unwrap();
        for (later, other) in clients.iter().enumerate().skip(index + 1) {
            let info = other.info(names[later]).await.unwrap();
            assert_eq!(
                info.node, names[later],
                "client {later} reached another node"
            );
        }
    }
}
