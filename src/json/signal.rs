//! Signals as a client may name them: a number, or a name with or without
//! the `SIG` prefix, in any case (`9`, `"KILL"`, `"SIGTERM"`, `"int"`).
//! The parsing itself is [`Signal`]'s; this module only reads the JSON
//! value and words the error.

use serde_json::Value;

use super::error::JsonError;
use super::params::wrong_type;
use crate::messages::Signal;

/// The signal that `value` (the `field` parameter) names.
pub(crate) fn parse(field: &str, value: &Value) -> Result<Signal, JsonError> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .and_then(Signal::from_raw)
            .ok_or_else(|| {
                JsonError::invalid(format!(
                    "`{field}` must be the number of a named signal (1 to 31 on Linux), got {number}"
                ))
            }),
        Value::String(name) => name.parse().map_err(|_| {
            JsonError::invalid(format!(
                "`{field}`: unknown signal name {}; use a number or a name like \"TERM\" or \"SIGKILL\"",
                super::error::quoted(name)
            ))
        }),
        other => Err(wrong_type(field, "a signal number or name", other)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_in_any_spelling() {
        for name in ["TERM", "SIGTERM", "term", "sigterm", "SigTerm"] {
            assert_eq!(
                parse("signal", &json!(name)).unwrap(),
                Signal::TERM,
                "{name}"
            );
        }
        assert_eq!(parse("signal", &json!("KILL")).unwrap(), Signal::KILL);
        assert_eq!(parse("signal", &json!("INT")).unwrap(), Signal::INT);
        assert_eq!(parse("signal", &json!("HUP")).unwrap(), Signal::HUP);
    }

    #[test]
    fn numbers_of_named_signals() {
        assert_eq!(parse("signal", &json!(15)).unwrap(), Signal::TERM);
        for bad in [json!(0), json!(-9), json!(65), json!(9.5), json!(40)] {
            let err = parse("signal", &bad).unwrap_err().to_string();
            assert!(err.contains("number of a named signal"), "{err}");
        }
    }

    #[test]
    fn rejects_unknown_names_and_types() {
        let err = parse("signal", &json!("SIGFOO")).unwrap_err().to_string();
        assert!(err.contains("unknown signal name \"SIGFOO\""), "{err}");
        let err = parse("signal", &json!(["TERM"])).unwrap_err().to_string();
        assert!(err.contains("got an array"), "{err}");
    }
}
