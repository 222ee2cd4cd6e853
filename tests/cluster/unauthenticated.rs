//! A peer that does not know the cookie, against real `procward node`
//! processes, speaking ractor_cluster's handshake by hand: a name claim
//! with a wrong digest kills nothing of the client it impersonates (plain
//! and TLS), an oversized frame before authentication stays in the socket
//! (the node's memory stays flat) and is closed at the deadline, silent
//! peers delay no client and are closed, and thousands of failed
//! handshakes leave nothing behind; and a client's large first request
//! right after it authenticates goes through.
// The helpers below are test code too, outside `#[test]` functions.
#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use procward::SpawnRequest;
use procward::cluster::{ClientOptions, ClientTls, ClusterClient, Placement};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::certs::Ca;
use crate::nodes::{Node, Scratch, alive, eventually};
use crate::raw_peer::{claim_and_fail, closed_by_peer, frame, rss_kib};

const COOKIE: &str = "unauthenticated-cookie";

/// A node under test, and what a client needs to reach it.
struct Target {
    node: Node,
    /// The CA file, for a TLS node.
    ca: Option<PathBuf>,
    _scratch: Scratch,
}

impl Target {
    fn start(tag: &str, tls: bool, extra: &[&str]) -> Target {
        let scratch = Scratch::new(tag);
        let cookie = scratch.cookie("cookie", COOKIE, 0o600);
        let mut args: Vec<OsString> = extra.iter().map(OsString::from).collect();
        let ca = tls.then(|| {
            let ca = Ca::new("procward test CA");
            let (cert, key) = ca.node(&["127.0.0.1"]).write(&scratch.0, "node");
            args.extend([
                "--tls-cert".into(),
                cert.into(),
                "--tls-key".into(),
                key.into(),
            ]);
            ca.write(&scratch.0, "ca")
        });
        let node = Node::start_with("n1", &cookie, &args);
        Target {
            node,
            ca,
            _scratch: scratch,
        }
    }

    async fn client(&self, name: &str) -> ClusterClient {
        let mut options = ClientOptions::new(COOKIE).name(name);
        if let Some(ca) = &self.ca {
            options = options.tls(ClientTls::new(ca).unwrap());
        }
        let client = ClusterClient::start(options).await.unwrap();
        assert_eq!(client.connect(self.node.addr.clone()).await.unwrap(), "n1");
        client
    }

    /// A raw peer's connection: TCP, or TLS to a TLS node.
    async fn claim_and_fail(&self, full_name: &str) -> bool {
        let tcp = TcpStream::connect(self.node.addr.as_str()).await.unwrap();
        match &self.ca {
            None => claim_and_fail(tcp, full_name).await,
            Some(ca) => match tls_connector(ca).connect(localhost(), tcp).await {
                Ok(tls) => claim_and_fail(tls, full_name).await,
                // Evicted during the handshake, under load: closed, too.
                Err(_) => true,
            },
        }
    }
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("127.0.0.1").unwrap()
}

fn tls_connector(ca: &PathBuf) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

fn on_n1() -> Placement {
    Placement::Node("n1".into())
}

