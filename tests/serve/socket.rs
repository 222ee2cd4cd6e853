//! `procward serve --socket PATH`: one registry shared by every
//! connection; a connection's processes die with it unless they asked to
//! outlive it.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::process::Signal;
use serde_json::json;

use crate::harness;
use crate::harness::{Server, SocketDir, alive, assert_all_gone, connect, pid_of, wait_until};

fn wait_for_socket(path: &Path) {
    wait_until("the socket to exist", || {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
    });
}

#[test]
fn connections_share_a_registry_and_own_their_processes() {
    let dir = SocketDir::new("share");
    let path = dir.socket();
    let mut server = Server::start_detached(&["--socket", path.to_str().unwrap()]);
    let server_pid = server.pid();
    wait_for_socket(&path);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let mut a = connect(&path);
    let mut b = connect(&path);
    let owned = a.call("spawn", json!({"argv": ["sleep", "300"]}));
    let kept = a.call(
        "spawn",
        json!({"argv": ["sleep", "300"], "outlive_connection": true}),
    );
    // B sees A's handles, and waits on the one A owns.
    let listed = b.call("list", json!({}));
    assert_eq!(listed["handles"].as_array().unwrap().len(), 2);
    b.send(&json!({"id": "w", "op": "wait", "handle_id": owned["handle_id"]}));

    a.close();
    let waited = b.response_for(&json!("w"));
    assert_eq!(waited["result"]["status"], "killed", "{waited}");
    let polled = b.call("poll", json!({"handle_id": kept["handle_id"]}));
    assert_eq!(polled["status"], "running");
    assert!(alive(pid_of(&kept)));

    // Stopping the server kills what outlived its connection.
    harness::send_signal(server_pid, Signal::TERM);
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(b.read_to_end().is_empty());
    assert!(!path.exists(), "the socket file is removed");
    assert_all_gone(server_pid, &[pid_of(&owned), pid_of(&kept)]);
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_refused() {
    let dir = SocketDir::new("stale");
    let path = dir.socket();
    // A socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let mut server = Server::start_detached(&["--socket", path.to_str().unwrap()]);
    wait_until("the server to listen", || {
        UnixStream::connect(&path).is_ok()
    });

    // A second server on the same path refuses to start.
    let mut second = Server::start_detached(&["--socket", path.to_str().unwrap()]);
    let status = second.wait_exit();
    assert!(!status.success());
    let mut client = connect(&path);
    assert!(client.call("list", json!({}))["handles"].is_array());

    harness::send_signal(server.pid(), Signal::INT);
    assert!(server.wait_exit().success());
}
