//! One line of the protocol: parsing a request, and writing a response.
//!
//! Every line gets exactly one response line, whatever it holds: a request
//! that cannot be parsed is answered with an error carrying its `id` when
//! one could be read, `null` otherwise.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::JsonError;
use super::params::type_name;

/// A parsed request line: `{"id": ..., "op": "...", ...params}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The caller's id, echoed in the response; `null` when absent. Any JSON
    /// value is allowed.
    pub id: Value,
    /// The operation name.
    pub op: String,
    /// Every other key of the request object.
    pub params: Map<String, Value>,
}

/// A line that is not a request, with the id to answer it under.
#[derive(Debug)]
pub struct Rejected {
    /// The request's `id` when it could be read, `null` otherwise.
    pub id: Value,
    /// What is wrong with the line.
    pub error: JsonError,
}

impl Request {
    /// Parses one line (without its `\n`; a trailing `\r` is ignored).
    /// Never panics, whatever the bytes.
    pub fn parse(line: &[u8]) -> Result<Request, Box<Rejected>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let anonymous = |error| {
            Box::new(Rejected {
                id: Value::Null,
                error,
            })
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(anonymous(JsonError::Parse(
                "empty line: expected one JSON object per line".to_owned(),
            )));
        }
        let value: Value = serde_json::from_slice(line)
            .map_err(|err| anonymous(JsonError::Parse(format!("the line is not JSON: {err}"))))?;
        let Value::Object(mut params) = value else {
            return Err(anonymous(JsonError::invalid(format!(
                "a request must be a JSON object, got {}",
                type_name(&value)
            ))));
        };
        let id = params.remove("id").unwrap_or(Value::Null);
        let op = match params.remove("op") {
            Some(Value::String(op)) => op,
            None | Some(Value::Null) => {
                return Err(Box::new(Rejected {
                    id,
                    error: JsonError::invalid("missing `op`: the operation to run"),
                }));
            }
            Some(other) => {
                return Err(Box::new(Rejected {
                    id,
                    error: JsonError::invalid(format!(
                        "`op` must be a string, got {}",
                        type_name(&other)
                    )),
                }));
            }
        };
        Ok(Request { id, op, params })
    }
}

/// The answer to a line that exceeded the size cap. Its id cannot be known
/// without reading the whole line, so it is `null`.
pub fn too_long(length: usize, cap: usize) -> Rejected {
    Rejected {
        id: Value::Null,
        error: JsonError::invalid(format!(
            "the request line is longer than the limit of {cap} bytes (at least {length} bytes); \
             the server's --max-line-bytes sets the limit"
        )),
    }
}

/// A response line, `\n` included: `{"id", "ok": true, "result"}` or
/// `{"id", "ok": false, "error": {"kind", "message"}}`.
pub fn response_line(id: &Value, outcome: Result<&Value, &JsonError>) -> Vec<u8> {
    let mut line = Vec::new();
    write_response(&mut line, id, outcome);
    line
}

/// Appends the response line for `outcome` to `line`, `\n` included,
/// serializing the result straight from `T`.
pub(crate) fn write_response<T: Serialize>(
    line: &mut Vec<u8>,
    id: &Value,
    outcome: Result<&T, &JsonError>,
) {
    let start = line.len();
    let written = match outcome {
        Ok(result) => serde_json::to_writer(
            &mut *line,
            &Success {
                id,
                ok: true,
                result,
            },
        ),
        Err(error) => serde_json::to_writer(
            &mut *line,
            &Failure {
                id,
                ok: false,
                error: ErrorBody {
                    kind: error.kind().as_str(),
                    message: error,
                },
            },
        ),
    };
    if written.is_err() {
        // Nothing procward answers fails to serialize; keep the one-line
        // promise anyway.
        line.truncate(start);
        line.extend_from_slice(
            br#"{"id":null,"ok":false,"error":{"kind":"internal","message":"the response could not be encoded"}}"#,
        );
    }
    line.push(b'\n');
}

