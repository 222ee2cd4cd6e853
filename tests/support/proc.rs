//! What the integration tests need to see of the OS: processes as `/proc`
//! shows them, process groups, deadlines, gate files that decide when a
//! child may go on, and scratch directories.
//!
//! `/proc/<pid>/stat` is read by the library's own reader
//! (`procward::__test_support::procfs`); only what it does not read
//! (pending signals) is read here.

// Every test binary uses only some of these helpers.
#![allow(dead_code)]

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use procward::{HandleId, Registry, RegistryMsg, Snapshot, SpawnRequest, WaitOutcome};
use ractor::concurrency::OneshotReceiver;

pub(crate) use procward::__test_support::procfs::{self, ProcStat};

/// How long a test waits for something that must happen: long enough for a
/// loaded 2-core machine. Passing it is a failure, never a measurement.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// How often a condition that no event announces is checked again.
const RECHECK: Duration = Duration::from_millis(20);

/// Dead: a zombie (`Z`), or on its way out of `/proc` (`X`).
pub(crate) fn is_dead(p: &ProcStat) -> bool {
    p.is_zombie() || matches!(p.state, 'X' | 'x')
}

/// A pid as `/proc` and [`ProcStat`] spell it. Pids fit an `i32`; one that
/// does not names no process.
pub(crate) fn raw_pid(pid: u32) -> i32 {
    i32::try_from(pid).unwrap_or(-1)
}

/// The process `pid`, or `None` when there is none (it never existed, or it
/// was reaped).
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    procfs::read_stat(raw_pid(pid), &mut String::new())
}

/// Every process on the machine. One that ends while the list is read is
/// left out.
pub(crate) fn processes() -> Vec<ProcStat> {
    let pids = procfs::pids().unwrap_or_else(|err| panic!("cannot list /proc: {err}"));
    let mut buf = String::new();
    pids.into_iter()
        .filter_map(|pid| procfs::read_stat(pid, &mut buf))
        .collect()
}

/// Every process, live or zombie, in the process group `pgid`.
pub(crate) fn group_members(pgid: u32) -> Vec<ProcStat> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == raw_pid(pgid))
        .collect()
}

/// The members of group `pgid` that are not over: live ones, and zombies
/// that this test process should have reaped.
///
/// A zombie whose parent is someone else is dead; once its parent (a shell
/// of the tree, killed with it) is gone, the zombie belongs to PID 1, which
/// on some machines reaps only every few seconds. It is no leak of ours.
pub(crate) fn survivors(pgid: u32) -> Vec<ProcStat> {
    let me = raw_pid(std::process::id());
    group_members(pgid)
        .into_iter()
        .filter(|p| !is_dead(p) || p.ppid == me)
        .collect()
}

/// The processes whose parent is `ppid`, zombies included.
pub(crate) fn children_of(ppid: u32) -> Vec<ProcStat> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == raw_pid(ppid))
        .collect()
}

/// Whether `pid` is a live process (not a zombie).
pub(crate) fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|p| !is_dead(&p))
}

/// Whether `pid` is gone, a zombie, or has `SIGKILL` pending: whatever
/// happens next, it cannot run any more code of its own.
pub(crate) fn is_doomed(pid: u32) -> bool {
    let Some(p) = stat(pid) else {
        return true;
    };
    if is_dead(&p) {
        return true;
    }
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    const SIGKILL_BIT: u64 = 1 << (9 - 1);
    status
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key, "SigPnd" | "ShdPnd")
                .then(|| u64::from_str_radix(value.trim(), 16).ok())
                .flatten()
        })
        .any(|mask| mask & SIGKILL_BIT != 0)
}

/// Rechecks `condition` until it holds; panics naming `what` once
/// [`DEADLINE`] has passed. For conditions no event announces, such as an
/// orphan leaving `/proc`.
pub(crate) async fn wait_until(what: impl Display, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for {what}, in vain"
        );
        tokio::time::sleep(RECHECK).await;
    }
}

