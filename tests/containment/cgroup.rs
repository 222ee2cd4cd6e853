//! cgroup containment: every escape that beats a process group (a cleared
//! or forged `PROCWARD_TOKEN`, `setsid`, a non-dumpable escapee, one that
//! keeps re-forking) dies on kill, release and shutdown; a pause freezes
//! escapees; the child is in its cgroup before its program runs; every
//! cgroup is removed. Needs a writable cgroup v2 hierarchy (CI runs as
//! root); without one each test says so and passes.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::{DEADLINE, is_doomed, wait_until};
use procward::{
    CgroupMode, Containment, Error, KillRequest, Registry, RegistryConfig, SpawnRequest,
};

/// Starts a registry that requires cgroups, or `None` (with a message)
/// where this machine cannot give it one.
async fn cgroup_registry() -> Option<Registry> {
    let config = RegistryConfig::default()
        .cgroup(CgroupMode::Required)
        .reap_orphans(true)
        .guard(true)
        .drain_grace(Duration::from_millis(200));
    match Registry::start(config).await {
        Ok(registry) => Some(registry),
        Err(err) => {
            println!("skipped: no writable cgroup v2 hierarchy here ({err})");
            None
        }
    }
}

/// The cgroup directory `pid` is in, from `/proc/<pid>/cgroup` and the
/// cgroup2 mount.
fn cgroup_of(pid: u32) -> PathBuf {
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/<pid>/cgroup");
    cgroup_dir(&own)
}

/// The directory of the cgroup a `/proc/<pid>/cgroup` text names, under
/// this machine's cgroup2 mount.
pub(super) fn cgroup_dir(proc_cgroup: &str) -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mount = mountinfo
        .lines()
        .find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            after
                .starts_with("cgroup2 ")
                .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .expect("a cgroup2 mount");
    let path = proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .expect("a cgroup v2 line");
    mount.join(path.trim_start_matches('/'))
}

fn events(cgroup: &std::path::Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(cgroup.join("cgroup.events")).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.parse().ok())?
    })
}

/// One tree with every escape of issue 14, each printing `E<pid>` once it
/// has left the process group; the last one keeps forking new `setsid`
/// escapees every 20 ms.
const ESCAPES: &str = r#"
env -i setsid sh -c 'echo E$$; exec sleep 300' &
(unset PROCWARD_TOKEN; setsid sh -c 'echo E$$; exec sleep 300') &
PROCWARD_TOKEN=nope setsid sh -c 'echo E$$; exec sleep 300' &
python3 -c 'import os, ctypes, time
os.setsid()
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
print("E%d" % os.getpid(), flush=True)
time.sleep(300)' &
setsid sh -c 'echo E$$; while :; do setsid sh -c "echo E\$\$; exec sleep 300" & sleep 0.02; done' &
exec sleep 300
"#;

/// The escapees needed before acting: five, and at least one re-forked.
const MIN_ESCAPEES: usize = 6;

