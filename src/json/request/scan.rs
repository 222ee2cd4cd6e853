//! What serde_json's reading of a line does not keep: the exact text of
//! the request's `id`, and keys given twice in one object.
//!
//! serde_json reads a number into an `f64` when it does not fit an `i64`
//! or `u64` (`1e2` becomes `100.0`, `-0` becomes `-0.0`), and lets the
//! last of two equal keys win. A client must get its `id` back as it wrote
//! it, and a request must mean one thing to every reader (a proxy that
//! checks the first `op` must not be bypassed by a second), so the line is
//! also scanned here.
//!
//! The scanner runs only on a line serde_json has accepted as a JSON
//! object, so it can skip values without checking them. serde_json nests
//! at most 128 levels, which bounds the scanner's recursion too.

use std::borrow::Cow;
use std::collections::HashSet;

/// What a scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Scanned<'a> {
    /// The raw text of the top-level `id` value, as it stands in the line.
    pub(super) id: Option<&'a [u8]>,
    /// The first key given twice in one object, as a path (`op`,
    /// `limits.nice`, `env.A`, `x[2].y`).
    pub(super) duplicate: Option<String>,
}

/// Scans a line that serde_json accepted as one JSON object.
///
/// The scan that every line gets keeps no path; only a line with a
/// repeated key is scanned again to name it.
pub(super) fn scan(line: &[u8]) -> Scanned<'_> {
    let mut fast = Scanner::new(line, false);
    fast.top();
    if !fast.repeated {
        return Scanned {
            id: fast.id,
            duplicate: None,
        };
    }
    let mut named = Scanner::new(line, true);
    named.top();
    Scanned {
        id: named.id,
        duplicate: named.duplicate,
    }
}

/// The id's text without the whitespace outside strings, so that the
/// response stays compact: `[1, 2]` comes back as `[1,2]`, `1e2` as `1e2`.
pub(super) fn compact(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in raw {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !is_space(byte) {
            in_string = byte == b'"';
            out.push(byte);
        }
    }
    // A slice of valid JSON cut at token boundaries is valid UTF-8.
    String::from_utf8(out)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// A key as it stands in the line, between its quotes.
#[derive(Debug, Clone, Copy)]
struct Key<'a> {
    raw: &'a [u8],
    escapes: bool,
}

impl<'a> Key<'a> {
    const NONE: Key<'static> = Key {
        raw: b"",
        escapes: false,
    };

    fn text(self) -> Cow<'a, str> {
        decode(self.raw, self.escapes)
    }

    /// Whether two keys are the same string (`"\u0069d"` is `"id"`).
    fn same(self, other: Key<'_>) -> bool {
        if !self.escapes && !other.escapes {
            return self.raw == other.raw;
        }
        self.text() == other.text()
    }

    fn is(self, name: &str) -> bool {
        if self.escapes {
            self.text() == name
        } else {
            self.raw == name.as_bytes()
        }
    }
}

/// One step of the path to the value being scanned.
enum Step<'a> {
    Key(Key<'a>),
    Index(usize),
}

/// How many keys of an object are compared one by one (kept on the stack);
/// past that they are hashed.
const FEW_KEYS: usize = 8;

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
    /// Whether to keep the path, to name a repeated key.
    tracking: bool,
    path: Vec<Step<'a>>,
    repeated: bool,
    duplicate: Option<String>,
    id: Option<&'a [u8]>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a [u8], tracking: bool) -> Self {
        Scanner {
            text,
            at: 0,
            tracking,
            path: Vec::new(),
            repeated: false,
            duplicate: None,
            id: None,
        }
    }

    fn top(&mut self) {
        self.skip_space();
        if self.peek() == Some(b'{') {
            self.object(true);
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.at += 1;
        }
    }

    /// Skips one value starting at `self.at` (no space before it).
    fn value(&mut self) {
        match self.peek() {
            Some(b'{') => self.object(false),
            Some(b'[') => self.array(),
            Some(b'"') => {
                self.string();
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|byte| !matches!(byte, b',' | b']' | b'}') && !is_space(byte))
                {
                    self.at += 1;
                }
            }
        }
    }

    /// Skips a string; returns it as a key.
    fn string(&mut self) -> Key<'a> {
        self.at += 1;
        let start = self.at;
        let mut escapes = false;
        while let Some(byte) = self.peek() {
            match byte {
                b'\\' => {
                    escapes = true;
                    self.at += 2;
                }
                b'"' => break,
                _ => self.at += 1,
            }
        }
        let end = self.at.min(self.text.len());
        self.at += 1;
        Key {
            raw: &self.text[start.min(end)..end],
            escapes,
        }
    }

    fn array(&mut self) {
        self.at += 1;
        let mut index = 0;
        loop {
            self.skip_space();
            match self.peek() {
                None => return,
                Some(b']') => {
                    self.at += 1;
                    return;
                }
                Some(b',') => {
                    self.at += 1;
                    continue;
                }
                Some(_) => {}
            }
            if self.tracking {
                self.path.push(Step::Index(index));
            }
            self.value();
            if self.tracking {
                self.path.pop();
            }
            index += 1;
        }
    }

    /// Skips an object, noting its first repeated key; at the top level
    /// (`top`), also where the `id` value stands.
    fn object(&mut self, top: bool) {
        self.at += 1;
        let mut few = [Key::NONE; FEW_KEYS];
        let mut count = 0;
        let mut many: Option<HashSet<Cow<'a, str>>> = None;
        loop {
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    continue;
                }
                Some(b'"') => {}
                Some(b'}') => {
                    self.at += 1;
                    return;
                }
                // The end, or (not on a line serde_json accepted) junk.
                _ => return,
            }
            let key = self.string();
            self.skip_space();
            // The `:`.
            self.at += 1;
            self.skip_space();
            let start = self.at;
            let repeated = match &mut many {
                Some(set) => !set.insert(key.text()),
                None if count < FEW_KEYS => {
                    let repeated = few[..count].iter().any(|seen| seen.same(key));
                    few[count] = key;
                    count += 1;
                    repeated
                }
                None => {
                    let mut set: HashSet<Cow<'a, str>> =
                        few.iter().map(|seen| seen.text()).collect();
                    let repeated = !set.insert(key.text());
                    many = Some(set);
                    repeated
                }
            };
            if repeated {
                self.repeated = true;
            }
            if self.tracking {
                self.path.push(Step::Key(key));
                if repeated && self.duplicate.is_none() {
                    self.duplicate = Some(self.path_text());
                }
            }
            self.value();
            if self.tracking {
                self.path.pop();
            }
            if top && key.is("id") {
                self.id = Some(&self.text[start..self.at.min(self.text.len())]);
            }
        }
    }

    fn path_text(&self) -> String {
        let mut text = String::new();
        for step in &self.path {
            match step {
                Step::Key(key) => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push_str(&key.text());
                }
                Step::Index(index) => text.push_str(&format!("[{index}]")),
            }
        }
        text
    }
}

