//! Requests about a handle the registry does not know: poll, wait and kill
//! fail with `UnknownHandle` naming the id, release answers `false`; text
//! that is no handle id at all does not parse.

use procward::{Error, HandleId, KillRequest, Registry, RegistryConfig, SpawnRequest};

use crate::support;

fn assert_unknown<T: std::fmt::Debug>(result: procward::Result<T>, id: HandleId) {
    match result {
        Err(Error::UnknownHandle(named)) => {
            assert_eq!(named, id);
            let message = Error::UnknownHandle(named).to_string();
            assert!(message.contains(&id.to_string()), "{message}");
        }
        other => panic!("expected UnknownHandle({id}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_on_an_unknown_handle_says_so() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let id: HandleId = "psh-7fffffff-999999999".parse().unwrap();

    assert_unknown(registry.poll(id).await, id);
    assert_unknown(registry.wait(id, None).await, id);
    assert_unknown(
        registry
            .wait(id, Some(std::time::Duration::from_secs(1)))
            .await,
        id,
    );
    assert_unknown(registry.kill(id, KillRequest::default()).await, id);
    assert!(!registry.release(id).await.unwrap());
    assert!(registry.list().await.unwrap().is_empty());

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_of_another_registry_is_unknown_here() {
    let ours = Registry::start(RegistryConfig::default()).await.unwrap();
    let theirs = Registry::start(RegistryConfig::default()).await.unwrap();

    let snap = theirs.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    let id = snap.handle_id;
    assert_unknown(ours.poll(id).await, id);
    assert_unknown(ours.wait(id, None).await, id);
    assert_unknown(ours.kill(id, KillRequest::default()).await, id);
    assert!(!ours.release(id).await.unwrap());

    // ... and the request changed nothing in the registry that owns it.
    let end = theirs.wait(id, None).await.unwrap().snapshot;
    assert_eq!(end.exit_code, Some(0));

    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[test]
fn text_that_is_no_handle_id_is_malformed() {
    for text in [
        "",
        "psh",
        "psh-",
        "psh-1a2b",
        "psh-1a2b-",
        "psh--7",
        "psh-1A2B-7",
        "psh-xyz-7",
        "psh-1a2b-seven",
        "psh-1a2b-7-8",
        "pid-1a2b-7",
        " psh-1a2b-7",
        "psh-1a2b-7 ",
    ] {
        match text.parse::<HandleId>() {
            Err(malformed) => {
                assert_eq!(malformed.0, text);
                let error = Error::from(malformed);
                assert!(matches!(&error, Error::MalformedHandle(echoed) if echoed == text));
                let message = error.to_string();
                assert!(message.contains("psh-<pid hex>-<n>"), "{message}");
            }
            Ok(id) => panic!("{text:?}: parsed as {id}"),
        }
    }
    let id: HandleId = "psh-1a2b-7".parse().unwrap();
    assert_eq!((id.pid(), id.seq()), (0x1a2b, 7));
    assert_eq!(id.to_string(), "psh-1a2b-7");
}
