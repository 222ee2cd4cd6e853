//! Bytes in JSON: as text (lossy UTF-8) or as base64, both ways; and how
//! a snapshot's output is shown within a response's size bound.
//!
//! # Text or base64
//!
//! A snapshot's `stdout`/`stderr` is JSON text when that is at most 64
//! bytes longer than base64 would be, and base64 otherwise (`*_encoding`
//! says which), so that a stream of `n` bytes never takes more than
//! `4⌈n/3⌉ + 64` bytes of the response. Text means valid UTF-8, with two kinds of
//! damage forgiven and shown as U+FFFD (as every snapshot did before):
//! a character cut off at the end (a child still writing it), and the
//! characters the capture cap split where it dropped the middle. Anything
//! else that is not UTF-8 goes as base64. Valid UTF-8 can still be costly:
//! JSON writes a control character as `\u00XX`, six bytes for one, so
//! output where escapes would add more than a third (NUL-heavy output, for
//! one) goes as base64 too.

use std::borrow::Cow;

use base64::Engine;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::{Serialize, Serializer};
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

/// The cap on the output bytes of one stream in one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputLimit {
    /// At most this many bytes of the stream are shown.
    pub(crate) max_bytes: usize,
}

/// One stream's bytes as a response shows them: text or base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shown<'a> {
    /// UTF-8 text (see the module docs for the U+FFFD it may hold).
    Text(Cow<'a, str>),
    /// The exact bytes, written as standard base64 with padding.
    Base64(&'a [u8]),
}

impl Shown<'_> {
    /// The `*_encoding` value: `"text"` or `"base64"`.
    pub(crate) fn encoding(&self) -> &'static str {
        match self {
            Shown::Text(_) => Encoding::Text.as_str(),
            Shown::Base64(_) => Encoding::Base64.as_str(),
        }
    }
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Text(text) => serializer.serialize_str(text),
            // Written as it is encoded: no base64 copy of the output.
            Shown::Base64(bytes) => serializer.collect_str(&Base64Display::new(bytes, &STANDARD)),
        }
    }
}

/// Shows the first `limit.max_bytes` of `bytes` (a capture whose dropped
/// middle, if any, was at `junction`); returns whether that cut bytes off.
/// A cut that splits a character ends text before it.
pub(crate) fn show(bytes: &[u8], junction: Option<usize>, limit: OutputLimit) -> (Shown<'_>, bool) {
    let cut = bytes.len() > limit.max_bytes;
    let kept = if cut {
        &bytes[..limit.max_bytes]
    } else {
        bytes
    };
    let text = if cut {
        &kept[..kept.len() - incomplete_utf8_tail(kept)]
    } else {
        kept
    };
    let junction = junction.filter(|at| *at > 0 && *at < text.len());
    match as_text(text, junction) {
        Some(text) if cheap_to_escape(&text) => (Shown::Text(text), cut),
        _ => (Shown::Base64(kept), cut),
    }
}

/// `bytes` as text when they are UTF-8 but for a character cut off at the
/// end or split at `junction` (those become U+FFFD); `None` otherwise.
fn as_text(bytes: &[u8], junction: Option<usize>) -> Option<Cow<'_, str>> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(Cow::Borrowed(text));
    }
    let (head, tail) = match junction {
        Some(at) => (&bytes[..at], Some(&bytes[at..])),
        None => (bytes, None),
    };
    let whole =
        |part: &[u8]| std::str::from_utf8(&part[..part.len() - incomplete_utf8_tail(part)]).is_ok();
    let tail_ok = tail.is_none_or(|tail| {
        // The end of a character whose start the cap dropped.
        let orphans = tail
            .iter()
            .take(MAX_CHAR_BYTES - 1)
            .take_while(|byte| **byte & 0b1100_0000 == 0b1000_0000)
            .count();
        whole(&tail[orphans..])
    });
    (whole(head) && tail_ok).then(|| String::from_utf8_lossy(bytes))
}

/// The longest UTF-8 character, in bytes.
const MAX_CHAR_BYTES: usize = 4;

/// How many bytes longer than base64 the JSON text of a stream may be and
/// still go as text: short output with a newline or two stays readable.
const TEXT_SLACK: usize = 64;

/// Whether `text` written as a JSON string (escapes included) is at most
/// [`TEXT_SLACK`] bytes longer than the base64 of as many bytes.
fn cheap_to_escape(text: &str) -> bool {
    let extra: usize = text
        .bytes()
        .map(|byte| usize::from(ESCAPE_EXTRA[usize::from(byte)]))
        .sum();
    let base64 = text.len().div_ceil(3).saturating_mul(4);
    text.len().saturating_add(extra) <= base64.saturating_add(TEXT_SLACK)
}

