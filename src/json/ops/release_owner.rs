//! `release_owner`: forget every handle and receipt of an owner, killing
//! its running trees first.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    let owner = params
        .str("owner")?
        .ok_or_else(|| JsonError::invalid("missing `owner`"))?;
    let released = dispatcher.registry().release_owner(owner).await?;
    Ok(json!({"released": released}).into())
}
