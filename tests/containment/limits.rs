//! Per-spawn limits applied in the child: rlimits, nice value, umask, and a
//! new session.

use procward::{Limits, Registry, RegistryConfig, SpawnRequest, Status};

async fn run(limits: Limits, script: &str) -> procward::Snapshot {
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .expect("the registry starts");
    let spawned = registry
        .spawn(SpawnRequest::shell(script).limits(limits))
        .await
        .expect("the child starts");
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .expect("the wait answers")
        .snapshot;
    registry.shutdown().await.expect("the registry stops");
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_files_limit_is_seen_by_the_child() {
    let limits = Limits::default().open_files(64);
    let done = run(limits, "ulimit -n; ulimit -Hn").await;
    assert_eq!(done.stdout.text(), "64\n64\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_limit_ends_a_busy_loop() {
    let limits = Limits::default().cpu_seconds(1).core_bytes(0);
    let done = run(limits, "while :; do :; done").await;
    // The kernel ends it (SIGXCPU at the limit); procward did not kill it.
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, None);
    assert!(
        matches!(done.signal, Some(24) | Some(9)),
        "ended by {:?}",
        done.signal
    );
    // The usage is reported (exact CPU seconds are the kernel's business:
    // under load the accounted time can lag the limit's own clock).
    let usage = done.usage.expect("usage of a reaped child");
    assert!(
        usage.user_time + usage.system_time > std::time::Duration::ZERO,
        "{usage:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nice_umask_and_core_limit_are_seen_by_the_child() {
    let limits = Limits::default().nice(7).umask(0o027).core_bytes(0);
    let done = run(limits, "nice; umask; ulimit -c").await;
    assert_eq!(done.stdout.text(), "7\n0027\n0\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_leads_its_own_session_and_group() {
    let limits = Limits::default().new_session(true);
    // Fields 5 and 6 of /proc/<pid>/stat (after the command name) are the
    // process group and the session.
    let done = run(
        limits,
        r#"stat=$(cat /proc/$$/stat); rest=${stat##*) }; set -- $rest; echo "$$ $3 $4""#,
    )
    .await;
    let text = done.stdout.text();
    let ids: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(ids.len(), 3, "{text:?}");
    assert_eq!(ids[0], ids[1], "the child leads its process group");
    assert_eq!(ids[0], ids[2], "the child leads its session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_are_rejected_before_anything_runs() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    for limits in [Limits::default().nice(20), Limits::default().umask(0o1000)] {
        let err = registry
            .spawn(SpawnRequest::argv(["true"]).limits(limits))
            .await
            .unwrap_err();
        assert!(
            matches!(err, procward::Error::InvalidRequest { .. }),
            "{err}"
        );
    }
    registry.shutdown().await.unwrap();
}
