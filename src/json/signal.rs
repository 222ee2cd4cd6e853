//! Signals as a client may name them: a number, or a name with or without
//! the `SIG` prefix, in any case (`9`, `"KILL"`, `"SIGTERM"`, `"int"`).

use serde_json::Value;

use super::error::JsonError;
use super::params::wrong_type;

/// Linux's signal numbers by name (x86-64, arm64 and most others; this
/// table is not right for alpha, mips or sparc).
const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// The signal number that `value` (the `field` parameter) names.
///
/// Numbers are checked to be in 1..=64 only; whether the registry can send
/// that signal is its own check.
pub(crate) fn parse(field: &str, value: &Value) -> Result<i32, JsonError> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .filter(|n| (1..=64).contains(n))
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                JsonError::invalid(format!(
                    "`{field}` must be a signal number from 1 to 64, got {number}"
                ))
            }),
        Value::String(name) => by_name(name).ok_or_else(|| {
            JsonError::invalid(format!(
                "`{field}`: unknown signal name {}; use a number or a name like \"TERM\" or \"SIGKILL\"",
                super::error::quoted(name)
            ))
        }),
        other => Err(wrong_type(field, "a signal number or name", other)),
    }
}

fn by_name(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(known, _)| *known == bare)
        .map(|(_, number)| *number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_in_any_spelling() {
        for name in ["TERM", "SIGTERM", "term", "sigterm", "SigTerm"] {
            assert_eq!(parse("signal", &json!(name)).unwrap(), 15, "{name}");
        }
        assert_eq!(parse("signal", &json!("KILL")).unwrap(), 9);
        assert_eq!(parse("signal", &json!("INT")).unwrap(), 2);
        assert_eq!(parse("signal", &json!("HUP")).unwrap(), 1);
    }

    #[test]
    fn numbers_in_range() {
        assert_eq!(parse("signal", &json!(15)).unwrap(), 15);
        for bad in [json!(0), json!(-9), json!(65), json!(9.5)] {
            let err = parse("signal", &bad).unwrap_err().to_string();
            assert!(err.contains("from 1 to 64"), "{err}");
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
