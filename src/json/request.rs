//! One line of the protocol: parsing a request, and writing a response.
//!
//! Every line gets exactly one response line, whatever it holds: a request
//! that cannot be parsed is answered with an error carrying its `id` when
//! one could be read, `null` otherwise.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::JsonError;
use super::params::type_name;
use crate::policy::DenyRule;

mod scan;

/// A request's `id`, echoed in the response as the client wrote it: a
/// number comes back exactly as sent (`123456789012345678901234567890`,
/// `-0`, `1e2`), never rounded through a float, and so does an array or
/// object holding one (without the whitespace outside strings). A string
/// comes back as the same string (its escapes may be written differently).
#[derive(Debug, Clone)]
pub(crate) struct RequestId(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// A value whose JSON text serde_json writes back as it was read: an
    /// integer, a string, `true`, `false`, `null`.
    Value(Value),
    /// The JSON text as sent, for what a `Value` would change.
    Text(Box<str>),
}

impl RequestId {
    /// The id of a request that has none, or whose id could not be read.
    pub(crate) const NULL: RequestId = RequestId(Repr::Value(Value::Null));

    /// The id's JSON text, as it is written in the response.
    pub(crate) fn as_json(&self) -> Cow<'_, str> {
        match &self.0 {
            Repr::Value(value) => Cow::Owned(value.to_string()),
            Repr::Text(text) => Cow::Borrowed(text),
        }
    }

    /// The id as serde_json reads it (a number too large for an integer
    /// becomes a float, as for any JSON reader).
    #[cfg(test)]
    pub(crate) fn value(&self) -> Value {
        match &self.0 {
            Repr::Value(value) => value.clone(),
            Repr::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }

    /// Appends the id's JSON text to `line`.
    fn write_to(&self, line: &mut Vec<u8>) {
        match &self.0 {
            Repr::Text(text) => line.extend_from_slice(text.as_bytes()),
            Repr::Value(value) => {
                if serde_json::to_writer(&mut *line, value).is_err() {
                    // Writing a value into a Vec does not fail.
                    line.extend_from_slice(b"null");
                }
            }
        }
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::NULL
    }
}

/// Two ids are equal when their JSON text is.
impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for RequestId {}

/// The id with this value's JSON text.
impl From<&Value> for RequestId {
    fn from(value: &Value) -> Self {
        RequestId(Repr::Text(value.to_string().into()))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_json())
    }
}

/// Whether serde_json would write `id` back with other text than it was
/// read from: a number that is not an integer (`1e2`, `-0`, one past
/// `u64`). Arrays and objects are taken from the line too (see
/// [`LineVisitor`]).
fn changes_in_a_value(id: &Value) -> bool {
    matches!(id, Value::Number(number) if number.is_f64())
}

/// A parsed request line: `{"id": ..., "op": "...", ...params}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// The caller's id, echoed in the response exactly as sent; `null` when
    /// absent. Any JSON value is allowed.
    pub(crate) id: RequestId,
    /// The operation name.
    pub(crate) op: String,
    /// Every other key of the request object.
    pub(crate) params: Map<String, Value>,
}

/// A line that is not a request, with the id to answer it under.
#[derive(Debug)]
pub(crate) struct Rejected {
    /// The request's `id` when it could be read, `null` otherwise.
    pub(crate) id: RequestId,
    /// What is wrong with the line.
    pub(crate) error: JsonError,
}

