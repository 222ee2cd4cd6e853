//! Registries on other machines, through [`ractor_cluster`] (feature
//! `cluster`).
//!
//! A node (`procward node`) runs a local [`Registry`](crate::Registry) and
//! a [`RemoteRegistryActor`] gateway in the cluster-wide process group
//! [`REGISTRY_GROUP`]. A [`ClusterClient`] connects to nodes, finds their
//! gateways, and offers the registry's handle API with [`RemoteHandle`]s
//! that name their node. See docs/cluster.md.
//!
//! # Examples
//!
//! ```no_run
//! use procward::SpawnRequest;
//! use procward::cluster::{ClusterClient, ClientOptions, Placement};
//!
//! # #[tokio::main] async fn main() -> Result<(), procward::cluster::RemoteError> {
//! let client = ClusterClient::start(ClientOptions::new("secret cookie")).await?;
//! client.connect("10.0.0.5:7400").await?;
//! client.connect("10.0.0.6:7400").await?;
//!
//! let job = client.spawn(SpawnRequest::shell("make -j8"), Placement::LeastLoaded).await?;
//! let done = client.wait(&job.handle, None).await?;
//! println!("{} on {}: {:?}", done.snapshot.command, job.handle.node, done.snapshot.status);
//! # Ok(()) }
//! ```
//!
//! # Caveats
//!
//! - The gateway's messages are the cluster protocol; the core
//!   [`RegistryMsg`](crate::RegistryMsg) is never sent between nodes.
//! - A [`RemoteSubscription`] is pulled from its node; the pull
//!   acknowledges the chunks before it, so the node's window of 16 chunks
//!   bounds it as locally (see its docs).
//! - Anyone holding the cookie can run any command the node's policy
//!   allows, as the node's user. A peer without it can do nothing but
//!   hold a bounded, short-lived pending connection
//!   ([`HandshakeLimits`], [`PRE_AUTH_FRAME_BYTES`], [`PRE_AUTH_BYTES`];
//!   docs/cluster.md, "Unauthenticated peers").
//! - Sessions are plain TCP unless the node runs with `--tls-cert` and
//!   `--tls-key` and the client with [`ClientOptions::tls`] (see
//!   [`ClientTls`] and docs/cluster.md).
//!
//! # Cancel safety
//!
//! Dropping a future of [`ClusterClient`] abandons the answer only, as
//! locally: a spawn that reached the node still starts.

mod admission;
mod client;
mod cookie;
mod error;
mod events;
mod feed;
mod gateway;
mod listener;
mod node;
mod pre_auth;
mod private_file;
mod subscription;
mod tls;
mod wire;

pub use admission::HandshakeLimits;
pub use client::{ClientOptions, ClusterClient, Placement, RemoteHandle, RemoteSnapshot};
pub use cookie::read_cookie_file;
pub use error::{RemoteError, RemoteErrorKind};
pub use feed::{FeedBatch, FeedStarted, NextArgs, SubscribeArgs};
pub use gateway::{
    GatewayArgs, GatewayState, NodeInfo, REGISTRY_GROUP, RemoteRegistryActor, RemoteRegistryMsg,
};
pub use node::{NodeOptions, run_node, session_owner};
pub use pre_auth::{PRE_AUTH_BYTES, PRE_AUTH_FRAME_BYTES};
pub use subscription::RemoteSubscription;
pub use tls::ClientTls;
pub use wire::{MAX_WIRE_BYTES, Wire};
