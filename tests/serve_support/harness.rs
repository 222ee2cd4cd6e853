//! Drives the real `procward serve` binary: start it, talk JSON lines to
//! it, watch its processes in /proc. Shared by the `serve` tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use procward::__test_support::procfs;
use serde_json::{Value, json};

/// How long anything may take on a loaded 2-core machine before a test
/// gives up on it.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// One protocol stream: requests out, response lines in.
pub(crate) struct Lines {
    writer: Option<Box<dyn Write + Send>>,
    responses: Receiver<String>,
    /// Responses read while looking for another id.
    pending: VecDeque<Value>,
    next_id: u64,
    /// What ends the server's input beyond dropping our writer (a socket
    /// must be shut down: the reader still holds it open).
    on_close: Box<dyn FnMut() + Send>,
}

impl Lines {
    pub(crate) fn new(
        writer: impl Write + Send + 'static,
        reader: impl Read + Send + 'static,
    ) -> Self {
        let (tx, responses) = channel();
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            writer: Some(Box::new(writer)),
            responses,
            pending: VecDeque::new(),
            next_id: 1000,
            on_close: Box::new(|| {}),
        }
    }

    /// A protocol stream over a Unix socket connection.
    pub(crate) fn unix(stream: UnixStream) -> Self {
        let reader = stream.try_clone().expect("clone the stream");
        let closer = stream.try_clone().expect("clone the stream");
        let mut lines = Lines::new(stream, reader);
        lines.on_close = Box::new(move || {
            let _ = closer.shutdown(Shutdown::Write);
        });
        lines
    }

    /// Writes `bytes` and a newline.
    pub(crate) fn send_line(&mut self, bytes: &[u8]) {
        let writer = self.writer.as_mut().expect("input already closed");
        let mut line = bytes.to_vec();
        line.push(b'\n');
        writer.write_all(&line).expect("write a request");
        writer.flush().expect("flush a request");
    }

    pub(crate) fn send(&mut self, request: &Value) {
        self.send_line(&serde_json::to_vec(request).expect("encode a request"));
    }

    /// Sends `op` with `params` under a fresh id; returns the id.
    pub(crate) fn send_op(&mut self, op: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        let mut request = params;
        request["id"] = id.clone();
        request["op"] = json!(op);
        self.send(&request);
        id
    }

    /// Closes our end of the input (EOF for the server).
    pub(crate) fn close(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.flush();
            (self.on_close)();
        }
    }

    /// The next response line, parsed; panics after [`DEADLINE`].
    pub(crate) fn next_response(&mut self) -> Value {
        if let Some(response) = self.pending.pop_front() {
            return response;
        }
        self.read_response()
    }

    fn read_response(&mut self) -> Value {
        match self.responses.recv_timeout(DEADLINE) {
            Ok(line) => serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("response is not JSON ({err}): {line:?}")),
            Err(RecvTimeoutError::Timeout) => panic!("no response within {DEADLINE:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    /// The response with `id`, keeping the others for later.
    pub(crate) fn response_for(&mut self, id: &Value) -> Value {
        if let Some(at) = self.pending.iter().position(|r| &r["id"] == id) {
            return self.pending.remove(at).expect("a pending response");
        }
        loop {
            let response = self.read_response();
            if &response["id"] == id {
                return response;
            }
            self.pending.push_back(response);
        }
    }

    /// Sends a request and returns its whole response.
    pub(crate) fn request(&mut self, op: &str, params: Value) -> Value {
        let id = self.send_op(op, params);
        self.response_for(&id)
    }

    /// Sends a request that must succeed; returns its `result`.
    pub(crate) fn call(&mut self, op: &str, params: Value) -> Value {
        let response = self.request(op, params);
        assert_eq!(response["ok"], true, "{op} failed: {response}");
        response["result"].clone()
    }

    /// Sends a request that must fail; returns its `error`.
    pub(crate) fn fail(&mut self, op: &str, params: Value) -> Value {
        let response = self.request(op, params);
        assert_eq!(response["ok"], false, "{op} succeeded: {response}");
        response["error"].clone()
    }

    /// Waits until the output ends; returns the responses still unread.
    pub(crate) fn read_to_end(&mut self) -> Vec<Value> {
        let mut rest: Vec<Value> = self.pending.drain(..).collect();
        loop {
            match self.responses.recv_timeout(DEADLINE) {
                Ok(line) => rest.push(serde_json::from_str(&line).expect("a JSON response")),
                Err(RecvTimeoutError::Disconnected) => return rest,
                Err(RecvTimeoutError::Timeout) => panic!("output still open after {DEADLINE:?}"),
            }
        }
    }
}

/// A running `procward serve`.
pub(crate) struct Server {
    child: Child,
    pub(crate) io: Lines,
}

impl Server {
    /// Starts `procward serve` with `args`, speaking on stdin/stdout.
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start procward");
        let stdin: ChildStdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        Server {
            child,
            io: Lines::new(stdin, stdout),
        }
    }

    /// Starts `procward serve` with `args` under a descriptor limit of
    /// `nofile` (set by `sh`'s `ulimit -n`, which then execs the server,
    /// so the server's pid is the child's).
    pub(crate) fn start_with_nofile(nofile: u32, args: &[&str]) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" serve \"$@\""))
            .arg(env!("CARGO_BIN_EXE_procward"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start procward under a descriptor limit");
        let stdin: ChildStdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        Server {
            child,
            io: Lines::new(stdin, stdout),
        }
    }

    /// Starts `procward serve` with `args` and no protocol stream of ours
    /// (for `--socket`).
    pub(crate) fn start_detached(args: &[&str]) -> Detached {
        Detached(
            command(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start procward"),
        )
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn signal(&self, signal: rustix::process::Signal) {
        send_signal(self.child.id(), signal);
    }

    /// Waits for the server to exit; panics after [`DEADLINE`].
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        wait_child(&mut self.child)
    }

    /// Spawns `argv` and returns the spawn result.
    pub(crate) fn spawn_argv(&mut self, argv: &[&str]) -> Value {
        self.io.call("spawn", json!({"argv": argv}))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// A server without a protocol stream, stopped when dropped (also when a
/// test fails), so that it never outlives the test.
pub(crate) struct Detached(pub(crate) Child);

impl Detached {
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        wait_child(&mut self.0)
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_procward"));
    command.arg("serve").args(args).stderr(Stdio::inherit());
    command
}

/// Asks a server to stop (SIGTERM), and kills it if it does not in time.
pub(crate) fn stop_child(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    send_signal(child.id(), rustix::process::Signal::TERM);
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "server still running after {DEADLINE:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn send_signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a real pid");
    rustix::process::kill_process(pid, signal).expect("signal the server");
}

/// Polls `condition` until it holds; panics after [`DEADLINE`].
pub(crate) fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `(state, ppid)` of a process, from /proc; `None` once it is gone.
pub(crate) fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = procfs::read_stat(i32::try_from(pid).ok()?, &mut String::new())?;
    Some((stat.state, u32::try_from(stat.ppid).ok()?))
}

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some((state, _)) if state != 'Z')
}

