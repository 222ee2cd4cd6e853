//! What several output tests share: a registry that reaps orphans, and the
//! exact bytes `seq` prints.

// Every test binary uses only some of these helpers.
#![allow(dead_code)]

use procward::{Registry, RegistryConfig};

/// What `seq 1 n` prints.
pub(crate) fn seq_output(n: u32) -> Vec<u8> {
    (1..=n)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect()
}

/// A registry in orphan-reaping mode, so that nothing of a killed tree is
/// left when a kill or wait returns.
pub(crate) async fn registry() -> Registry {
    Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .expect("the registry starts")
}
