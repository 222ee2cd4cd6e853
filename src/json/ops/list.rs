//! `list`: every handle the registry holds (receipts of evicted ones
//! included), oldest first, optionally only one owner's or one status;
//! with `detail`, each as its snapshot without output.

use serde_json::{Value, json};

use crate::Error;
use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::encoding::OutputLimit;
use crate::json::error::{JsonError, quoted};
use crate::json::params::Params;
use crate::json::render::SnapshotView;
use crate::messages::{HandleSummary, ListFilter, Request, Status};

const STATUSES: &[Status] = &[
    Status::Running,
    Status::Exited,
    Status::Killed,
    Status::TimedOut,
];

/// The parameters `list` reads; any other is refused.
const PARAMS: &[&str] = &["owner", "status", "detail"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("list", PARAMS)?;
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
    let listed = dispatcher.execute(Request::List(filter(owner, status)));
    let handles = listed.await?.into_listed()?;
    if params.bool("detail")?.unwrap_or(false) {
        return detailed(dispatcher, handles).await;
    }
    Ok(Answer::Listed(handles))
}

/// The keys of a snapshot about the output shown, which a listing shows
/// none of.
const OUTPUT_KEYS: &[&str] = &[
    "stdout",
    "stderr",
    "stdout_encoding",
    "stderr_encoding",
    "stdout_cut",
    "stderr_cut",
];

/// Each handle as `poll` shows it, without the output and the keys about
/// it: exit code, end time, byte totals, usage. Read through a watch, which, unlike a
/// poll, does not count as a caller having seen a terminal status: an
/// operator's listing must not change which handles the cap evicts first.
/// A handle released between the listing and its watch is left out.
async fn detailed(
    dispatcher: &Dispatcher,
    handles: Vec<HandleSummary>,
) -> Result<Answer, JsonError> {
    let mut shown = Vec::with_capacity(handles.len());
    for summary in handles {
        let snapshot = match dispatcher.registry().watch(summary.handle_id).await {
            Ok(watch) => watch.get(),
            Err(Error::UnknownHandle(_)) => continue,
            Err(err) => return Err(err.into()),
        };
        let view = SnapshotView::new(&snapshot, OutputLimit { max_bytes: 0 });
        let mut entry = serde_json::to_value(view).map_err(|err| {
            JsonError::Internal(format!("the result could not be encoded: {err}"))
        })?;
        if let Some(entry) = entry.as_object_mut() {
            for key in OUTPUT_KEYS {
                entry.remove(*key);
            }
        }
        shown.push(entry);
    }
    Ok(json!({ "handles": Value::Array(shown) }).into())
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
