//! The registry procward replaces, rebuilt as a baseline: a
//! `Mutex<BTreeMap>` of entries, each child's two output streams appended
//! whole to `Vec<u8>` buffers by reader tasks, an exit-waiting task per
//! child, and a `String::from_utf8_lossy` of both buffers on every poll.
//! Its kill signals the child alone (not its group) and its handle ends
//! when the child has exited and both pipes have closed.
//!
//! A mutex is what this baseline measures, so it lives here, in the benches
//! only; procward itself holds no lock.

use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{oneshot, watch};

use crate::raw;

/// What a poll answers: the whole output, decoded lossily each time. The
/// bench times building it; it reads only some of it.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) struct Polled {
    pub(crate) pid: u32,
    pub(crate) exit: Option<ExitStatus>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

struct Entry {
    pid: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit: Option<ExitStatus>,
    /// The exit and the two pipes' ends still to come.
    pending: u8,
    done: watch::Sender<bool>,
    kill: Option<oneshot::Sender<()>>,
}

/// The replaced registry: cheap to clone, every operation through the lock.
#[derive(Clone, Default)]
pub(crate) struct ReplacedRegistry {
    table: Arc<Mutex<BTreeMap<u64, Entry>>>,
    next: Arc<AtomicU64>,
}

impl ReplacedRegistry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.table.lock().expect("mutex poisoned")
    }

    /// Starts `argv` (stdin `/dev/null`, both streams piped) in a process
    /// group of its own, so that the bench can clean up a tree this
    /// registry's own kill leaves behind.
    pub(crate) fn spawn(&self, argv: &[&str]) -> u64 {
        let mut cmd = raw::command(argv);
        cmd.process_group(0);
        let mut child = cmd.spawn().expect("replaced registry spawn");
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr = child.stderr.take().expect("stderr piped");
        let (kill, killed) = oneshot::channel();
        self.lock().insert(
            id,
            Entry {
                pid: child.id().expect("a running child has a pid"),
                stdout: Vec::new(),
                stderr: Vec::new(),
                exit: None,
                pending: 3,
                done: watch::channel(false).0,
                kill: Some(kill),
            },
        );
        tokio::spawn(self.clone().append(id, stdout, false));
        tokio::spawn(self.clone().append(id, stderr, true));
        let this = self.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killed => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            this.end(id, |entry| entry.exit = status.ok());
        });
        id
    }

    /// A reader task: appends each read to the entry's buffer, under the
    /// lock, until end of file.
    async fn append(self, id: u64, mut pipe: impl AsyncRead + Unpin, stderr: bool) {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = pipe.read(&mut buf).await {
            let mut table = self.lock();
            let Some(entry) = table.get_mut(&id) else {
                return;
            };
            let out = if stderr {
                &mut entry.stderr
            } else {
                &mut entry.stdout
            };
            out.extend_from_slice(&buf[..n]);
        }
        self.end(id, |_| {});
    }

    fn end(&self, id: u64, update: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.lock().get_mut(&id) {
            update(entry);
            entry.pending -= 1;
            if entry.pending == 0 {
                entry.done.send_replace(true);
            }
        }
    }

    pub(crate) fn poll(&self, id: u64) -> Option<Polled> {
        let table = self.lock();
        let entry = table.get(&id)?;
        Some(Polled {
            pid: entry.pid,
            exit: entry.exit,
            stdout: String::from_utf8_lossy(&entry.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&entry.stderr).into_owned(),
        })
    }

    /// Waits until the child has exited and both pipes have closed, or
    /// `timeout` passes (`None` then), and polls.
    pub(crate) async fn wait(&self, id: u64, timeout: Duration) -> Option<Polled> {
        let mut done = self.lock().get(&id)?.done.subscribe();
        tokio::time::timeout(timeout, done.wait_for(|done| *done))
            .await
            .ok()?
            .ok()?;
        self.poll(id)
    }

    /// SIGKILL to the child (not its group), then [`wait`](Self::wait).
    pub(crate) async fn kill(&self, id: u64, timeout: Duration) -> Option<Polled> {
        let kill = self.lock().get_mut(&id)?.kill.take();
        if let Some(kill) = kill {
            let _ = kill.send(());
        }
        self.wait(id, timeout).await
    }

    pub(crate) fn release(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Cleanup after a kill this registry could not finish: SIGKILL to the
    /// entry's whole group, then wait for its end and release it.
    pub(crate) async fn kill_group_and_release(&self, id: u64) {
        let pid = self.lock().get(&id).map(|entry| entry.pid);
        if let Some(pid) = pid.and_then(|pid| rustix::process::Pid::from_raw(pid as i32)) {
            // The leader may be reaped already; the group lives on while a
            // member does, and its id is not reused until it is empty.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.wait(id, Duration::from_secs(30)).await;
        self.release(id);
    }
}
