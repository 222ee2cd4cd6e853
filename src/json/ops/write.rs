//! `write`: append bytes to the stdin of a process spawned with
//! `"stdin": "pipe"`. Answers once the bytes are in the pipe.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::encoding::decode_bytes;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `write` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id", "data"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("write", PARAMS)?;
    let id = params.handle_id()?;
    let data = params
        .get("data")
        .ok_or_else(|| JsonError::invalid("missing `data`: the bytes to write"))?;
    let bytes = decode_bytes("data", data)?;
    let written = bytes.len();
    let done = dispatcher.execute(Request::Write {
        id,
        bytes: bytes.into(),
    }).await?;
    done.into_done()?;
    Ok(json!({"written": written}).into())
}
