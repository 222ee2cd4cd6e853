//! The protocol on a Unix socket: one registry shared by every
//! connection, and each connection's processes killed when it closes.
//!
//! # Caveats
//!
//! - The socket file is created with mode 0600: only its owner (and root)
//!   can connect. By default anyone who can connect can see and kill every
//!   handle of the registry, not only their own; [`SocketOptions`] binds
//!   owners to a connection's identity and can isolate connections.
//! - A socket file left by a server that died is replaced; a socket that
//!   another server still listens on, or a path that is not a socket, is
//!   an error naming the path.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use rustix::fs::Mode;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::dispatcher::Dispatcher;
use super::server::{ServeOptions, kill_running, serve_lines, stop_registry};
use super::stdio::Reading;

/// How long to back off after `accept` fails (out of file descriptors,
/// ...), so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a connection's owners are bound to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnerBinding {
    /// Owners are what the requests say (the default): any connection may
    /// name any owner.
    #[default]
    Free,
    /// Owners are bound to the peer's uid (from `SO_PEERCRED`): a spawn's
    /// `owner` becomes `uid:1000/owner`, or `uid:1000` without one.
    /// Connections of one user share their owners.
    PeerUid,
    /// Owners are bound to the connection: `conn:7/owner`, or `conn:7`.
    Connection,
}

/// How a socket server treats its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// What the owners a connection names are bound to.
    pub owners: OwnerBinding,
    /// A connection sees and touches only the handles whose owner is bound
    /// to its identity (`list` shows only those; any other handle is
    /// `unknown_handle`). Needs a binding other than [`OwnerBinding::Free`].
    pub isolate: bool,
}

impl SocketOptions {
    /// Sets [`owners`](Self::owners).
    pub fn owners(mut self, binding: OwnerBinding) -> Self {
        self.owners = binding;
        self
    }

    /// Sets [`isolate`](Self::isolate).
    pub fn isolate(mut self, on: bool) -> Self {
        self.isolate = on;
        self
    }
}

/// Serves the protocol on a Unix socket at `path` until `stop` resolves.
///
/// Every connection shares `dispatcher`'s registry and settings, bound as
/// `socket` says. Isolation without a binding is refused
/// ([`io::ErrorKind::InvalidInput`]). The processes a connection spawns
/// are killed (with the shutdown grace) when it closes, unless the spawn
/// set `outlive_connection`. When `stop` resolves: no more connections are
/// accepted, every connection stops reading, every running process is
/// killed and the registry is stopped, the answers still due are written,
/// and the socket file is removed.
pub async fn serve_socket(
    dispatcher: Dispatcher,
    path: &Path,
    options: &ServeOptions,
    socket: &SocketOptions,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    if socket.isolate && socket.owners == OwnerBinding::Free {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "isolating connections needs their owners bound (to the peer uid or the connection)",
        ));
    }
    let registry = dispatcher.registry().clone();
    let listener = bind_private(path)?;
    tracing::info!(path = %path.display(), "listening");
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut next_connection: u64 = 0;
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    next_connection += 1;
                    let tag = format!("conn-{next_connection}");
                    let identity = match socket.owners {
                        OwnerBinding::Free => None,
                        OwnerBinding::Connection => Some(format!("conn:{next_connection}")),
                        OwnerBinding::PeerUid => match stream.peer_cred() {
                            Ok(peer) => Some(format!("uid:{}", peer.uid())),
                            Err(err) => {
                                // No identity to bind to: refuse rather than
                                // serve it unbound.
                                tracing::warn!(connection = %tag, %err, "no peer credentials; closing");
                                continue;
                            }
                        },
                    };
                    tracing::debug!(connection = %tag, ?identity, "accepted");
                    let mut connection = dispatcher.for_connection(tag.clone());
                    if let Some(identity) = identity {
                        connection = connection.bound_to(identity, socket.isolate);
                    }
                    let mut closing = closing_rx.clone();
                    let options = options.clone();
                    connections.spawn(async move {
                        let (input, output) = stream.into_split();
                        let (input, reading) = Reading::new(input);
                        let connection = connection.reading(reading, options.close_kill());
                        let stop = async move {
                            let _ = closing.wait_for(|closing| *closing).await;
                        };
                        let closed = serve_lines(
                            connection.clone(), input, output, &options, stop,
                            async |options| {
                                let deadline = options.close_deadline();
                                connection.kill_owned(options.close_kill(), deadline).await;
                            },
                        )
                        .await;
                        if let Err(err) = closed {
                            tracing::warn!(connection = %tag, %err, "connection failed");
                        }
                        tracing::debug!(connection = %tag, "closed");
                    });
                }
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), %err, "could not remove the socket file");
    }
    let _ = closing_tx.send(true);
    // Kill everything first: a connection's pending wait on a process that
    // outlives it would otherwise hold the connection open.
    kill_running(&registry, options).await;
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(options.close_deadline(), all_closed)
        .await
        .is_err()
    {
        connections.shutdown().await;
    }
    stop_registry(&registry).await;
    Ok(())
}

/// Binds a listener at `path` that only its owner may connect to. Every
/// error names the path.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    remove_stale(path)?;
    // The socket file is created by bind with the permissions the umask
    // leaves: a umask of 0177 makes it 0600 from the first instant. No
    // chmod follows: a chmod by path would follow a symlink swapped in
    // after the bind, and one on the descriptor changes the socket's
    // inode in sockfs, not the file. The umask is process-wide: nothing
    // else in procward creates files meanwhile (no request is served yet).
    let previous = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    bound.map_err(|err| at(path, "cannot listen on", err))
}

/// `err`, with a message that names `path`.
fn at(path: &Path, doing: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{doing} {}: {err}", path.display()))
}

/// Removes a socket file nobody listens on any more; refuses to touch a
/// live socket or anything that is not a socket.
fn remove_stale(path: &Path) -> io::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(at(path, "cannot inspect", err)),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another server is listening on {}", path.display()),
        )),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale socket file");
            std::fs::remove_file(path).map_err(|err| {
                at(
                    path,
                    &format!(
                        "cannot replace the stale socket (owner uid {}) at",
                        metadata.uid()
                    ),
                    err,
                )
            })
        }
        Err(err) => Err(at(
            path,
            &format!("cannot check the socket (owner uid {}) at", metadata.uid()),
            err,
        )),
    }
}
