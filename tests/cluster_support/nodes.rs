//! Runs real `procward node` processes on 127.0.0.1 for the `cluster`
//! tests: cookie files, free ports, start, SIGKILL by pid, /proc checks.
#![allow(dead_code, clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use procward::__test_support::procfs;
use procward::cluster::{ClientOptions, ClusterClient};

/// How long anything may take on a loaded machine before a test gives up.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// How many of a node's last stderr lines a failed start reports.
const STDERR_TAIL: usize = 200;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A scratch directory for one test, removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("procward-cluster-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes a cookie file with `mode`.
    pub(crate) fn cookie(&self, name: &str, cookie: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, cookie).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago (the node retries if it was taken).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One `procward node` OS process. Dropping it SIGKILLs and reaps it.
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) addr: String,
    child: Option<Child>,
}

/// What became of an attempt to start a node.
pub(crate) enum Started {
    Ready(Node),
    Failed { stderr: String },
}

impl Node {
    /// Starts a node and waits for its `listening` line.
    pub(crate) fn start(name: &str, cookie_file: &Path) -> Node {
        Node::start_with(name, cookie_file, &[])
    }

    /// Starts a node with `extra` arguments after the usual ones and waits
    /// for its `listening` line.
    pub(crate) fn start_with(name: &str, cookie_file: &Path, extra: &[OsString]) -> Node {
        for _ in 0..5 {
            match Node::try_start_with(name, cookie_file, extra) {
                Started::Ready(node) => return node,
                Started::Failed { stderr } if stderr.contains("cannot listen") => continue,
                Started::Failed { stderr } => panic!("node {name} failed: {stderr}"),
            }
        }
        panic!("node {name}: no free port after 5 tries");
    }

    /// Starts a node; reports its stderr if it exits before listening.
    pub(crate) fn try_start(name: &str, cookie_file: &Path) -> Started {
        Node::try_start_with(name, cookie_file, &[])
    }

    /// Starts a node with `extra` arguments after the usual ones; reports
    /// its stderr if it exits before listening.
    pub(crate) fn try_start_with(name: &str, cookie_file: &Path, extra: &[OsString]) -> Started {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_procward"))
            .args(["node", "--listen", &addr, "--name", name, "--cookie-file"])
            .arg(cookie_file)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Drained all along: a node that logs more than a pipe holds
        // (a warning per closed session, say) must not block on stderr.
        let stderr = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut tail = std::collections::VecDeque::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Vec::from(tail).join("\n")
        });
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(line) if line.contains("listening on") => Started::Ready(Node {
                name: name.to_owned(),
                addr,
                child: Some(child),
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Started::Failed {
                    stderr: stderr.join().unwrap_or_default(),
                }
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILLs the node by pid and reaps it.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs the node by pid and waits (with the deadline) for it to
    /// exit; returns whether it exited successfully.
    pub(crate) fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        // SAFETY-free: a plain kill(2) of our own unreaped child.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Whether a live (not zombie) process has this pid.
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    procfs::read_stat(pid, &mut String::new())
        .is_some_and(|stat| !matches!(stat.state, 'Z' | 'X' | 'x'))
}

/// Polls `condition` until it holds or the deadline passes.
pub(crate) fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A client connected to every node in `nodes`.
pub(crate) async fn client_for(cookie: &str, nodes: &[&Node]) -> ClusterClient {
    let client = ClusterClient::start(ClientOptions::new(cookie))
        .await
        .unwrap();
    for node in nodes {
        let name = client.connect(node.addr.clone()).await.unwrap();
        assert_eq!(name, node.name);
    }
    client
}
