//! Cookies: the right one admits a client, a wrong one is refused, and a
//! node refuses to start with a missing, empty, shared or foreign cookie
//! file.

use procward::cluster::{ClientOptions, ClusterClient, RemoteErrorKind};

use crate::nodes::{Node, Scratch, Started};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_cookie_connects_wrong_cookie_is_refused() {
    let scratch = Scratch::new("auth");
    let cookie = scratch.cookie("cookie", "the-right-cookie", 0o600);
    let node = Node::start("auth-node", &cookie);

    let intruder = ClusterClient::start(ClientOptions::new("a-wrong-cookie"))
        .await
        .unwrap();
    let refused = intruder.connect(node.addr.clone()).await.unwrap_err();
    assert_eq!(refused.kind, RemoteErrorKind::Connect, "{refused}");
    assert!(intruder.nodes().is_empty());

    let friend = ClusterClient::start(ClientOptions::new("the-right-cookie"))
        .await
        .unwrap();
    assert_eq!(
        friend.connect(node.addr.clone()).await.unwrap(),
        "auth-node"
    );
    assert_eq!(friend.nodes(), vec!["auth-node".to_owned()]);
    let info = friend.info("auth-node").await.unwrap();
    assert_eq!(info.running, 0);
}

#[test]
fn node_refuses_bad_cookie_files() {
    let scratch = Scratch::new("auth-files");
    let cases = [
        (scratch.0.join("missing"), "cannot be read"),
        (scratch.cookie("empty", "\n", 0o600), "is empty"),
        (scratch.cookie("group", "secret", 0o640), "chmod 600"),
        (scratch.cookie("world", "secret", 0o604), "chmod 600"),
    ];
    let mut cases = cases.to_vec();
    // A private cookie that another user owns: root can make one; anyone
    // else finds one in /etc/passwd (owned by root, though not private).
    let foreign = if rustix::process::geteuid().is_root() {
        let path = scratch.cookie("foreign", "secret", 0o600);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        path
    } else {
        "/etc/passwd".into()
    };
    cases.push((foreign, "is owned by uid"));
    for (path, expected) in cases {
        match Node::try_start("refuser", &path) {
            Started::Ready(_) => panic!("node started with {}", path.display()),
            Started::Failed { stderr } => {
                assert!(stderr.contains(expected), "{}: {stderr}", path.display());
            }
        }
    }
}
