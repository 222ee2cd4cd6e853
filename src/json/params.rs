//! Typed access to a request's parameters, with errors that name the field.
//!
//! A parameter that is absent and one that is `null` are treated alike, so
//! a client can always send `null` for "not given".

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{JsonError, quoted};
use crate::error::Error;
use crate::messages::HandleId;

/// The parameters of one request: every key of the request object but `id`
/// and `op`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params<'a>(pub(crate) &'a Map<String, Value>);

impl<'a> Params<'a> {
    /// Refuses the first key that is not one of `known`, the parameters
    /// `op` reads, naming it: a misspelt parameter (`sandbox_profle`) must
    /// not be dropped silently, leaving the request to run without it.
    pub(crate) fn only(&self, op: &str, known: &[&str]) -> Result<(), JsonError> {
        match self.0.keys().find(|key| !known.contains(&key.as_str())) {
            None => Ok(()),
            Some(key) => Err(JsonError::invalid(format!(
                "unknown parameter {} of `{op}`; it takes {}",
                quoted(key),
                known.join(", ")
            ))),
        }
    }

    /// The value of `name`, `None` when absent or `null`.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    /// The handle the request is about, from `handle_id`.
    ///
    /// A string that is not a procward handle id names no handle, so it
    /// fails as an unknown handle rather than as a malformed request.
    pub(crate) fn handle_id(&self) -> Result<HandleId, JsonError> {
        let text = self
            .str("handle_id")?
            .ok_or_else(|| JsonError::invalid("missing `handle_id`"))?;
        Ok(text.parse::<HandleId>().map_err(Error::from)?)
    }

