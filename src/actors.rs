//! The actors: the registry, one process actor per OS process, and the
//! helpers they own (the handle table, output capture, the OS child).

mod capture;
mod child;
mod escapees;
mod guard;
mod handle_table;
mod limits;
mod orphans;
mod output_reader;
mod process;
mod receipts;
mod registry;
mod stdin_writer;
mod subscribers;

pub(crate) use child::Spawned;
pub use registry::{RegistryActor, RegistryState};
#[cfg(feature = "cluster")]
pub(crate) use subscribers::SUBSCRIBER_WINDOW;
