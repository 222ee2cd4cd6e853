//! A cluster client's own listener (ractor_cluster makes every node have
//! one) starts no session for anybody: a peer that connects to it and
//! claims a name in plain ractor_cluster framing gets a TLS alert or a
//! closed connection, never the challenge that would start a handshake.

use std::net::SocketAddr;
use std::time::Duration;

use crate::raw_peer::name_claim;
use procward::cluster::{ClientOptions, ClusterClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TLS record of type alert starts with this byte.
const TLS_ALERT: u8 = 0x15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_at_the_clients_listener_gets_no_handshake() {
    // An unused port, so the test knows where the client listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut options = ClientOptions::new("listener-cookie");
    options.listen = SocketAddr::from(([127, 0, 0, 1], port));
    let client = ClusterClient::start(options).await.expect("client starts");

    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the client listens");
    let _ = stream.write_all(&name_claim("stranger@127.0.0.1")).await;
    let mut first = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 64];
        if let Ok(n) = stream.read(&mut buf).await {
            first.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "the listener neither answered nor closed");
    assert!(
        first.is_empty() || first[0] == TLS_ALERT,
        "the listener answered the name claim: {first:02x?}"
    );
    assert!(client.nodes().is_empty());
    client.shutdown().await.expect("the client leaves");
}
