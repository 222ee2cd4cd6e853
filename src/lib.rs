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
//! only. A spawn that reached the registry still starts, a kill still
//! kills; a dropped wait leaves the process alone.

#![warn(clippy::mod_module_files)]

mod actors;
mod clock;
#[cfg(feature = "cluster")]
pub mod cluster;
mod config;
mod error;
pub mod json;
pub mod messages;
mod os;
pub mod policy;
mod registry;

pub use actors::{RegistryActor, RegistryState};
pub use clock::Clock;
pub use config::{CgroupMode, DEFAULT_OUTPUT_CAP, RegistryConfig};
pub use error::{Error, ErrorKind, Result};
pub use messages::{
    Command, Containment, CpuMax, HandleId, HandleSummary, KillRequest, Limits, ListFilter,
    OutputEvent, OutputStream, ProcessMsg, ReadChunk, ReadRequest, RegistryMsg, ResourceUsage,
    Signal, Snapshot, SnapshotWatch, SpawnRequest, Status, Stdin, StreamOutput, Subscribed,
    Subscriber, WaitOutcome,
};
pub use registry::{Registry, Subscription};

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// docs/cluster.md's examples, compiled as doc tests so they stay true.
#[cfg(all(doctest, feature = "cluster"))]
#[doc = include_str!("../docs/cluster.md")]
struct ClusterDocDoctests;
