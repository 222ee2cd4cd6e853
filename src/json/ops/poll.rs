//! `poll`: a snapshot of a handle now; never waits.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

/// The parameters `poll` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id", "max_bytes"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("poll", PARAMS)?;
    // A bound on the output bytes of the answer, which the response-size
    // work wires up; read here so that a bad value is refused already.
    let _max_bytes = params.count("max_bytes")?;
    let id = params.handle_id()?;
    let snapshot = match dispatcher.check_access(id).await? {
        Some(snapshot) => snapshot,
        None => dispatcher.registry().poll(id).await?,
    };
    Ok(Answer::Snapshot(snapshot))
}
