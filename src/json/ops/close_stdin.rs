//! `close_stdin`: end of file for a piped stdin, after the writes sent
//! before it.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `close_stdin` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("close_stdin", PARAMS)?;
    let id = params.handle_id()?;
    let closed = dispatcher.execute(Request::CloseStdin { id }).await?;
    closed.into_done()?;
    Ok(json!({"closed": true}).into())
}
