//! procward supervises OS child processes with [ractor] actors.
//!
//! A [`RegistryActor`] owns the table of handles and starts one process
//! actor per OS process; that actor owns the process's state and answers
//! poll, wait and kill with [`Snapshot`]s. Callers use the cheap, cloneable
//! [`Registry`] handle, or send [`RegistryMsg`]s to the actor directly with
//! `call!` / `call_t!`.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest, Status};
//!
//! # #[tokio::main] async fn main() -> Result<(), procward::Error> {
//! let registry = Registry::start(RegistryConfig::default()).await?;
//!
//! let echo = registry.spawn(SpawnRequest::argv(["echo", "hello"])).await?;
//! let done = registry.wait(echo.handle_id, None).await?;
//! assert_eq!(done.snapshot.stdout.text(), "hello\n");
//!
//! let tree = registry.spawn(SpawnRequest::shell("sleep 30; echo never")).await?;
//! let killed = registry.kill(tree.handle_id, KillRequest::default()).await?;
//! assert_eq!(killed.status, Status::Killed);
//!
//! registry.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `cli` (default): the `procward` program (`serve`, `ctl`, and `node`
//!   with `cluster`), with `serve`. It brings `clap`, `tracing-subscriber`
//!   and `mimalloc`.
//! - `serve`: the JSON protocol, `procward::json` (`serde_json`, `base64`).
//! - `cluster`: registries on other machines, `cluster` (ractor_cluster).
//!
//! A program that only embeds the library turns the defaults off
//! (`procward = { version = "0.1", default-features = false }`) and
//! builds none of the program's crates.
//!
//! # Caveats
//!
//! - Linux only: procward watches children with pidfds (Linux 5.3+).
//! - Every child starts in a process group of its own, and a kill signals
//!   that group. A descendant that leaves the group (`setsid`, `setpgid`)
//!   is not reached.
//! - procward must be the only one reaping its children. A program that sets
//!   `SIGCHLD` to `SIG_IGN` or calls `waitpid(-1, ..)` takes the exit status
//!   away, and with it the guarantee that no signal reaches a reused pid.
//! - Pids are reused by the OS once a process is reaped: the `pid` of a
//!   terminal snapshot may name an unrelated process.
//! - With [`RegistryConfig::reap_orphans`] this OS process becomes a child
//!   subreaper, and procward reaps every zombie child of it that it did not
//!   spawn as a handle, except those in the host's own process group. A
//!   host that also starts children of its own in other process groups
//!   must not wait for them by pid.
//! - procward runs its blocking OS work on threads of its own: one per
//!   core (2 to 4) that fork, and one that sweeps ended trees and reaps
//!   orphans, shared by every registry of the process.
//!
//! # Cancel safety
//!
//! Dropping a future returned by a [`Registry`] method abandons the answer
//! only. A spawn that reached the registry still starts (except one still
//! waiting in the queue of [`CapPolicy::Queue`], which is dropped unstarted
//! when its turn comes), a kill still kills; a dropped wait leaves the
//! process alone.
//!
//! # Embedding in an actor application
//!
//! Link a [`RegistryActor`] under your supervisor and send it
//! [`RegistryMsg`]s (every reply is a `Result<_, Error>`, so `call!` ends
//! in `??`), or wrap it with [`Registry::from_actor`]. Subscribe your log
//! actor at spawn ([`SpawnRequest::subscribe`]) with a tag per job, so it
//! gets every byte from the first and knows whose it is; it has each job's
//! exit event before any wait is answered. [`Error`] is `Clone` and
//! serializable, so reports that carry it can cross actors and machines.
//! `examples/job_runner.rs` is a complete example.

#![warn(clippy::mod_module_files)]

mod actors;
mod clock;
#[cfg(feature = "cluster")]
pub mod cluster;
mod config;
mod error;
#[cfg(feature = "serve")]
pub mod json;
pub mod messages;
mod os;
pub mod policy;
mod registry;

pub use actors::{RegistryActor, RegistryState};
pub use clock::Clock;
pub use config::{CgroupMode, DEFAULT_OUTPUT_CAP, RegistryConfig};
pub use error::{Error, ErrorKind, OsError, Result, StartFailure, Unavailable};
pub use messages::{
    CapPolicy, Command, Containment, CpuMax, HandleCounts, HandleId, HandleSummary, KillRequest,
    Limits, ListFilter, Offsets, OutputEvent, OutputStream, ReadChunk, ReadRequest, RegistryMsg,
    ResourceUsage, Signal, Snapshot, SnapshotWatch, SpawnRequest, Status, Stdin, StreamOutput,
    SubscribeRequest, Subscribed, Subscriber, WaitOutcome,
};
pub use registry::{Registry, Subscription};
/// The `time` crate, whose `OffsetDateTime` stamps `started_at` and
/// `ended_at`, re-exported so callers need no version of their own.
pub use time;

/// Not part of the API (hidden, and it may change in any release): the one
/// `/proc` reader of the library, shared with procward's own integration
/// tests so that `/proc` is parsed in one place.
#[doc(hidden)]
pub mod __test_support {
    pub use crate::os::procfs;
}

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// docs/cluster.md's examples, compiled as doc tests so they stay true.
#[cfg(all(doctest, feature = "cluster"))]
#[doc = include_str!("../docs/cluster.md")]
struct ClusterDocDoctests;
