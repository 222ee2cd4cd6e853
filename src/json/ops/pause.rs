//! `pause`: stops a process tree (SIGSTOP to its group); it stays `running`, with `paused` set.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `pause` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("pause", PARAMS)?;
    let id = params.handle_id()?;
    let snapshot = dispatcher.execute(Request::Pause { id }).await?;
    Ok(Answer::Snapshot(
        snapshot.into_snapshot()?,
        dispatcher.default_output_limit(),
    ))
}
