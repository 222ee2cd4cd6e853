//! After the spawned process exits, output is drained for at most the drain
//! grace; whatever is left of its process group is then killed.

use std::time::Duration;

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;
use crate::support::TempDir;

/// Reads the pid a child wrote to `file`.
fn read_pid(file: &std::path::Path) -> u32 {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", file.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pid in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_child_holding_stdout_is_cut_off_after_the_grace() {
    let registry =
        Registry::start(RegistryConfig::default().drain_grace(Duration::from_millis(300)))
            .await
            .unwrap();
    let dir = TempDir::new("drain");
    let pid_file = dir.path().join("sleep.pid");

    // The background sleep inherits stdout and keeps it open for 300 s.
    let snap = registry
        .spawn(
            SpawnRequest::shell(r#"sleep 300 & echo $! > "$PID_FILE"; echo started"#)
                .env("PID_FILE", pid_file.to_string_lossy()),
        )
        .await
        .unwrap();

    // The wait's own timeout is far beyond the grace and far short of the
    // sleep: only the drain grace can make it answer in time.
    let done = registry
        .wait(snap.handle_id, Some(support::DEADLINE))
        .await
        .unwrap();
    assert!(!done.timed_out, "the drain outlived its grace");
    let end = done.snapshot;
    assert_eq!(end.status, Status::Exited);
    assert_eq!(end.exit_code, Some(0));
    assert_eq!(end.signal, None);
    assert_eq!(end.stdout.text(), "started\n");

    // The sleep was killed with the rest of the group when the drain ended.
    let sleep = read_pid(&pid_file);
    assert!(support::is_doomed(sleep), "{:?}", support::stat(sleep));
    support::wait_dead(sleep).await;
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_written_during_the_drain_is_kept() {
    let registry = Registry::start(RegistryConfig::default().drain_grace(Duration::from_secs(600)))
        .await
        .unwrap();
    let gate = support::Gate::new();

    // The shell exits at once; its background child writes later, when the
    // test opens the gate, and then closes the pipes by exiting.
    let snap = registry
        .spawn(
            SpawnRequest::shell(
                r#"(while [ ! -e "$GATE" ]; do sleep 0.01; done; echo late; echo late-err >&2) & echo early"#,
            )
            .env("GATE", gate.path().to_string_lossy()),
        )
        .await
        .unwrap();
    let early = registry
        .wait(snap.handle_id, Some(std::time::Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(early.timed_out, "draining: the handle is not terminal yet");
    assert!(early.snapshot.running());

    gate.open();
    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::Exited);
    assert_eq!(end.exit_code, Some(0));
    assert_eq!(end.stdout.text(), "early\nlate\n");
    assert_eq!(end.stderr.text(), "late-err\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_child_without_the_pipes_is_killed_at_once() {
    // The grace is far longer than the wait: with the pipes closed, there is
    // nothing to drain and no reason to wait for it.
    let registry = Registry::start(RegistryConfig::default().drain_grace(Duration::from_secs(600)))
        .await
        .unwrap();
    let dir = TempDir::new("leftover");
    let pid_file = dir.path().join("sleep.pid");

    let snap = registry
        .spawn(
            SpawnRequest::shell(
                r#"sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$PID_FILE"; echo started"#,
            )
            .env("PID_FILE", pid_file.to_string_lossy()),
        )
        .await
        .unwrap();
    let done = registry
        .wait(snap.handle_id, Some(support::DEADLINE))
        .await
        .unwrap();
    assert!(!done.timed_out);
    assert_eq!(done.snapshot.status, Status::Exited);
    assert_eq!(done.snapshot.stdout.text(), "started\n");

    let sleep = read_pid(&pid_file);
    assert!(support::is_doomed(sleep), "{:?}", support::stat(sleep));
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_drain_ends_it_and_reports_the_exit() {
    let registry = Registry::start(RegistryConfig::default().drain_grace(Duration::from_secs(600)))
        .await
        .unwrap();

    let snap = registry
        .spawn(SpawnRequest::shell("sleep 300 & echo started; exit 6"))
        .await
        .unwrap();
    // Draining once the shell is a zombie and its exit has been seen; the
    // handle stays running until the drain ends.
    support::wait_until("the shell to exit", || {
        support::stat(snap.pid).is_some_and(|p| p.is_zombie())
    })
    .await;
    support::wait_for_stdout(&registry, snap.handle_id, "started").await;

    let killed = registry
        .kill(snap.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert!(killed.status.is_terminal());
    assert_eq!(killed.stdout.text(), "started\n");
    // The shell's own exit is reported whoever settled the status.
    assert_eq!(killed.exit_code, Some(6), "{killed:?}");
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}
