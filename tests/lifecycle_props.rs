//! Property tests of lifecycle races: random programs of spawn, poll, wait,
//! kill, release and kill-owner, run by several concurrent tasks against one
//! registry with a small cap, checked after every step and at the end.
//! Children that print known bytes and exit must have exactly those bytes
//! in their terminal snapshot, with a drain grace of a few milliseconds
//! and bursts of them running at once. Children that start a `setsid`
//! escapee must not leave it alive once their handle ends (at the latest
//! at shutdown), under cgroups and under process groups alike.
//!
//! `cargo test` runs a few cases. For many more (the figures in
//! docs/testing.md come from this):
//!
//! ```sh
//! PROPTEST_CASES=10000 cargo test --release --test lifecycle_props
//! # only one containment mode: `cgroup` or `pg` (process groups)
//! PROCWARD_PROPS_CONTAINMENT=pg PROPTEST_CASES=10000 cargo test --release --test lifecycle_props
//! ```
//!
//! This is the only test in its binary, so the end-of-case check that no
//! process of ours is left sees nothing but what the case started.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use procward::__test_support::procfs;
use procward::{
    Error, HandleId, KillRequest, ListFilter, Registry, RegistryConfig, Snapshot, SpawnRequest,
    Status,
};
use proptest::prelude::*;

/// The processes a program can start.
#[derive(Debug, Clone, Copy)]
enum Kind {
    QuickExit,
    LongSleep,
    Tree,
    LargeOutput,
    SpawnTimeout,
    /// Prints `out-<tag>` and `err-<tag>` and exits 0.
    Known(u16),
    /// Starts a `sleep` that leaves the process group and the session
    /// (`setsid`) and exits at once: the escapee must die when its handle
    /// ends, whatever ends it (cgroup containment, or the token hunt under
    /// process groups).
    Escapee,
}

/// The argument of every escapee's `sleep`: 30 s, with this test
/// process's pid in the fraction, so a survivor is found by its command
/// line and cannot be confused with anything else.
fn escapee_arg() -> String {
    format!("30.{}", std::process::id())
}

impl Kind {
    fn request(self) -> SpawnRequest {
        match self {
            Kind::QuickExit => SpawnRequest::shell("echo quick"),
            Kind::LongSleep => SpawnRequest::argv(["sleep", "0.4"]),
            Kind::Tree => SpawnRequest::shell("sleep 0.4 & sleep 0.4 & wait"),
            Kind::LargeOutput => SpawnRequest::argv(["head", "-c", "3000000", "/dev/zero"]),
            Kind::SpawnTimeout => {
                SpawnRequest::shell("sleep 5 & sleep 5").timeout(Duration::from_millis(30))
            }
            Kind::Known(tag) => SpawnRequest::shell(format!("echo out-{tag}; echo err-{tag} >&2")),
            Kind::Escapee => SpawnRequest::shell(format!(
                "setsid sleep {} </dev/null >/dev/null 2>&1 & echo started",
                escapee_arg()
            )),
        }
    }
}

/// One step of a program. Handle indexes pick among the handles spawned
/// so far by any task (modulo their number).
#[derive(Debug, Clone)]
enum Op {
    Spawn(Kind, u8),
    Poll(usize),
    Wait(usize, Option<u64>),
    Kill(usize),
    Release(usize),
    KillOwner(u8),
    /// Spawns this many `Known` children at once and waits for each.
    Burst(u8),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::QuickExit),
        Just(Kind::LongSleep),
        Just(Kind::Tree),
        Just(Kind::LargeOutput),
        Just(Kind::SpawnTimeout),
        any::<u16>().prop_map(Kind::Known),
        Just(Kind::Escapee),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (kind(), 0u8..3).prop_map(|(k, o)| Op::Spawn(k, o)),
        2 => any::<usize>().prop_map(Op::Poll),
        2 => (any::<usize>(), prop::option::of(1u64..60)).prop_map(|(i, t)| Op::Wait(i, t)),
        1 => any::<usize>().prop_map(Op::Kill),
        1 => any::<usize>().prop_map(Op::Release),
        1 => (0u8..3).prop_map(Op::KillOwner),
        1 => (8u8..40).prop_map(Op::Burst),
    ]
}

