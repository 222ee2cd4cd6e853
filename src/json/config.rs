//! The server's `--config` file: the default spawn policy and the named
//! profiles a spawn may ask for with `sandbox_profile`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::RegistryConfig;
use crate::policy::PolicyConfig;

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
/// passes that profile (an unknown name is denied, never allowed). Unknown
/// keys are errors, so a misspelled rule cannot silently allow everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The policy every spawn passes.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Named profiles.
    #[serde(default)]
    pub profiles: BTreeMap<String, PolicyConfig>,
}

impl ServeConfig {
    /// Reads and parses a config file; the error says which file and why.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read config {}: {err}", path.display()))?;
        Self::parse(&text).map_err(|err| format!("config {}: {err}", path.display()))
    }

    /// Parses the JSON text of a config file.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|err| err.to_string())
    }

    /// The registry settings with this file's policy and profiles.
    pub fn apply(&self, mut config: RegistryConfig) -> RegistryConfig {
        config = config.policy(self.policy.build());
        for (name, profile) in &self.profiles {
            config = config.profile(name.clone(), profile.build());
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
    fn misspelled_keys_are_errors() {
        assert!(ServeConfig::parse(r#"{"profile": {}}"#).is_err());
        assert!(ServeConfig::parse(r#"{"profiles": {"x": {"allow_progams": []}}}"#).is_err());
        assert!(ServeConfig::parse("not json").is_err());
    }
}