/// A key's text: borrowed when it has no escape, decoded otherwise (so
/// that `"\u0069d"` is the key `id`).
fn decode(raw: &[u8], escapes: bool) -> Cow<'_, str> {
    if !escapes {
        return String::from_utf8_lossy(raw);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    match serde_json::from_slice::<String>(&quoted) {
        Ok(key) => Cow::Owned(key),
        Err(_) => String::from_utf8_lossy(raw).into_owned().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(line: &str) -> Option<String> {
        scan(line.as_bytes()).id.map(compact)
    }

    fn duplicate(line: &str) -> Option<String> {
        scan(line.as_bytes()).duplicate
    }

    #[test]
    fn finds_the_id_text_as_sent() {
        assert_eq!(
            id(r#"{"op":"poll","id":123456789012345678901234567890}"#).as_deref(),
            Some("123456789012345678901234567890")
        );
        assert_eq!(id(r#"{"id": -0 , "op":"x"}"#).as_deref(), Some("-0"));
        assert_eq!(id(r#"{"id":1e2}"#).as_deref(), Some("1e2"));
        assert_eq!(id(r#"{"id":1.50}"#).as_deref(), Some("1.50"));
        assert_eq!(
            id(r#"{"id": [1, {"a": " x "}], "op": "y"}"#).as_deref(),
            Some(r#"[1,{"a":" x "}]"#)
        );
        assert_eq!(id(r#"{"\u0069d": "a\"b"}"#).as_deref(), Some(r#""a\"b""#));
        assert_eq!(id(r#"{"op": {"id": 5}}"#), None);
        assert_eq!(id(r#"{"op": "x"}"#), None);
    }

    #[test]
    fn finds_repeated_keys_at_any_depth() {
        assert_eq!(
            duplicate(r#"{"op":"poll","op":"spawn"}"#).as_deref(),
            Some("op")
        );
        assert_eq!(duplicate(r#"{"id":1,"\u0069d":2}"#).as_deref(), Some("id"));
        assert_eq!(
            duplicate(r#"{"limits": {"nice": 0, "nice": -20}}"#).as_deref(),
            Some("limits.nice")
        );
        assert_eq!(
            duplicate(r#"{"x": [1, {"a": 1}, {"b": 1, "b": 2}]}"#).as_deref(),
            Some("x[2].b")
        );
        assert_eq!(duplicate(r#"{"a": {"b": 1}, "c": {"b": 1}}"#), None);
        assert_eq!(duplicate(r#"{"a": "{\"b\":1,\"b\":2}"}"#), None);
        // Past the keys compared one by one, and back.
        let many: Vec<String> = (0..40)
            .map(|n| format!("\"k{n}\": {{\"k{n}\": 1}}"))
            .collect();
        let line = format!("{{{}, \"k39\": 2}}", many.join(", "));
        assert_eq!(duplicate(&line).as_deref(), Some("k39"));
        let line = format!("{{{}, \"x\": {{\"k1\": 1, \"k1\": 2}}}}", many.join(", "));
        assert_eq!(duplicate(&line).as_deref(), Some("x.k1"));
        assert_eq!(duplicate(&format!("{{{}}}", many.join(", "))), None);
    }
}
