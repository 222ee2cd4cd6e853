//! `release_owner`: forget every handle and receipt of an owner, killing
//! its running trees first.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `release_owner` reads; any other is refused.
const PARAMS: &[&str] = &["owner"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("release_owner", PARAMS)?;
    let owner = params
        .str("owner")?
        .ok_or_else(|| JsonError::invalid("missing `owner`"))?;
    let request = Request::ReleaseOwner {
        owner: owner.to_owned(),
    };
    let released = dispatcher.execute(request).await?.into_released_owner()?;
    Ok(json!({"released": released}).into())
}
