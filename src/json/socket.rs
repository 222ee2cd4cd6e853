//! The protocol on a Unix socket: one registry shared by every
//! connection, and each connection's processes killed when it closes.
//!
//! # Caveats
//!
//! - The socket file is created with mode 0600: only its owner (and root)
//!   can connect. Anyone who can connect can see and kill every handle of
//!   the registry, not only their own.
//! - A socket file left by a server that died is replaced; a socket that
//!   another server still listens on, or a path that is not a socket, is
//!   an error.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rustix::fs::Mode;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::dispatcher::Dispatcher;
use super::server::{ServeOptions, kill_running, serve_lines, stop_registry};
use crate::registry::Registry;

/// How long to back off after `accept` fails (out of file descriptors,
/// ...), so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the protocol on a Unix socket at `path` until `stop` resolves.
///
/// Every connection shares `registry`. The processes a connection spawns
/// are killed (with the shutdown grace) when it closes, unless the spawn
/// set `outlive_connection`. When `stop` resolves: no more connections are
/// accepted, every connection stops reading, every running process is
/// killed and the registry is stopped, the answers still due are written,
/// and the socket file is removed.
pub async fn serve_socket(
    registry: Registry,
    path: &Path,
    options: &ServeOptions,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let listener = bind_private(path)?;
    tracing::info!(path = %path.display(), "listening");
    let dispatcher = Dispatcher::new(registry.clone());
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
                    tracing::debug!(connection = %tag, "accepted");
                    let connection = dispatcher.for_connection(tag.clone());
                    let mut closing = closing_rx.clone();
                    let options = options.clone();
                    connections.spawn(async move {
                        let (input, output) = stream.into_split();
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

/// Binds a listener at `path` that only its owner may connect to.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    remove_stale(path)?;
    // The socket file is created by bind with the permissions the umask
    // leaves; a umask of 0177 makes it 0600 from the first instant, so no
    // one else can connect in the window before the chmod below. The umask
    // is process-wide: nothing else in procward creates files meanwhile.
    let previous = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Removes a socket file nobody listens on any more; refuses to touch a
/// live socket or anything that is not a socket.
fn remove_stale(path: &Path) -> io::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
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
            std::fs::remove_file(path)
        }
        Err(err) => Err(err),
    }
}
