//! A process ended by a signal procward did not send is `exited`, with no
//! exit code and that signal's number.

use std::time::Duration;

use procward::{Registry, RegistryConfig, SpawnRequest, Status};
use rustix::process::{Pid, Signal, kill_process};

use crate::support;

fn send(pid: u32, signal: Signal) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .expect("a child's pid is a valid positive pid");
    kill_process(pid, signal).expect("the child can be signalled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_from_outside_is_reported_as_exited_by_signal_9() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();

    // Safe to signal by pid: procward has not reaped the child (it runs),
    // so the pid cannot have been reused.
    send(snap.pid, Signal::KILL);

    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::Exited);
    assert_eq!(end.exit_code, None);
    assert_eq!(end.signal, Some(9));
    assert!(end.ended_at.is_some());
    assert_eq!(end.failure, None);

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_shell_of_a_tree_reports_15_and_the_rest_is_killed() {
    let registry =
        Registry::start(RegistryConfig::default().drain_grace(Duration::from_millis(200)))
            .await
            .unwrap();
    let snap = registry
        .spawn(SpawnRequest::shell(
            "sleep 300 & echo $!; echo ready; sleep 300; echo x",
        ))
        .await
        .unwrap();
    let ready = support::wait_for_stdout(&registry, snap.handle_id, "ready").await;
    let background: u32 = ready.stdout.text().lines().next().unwrap().parse().unwrap();

    // Only the shell gets it; its children keep the pipes open until the
    // drain grace ends and procward kills the rest of the group.
    send(snap.pid, Signal::TERM);

    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::Exited);
    assert_eq!(end.exit_code, None);
    assert_eq!(end.signal, Some(15));
    assert!(!end.stdout.text().contains('x'));
    assert!(support::is_doomed(background));
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}
