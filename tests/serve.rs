//! The real `procward serve` binary, driven over JSON lines: every op, bad
//! input, fidelity, pipelining, concurrency, back-pressure, sockets and
//! their owners, control ops, policies and ceilings, shutdown, a descriptor
//! limit; and `procward ctl` against a socket server. One binary,
//! one module per behaviour.
//!
//! Each test runs servers of its own, so they run in parallel.

#[path = "serve_support/harness.rs"]
mod harness;

mod serve {
    mod backpressure;
    mod bad_input;
    mod cap_policy;
    mod ceilings;
    mod concurrency;
    mod control;
    mod ctl;
    mod descriptor_limit;
    mod fidelity;
    mod fuzz;
    mod ops;
    mod pipelined;
    mod policy;
    mod read_wait;
    mod shutdown;
    mod socket;
    mod socket_owners;
    mod stdio;
}
