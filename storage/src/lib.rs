//! fjord-storage: the partition log.
//!
//! A partition is a directory of segments named by base offset, each a `.log`
//! of Kafka v2 record batches kept as opaque bytes, with sparse `.index`,
//! `.timeindex` and `.raftindex` files beside it. The active segment is
//! preallocated and memory-mapped; reads hand out `Bytes` that point into the
//! maps. Every batch is also one raft entry (see `docs/architecture.md`): the
//! log tracks raft indexes beside Kafka offsets, and batches that take no
//! offset (raft's own entries) keep offsets dense. Nothing here knows raft or
//! the network.

pub mod batch;
mod cache;
mod checkpoint;
mod compact;
pub mod config;
pub mod error;
mod flush;
pub mod index;
mod log;
mod mmap;
mod read;
pub mod records;
mod recovery;
mod retention;
mod sealed;
mod segment;
mod truncate;

pub use compact::{AbortedRange, CleanDone, CleanJob, CleanParams, CleanStats, Dirtiness};
pub use config::{Clock, LogConfig, ManualClock, SystemClock};
pub use error::{BatchError, Result, StorageError};
pub use flush::{Durable, FlushJob};
pub use log::{AppendInfo, Log, OpenReport};
pub use read::{Entry, ReadResult, TimestampOffset};
pub use sealed::SealedSegment;
