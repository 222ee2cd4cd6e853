//! TLS between clients and `procward node --tls-cert/--tls-key`: the right
//! CA admits a client, anything else (another CA, a plain client, a TLS
//! client at a plain node, a missing or foreign client certificate under
//! `--tls-client-ca`) ends `connect` with kind `connect`, and a node
//! refuses to start with half, shared or foreign TLS files.
// The helpers below are test code too, outside `#[test]` functions.
#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;

use procward::cluster::{ClientOptions, ClientTls, ClusterClient, Placement, RemoteErrorKind};
use procward::{SpawnRequest, Status};

use crate::certs::{Ca, write_file};
use crate::nodes::{DEADLINE, Node, Scratch, Started};

const COOKIE: &str = "tls-cookie";

fn cookie(scratch: &Scratch) -> std::path::PathBuf {
    scratch.cookie("cookie", COOKIE, 0o600)
}

/// `--tls-cert cert --tls-key key [--tls-client-ca ca]`.
fn tls_args(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--tls-cert".into(),
        cert.into(),
        "--tls-key".into(),
        key.into(),
    ];
    if let Some(ca) = client_ca {
        args.extend(["--tls-client-ca".into(), ca.into()]);
    }
    args
}

/// A node on 127.0.0.1 with a certificate for that address from `ca`.
fn tls_node(scratch: &Scratch, name: &str, ca: &Ca, client_ca: Option<&Path>) -> Node {
    let (cert, key) = ca.node(&["127.0.0.1"]).write(&scratch.0, name);
    Node::start_with(name, &cookie(scratch), &tls_args(&cert, &key, client_ca))
}

async fn client(tls: Option<ClientTls>) -> ClusterClient {
    let mut options = ClientOptions::new(COOKIE);
    options.connect_timeout = DEADLINE;
    if let Some(tls) = tls {
        options = options.tls(tls);
    }
    ClusterClient::start(options).await.unwrap()
}

/// Connects and expects a refusal of kind `Connect`; the client is left
/// with no node.
async fn refused(client: &ClusterClient, node: &Node) -> String {
    let err = client.connect(node.addr.clone()).await.unwrap_err();
    assert_eq!(err.kind, RemoteErrorKind::Connect, "{err}");
    assert!(client.nodes().is_empty());
    client.shutdown().await.unwrap();
    err.message
}

