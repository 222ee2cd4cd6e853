//! The typed messages of procward's actors and the plain data they carry.
//!
//! [`RegistryMsg`] is what a ractor user sends to the registry (with
//! `call!`/`call_t!`); the registry forwards requests about one handle to
//! the actor that owns that process, with a crate-private message type.
//! [`Request`] and [`Answer`] are the same operations as plain data
//! without reply ports, for the layers that carry them to a registry (the
//! cluster gateway, the JSON protocol), which run them with
//! [`Registry::execute`](crate::Registry::execute).
//!
//! The request and answer payloads are plain data that derive `serde`'s
//! `Serialize` and `Deserialize` ([`SpawnRequest`], [`Snapshot`],
//! [`ReadChunk`], [`OutputEvent`], [`Error`](crate::Error), ...), except
//! these, which hold something local to this OS process:
//!
//! - the reply ports, and the messages that carry them;
//! - [`Subscriber`] and [`SubscribeRequest`]: a channel or an actor
//!   reference ([`SpawnRequest::subscribers`] is skipped when serialized);
//! - [`SnapshotWatch`]: a shared cell the process actor writes;
//! - [`Credit`]: a place in a subscriber's window (skipped when an
//!   [`OutputEvent`] is serialized);
//! - [`ProcessReport`]: procward's own internal traffic.

mod cap_policy;
pub(crate) mod handle_id;
mod limits;
mod output;
mod process_msg;
mod registry_msg;
mod request;
mod routes;
mod signal;
mod snapshot;
mod spawn;
mod watch;

pub use cap_policy::{CapPolicy, DEFAULT_MAX_QUEUED};
pub use handle_id::{HandleId, MalformedHandleId};
pub(crate) use limits::CgroupLimits;
pub use limits::{CpuMax, Limits, ResourceUsage};
pub use output::{
    Credit, DEFAULT_OUTPUT_CAP, Offsets, OutputEvent, OutputStream, ReadChunk, ReadRequest, Stdin,
    SubscribeRequest, Subscribed, Subscriber,
};
pub(crate) use output::{Kept, SUBSCRIBER_WINDOW};
pub(crate) use process_msg::Event;
pub(crate) use process_msg::{ProcessEvent, ProcessMsg};
pub(crate) use registry_msg::Report;
pub use registry_msg::{ProcessReport, RegistryMsg};
pub use request::{Answer, Request, UnexpectedAnswer};
pub(crate) use routes::{Route, RouteBook, RoutesCell};
pub use signal::{Signal, UnknownSignal};
pub use snapshot::{
    Containment, HandleCounts, HandleSummary, ListFilter, Snapshot, Status, StreamOutput,
    WaitOutcome,
};
pub use spawn::{Command, KillRequest, SHELL, SpawnRequest};
pub use watch::{PUBLISH_INTERVAL, SnapshotWatch};
