//! The actors: the registry, one process actor per OS process, and the
//! helpers they own (the handle table, receipts, output capture and
//! subscribers, the stdin writer). The OS work they ask for is in
//! [`crate::os`].

mod capture;
mod handle_table;
mod lifecycle;
mod output_reader;
mod process;
mod receipts;
mod registry;
mod stdin_writer;
mod subscribers;

pub use registry::{RegistryActor, RegistryState};
