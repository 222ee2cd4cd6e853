//! A spawn timeout kills the process tree; its status is then `timed_out`.

use std::time::Duration;

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_past_its_timeout_is_killed_and_timed_out() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let snap = registry
        .spawn(
            SpawnRequest::shell("sleep 30 & echo $!; sleep 30; echo x")
                .timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert_eq!(snap.status, Status::Running);

    let done = registry.wait(snap.handle_id, None).await.unwrap();
    assert!(!done.timed_out, "the wait had no timeout of its own");
    let end = done.snapshot;
    assert_eq!(end.status, Status::TimedOut);
    assert!(end.status.is_terminal());
    assert_eq!(end.status.as_str(), "timed_out");
    assert_eq!(end.exit_code, None);
    assert_eq!(end.signal, Some(9));
    assert!(end.ended_at.is_some());
    assert!(!end.stdout.text().contains('x'), "{end:?}");
    // On a loaded machine the shell may not have got as far as the echo.
    if let Ok(background) = end.stdout.text().trim().parse::<u32>() {
        assert!(support::is_doomed(background));
    }
    support::wait_group_gone(snap.pid).await;

    // Terminal for good: a kill now is a no-op answering `timed_out`.
    let killed = registry
        .kill(snap.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed, end);

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_ends_first_is_not_touched_by_its_timeout() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let snap = registry
        .spawn(SpawnRequest::argv(["echo", "quick"]).timeout(Duration::from_secs(600)))
        .await
        .unwrap();
    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::Exited);
    assert_eq!(end.exit_code, Some(0));
    assert_eq!(end.stdout.text(), "quick\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_also_bounds_the_output_drain() {
    // The drain grace is far longer than the wait below: only the spawn
    // timeout can end the drain in time.
    let registry = Registry::start(RegistryConfig::default().drain_grace(Duration::from_secs(600)))
        .await
        .unwrap();

    let snap = registry
        .spawn(SpawnRequest::shell("sleep 300 & echo started").timeout(Duration::from_secs(2)))
        .await
        .unwrap();
    let done = registry
        .wait(snap.handle_id, Some(support::DEADLINE))
        .await
        .unwrap();
    assert!(!done.timed_out, "the drain outlived the spawn timeout");
    let end = done.snapshot;
    match end.status {
        // The usual case: the shell exited 0 long before the timeout, which
        // settled the status; the timeout then cut the drain short.
        Status::Exited => {
            assert_eq!(end.exit_code, Some(0), "{end:?}");
            assert_eq!(end.stdout.text(), "started\n");
        }
        // A machine too loaded to run the shell within the timeout.
        Status::TimedOut => assert_eq!(end.signal, Some(9), "{end:?}"),
        other => panic!("unexpected status {other}: {end:?}"),
    }
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_is_rejected() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let err = registry
        .spawn(SpawnRequest::argv(["true"]).timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(
        matches!(err, procward::Error::InvalidRequest { .. }),
        "{err:?}"
    );
    assert!(registry.list().await.unwrap().is_empty());
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_snapshot_always_names_the_signal() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    // A timeout so short that it races the exit of `true`: whichever wins,
    // the snapshot must tell one consistent story.
    for _ in 0..300 {
        let snap = registry
            .spawn(SpawnRequest::argv(["true"]).timeout(Duration::from_micros(500)))
            .await
            .unwrap();
        let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
        match end.status {
            Status::TimedOut => {
                assert_eq!((end.exit_code, end.signal), (None, Some(9)), "{end:?}")
            }
            Status::Exited => assert_eq!((end.exit_code, end.signal), (Some(0), None), "{end:?}"),
            other => panic!("unexpected status {other}: {end:?}"),
        }
        assert!(registry.release(snap.handle_id).await.unwrap());
        support::wait_group_gone(snap.pid).await;
    }
    registry.shutdown().await.unwrap();
}
