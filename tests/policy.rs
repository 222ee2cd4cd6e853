//! Spawn policies in the library: allowed and denied programs, shells,
//! working directories, environments, profiles and concurrency limits. One
//! binary, one module per behaviour.

/// What the behaviours share. (The path is where rustc looks anyway;
/// rustfmt needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod proc;
    pub(crate) use proc::*;
}

mod policy {
    mod concurrency;
    mod cwd;
    mod env;
    mod profiles;
    mod programs;
    mod shell;
}
