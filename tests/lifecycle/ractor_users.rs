//! The registry as a ractor user sees it: an actor linked under a supervisor
//! of their own, spoken to with `call!`; and what stops it.

use std::time::Duration;

use procward::{
    KillRequest, Registry, RegistryActor, RegistryConfig, RegistryMsg, SpawnRequest, Status,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus};

use crate::support;

/// A supervisor that does nothing but supervise.
struct Supervisor;

impl Actor for Supervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<()>, _args: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// A supervisor that stops its children gracefully when it stops itself,
/// instead of letting ractor kill them.
struct GracefulSupervisor;

impl Actor for GracefulSupervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<()>, _args: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<()>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        myself
            .stop_children_and_wait(Some("supervisor stopping".to_owned()), None)
            .await;
        Ok(())
    }
}

async fn supervised_registry() -> (ActorRef<()>, ActorRef<RegistryMsg>) {
    let (sup, _) = Actor::spawn(None, Supervisor, ())
        .await
        .expect("the supervisor starts");
    let (reg, _) = Actor::spawn_linked(
        None,
        RegistryActor,
        RegistryConfig::default(),
        sup.get_cell(),
    )
    .await
    .expect("the registry starts under the supervisor");
    (sup, reg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_drives_every_operation() {
    let (sup, reg) = supervised_registry().await;

    let snap = ractor::call!(reg, RegistryMsg::Spawn, SpawnRequest::argv(["echo", "hi"]))
        .unwrap()
        .unwrap();
    let done = ractor::call!(reg, RegistryMsg::Wait, snap.handle_id, None)
        .unwrap()
        .unwrap();
    assert_eq!(done.snapshot.stdout.text(), "hi\n");
    assert_eq!(done.snapshot.exit_code, Some(0));
    let polled = ractor::call!(reg, RegistryMsg::Poll, snap.handle_id)
        .unwrap()
        .unwrap();
    assert_eq!(polled, done.snapshot);

    let tree = ractor::call!(
        reg,
        RegistryMsg::Spawn,
        SpawnRequest::shell("sleep 300 & sleep 300")
    )
    .unwrap()
    .unwrap();
    let timed = ractor::call_t!(
        reg,
        RegistryMsg::Wait,
        30_000,
        tree.handle_id,
        Some(Duration::from_millis(50))
    )
    .unwrap()
    .unwrap();
    assert!(timed.timed_out);
    let killed = ractor::call!(
        reg,
        RegistryMsg::Kill,
        tree.handle_id,
        KillRequest::default()
    )
    .unwrap()
    .unwrap();
    assert_eq!(killed.status, Status::Killed);
    support::wait_group_gone(tree.pid).await;

    // Every request answers `Result<_, Error>`: `??` reads alike for all.
    let listed = ractor::call!(reg, RegistryMsg::List, procward::ListFilter::default())
        .unwrap()
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        ractor::call!(reg, RegistryMsg::Release, snap.handle_id)
            .unwrap()
            .unwrap()
    );
    assert!(
        !ractor::call!(reg, RegistryMsg::Release, snap.handle_id)
            .unwrap()
            .unwrap()
    );
    assert!(
        !ractor::call!(reg, RegistryMsg::ReopenOwner, "nobody".to_owned())
            .unwrap()
            .unwrap()
    );
    assert_eq!(
        ractor::call!(reg, RegistryMsg::ReleaseOwner, "nobody".to_owned())
            .unwrap()
            .unwrap(),
        0
    );
    let unknown = ractor::call!(reg, RegistryMsg::Poll, snap.handle_id).unwrap();
    assert!(matches!(unknown, Err(procward::Error::UnknownHandle(_))));

    // The plain handle talks to the same actor.
    let handle = Registry::from_actor(reg.clone());
    assert_eq!(handle.list().await.unwrap().len(), 1);

    sup.stop_and_wait(None, None).await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_supervisor_kills_every_child() {
    let (sup, reg) = supervised_registry().await;
    let handle = Registry::from_actor(reg.clone());

    let mut pids = Vec::new();
    for _ in 0..3 {
        let snap = handle
            .spawn(SpawnRequest::shell("sleep 300 & sleep 300"))
            .await
            .unwrap();
        pids.push(snap.pid);
    }
    let last = handle.list().await.unwrap().pop().unwrap().handle_id;
    let wait = support::pending_wait(&handle, last).await;

    // ractor kills the registry when its supervisor stops (no post_stop):
    // the children still die with their process actors.
    sup.stop_and_wait(None, None).await.unwrap();
    let answer = tokio::time::timeout(support::DEADLINE, wait)
        .await
        .expect("a pending wait hangs after the supervisor stopped");
    match answer {
        // Its reply port went with the killed process actor ...
        Err(_) => {}
        // ... or the actor answered before it was killed.
        Ok(outcome) => assert_eq!(outcome.unwrap().snapshot.status, Status::Killed),
    }
    reg.wait(Some(support::DEADLINE)).await.unwrap();
    assert_eq!(reg.get_status(), ActorStatus::Stopped);
    for pid in pids {
        support::wait_group_gone(pid).await;
    }
    assert!(matches!(
        handle.list().await,
        Err(procward::Error::RegistryUnavailable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_from_an_actor_does_not_stop_it_when_dropped() {
    let (sup, reg) = supervised_registry().await;

    let handle = Registry::from_actor(reg.clone());
    let snap = handle
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    drop(handle);

    // Still running, and so is its child.
    let again = Registry::from_actor(reg.clone());
    assert!(again.poll(snap.handle_id).await.unwrap().running());
    assert_eq!(reg.get_status(), ActorStatus::Running);
    assert!(support::is_alive(snap.pid));

    // A registry stopped by its handle kills and reaps its children first.
    again.shutdown().await.unwrap();
    assert!(support::stat(snap.pid).is_none(), "the child is reaped");
    support::wait_group_gone(snap.pid).await;
    // ractor's default supervision stops the supervisor once its child has.
    sup.stop(None);
    sup.wait(Some(support::DEADLINE)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_owning_handle_stops_the_registry() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let actor = registry.actor().clone();
    let snap = registry
        .spawn(SpawnRequest::shell("sleep 300 & sleep 300"))
        .await
        .unwrap();

    // A clone keeps it alive ...
    let clone = registry.clone();
    drop(registry);
    assert!(clone.poll(snap.handle_id).await.unwrap().running());

    // ... the last one stops it, and its children are killed and reaped.
    drop(clone);
    actor.wait(Some(support::DEADLINE)).await.unwrap();
    assert_eq!(actor.get_status(), ActorStatus::Stopped);
    support::wait_group_gone(snap.pid).await;
    assert!(support::stat(snap.pid).is_none(), "the child is reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_pending_waits_with_killed_and_then_refuses() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let wait = support::pending_wait(&registry, snap.handle_id).await;

    registry.shutdown().await.unwrap();
    let end = wait.await.unwrap().unwrap().snapshot;
    assert_eq!(end.status, Status::Killed);
    assert_eq!(end.signal, Some(9));
    assert!(support::stat(snap.pid).is_none(), "the child is reaped");

    assert!(matches!(
        registry.poll(snap.handle_id).await,
        Err(procward::Error::RegistryUnavailable { .. })
    ));
    assert!(matches!(
        registry.spawn(SpawnRequest::argv(["true"])).await,
        Err(procward::Error::RegistryUnavailable { .. })
    ));
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_that_stops_its_children_gets_a_clean_shutdown() {
    let (sup, _) = Actor::spawn(None, GracefulSupervisor, ()).await.unwrap();
    let (reg, _) = Actor::spawn_linked(
        None,
        RegistryActor,
        RegistryConfig::default(),
        sup.get_cell(),
    )
    .await
    .unwrap();
    let handle = Registry::from_actor(reg.clone());
    let snap = handle
        .spawn(SpawnRequest::shell("sleep 300 & sleep 300"))
        .await
        .unwrap();
    let wait = support::pending_wait(&handle, snap.handle_id).await;

    sup.stop_and_wait(None, None).await.unwrap();

    // The registry's own stop ran: the child is reaped and the pending wait
    // answered with the killed snapshot before the supervisor was stopped.
    assert_eq!(reg.get_status(), ActorStatus::Stopped);
    assert!(support::stat(snap.pid).is_none(), "the child is reaped");
    let end = wait.await.unwrap().unwrap().snapshot;
    assert_eq!(end.status, Status::Killed);
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_plain_supervisor_kills_children_and_answers_waits() {
    let (sup, reg) = supervised_registry().await;
    let handle = Registry::from_actor(reg.clone());
    let snap = handle
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let wait = support::pending_wait(&handle, snap.handle_id).await;

    // A plain supervisor's stop makes ractor *kill* the registry and its
    // process actors (no post_stop runs): each dropped child is SIGKILLed at
    // once and reaped in the background, and a pending wait gets an error
    // rather than hanging.
    sup.stop_and_wait(None, None).await.unwrap();
    reg.wait(Some(support::DEADLINE)).await.unwrap();

    let end = tokio::time::timeout(support::DEADLINE, wait)
        .await
        .expect("a pending wait must not hang when the supervisor stops");
    // The reply port was dropped with the killed actor (`Err`), or the
    // answer is the killed snapshot.
    assert!(
        end.is_err()
            || matches!(&end, Ok(Ok(outcome)) if outcome.snapshot.status == Status::Killed),
        "{end:?}"
    );
    support::wait_dead(snap.pid).await;
    support::wait_group_gone(snap.pid).await;
}
