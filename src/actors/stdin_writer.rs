//! The task that writes to a child's stdin, in order, without ever making
//! the process actor wait.

use bytes::Bytes;
use ractor::RpcReplyPort;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::messages::HandleId;

/// What the process actor asks of the writer.
pub(crate) enum StdinCommand {
    Write(Bytes, RpcReplyPort<Result<()>>),
    Close(RpcReplyPort<Result<()>>),
}

/// Writes `initial` (if any) and then the commands it receives, in order.
/// After a close, an error or the end of the channel, the pipe is closed
/// (the child sees end of file) and later writes answer
/// [`Error::StdinClosed`].
///
/// Once `ended` turns true (the process is terminal), a write still
/// waiting for room in the pipe (a grandchild holds it and does not read)
/// or queued behind others answers [`Error::StdinClosed`] instead of
/// writing; every command queued before the end still gets its answer, and
/// the task ends when the process actor drops its sender.
///
/// A child that exited gives `EPIPE`, not `SIGPIPE`: the Rust runtime
/// ignores `SIGPIPE` in every Rust program, and procward relies on that.
pub(crate) async fn write_stdin(
    id: HandleId,
    pipe: pipe::Sender,
    initial: Option<Bytes>,
    mut commands: mpsc::UnboundedReceiver<StdinCommand>,
    mut ended: watch::Receiver<bool>,
) {
    let mut pipe = Some(pipe);
    if let Some(bytes) = initial {
        if let Some(open) = pipe.as_mut() {
            tokio::select! {
                biased;
                () = process_ended(&mut ended) => {}
                written = open.write_all(&bytes) => {
                    if let Err(err) = written {
                        tracing::debug!(handle = %id, %err, "writing the initial stdin failed");
                    }
                }
            }
        }
        // Bytes given at spawn are followed by end of file.
        pipe = None;
    }
    while let Some(command) = commands.recv().await {
        match command {
            StdinCommand::Write(bytes, reply) => {
                let written = match pipe.as_mut() {
                    None => None,
                    Some(open) => tokio::select! {
                        biased;
                        () = process_ended(&mut ended) => None,
                        written = open.write_all(&bytes) => Some(written),
                    },
                };
                let result = match written {
                    Some(Ok(())) => Ok(()),
                    None => {
                        pipe = None;
                        Err(Error::StdinClosed(id))
                    }
                    Some(Err(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                        pipe = None;
                        Err(Error::StdinClosed(id))
                    }
                    Some(Err(source)) => {
                        pipe = None;
                        Err(Error::Os {
                            operation: "writing to the child's stdin".into(),
                            source: source.into(),
                        })
                    }
                };
                let _ = reply.send(result);
            }
            StdinCommand::Close(reply) => {
                pipe = None;
                let _ = reply.send(Ok(()));
            }
        }
    }
}

/// Resolves once the process is terminal (or its actor is gone).
async fn process_ended(ended: &mut watch::Receiver<bool>) {
    let _ = ended.wait_for(|ended| *ended).await;
}
