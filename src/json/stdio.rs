//! [`serve_with`]: [`serve`](super::serve) with a [`Dispatcher`] set up by
//! the caller (its output-cap ceiling, ...), as `procward serve` runs it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::dispatcher::Dispatcher;
use super::server::{ServeOptions, kill_running, serve_lines, stop_registry};

/// Serves the protocol on `input`/`output` as [`serve`](super::serve)
/// does, with the requests run by `dispatcher` (and against its
/// registry). When the input ends or `stop` resolves, every running
/// process of the registry is killed and the registry is stopped; a
/// `spawn` with `wait` still waiting then kills its process itself and
/// answers with the terminal snapshot.
pub async fn serve_with<R, W>(
    dispatcher: Dispatcher,
    input: R,
    output: W,
    options: &ServeOptions,
    stop: impl Future<Output = ()>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let registry = dispatcher.registry().clone();
    let (input, reading) = Reading::new(input);
    let dispatcher = dispatcher.reading(reading, options.close_kill());
    let served = serve_lines(dispatcher, input, output, options, stop, async |options| {
        kill_running(&registry, options).await;
    })
    .await;
    stop_registry(&registry).await;
    served
}

/// An input that tells, by dropping a watch sender with itself, when the
/// server stops reading it: the line loop drops its reader as soon as it
/// stops, for whatever reason (end of input, a read error, `stop`).
pub(crate) struct Reading<R> {
    input: R,
    _reading: watch::Sender<()>,
}

impl<R> Reading<R> {
    /// `input` wrapped, and the receiver that sees it dropped.
    pub(crate) fn new(input: R) -> (Self, watch::Receiver<()>) {
        let (reading, closed) = watch::channel(());
        (
            Reading {
                input,
                _reading: reading,
            },
            closed,
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Reading<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}