async fn name_claims_kill_nothing(tls: bool) {
    let target = Target::start("claim", tls, &[]);
    let victim = target.client("victim").await;
    let job = victim
        .spawn(SpawnRequest::argv(["sleep", "300"]), on_n1())
        .await
        .unwrap();

    // 50 peers at once claim the victim's name and fail the challenge.
    let full_name = victim.full_name().to_owned();
    let target = Arc::new(target);
    let mut attacks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (target, name) = (target.clone(), full_name.clone());
        attacks.spawn(async move { target.claim_and_fail(&name).await });
    }
    while let Some(closed) = attacks.join_next().await {
        assert!(closed.unwrap(), "the node kept an unauthenticated peer");
    }

    // A session that did authenticate, closing after them, is acted on:
    // once its process is gone, the claims' closes were seen too.
    let canary = target.client("canary").await;
    let canary_job = canary
        .spawn(SpawnRequest::argv(["sleep", "300"]), on_n1())
        .await
        .unwrap();
    canary.shutdown().await.unwrap();
    eventually("the canary's process to be killed", || {
        !alive(canary_job.snapshot.pid)
    });

    assert!(
        alive(job.snapshot.pid),
        "a name claim killed the victim's process"
    );
    assert!(victim.poll(&job.handle).await.unwrap().running());

    // The victim's own leaving still kills it.
    victim.shutdown().await.unwrap();
    eventually("the victim's process to be killed", || {
        !alive(job.snapshot.pid)
    });
    let mut target = Arc::into_inner(target).unwrap();
    assert!(target.node.terminate(), "node did not exit cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_claim_with_a_wrong_digest_kills_nothing() {
    name_claims_kill_nothing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_claim_over_tls_kills_nothing() {
    name_claims_kill_nothing(true).await;
}

/// Announces a 49 MiB frame and tries to send 40 MiB of it; returns how
/// much went into the socket and whether the node closed it.
async fn oversized_frame(addr: String) -> (usize, bool) {
    const ANNOUNCED: u64 = 49 << 20;
    const SENT: usize = 40 << 20;
    let mut stream = TcpStream::connect(addr.as_str()).await.unwrap();
    stream.write_all(&ANNOUNCED.to_be_bytes()).await.unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < SENT {
        if stream.write_all(&chunk).await.is_err() {
            return (written, true);
        }
        written += chunk.len();
    }
    (written, closed_by_peer(&mut stream).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_before_authentication_stay_in_the_socket() {
    let target = Target::start("oversized", false, &["--handshake-timeout", "3"]);
    let pid = target.node.pid();
    let before = rss_kib(pid);

    let mut peers = tokio::task::JoinSet::new();
    for _ in 0..10 {
        peers.spawn(oversized_frame(target.node.addr.clone()));
    }
    // Sample the node's memory while the peers push.
    let mut most = before;
    let mut results = Vec::new();
    while results.len() < 10 {
        most = most.max(rss_kib(pid));
        tokio::select! {
            done = peers.join_next() => results.push(done.unwrap().unwrap()),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    for (written, closed) in results {
        assert!(closed, "the node kept a connection past its deadline");
        assert!(
            written < 40 << 20,
            "the node took {written} bytes of a held frame"
        );
    }
    let grew = most.saturating_sub(before);
    eprintln!("10 oversized pre-auth frames: node RSS {before} KiB, at most {most} KiB");
    assert!(
        grew < 64 << 10,
        "the node grew by {grew} KiB under oversized pre-auth frames"
    );
    // The node still serves.
    let client = target.client("after").await;
    assert_eq!(client.info("n1").await.unwrap().running, 0);
    client.shutdown().await.unwrap();
}

/// A connection from `source` (a loopback address) that sends nothing.
async fn silent(source: &str, to: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to.parse().unwrap()).await.unwrap()
}

async fn silent_peers_delay_nobody(tls: bool) {
    let target = Target::start(
        "silent",
        tls,
        &["--handshake-timeout", "3", "--max-pending-handshakes", "32"],
    );
    let addr = target.node.addr.clone();
    // 64 from the client's own address, 64 from others.
    let mut quiet = Vec::new();
    for _ in 0..64 {
        quiet.push(silent("127.0.0.1", &addr).await);
    }
    for n in 0..64 {
        quiet.push(silent(&format!("127.0.1.{}", n + 1), &addr).await);
    }

    let started = Instant::now();
    let client = target.client("latecomer").await;
    let took = started.elapsed();
    eprintln!("connect behind 128 silent peers (tls: {tls}): {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "connect took {took:?} behind 128 silent peers"
    );
    assert_eq!(client.info("n1").await.unwrap().running, 0);

    // Every silent peer is closed: evicted, or at the deadline.
    let mut closing = tokio::task::JoinSet::new();
    for mut stream in quiet {
        closing.spawn(async move { closed_by_peer(&mut stream).await });
    }
    while let Some(closed) = closing.join_next().await {
        assert!(closed.unwrap(), "a silent peer outlived its deadline");
    }
    // The authenticated session is not subject to the deadline.
    assert_eq!(client.info("n1").await.unwrap().running, 0);
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_neither_delay_a_client_nor_stay() {
    silent_peers_delay_nobody(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_at_a_tls_node_neither_delay_a_client_nor_stay() {
    silent_peers_delay_nobody(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_failed_handshakes_leave_nothing_behind() {
    let target = Arc::new(Target::start("churn", false, &[]));
    let pid = target.node.pid();
    let round = |count: usize| {
        let target = target.clone();
        async move {
            for _ in 0..count / 50 {
                let mut batch = tokio::task::JoinSet::new();
                for n in 0..50 {
                    let target = target.clone();
                    batch.spawn(async move {
                        target.claim_and_fail(&format!("churn-{n}@127.0.0.1")).await
                    });
                }
                while let Some(closed) = batch.join_next().await {
                    assert!(closed.unwrap());
                }
            }
        }
    };
    // Warm up the allocator and ractor's tables, then measure.
    round(500).await;
    let before = rss_kib(pid);
    round(4000).await;
    let grew = rss_kib(pid).saturating_sub(before);
    eprintln!("4000 failed handshakes: node RSS {before} KiB, grew {grew} KiB");
    // 11 KiB a session would be 43 MiB.
    assert!(
        grew < 12 << 10,
        "4000 failed handshakes grew the node by {grew} KiB"
    );

    // A frame of garbage instead of a name is closed the same way.
    let mut junk = TcpStream::connect(target.node.addr.as_str()).await.unwrap();
    junk.write_all(&frame(&[0xff; 64])).await.unwrap();
    assert!(closed_by_peer(&mut junk).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_may_send_large_frames_right_after_it_authenticates() {
    for tls in [false, true] {
        let target = Target::start("large-first", tls, &[]);
        let client = target.client("eager").await;
        // Far over the pre-authentication frame limit, sent at once.
        let big = "x".repeat(100 << 10);
        let job = client
            .spawn(SpawnRequest::argv(["true", big.as_str()]), on_n1())
            .await
            .unwrap();
        let done = client.wait(&job.handle, None).await.unwrap();
        assert_eq!(done.snapshot.exit_code, Some(0), "{:?}", done.snapshot);
        client.shutdown().await.unwrap();
    }
}
