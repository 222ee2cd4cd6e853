//! [`Signal`]: a signal a caller may ask procward to send, checked once.

use std::fmt;
use std::str::FromStr;

use rustix::process::Signal as RawSignal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A named POSIX signal, as a kill request sends it to a process group.
///
/// Built from rustix's constants, so the numbers are right on every
/// architecture Linux runs on (they differ on alpha, mips and sparc).
/// Parses from a name with or without the `SIG` prefix, in any case
/// (`"TERM"`, `"sigkill"`), or from the number this machine gives it
/// (`"15"`). Displays as `SIGTERM`. Serializes as the bare name
/// (`"TERM"`), so a request means the same signal on every machine it
/// crosses; deserializes from a name or a number.
///
/// Real-time signals and numbers without a name are refused: procward only
/// sends signals whose meaning it knows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signal(RawSignal);

/// Every signal by its bare name; the first name of a number is the one
/// it displays as.
const NAMES: &[(&str, RawSignal)] = &[
    ("HUP", RawSignal::HUP),
    ("INT", RawSignal::INT),
    ("QUIT", RawSignal::QUIT),
    ("ILL", RawSignal::ILL),
    ("TRAP", RawSignal::TRAP),
    ("ABRT", RawSignal::ABORT),
    ("IOT", RawSignal::ABORT),
    ("BUS", RawSignal::BUS),
    ("FPE", RawSignal::FPE),
    ("KILL", RawSignal::KILL),
    ("USR1", RawSignal::USR1),
    ("SEGV", RawSignal::SEGV),
    ("USR2", RawSignal::USR2),
    ("PIPE", RawSignal::PIPE),
    ("ALRM", RawSignal::ALARM),
    ("TERM", RawSignal::TERM),
    ("CHLD", RawSignal::CHILD),
    ("CONT", RawSignal::CONT),
    ("STOP", RawSignal::STOP),
    ("TSTP", RawSignal::TSTP),
    ("TTIN", RawSignal::TTIN),
    ("TTOU", RawSignal::TTOU),
    ("URG", RawSignal::URG),
    ("XCPU", RawSignal::XCPU),
    ("XFSZ", RawSignal::XFSZ),
    ("VTALRM", RawSignal::VTALARM),
    ("PROF", RawSignal::PROF),
    ("WINCH", RawSignal::WINCH),
    ("IO", RawSignal::IO),
    ("POLL", RawSignal::IO),
    ("PWR", RawSignal::POWER),
    ("SYS", RawSignal::SYS),
];

impl Signal {
    /// `SIGKILL`: cannot be caught; ends the tree at once.
    pub const KILL: Signal = Signal(RawSignal::KILL);
    /// `SIGTERM`: asks the tree to end; escalated to `SIGKILL` after the
    /// kill grace.
    pub const TERM: Signal = Signal(RawSignal::TERM);
    /// `SIGINT`: what a terminal's Ctrl-C sends.
    pub const INT: Signal = Signal(RawSignal::INT);
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(RawSignal::HUP);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(RawSignal::QUIT);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(RawSignal::USR1);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(RawSignal::USR2);

    /// The signal with this number on this machine, if it has a name.
    pub fn from_raw(number: i32) -> Option<Signal> {
        let raw = RawSignal::from_named_raw(number)?;
        NAMES
            .iter()
            .any(|(_, known)| *known == raw)
            .then_some(Signal(raw))
    }

    /// The signal's number on this machine.
    pub fn as_raw(self) -> i32 {
        self.0.as_raw()
    }

    /// The bare name: `"TERM"`, `"KILL"`.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, raw)| *raw == self.0)
            .map_or("?", |(name, _)| *name)
    }

    pub(crate) fn raw(self) -> RawSignal {
        self.0
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// A string that names no signal procward sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?}; use a name like \"TERM\" or \"SIGKILL\", or its number")]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(text: &str) -> Result<Signal, UnknownSignal> {
        let unknown = || UnknownSignal(text.to_owned());
        let trimmed = text.trim();
        if let Ok(number) = trimmed.parse::<i32>() {
            return Signal::from_raw(number).ok_or_else(unknown);
        }
        let upper = trimmed.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        NAMES
            .iter()
            .find(|(name, _)| *name == bare)
            .map(|(_, raw)| Signal(*raw))
            .ok_or_else(unknown)
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Signal, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrNumber {
            Name(String),
            Number(i32),
        }
        let parsed = match NameOrNumber::deserialize(deserializer)? {
            NameOrNumber::Name(name) => name.parse(),
            NameOrNumber::Number(number) => {
                Signal::from_raw(number).ok_or_else(|| UnknownSignal(number.to_string()))
            }
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_prefixes_parse_to_the_same_signal() {
        for text in ["TERM", "term", "SIGTERM", " sigterm ", "15"] {
            assert_eq!(text.parse::<Signal>(), Ok(Signal::TERM), "{text}");
        }
        assert_eq!("POLL".parse::<Signal>(), "IO".parse::<Signal>());
        assert_eq!(Signal::KILL.to_string(), "SIGKILL");
        assert_eq!(Signal::KILL.as_raw(), 9);
    }

    #[test]
    fn unknown_names_and_unnamed_numbers_are_refused() {
        for text in ["", "SIG", "TERMINATE", "0", "-9", "65", "34", "99999999999"] {
            assert!(text.parse::<Signal>().is_err(), "{text:?} parsed");
        }
        assert_eq!(Signal::from_raw(0), None);
    }

    #[test]
    fn every_name_round_trips_through_its_number() {
        for (name, raw) in NAMES {
            let signal = Signal::from_raw(raw.as_raw()).expect("named");
            assert_eq!(name.parse::<Signal>(), Ok(signal));
            assert_eq!(signal.name().parse::<Signal>(), Ok(signal));
        }
    }

    #[test]
    fn serde_uses_the_name_and_accepts_a_number() {
        let json = serde_json::to_string(&Signal::TERM).expect("serializes");
        assert_eq!(json, "\"TERM\"");
        let back: Signal = serde_json::from_str("15").expect("a number");
        assert_eq!(back, Signal::TERM);
        assert!(serde_json::from_str::<Signal>("\"NOPE\"").is_err());
    }
}
