//! `kill_owner` ends every process of the owner whose spawn reached the
//! registry before it, spawns still starting included; `close_owner` also
//! denies the owner's later spawns until `reopen_owner`.

use futures::future::join_all;
use procward::policy::DenyRule;
use procward::{Error, KillRequest, Registry, RegistryConfig, RegistryMsg, SpawnRequest, Status};
use ractor::concurrency::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_owner_ends_spawns_that_were_still_starting() {
    let registry = Registry::start(RegistryConfig::default().max_handles(400))
        .await
        .unwrap();
    // 200 spawns queued on the actor, then the kill, in that order: most
    // spawns are still forking when the kill is handled.
    let mut answers = Vec::new();
    for _ in 0..200 {
        let (tx, rx) = oneshot();
        registry
            .actor()
            .cast(RegistryMsg::Spawn(
                SpawnRequest::argv(["sleep", "300"]).owner("d"),
                tx.into(),
            ))
            .unwrap();
        answers.push(rx);
    }
    let (tx, kill) = oneshot();
    registry
        .actor()
        .cast(RegistryMsg::KillOwner(
            "d".into(),
            KillRequest::default(),
            tx.into(),
        ))
        .unwrap();
    let killed = kill.await.unwrap().unwrap();
    assert_eq!(killed.len(), 200, "every spawn sent before the kill ends");
    assert!(killed.iter().all(|snap| snap.status == Status::Killed));
    let spawned: Vec<_> = join_all(answers)
        .await
        .into_iter()
        .map(|answer| answer.unwrap().unwrap())
        .collect();
    for snap in &spawned {
        let now = registry.poll(snap.handle_id).await.unwrap();
        assert_eq!(now.status, Status::Killed, "{}", snap.handle_id);
    }
    registry.shutdown().await.unwrap();
    for snap in spawned {
        crate::support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_owner_cannot_spawn_until_reopened() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]).owner("session"))
        .await
        .unwrap();
    let killed = registry
        .close_owner("session", KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.len(), 1);
    match registry
        .spawn(SpawnRequest::argv(["true"]).owner("session"))
        .await
    {
        Err(Error::PolicyDenied {
            rule: DenyRule::OwnerClosed,
            ..
        }) => {}
        other => panic!("a closed owner spawned: {other:?}"),
    }
    // Other owners are not affected.
    let other = registry
        .spawn(SpawnRequest::argv(["true"]).owner("other"))
        .await
        .unwrap();
    registry.wait(other.handle_id, None).await.unwrap();
    assert!(registry.reopen_owner("session").await.unwrap());
    assert!(!registry.reopen_owner("session").await.unwrap());
    let again = registry
        .spawn(SpawnRequest::argv(["true"]).owner("session"))
        .await
        .unwrap();
    let done = registry.wait(again.handle_id, None).await.unwrap();
    assert_eq!(done.snapshot.exit_code, Some(0));
    registry.shutdown().await.unwrap();
    crate::support::wait_group_gone(running.pid).await;
}
