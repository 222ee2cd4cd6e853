//! [`LimitCeilings`]: the most time, output and resources a spawn may ask
//! for, and what it gets when it asks for nothing.

use std::time::Duration;

use super::{Denied, DenyRule, PolicyContext, SpawnPolicy};
use crate::messages::DEFAULT_OUTPUT_CAP;
use crate::messages::SpawnRequest;

/// Ceilings on a spawn's timeout, capture cap and rlimits, a floor under
/// its nice value, and umask bits it must keep. A request may only tighten
/// them: one above a ceiling is denied ([`DenyRule::Limit`], naming the
/// field and the ceiling), and one that leaves a field out gets the
/// ceiling:
///
/// | ceiling | a request that leaves it out gets |
/// | --- | --- |
/// | [`max_timeout`](Self::max_timeout) | that timeout |
/// | [`max_output_cap`](Self::max_output_cap) | the smaller of it and the registry's default cap |
/// | [`max_rlimit`](Self::max_rlimit) (each rlimit) | that rlimit |
/// | [`min_nice`](Self::min_nice) | the server's own nice value (not raised to the floor) |
/// | [`required_umask`](Self::required_umask) | that umask |
///
/// A timeout of 0 (none) counts as left out. rlimits are set soft = hard
/// in the child; a ceiling above the server's own hard limit makes every
/// spawn that gets it fail unless the server may raise its limits.
///
/// ```
/// use std::time::Duration;
/// use procward::policy::{LimitCeilings, Rlimit};
///
/// let ceilings = LimitCeilings::new()
///     .max_timeout(Duration::from_secs(60))
///     .max_rlimit(Rlimit::OpenFiles, 256)
///     .min_nice(0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitCeilings {
    timeout: Option<Duration>,
    output_cap: Option<usize>,
    default_output_cap: usize,
    rlimits: [Option<u64>; Rlimit::ALL.len()],
    min_nice: Option<i32>,
    umask: Option<u32>,
    unless_profile: bool,
}

/// The rlimits a spawn's [`Limits`](crate::Limits) can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rlimit {
    /// `cpu_seconds` (`RLIMIT_CPU`).
    CpuSeconds,
    /// `address_space_bytes` (`RLIMIT_AS`).
    AddressSpaceBytes,
    /// `open_files` (`RLIMIT_NOFILE`).
    OpenFiles,
    /// `max_processes` (`RLIMIT_NPROC`).
    MaxProcesses,
    /// `core_bytes` (`RLIMIT_CORE`).
    CoreBytes,
}

impl Rlimit {
    const ALL: [Rlimit; 5] = [
        Rlimit::CpuSeconds,
        Rlimit::AddressSpaceBytes,
        Rlimit::OpenFiles,
        Rlimit::MaxProcesses,
        Rlimit::CoreBytes,
    ];

    /// The field's name in a spawn's `limits`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rlimit::CpuSeconds => "cpu_seconds",
            Rlimit::AddressSpaceBytes => "address_space_bytes",
            Rlimit::OpenFiles => "open_files",
            Rlimit::MaxProcesses => "max_processes",
            Rlimit::CoreBytes => "core_bytes",
        }
    }

    fn field(self, request: &mut SpawnRequest) -> &mut Option<u64> {
        let limits = &mut request.limits;
        match self {
            Rlimit::CpuSeconds => &mut limits.cpu_seconds,
            Rlimit::AddressSpaceBytes => &mut limits.address_space_bytes,
            Rlimit::OpenFiles => &mut limits.open_files,
            Rlimit::MaxProcesses => &mut limits.max_processes,
            Rlimit::CoreBytes => &mut limits.core_bytes,
        }
    }
}

impl Default for LimitCeilings {
    fn default() -> Self {
        LimitCeilings {
            timeout: None,
            output_cap: None,
            default_output_cap: DEFAULT_OUTPUT_CAP,
            rlimits: [None; Rlimit::ALL.len()],
            min_nice: None,
            umask: None,
            unless_profile: false,
        }
    }
}

impl LimitCeilings {
    /// No ceilings yet: allows everything.
    pub fn new() -> Self {
        LimitCeilings::default()
    }

