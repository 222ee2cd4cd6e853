//! A snapshot watch: the latest snapshot without a message; terminal as
//! soon as a wait returned; output within the publish interval.

use std::time::{Duration, Instant};

use procward::{Registry, RegistryConfig, SpawnRequest, Status, Stdin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_follows_the_handle_to_its_end() {
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .unwrap();
    let spawned = registry
        .spawn(SpawnRequest::shell("echo first; read go; echo second").stdin(Stdin::Pipe))
        .await
        .unwrap();
    let watch = registry.watch(spawned.handle_id).await.unwrap();
    assert_eq!(watch.get().handle_id, spawned.handle_id);
    assert_eq!(watch.get().status, Status::Running);

    // Output shows up within the publish interval (no event announces a
    // publish, so poll the watch with a generous deadline).
    let deadline = Instant::now() + Duration::from_secs(30);
    while watch.get().stdout.bytes.as_ref() != b"first\n" {
        assert!(
            Instant::now() < deadline,
            "the watch never showed the output"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Pause is published before its answer; so is the end.
    registry.pause(spawned.handle_id).await.unwrap();
    assert!(watch.get().paused);
    registry.resume(spawned.handle_id).await.unwrap();
    assert!(!watch.get().paused);
    registry.write(spawned.handle_id, "go\n").await.unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(*watch.get(), done);
    assert_eq!(watch.get().stdout.bytes.as_ref(), b"first\nsecond\n");

    // A watch of a finished handle holds its terminal snapshot, and a
    // watch outlives the handle.
    let later = registry.watch(spawned.handle_id).await.unwrap();
    assert_eq!(*later.get(), done);
    assert!(registry.release(spawned.handle_id).await.unwrap());
    assert_eq!(*watch.get(), done);
    assert!(registry.watch(spawned.handle_id).await.is_err());
    registry.shutdown().await.unwrap();
}
