//! [`TreeLimits`]: the cgroup limits every spawn's process tree gets.

use super::{Denied, DenyRule, PolicyContext, SpawnPolicy};
use crate::messages::{CpuMax, SpawnRequest};

/// cgroup limits for the whole process tree of every spawn it passes:
/// `memory_max`, `pids_max` and `cpu_max` of [`Limits`](crate::Limits). A
/// request may only tighten them: one above is denied
/// ([`DenyRule::Limit`]), one that leaves a field out gets it.
///
/// The registry applies them through the tree's cgroup. Where cgroup
/// containment or the controller a limit needs is missing, the spawn is
/// denied with [`DenyRule::Limit`] naming the controller: a limit is never
/// silently dropped.
///
/// ```
/// use procward::policy::TreeLimits;
///
/// let limits = TreeLimits::new().memory_max(512 << 20).pids_max(64);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeLimits {
    memory_max: Option<u64>,
    pids_max: Option<u64>,
    cpu_max: Option<CpuMax>,
}

impl TreeLimits {
    /// No limits yet.
    pub fn new() -> Self {
        TreeLimits::default()
    }

    /// At most this much memory (cgroup `memory.max`), in bytes.
    pub fn memory_max(mut self, bytes: u64) -> Self {
        self.memory_max = Some(bytes);
        self
    }

    /// At most this many processes and threads at once (`pids.max`).
    pub fn pids_max(mut self, max: u64) -> Self {
        self.pids_max = Some(max);
        self
    }

    /// At most this share of CPU time (`cpu.max`).
    pub fn cpu_max(mut self, cpu: CpuMax) -> Self {
        self.cpu_max = Some(cpu);
        self
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == TreeLimits::default()
    }
}

fn tighten(field: &mut Option<u64>, max: Option<u64>, name: &str) -> Result<(), Denied> {
    let Some(max) = max else {
        return Ok(());
    };
    match *field {
        Some(asked) if asked > max => Err(Denied::because(
            DenyRule::Limit,
            format!("limits.{name} {asked} is above this policy's {name} of {max}"),
        )),
        Some(_) => Ok(()),
        None => {
            *field = Some(max);
            Ok(())
        }
    }
}

impl SpawnPolicy for TreeLimits {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        let limits = &mut request.limits;
        tighten(&mut limits.memory_max, self.memory_max, "memory_max")?;
        tighten(&mut limits.pids_max, self.pids_max, "pids_max")?;
        if let Some(max) = self.cpu_max {
            match limits.cpu_max {
                // A share is compared as quota per period.
                Some(asked)
                    if u128::from(asked.quota_us) * u128::from(max.period_us)
                        > u128::from(max.quota_us) * u128::from(asked.period_us) =>
                {
                    return Err(Denied::because(
                        DenyRule::Limit,
                        format!(
                            "limits.cpu_max {}/{} µs is above this policy's cpu_max of {}/{} µs",
                            asked.quota_us, asked.period_us, max.quota_us, max.period_us
                        ),
                    ));
                }
                Some(_) => {}
                None => limits.cpu_max = Some(max),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::scratch::CONTEXT;

    #[test]
    fn fills_in_and_refuses_above() {
        let policy = TreeLimits::new()
            .memory_max(1000)
            .pids_max(8)
            .cpu_max(CpuMax {
                quota_us: 50_000,
                period_us: 100_000,
            });
        let mut bare = SpawnRequest::argv(["true"]);
        policy.check(&mut bare, &CONTEXT).unwrap();
        assert_eq!(bare.limits.memory_max, Some(1000));
        assert_eq!(bare.limits.pids_max, Some(8));
        assert_eq!(bare.limits.cpu_max.map(|c| c.quota_us), Some(50_000));

        let mut tighter = SpawnRequest::argv(["true"]);
        tighter.limits.pids_max = Some(4);
        tighter.limits.cpu_max = Some(CpuMax {
            quota_us: 10_000,
            period_us: 10_000 * 4,
        });
        policy.check(&mut tighter, &CONTEXT).unwrap();
        assert_eq!(tighter.limits.pids_max, Some(4));

        let mut more = SpawnRequest::argv(["true"]);
        more.limits.pids_max = Some(9);
        let denied = policy.check(&mut more, &CONTEXT).unwrap_err();
        assert_eq!(denied.rule, DenyRule::Limit);
        assert!(denied.reason.contains("pids_max"), "{}", denied.reason);

        let mut cpu = SpawnRequest::argv(["true"]);
        cpu.limits.cpu_max = Some(CpuMax {
            quota_us: 60_000,
            period_us: 100_000,
        });
        assert!(policy.check(&mut cpu, &CONTEXT).is_err());
    }
}
