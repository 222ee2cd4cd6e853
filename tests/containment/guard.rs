//! The guard (`RegistryConfig::guard`): when the program hosting a
//! registry is SIGKILLed, its trees die too, escapees that left their
//! group included; an orderly stop dismisses and reaps the guard.
//!
//! The host is this test binary run again (`guard_host`, which does
//! nothing unless `PROCWARD_GUARD_HOST` names a scratch directory), so the
//! test can SIGKILL it by pid.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use procward::{Registry, RegistryConfig, SpawnRequest};

use crate::support::{DEADLINE, TempDir, children_of, is_alive, procfs, wait_until};

const HOST_VAR: &str = "PROCWARD_GUARD_HOST";

/// What the host starts: a tree whose leader, background child and
/// `setsid` escapee each write their pid to the scratch directory.
const TREE: &str = r#"sleep 300 & echo $! > "$DIR/child.tmp"; mv "$DIR/child.tmp" "$DIR/child"
setsid sleep 300 & echo $! > "$DIR/escapee.tmp"; mv "$DIR/escapee.tmp" "$DIR/escapee"
echo $$ > "$DIR/leader.tmp"; mv "$DIR/leader.tmp" "$DIR/leader"
exec sleep 300"#;

/// The host: a registry with a guard, one tree, then nothing until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_host() {
    let Some(dir) = std::env::var_os(HOST_VAR) else {
        return;
    };
    let registry = Registry::start(RegistryConfig::default().guard(true))
        .await
        .unwrap();
    registry
        .spawn(SpawnRequest::shell(TREE).env("DIR", dir.to_string_lossy()))
        .await
        .unwrap();
    println!("host ready");
    std::future::pending::<()>().await;
}

/// SIGKILLs its pids (by pid) when dropped, if they are still the tree's:
/// alive and with the scratch directory in their environment (a pid the
/// OS gave to someone else is left alone).
struct KillOnDrop(Vec<u32>, std::path::PathBuf);

impl KillOnDrop {
    fn ours(&self, pid: u32) -> bool {
        let dir = self.1.to_string_lossy();
        is_alive(pid)
            && i32::try_from(pid).is_ok_and(|pid| {
                procfs::env_var(pid, "DIR", &mut Vec::new()).is_some_and(|value| value == dir)
            })
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in self.0.iter().filter(|&&pid| self.ours(pid)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// The pid a tree wrote to `dir/name`, once it has.
pub(crate) fn pid_in(dir: &Path, name: &str) -> Option<u32> {
    fs::read_to_string(dir.join(name)).ok()?.trim().parse().ok()
}

/// Runs the test `test` of this binary as a host in a process of its own,
/// with `var` naming `dir`, and waits for its `host ready` line; returns
/// the host and that line. Panics (ending the host) if it never says so.
pub(crate) async fn start_host(test: &str, var: &str, dir: &Path) -> (Child, String) {
    let mut host = Command::new(std::env::current_exe().expect("this test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the host");
    let stdout = host.stdout.take().expect("piped stdout");
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("host ready"))
    });
    match tokio::time::timeout(DEADLINE, ready).await {
        Ok(Ok(Some(line))) => (host, line),
        _ => {
            let _ = host.kill();
            let _ = host.wait();
            panic!("the host did not start its tree");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_host_takes_its_trees_with_it() {
    let scratch = TempDir::new("guard");
    let (mut host, _) =
        start_host("containment::guard::guard_host", HOST_VAR, scratch.path()).await;
    wait_until("the tree to write its pids", || {
        ["leader", "child", "escapee"]
            .iter()
            .all(|name| pid_in(scratch.path(), name).is_some())
    })
    .await;
    let pids: Vec<u32> = ["leader", "child", "escapee"]
        .iter()
        .filter_map(|name| pid_in(scratch.path(), name))
        .collect();
    // If the guard fails, the test still ends what it started.
    let _cleanup = KillOnDrop(pids.clone(), scratch.path().to_owned());
    assert!(pids.iter().all(|&pid| is_alive(pid)), "{pids:?}");

    // SIGKILL by pid: no code of the host runs after this.
    host.kill().unwrap();
    host.wait().unwrap();
    wait_until("the guard to kill the tree and the escapee", || {
        pids.iter().all(|&pid| !is_alive(pid))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orderly_stop_dismisses_and_reaps_the_guard() {
    let me = std::process::id();
    let guards = || {
        children_of(me)
            .into_iter()
            .filter(|p| {
                fs::read(format!("/proc/{}/cmdline", p.pid)).is_ok_and(|cmdline| {
                    cmdline
                        .split(|&b| b == 0)
                        .any(|arg| arg == b"procward-guard")
                })
            })
            .map(|p| p.pid)
            .collect::<Vec<_>>()
    };
    let before = guards();
    let registry = Registry::start(RegistryConfig::default().guard(true))
        .await
        .unwrap();
    let started: Vec<i32> = guards()
        .into_iter()
        .filter(|pid| !before.contains(pid))
        .collect();
    assert_eq!(started.len(), 1, "the registry started one guard");
    let guard = started[0];
    // The guard waits on a `sleep` of its own: an orderly stop must not
    // leave it behind, not even as a zombie for whoever reaps orphans.
    let sleeps = || {
        children_of(guard as u32)
            .into_iter()
            .map(|p| p.pid)
            .collect::<Vec<_>>()
    };
    wait_until("the guard to sleep", || !sleeps().is_empty()).await;
    let its_sleeps = sleeps();
    let sleeper = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    registry.shutdown().await.unwrap();
    assert!(!is_alive(sleeper.pid));
    // Reaped, not a zombie.
    assert!(!guards().contains(&guard), "the guard was reaped");
    for pid in its_sleeps {
        assert!(
            crate::support::stat(pid as u32).is_none(),
            "the guard's sleep {pid} was left behind"
        );
    }
}
