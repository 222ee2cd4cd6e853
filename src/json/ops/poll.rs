//! `poll`: a snapshot of a handle now; never waits. `max_bytes` caps the
//! output bytes of each stream it shows.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    let id = params.handle_id()?;
    let limit = dispatcher.output_limit(params)?;
    let snapshot = dispatcher.registry().poll(id).await?;
    Ok(Answer::Snapshot(snapshot, limit))
}
