//! `release_owner`: forget every handle and receipt of an owner, killing
//! its running trees first.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

/// The parameters `release_owner` reads; any other is refused.
const PARAMS: &[&str] = &["owner"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("release_owner", PARAMS)?;
    let owner = params
        .str("owner")?
        .ok_or_else(|| JsonError::invalid("missing `owner`"))?;
    let owner = dispatcher.owner_key(Some(owner)).unwrap_or_default();
    let released = dispatcher.registry().release_owner(owner).await?;
    Ok(json!({"released": released}).into())
}
