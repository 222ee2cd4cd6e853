//! `procward serve --socket` with owners bound to the peer or the
//! connection, isolated connections, and a socket path that is in the way.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::harness;
use crate::harness::{Server, SocketDir, alive, assert_all_gone, connect, pid_of, wait_until};

fn start(path: &Path, args: &[&str]) -> harness::Detached {
    let mut all = vec!["--socket", path.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    let server = Server::start_detached(&all);
    wait_until("the socket to exist", || {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
    });
    server
}

fn owners(listed: &Value) -> Vec<String> {
    listed["handles"]
        .as_array()
        .map(|handles| {
            handles
                .iter()
                .map(|h| h["owner"].as_str().unwrap_or("null").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn owners_are_bound_to_the_peer_uid() {
    let dir = SocketDir::new("owners-uid");
    let path = dir.socket();
    let server = start(&path, &["--socket-owners", "uid"]);
    let uid = rustix::process::getuid().as_raw();
    let mut a = connect(&path);
    let mut b = connect(&path);

    let named = a.call("spawn", json!({"argv": ["sleep", "30"], "owner": "job"}));
    let bare = a.call("spawn", json!({"argv": ["sleep", "30"]}));
    // Another owner string does not escape the binding.
    let sneaky = a.call(
        "spawn",
        json!({"argv": ["sleep", "30"], "owner": "uid:4242"}),
    );
    let mut listed = owners(&b.call("list", json!({})));
    listed.sort();
    let mut expected = vec![
        format!("uid:{uid}"),
        format!("uid:{uid}/job"),
        format!("uid:{uid}/uid:4242"),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    // The same user on another connection reaches the same owner.
    let only_job = b.call("list", json!({"owner": "job"}));
    assert_eq!(only_job["handles"].as_array().map(Vec::len), Some(1));
    let killed = b.call("kill_owner", json!({"owner": "job"}));
    assert_eq!(killed["killed"], 1, "{killed}");
    let polled = a.call("poll", json!({"handle_id": named["handle_id"]}));
    assert_eq!(polled["status"], "killed");

    let pids = [pid_of(&named), pid_of(&bare), pid_of(&sneaky)];
    a.close();
    assert!(a.read_to_end().is_empty());
    b.close();
    assert!(b.read_to_end().is_empty());
    assert_all_gone(server.pid(), &pids);
}

#[test]
fn isolated_connections_see_only_their_own_handles() {
    let dir = SocketDir::new("owners-isolated");
    let path = dir.socket();
    let server = start(
        &path,
        &["--socket-owners", "connection", "--socket-isolate"],
    );
    let mut a = connect(&path);
    let mut b = connect(&path);

    let mine = a.call("spawn", json!({"argv": ["sleep", "30"], "owner": "job"}));
    let id = mine["handle_id"].clone();
    for (op, params) in [
        ("poll", json!({"handle_id": id})),
        ("wait", json!({"handle_id": id, "timeout_ms": 10})),
        ("kill", json!({"handle_id": id})),
        ("read", json!({"handle_id": id})),
        ("read", json!({"handle_id": id, "wait_ms": 10})),
        ("pause", json!({"handle_id": id})),
        ("resume", json!({"handle_id": id})),
        ("write", json!({"handle_id": id, "data": "x"})),
        ("close_stdin", json!({"handle_id": id})),
    ] {
        let error = b.fail(op, params);
        assert_eq!(error["kind"], "unknown_handle", "{op}: {error}");
    }
    // A handle it may not see is one it does not know: releasing it is the
    // usual harmless no-op.
    assert_eq!(
        b.call("release", json!({"handle_id": id}))["released"],
        false
    );
    assert_eq!(b.call("list", json!({}))["handles"], json!([]));
    assert_eq!(b.call("kill_owner", json!({"owner": "job"}))["killed"], 0);
    assert_eq!(
        b.call("release_owner", json!({"owner": "job"}))["released"],
        0
    );
    // Its own spawns are b's to see.
    let theirs = b.call("spawn", json!({"argv": ["sleep", "30"]}));
    assert_eq!(
        owners(&b.call("list", json!({}))),
        vec!["conn:2".to_owned()]
    );

    // a still holds a running process, and sees only it.
    let polled = a.call("poll", json!({"handle_id": id}));
    assert_eq!(polled["status"], "running");
    assert!(alive(pid_of(&mine)));
    assert_eq!(
        owners(&a.call("list", json!({}))),
        vec!["conn:1/job".to_owned()]
    );

    let pids = [pid_of(&mine), pid_of(&theirs)];
    a.close();
    assert!(a.read_to_end().is_empty());
    b.close();
    assert!(b.read_to_end().is_empty());
    assert_all_gone(server.pid(), &pids);
}

/// Runs `procward serve` until it exits (it is expected to refuse to
/// start); returns its stderr.
fn refused(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("run procward");
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn serve(path: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_procward"));
    command.args(["serve", "--no-guard", "--socket"]).arg(path);
    command
}

#[test]
fn a_path_in_the_way_is_named() {
    let dir = SocketDir::new("owners-in-the-way");
    let path = dir.socket();
    let shown = path.display().to_string();

    std::fs::write(&path, "not a socket").expect("a plain file");
    let stderr = refused(&mut serve(&path));
    assert!(
        stderr.contains(&shown) && stderr.contains("not a socket"),
        "{stderr}"
    );
    std::fs::remove_file(&path).expect("remove the file");

    let live = UnixListener::bind(&path).expect("a live socket");
    let stderr = refused(&mut serve(&path));
    assert!(
        stderr.contains(&shown) && stderr.contains("listening"),
        "{stderr}"
    );
    drop(live);

    let stderr = refused(serve(&path).args(["--socket-isolate"]));
    assert!(stderr.contains("--socket-owners"), "{stderr}");
}

/// A socket another user left in a shared sticky directory: the server,
/// run as `nobody`, can neither connect to it nor remove it, and says
/// where it is.
#[test]
fn a_socket_planted_by_another_user_is_named() {
    if !rustix::process::getuid().is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: needs root and setpriv to act as another user");
        return;
    }
    let dir = SocketDir::new("owners-planted");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
        .expect("a sticky shared directory");
    let path = dir.socket();
    drop(UnixListener::bind(&path).expect("a socket of root's"));
    let as_nobody = |mode: u32| {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .expect("chmod the planted socket");
        let mut command = Command::new("/usr/bin/setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_procward"))
            .args(["serve", "--no-guard", "--no-reap-orphans", "--socket"])
            .arg(&path);
        refused(&mut command)
    };
    let shown = path.display().to_string();
    // Not writable by nobody: the connect is refused with EACCES.
    let stderr = as_nobody(0o755);
    assert!(
        stderr.contains(&shown) && stderr.contains("owner uid 0"),
        "{stderr}"
    );
    // Writable, nobody listening, but in a sticky directory: the removal
    // fails with EPERM.
    let stderr = as_nobody(0o777);
    assert!(
        stderr.contains(&shown) && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
}

/// A connection that stops sending while a spawn waits for its process:
/// the process dies with the connection and the spawn is answered killed;
/// one asked to outlive the connection keeps running and is answered as a
/// wait that timed out.
#[test]
fn a_spawn_with_wait_is_answered_when_its_connection_closes() {
    let dir = SocketDir::new("owners-close");
    let path = dir.socket();
    let server = start(&path, &["--shutdown-grace-ms", "100"]);
    let mut a = connect(&path);
    let dies = a.send_op("spawn", json!({"argv": ["sleep", "30"], "wait": true}));
    let lives = a.send_op(
        "spawn",
        json!({"argv": ["sleep", "30"], "wait": true, "outlive_connection": true}),
    );
    let mut other = connect(&path);
    wait_until("both to run", || {
        let listed = other.call("list", json!({"status": "running"}));
        listed["handles"].as_array().map(Vec::len) == Some(2)
    });
    a.close();
    let answers = a.read_to_end();
    let answer = |id: &Value| {
        answers
            .iter()
            .find(|answer| &answer["id"] == id)
            .unwrap_or_else(|| panic!("no answer for {id}: {answers:?}"))["result"]
            .clone()
    };
    let died = answer(&dies);
    assert_eq!(died["status"], "killed", "{died}");
    let lived = answer(&lives);
    assert_eq!(lived["status"], "running", "{lived}");
    assert_eq!(lived["wait_timed_out"], true, "{lived}");
    assert!(alive(pid_of(&lived)));
    let killed = other.call("kill", json!({"handle_id": lived["handle_id"]}));
    assert_eq!(killed["status"], "killed");
    other.close();
    assert!(other.read_to_end().is_empty());
    assert_all_gone(server.pid(), &[pid_of(&died), pid_of(&lived)]);
}