    /// At most this timeout; a spawn without one gets it.
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// At most this capture cap per stream, in bytes.
    pub fn max_output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = Some(bytes);
        self
    }

    /// The registry's default capture cap, which a spawn without a cap of
    /// its own gets when it is below [`max_output_cap`](Self::max_output_cap).
    /// Default [`DEFAULT_OUTPUT_CAP`].
    pub fn default_output_cap(mut self, bytes: usize) -> Self {
        self.default_output_cap = bytes;
        self
    }

    /// At most `max` for `rlimit`; a spawn without it gets `max`.
    pub fn max_rlimit(mut self, rlimit: Rlimit, max: u64) -> Self {
        self.rlimits[rlimit as usize] = Some(max);
        self
    }

    /// A nice value of at least `nice` (lower is more favourable, so this
    /// keeps a request from raising its priority above it).
    pub fn min_nice(mut self, nice: i32) -> Self {
        self.min_nice = Some(nice);
        self
    }

    /// Umask bits every spawn keeps set; a spawn without a umask gets
    /// this one.
    pub fn required_umask(mut self, bits: u32) -> Self {
        self.umask = Some(bits);
        self
    }

    /// Applies only to requests that name no sandbox profile: for a base
    /// policy whose ceilings every profile already carries, merged with its
    /// own (see [`tightest`](Self::tightest)).
    pub fn unless_profile(mut self, on: bool) -> Self {
        self.unless_profile = on;
        self
    }

    /// The tighter of `self` and `other`, field by field.
    pub fn tightest(self, other: LimitCeilings) -> LimitCeilings {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        let mut rlimits = self.rlimits;
        for (mine, theirs) in rlimits.iter_mut().zip(other.rlimits) {
            *mine = min(*mine, theirs);
        }
        LimitCeilings {
            timeout: min(self.timeout, other.timeout),
            output_cap: min(self.output_cap, other.output_cap),
            default_output_cap: self.default_output_cap.min(other.default_output_cap),
            rlimits,
            min_nice: match (self.min_nice, other.min_nice) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            umask: match (self.umask, other.umask) {
                (Some(a), Some(b)) => Some(a | b),
                (a, b) => a.or(b),
            },
            unless_profile: self.unless_profile && other.unless_profile,
        }
    }

    /// Whether no ceiling is set.
    pub fn is_empty(&self) -> bool {
        self.timeout.is_none()
            && self.output_cap.is_none()
            && self.rlimits.iter().all(Option::is_none)
            && self.min_nice.is_none()
            && self.umask.is_none()
    }
}

fn above(
    field: &str,
    asked: impl std::fmt::Display,
    rule: &str,
    ceiling: impl std::fmt::Display,
) -> Denied {
    Denied::because(
        DenyRule::Limit,
        format!("{field} {asked} is above this policy's {rule} of {ceiling}"),
    )
}

