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
//! - [`state_machine`]: high watermark, membership, producer states, snapshot.
//! - [`producer_state`]: per-producer epochs and last batches; Kafka's sequence checks.
//! - [`txn`]: transaction markers and the aborted-transaction index.
//! - [`tiered`]: which segments are in the object store, as the log records it.
//! - [`transport`]: one connection per broker pair, coalesced envelopes.
//! - [`registry`]: the groups a broker hosts, keyed by (topic id, partition).
//! - [`elections`]: leader changes as one node sees them: log lines and counters.
//! - [`config`]: raft timings and transport limits, Kafka-style names.

pub mod config;
pub mod elections;
pub mod entry;
pub mod error;
mod flusher;
mod log_reader;
pub mod log_store;
mod meta;
pub mod producer_state;
pub mod receipt;
pub mod registry;
pub mod state_machine;
pub mod tiered;
pub mod transport;
pub mod txn;
pub mod types;

pub use entry::{Entry, KafkaBatch};
pub use error::RaftError;
pub use log_reader::{LogReader, REPLICATION_READ_MAX_BYTES};
pub use log_store::LogStore;
pub use receipt::{AppendReceipt, Appended};
pub use registry::{GroupId, RaftNode};
pub use state_machine::{Applied, StateMachine};
pub use types::TypeConfig;