impl Request {
    /// Parses one line (without its `\n`; a trailing `\r` is ignored).
    /// Never panics, whatever the bytes.
    ///
    /// A key given twice in any object of the line is refused
    /// (`invalid_request`, naming the key), so that a request means the same
    /// to every reader of it.
    pub(crate) fn parse(line: &[u8]) -> Result<Request, Box<Rejected>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let anonymous = |error| {
            Box::new(Rejected {
                id: RequestId::NULL,
                error,
            })
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(anonymous(JsonError::Parse(
                "empty line: expected one JSON object per line".to_owned(),
            )));
        }
        let parsed: Line = serde_json::from_slice(line)
            .map_err(|err| anonymous(JsonError::Parse(format!("the line is not JSON: {err}"))))?;
        let (id, op, params, repeated, nested) = match parsed {
            Line::Object {
                id,
                op,
                params,
                repeated,
                nested,
            } => (id, op, params, repeated, nested),
            Line::Other(type_name) => {
                return Err(anonymous(JsonError::invalid(format!(
                    "a request must be a JSON object, got {type_name}"
                ))));
            }
        };
        // The line's text is needed for an id a `Value` would write
        // differently, and for repeated keys below the top level.
        let scanned =
            (nested || id.as_ref().is_some_and(changes_in_a_value)).then(|| scan::scan(line));
        let id = match (scanned.as_ref().and_then(|scanned| scanned.id), id) {
            (Some(raw), _) => RequestId(Repr::Text(scan::compact(raw).into())),
            (None, Some(value)) => RequestId(Repr::Value(value)),
            (None, None) => RequestId::NULL,
        };
        let duplicate = repeated.or_else(|| scanned.and_then(|scanned| scanned.duplicate));
        if let Some(key) = duplicate {
            return Err(Box::new(Rejected {
                // Which of two ids is meant cannot be known.
                id: if key == "id" { RequestId::NULL } else { id },
                error: JsonError::invalid(format!(
                    "`{key}` is given twice: every key of a request may appear once"
                )),
            }));
        }
        let op = match op {
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

/// A line's JSON value, read the way [`Value`] would read it but with
/// `id` and `op` taken out as they come instead of inserted into the
/// parameters map and removed again (hashing and allocating their keys:
/// about a quarter of the work of answering a `poll`).
// Lives on the stack for one parse and is taken apart at once: boxing the
// large variant would only add an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Line {
    Object {
        id: Option<Value>,
        op: Option<Value>,
        params: Map<String, Value>,
        /// The first top-level key given twice.
        repeated: Option<String>,
        /// Whether any top-level value is an array or an object: only
        /// then can a key repeat below the top level, which [`scan`] finds.
        nested: bool,
    },
    /// Not an object: what it is, as [`type_name`] says it.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
        let mut id = None;
        let mut op = None;
        let mut params = Map::new();
        let mut repeated = None;
        let mut nested = false;
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Value>()?;
            nested |= matches!(value, Value::Array(_) | Value::Object(_));
            let again = match key {
                Key::Id => id.replace(value).is_some().then_some("id".to_owned()),
                Key::Op => op.replace(value).is_some().then_some("op".to_owned()),
                Key::Param(name) => match params.entry(name) {
                    serde_json::map::Entry::Occupied(entry) => Some(entry.key().clone()),
                    serde_json::map::Entry::Vacant(entry) => {
                        entry.insert(value);
                        None
                    }
                },
            };
            if repeated.is_none() {
                repeated = again;
            }
        }
        Ok(Line::Object {
            id,
            op,
            params,
            repeated,
            nested,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Line, A::Error> {
        // Read it whole, so that what is refused is what `Value` refuses.
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Line::Other(type_name(&Value::Array(Vec::new()))))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Line, E> {
        Ok(Line::Other(type_name(&Value::Bool(value))))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Line, E> {
        Ok(Line::Other(type_name(&Value::from(value))))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Line, E> {
        Ok(Line::Other(type_name(&Value::from(value))))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Line, E> {
        Ok(Line::Other(type_name(&Value::from(value))))
    }

    fn visit_str<E>(self, _: &str) -> Result<Line, E> {
        Ok(Line::Other(type_name(&Value::String(String::new()))))
    }

    fn visit_unit<E>(self) -> Result<Line, E> {
        Ok(Line::Other(type_name(&Value::Null)))
    }
}

/// A key of the request object; only parameter names are allocated.
enum Key {
    Id,
    Op,
    Param(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "id" => Key::Id,
            "op" => Key::Op,
            _ => Key::Param(key.to_owned()),
        })
    }

    fn visit_string<E>(self, key: String) -> Result<Key, E> {
        Ok(match key.as_str() {
            "id" => Key::Id,
            "op" => Key::Op,
            _ => Key::Param(key),
        })
    }
}

/// The answer to a line that exceeded the size cap. Its id cannot be known
/// without reading the whole line, so it is `null`.
pub(crate) fn too_long(length: usize, cap: usize) -> Rejected {
    Rejected {
        id: RequestId::NULL,
        error: JsonError::invalid(format!(
            "the request line is longer than the limit of {cap} bytes (at least {length} bytes); \
             the server's --max-line-bytes sets the limit"
        )),
    }
}

/// A response line, `\n` included: `{"id", "ok": true, "result"}` or
/// `{"id", "ok": false, "error": {"kind", "message"}}` (and `"rule"` for a
/// `policy_denied` error). The id is written as the client sent it.
pub(crate) fn response_line(id: &RequestId, outcome: Result<&Value, &JsonError>) -> Vec<u8> {
    let mut line = Vec::new();
    write_response(&mut line, id, outcome);
    line
}

/// Appends the response line for `outcome` to `line`, `\n` included,
/// serializing the result straight from `T`.
pub(crate) fn write_response<T: Serialize>(
    line: &mut Vec<u8>,
    id: &RequestId,
    outcome: Result<&T, &JsonError>,
) {
    let start = line.len();
    // Written by hand around the id, whose text serde_json could not
    // write unchanged; the keys keep the order `id`, `ok`, then the rest.
    line.extend_from_slice(b"{\"id\":");
    id.write_to(line);
    let written = match outcome {
        Ok(result) => {
            line.extend_from_slice(b",\"ok\":true,\"result\":");
            serde_json::to_writer(&mut *line, result)
        }
        Err(error) => {
            line.extend_from_slice(b",\"ok\":false,\"error\":");
            serde_json::to_writer(
                &mut *line,
                &ErrorBody {
                    kind: error.kind().as_str(),
                    message: error,
                    rule: error.rule().map(DenyRule::as_str),
                },
            )
        }
    };
    if written.is_err() {
        // Nothing procward answers fails to serialize; keep the one-line
        // promise anyway.
        line.truncate(start);
        line.extend_from_slice(b"{\"id\":");
        id.write_to(line);
        line.extend_from_slice(
            br#","ok":false,"error":{"kind":"internal","message":"the response could not be encoded"}"#,
        );
    }
    line.extend_from_slice(b"}\n");
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: &'static str,
    #[serde(serialize_with = "display")]
    message: &'a JsonError,
    /// Which kind of rule refused a spawn (`policy_denied` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
}

fn display<S: Serializer>(error: &&JsonError, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(error)
}

impl Rejected {
    /// The error response line for this rejected line.
    pub(crate) fn response_line(&self) -> Vec<u8> {
        response_line(&self.id, Err(&self.error))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
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
        assert_eq!(req.id.value(), json!([1]));
        assert_eq!(req.op, "poll");
        assert_eq!(req.params.len(), 1);
        assert_eq!(req.params["handle_id"], "psh-1-1");
    }

    #[test]
    fn a_missing_id_is_null_and_crlf_is_fine() {
        let req = Request::parse(b"{\"op\": \"list\"}\r").unwrap();
        assert_eq!(req.id, RequestId::NULL);
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
            assert_eq!(rejected.id, RequestId::NULL);
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
        assert_eq!(rejected.id.as_json(), "7");
        assert!(rejected.error.to_string().contains("missing `op`"));
        let rejected = reject(br#"{"id": "x", "op": 3}"#);
        assert_eq!(rejected.id.as_json(), "\"x\"");
        assert!(rejected.error.to_string().contains("`op` must be a string"));
    }

    #[test]
    fn responses_are_one_line() {
        let ok = response_line(&RequestId::from(&json!(1)), Ok(&json!({"a": "x\ny"})));
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
    fn ids_come_back_as_sent() {
        for sent in [
            "123456789012345678901234567890",
            "18446744073709551616",
            "-0",
            "1e2",
            "1.0",
            "-1.5E-7",
            "7",
            "true",
            r#""x""#,
            r#"[1,{"a":null}]"#,
            r#"{"n":1e2}"#,
        ] {
            let line = format!(r#"{{"id": {sent}, "op": "poll"}}"#);
            let req = Request::parse(line.as_bytes()).unwrap();
            let response = response_line(&req.id, Ok(&json!({})));
            let expected = format!("{{\"id\":{sent},\"ok\":true,\"result\":{{}}}}\n");
            assert_eq!(String::from_utf8(response).unwrap(), expected);
        }
        let spaced = Request::parse(br#"{"id": [ 1 , " a b " ], "op": "x"}"#).unwrap();
        assert_eq!(spaced.id.as_json(), r#"[1," a b "]"#);
        // A string is the same string, whatever escapes wrote it.
        let escaped = Request::parse(br#"{"id": "\u00e9", "op": "x"}"#).unwrap();
        assert_eq!(escaped.id.value(), json!("é"));
    }

    #[test]
    fn a_key_given_twice_is_refused_with_its_name() {
        let rejected = reject(br#"{"id": 3, "op": "poll", "op": "spawn", "argv": ["true"]}"#);
        assert_eq!(rejected.error.kind(), ErrorKind::InvalidRequest);
        assert!(
            rejected.error.to_string().contains("`op` is given twice"),
            "{}",
            rejected.error
        );
        assert_eq!(rejected.id.as_json(), "3");
        let nested = reject(br#"{"id": 4, "op": "spawn", "limits": {"nice": 0, "nice": -20}}"#);
        assert!(
            nested.error.to_string().contains("`limits.nice`"),
            "{}",
            nested.error
        );
        let ids = reject(br#"{"id": 1, "op": "poll", "\u0069d": 2}"#);
        assert_eq!(ids.id, RequestId::NULL);
        assert!(ids.error.to_string().contains("`id` is given twice"));
        assert!(Request::parse(br#"{"op": "x", "a": {"k": 1}, "b": {"k": 1}}"#).is_ok());
    }

    #[test]
    fn too_long_names_the_limit() {
        let rejected = too_long(2000, 1024);
        assert_eq!(rejected.error.kind(), ErrorKind::InvalidRequest);
        assert!(rejected.error.to_string().contains("1024 bytes"));
    }

    /// The parse before `Line`: the whole line as a `Value`, then `id` and
    /// `op` removed from it. The two must agree on every line without a
    /// repeated key.
    fn parse_by_value(line: &[u8]) -> Result<Parsed, (Value, ErrorKind, String)> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let refuse = |id, error: JsonError| (id, error.kind(), error.to_string());
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(refuse(
                Value::Null,
                JsonError::Parse("empty line: expected one JSON object per line".to_owned()),
            ));
        }
        let value: Value = serde_json::from_slice(line).map_err(|err| {
            refuse(
                Value::Null,
                JsonError::Parse(format!("the line is not JSON: {err}")),
            )
        })?;
        let Value::Object(mut params) = value else {
            let message = format!("a request must be a JSON object, got {}", type_name(&value));
            return Err(refuse(Value::Null, JsonError::invalid(message)));
        };
        let id = params.remove("id").unwrap_or(Value::Null);
        let op = match params.remove("op") {
            Some(Value::String(op)) => op,
            None | Some(Value::Null) => {
                return Err(refuse(
                    id,
                    JsonError::invalid("missing `op`: the operation to run"),
                ));
            }
            Some(other) => {
                let message = format!("`op` must be a string, got {}", type_name(&other));
                return Err(refuse(id, JsonError::invalid(message)));
            }
        };
        Ok(Parsed { id, op, params })
    }

    /// A request with its id as a value, to compare.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        id: Value,
        op: String,
        params: Map<String, Value>,
    }

    /// Whether any object of the line repeats a key, found by serde
    /// rather than by the scanner under test.
    fn repeats_a_key(line: &[u8]) -> bool {
        struct Unique;
        impl<'de> Deserialize<'de> for Unique {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(UniqueVisitor)
            }
        }
        struct UniqueVisitor;
        impl<'de> Visitor<'de> for UniqueVisitor {
            type Value = Unique;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
                let mut keys = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !keys.insert(key) {
                        return Err(serde::de::Error::custom("repeated"));
                    }
                    map.next_value::<Unique>()?;
                }
                Ok(Unique)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
                while seq.next_element::<Unique>()?.is_some() {}
                Ok(Unique)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_unit<E>(self) -> Result<Unique, E> {
                Ok(Unique)
            }
        }
        matches!(serde_json::from_slice::<Unique>(line), Err(err) if err.to_string().starts_with("repeated"))
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![Just("poll".to_owned()), ".{0,6}".prop_map(String::from)]
                .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("id".to_owned()),
                            Just("op".to_owned()),
                            Just("handle_id".to_owned()),
                            ".{0,4}".prop_map(String::from)
                        ],
                        inner
                    ),
                    0..5,
                )
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    /// A line: a JSON value written out, with repeated keys, escapes and
    /// damage thrown in, or any bytes at all.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            json_value().prop_map(|value| serde_json::to_vec(&value).unwrap()),
            (json_value(), json_value()).prop_map(|(a, b)| {
                let text =
                    format!(r#"{{"op": {a}, "id": 1, "\u0069d": {b}, "op": "poll", "x": {a}}}"#);
                text.into_bytes()
            }),
            (json_value(), any::<usize>(), any::<u8>()).prop_map(|(value, at, byte)| {
                let mut line = serde_json::to_vec(&value).unwrap();
                let at = at % (line.len() + 1);
                line.insert(at, byte);
                line
            }),
            (json_value(), any::<usize>()).prop_map(|(value, at)| {
                let mut line = serde_json::to_vec(&value).unwrap();
                line.truncate(at % (line.len() + 1));
                line
            }),
            prop::collection::vec(any::<u8>(), 0..24),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parsing_agrees_with_parsing_a_value(line in line()) {
            let ours = Request::parse(&line)
                .map(|req| Parsed { id: req.id.value(), op: req.op, params: req.params })
                .map_err(|rejected| (rejected.id.value(), rejected.error.kind(), rejected.error.to_string()));
            let repeated = matches!(&ours, Err((_, _, message)) if message.contains("is given twice"));
            if repeated {
                prop_assert!(repeats_a_key(&line));
            } else {
                // A JSON object with a repeated key is always refused.
                let object = matches!(serde_json::from_slice::<Value>(&line), Ok(Value::Object(_)));
                prop_assert!(!(object && repeats_a_key(&line)), "{:?}", String::from_utf8_lossy(&line));
                prop_assert_eq!(ours, parse_by_value(&line));
            }
        }

        #[test]
        fn every_line_gets_one_response_line(line in line()) {
            let response = match Request::parse(&line) {
                Ok(request) => response_line(&request.id, Ok(&json!({}))),
                Err(rejected) => rejected.response_line(),
            };
            prop_assert_eq!(response.iter().filter(|b| **b == b'\n').count(), 1);
            prop_assert_eq!(response.last(), Some(&b'\n'));
            let parsed: Value = serde_json::from_slice(&response).unwrap();
            prop_assert!(parsed.get("id").is_some(), "{}", parsed);
            match &parsed["ok"] {
                Value::Bool(true) => prop_assert!(parsed["result"].is_object(), "{}", parsed),
                Value::Bool(false) => {
                    prop_assert!(parsed["error"]["kind"].is_string(), "{}", parsed);
                    prop_assert!(parsed["error"]["message"].is_string(), "{}", parsed);
                }
                _ => prop_assert!(false, "no ok flag: {}", parsed),
            }
        }

        #[test]
        fn objects_with_a_string_op_parse(id in json_value(), op in any::<String>()) {
            let mut request = Map::new();
            request.insert("op".into(), Value::from(op.clone()));
            request.insert("id".into(), id.clone());
            let line = serde_json::to_vec(&Value::Object(request)).unwrap();
            let parsed = Request::parse(&line).unwrap();
            prop_assert_eq!(parsed.op, op);
            // The id comes back as JSON reads it (a float may lose its
            // last digit in the round trip, as for any client).
            let as_read: Value = serde_json::from_slice(&serde_json::to_vec(&id).unwrap()).unwrap();
            prop_assert_eq!(parsed.id.value(), as_read);
            prop_assert!(parsed.params.is_empty());
        }
    }
}
