//! `procward ctl tail [-f]`: a stream's bytes through `read`, and with
//! `-f` on through reads that wait for output, until the process ends.

use std::io::Write;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::client::{Client, CtlError};

/// How long one `read` of `tail -f` waits for output before asking again.
/// Only bounds how long a request stays open; output arrives as soon as
/// it is written.
const FOLLOW_WAIT_MS: u64 = 30_000;

/// `tail [-f]`: the stream's bytes from the start, exactly as written;
/// with `follow`, on until the process ends, then its exit code.
pub(super) async fn tail(
    client: &mut Client,
    handle: &str,
    stderr: bool,
    follow: bool,
) -> Result<ExitCode, CtlError> {
    let stream = if stderr { "stderr" } else { "stdout" };
    let mut offset = 0u64;
    let mut stdout = std::io::stdout();
    loop {
        let wait_ms = if follow {
            json!(FOLLOW_WAIT_MS)
        } else {
            Value::Null
        };
        let chunk = client
            .call(
                "read",
                json!({
                    "handle_id": handle, "stream": stream, "offset": offset,
                    "encoding": "base64", "wait_ms": wait_ms,
                }),
            )
            .await?;
        let start = chunk["offset"].as_u64().unwrap_or(offset);
        if start > offset {
            eprintln!(
                "procward ctl: [{} bytes dropped by the capture cap]",
                start - offset
            );
        }
        let data = STANDARD
            .decode(chunk["data"].as_str().unwrap_or(""))
            .map_err(|err| CtlError::Protocol(format!("read data is not base64: {err}")))?;
        match stdout.write_all(&data).and_then(|()| stdout.flush()) {
            Ok(()) => {}
            // The reader went away (`| head`): nothing more to do.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS);
            }
            Err(err) => return Err(CtlError::Output(err)),
        }
        let next = chunk["next_offset"].as_u64().ok_or_else(|| {
            CtlError::Protocol(format!("read answered without next_offset: {chunk}"))
        })?;
        let total = chunk["total_bytes"].as_u64().unwrap_or(next);
        let caught_up = next >= total;
        offset = next;
        if caught_up && (!follow || chunk["complete"] == json!(true)) {
            break;
        }
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let end = client
        .call("wait", json!({"handle_id": handle, "max_bytes": 0}))
        .await?;
    Ok(exit_code(&end))
}

/// The child's exit code as ours: its code, or 128 + the signal that ended
/// it (as a shell reports it); 1 when neither is known.
fn exit_code(snapshot: &Value) -> ExitCode {
    let code = match (snapshot["signal"].as_i64(), snapshot["exit_code"].as_i64()) {
        (Some(signal), _) => 128 + signal,
        (None, Some(code)) => code,
        (None, None) => 1,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
