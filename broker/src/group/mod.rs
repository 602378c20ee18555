//! The group coordinator (classic protocol): groups and committed offsets
//! of the `__consumer_offsets` partitions this broker leads.
//!
//! - [`classic`]: one group's state machine (Join/Sync/Heartbeat/Leave, deadlines).
//! - [`coordinator`]: shards per partition, loading from the log, writes, timers.
//! - [`offsets`]: committed offsets as the log says.
//! - [`txn_offsets`]: offsets of open transactions, waiting for their marker.
//! - [`txn_commit`]: writing TxnOffsetCommit's records, ending transactions on markers.
//! - [`records`]: Kafka's `__consumer_offsets` key and value formats.
//! - [`expiry`]: offset retention (`offsets.retention.minutes`).
//! - [`subscription`]: topics of a consumer-protocol subscription.
//! - [`topic`]: creating `__consumer_offsets`.

pub mod classic;
pub mod coordinator;
pub mod expiry;
pub mod offsets;
pub mod records;
pub mod subscription;
pub mod topic;
pub mod txn_commit;
pub mod txn_offsets;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
