//! [`ProfileDefault`]: the profile a spawn runs under when it names none.

use super::{Denied, DenyRule, PolicyContext, SpawnPolicy};
use crate::messages::SpawnRequest;

/// Gives a spawn that names no sandbox profile a default one, or denies it
/// when a profile is required. In a registry's base policy it must come
/// after the rules that should see the request as it was sent; the
/// registry applies the profile after the whole base policy, so the
/// default profile's rules apply to such a spawn as if it had named it.
///
/// ```
/// use procward::policy::ProfileDefault;
///
/// // Every spawn runs under "untrusted" unless it names another profile.
/// let default = ProfileDefault::new().default_profile("untrusted");
/// // Every spawn must name a profile.
/// let required = ProfileDefault::new().required(true);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileDefault {
    default: Option<String>,
    required: bool,
}

impl ProfileDefault {
    /// Changes nothing yet.
    pub fn new() -> Self {
        ProfileDefault::default()
    }

    /// The profile of a spawn that names none.
    pub fn default_profile(mut self, name: impl Into<String>) -> Self {
        self.default = Some(name.into());
        self
    }

    /// Deny a spawn that names no profile (when there is no default).
    pub fn required(mut self, on: bool) -> Self {
        self.required = on;
        self
    }

    /// Whether this policy changes nothing.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && !self.required
    }
}

impl SpawnPolicy for ProfileDefault {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        if request.sandbox_profile.is_some() {
            return Ok(());
        }
        match &self.default {
            Some(name) => {
                request.sandbox_profile = Some(name.clone());
                Ok(())
            }
            None if self.required => Err(Denied::because(
                DenyRule::Profile,
                "this server requires a sandbox_profile, and the request names none",
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::scratch::CONTEXT;

    #[test]
    fn fills_in_the_default_and_keeps_a_named_one() {
        let policy = ProfileDefault::new().default_profile("low").required(true);
        let mut bare = SpawnRequest::argv(["true"]);
        policy.check(&mut bare, &CONTEXT).unwrap();
        assert_eq!(bare.sandbox_profile.as_deref(), Some("low"));
        let mut named = SpawnRequest::argv(["true"]).sandbox_profile("high");
        policy.check(&mut named, &CONTEXT).unwrap();
        assert_eq!(named.sandbox_profile.as_deref(), Some("high"));
    }

    #[test]
    fn requires_a_profile_without_a_default() {
        let denied = ProfileDefault::new()
            .required(true)
            .check(&mut SpawnRequest::argv(["true"]), &CONTEXT)
            .unwrap_err();
        assert_eq!(denied.rule, DenyRule::Profile);
        assert!(
            ProfileDefault::new()
                .check(&mut SpawnRequest::argv(["true"]), &CONTEXT)
                .is_ok()
        );
    }
}
