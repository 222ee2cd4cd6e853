//! `pause`: stops a process tree (SIGSTOP to its group); it stays `running`, with `paused` set.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    let id = params.handle_id()?;
    let snapshot = dispatcher.registry().pause(id).await?;
    Ok(Answer::Snapshot(
        snapshot,
        dispatcher.default_output_limit(),
    ))
}
