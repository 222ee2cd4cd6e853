//! `procward node --config`: the node's spawn policy applies to remote
//! spawns, with a typed `policy_denied`, and a bad config file stops the
//! node from starting.

use std::ffi::OsString;

use procward::cluster::{Placement, RemoteErrorKind};
use procward::policy::DenyRule;
use procward::{SpawnRequest, Status};

use crate::nodes::{Node, Scratch, Started, client_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_policy_applies_to_remote_spawns() {
    let scratch = Scratch::new("policy");
    let cookie = scratch.cookie("cookie", "policy-cookie", 0o600);
    let config = scratch.0.join("config.json");
    std::fs::write(&config, r#"{"policy": {"allow_shell": false}}"#).unwrap();
    let extra: Vec<OsString> = vec!["--config".into(), config.into()];
    let node = Node::start_with("strict", &cookie, &extra);
    let client = client_for("policy-cookie", &[&node]).await;
    let strict = || Placement::Node("strict".into());

    let denied = client
        .spawn(SpawnRequest::shell("echo via a shell"), strict())
        .await
        .unwrap_err();
    assert_eq!(denied.kind, RemoteErrorKind::PolicyDenied, "{denied}");
    assert_eq!(denied.rule, Some(DenyRule::Shell), "{denied}");

    let allowed = client
        .spawn(SpawnRequest::argv(["echo", "no shell"]), strict())
        .await
        .unwrap();
    let done = client.wait(&allowed.handle, None).await.unwrap();
    assert_eq!(done.snapshot.status, Status::Exited);
    assert_eq!(done.snapshot.stdout.text(), "no shell\n");
    client.shutdown().await.unwrap();
}

#[test]
fn a_node_with_a_bad_config_does_not_start() {
    let scratch = Scratch::new("policy-bad");
    let cookie = scratch.cookie("cookie", "policy-cookie", 0o600);
    let misspelled = scratch.0.join("misspelled.json");
    std::fs::write(&misspelled, r#"{"policy": {"allow_shel": false}}"#).unwrap();
    let cases = [
        (scratch.0.join("missing.json"), "cannot read config"),
        (misspelled, "unknown field"),
    ];
    for (path, why) in cases {
        let extra: Vec<OsString> = vec!["--config".into(), path.clone().into()];
        match Node::try_start_with("bad", &cookie, &extra) {
            Started::Failed { stderr } => {
                assert!(stderr.contains(why), "{}: {stderr}", path.display());
                assert!(
                    stderr.contains(&path.display().to_string()),
                    "the error names the file: {stderr}"
                );
            }
            Started::Ready(_) => panic!("a node started with {}", path.display()),
        }
    }
}
