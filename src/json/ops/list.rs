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

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    let owner = params.str("owner")?.map(str::to_owned);
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
    let handles = dispatcher
        .registry()
        .list_where(filter(owner, status))
        .await?;
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
