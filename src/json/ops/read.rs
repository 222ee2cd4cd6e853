//! `read`: one output stream from a byte offset on, for tailing a process
//! without copying its whole capture on every call; with `wait_ms`, a
//! read that has nothing yet waits for the next bytes.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::encoding::{Encoding, incomplete_utf8_tail};
use crate::json::error::{JsonError, quoted};
use crate::json::params::Params;
use crate::messages::{HandleId, OutputEvent, OutputStream, ReadChunk, ReadRequest, Request};
use crate::registry::Registry;

/// The longest UTF-8 character, in bytes.
const MAX_CHAR_BYTES: usize = 4;

/// The parameters `read` reads; any other is refused.
const PARAMS: &[&str] = &[
    "handle_id",
    "stream",
    "offset",
    "max_bytes",
    "encoding",
    "wait_ms",
];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("read", PARAMS)?;
    let id = params.handle_id()?;
    let mut request = parse(params)?;
    // Never more than the server's cap on one response, asked or not:
    // `next_offset` tells the caller where to go on.
    request.max_bytes = Some(dispatcher.output_limit(params)?.max_bytes);
    let encoding = Encoding::from_params(params)?;
    let chunk = match params.count("wait_ms")?.filter(|ms| *ms > 0) {
        None => {
            let read = dispatcher.execute(Request::Read { id, request }).await?;
            read.into_read()?
        }
        // A subscription and reads in turn: more than one operation, under
        // the same access check.
        Some(ms) => {
            dispatcher.check_access(id).await?;
            read_waiting(dispatcher.registry(), id, request, ms).await?
        }
    };
    let mut bytes = &chunk.bytes[..];
    let mut next_offset = chunk.next_offset;
    // A text read ends before a character the child has only half written,
    // so that the next read returns it whole. Not when that would leave
    // nothing although `max_bytes` could never fit the character.
    if encoding == Encoding::Text && !chunk.complete {
        let tail = incomplete_utf8_tail(bytes);
        let fits = request.max_bytes.is_none_or(|max| max >= MAX_CHAR_BYTES);
        if tail > 0 && (tail < bytes.len() || fits) {
            bytes = &bytes[..bytes.len() - tail];
            next_offset -= tail as u64;
        }
    }
    Ok(json!({
        "handle_id": id.to_string(),
        "stream": chunk.stream.as_str(),
        "offset": chunk.offset,
        "next_offset": next_offset,
        "data": encoding.encode(bytes),
        "encoding": encoding.as_str(),
        "dropped": chunk.dropped,
        "total_bytes": chunk.total_bytes,
        "complete": chunk.complete,
    })
    .into())
}

/// A read that, while it finds no bytes at `request.offset` and the handle
/// runs, waits up to `wait_ms` for the process to write to the stream or
/// end: how a client follows output live without polling.
///
/// It subscribes before it reads, so a byte written after the read is
/// announced by the subscription and never waited past. The
/// subscription's chunks are dropped at once (the read returns the bytes
/// from the capture), so its window never fills.
async fn read_waiting(
    registry: &Registry,
    id: HandleId,
    request: ReadRequest,
    wait_ms: u64,
) -> crate::Result<ReadChunk> {
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let mut feed = registry.subscribe(id).await?;
    loop {
        let chunk = registry.read(id, request).await?;
        if !chunk.bytes.is_empty() || chunk.complete || chunk.dropped {
            return Ok(chunk);
        }
        loop {
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Err(_elapsed) => return Ok(chunk),
                // The feed ended with the process: one last read finds
                // the rest and `complete`.
                Ok(None) => return registry.read(id, request).await,
                Ok(Some(OutputEvent::Chunk { stream, .. })) if stream != request.stream => {}
                Ok(Some(_)) => break,
            }
        }
    }
}

fn parse(params: Params<'_>) -> Result<ReadRequest, JsonError> {
    let stream = match params.str("stream")? {
        None | Some("stdout") => OutputStream::Stdout,
        Some("stderr") => OutputStream::Stderr,
        Some(other) => {
            return Err(JsonError::invalid(format!(
                "`stream` must be \"stdout\" or \"stderr\", got {}",
                quoted(other)
            )));
        }
    };
    let offset = params.count("offset")?.unwrap_or(0);
    let max_bytes = params
        .count("max_bytes")?
        .map(|max| usize::try_from(max).unwrap_or(usize::MAX));
    Ok(ReadRequest {
        stream,
        offset,
        max_bytes,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;

    fn parse_json(value: Value) -> Result<ReadRequest, JsonError> {
        let map = value.as_object().cloned().unwrap_or_else(Map::new);
        parse(Params(&map))
    }

    #[test]
    fn defaults_to_stdout_from_the_start() {
        let req = parse_json(json!({})).unwrap();
        assert_eq!(req.stream, OutputStream::Stdout);
        assert_eq!(req.offset, 0);
        assert_eq!(req.max_bytes, None);
    }

    #[test]
    fn takes_stream_offset_and_limit() {
        let req = parse_json(json!({"stream": "stderr", "offset": 10, "max_bytes": 5})).unwrap();
        assert_eq!(req.stream, OutputStream::Stderr);
        assert_eq!(req.offset, 10);
        assert_eq!(req.max_bytes, Some(5));
    }

    #[test]
    fn rejects_bad_streams_and_offsets() {
        let err = parse_json(json!({"stream": "stdin"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`stream` must be"), "{err}");
        let err = parse_json(json!({"offset": -1})).unwrap_err().to_string();
        assert!(err.contains("`offset` must not be negative"), "{err}");
    }
}
