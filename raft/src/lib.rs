//! fjord-raft: openraft over the partition log of fjord-storage.
//!
//! One raft entry is one Kafka v2 record batch, stored as the batch itself:
//! the term lives in partitionLeaderEpoch, the index in the segment's raft
//! index. Raft's own entries (a new leader's blank entry, membership changes)
//! are private control batches that take a raft index but no Kafka offset.
//! See `docs/architecture.md`.
//!
//! - [`types`]: the openraft type config.
//! - [`entry`]: the entry type and the application data it carries.
//! - [`log_store`]: `RaftLogStorage` over `fjord_storage::Log`, group commit.
//! - [`state_machine`]: high watermark, membership, snapshot.

pub mod entry;
pub mod error;
mod flusher;
mod log_reader;
pub mod log_store;
mod meta;
pub mod state_machine;
pub mod types;

pub use entry::{Entry, KafkaBatch};
pub use error::RaftError;
pub use log_reader::{LogReader, REPLICATION_READ_MAX_BYTES};
pub use log_store::LogStore;
pub use state_machine::{Applied, StateMachine};
pub use types::TypeConfig;
