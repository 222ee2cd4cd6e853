//! [`Registry::execute`]: the one place a [`Request`] becomes a registry
//! call, for every layer that carries requests as data.

use super::Registry;
use crate::error::Result;
use crate::messages::{Answer, Request};

impl Registry {
    /// Runs `request` and answers the [`Answer`] variant its docs name:
    /// the same as calling the [`Registry`] method of the same name, for a
    /// caller that holds the operation as data (the cluster gateway, the
    /// JSON protocol). Errors are the method's.
    ///
    /// Cancel safety: as for the method behind the request.
    pub async fn execute(&self, request: Request) -> Result<Answer> {
        Ok(match request {
            Request::Spawn(spawn) => Answer::Snapshot(self.spawn(spawn).await?),
            Request::Poll { id } => Answer::Snapshot(self.poll(id).await?),
            Request::Wait { id, timeout } => Answer::Waited(self.wait(id, timeout).await?),
            Request::Kill { id, request } => Answer::Snapshot(self.kill(id, request).await?),
            Request::Release { id } => Answer::Released(self.release(id).await?),
            Request::Pause { id } => Answer::Snapshot(self.pause(id).await?),
            Request::Resume { id } => Answer::Snapshot(self.resume(id).await?),
            Request::Read { id, request } => Answer::Read(self.read(id, request).await?),
            Request::Write { id, bytes } => {
                self.write(id, bytes).await?;
                Answer::Done
            }
            Request::CloseStdin { id } => {
                self.close_stdin(id).await?;
                Answer::Done
            }
            Request::List(filter) => Answer::Listed(self.list_where(filter).await?),
            Request::Counts => Answer::Counts(self.counts().await?),
            Request::KillOwner {
                owner,
                request,
                close: false,
            } => Answer::Killed(self.kill_owner(owner, request).await?),
            Request::KillOwner {
                owner,
                request,
                close: true,
            } => Answer::Killed(self.close_owner(owner, request).await?),
            Request::ReopenOwner { owner } => Answer::Reopened(self.reopen_owner(owner).await?),
            Request::ReleaseOwner { owner } => {
                Answer::ReleasedOwner(self.release_owner(owner).await?)
            }
        })
    }
}
