//! Bytes in JSON: as text (lossy UTF-8) or as base64, both ways.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::error::{JsonError, quoted};
use super::params::Params;

/// How output bytes are written in a `read` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// UTF-8 text; invalid bytes become U+FFFD.
    Text,
    /// Standard base64 with padding: exact bytes.
    Base64,
}

impl Encoding {
    /// The `encoding` parameter: `"text"` (default) or `"base64"`.
    pub(crate) fn from_params(params: Params<'_>) -> Result<Self, JsonError> {
        match params.str("encoding")? {
            None | Some("text") => Ok(Encoding::Text),
            Some("base64") => Ok(Encoding::Base64),
            Some(other) => Err(JsonError::invalid(format!(
                "`encoding` must be \"text\" or \"base64\", got {}",
                quoted(other)
            ))),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Encoding::Text => "text",
            Encoding::Base64 => "base64",
        }
    }

    pub(crate) fn encode(self, bytes: &[u8]) -> Value {
        match self {
            Encoding::Text => String::from_utf8_lossy(bytes).into_owned().into(),
            Encoding::Base64 => STANDARD.encode(bytes).into(),
        }
    }
}

/// How many bytes at the end of `bytes` are the start of a UTF-8 character
/// that is cut off (0 when the last character is whole or invalid anyway).
///
/// A text read leaves those bytes for the next read, so a character split
/// between two reads is not turned into two U+FFFD.
pub(crate) fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes: look at the last 3 for its lead byte.
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: the lead is further back
        }
        let needed = match byte {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0, // ASCII, or a byte that never starts a character
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// Bytes given as a JSON object `{"text": "..."}` or `{"base64": "..."}`
/// (the `field` parameter), or as a plain string (text).
pub(crate) fn decode_bytes(field: &str, value: &Value) -> Result<Vec<u8>, JsonError> {
    match value {
        Value::String(text) => Ok(text.clone().into_bytes()),
        Value::Object(map) => match (map.get("text"), map.get("base64"), map.len()) {
            (Some(Value::String(text)), None, 1) => Ok(text.clone().into_bytes()),
            (None, Some(Value::String(encoded)), 1) => STANDARD.decode(encoded).map_err(|err| {
                JsonError::invalid(format!("`{field}.base64` is not base64: {err}"))
            }),
            _ => Err(JsonError::invalid(format!(
                "`{field}` must be a string, {{\"text\": string}} or {{\"base64\": string}}"
            ))),
        },
        other => Err(super::params::wrong_type(
            field,
            "a string, {\"text\": string} or {\"base64\": string}",
            other,
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_a_cut_off_character() {
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(incomplete_utf8_tail(b"abc"), 0);
        assert_eq!(incomplete_utf8_tail(euro), 0);
        assert_eq!(incomplete_utf8_tail(&euro[..1]), 1);
        assert_eq!(incomplete_utf8_tail(&[b'a', euro[0], euro[1]]), 2);
        let emoji = "🦀".as_bytes(); // 4 bytes
        assert_eq!(incomplete_utf8_tail(&emoji[..3]), 3);
        assert_eq!(incomplete_utf8_tail(emoji), 0);
        assert_eq!(incomplete_utf8_tail(b"\xff"), 0);
        assert_eq!(incomplete_utf8_tail(b"\x80\x80\x80"), 0);
        assert_eq!(incomplete_utf8_tail(b""), 0);
    }

    #[test]
    fn encodes_text_and_base64() {
        assert_eq!(Encoding::Text.encode(b"hi\xff"), json!("hi\u{fffd}"));
        assert_eq!(Encoding::Base64.encode(b"hi\xff"), json!("aGn/"));
    }

    #[test]
    fn decodes_the_three_forms() {
        assert_eq!(decode_bytes("data", &json!("hi")).unwrap(), b"hi");
        assert_eq!(decode_bytes("data", &json!({"text": "hi"})).unwrap(), b"hi");
        assert_eq!(
            decode_bytes("data", &json!({"base64": "aGn/"})).unwrap(),
            b"hi\xff"
        );
        let err = decode_bytes("data", &json!({"base64": "!!"})).unwrap_err();
        assert!(
            err.to_string().contains("`data.base64` is not base64"),
            "{err}"
        );
        let err = decode_bytes("data", &json!({"text": "a", "base64": "YQ=="})).unwrap_err();
        assert!(err.to_string().contains("`data` must be"), "{err}");
        let err = decode_bytes("data", &json!(5)).unwrap_err();
        assert!(err.to_string().contains("got a number"), "{err}");
    }
}
