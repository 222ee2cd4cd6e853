//! `procward ctl`: the real binary against a real `procward serve
//! --socket` server: the list table, tail -f, exit codes and errors.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Instant;

use crate::harness::{
    DEADLINE, Detached, Server, SocketDir, alive, assert_all_gone, connect, stop_child, wait_until,
};
use serde_json::{Value, json};

/// What a finished `procward ctl` printed and how it exited.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The output of a command that must have succeeded.
    fn ok(self) -> String {
        assert!(
            self.status.success(),
            "ctl failed ({:?}): {}",
            self.status,
            self.stderr
        );
        self.text()
    }
}

fn ctl_command(socket: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_procward"));
    command
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `command` to its end, killing it past [`DEADLINE`].
fn run(mut command: Command) -> Ran {
    let child = command.spawn().expect("start procward ctl");
    finish(child)
}

fn finish(mut child: Child) -> Ran {
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let stdout = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let status = wait_or_kill(&mut child);
    Ran {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn wait_or_kill(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("procward ctl still running after {DEADLINE:?}");
        }
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn ctl(socket: &Path, args: &[&str]) -> Ran {
    run(ctl_command(socket, args))
}

/// A socket server in its own directory, stopped (killing every process
/// it holds) when dropped.
struct Served {
    dir: SocketDir,
    server: Detached,
}

impl Served {
    fn start(name: &str, args: &[&str]) -> Self {
        let dir = SocketDir::new(name);
        let socket = dir.socket();
        let mut all = vec!["--socket", socket.to_str().expect("a UTF-8 path")];
        all.extend_from_slice(args);
        let server = Server::start_detached(&all);
        wait_until("the socket to exist", || {
            std::fs::symlink_metadata(&socket).is_ok_and(|m| m.file_type().is_socket())
        });
        Served { dir, server }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.socket()
    }

    fn ctl(&self, args: &[&str]) -> Ran {
        ctl(&self.socket(), args)
    }

    /// `ctl spawn -- argv`; returns the handle it printed.
    fn spawn(&self, options: &[&str], argv: &[&str]) -> String {
        let mut args = vec!["spawn"];
        args.extend_from_slice(options);
        args.push("--");
        args.extend_from_slice(argv);
        let handle = self.ctl(&args).ok().trim().to_owned();
        assert!(handle.starts_with("psh-"), "spawn printed {handle:?}");
        handle
    }

    /// `ctl --json list`'s handles.
    fn listed(&self) -> Vec<Value> {
        let result: Value =
            serde_json::from_str(&self.ctl(&["--json", "list"]).ok()).expect("list --json is JSON");
        result["handles"].as_array().cloned().expect("handles")
    }

    fn entry(&self, handle: &str) -> Value {
        self.listed()
            .into_iter()
            .find(|entry| entry["handle_id"] == handle)
            .unwrap_or_else(|| panic!("{handle} is not listed"))
    }

    /// Stops the server and checks that it left none of `pids` behind.
    fn stop(mut self, pids: &[u32]) {
        let server = self.server.pid();
        stop_child(&mut self.server.0);
        assert_all_gone(server, pids);
    }
}

fn pid(entry: &Value) -> u32 {
    entry["pid"].as_u64().expect("a pid") as u32
}

/// The lines a running `ctl tail -f` prints, as they come.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, lines) = channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

#[test]
fn list_is_a_table_newest_last_cut_to_the_width() {
    let served = Served::start("ctl-list", &[]);
    let first = served.spawn(&["--owner", "build"], &["sh", "-c", "printf 12345; exit 4"]);
    let long = format!("echo {}", "x".repeat(200));
    let second = served.spawn(&[], &["sh", "-c", &long]);
    let third = served.spawn(&["--owner", "svc"], &["sleep", "300"]);
    wait_until("the first two to end", || {
        served.entry(&first)["status"] == "exited" && served.entry(&second)["status"] == "exited"
    });

    let mut command = ctl_command(&served.socket(), &["list"]);
    command.env("COLUMNS", "72");
    let table = run(command).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    for (column, name) in [
        "HANDLE", "PID", "OWNER", "STATUS", "TIME", "EXIT", "OUTPUT", "COMMAND",
    ]
    .iter()
    .enumerate()
    {
        let words: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(words.get(column), Some(name), "{table}");
    }
    for line in &lines {
        assert!(line.chars().count() <= 72, "wider than COLUMNS: {line:?}");
    }
    // Oldest first, newest last.
    assert!(lines[1].starts_with(&first), "{table}");
    assert!(lines[2].starts_with(&second), "{table}");
    assert!(lines[3].starts_with(&third), "{table}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[2], "build", "{table}");
    assert_eq!(row[3], "exited", "{table}");
    assert_eq!(row[5], "4", "the exit code: {table}");
    assert_eq!(row[6], "5", "the output bytes: {table}");
    assert!(lines[2].ends_with('…'), "the long command is cut: {table}");
    let running: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(&running[2..4], ["svc", "running"], "{table}");
    assert_eq!(running[5], "-", "{table}");

    // --json: the protocol's result, with the details.
    let entry = served.entry(&first);
    assert_eq!(entry["exit_code"], 4);
    assert_eq!(entry["stdout_total_bytes"], 5);
    assert!(
        entry.get("stdout").is_none(),
        "no output in a listing: {entry}"
    );

    let sleeper = pid(&served.entry(&third));
    served.stop(&[sleeper]);
}

#[test]
fn listing_does_not_count_as_seeing_a_result() {
    // At the cap a spawn evicts a result a caller has seen before one
    // nobody has: an operator's `list` must not change which.
    let served = Served::start("ctl-seen", &["--max-handles", "2"]);
    let unseen = served.spawn(&[], &["true"]);
    let seen = served.spawn(&[], &["true"]);
    wait_until("both to end", || {
        served
            .listed()
            .iter()
            .all(|entry| entry["status"] == "exited")
    });
    let mut client = connect(&served.socket());
    client.call("poll", json!({"handle_id": seen}));
    served.ctl(&["list"]).ok();

    served.spawn(&[], &["true"]);
    let unseen_now = client.call("poll", json!({"handle_id": unseen}));
    let seen_now = client.call("poll", json!({"handle_id": seen}));
    assert_eq!(seen_now["evicted"], true, "{seen_now}");
    assert_eq!(unseen_now["evicted"], false, "{unseen_now}");
    served.stop(&[]);
}

#[test]
fn tail_follow_prints_output_live_and_exits_with_the_childs_code() {
    let served = Served::start("ctl-follow", &[]);
    let gate = served.dir.file("gate");
    let script = format!(
        "echo one; echo err-one >&2; while [ ! -e {} ]; do sleep 0.02; done; echo two; echo err-two >&2; exit 3",
        gate.display()
    );
    let handle = served.spawn(&[], &["sh", "-c", &script]);

    let mut out = ctl_command(&served.socket(), &["tail", "-f", &handle])
        .spawn()
        .expect("start tail -f");
    let mut err = ctl_command(&served.socket(), &["tail", "-f", &handle, "--stderr"])
        .spawn()
        .expect("start tail -f --stderr");
    let out_lines = lines_of(&mut out);
    let err_lines = lines_of(&mut err);
    // Both print the first line while the process still runs: it cannot
    // end before the gate exists.
    assert_eq!(out_lines.recv_timeout(DEADLINE).as_deref(), Ok("one"));
    assert_eq!(err_lines.recv_timeout(DEADLINE).as_deref(), Ok("err-one"));
    assert_eq!(served.entry(&handle)["status"], "running");

    std::fs::write(&gate, b"").expect("open the gate");
    assert_eq!(out_lines.recv_timeout(DEADLINE).as_deref(), Ok("two"));
    assert_eq!(err_lines.recv_timeout(DEADLINE).as_deref(), Ok("err-two"));
    assert_eq!(wait_or_kill(&mut out).code(), Some(3));
    assert_eq!(wait_or_kill(&mut err).code(), Some(3));
    assert!(
        out_lines.recv_timeout(DEADLINE).is_err(),
        "nothing after the end"
    );

    // Following a handle that already ended prints it all and exits at once.
    let again = served.ctl(&["tail", "-f", &handle]);
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(again.text(), "one\ntwo\n");
    served.stop(&[]);
}

#[test]
fn tail_follow_of_a_killed_process_exits_128_plus_the_signal() {
    let served = Served::start("ctl-killed", &[]);
    let handle = served.spawn(&[], &["sh", "-c", "echo up; exec sleep 300"]);
    let sleeper = pid(&served.entry(&handle));
    let mut tail = ctl_command(&served.socket(), &["tail", "-f", &handle])
        .spawn()
        .expect("start tail -f");
    let lines = lines_of(&mut tail);
    assert_eq!(lines.recv_timeout(DEADLINE).as_deref(), Ok("up"));

    let killed = served
        .ctl(&["kill", &handle, "--signal", "TERM", "--grace-ms", "10000"])
        .ok();
    assert_eq!(killed.trim(), format!("{handle} killed SIGTERM"));
    assert_eq!(wait_or_kill(&mut tail).code(), Some(128 + 15));
    assert!(!alive(sleeper));
    served.stop(&[sleeper]);
}

#[test]
fn tail_prints_the_exact_bytes_across_many_reads() {
    // Each read carries at most 1000 bytes: the tail takes several, and
    // bytes that are not UTF-8 (NUL, 0xff) come through unchanged.
    let served = Served::start("ctl-bytes", &["--max-response-bytes", "1000"]);
    let data: Vec<u8> = (0..20).flat_map(|_| 0..=255u8).collect();
    let file = served.dir.file("data");
    std::fs::write(&file, &data).expect("write the data");
    let path = file.to_str().expect("a UTF-8 path");
    let handle = served.spawn(&[], &["sh", "-c", &format!("cat {path}; cat {path} >&2")]);
    wait_until("the process to end", || {
        served.entry(&handle)["status"] == "exited"
    });

    let out = served.ctl(&["tail", &handle]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout == data,
        "stdout differs ({} bytes)",
        out.stdout.len()
    );
    let err = served.ctl(&["tail", &handle, "--stderr"]);
    assert!(
        err.stdout == data,
        "stderr differs ({} bytes)",
        err.stdout.len()
    );
    served.stop(&[]);
}

#[test]
fn spawned_processes_outlive_ctl_until_killed_by_owner() {
    let served = Served::start("ctl-spawn", &[]);
    let a = served.spawn(&["--owner", "batch"], &["sleep", "300"]);
    let b = served.spawn(
        &["--owner", "batch", "--timeout-ms", "600000"],
        &["sleep", "300"],
    );
    let other = served.spawn(&["--owner", "other"], &["sleep", "300"]);
    // The ctl connections that spawned them are closed: still running.
    let pids: Vec<u32> = [&a, &b, &other]
        .iter()
        .map(|handle| {
            let entry = served.entry(handle);
            assert_eq!(entry["status"], "running", "{entry}");
            pid(&entry)
        })
        .collect();
    assert!(pids.iter().all(|pid| alive(*pid)));

    let killed = served
        .ctl(&["kill-owner", "batch", "--signal", "TERM"])
        .ok();
    assert!(killed.contains(&format!("{a} killed SIGTERM")), "{killed}");
    assert!(killed.contains(&format!("{b} killed SIGTERM")), "{killed}");
    assert!(killed.ends_with("killed 2\n"), "{killed}");
    assert!(!alive(pids[0]) && !alive(pids[1]));
    assert!(alive(pids[2]), "another owner's process is left alone");

    // wait with a timeout leaves it running; poll shows the state.
    let waited = served.ctl(&["wait", &other, "--timeout-ms", "50"]).ok();
    assert!(
        waited.contains("timed out; the process keeps running"),
        "{waited}"
    );
    let polled = served.ctl(&["poll", &other]).ok();
    assert!(polled.contains("status   running"), "{polled}");
    let released = served.ctl(&["release", &other]).ok();
    assert_eq!(released.trim(), format!("{other} released"));
    assert!(!alive(pids[2]), "release kills a running tree");
    served.stop(&pids);
}

#[test]
fn errors_say_what_failed_and_exit_non_zero() {
    let served = Served::start("ctl-errors", &[]);
    for args in [
        vec!["poll", "psh-1-1"],
        vec!["wait", "psh-1-1"],
        vec!["kill", "psh-1-1"],
        vec!["release", "psh-1-1"],
        vec!["tail", "-f", "psh-1-1"],
        vec!["poll", "not-a-handle"],
    ] {
        let ran = served.ctl(&args);
        assert_eq!(ran.status.code(), Some(1), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr
                .contains(&format!("unknown handle `{}`", args[args.len() - 1])),
            "{args:?}: {}",
            ran.stderr
        );
        assert!(ran.stdout.is_empty(), "{args:?}");
    }
    let refused = served.ctl(&["kill", "psh-1-1", "--signal", "NOPE"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        refused.stderr.contains("invalid_request"),
        "{}",
        refused.stderr
    );

    // Nothing at the path, and a socket file whose server is gone.
    let missing = served.dir.file("missing.sock");
    let ran = ctl(&missing, &["list"]);
    assert_eq!(ran.status.code(), Some(1));
    assert!(ran.stderr.contains("no server at"), "{}", ran.stderr);
    let stale = served.dir.file("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind a socket"));
    let ran = ctl(&stale, &["list"]);
    assert_eq!(ran.status.code(), Some(1));
    assert!(ran.stderr.contains("no server at"), "{}", ran.stderr);

    // The server's socket is mode 0600: another user may not connect.
    // As root, run ctl as nobody; otherwise shut ourselves out of the
    // directory.
    let root = rustix::process::geteuid().is_root();
    let mut command = ctl_command(&served.socket(), &["list"]);
    if root {
        std::os::unix::process::CommandExt::uid(&mut command, 65534);
    } else {
        set_mode(served.dir.path(), 0o000);
    }
    let ran = run(command);
    if !root {
        set_mode(served.dir.path(), 0o700);
    }
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("permission denied"), "{}", ran.stderr);
    served.stop(&[]);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn tail_says_how_many_bytes_the_capture_cap_dropped() {
    // A 1000-byte cap keeps the first and the last 500 bytes of 5000.
    let served = Served::start("ctl-dropped", &["--output-cap", "1000"]);
    let data: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let file = served.dir.file("data");
    std::fs::write(&file, &data).expect("write the data");
    let handle = served.spawn(&[], &["cat", file.to_str().expect("a UTF-8 path")]);
    let tail = served.ctl(&["tail", "-f", &handle]);
    assert_eq!(tail.status.code(), Some(0), "{}", tail.stderr);
    let kept: Vec<u8> = [&data[..500], &data[4500..]].concat();
    assert!(tail.stdout == kept, "got {} bytes", tail.stdout.len());
    assert!(
        tail.stderr
            .contains("[4000 bytes dropped by the capture cap]"),
        "{}",
        tail.stderr
    );
    served.stop(&[]);
}