    pub(crate) fn str(&self, name: &str) -> Result<Option<&'a str>, JsonError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, JsonError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(wrong_type(name, "true or false", other)),
        }
    }

    /// A count that must be a whole number ≥ 0. JSON has no integer type,
    /// so `5.0` is accepted as 5; `5.5`, `-1` and non-numbers are not.
    pub(crate) fn count(&self, name: &str) -> Result<Option<u64>, JsonError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let Value::Number(number) = value else {
            return Err(wrong_type(name, "a whole number ≥ 0", value));
        };
        if let Some(n) = number.as_u64() {
            return Ok(Some(n));
        }
        if number.as_i64().is_some_and(|n| n < 0) {
            return Err(JsonError::invalid(format!(
                "`{name}` must not be negative, got {number}"
            )));
        }
        match number.as_f64() {
            Some(f) if f < 0.0 => Err(JsonError::invalid(format!(
                "`{name}` must not be negative, got {number}"
            ))),
            Some(f) if f.fract() != 0.0 => Err(JsonError::invalid(format!(
                "`{name}` must be a whole number, got {number}"
            ))),
            // 2^64: the first whole number a u64 cannot hold.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(f) if f < 18_446_744_073_709_551_616.0 => Ok(Some(f as u64)),
            _ => Err(JsonError::invalid(format!(
                "`{name}` is too large, got {number}"
            ))),
        }
    }

    /// A duration in milliseconds that may be given under either of two
    /// names (`timeout` and `timeout_ms`, as the original protocol allowed).
    /// Only a value above zero applies: `0` means "none", like absence.
    pub(crate) fn millis_either(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<Duration>, JsonError> {
        let (given, value) = match (self.count(name)?, self.count(alias)?) {
            (Some(_), Some(_)) => {
                return Err(JsonError::invalid(format!(
                    "give `{name}` or `{alias}`, not both"
                )));
            }
            (Some(ms), None) | (None, Some(ms)) => (true, ms),
            (None, None) => (false, 0),
        };
        Ok((given && value > 0).then(|| Duration::from_millis(value)))
    }

    /// An array of strings, such as `argv`. The message of a bad element
    /// names its index.
    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, JsonError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(wrong_type(name, "an array of strings", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(wrong_type(&format!("{name}[{i}]"), "a string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An object whose values are all strings, such as `env`. The pairs
    /// come sorted by key (a JSON object has no order to keep), and a key
    /// sent twice keeps its last value.
    pub(crate) fn string_map(
        &self,
        name: &str,
    ) -> Result<Option<Vec<(String, String)>>, JsonError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let Value::Object(entries) = value else {
            return Err(wrong_type(name, "an object of strings", value));
        };
        entries
            .iter()
            .map(|(key, item)| match item {
                Value::String(text) => Ok((key.clone(), text.clone())),
                other => Err(wrong_type(&format!("{name}.{key}"), "a string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// "`field` must be EXPECTED, got a number".
pub(crate) fn wrong_type(field: &str, expected: &str, got: &Value) -> JsonError {
    JsonError::invalid(format!(
        "`{field}` must be {expected}, got {}",
        type_name(got)
    ))
}

/// The JSON type of `value`, with an article, for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.as_i64().is_some_and(|n| n < 0) => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json::ErrorKind;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn message(err: JsonError) -> String {
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        err.to_string()
    }

    #[test]
    fn unknown_keys_are_named() {
        let m = map(json!({"handle_id": "x", "sandbox_profle": "ci"}));
        let err = message(Params(&m).only("poll", &["handle_id"]).unwrap_err());
        assert!(
            err.contains("unknown parameter \"sandbox_profle\" of `poll`"),
            "{err}"
        );
        assert!(err.contains("it takes handle_id"), "{err}");
        let null = map(json!({"handle_id": "x", "typo": null}));
        assert!(Params(&null).only("poll", &["handle_id"]).is_err());
        Params(&m)
            .only("spawn", &["handle_id", "sandbox_profle"])
            .unwrap();
    }

    #[test]
    fn null_is_absent() {
        let m = map(json!({"cwd": null, "argv": null}));
        let p = Params(&m);
        assert_eq!(p.str("cwd").unwrap(), None);
        assert_eq!(p.strings("argv").unwrap(), None);
    }

    #[test]
    fn counts_reject_negative_fractional_and_non_numbers() {
        let m = map(json!({"a": -5, "b": 1.5, "c": "10", "d": 7.0, "e": 1e300, "f": -0.5}));
        let p = Params(&m);
        assert!(message(p.count("a").unwrap_err()).contains("`a` must not be negative, got -5"));
        assert!(message(p.count("b").unwrap_err()).contains("whole number"));
        assert!(
            message(p.count("c").unwrap_err())
                .contains("`c` must be a whole number ≥ 0, got a string")
        );
        assert_eq!(p.count("d").unwrap(), Some(7));
        assert!(message(p.count("e").unwrap_err()).contains("too large"));
        assert!(message(p.count("f").unwrap_err()).contains("negative"));
    }

    #[test]
    fn millis_apply_only_above_zero() {
        let m = map(json!({"timeout": 0, "timeout_ms": 250}));
        assert!(
            message(
                Params(&m)
                    .millis_either("timeout", "timeout_ms")
                    .unwrap_err()
            )
            .contains("not both")
        );
        let zero = map(json!({"timeout": 0}));
        assert_eq!(
            Params(&zero)
                .millis_either("timeout", "timeout_ms")
                .unwrap(),
            None
        );
        let ms = map(json!({"timeout_ms": 250}));
        assert_eq!(
            Params(&ms).millis_either("timeout", "timeout_ms").unwrap(),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn string_arrays_name_the_bad_element() {
        let m = map(json!({"argv": ["echo", 3], "x": "echo"}));
        let p = Params(&m);
        assert!(
            message(p.strings("argv").unwrap_err())
                .contains("`argv[1]` must be a string, got a number")
        );
        assert!(message(p.strings("x").unwrap_err()).contains("`x` must be an array of strings"));
    }

    #[test]
    fn string_maps_name_the_bad_key() {
        let m = map(json!({"env": {"A": "1", "B": 2}, "bad": ["A"]}));
        let p = Params(&m);
        assert!(message(p.string_map("env").unwrap_err()).contains("`env.B` must be a string"));
        assert!(message(p.string_map("bad").unwrap_err()).contains("an object of strings"));
    }

    #[test]
    fn handle_ids_missing_wrong_or_malformed() {
        let missing = map(json!({}));
        assert!(message(Params(&missing).handle_id().unwrap_err()).contains("missing `handle_id`"));
        let number = map(json!({"handle_id": 5}));
        assert!(message(Params(&number).handle_id().unwrap_err()).contains("must be a string"));
        let bogus = map(json!({"handle_id": "nope"}));
        assert_eq!(
            Params(&bogus).handle_id().unwrap_err().kind(),
            ErrorKind::UnknownHandle
        );
    }
}