#[derive(Serialize)]
struct Success<'a, T> {
    id: &'a Value,
    ok: bool,
    result: &'a T,
}

#[derive(Serialize)]
struct Failure<'a> {
    id: &'a Value,
    ok: bool,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: &'static str,
    #[serde(serialize_with = "display")]
    message: &'a JsonError,
}

fn display<S: Serializer>(error: &&JsonError, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(error)
}

impl Rejected {
    /// The error response line for this rejected line.
    pub fn response_line(&self) -> Vec<u8> {
        response_line(&self.id, Err(&self.error))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json::ErrorKind;

    fn reject(line: &[u8]) -> Rejected {
        match Request::parse(line) {
            Err(rejected) => *rejected,
            Ok(req) => panic!("parsed: {req:?}"),
        }
    }

    #[test]
    fn parses_id_op_and_params() {
        let req = Request::parse(br#"{"id": [1], "op": "poll", "handle_id": "psh-1-1"}"#).unwrap();
        assert_eq!(req.id, json!([1]));
        assert_eq!(req.op, "poll");
        assert_eq!(req.params.len(), 1);
        assert_eq!(req.params["handle_id"], "psh-1-1");
    }

    #[test]
    fn a_missing_id_is_null_and_crlf_is_fine() {
        let req = Request::parse(b"{\"op\": \"list\"}\r").unwrap();
        assert_eq!(req.id, Value::Null);
    }

    #[test]
    fn rejects_non_json_and_non_objects_with_null_id() {
        for (line, kind, text) in [
            (&b"not json"[..], ErrorKind::ParseError, "not JSON"),
            (b"", ErrorKind::ParseError, "empty line"),
            (b"  \t", ErrorKind::ParseError, "empty line"),
            (b"\xff\xfe", ErrorKind::ParseError, "not JSON"),
            (b"{\"op\": \"a\0\"}", ErrorKind::ParseError, "not JSON"),
            (b"[1, 2]", ErrorKind::InvalidRequest, "got an array"),
            (b"42", ErrorKind::InvalidRequest, "got a number"),
            (b"null", ErrorKind::InvalidRequest, "got null"),
        ] {
            let rejected = reject(line);
            assert_eq!(rejected.id, Value::Null);
            assert_eq!(rejected.error.kind(), kind, "{line:?}");
            assert!(
                rejected.error.to_string().contains(text),
                "{}",
                rejected.error
            );
        }
    }

    #[test]
    fn a_missing_or_bad_op_keeps_the_id() {
        let rejected = reject(br#"{"id": 7}"#);
        assert_eq!(rejected.id, json!(7));
        assert!(rejected.error.to_string().contains("missing `op`"));
        let rejected = reject(br#"{"id": "x", "op": 3}"#);
        assert_eq!(rejected.id, json!("x"));
        assert!(rejected.error.to_string().contains("`op` must be a string"));
    }

    #[test]
    fn responses_are_one_line() {
        let ok = response_line(&json!(1), Ok(&json!({"a": "x\ny"})));
        assert_eq!(ok.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(ok.ends_with(b"\n"));
        let parsed: Value = serde_json::from_slice(&ok).unwrap();
        assert_eq!(
            parsed,
            json!({"id": 1, "ok": true, "result": {"a": "x\ny"}})
        );

        let err = reject(b"nope").response_line();
        let parsed: Value = serde_json::from_slice(&err).unwrap();
        assert_eq!(parsed["id"], Value::Null);
        assert_eq!(parsed["ok"], false);
        assert_eq!(parsed["error"]["kind"], "parse_error");
    }

    #[test]
    fn too_long_names_the_limit() {
        let rejected = too_long(2000, 1024);
        assert_eq!(rejected.error.kind(), ErrorKind::InvalidRequest);
        assert!(rejected.error.to_string().contains("1024 bytes"));
    }
}
