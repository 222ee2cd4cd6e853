//! procward under pressure: hundreds of children at once, bursts against
//! the caps, a cancel racing spawns, trees that leave their group and
//! leave zombies behind. One binary, one module per behaviour.
//!
//! The tests here share one process: checks for leftovers look only at
//! what each test itself started (its process groups, its handles).

#[path = "support/proc.rs"]
mod support;

mod under_load {
    mod burst_caps;
    mod no_lost_output;
    mod orphan_zombies;
    mod owner_fence;
}