/// Spawns [`ESCAPES`] and waits until enough escapees printed their pids.
async fn spawn_escapes(registry: &Registry) -> (procward::Snapshot, Vec<u32>, PathBuf) {
    let spawned = registry
        .spawn(SpawnRequest::shell(ESCAPES))
        .await
        .expect("spawn the escapes");
    assert_eq!(spawned.containment, Containment::Cgroup);
    let cgroup = cgroup_of(spawned.pid);
    let start = std::time::Instant::now();
    loop {
        let snap = registry.poll(spawned.handle_id).await.expect("poll");
        let pids: Vec<u32> = snap
            .stdout
            .text()
            .lines()
            .filter_map(|line| line.strip_prefix('E')?.parse().ok())
            .collect();
        if pids.len() >= MIN_ESCAPEES {
            for &pid in &pids {
                // Each left the group, and is in the handle's cgroup.
                assert_ne!(
                    crate::support::stat(pid).map(|s| s.pgrp),
                    i32::try_from(spawned.pid).ok()
                );
                assert_eq!(
                    cgroup_of(pid),
                    cgroup,
                    "escapee {pid} is not in the tree's cgroup"
                );
            }
            return (spawned, pids, cgroup);
        }
        assert!(snap.running(), "the tree ended early: {snap:?}");
        assert!(start.elapsed() < DEADLINE, "too few escapees: {snap:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every escapee is dead (or a zombie), the handle's cgroup is gone.
fn assert_all_dead(pids: &[u32], cgroup: &std::path::Path) {
    let alive: Vec<u32> = pids.iter().copied().filter(|&p| !is_doomed(p)).collect();
    assert!(alive.is_empty(), "escapees survived: {alive:?}");
    assert!(!cgroup.exists(), "{} was left behind", cgroup.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escape_dies_on_kill() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let (spawned, pids, cgroup) = spawn_escapes(&registry).await;
    let parent = cgroup.parent().unwrap().to_owned();
    let killed = registry
        .kill(spawned.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.status, procward::Status::Killed);
    // Terminal only once the cgroup was empty: nothing is left now.
    assert_all_dead(&pids, &cgroup);
    registry.shutdown().await.unwrap();
    assert!(!parent.exists(), "the registry's cgroup was left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escape_dies_on_release() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let (spawned, pids, cgroup) = spawn_escapes(&registry).await;
    let parent = cgroup.parent().unwrap().to_owned();
    registry.release(spawned.handle_id).await.unwrap();
    assert_all_dead(&pids, &cgroup);
    registry.shutdown().await.unwrap();
    assert!(!parent.exists(), "the registry's cgroup was left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escape_dies_on_shutdown() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let (_a, mut pids, first) = spawn_escapes(&registry).await;
    let (_b, more, second) = spawn_escapes(&registry).await;
    pids.extend(more);
    let parent = first.parent().unwrap().to_owned();
    registry.shutdown().await.unwrap();
    assert_all_dead(&pids, &first);
    assert_all_dead(&pids, &second);
    assert!(!parent.exists(), "the registry's cgroup was left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escapee_dies_when_its_leader_exits() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    // The leader exits once the escapee is up; the escapee holds no pipe,
    // so the handle ends at once, and the escapee dies with the cgroup.
    let file = crate::support::unique_path("escapee");
    let spawned = registry
        .spawn(
            SpawnRequest::shell(
                "setsid sh -c 'echo $$ > \"$F.tmp\"; mv \"$F.tmp\" \"$F\"; exec sleep 300' \
                 >/dev/null 2>&1 </dev/null & \
                 while [ ! -s \"$F\" ]; do sleep 0.01; done",
            )
            .env("F", file.display().to_string()),
        )
        .await
        .unwrap();
    let cgroup = cgroup_of(spawned.pid);
    let done = registry.wait(spawned.handle_id, None).await.unwrap();
    assert_eq!(done.snapshot.status, procward::Status::Exited);
    assert_eq!(done.snapshot.containment, Containment::Cgroup);
    let escapee: u32 = fs::read_to_string(&file).unwrap().trim().parse().unwrap();
    let _ = fs::remove_file(&file);
    assert_all_dead(&[escapee], &cgroup);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_freezes_the_escapees_and_resume_thaws_them() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let (spawned, pids, cgroup) = spawn_escapes(&registry).await;
    let paused = registry.pause(spawned.handle_id).await.unwrap();
    assert!(paused.paused);
    // The kernel freezes asynchronously; `frozen 1` once every member is.
    wait_until("the cgroup to report frozen", || {
        events(&cgroup, "frozen") == Some(1)
    })
    .await;
    let members = fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
    let members: Vec<u32> = members.lines().filter_map(|l| l.parse().ok()).collect();
    for pid in &pids {
        assert!(
            members.contains(pid),
            "escapee {pid} is not in the frozen cgroup"
        );
    }
    // Frozen: the re-forking escapee forks no more.
    let count = members.len();
    let again = fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
    assert_eq!(again.lines().count(), count);
    registry.resume(spawned.handle_id).await.unwrap();
    wait_until("the cgroup to thaw", || {
        events(&cgroup, "frozen") == Some(0)
    })
    .await;
    // A kill of a paused tree still kills it all.
    registry.pause(spawned.handle_id).await.unwrap();
    registry
        .kill(spawned.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_all_dead(&pids, &cgroup);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_runs_in_its_cgroup_from_its_first_instruction() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    // `cat` reads its own cgroup: it was placed before it was executed.
    let spawned = registry
        .spawn(SpawnRequest::argv(["cat", "/proc/self/cgroup"]))
        .await
        .unwrap();
    let done = registry.wait(spawned.handle_id, None).await.unwrap();
    let text = done.snapshot.stdout.text().into_owned();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line");
    let mut parts = line.rsplit('/');
    let leaf = parts.next().unwrap();
    let parent = parts.next().unwrap();
    assert!(leaf.starts_with('t'), "{line}");
    assert!(parent.starts_with("procward-"), "{line}");
    registry.shutdown().await.unwrap();
}

/// A tree running as root may make cgroups below its own and move into
/// them: its end removes those too, deepest first, before it is terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroups_the_tree_made_below_its_own_are_removed_too() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let spawned = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let cgroup = cgroup_of(spawned.pid);
    // What the tree would do for itself: a cgroup two levels below its
    // own, with the leader moved into the deepest.
    let deep = cgroup.join("below").join("deeper");
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("cgroup.procs"), spawned.pid.to_string()).unwrap();
    assert_eq!(cgroup_of(spawned.pid), deep);
    let killed = registry
        .kill(spawned.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.status, procward::Status::Killed);
    assert!(!cgroup.exists(), "{} was left behind", cgroup.display());
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_trees_end_and_leave_no_cgroup_behind() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let mut ids = Vec::new();
    let mut parent = None;
    for i in 0..100 {
        let line = if i % 2 == 0 {
            "setsid sleep 300 & exit 0"
        } else {
            "exit 3"
        };
        let spawned = registry.spawn(SpawnRequest::shell(line)).await.unwrap();
        if parent.is_none()
            && let Ok(text) = fs::read_to_string(format!("/proc/{}/cgroup", spawned.pid))
            && text.contains("procward-")
        {
            parent = Some(cgroup_of(spawned.pid).parent().unwrap().to_owned());
        }
        ids.push(spawned.handle_id);
    }
    for id in ids {
        let done = registry.wait(id, None).await.unwrap();
        assert!(done.snapshot.status.is_terminal());
    }
    if let Some(parent) = &parent {
        let left: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "cgroups of ended trees left: {left:?}");
    }
    registry.shutdown().await.unwrap();
    if let Some(parent) = parent {
        assert!(!parent.exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_without_its_controller_is_denied_with_the_rule() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let mut request = SpawnRequest::shell("exit 0");
    request.limits.pids_max = Some(8);
    match registry.spawn(request).await {
        Err(Error::PolicyDenied { rule, reason }) => {
            assert_eq!(rule, procward::policy::DenyRule::Limit);
            assert!(reason.contains("pids"), "{reason}");
            println!("pids controller absent here: {reason}");
        }
        Ok(spawned) => {
            // The controller is enabled: the tree cannot pass 8 processes.
            registry
                .kill(spawned.handle_id, KillRequest::default())
                .await
                .unwrap();
            let mut forks = SpawnRequest::shell(
                "i=0; while [ $i -lt 20 ]; do sleep 300 & i=$((i+1)); done; wait",
            );
            forks.limits.pids_max = Some(8);
            let forked = registry.spawn(forks).await.unwrap();
            crate::support::eventually("a refused fork", || {
                let registry = registry.clone();
                let id = forked.handle_id;
                async move {
                    let snap = registry.poll(id).await.unwrap();
                    snap.stderr.text().contains("fork")
                }
            })
            .await;
            let done = registry
                .kill(forked.handle_id, KillRequest::default())
                .await
                .unwrap();
            let peak = done.usage.and_then(|u| u.peak_processes);
            assert!(peak.is_some_and(|p| p <= 8), "{peak:?}");
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_group_mode_says_so_and_refuses_cgroup_limits() {
    let registry = Registry::start(RegistryConfig::default().cgroup(CgroupMode::Off))
        .await
        .unwrap();
    let spawned = registry.spawn(SpawnRequest::shell("exit 0")).await.unwrap();
    assert_eq!(spawned.containment, Containment::ProcessGroup);
    let done = registry.wait(spawned.handle_id, None).await.unwrap();
    assert_eq!(done.snapshot.containment, Containment::ProcessGroup);
    let mut request = SpawnRequest::shell("exit 0");
    request.limits.memory_max = Some(1 << 30);
    match registry.spawn(request).await {
        Err(Error::PolicyDenied { rule, .. }) => {
            assert_eq!(rule, procward::policy::DenyRule::Limit)
        }
        other => panic!("expected a limit denial, got {other:?}"),
    }
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_limit_reaches_the_tree_or_is_denied_with_the_rule() {
    let profile: procward::policy::PolicyConfig =
        serde_json::from_str(r#"{"pids_max": 16, "memory_max": 268435456}"#).unwrap();
    let config = RegistryConfig::default().profile("tight", profile.build());
    let registry = Registry::start(config).await.unwrap();
    let request = SpawnRequest::argv(["sleep", "300"]).sandbox_profile("tight");
    match registry.spawn(request).await {
        Err(Error::PolicyDenied { rule, reason }) => {
            // No cgroup, or no memory/pids controller in it (this layout).
            assert_eq!(rule, procward::policy::DenyRule::Limit);
            assert!(
                reason.contains("memory") || reason.contains("pids") || reason.contains("cgroup"),
                "{reason}"
            );
            println!("denied here: {reason}");
        }
        Ok(spawned) => {
            let cgroup = cgroup_of(spawned.pid);
            let max = fs::read_to_string(cgroup.join("pids.max")).unwrap_or_default();
            assert_eq!(max.trim(), "16");
            registry
                .kill(spawned.handle_id, KillRequest::default())
                .await
                .unwrap();
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_kills_the_escapees_too() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let file = crate::support::unique_path("timeout-escapee");
    let mut request = SpawnRequest::shell(
        "env -i F=\"$F\" setsid sh -c 'echo $$ > \"$F.tmp\"; mv \"$F.tmp\" \"$F\"; exec sleep 300' \
         >/dev/null 2>&1 </dev/null & exec sleep 300",
    )
    .env("F", file.display().to_string());
    request.timeout = Some(Duration::from_millis(500));
    let spawned = registry.spawn(request).await.unwrap();
    let cgroup = cgroup_of(spawned.pid);
    wait_until("the escapee to start", || file.exists()).await;
    let escapee: u32 = fs::read_to_string(&file).unwrap().trim().parse().unwrap();
    let _ = fs::remove_file(&file);
    let done = registry.wait(spawned.handle_id, None).await.unwrap();
    assert_eq!(done.snapshot.status, procward::Status::TimedOut);
    assert_all_dead(&[escapee], &cgroup);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_that_cannot_be_placed_runs_nothing() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    // Find the registry's cgroup, then take it away while it is empty:
    // the next spawn's cgroup cannot be made.
    let first = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let parent = cgroup_of(first.pid).parent().unwrap().to_owned();
    registry
        .kill(first.handle_id, KillRequest::default())
        .await
        .unwrap();
    fs::remove_dir(&parent).unwrap();
    let marker = crate::support::unique_path("unplaced");
    let request = SpawnRequest::argv(["touch", &marker.display().to_string()]);
    match registry.spawn(request).await {
        Err(err @ Error::Containment { .. }) => {
            assert_eq!(err.kind(), procward::ErrorKind::SpawnFailed);
        }
        other => panic!("expected a containment error, got {other:?}"),
    }
    assert!(!marker.exists(), "the program ran uncontained");
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_removes_what_a_dead_host_left_behind() {
    let Some(registry) = cgroup_registry().await else {
        return;
    };
    let probe = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let base = cgroup_of(probe.pid)
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_owned();
    registry
        .kill(probe.handle_id, KillRequest::default())
        .await
        .unwrap();
    // A pid that names no process any more: a child we ran and reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = base.join(format!("procward-{dead}-7"));
    fs::create_dir(&stale).unwrap();
    fs::create_dir(stale.join("t3")).unwrap();
    let second = cgroup_registry().await.unwrap();
    assert!(!stale.exists(), "{} was not removed", stale.display());
    second.shutdown().await.unwrap();
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_an_escapee_nobody_waited_for() {
    // The leader exits at once; a `setsid` escapee burns CPU while it
    // holds stdout open. `wait4` would report the leader's few
    // milliseconds; the cgroup counts the escapee's time too.
    let busy = "setsid sh -c 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done' & exit 0";
    let run = |mode: CgroupMode| async move {
        let config = RegistryConfig::default()
            .cgroup(mode)
            .drain_grace(Duration::from_secs(60));
        let registry = Registry::start(config).await.ok()?;
        let spawned = registry.spawn(SpawnRequest::shell(busy)).await.unwrap();
        let done = registry.wait(spawned.handle_id, None).await.unwrap();
        registry.shutdown().await.unwrap();
        let usage = done.snapshot.usage.expect("usage once terminal");
        Some((
            done.snapshot.containment,
            usage.user_time + usage.system_time,
        ))
    };
    let Some((Containment::Cgroup, tree)) = run(CgroupMode::Required).await else {
        println!("skipped: no writable cgroup v2 hierarchy here");
        return;
    };
    let (_, leader) = run(CgroupMode::Off).await.unwrap();
    assert!(tree >= Duration::from_millis(50), "cgroup counted {tree:?}");
    assert!(
        leader < tree / 2,
        "wait4 {leader:?} vs the cgroup's {tree:?}"
    );
}
