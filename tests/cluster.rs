//! Registries on other machines (feature `cluster`): real `procward node`
//! processes on 127.0.0.1 with ports chosen at run time. Cookies, TLS,
//! unauthenticated peers, remote operations, placement, subscriptions,
//! policies, a node's death and sessions that close. One binary, one
//! module per behaviour.
#![cfg(feature = "cluster")]

#[path = "cluster_support/certs.rs"]
mod certs;
#[path = "cluster_support/nodes.rs"]
mod nodes;
#[path = "cluster_support/raw_peer.rs"]
mod raw_peer;

/// What the behaviours share. (The path is where rustc looks anyway;
/// rustfmt needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod relay;
}

mod cluster {
    mod auth;
    mod client_listener;
    mod execute;
    mod node_death;
    mod placement;
    mod policy;
    mod remote_ops;
    mod session_close;
    mod subscribe;
    mod tls;
    mod unauthenticated;
}
