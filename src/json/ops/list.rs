//! `list`: every handle the registry holds (receipts of evicted ones
//! included), oldest first, optionally only one owner's or one status.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::{JsonError, quoted};
use crate::json::params::Params;
use crate::messages::{ListFilter, Status};

const STATUSES: &[Status] = &[
    Status::Running,
    Status::Exited,
    Status::Killed,
    Status::TimedOut,
];

/// The parameters `list` reads; any other is refused.
const PARAMS: &[&str] = &["owner", "status"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("list", PARAMS)?;
    let owner = match params.str("owner")? {
        Some(owner) => dispatcher.owner_key(Some(owner)),
        None => None,
    };
    let status = match params.str("status")? {
        None => None,
        Some(name) => Some(
            STATUSES
                .iter()
                .copied()
                .find(|status| status.as_str() == name)
                .ok_or_else(|| {
                    JsonError::invalid(format!(
                        "`status` must be one of running, exited, killed, timed_out; got {}",
                        quoted(name)
                    ))
                })?,
        ),
    };
    let mut handles = dispatcher
        .registry()
        .list_where(filter(owner, status))
        .await?;
    handles.retain(|summary| dispatcher.may_see(summary.owner.as_deref()));
    Ok(Answer::Listed(handles))
}

// ListFilter may gain fields; fill them from the default.
#[allow(clippy::needless_update)]
fn filter(owner: Option<String>, status: Option<Status>) -> ListFilter {
    ListFilter {
        owner,
        status,
        ..ListFilter::default()
    }
}