/// A case: the registry's caps and one program per concurrent task.
#[derive(Debug, Clone)]
struct Case {
    max_handles: usize,
    /// Large: no receipt is ever pushed out, so every handle that was not
    /// released must stay resolvable. Small: receipts expire.
    max_receipts: usize,
    /// A few milliseconds: shorter than a busy runtime takes to read a
    /// pipe, so a drain that dropped unread bytes would show.
    drain_grace_ms: u64,
    /// Contain trees in cgroups (where this machine allows; process
    /// groups otherwise) or in process groups with the token hunt: every
    /// invariant, escapees included, must hold in both.
    cgroups: bool,
    programs: Vec<Vec<Op>>,
}

/// Which containment the cases use: both, each case picking one, unless
/// `PROCWARD_PROPS_CONTAINMENT` says `cgroup` or `pg` (to run many cases of
/// one mode).
fn containment() -> BoxedStrategy<bool> {
    match std::env::var("PROCWARD_PROPS_CONTAINMENT").as_deref() {
        Ok("cgroup") => Just(true).boxed(),
        Ok("pg") => Just(false).boxed(),
        _ => any::<bool>().boxed(),
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        2usize..5,
        prop_oneof![Just(2usize), Just(1000)],
        1u64..6,
        containment(),
        prop::collection::vec(prop::collection::vec(op(), 1..7), 2..4),
    )
        .prop_map(
            |(max_handles, max_receipts, drain_grace_ms, cgroups, programs)| Case {
                max_handles,
                max_receipts,
                drain_grace_ms,
                cgroups,
                programs,
            },
        )
}

