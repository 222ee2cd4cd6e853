//! Release forgets a handle and frees its output; a running tree is killed
//! and reaped before the answer.

use procward::{Error, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_a_finished_handle_forgets_it() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let kept = registry
        .spawn(SpawnRequest::argv(["echo", "kept"]))
        .await
        .unwrap();
    let gone = registry
        .spawn(SpawnRequest::argv(["echo", "gone"]))
        .await
        .unwrap();
    registry.wait(kept.handle_id, None).await.unwrap();
    registry.wait(gone.handle_id, None).await.unwrap();

    assert!(registry.release(gone.handle_id).await.unwrap());

    let listed: Vec<_> = registry
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.handle_id)
        .collect();
    assert_eq!(listed, vec![kept.handle_id]);
    assert!(matches!(
        registry.poll(gone.handle_id).await,
        Err(Error::UnknownHandle(id)) if id == gone.handle_id
    ));
    assert!(matches!(
        registry.wait(gone.handle_id, None).await,
        Err(Error::UnknownHandle(_))
    ));
    assert!(!registry.release(gone.handle_id).await.unwrap());
    // The other handle is untouched.
    let end = registry.poll(kept.handle_id).await.unwrap();
    assert_eq!(end.stdout.text(), "kept\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(kept.pid).await;
    support::wait_group_gone(gone.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_a_running_tree_kills_and_reaps_it_first() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::shell(
            "sleep 300 & echo $!; sleep 300 & echo $!; echo ready; sleep 300",
        ))
        .await
        .unwrap();
    let ready = support::wait_for_stdout(&registry, snap.handle_id, "ready").await;
    let sleeps: Vec<u32> = ready
        .stdout
        .text()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(sleeps.len(), 2);

    assert!(registry.release(snap.handle_id).await.unwrap());

    // The answer comes after the leader is reaped and SIGKILL went to the
    // whole group.
    assert!(support::stat(snap.pid).is_none(), "the leader is reaped");
    for &pid in &sleeps {
        assert!(support::is_doomed(pid), "{:?}", support::stat(pid));
    }
    support::wait_group_gone(snap.pid).await;
    assert!(registry.list().await.unwrap().is_empty());
    assert!(matches!(
        registry.poll(snap.handle_id).await,
        Err(Error::UnknownHandle(_))
    ));
    assert!(!registry.release(snap.handle_id).await.unwrap());

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_pending_on_a_released_handle_does_not_hang() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let waiter = support::pending_wait(&registry, snap.handle_id).await;

    assert!(registry.release(snap.handle_id).await.unwrap());
    let end = waiter.await.unwrap().unwrap().snapshot;
    assert_eq!(end.status, Status::Killed);
    assert_eq!(end.signal, Some(9));

    support::wait_group_gone(snap.pid).await;
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_sent_before_a_release_gets_the_killed_snapshot() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    // Requests about one handle are answered in the order they were sent:
    // a wait sent before the release must see the tree killed.
    for round in 0..50 {
        let snap = registry
            .spawn(SpawnRequest::argv(["sleep", "300"]))
            .await
            .unwrap();
        let (tx, wait) = ractor::concurrency::oneshot();
        registry
            .actor()
            .cast(procward::RegistryMsg::Wait(snap.handle_id, None, tx.into()))
            .unwrap();
        assert!(registry.release(snap.handle_id).await.unwrap());
        let answer = wait.await;
        assert!(
            matches!(&answer, Ok(Ok(outcome)) if outcome.snapshot.status == Status::Killed),
            "round {round}: {answer:?}"
        );
        support::wait_group_gone(snap.pid).await;
    }
    registry.shutdown().await.unwrap();
}
