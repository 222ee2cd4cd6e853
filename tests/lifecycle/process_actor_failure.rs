//! A process actor that dies never leaves a waiter hanging: its tree is
//! killed and its handle turns terminal with `failure` set.

use procward::{Error, KillRequest, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_actor_fails_its_handle_and_kills_its_tree() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::shell(
            "sleep 300 & echo $!; echo ready; sleep 300; echo x",
        ))
        .await
        .unwrap();
    let ready = support::wait_for_stdout(&registry, snap.handle_id, "ready").await;
    let background: u32 = ready.stdout.text().lines().next().unwrap().parse().unwrap();
    let wait = support::pending_wait(&registry, snap.handle_id).await;

    let children = registry.actor().get_children();
    assert_eq!(children.len(), 1, "one process actor per running handle");
    children[0].kill();

    // The pending wait is not left hanging: its reply port is gone.
    let answer = tokio::time::timeout(support::DEADLINE, wait)
        .await
        .expect("the pending wait hangs");
    assert!(answer.is_err(), "{answer:?}");
    support::wait_group_gone(snap.pid).await;
    support::wait_dead(background).await;

    // The handle is terminal, saying what happened, for good.
    let polled = registry.poll(snap.handle_id).await.unwrap();
    assert_eq!(polled.status, Status::Killed);
    assert!(polled.ended_at.is_some());
    assert_eq!(polled.exit_code, None);
    let failure = polled.failure.clone().expect("failure is set");
    assert!(failure.contains("process actor"), "{failure}");
    assert_eq!(
        registry.wait(snap.handle_id, None).await.unwrap().snapshot,
        polled
    );
    assert_eq!(
        registry
            .kill(snap.handle_id, KillRequest::default())
            .await
            .unwrap(),
        polled
    );
    let listed = registry.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, Status::Killed);

    // The registry survived its child and goes on.
    let next = registry
        .spawn(SpawnRequest::argv(["echo", "still here"]))
        .await
        .unwrap();
    let end = registry.wait(next.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.stdout.text(), "still here\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(next.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_through_the_handle_gets_no_reply_rather_than_hanging() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let waiter = tokio::spawn({
        let registry = registry.clone();
        let id = snap.handle_id;
        async move { registry.wait(id, None).await }
    });
    // The wait is pending at the process actor once a later poll of the
    // handle has been answered; keep polling until the task has sent it.
    support::eventually("the wait to be sent", || async {
        registry.poll(snap.handle_id).await.unwrap();
        !waiter.is_finished()
    })
    .await;
    let children = registry.actor().get_children();
    assert_eq!(children.len(), 1);
    children[0].kill();

    let answer = tokio::time::timeout(support::DEADLINE, waiter)
        .await
        .expect("the wait hangs")
        .unwrap();
    match answer {
        Err(Error::NoReply { operation }) => assert_eq!(operation, "wait"),
        // The kill may have landed before the wait reached the actor.
        Ok(outcome) => assert!(outcome.snapshot.failure.is_some(), "{outcome:?}"),
        Err(other) => panic!("unexpected error {other:?}"),
    }
    support::wait_group_gone(snap.pid).await;
    registry.shutdown().await.unwrap();
}
