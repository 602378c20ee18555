//! The transaction coordinator (Transactions V1, Kafka's
//! `TransactionCoordinator`): transactional ids and their transactions, on
//! the `__transaction_state` partitions this broker leads.
//!
//! - [`records`]: Kafka's `__transaction_state` key and value formats.
//! - [`state`]: one transactional id's state machine (no I/O, no clock).
//! - [`coordinator`]: shards per partition, loading, writes, timeouts, expiry.
//! - [`ops`]: the operations the request handlers call.
//! - `markers`: completing a transaction on its partitions.
//! - [`topic`]: creating `__transaction_state`.
//! - [`verify`]: KIP-890 part 1, the produce path's check that a partition
//!   is in the producer's transaction.
//!
//! The `transaction.version` feature is not advertised, so clients stay on
//! Transactions V1 (no epoch bump per transaction, AddPartitionsToTxn before
//! producing).

pub mod coordinator;
mod markers;
pub mod ops;
pub mod records;
pub mod state;
pub mod topic;
pub mod verify;

pub use coordinator::{TXN_TOPIC, TxnCoordinator};
pub use verify::verify_partition;
