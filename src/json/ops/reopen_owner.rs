//! `reopen_owner`: let an owner closed by `kill_owner` with `close: true`
//! spawn again. Answers whether it was closed.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `reopen_owner` reads; any other is refused.
const PARAMS: &[&str] = &["owner"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("reopen_owner", PARAMS)?;
    let owner = params
        .str("owner")?
        .ok_or_else(|| JsonError::invalid("missing `owner`"))?;
    let request = Request::ReopenOwner {
        owner: owner.to_owned(),
    };
    let reopened = dispatcher.execute(request).await?.into_reopened()?;
    Ok(json!({"reopened": reopened}).into())
}