impl SpawnPolicy for LimitCeilings {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        if self.unless_profile && request.sandbox_profile.is_some() {
            return Ok(());
        }
        if let Some(max) = self.timeout {
            match request.timeout {
                Some(asked) if asked > max => {
                    return Err(above(
                        "timeout_ms",
                        asked.as_millis(),
                        "max_timeout_ms",
                        max.as_millis(),
                    ));
                }
                Some(_) => {}
                None => request.timeout = Some(max),
            }
        }
        if let Some(max) = self.output_cap {
            match request.output_cap {
                Some(asked) if asked > max => {
                    return Err(above("output_cap", asked, "max_output_cap", max));
                }
                Some(_) => {}
                None => request.output_cap = Some(max.min(self.default_output_cap)),
            }
        }
        for rlimit in Rlimit::ALL {
            let Some(max) = self.rlimits[rlimit as usize] else {
                continue;
            };
            let field = rlimit.field(request);
            match *field {
                Some(asked) if asked > max => {
                    let name = rlimit.as_str();
                    let rule = match rlimit {
                        Rlimit::MaxProcesses => "max_processes".to_owned(),
                        _ => format!("max_{name}"),
                    };
                    return Err(above(&format!("limits.{name}"), asked, &rule, max));
                }
                Some(_) => {}
                None => *field = Some(max),
            }
        }
        if let (Some(floor), Some(asked)) = (self.min_nice, request.limits.nice)
            && asked < floor
        {
            return Err(Denied::because(
                DenyRule::Limit,
                format!("limits.nice {asked} is below this policy's min_nice of {floor}"),
            ));
        }
        if let Some(bits) = self.umask {
            match request.limits.umask {
                Some(asked) if asked & bits != bits => {
                    return Err(Denied::because(
                        DenyRule::Limit,
                        format!(
                            "limits.umask {asked:#o} clears bits of this policy's \
                             required_umask {bits:#o}"
                        ),
                    ));
                }
                Some(_) => {}
                None => request.limits.umask = Some(bits),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::scratch::CONTEXT;

    fn check(ceilings: LimitCeilings, mut request: SpawnRequest) -> Result<SpawnRequest, Denied> {
        ceilings.check(&mut request, &CONTEXT)?;
        Ok(request)
    }

    fn reason(ceilings: LimitCeilings, request: SpawnRequest) -> String {
        let denied = check(ceilings, request).unwrap_err();
        assert_eq!(denied.rule, DenyRule::Limit);
        denied.reason
    }

    #[test]
    fn a_request_may_only_tighten() {
        let ceilings = LimitCeilings::new()
            .max_timeout(Duration::from_millis(1000))
            .max_output_cap(4096)
            .max_rlimit(Rlimit::OpenFiles, 64)
            .min_nice(5)
            .required_umask(0o022);
        let tight = SpawnRequest::argv(["true"])
            .timeout(Duration::from_millis(10))
            .output_cap(100);
        let mut tight = tight;
        tight.limits.open_files = Some(8);
        tight.limits.nice = Some(10);
        tight.limits.umask = Some(0o077);
        assert_eq!(check(ceilings, tight.clone()).unwrap(), tight);

        let long = SpawnRequest::argv(["true"]).timeout(Duration::from_millis(1001));
        assert_eq!(
            reason(ceilings, long),
            "timeout_ms 1001 is above this policy's max_timeout_ms of 1000"
        );
        let big = SpawnRequest::argv(["true"]).output_cap(4097);
        assert!(reason(ceilings, big).contains("max_output_cap of 4096"));
        let mut files = SpawnRequest::argv(["true"]);
        files.limits.open_files = Some(65);
        assert_eq!(
            reason(ceilings, files),
            "limits.open_files 65 is above this policy's max_open_files of 64"
        );
        let mut nice = SpawnRequest::argv(["true"]);
        nice.limits.nice = Some(-20);
        assert!(reason(ceilings, nice).contains("below this policy's min_nice of 5"));
        let mut umask = SpawnRequest::argv(["true"]);
        umask.limits.umask = Some(0o002);
        assert!(reason(ceilings, umask).contains("required_umask 0o22"));
    }

    #[test]
    fn what_is_left_out_gets_the_ceiling() {
        let ceilings = LimitCeilings::new()
            .max_timeout(Duration::from_millis(1000))
            .max_output_cap(1 << 30)
            .default_output_cap(1 << 20)
            .max_rlimit(Rlimit::CpuSeconds, 7)
            .min_nice(5)
            .required_umask(0o022);
        let request = check(ceilings, SpawnRequest::argv(["true"])).unwrap();
        assert_eq!(request.timeout, Some(Duration::from_millis(1000)));
        assert_eq!(request.output_cap, Some(1 << 20));
        assert_eq!(request.limits.cpu_seconds, Some(7));
        assert_eq!(request.limits.nice, None);
        assert_eq!(request.limits.umask, Some(0o022));
        let small = check(
            LimitCeilings::new().max_output_cap(10),
            SpawnRequest::argv(["true"]),
        )
        .unwrap();
        assert_eq!(small.output_cap, Some(10));
    }

    #[test]
    fn unless_profile_skips_requests_with_a_profile() {
        let ceilings = LimitCeilings::new()
            .max_timeout(Duration::from_millis(5))
            .unless_profile(true);
        let request = SpawnRequest::argv(["true"])
            .timeout(Duration::from_secs(9))
            .sandbox_profile("ci");
        assert!(check(ceilings, request).is_ok());
        assert!(
            check(
                ceilings,
                SpawnRequest::argv(["true"]).timeout(Duration::from_secs(9))
            )
            .is_err()
        );
    }

    #[test]
    fn tightest_takes_the_stricter_of_each() {
        let a = LimitCeilings::new()
            .max_timeout(Duration::from_secs(10))
            .min_nice(0)
            .required_umask(0o002);
        let b = LimitCeilings::new()
            .max_timeout(Duration::from_secs(60))
            .max_rlimit(Rlimit::CoreBytes, 0)
            .min_nice(5)
            .required_umask(0o020);
        let both = a.tightest(b);
        assert_eq!(both.timeout, Some(Duration::from_secs(10)));
        assert_eq!(both.rlimits[Rlimit::CoreBytes as usize], Some(0));
        assert_eq!(both.min_nice, Some(5));
        assert_eq!(both.umask, Some(0o022));
        assert!(LimitCeilings::new().is_empty() && !both.is_empty());
    }
}