/// Like [`wait_until`], for a condition that must be asked for
/// asynchronously (of the registry, say).
pub(crate) async fn eventually<F, Fut>(what: impl Display, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for {what}, in vain"
        );
        tokio::time::sleep(RECHECK).await;
    }
}

/// Waits until nothing of process group `pgid` survives (see
/// [`survivors`]); panics with what is left after [`DEADLINE`].
pub(crate) async fn wait_group_gone(pgid: u32) {
    let start = Instant::now();
    loop {
        let left = survivors(pgid);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "process group {pgid} still has members after {DEADLINE:?}: {left:?}"
        );
        tokio::time::sleep(RECHECK).await;
    }
}

/// Waits until `pid` is no live process.
pub(crate) async fn wait_dead(pid: u32) {
    wait_until(format!("process {pid} to die"), || !is_alive(pid)).await;
}

/// Polls `id` until its stdout contains `needle` and returns that snapshot.
/// Panics if the handle turns terminal first or [`DEADLINE`] passes.
pub(crate) async fn wait_for_stdout(registry: &Registry, id: HandleId, needle: &str) -> Snapshot {
    let start = Instant::now();
    loop {
        let snap = registry
            .poll(id)
            .await
            .unwrap_or_else(|err| panic!("poll {id} failed: {err}"));
        if snap.stdout.text().contains(needle) {
            return snap;
        }
        assert!(
            snap.running(),
            "{id} ended without printing {needle:?}: {snap:?}"
        );
        assert!(
            start.elapsed() < DEADLINE,
            "{id} did not print {needle:?} within {DEADLINE:?}: {snap:?}"
        );
        tokio::time::sleep(RECHECK).await;
    }
}

/// Sends a wait (no timeout) for `id` and returns once the process actor
/// holds it: the wait is queued with a plain cast, and a poll sent after it
/// through the same mailbox is answered only after the wait was handled
/// (requests about one handle sent the same way are handled in order). The
/// receiver gets the wait's answer; a receive error means the reply port
/// was dropped unanswered.
pub(crate) async fn pending_wait(
    registry: &Registry,
    id: HandleId,
) -> OneshotReceiver<procward::Result<WaitOutcome>> {
    let (tx, rx) = ractor::concurrency::oneshot();
    registry
        .actor()
        .cast(RegistryMsg::Wait(id, None, tx.into()))
        .unwrap_or_else(|err| panic!("cannot send a wait for {id}: {err}"));
    // Through the mailbox too: `Registry::poll` takes the direct route,
    // which is ordered only with requests that take it as well.
    let polled = ractor::call!(registry.actor(), RegistryMsg::Poll, id)
        .unwrap_or_else(|err| panic!("poll {id} got no answer: {err}"))
        .unwrap_or_else(|err| panic!("poll {id} failed: {err}"));
    assert!(polled.running(), "{id} ended before its wait was pending");
    rx
}

/// A path under the temp dir that no other test (in this or another test
/// process) uses.
pub(crate) fn unique_path(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("procward-test-{}-{n}-{tag}", std::process::id()))
}

/// A file whose creation lets a gated child go on: the child loops until
/// the path exists, the test creates it when it is ready. The file is
/// removed on drop.
pub(crate) struct Gate {
    path: PathBuf,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Gate {
            path: unique_path("gate"),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A shell command that waits for the gate, then runs `then`. The gate's
    /// path is passed in `$GATE`.
    pub(crate) fn shell(&self, then: &str) -> SpawnRequest {
        SpawnRequest::shell(format!(
            r#"while [ ! -e "$GATE" ]; do sleep 0.01; done; {then}"#
        ))
        .env("GATE", self.path.to_string_lossy())
    }

    /// Lets gated children go on.
    pub(crate) fn open(&self) {
        fs::write(&self.path, b"")
            .unwrap_or_else(|err| panic!("cannot create gate {}: {err}", self.path.display()));
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A scratch directory, removed with its contents on drop.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let path = unique_path(tag);
        fs::create_dir(&path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", path.display()));
        TempDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
