//! Reading request lines with a cap on their length, so that a client
//! cannot make the server buffer without bound.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The line buffer is kept for the next line up to this size; a larger
/// one (after a rare long line) is freed.
const KEEP_CAPACITY: usize = 64 * 1024;

/// One line read from the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A whole line, without its `\n`, held by the reader until the next
    /// call (one buffer serves every line).
    Complete(&'a [u8]),
    /// A line longer than the cap: its bytes were skipped, not kept.
    TooLong {
        /// How many bytes it had (without its `\n`).
        length: usize,
    },
}

/// Splits an input into lines of at most `cap` bytes.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    input: R,
    cap: usize,
    line: Vec<u8>,
    /// Bytes of the current line so far, kept or not.
    length: usize,
    /// `line` holds the line returned last, to be cleared before reading on.
    returned: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(input: R, cap: usize) -> Self {
        LineReader {
            input,
            cap,
            line: Vec::new(),
            length: 0,
            returned: false,
        }
    }

    /// The next line, or `None` at end of input. A last line without a
    /// `\n` still counts.
    ///
    /// Cancel safety: cancel safe. What was read of a line stays in the
    /// reader, and the next call goes on from there.
    pub(crate) async fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        if std::mem::take(&mut self.returned) {
            if self.line.capacity() > KEEP_CAPACITY {
                self.line = Vec::new();
            } else {
                self.line.clear();
            }
        }
        loop {
            let chunk = self.input.fill_buf().await?;
            if chunk.is_empty() {
                if self.length == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.finish()));
            }
            let (part, used, ended) = match chunk.iter().position(|b| *b == b'\n') {
                Some(at) => (&chunk[..at], at + 1, true),
                None => (chunk, chunk.len(), false),
            };
            self.length = self.length.saturating_add(part.len());
            if self.length <= self.cap {
                self.line.extend_from_slice(part);
            } else {
                // Drop what was kept: the line will be refused whole.
                self.line = Vec::new();
            }
            self.input.consume(used);
            if ended {
                return Ok(Some(self.finish()));
            }
        }
    }

    fn finish(&mut self) -> Line<'_> {
        let length = std::mem::take(&mut self.length);
        self.returned = true;
        if length > self.cap {
            Line::TooLong { length }
        } else {
            Line::Complete(&self.line)
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::BufReader;

    use super::*;

    /// A line as the tests keep it, after the reader has moved on.
    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Complete(Vec<u8>),
        TooLong { length: usize },
    }

    async fn lines(input: &[u8], cap: usize, buffer: usize) -> Vec<Owned> {
        let mut reader = LineReader::new(BufReader::with_capacity(buffer, input), cap);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            out.push(match line {
                Line::Complete(bytes) => Owned::Complete(bytes.to_vec()),
                Line::TooLong { length } => Owned::TooLong { length },
            });
        }
        out
    }

    fn complete(text: &str) -> Owned {
        Owned::Complete(text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn splits_on_newlines_and_keeps_a_last_partial_line() {
        for buffer in [1, 3, 64] {
            assert_eq!(
                lines(b"ab\n\ncd\nef", 10, buffer).await,
                vec![complete("ab"), complete(""), complete("cd"), complete("ef")]
            );
        }
    }

    #[tokio::test]
    async fn refuses_long_lines_and_goes_on() {
        for buffer in [1, 4, 64] {
            assert_eq!(
                lines(b"12345\n123456\n1\n", 5, buffer).await,
                vec![
                    complete("12345"),
                    Owned::TooLong { length: 6 },
                    complete("1")
                ]
            );
        }
    }

    #[tokio::test]
    async fn empty_input_has_no_lines() {
        assert!(lines(b"", 5, 8).await.is_empty());
    }
}
