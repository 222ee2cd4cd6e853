//! [`serve_with`]: [`serve`](super::serve) with a [`Dispatcher`] set up by
//! the caller (its output-cap ceiling, ...), as `procward serve` runs it.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

use super::dispatcher::Dispatcher;
use super::server::{ServeOptions, kill_running, serve_lines, stop_registry};

/// Serves the protocol on `input`/`output` as [`serve`](super::serve)
/// does, with the requests run by `dispatcher` (and against its
/// registry). When the input ends or `stop` resolves, every running
/// process of the registry is killed and the registry is stopped.
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
    let served = serve_lines(dispatcher, input, output, options, stop, async |options| {
        kill_running(&registry, options).await;
    })
    .await;
    stop_registry(&registry).await;
    served
}
