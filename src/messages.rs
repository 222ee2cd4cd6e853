//! The typed messages of procward's actors and the plain data they carry.
//!
//! [`RegistryMsg`] is what a ractor user sends to the registry (with
//! `call!`/`call_t!`); the registry forwards requests about one handle to
//! the actor that owns that process, with a crate-private message type. Every payload here except the reply ports
//! and the crate-private event types is plain data that derives `serde`'s
//! `Serialize` and `Deserialize`.

pub(crate) mod handle_id;
mod limits;
mod output;
mod process;
mod registry;
mod signal;
mod snapshot;
mod spawn;
mod watch;

pub use handle_id::{HandleId, MalformedHandleId};
pub use limits::{Limits, ResourceUsage};
pub use output::{
    Credit, DEFAULT_OUTPUT_CAP, OutputEvent, OutputStream, ReadChunk, ReadRequest, Stdin,
    Subscribed, Subscriber,
};
pub(crate) use output::{Kept, SUBSCRIBER_WINDOW};
pub(crate) use process::Event;
pub(crate) use process::{ProcessEvent, ProcessMsg};
pub(crate) use registry::Report;
pub use registry::{ProcessReport, RegistryMsg};
pub use signal::{Signal, UnknownSignal};
pub use snapshot::{
    HandleCounts, HandleSummary, ListFilter, Snapshot, Status, StreamOutput, WaitOutcome,
};
pub use spawn::{Command, KillRequest, SHELL, SpawnRequest};
pub use watch::{PUBLISH_INTERVAL, SnapshotWatch};