/// Spawns `sh -c 'exit 7'` on the node, waits for it and releases it.
async fn round_trip(client: &ClusterClient, node: &str) {
    let job = client
        .spawn(
            SpawnRequest::argv(["sh", "-c", "exit 7"]),
            Placement::Node(node.to_owned()),
        )
        .await
        .unwrap();
    let done = client.wait(&job.handle, Some(DEADLINE)).await.unwrap();
    assert!(!done.timed_out);
    assert_eq!(done.snapshot.status, Status::Exited);
    assert_eq!(done.snapshot.exit_code, Some(7));
    assert!(client.release(&job.handle).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_ca_admits_a_client() {
    let scratch = Scratch::new("tls-ok");
    let ca = Ca::new("procward test CA");
    let node = tls_node(&scratch, "tls-node", &ca, None);

    let tls = ClientTls::new(ca.write(&scratch.0, "ca")).unwrap();
    assert!(!tls.has_identity());
    let client = client(Some(tls)).await;
    assert_eq!(client.connect(node.addr.clone()).await.unwrap(), "tls-node");
    round_trip(&client, "tls-node").await;
    client.shutdown().await.unwrap();
    let mut node = node;
    assert!(node.terminate(), "the TLS node did not stop cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_name_defaults_to_the_host_and_can_be_overridden() {
    let scratch = Scratch::new("tls-name");
    let ca = Ca::new("procward test CA");
    let (cert, key) = ca.node(&["build-1.test"]).write(&scratch.0, "named");
    let node = Node::start_with("named", &cookie(&scratch), &tls_args(&cert, &key, None));
    let ca_file = ca.write(&scratch.0, "ca");

    // The certificate names build-1.test, not 127.0.0.1.
    let by_address = client(Some(ClientTls::new(&ca_file).unwrap())).await;
    let why = refused(&by_address, &node).await;
    assert!(why.contains("TLS handshake failed"), "{why}");

    let tls = ClientTls::new(&ca_file)
        .unwrap()
        .server_name("build-1.test")
        .unwrap();
    let by_name = client(Some(tls)).await;
    assert_eq!(by_name.connect(node.addr.clone()).await.unwrap(), "named");
    round_trip(&by_name, "named").await;
    by_name.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_another_ca_is_refused() {
    let scratch = Scratch::new("tls-other-ca");
    let ca = Ca::new("procward test CA");
    let node = tls_node(&scratch, "tls-node", &ca, None);

    let other = Ca::new("some other CA");
    let stranger = client(Some(
        ClientTls::new(other.write(&scratch.0, "other")).unwrap(),
    ))
    .await;
    let why = refused(&stranger, &node).await;
    assert!(why.contains("TLS handshake failed"), "{why}");

    // The refusal left the node serving.
    let friend = client(Some(ClientTls::new(ca.write(&scratch.0, "ca")).unwrap())).await;
    assert_eq!(friend.connect(node.addr.clone()).await.unwrap(), "tls-node");
    friend.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_tls_do_not_mix() {
    let scratch = Scratch::new("tls-mix");
    let ca = Ca::new("procward test CA");
    let ca_file = ca.write(&scratch.0, "ca");
    let tls_node = tls_node(&scratch, "tls-node", &ca, None);
    let plain_node = Node::start("plain-node", &cookie(&scratch));

    let plain = client(None).await;
    let why = refused(&plain, &tls_node).await;
    assert!(why.contains("requires TLS"), "{why}");

    let tls = client(Some(ClientTls::new(&ca_file).unwrap())).await;
    refused(&tls, &plain_node).await;

    // Neither refusal stopped either node from serving its own kind.
    let tls = client(Some(ClientTls::new(&ca_file).unwrap())).await;
    assert_eq!(
        tls.connect(tls_node.addr.clone()).await.unwrap(),
        "tls-node"
    );
    tls.shutdown().await.unwrap();
    let plain = client(None).await;
    assert_eq!(
        plain.connect(plain_node.addr.clone()).await.unwrap(),
        "plain-node"
    );
    plain.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_clients_the_client_ca_signed() {
    let scratch = Scratch::new("tls-mutual");
    let ca = Ca::new("procward node CA");
    let client_ca = Ca::new("procward client CA");
    let client_ca_file = client_ca.write(&scratch.0, "client-ca");
    let node = tls_node(&scratch, "strict", &ca, Some(&client_ca_file));
    let ca_file = ca.write(&scratch.0, "ca");

    let anonymous = client(Some(ClientTls::new(&ca_file).unwrap())).await;
    let why = refused(&anonymous, &node).await;
    assert!(why.contains("client certificate"), "{why}");

    // A client certificate from the wrong CA (the node's own).
    let (cert, key) = ca.client("impostor").write(&scratch.0, "impostor");
    let tls = ClientTls::new(&ca_file)
        .unwrap()
        .identity(cert, key)
        .unwrap();
    assert!(tls.has_identity());
    let impostor = client(Some(tls)).await;
    let why = refused(&impostor, &node).await;
    assert!(why.contains("client certificate"), "{why}");

    let (cert, key) = client_ca.client("ci-runner").write(&scratch.0, "ci-runner");
    let tls = ClientTls::new(&ca_file)
        .unwrap()
        .identity(cert, key)
        .unwrap();
    let member = client(Some(tls)).await;
    assert_eq!(member.connect(node.addr.clone()).await.unwrap(), "strict");
    round_trip(&member, "strict").await;
    member.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_does_not_block_the_handshakes_of_others() {
    let scratch = Scratch::new("tls-idle");
    let ca = Ca::new("procward test CA");
    let node = tls_node(&scratch, "tls-node", &ca, None);

    // Connects and says nothing: a TLS handshake that never starts.
    let idle = tokio::net::TcpStream::connect(node.addr.as_str())
        .await
        .unwrap();
    let client = client(Some(ClientTls::new(ca.write(&scratch.0, "ca")).unwrap())).await;
    assert_eq!(client.connect(node.addr.clone()).await.unwrap(), "tls-node");
    drop(idle);
    client.shutdown().await.unwrap();
}

#[test]
fn client_tls_names_the_file_it_cannot_use() {
    let scratch = Scratch::new("tls-client-files");
    let ca = Ca::new("procward test CA");
    let ca_file = ca.write(&scratch.0, "ca");
    let (cert, key) = ca.client("me").write(&scratch.0, "me");
    let (_, other_key) = ca.client("other").write(&scratch.0, "other");
    let garbage = write_file(&scratch.0, "garbage.pem", "not a certificate\n", 0o600);
    let shared_key = write_file(&scratch.0, "shared.key", &ca.client("x").key_pem, 0o640);

    let fails =
        |result: Result<ClientTls, procward::cluster::RemoteError>, file: &Path, why: &str| {
            let err = result.unwrap_err();
            assert_eq!(err.kind, RemoteErrorKind::InvalidRequest, "{err}");
            assert!(err.message.contains(&*file.to_string_lossy()), "{err}");
            assert!(err.message.contains(why), "{err}");
        };
    let missing = scratch.0.join("missing.pem");
    fails(ClientTls::new(&missing), &missing, "cannot be read");
    fails(
        ClientTls::new(&garbage),
        &garbage,
        "holds no PEM certificate",
    );
    let with = |cert: &Path, key: &Path| ClientTls::new(&ca_file).unwrap().identity(cert, key);
    fails(with(&cert, &shared_key), &shared_key, "chmod 600");
    fails(with(&cert, &garbage), &garbage, "no usable PEM private key");
    fails(with(&cert, &other_key), &other_key, "does not fit");
    fails(with(&missing, &key), &missing, "cannot be read");
    let err = ClientTls::new(&ca_file)
        .unwrap()
        .server_name("not a name")
        .unwrap_err();
    assert_eq!(err.kind, RemoteErrorKind::InvalidRequest, "{err}");
}

#[test]
fn node_refuses_half_or_shared_tls_files() {
    let scratch = Scratch::new("tls-node-files");
    let cookie = cookie(&scratch);
    let ca = Ca::new("procward test CA");
    let (cert, key) = ca.node(&["127.0.0.1"]).write(&scratch.0, "node");
    let (_, other_key) = ca.node(&["127.0.0.1"]).write(&scratch.0, "other");
    let shared_key = write_file(&scratch.0, "shared.key", &ca.node(&["x"]).key_pem, 0o640);
    let garbage = write_file(&scratch.0, "garbage.pem", "not a certificate\n", 0o600);
    let missing = scratch.0.join("missing.pem");
    let ca_file = ca.write(&scratch.0, "ca");

    let arg = |flag: &str, path: &Path| -> Vec<OsString> { vec![flag.into(), path.into()] };
    let mut cases: Vec<(Vec<OsString>, Vec<String>)> = vec![
        (arg("--tls-cert", &cert), vec!["--tls-key".into()]),
        (arg("--tls-key", &key), vec!["--tls-cert".into()]),
        (arg("--tls-client-ca", &ca_file), vec!["--tls-cert".into()]),
        (
            tls_args(&cert, &shared_key, None),
            vec![shared_key.display().to_string(), "chmod 600".into()],
        ),
        (
            tls_args(&missing, &key, None),
            vec![missing.display().to_string(), "cannot be read".into()],
        ),
        (
            tls_args(&garbage, &key, None),
            vec![garbage.display().to_string(), "no PEM certificate".into()],
        ),
        (
            tls_args(&cert, &other_key, None),
            vec![other_key.display().to_string(), "does not fit".into()],
        ),
        (
            tls_args(&cert, &key, Some(&missing)),
            vec![missing.display().to_string(), "cannot be read".into()],
        ),
    ];
    // A private key that another user owns (only root can make one).
    if rustix::process::geteuid().is_root() {
        let foreign_key = write_file(&scratch.0, "foreign.key", &ca.node(&["x"]).key_pem, 0o600);
        std::os::unix::fs::chown(&foreign_key, Some(65534), None).unwrap();
        cases.push((
            tls_args(&cert, &foreign_key, None),
            vec![foreign_key.display().to_string(), "is owned by uid".into()],
        ));
    }
    for (args, expected) in cases {
        match Node::try_start_with("refuser", &cookie, &args) {
            Started::Ready(_) => panic!("node started with {args:?}"),
            Started::Failed { stderr } => {
                for part in &expected {
                    assert!(stderr.contains(part.as_str()), "{args:?}: {stderr}");
                }
            }
        }
    }
}
