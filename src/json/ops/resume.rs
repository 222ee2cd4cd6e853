//! `resume`: continues a paused process tree (SIGCONT to its group).

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `resume` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("resume", PARAMS)?;
    let id = params.handle_id()?;
    let snapshot = dispatcher.execute(Request::Resume { id }).await?;
    Ok(Answer::Snapshot(
        snapshot.into_snapshot()?,
        dispatcher.default_output_limit(),
    ))
}
