//! [`ConcurrencyLimit`]: how many processes may run at once.

use super::{Denied, DenyRule, PolicyContext, SpawnPolicy};
use crate::messages::SpawnRequest;

/// Caps the processes running at once, overall and per owner. A spawn past
/// a cap is denied (not queued), with a reason naming the cap and the
/// count.
///
/// The counts come from the [`PolicyContext`]: the registry's handles that
/// are running when the spawn is handled, before it. A process counts
/// until the registry sees it end; a kill or wait that has returned its
/// terminal snapshot has freed its place. Requests without an owner share
/// one count for the per-owner cap, so leaving out the owner does not
/// escape it.
///
/// ```
/// use procward::policy::{ConcurrencyLimit, PolicyChain};
///
/// let chain = PolicyChain::new().with(ConcurrencyLimit::new().overall(32).per_owner(4));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    overall: Option<usize>,
    per_owner: Option<usize>,
}

impl ConcurrencyLimit {
    /// No caps yet.
    pub fn new() -> Self {
        ConcurrencyLimit::default()
    }

    /// At most `max` processes of the registry running at once.
    pub fn overall(mut self, max: usize) -> Self {
        self.overall = Some(max);
        self
    }

    /// At most `max` processes of one owner running at once.
    pub fn per_owner(mut self, max: usize) -> Self {
        self.per_owner = Some(max);
        self
    }

    /// The overall cap, if any.
    pub fn max_overall(&self) -> Option<usize> {
        self.overall
    }

    /// The per-owner cap, if any.
    pub fn max_per_owner(&self) -> Option<usize> {
        self.per_owner
    }
}

impl SpawnPolicy for ConcurrencyLimit {
    fn check(&self, _: &mut SpawnRequest, context: &PolicyContext<'_>) -> Result<(), Denied> {
        if let Some(max) = self.overall {
            if context.running_total >= max {
                return Err(Denied::because(
                    DenyRule::Concurrency,
                    format!(
                        "too many running processes: {} running, the limit overall is {max}",
                        context.running_total
                    ),
                ));
            }
        }
        if let Some(max) = self.per_owner {
            if context.running_of_owner >= max {
                let who = match context.owner {
                    Some(owner) => format!("for owner {owner:?}"),
                    None => "without an owner".to_owned(),
                };
                return Err(Denied::because(
                    DenyRule::Concurrency,
                    format!(
                        "too many running processes {who}: {} running, the limit per owner is {max}",
                        context.running_of_owner
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        limit: ConcurrencyLimit,
        owner: Option<&str>,
        total: usize,
        of_owner: usize,
    ) -> Result<(), Denied> {
        let context = PolicyContext {
            owner,
            running_total: total,
            running_of_owner: of_owner,
        };
        limit.check(&mut SpawnRequest::argv(["true"]), &context)
    }

    #[test]
    fn below_the_caps_passes() {
        let limit = ConcurrencyLimit::new().overall(3).per_owner(2);
        check(limit, Some("a"), 2, 1).unwrap();
        check(ConcurrencyLimit::new(), None, 1000, 1000).unwrap();
    }

    #[test]
    fn the_overall_cap_names_limit_and_count() {
        let reason = check(ConcurrencyLimit::new().overall(3), Some("a"), 3, 0)
            .unwrap_err()
            .reason;
        assert_eq!(
            reason,
            "too many running processes: 3 running, the limit overall is 3"
        );
    }

    #[test]
    fn the_owner_cap_names_the_owner() {
        let limit = ConcurrencyLimit::new().per_owner(2);
        let reason = check(limit, Some("script-1"), 5, 2).unwrap_err().reason;
        assert_eq!(
            reason,
            "too many running processes for owner \"script-1\": 2 running, \
             the limit per owner is 2"
        );
        let reason = check(limit, None, 5, 4).unwrap_err().reason;
        assert_eq!(
            reason,
            "too many running processes without an owner: 4 running, the limit per owner is 2"
        );
    }

    #[test]
    fn zero_denies_everything() {
        assert!(check(ConcurrencyLimit::new().overall(0), None, 0, 0).is_err());
        assert!(check(ConcurrencyLimit::new().per_owner(0), Some("a"), 0, 0).is_err());
    }
}
