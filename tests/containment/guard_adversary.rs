//! The guard cannot be told to stand down by the tree it guards: a tree
//! that finds the guard, writes `exit` to its stdin through
//! `/proc/<guard>/fd/0` and holds that descriptor open, then leaves with
//! `env -i setsid`, still dies when its host is SIGKILLed. Run in the
//! registry's default containment (a cgroup where this machine allows one).
//!
//! The host is this test binary run again (`adversary_host`, which does
//! nothing unless `PROCWARD_ADVERSARY_HOST` names a scratch directory).

use std::fs;
use std::process::Command;

use super::guard::{pid_in, start_host};
use crate::support::{DEADLINE, TempDir, is_alive, wait_until};
use procward::{Registry, RegistryConfig, SpawnRequest};

const HOST_VAR: &str = "PROCWARD_ADVERSARY_HOST";

/// Finds the guard (the `procward-guard` process whose parent is the
/// host), writes `exit` into its fd 0 and keeps it open, then starts an
/// escapee with a cleared environment; each writes its pid.
const TREE: &str = r#"
for p in /proc/[0-9]*; do
  if tr '\0' ' ' < $p/cmdline 2>/dev/null | grep -q procward-guard; then
    exec 3>$p/fd/0 && echo exit >&3
  fi
done
env -i DIR="$DIR" setsid sh -c 'echo $$ > "$DIR/escapee.tmp"; mv "$DIR/escapee.tmp" "$DIR/escapee"; exec sleep 300' &
echo $$ > "$DIR/leader.tmp"; mv "$DIR/leader.tmp" "$DIR/leader"
exec sleep 300"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversary_host() {
    let Some(dir) = std::env::var_os(HOST_VAR) else {
        return;
    };
    let registry = Registry::start(RegistryConfig::default().guard(true))
        .await
        .unwrap();
    let spawned = registry
        .spawn(SpawnRequest::shell(TREE).env("DIR", dir.to_string_lossy()))
        .await
        .unwrap();
    println!("host ready {}", spawned.containment.as_str());
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_cannot_stand_the_guard_down() {
    let scratch = TempDir::new("adversary");
    let (mut host, line) = start_host(
        "containment::guard_adversary::adversary_host",
        HOST_VAR,
        scratch.path(),
    )
    .await;
    if line.ends_with("process_group") {
        // Without a cgroup an `env -i` escapee carries no token: nothing
        // can find it (docs/security.md). Only the stand-down is tested.
        println!("no cgroup here: the env -i escapee is out of reach by design");
    }
    wait_until("the tree to write its pids", || {
        ["leader", "escapee"]
            .iter()
            .all(|name| pid_in(scratch.path(), name).is_some())
    })
    .await;
    let leader = pid_in(scratch.path(), "leader").unwrap();
    let escapee = pid_in(scratch.path(), "escapee").unwrap();
    host.kill().unwrap();
    host.wait().unwrap();
    let mut check = vec![leader];
    if line.ends_with("cgroup") {
        check.push(escapee);
    }
    let killed = tokio::time::timeout(DEADLINE, async {
        while check.iter().any(|&pid| is_alive(pid)) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // Whatever happened, end what the test started (pids checked alive
    // and still the tree's: the scratch directory is in their cmdline or
    // environment only for the escapee; the leader is `sleep 300`).
    for pid in [leader, escapee] {
        if is_alive(pid)
            && fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep"))
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    assert!(
        killed.is_ok(),
        "the guard was stood down: {check:?} survived"
    );
}
