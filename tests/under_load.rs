//! procward under pressure: hundreds of children at once, bursts against
//! the caps, a cancel racing spawns, trees that leave their group and
//! leave zombies behind. One binary, one module per behaviour.
//!
//! The tests here share one process: checks for leftovers look only at
//! what each test itself started (its process groups, its handles).

/// What the behaviours share. (The path is where rustc looks anyway;
/// rustfmt needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod proc;
    pub(crate) use proc::*;
}

mod under_load {
    mod burst_caps;
    mod direct_route;
    mod exit_status;
    mod no_lost_output;
    mod orphan_zombies;
    mod owner_fence;
}