/// The bytes serde_json adds when it writes each byte in a string: one for
/// `"`, `\` and the controls with a short escape (`\n`, `\t`, ...),
/// five for the other controls (`\u00XX`).
const ESCAPE_EXTRA: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = 5;
        byte += 1;
    }
    table[0x08] = 1;
    table[0x09] = 1;
    table[0x0A] = 1;
    table[0x0C] = 1;
    table[0x0D] = 1;
    table[b'"' as usize] = 1;
    table[b'\\' as usize] = 1;
    table
};

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

    const ALL: OutputLimit = OutputLimit {
        max_bytes: usize::MAX,
    };

    fn text(text: &str) -> Shown<'_> {
        Shown::Text(Cow::Borrowed(text))
    }

    #[test]
    fn text_stays_text_and_other_bytes_go_as_base64() {
        assert_eq!(show(b"hi\n", None, ALL), (text("hi\n"), false));
        assert_eq!(show(b"", None, ALL), (text(""), false));
        assert_eq!(
            show("naïve €".as_bytes(), None, ALL),
            (text("naïve €"), false)
        );
        // Latin-1, not UTF-8.
        assert_eq!(
            show(b"caf\xe9!", None, ALL),
            (Shown::Base64(b"caf\xe9!"), false)
        );
    }

    #[test]
    fn output_that_escapes_dearly_goes_as_base64() {
        let nuls = [0u8; 64];
        assert_eq!(show(&nuls, None, ALL).0, Shown::Base64(&nuls));
        // Short output stays text whatever it holds.
        assert_eq!(show(b"0\n", None, ALL).0, text("0\n"));
        assert_eq!(show(&nuls[..8], None, ALL).0, text("\0\0\0\0\0\0\0\0"));
        // Newlines and quotes cost one byte each: text up to a third.
        let lines = "ab\n".repeat(200);
        assert_eq!(show(lines.as_bytes(), None, ALL).0, text(&lines));
        let quotes = "\"\"a".repeat(200);
        assert_eq!(
            show(quotes.as_bytes(), None, ALL).0,
            Shown::Base64(quotes.as_bytes())
        );
        // A few controls in text are fine.
        let bell = format!("{}\u{7}", "x".repeat(300));
        assert_eq!(show(bell.as_bytes(), None, ALL).0, text(&bell));
    }

    #[test]
    fn a_character_cut_off_at_the_end_or_split_by_the_cap_stays_text() {
        let euro = "€".as_bytes();
        // A child still writing a character.
        let writing = [b"ok ".as_slice(), &euro[..2]].concat();
        assert_eq!(
            show(&writing, None, ALL).0,
            Shown::Text(Cow::Owned("ok \u{fffd}".to_owned()))
        );
        // The cap dropped the middle of a character: head and tail halves.
        let split = [b"a".as_slice(), &euro[..1], &euro[2..], b"b"].concat();
        assert_eq!(
            show(&split, Some(2), ALL).0,
            Shown::Text(Cow::Owned("a\u{fffd}b".to_owned()))
        );
        // The same damage elsewhere is not forgiven.
        assert_eq!(show(&split, None, ALL).0, Shown::Base64(&split));
        assert_eq!(show(&split, Some(1), ALL).0, Shown::Base64(&split));
        let inside = [euro, b"\xffz"].concat();
        assert_eq!(show(&inside, None, ALL).0, Shown::Base64(&inside));
    }

    #[test]
    fn the_limit_cuts_and_flags_and_text_ends_before_a_split_character() {
        let limit = OutputLimit { max_bytes: 3 };
        assert_eq!(show(b"abcdef", None, limit), (text("abc"), true));
        assert_eq!(show(b"abc", None, limit), (text("abc"), false));
        assert_eq!(show("a€".as_bytes(), None, limit), (text("a"), true));
        let nuls = [0u8; 200];
        let limit_150 = OutputLimit { max_bytes: 150 };
        assert_eq!(
            show(&nuls, None, limit_150),
            (Shown::Base64(&nuls[..150]), true)
        );
        let zero = OutputLimit { max_bytes: 0 };
        assert_eq!(show(b"abc", None, zero), (text(""), true));
    }

    #[test]
    fn base64_is_written_without_a_copy_and_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        let written = serde_json::to_value(Shown::Base64(&bytes)).unwrap();
        let decoded = STANDARD.decode(written.as_str().unwrap()).unwrap();
        assert_eq!(decoded, bytes);
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
