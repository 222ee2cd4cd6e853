//! Spawn, poll and wait: what a snapshot says about a process from start to
//! end, and that the request's environment, directory and streams are
//! honoured.

use procward::{Registry, RegistryConfig, SpawnRequest, Status};
use time::OffsetDateTime;

use crate::support;
use crate::support::{Gate, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_exits_zero_with_its_stdout() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let before = OffsetDateTime::now_utc();
    let spawned = registry
        .spawn(SpawnRequest::argv(["echo", "hello"]))
        .await
        .unwrap();
    let after = OffsetDateTime::now_utc();
    assert_eq!(spawned.status, Status::Running);
    assert!(spawned.running());
    assert!(before <= spawned.started_at && spawned.started_at <= after);
    assert_eq!(spawned.ended_at, None);
    assert_eq!(spawned.exit_code, None);
    assert_eq!(spawned.signal, None);
    assert_eq!(spawned.failure, None);

    let done = registry.wait(spawned.handle_id, None).await.unwrap();
    assert!(!done.timed_out);
    let snap = done.snapshot;
    assert_eq!(snap.status, Status::Exited);
    assert!(!snap.running());
    assert_eq!(snap.exit_code, Some(0));
    assert_eq!(snap.signal, None);
    assert_eq!(snap.stdout.text(), "hello\n");
    assert_eq!(snap.stdout.total_bytes, 6);
    assert!(!snap.stdout.truncated);
    assert_eq!(snap.stderr.text(), "");
    assert_eq!(snap.failure, None);
    assert_eq!(snap.handle_id, spawned.handle_id);
    assert_eq!(snap.pid, spawned.pid);
    assert_eq!(snap.started_at, spawned.started_at);
    let ended_at = snap.ended_at.expect("a terminal snapshot has ended_at");
    assert!(snap.started_at <= ended_at);

    // A finished handle remembers its end: waiting and polling again give
    // the same snapshot.
    let again = registry.wait(spawned.handle_id, None).await.unwrap();
    assert_eq!(again.snapshot, snap);
    assert_eq!(registry.poll(spawned.handle_id).await.unwrap(), snap);

    registry.shutdown().await.unwrap();
    support::wait_group_gone(spawned.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_id_names_the_pid_in_hex_and_a_spawn_number() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let gate = Gate::new();

    let first = registry.spawn(gate.shell("true")).await.unwrap();
    let second = registry.spawn(gate.shell("true")).await.unwrap();

    for snap in [&first, &second] {
        let id = snap.handle_id;
        assert_eq!(id.pid(), snap.pid);
        let text = id.to_string();
        let prefix = format!("psh-{:x}-", snap.pid);
        let seq = text
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{text} does not start with {prefix}"));
        assert_eq!(seq, id.seq().to_string());
        assert_eq!(text.parse::<procward::HandleId>().unwrap(), id);

        // The child leads a process group of its own, so a kill reaches its
        // whole tree.
        let proc = support::stat(snap.pid).expect("the child is in /proc");
        assert_eq!(proc.pgrp, support::raw_pid(snap.pid), "{proc:?}");
        assert_eq!(proc.ppid, support::raw_pid(std::process::id()), "{proc:?}");
    }
    assert_ne!(first.pid, second.pid);
    assert!(first.handle_id.seq() < second.handle_id.seq());
    assert!(first.handle_id < second.handle_id);

    gate.open();
    for snap in [&first, &second] {
        let done = registry.wait(snap.handle_id, None).await.unwrap();
        assert_eq!(done.snapshot.exit_code, Some(0));
    }
    registry.shutdown().await.unwrap();
    support::wait_group_gone(first.pid).await;
    support::wait_group_gone(second.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_is_displayed_as_given() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let argv = registry
        .spawn(SpawnRequest::argv(["echo", "two words", "three"]))
        .await
        .unwrap();
    assert_eq!(&*argv.command, "echo two words three");
    let shell = registry
        .spawn(SpawnRequest::shell("echo a;  echo 'b c' >&2"))
        .await
        .unwrap();
    assert_eq!(&*shell.command, "echo a;  echo 'b c' >&2");

    // No shell in the argv form: the argument is one word, unexpanded.
    let argv_done = registry.wait(argv.handle_id, None).await.unwrap();
    assert_eq!(argv_done.snapshot.stdout.text(), "two words three\n");
    assert_eq!(&*argv_done.snapshot.command, "echo two words three");
    let shell_done = registry.wait(shell.handle_id, None).await.unwrap();
    assert_eq!(shell_done.snapshot.stdout.text(), "a\n");
    assert_eq!(shell_done.snapshot.stderr.text(), "b c\n");

    let listed: Vec<_> = registry
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.handle_id, s.command.to_string(), s.pid))
        .collect();
    assert_eq!(
        listed,
        vec![
            (argv.handle_id, "echo two words three".to_owned(), argv.pid),
            (
                shell.handle_id,
                "echo a;  echo 'b c' >&2".to_owned(),
                shell.pid
            ),
        ]
    );

    registry.shutdown().await.unwrap();
    support::wait_group_gone(argv.pid).await;
    support::wait_group_gone(shell.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_are_captured_apart() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let snap = registry
        .spawn(SpawnRequest::shell(
            "echo out1; echo err1 >&2; echo out2; printf err2 >&2; exit 7",
        ))
        .await
        .unwrap();
    let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, Some(7));
    assert_eq!(done.signal, None);
    assert_eq!(done.stdout.text(), "out1\nout2\n");
    assert_eq!(done.stderr.text(), "err1\nerr2");
    assert_eq!(done.stderr.total_bytes, 9);

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_is_added_to_the_inherited_environment() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let snap = registry
        .spawn(
            SpawnRequest::shell(r#"echo "$PROCWARD_A|$PROCWARD_B|${PATH:+has-path}""#)
                .env("PROCWARD_A", "one")
                .env("PROCWARD_B", "two words")
                .env("PROCWARD_A", "later wins"),
        )
        .await
        .unwrap();
    let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(done.stdout.text(), "later wins|two words|has-path\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_env_passes_only_the_variables_given() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let snap = registry
        .spawn(
            SpawnRequest::argv(["/usr/bin/env"])
                .clear_env()
                .env("ONLY", "this"),
        )
        .await
        .unwrap();
    let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(done.exit_code, Some(0), "{done:?}");
    assert_eq!(done.stdout.text(), "ONLY=this\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_is_the_working_directory() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let dir = TempDir::new("cwd");
    std::fs::write(dir.path().join("marker.txt"), "in the dir\n").unwrap();

    let argv = registry
        .spawn(SpawnRequest::argv(["cat", "marker.txt"]).cwd(dir.path()))
        .await
        .unwrap();
    let shell = registry
        .spawn(SpawnRequest::shell("pwd -P").cwd(dir.path()))
        .await
        .unwrap();

    let argv_done = registry.wait(argv.handle_id, None).await.unwrap().snapshot;
    assert_eq!(argv_done.stdout.text(), "in the dir\n", "{argv_done:?}");
    let shell_done = registry.wait(shell.handle_id, None).await.unwrap().snapshot;
    let real = dir.path().canonicalize().unwrap();
    assert_eq!(shell_done.stdout.text(), format!("{}\n", real.display()));

    registry.shutdown().await.unwrap();
    support::wait_group_gone(argv.pid).await;
    support::wait_group_gone(shell.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_shows_running_then_exited() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let gate = Gate::new();

    let snap = registry
        .spawn(gate.shell("echo done; exit 3"))
        .await
        .unwrap();
    let id = snap.handle_id;

    // Held at the gate: running, however often it is asked.
    for _ in 0..3 {
        let polled = registry.poll(id).await.unwrap();
        assert_eq!(polled.status, Status::Running);
        assert!(polled.running());
        assert_eq!(polled.ended_at, None);
        assert_eq!(polled.exit_code, None);
        assert_eq!(polled.signal, None);
        assert_eq!(polled.stdout.text(), "");
        assert_eq!(polled.pid, snap.pid);
    }
    let listed = registry.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, Status::Running);

    gate.open();
    let done = registry.wait(id, None).await.unwrap().snapshot;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, Some(3));
    assert_eq!(done.stdout.text(), "done\n");

    let polled = registry.poll(id).await.unwrap();
    assert_eq!(polled, done);
    assert!(!polled.running());
    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_agrees_with_a_wait_that_returned() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    // Once a wait has answered `exited`, a listing asked for afterwards must
    // not still say `running`.
    for round in 0..50 {
        let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
        assert_eq!(done.status, Status::Exited);
        let listed = registry.list().await.unwrap();
        let entry = listed
            .iter()
            .find(|s| s.handle_id == snap.handle_id)
            .expect("the handle is listed");
        assert_eq!(entry.status, Status::Exited, "round {round}: {entry:?}");
        assert!(registry.release(snap.handle_id).await.unwrap());
        support::wait_group_gone(snap.pid).await;
    }

    registry.shutdown().await.unwrap();
}
