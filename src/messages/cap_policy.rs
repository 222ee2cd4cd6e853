//! [`CapPolicy`]: what a spawn does when the registry is full of running
//! handles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The queue bound of [`CapPolicy::default`].
pub const DEFAULT_MAX_QUEUED: usize = 1024;

/// What a spawn does when the registry already holds
/// [`max_handles`](crate::RegistryConfig::max_handles) handles.
///
/// Every policy first makes room by evicting a *finished* handle (one whose
/// status a caller has seen first, oldest first; see
/// [`RegistryMsg::Spawn`](crate::RegistryMsg::Spawn)): it leaves a receipt.
/// The policy decides what happens when every handle held is running:
///
/// - `Evict`: the oldest running handle (the spawning owner's first) is
///   killed and evicted, as procward always did. Its waiters get a `killed`
///   snapshot with `evicted` set. The JSON server's default.
/// - `Refuse`: the spawn fails with [`Error::RegistryFull`](crate::Error::RegistryFull);
///   nothing is started, nothing is killed.
/// - `Queue`: the spawn waits in the registry, in order, until a running
///   handle ends (or is released) and frees a place; at most `max_queued`
///   wait, and one past that fails with `RegistryFull`. The spawn's answer
///   comes when it has started. A `KillOwner`/`CloseOwner` drops the
///   owner's queued spawns ([`Error::SpawnCancelled`](crate::Error::SpawnCancelled)).
///
/// The library's default is `Queue { max_queued: 1024 }`: a job runner that
/// starts more jobs than the cap gets every one of them run to its end,
/// nothing it started is killed behind its back, and the backlog is still
/// bounded. A server that must never make a client wait chooses `Evict` or
/// `Refuse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapPolicy {
    /// Kill and evict the oldest running handle.
    Evict,
    /// Fail the spawn with `RegistryFull`.
    Refuse,
    /// Wait for a place, with at most `max_queued` spawns waiting.
    Queue {
        /// How many spawns may wait; past it a spawn is refused.
        max_queued: usize,
    },
}

impl Default for CapPolicy {
    fn default() -> Self {
        CapPolicy::Queue {
            max_queued: DEFAULT_MAX_QUEUED,
        }
    }
}

impl fmt::Display for CapPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapPolicy::Evict => f.write_str("evict"),
            CapPolicy::Refuse => f.write_str("refuse"),
            CapPolicy::Queue { max_queued } => write!(f, "queue:{max_queued}"),
        }
    }
}

impl FromStr for CapPolicy {
    type Err = String;

    /// `evict`, `refuse`, `queue` (with the default bound) or `queue:N`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "evict" => Ok(CapPolicy::Evict),
            "refuse" => Ok(CapPolicy::Refuse),
            "queue" => Ok(CapPolicy::default()),
            other => match other.strip_prefix("queue:").map(str::parse) {
                Some(Ok(max_queued)) => Ok(CapPolicy::Queue { max_queued }),
                _ => Err(format!(
                    "unknown cap policy {other:?}: expected evict, refuse, queue or queue:N"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_displays() {
        for policy in [
            CapPolicy::Evict,
            CapPolicy::Refuse,
            CapPolicy::Queue { max_queued: 7 },
        ] {
            assert_eq!(policy.to_string().parse::<CapPolicy>(), Ok(policy));
        }
        assert_eq!("queue".parse::<CapPolicy>(), Ok(CapPolicy::default()));
        assert!("queue:x".parse::<CapPolicy>().is_err());
        assert!("kill".parse::<CapPolicy>().is_err());
    }
}
