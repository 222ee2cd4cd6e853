//! Every registry operation crosses the cluster as one generic
//! `RemoteRegistryMsg::Execute`: the node's policy still applies on that
//! path, and a request the node cannot decode (garbage, an operation it
//! does not know, a field of the wrong type) is answered with a typed
//! `protocol` error while the node goes on serving.
#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::time::Duration;

use procward::cluster::{
    ClusterClient, Placement, RemoteError, RemoteErrorKind, RemoteRegistryMsg, Wire,
};
use procward::messages::{Answer, Request};
use procward::policy::DenyRule;
use procward::{KillRequest, SpawnRequest, Status};
use ractor::{ActorRef, BytesConvertable, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;

use crate::nodes::{Node, Scratch, alive, client_for};

/// A strict node (no shell) and a client connected to it.
async fn strict_node(tag: &str) -> (Scratch, Node, ClusterClient) {
    let scratch = Scratch::new(tag);
    let cookie = scratch.cookie("cookie", "execute-cookie", 0o600);
    let config = scratch.0.join("config.json");
    std::fs::write(&config, r#"{"policy": {"allow_shell": false}}"#).unwrap();
    let extra: Vec<OsString> = vec!["--config".into(), config.into()];
    let node = Node::start_with("strict", &cookie, &extra);
    let client = client_for("execute-cookie", &[&node]).await;
    (scratch, node, client)
}

/// Sends `request` as a peer would: the raw `Execute` message.
async fn execute_raw(client: &ClusterClient, request: Request) -> Result<Answer, RemoteError> {
    let bytes = rmp_serde::to_vec_named(&Ok::<_, RemoteError>(request)).unwrap();
    let request = Wire::<Request>::from_bytes(bytes);
    let gateway = client.gateway("strict").unwrap();
    ractor::call_t!(gateway, RemoteRegistryMsg::Execute, 10_000, request)
        .unwrap()
        .into_result()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_policy_denies_through_the_generic_path() {
    let (_scratch, _node, client) = strict_node("execute-policy").await;

    let denied = execute_raw(
        &client,
        Request::Spawn(SpawnRequest::shell("echo via a shell")),
    )
    .await
    .unwrap_err();
    assert_eq!(denied.kind, RemoteErrorKind::PolicyDenied, "{denied}");
    assert_eq!(denied.rule, Some(DenyRule::Shell), "{denied}");

    // Closing an owner on the node (an operation with no method of its
    // own on the client) denies that owner's later spawns, by the node's
    // rule, until it is reopened.
    let close = Request::KillOwner {
        owner: "job".into(),
        request: KillRequest::default(),
        close: true,
    };
    let killed = client.execute("strict", close).await.unwrap();
    assert_eq!(killed.into_killed().unwrap(), vec![]);
    let job = || SpawnRequest::argv(["echo", "job"]).owner("job");
    let closed = client
        .spawn_detached(job(), Placement::Node("strict".into()))
        .await
        .unwrap_err();
    assert_eq!(closed.kind, RemoteErrorKind::PolicyDenied, "{closed}");
    assert_eq!(closed.rule, Some(DenyRule::OwnerClosed), "{closed}");
    let reopen = Request::ReopenOwner {
        owner: "job".into(),
    };
    let reopened = client.execute("strict", reopen).await.unwrap();
    assert_eq!(reopened.into_reopened(), Ok(true));

    let spawned = execute_raw(&client, Request::Spawn(job())).await.unwrap();
    let id = spawned.into_snapshot().unwrap().handle_id;
    let waited = execute_raw(&client, Request::Wait { id, timeout: None })
        .await
        .unwrap()
        .into_waited()
        .unwrap();
    assert_eq!(waited.snapshot.status, Status::Exited);
    assert_eq!(waited.snapshot.stdout.text(), "job\n");
    let released = client
        .execute(
            "strict",
            Request::ReleaseOwner {
                owner: "job".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(released.into_released_owner(), Ok(1));
    client.shutdown().await.unwrap();
}

/// Any bytes at all, as the argument of an `Execute`.
#[derive(Debug)]
struct Raw(Vec<u8>);

impl BytesConvertable for Raw {
    fn into_bytes(self) -> Vec<u8> {
        self.0
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        Raw(bytes)
    }
}

/// A peer's own message type, with the gateway's variant name and reply
/// type, and any payload.
#[derive(Debug, RactorClusterMessage)]
enum Peer {
    #[rpc]
    Execute(Raw, RpcReplyPort<Wire<Answer>>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_node_cannot_decode_gets_a_protocol_error() {
    let (_scratch, node, client) = strict_node("execute-garbage").await;

    #[derive(serde::Serialize)]
    enum FromTheFuture {
        Teleport { id: String },
        Poll { id: u64 },
    }
    let encode =
        |value: FromTheFuture| rmp_serde::to_vec_named(&Ok::<_, RemoteError>(value)).unwrap();
    let payloads = [
        Vec::new(),
        vec![0xc1],
        b"not msgpack at all".to_vec(),
        vec![0xff; 4096],
        encode(FromTheFuture::Teleport {
            id: "psh-1-1".into(),
        }),
        encode(FromTheFuture::Poll { id: 7 }),
    ];
    // The same remote actor, addressed with the peer's message type.
    let gateway: ActorRef<Peer> = ActorRef::from(client.gateway("strict").unwrap().get_cell());
    for payload in payloads {
        let shown = format!("{:x?}", &payload[..payload.len().min(16)]);
        let answer = ractor::call_t!(gateway, Peer::Execute, 10_000, Raw(payload)).unwrap();
        let err = answer.into_result().unwrap_err();
        assert_eq!(err.kind, RemoteErrorKind::Protocol, "{shown}: {err}");
    }

    // The node is alive and still serves, on the same session.
    assert!(alive(node.pid()));
    let echo = client
        .spawn(
            SpawnRequest::argv(["echo", "still here"]),
            Placement::Node("strict".into()),
        )
        .await
        .unwrap();
    let done = client
        .wait(&echo.handle, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(done.snapshot.stdout.text(), "still here\n");
    assert!(client.release(&echo.handle).await.unwrap());
    client.shutdown().await.unwrap();
}
