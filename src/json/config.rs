//! The server's `--config` file: the default spawn policy and the named
//! profiles a spawn may ask for with `sandbox_profile`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::RegistryConfig;
use crate::policy::{PolicyConfig, ProfileDefault};

/// The `--config` file of `procward serve`, in JSON:
///
/// ```json
/// {
///   "policy": { "deny_programs": ["/usr/bin/sudo"], "max_running": 64 },
///   "profiles": {
///     "untrusted": { "allow_programs": ["/bin/echo"], "allow_shell": false,
///                    "env_allow": ["PATH", "LANG"], "cwd_roots": ["/tmp"] }
///   }
/// }
/// ```
///
/// `policy` applies to every spawn; a spawn with `sandbox_profile` also
/// passes that profile (an unknown name is denied, never allowed). A spawn
/// that names no profile runs under `default_profile` when there is one;
/// with `require_profile` and no default it is denied (`"rule":
/// "profile"`). Unknown keys are errors, so a misspelled rule cannot
/// silently allow everything.
///
/// Ceilings (`max_timeout_ms`, `max_output_cap`, the rlimit maxima,
/// `min_nice`, `required_umask`) of `policy` bind every spawn: a profile's
/// ceilings are merged with them, the tighter of each winning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The policy every spawn passes.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Named profiles.
    #[serde(default)]
    pub profiles: BTreeMap<String, PolicyConfig>,
    /// The profile of a spawn that names none (it must be one of
    /// `profiles`).
    #[serde(default)]
    pub default_profile: Option<String>,
    /// Deny a spawn that names no profile when there is no
    /// `default_profile`.
    #[serde(default)]
    pub require_profile: bool,
}

impl ServeConfig {
    /// Reads and parses a config file; the error says which file and why.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read config {}: {err}", path.display()))?;
        Self::parse(&text).map_err(|err| format!("config {}: {err}", path.display()))
    }

    /// Parses the JSON text of a config file, and checks what serde
    /// cannot: the values of ceilings, and that `default_profile` names a
    /// profile of the file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: ServeConfig = serde_json::from_str(text).map_err(|err| err.to_string())?;
        config
            .policy
            .validate()
            .map_err(|err| format!("policy: {err}"))?;
        for (name, profile) in &config.profiles {
            profile
                .validate()
                .map_err(|err| format!("profile {name:?}: {err}"))?;
        }
        if config.require_profile && config.profiles.is_empty() {
            return Err(
                "require_profile is set, but there are no profiles: every spawn would be \
                 denied"
                    .to_owned(),
            );
        }
        if let Some(name) = &config.default_profile
            && !config.profiles.contains_key(name)
        {
            return Err(format!(
                "default_profile {name:?} is not one of the profiles"
            ));
        }
        Ok(config)
    }

    /// The registry settings with this file's policy and profiles.
    ///
    /// The base policy's ceilings apply to spawns without a profile; each
    /// profile carries the tighter of its own and the base policy's, so
    /// that a spawn gets the ceiling that binds it when it leaves a field
    /// out, whichever chain runs first.
    pub fn apply(&self, mut config: RegistryConfig) -> RegistryConfig {
        let default_cap = config.output_cap;
        let base = self.policy.ceilings(default_cap);
        let mut chain = self.policy.build_with(Default::default());
        let mut profile_default = ProfileDefault::new().required(self.require_profile);
        if let Some(name) = &self.default_profile {
            profile_default = profile_default.default_profile(name.clone());
        }
        if !profile_default.is_empty() {
            chain = chain.with(profile_default);
        }
        if !base.is_empty() {
            chain = chain.with(base.unless_profile(true));
        }
        config = config.policy(chain);
        for (name, profile) in &self.profiles {
            let ceilings = profile.ceilings(default_cap).tightest(base);
            config = config.profile(name.clone(), profile.build_with(ceilings));
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_policy_and_profiles() {
        let config = ServeConfig::parse(
            r#"{"policy": {"max_running": 3},
                "profiles": {"ci": {"allow_shell": false}, "open": {}}}"#,
        )
        .unwrap();
        let registry = config.apply(RegistryConfig::default());
        assert!(!registry.policy.is_empty());
        assert_eq!(
            registry.profiles.keys().collect::<Vec<_>>(),
            vec!["ci", "open"]
        );
    }

    #[test]
    fn an_empty_file_object_allows_everything() {
        let registry = ServeConfig::parse("{}")
            .unwrap()
            .apply(RegistryConfig::default());
        assert!(registry.policy.is_empty() && registry.profiles.is_empty());
    }

    #[test]
    fn the_default_profile_must_exist() {
        let err = ServeConfig::parse(r#"{"default_profile": "ci"}"#).unwrap_err();
        assert!(err.contains("\"ci\" is not one of the profiles"), "{err}");
        let config =
            ServeConfig::parse(r#"{"default_profile": "ci", "profiles": {"ci": {}}}"#).unwrap();
        assert_eq!(config.default_profile.as_deref(), Some("ci"));
        let err = ServeConfig::parse(r#"{"require_profile": true}"#).unwrap_err();
        assert!(err.contains("no profiles"), "{err}");
        let err = ServeConfig::parse(r#"{"profiles": {"ci": {"min_nice": 40}}}"#).unwrap_err();
        assert!(err.contains("profile \"ci\": min_nice 40"), "{err}");
    }

    #[test]
    fn misspelled_keys_are_errors() {
        assert!(ServeConfig::parse(r#"{"profile": {}}"#).is_err());
        assert!(ServeConfig::parse(r#"{"profiles": {"x": {"allow_progams": []}}}"#).is_err());
        assert!(ServeConfig::parse("not json").is_err());
    }
}
