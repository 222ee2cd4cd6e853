//! `poll`: a snapshot of a handle now; never waits. `max_bytes` caps the
//! output bytes of each stream it shows.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `poll` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id", "max_bytes"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("poll", PARAMS)?;
    let id = params.handle_id()?;
    let limit = dispatcher.output_limit(params)?;
    let snapshot = dispatcher.execute(Request::Poll { id }).await?;
    Ok(Answer::Snapshot(snapshot.into_snapshot()?, limit))
}
