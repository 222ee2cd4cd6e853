//! Spawns that cannot start fail with a typed error and start nothing;
//! invalid requests are rejected before anything runs.

use std::io;

use procward::{Error, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_spawn_error_naming_it() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    let err = registry
        .spawn(SpawnRequest::argv(["procward-no-such-program", "arg"]))
        .await
        .unwrap_err();
    match &err {
        Error::Spawn {
            program,
            cwd,
            source,
        } => {
            assert_eq!(program, "procward-no-such-program");
            assert_eq!(*cwd, None);
            assert_eq!(source.kind(), io::ErrorKind::NotFound, "{source:?}");
        }
        other => panic!("expected Error::Spawn, got {other:?}"),
    }
    assert!(
        err.to_string().contains("procward-no-such-program"),
        "{err}"
    );
    let source = std::error::Error::source(&err).expect("the OS error is the source");
    // Kept as plain data (`Error` is `Clone` and serializable), with the
    // OS error's kind, errno and message.
    let os = source
        .downcast_ref::<procward::OsError>()
        .expect("the source is an OsError");
    assert_eq!(os.kind(), io::ErrorKind::NotFound);
    assert_eq!(os.raw_os_error(), Some(libc::ENOENT));

    let err = registry
        .spawn(SpawnRequest::argv(["/nonexistent/procward/bin"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Spawn { program, source, .. }
            if program == "/nonexistent/procward/bin" && source.kind() == io::ErrorKind::NotFound),
        "{err:?}"
    );

    // Nothing was registered, and the registry still works.
    assert!(registry.list().await.unwrap().is_empty());
    let ok = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    assert_eq!(
        registry
            .wait(ok.handle_id, None)
            .await
            .unwrap()
            .snapshot
            .status,
        Status::Exited
    );

    registry.shutdown().await.unwrap();
    support::wait_group_gone(ok.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_is_not_executable_is_a_spawn_error() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let dir = support::TempDir::new("noexec");
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();

    let err = registry
        .spawn(SpawnRequest::argv([script.to_string_lossy()]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::PermissionDenied),
        "{err:?}"
    );
    assert!(registry.list().await.unwrap().is_empty());
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_working_directory_is_a_spawn_error_naming_it() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let missing = support::unique_path("missing-cwd");

    for request in [
        SpawnRequest::argv(["true"]).cwd(&missing),
        SpawnRequest::shell("true").cwd(&missing),
    ] {
        let expected_program = request.command.program().to_owned();
        let err = registry.spawn(request).await.unwrap_err();
        match &err {
            Error::Spawn {
                program,
                cwd,
                source,
            } => {
                assert_eq!(*program, expected_program);
                assert_eq!(cwd.as_deref(), Some(missing.as_path()));
                assert_eq!(source.kind(), io::ErrorKind::NotFound, "{source:?}");
            }
            other => panic!("expected Error::Spawn, got {other:?}"),
        }
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
    }
    assert!(registry.list().await.unwrap().is_empty());
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_rejected_before_anything_runs() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let dir = support::TempDir::new("invalid");
    let witness = dir.path().join("ran");
    let touch = format!("touch '{}'", witness.display());

    let invalid = [
        SpawnRequest::argv(Vec::<String>::new()),
        SpawnRequest::argv([""]),
        SpawnRequest::argv(["sh", "-c", &touch, "a\0b"]),
        SpawnRequest::argv(["sh\0", "-c", &touch]),
        SpawnRequest::shell(format!("{touch}\0")),
        SpawnRequest::shell("   "),
        SpawnRequest::shell(&touch).env("BAD", "nul\0value"),
        SpawnRequest::shell(&touch).env("BAD=NAME", "v"),
        SpawnRequest::shell(&touch).env("", "v"),
        SpawnRequest::shell(&touch).cwd(""),
        SpawnRequest::shell(&touch).output_cap(0),
    ];
    for request in invalid {
        let shown = format!("{request:?}");
        match registry.spawn(request).await {
            Err(Error::InvalidRequest { reason }) => assert!(!reason.is_empty()),
            other => panic!("{shown}: expected InvalidRequest, got {other:?}"),
        }
    }
    assert!(registry.list().await.unwrap().is_empty());
    assert!(!witness.exists(), "an invalid request ran");

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_spawn_at_the_cap_evicts_nothing() {
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(1)
            .cap_policy(procward::CapPolicy::Evict),
    )
    .await
    .unwrap();
    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();

    let err = registry
        .spawn(SpawnRequest::argv(["procward-no-such-program"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");

    // Nothing was started, so nothing needed room.
    let polled = registry.poll(running.handle_id).await;
    assert!(
        matches!(&polled, Ok(s) if s.running()),
        "a failed spawn evicted a running process: {polled:?}"
    );

    registry.shutdown().await.unwrap();
    support::wait_group_gone(running.pid).await;
}
