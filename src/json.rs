//! procward's JSON protocol: a dispatch function for hosts that speak JSON,
//! and the JSON-lines server behind `procward serve`.
//!
//! [`Dispatcher::dispatch`] takes an op name and a parameters object and
//! answers with a result object or a typed [`JsonError`], whose
//! [`kind`](JsonError::kind) is the protocol's error kind. It accepts the
//! parameter names of the original host-call registry (`argv` / `command`,
//! `timeout` / `timeout_ms`, ...) and returns the same keys, plus
//! procward's additions. [`serve`] runs the line protocol over any byte
//! stream, [`serve_socket`] over a Unix socket. `docs/protocol.md` lists
//! every op, field and error kind.
//!
//! # Examples
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! use procward::json::{ServeOptions, serve};
//! use procward::{Registry, RegistryConfig};
//!
//! let registry = Registry::start(RegistryConfig::default())
//!     .await
//!     .map_err(std::io::Error::other)?;
//! // Serve stdin/stdout until stdin ends; then every process is killed.
//! serve(
//!     registry,
//!     tokio::io::stdin(),
//!     tokio::io::stdout(),
//!     &ServeOptions::default(),
//!     std::future::pending(),
//! )
//! .await
//! # }
//! ```
//!
//! # Caveats
//!
//! - A parameter an op does not know is refused (`invalid_request` naming
//!   it), unlike the original protocol, which ignored it: a misspelt
//!   optional parameter must not go unnoticed.
//! - Responses to concurrent requests come in the order the requests
//!   finish: match them by `id`.

mod answer;
mod config;
mod dispatcher;
mod encoding;
mod error;
mod gate;
mod lines;
mod ops;
mod outbox;
mod owned;
mod params;
mod render;
mod request;
mod server;
mod signal;
mod socket;
mod stdin_order;
mod stdio;

pub use config::ServeConfig;
pub use dispatcher::{DEFAULT_MAX_OUTPUT_CAP, DEFAULT_MAX_RESPONSE_BYTES, Dispatcher};
pub use error::{ErrorKind, JsonError};
pub use server::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_UNSENT_BYTES, DEFAULT_SHUTDOWN_GRACE, ServeOptions, serve,
};
pub use socket::{OwnerBinding, SocketOptions, serve_socket};
pub use stdio::serve_with;
