//! The actors: the registry, one process actor per OS process, and the
//! helpers they own (the handle table, receipts, output capture and
//! subscribers, the stdin writer). The OS work they ask for is in
//! [`crate::os`].

mod capture;
mod handle_table;
mod lifecycle;
mod output_reader;
mod process_actor;
mod receipts;
mod registry_actor;
mod stdin_writer;
mod subscribers;

pub use registry_actor::{RegistryActor, RegistryState};
