//! A burst of concurrent spawns under cgroup containment. The children
//! share a spawner thread's memory until they execute their programs, so
//! a mix-up would show as a child running another spawn's argv or
//! environment, landing in another spawn's cgroup, or reporting another
//! spawn's failure: every child here prints what it was given and the
//! cgroup it runs in, a tenth of the spawns name no program and a tenth a
//! missing cwd, and every child is reaped and every cgroup removed.
//! Needs a writable cgroup v2 hierarchy; without one the test says so and
//! passes.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::cgroup::cgroup_dir;
use crate::support::{children_of, is_dead, wait_until};
use procward::{CgroupMode, Containment, Error, Registry, RegistryConfig, SpawnRequest, Status};

/// More than the spawn queue holds (256): some spawns wait for a place.
const BURST: usize = 400;

/// What one spawn of the burst ended with.
enum Outcome {
    /// Ran: its pid, stdout and how it ended.
    Ran(u32, String, Status, Option<i32>, Containment),
    /// Refused: the program and the errno.
    Failed(String, Option<i32>),
}

async fn one(registry: Registry, i: usize) -> Outcome {
    let request = match i % 10 {
        3 => SpawnRequest::argv([format!("/nonexistent/procward-burst-{i}")]),
        7 => SpawnRequest::argv(["/bin/true"]).cwd(format!("/nonexistent/procward-burst-{i}")),
        _ => SpawnRequest::argv([
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            r#"echo "$MARK $1"; cat /proc/self/cgroup"#.to_owned(),
            "sh".to_owned(),
            format!("arg-{i}"),
        ])
        .env("MARK", format!("env-{i}")),
    };
    let spawned = match registry.spawn(request).await {
        Ok(spawned) => spawned,
        Err(Error::Spawn {
            program, source, ..
        }) => return Outcome::Failed(program, source.raw_os_error()),
        Err(err) => panic!("spawn {i}: {err}"),
    };
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .expect("wait")
        .snapshot;
    registry.release(spawned.handle_id).await.expect("release");
    Outcome::Ran(
        spawned.pid,
        done.stdout.text().into_owned(),
        done.status,
        done.exit_code,
        spawned.containment,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_spawns_all_start_in_cgroups_of_their_own_and_are_reaped() {
    let config = RegistryConfig::default()
        .cgroup(CgroupMode::Required)
        .max_handles(BURST + 16)
        .drain_grace(Duration::from_millis(200));
    let registry = match Registry::start(config).await {
        Ok(registry) => registry,
        Err(err) => {
            println!("skipped: no writable cgroup v2 hierarchy here ({err})");
            return;
        }
    };
    let tasks: Vec<_> = (0..BURST)
        .map(|i| tokio::spawn(one(registry.clone(), i)))
        .collect();
    let mut pids = HashSet::new();
    let mut cgroups = HashSet::new();
    let mut parents = HashSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match (i % 10, task.await.expect("the spawn's task")) {
            (3, Outcome::Failed(program, errno)) => {
                assert_eq!(program, format!("/nonexistent/procward-burst-{i}"));
                assert_eq!(errno, Some(libc::ENOENT), "spawn {i}");
            }
            (7, Outcome::Failed(program, errno)) => {
                assert_eq!(program, "/bin/true");
                assert_eq!(errno, Some(libc::ENOENT), "spawn {i}");
            }
            (3 | 7, Outcome::Ran(..)) => panic!("spawn {i} should have failed"),
            (_, Outcome::Failed(program, errno)) => {
                panic!("spawn {i} failed: {program}, errno {errno:?}")
            }
            (_, Outcome::Ran(pid, out, status, code, containment)) => {
                assert_eq!(
                    (status, code),
                    (Status::Exited, Some(0)),
                    "spawn {i}: {out}"
                );
                assert_eq!(containment, Containment::Cgroup);
                let (first, rest) = out.split_once('\n').expect("two lines");
                assert_eq!(first, format!("env-{i} arg-{i}"));
                let dir = cgroup_dir(rest);
                assert!(cgroups.insert(dir.clone()), "cgroup {dir:?} given twice");
                parents.insert(dir.parent().map(PathBuf::from));
                pids.insert(pid);
            }
        }
    }
    assert_eq!(pids.len(), BURST - BURST / 5, "each child a process");
    assert_eq!(parents.len(), 1, "one registry cgroup: {parents:?}");
    // Every child was reaped before its handle turned terminal: none of
    // them is our zombie.
    let me = std::process::id();
    let unreaped: Vec<_> = children_of(me)
        .into_iter()
        .filter(|p| is_dead(p) && u32::try_from(p.pid).is_ok_and(|pid| pids.contains(&pid)))
        .collect();
    assert!(unreaped.is_empty(), "unreaped children: {unreaped:?}");
    let parent = parents
        .into_iter()
        .next()
        .flatten()
        .expect("the registry's cgroup");
    wait_until("every tree's cgroup to be removed", || {
        fs::read_dir(&parent).is_ok_and(|dir| {
            dir.filter_map(|e| e.ok())
                .all(|e| !e.file_type().is_ok_and(|t| t.is_dir()))
        })
    })
    .await;
    registry.shutdown().await.expect("shutdown");
    assert!(!parent.exists(), "the registry's cgroup was left behind");
}
