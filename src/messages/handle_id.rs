//! Handle ids: `psh-<pid in lowercase hex>-<n>`.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Numbers handles across every registry in this OS process, so an id is
/// never given out twice even when the OS reuses a pid.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

/// The id of one spawned process: `psh-<pid in lowercase hex>-<n>`.
///
/// `n` comes from a counter shared by every registry in the OS process, so
/// two handles never share an id even when the OS reuses a pid. Ids order by
/// `n`, that is by spawn order. Parse one from a string with [`str::parse`];
/// it serializes as that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandleId {
    // Field order matters: the derived `Ord` compares `seq` first.
    seq: u64,
    pid: u32,
}

impl HandleId {
    /// The smallest id, for range queries.
    pub(crate) const MIN: HandleId = HandleId { seq: 0, pid: 0 };

    /// Makes a fresh id for `pid`, taking the next number of the counter.
    pub(crate) fn next(pid: u32) -> Self {
        HandleId {
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            pid,
        }
    }

    /// The pid the process had when it was spawned. Once the handle is
    /// terminal the OS may have given this pid to another process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The spawn number `n`, unique within this OS process.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Display for HandleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "psh-{:x}-{}", self.pid, self.seq)
    }
}

/// A string that is not a handle id; becomes
/// [`Error::MalformedHandle`](crate::Error::MalformedHandle) with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed handle id `{0}`: expected psh-<pid hex>-<n>")]
pub struct MalformedHandleId(pub String);

impl FromStr for HandleId {
    type Err = MalformedHandleId;

    fn from_str(s: &str) -> Result<Self, MalformedHandleId> {
        let malformed = || MalformedHandleId(s.to_owned());
        let rest = s.strip_prefix("psh-").ok_or_else(malformed)?;
        let (pid, seq) = rest.split_once('-').ok_or_else(malformed)?;
        let lower_hex = !pid.is_empty()
            && pid
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let decimal = !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit());
        if !lower_hex || !decimal {
            return Err(malformed());
        }
        Ok(HandleId {
            pid: u32::from_str_radix(pid, 16).map_err(|_| malformed())?,
            seq: seq.parse().map_err(|_| malformed())?,
        })
    }
}

impl Serialize for HandleId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HandleId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_pid_in_lowercase_hex() {
        let id = HandleId {
            pid: 0xbeef,
            seq: 7,
        };
        assert_eq!(id.to_string(), "psh-beef-7");
    }

    #[test]
    fn round_trips_through_text() {
        let id = HandleId::next(4242);
        assert_eq!(id.to_string().parse::<HandleId>().unwrap(), id);
    }

    #[test]
    fn counter_never_repeats() {
        let a = HandleId::next(1);
        let b = HandleId::next(1);
        assert_ne!(a, b);
        assert!(a < b);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "psh-",
            "psh--1",
            "psh-1-",
            "psh-1",
            "psh-G-1",
            "psh-A-1",
            "psh-1-x",
            "xyz-1-1",
            "psh-1-1-1",
            "psh-+1-1",
            "psh-1-+1",
            "psh-100000000-1",
        ] {
            assert!(
                matches!(bad.parse::<HandleId>(), Err(MalformedHandleId(_))),
                "{bad:?} parsed"
            );
        }
    }
}
