//! The typed messages of procward's actors and the plain data they carry.
//!
//! [`RegistryMsg`] is what a ractor user sends to the registry (with
//! `call!`/`call_t!`); [`ProcessMsg`] is what the registry forwards to the
//! actor that owns one process. Every payload here except the reply ports
//! and the crate-private event types is plain data that derives `serde`'s
//! `Serialize` and `Deserialize`.

mod handle_id;
mod limits;
mod output;
mod process;
mod registry;
mod signal;
mod snapshot;
mod spawn;
mod watch;

pub use handle_id::HandleId;
pub(crate) use limits::CgroupLimits;
pub use limits::{CpuMax, Limits, ResourceUsage};
pub(crate) use output::Kept;
pub use output::{
    Credit, OutputEvent, OutputStream, ReadChunk, ReadRequest, Stdin, Subscribed, Subscriber,
};
pub(crate) use process::Event;
pub use process::{ProcessEvent, ProcessMsg};
pub(crate) use registry::{Forked, Report};
pub use registry::{ProcessReport, RegistryMsg};
pub use signal::{Signal, UnknownSignal};
pub use snapshot::{
    Containment, HandleSummary, ListFilter, Snapshot, Status, StreamOutput, WaitOutcome,
};
pub use spawn::{Command, KillRequest, SHELL, SpawnRequest};
pub use watch::{PUBLISH_INTERVAL, SnapshotWatch};