/// What the tasks have seen, shared between them.
#[derive(Default)]
struct Seen {
    handles: Vec<(HandleId, u32)>,
    terminal: HashMap<HandleId, Status>,
    released: HashSet<HandleId>,
    /// Handles of `Known` children, with their tag.
    known: HashMap<HandleId, u16>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(seen: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Checker {
    registry: Registry,
    seen: Shared,
    case: Case,
}

impl Checker {
    fn pick(&self, index: usize) -> Option<HandleId> {
        let seen = lock(&self.seen);
        (!seen.handles.is_empty()).then(|| seen.handles[index % seen.handles.len()].0)
    }

    /// Records a snapshot answered for a request sent when `was_terminal`
    /// said whether the handle was already seen terminal.
    fn saw(&self, snapshot: &Snapshot, was_terminal: bool) -> Result<(), String> {
        let mut seen = lock(&self.seen);
        let id = snapshot.handle_id;
        if let Some(tag) = seen.known.get(&id)
            && snapshot.status == Status::Exited
            && snapshot.exit_code == Some(0)
            && !snapshot.evicted
            && !seen.released.contains(&id)
        {
            // It exited by itself and was neither evicted nor released
            // (which forget the output): every byte it wrote is kept.
            let (out, err) = (snapshot.stdout.text(), snapshot.stderr.text());
            if out != format!("out-{tag}\n") || err != format!("err-{tag}\n") {
                return Err(format!(
                    "{id} exited 0 but kept stdout {out:?} and stderr {err:?} (tag {tag})"
                ));
            }
        }
        if snapshot.status == Status::Exited && snapshot.exit_code.is_none() {
            // Its leader was reaped by someone else than its process actor
            // (the orphan reaper), and the status went with it.
            return Err(format!("{id} exited with no exit code: {snapshot:?}"));
        }
        if snapshot.running() {
            if was_terminal {
                return Err(format!("{id} answered running after it was seen terminal"));
            }
            return Ok(());
        }
        match seen.terminal.get(&id) {
            Some(first) if *first != snapshot.status => {
                Err(format!("{id} was {first} and is now {}", snapshot.status))
            }
            Some(_) => Ok(()),
            None => {
                seen.terminal.insert(id, snapshot.status);
                Ok(())
            }
        }
    }

    fn was_terminal(&self, id: HandleId) -> bool {
        lock(&self.seen).terminal.contains_key(&id)
    }

    /// An error about `id` is acceptable only if it is "unknown" and the
    /// handle was released, or its receipt may have expired.
    fn allowed(&self, id: HandleId, err: &Error) -> Result<(), String> {
        let released = lock(&self.seen).released.contains(&id);
        match err {
            Error::UnknownHandle(named) if *named == id => {
                if released || self.case.max_receipts < 1000 {
                    Ok(())
                } else {
                    Err(format!("{id} became unknown without being released"))
                }
            }
            other => Err(format!("{id}: unexpected error {other}")),
        }
    }

    async fn caps_hold(&self) -> Result<(), String> {
        let listed = self
            .registry
            .list_where(ListFilter::default())
            .await
            .map_err(|e| e.to_string())?;
        let receipts = listed.iter().filter(|s| s.evicted).count();
        let held = listed.len() - receipts;
        if held > self.case.max_handles {
            return Err(format!(
                "{held} handles held, cap {}",
                self.case.max_handles
            ));
        }
        if receipts > self.case.max_receipts {
            return Err(format!(
                "{receipts} receipts held, cap {}",
                self.case.max_receipts
            ));
        }
        Ok(())
    }

    async fn step(&self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Spawn(kind, owner) => {
                let request = kind.request().owner(format!("owner-{owner}"));
                let snap = self
                    .registry
                    .spawn(request)
                    .await
                    .map_err(|e| e.to_string())?;
                if !snap.running() {
                    return Err(format!("spawn answered {}", snap.status));
                }
                let mut seen = lock(&self.seen);
                seen.handles.push((snap.handle_id, snap.pid));
                if let Kind::Known(tag) = kind {
                    seen.known.insert(snap.handle_id, tag);
                }
            }
            Op::Burst(count) => {
                let runs = (0..u16::from(count)).map(|tag| async move {
                    let request = Kind::Known(tag).request().owner("burst");
                    let snap = self
                        .registry
                        .spawn(request)
                        .await
                        .map_err(|e| e.to_string())?;
                    {
                        let mut seen = lock(&self.seen);
                        seen.handles.push((snap.handle_id, snap.pid));
                        seen.known.insert(snap.handle_id, tag);
                    }
                    let id = snap.handle_id;
                    match self.registry.wait(id, None).await {
                        Ok(outcome) => self.saw(&outcome.snapshot, false),
                        Err(err) => self.allowed(id, &err),
                    }
                });
                for result in futures::future::join_all(runs).await {
                    result?;
                }
            }
            Op::Poll(index) => {
                let Some(id) = self.pick(index) else {
                    return Ok(());
                };
                let was = self.was_terminal(id);
                match self.registry.poll(id).await {
                    Ok(snap) => self.saw(&snap, was)?,
                    Err(err) => self.allowed(id, &err)?,
                }
            }
            Op::Wait(index, timeout) => {
                let Some(id) = self.pick(index) else {
                    return Ok(());
                };
                let was = self.was_terminal(id);
                let timeout = timeout.map(Duration::from_millis);
                match self.registry.wait(id, timeout).await {
                    Ok(outcome) => {
                        if outcome.snapshot.running() && (timeout.is_none() || !outcome.timed_out) {
                            return Err(format!("wait {timeout:?} on {id} returned running"));
                        }
                        if outcome.timed_out && !outcome.snapshot.running() {
                            return Err(format!("wait on {id} timed out on a terminal handle"));
                        }
                        self.saw(&outcome.snapshot, was)?;
                    }
                    Err(err) => self.allowed(id, &err)?,
                }
            }
            Op::Kill(index) => {
                let Some(id) = self.pick(index) else {
                    return Ok(());
                };
                let was = self.was_terminal(id);
                match self.registry.kill(id, KillRequest::default()).await {
                    Ok(snap) if snap.running() => {
                        return Err(format!("kill of {id} returned a running snapshot"));
                    }
                    Ok(snap) => self.saw(&snap, was)?,
                    Err(err) => self.allowed(id, &err)?,
                }
            }
            Op::Release(index) => {
                let Some(id) = self.pick(index) else {
                    return Ok(());
                };
                lock(&self.seen).released.insert(id);
                self.registry.release(id).await.map_err(|e| e.to_string())?;
            }
            Op::KillOwner(owner) => {
                let killed = self
                    .registry
                    .kill_owner(format!("owner-{owner}"), KillRequest::default())
                    .await
                    .map_err(|e| e.to_string())?;
                for snap in &killed {
                    if snap.running() {
                        return Err(format!("kill_owner returned {} running", snap.handle_id));
                    }
                    self.saw(snap, false)?;
                }
            }
        }
        self.caps_hold().await
    }
}

/// Processes of our session that belong to one of `groups`, or that are
/// zombies whose parent is us.
fn leftovers(groups: &HashSet<u32>) -> Vec<String> {
    let mut buf = String::new();
    let Ok(me) = i32::try_from(std::process::id()) else {
        return vec!["our pid is no i32".into()];
    };
    let Some(session) = procfs::read_stat(me, &mut buf).map(|stat| stat.session) else {
        return vec!["cannot read our own /proc entry".into()];
    };
    let Ok(pids) = procfs::pids() else {
        return vec!["cannot read /proc".into()];
    };
    pids.into_iter()
        .filter_map(|pid| procfs::read_stat(pid, &mut buf))
        .filter(|stat| {
            stat.session == session
                && (u32::try_from(stat.pgrp).is_ok_and(|pgrp| groups.contains(&pgrp))
                    || (stat.ppid == me && stat.is_zombie()))
        })
        .map(|stat| format!("{stat:?}"))
        .collect()
}

/// Escapees (see [`Kind::Escapee`]) still alive: every one must have died
/// with its handle, at the latest when the registry shut down. Survivors
/// are killed (by pid) once listed, so they cannot fail a later case.
fn escapees() -> Vec<String> {
    let wanted = format!("sleep\0{}\0", escapee_arg());
    let Ok(pids) = procfs::pids() else {
        return vec!["cannot read /proc".into()];
    };
    let mut buf = String::new();
    pids.into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted.as_bytes())
        })
        .filter(|&pid| procfs::read_stat(pid, &mut buf).is_some_and(|stat| !stat.is_zombie()))
        .map(|pid| {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            format!("escapee {pid} survived")
        })
        .collect()
}