/// The pids whose parent is `parent` (zombies included), but the
/// server's guard process (`--no-guard` turns it off): what the server
/// spawned for its requests.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let Ok(pids) = procfs::pids() else {
        return Vec::new();
    };
    pids.into_iter()
        .filter_map(|pid| u32::try_from(pid).ok())
        .filter(|pid| matches!(proc_state(*pid), Some((_, ppid)) if ppid == parent))
        .filter(|pid| !is_guard(*pid))
        .collect()
}

/// Whether `pid` is a registry's guard (`sh -c … procward-guard …`).
fn is_guard(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == b"procward-guard")
    })
}

/// Waits until none of `pids` is alive, and none is a zombie left to the
/// server `server` (a zombie handed to pid 1 is dead and not ours).
pub(crate) fn assert_all_gone(server: u32, pids: &[u32]) {
    wait_until("every process to be gone", || {
        pids.iter().all(|pid| match proc_state(*pid) {
            None => true,
            Some((state, ppid)) => state == 'Z' && ppid != server,
        })
    });
}

/// Waits until the server has no child left, running or zombie.
pub(crate) fn assert_no_children(server: u32) {
    wait_until("the server to have no children", || {
        children_of(server).is_empty()
    });
}

/// A pid from a JSON result.
pub(crate) fn pid_of(result: &Value) -> u32 {
    result["pid"].as_u64().expect("a pid") as u32
}

/// A private directory for one test's socket, removed when the test ends
/// (passed or failed).
pub(crate) struct SocketDir(std::path::PathBuf);

impl SocketDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("procward-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a socket directory");
        SocketDir(dir)
    }

    pub(crate) fn socket(&self) -> std::path::PathBuf {
        self.0.join("procward.sock")
    }

    /// Another file in the directory.
    pub(crate) fn file(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// The directory itself.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client of the socket server at `path`.
pub(crate) fn connect(path: &std::path::Path) -> Lines {
    Lines::unix(UnixStream::connect(path).expect("connect"))
}
