//! Spawn, poll, wait, read, kill, list and release on a remote node.
#![cfg(feature = "cluster")]

#[path = "cluster_support/nodes.rs"]
mod nodes;

use std::time::Duration;

use nodes::{Node, Scratch, alive, client_for, eventually};
use procward::cluster::{Placement, RemoteErrorKind, RemoteHandle};
use procward::{KillRequest, ListFilter, OutputStream, ReadRequest, SpawnRequest, Status};

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
            ReadRequest {
                stream: OutputStream::Stdout,
                offset: 2,
                max_bytes: None,
            },
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