async fn run_case(case: Case) -> Result<(), String> {
    let config = RegistryConfig::default()
        .max_handles(case.max_handles)
        .cap_policy(procward::CapPolicy::Evict)
        .max_receipts(case.max_receipts)
        .drain_grace(Duration::from_millis(case.drain_grace_ms))
        .reap_orphans(true)
        .kill_escapees(true)
        .cgroup(if case.cgroups {
            procward::CgroupMode::Auto
        } else {
            procward::CgroupMode::Off
        });
    let registry = Registry::start(config).await.map_err(|e| e.to_string())?;
    let seen: Shared = Arc::default();
    let tasks: Vec<_> = case
        .programs
        .iter()
        .cloned()
        .map(|program| {
            let checker = Checker {
                registry: registry.clone(),
                seen: seen.clone(),
                case: case.clone(),
            };
            tokio::spawn(async move {
                for op in &program {
                    checker.step(op).await.map_err(|e| format!("{op:?}: {e}"))?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    let mut outcome = Ok(());
    for task in tasks {
        let result = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .map_err(|_| "a task hung".to_string())
            .and_then(|joined| joined.map_err(|e| e.to_string()))
            .and_then(|r| r);
        if outcome.is_ok() {
            outcome = result;
        }
    }
    tokio::time::timeout(Duration::from_secs(60), registry.shutdown())
        .await
        .map_err(|_| "the shutdown hung".to_string())?
        .map_err(|e| e.to_string())?;

    let groups: HashSet<u32> = lock(&seen).handles.iter().map(|(_, pid)| *pid).collect();
    let mut left = leftovers(&groups);
    left.extend(escapees());
    if !left.is_empty() {
        let mode = if case.cgroups {
            "cgroups"
        } else {
            "process groups"
        };
        return Err(format!("left behind after shutdown ({mode}): {left:?}"));
    }
    outcome
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn lifecycle_invariants_hold_under_concurrent_programs(case in case()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let result = runtime.block_on(run_case(case));
        prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
    }
}
