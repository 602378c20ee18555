//! fjord-tiered: tiered storage's object store side (KIP-405's remote
//! storage manager).
//!
//! Rolled segments are uploaded, file by file and then a manifest, to S3 or
//! a local directory ([`RemoteStore::upload_segment`]); Fetch below the local
//! log start reads them back by byte range through a bounded in-memory cache
//! of 1 MiB chunks ([`RemoteStore::read_range`]); retention deletes them
//! ([`RemoteStore::delete_segment`]). Which segments are remote is the
//! partition's business (its raft log records each [`RemoteSegment`]); this
//! crate only guarantees that an upload is either complete or not listed.
//!
//! - [`TieredConfig`] (in [`config`]): plain data the broker fills in.
//! - [`RemoteStore`] (in [`store`], with the object key layout).
//! - [`ChunkCache`] (in [`cache`]), with why chunks are 1 MiB.
//! - [`SegmentId`], [`FileKind`], [`RemoteSegment`] (in [`segment`]).
//!
//! Depends on nothing of ours: the broker uses it beside fjord-raft.

mod backend;
pub mod cache;
pub mod config;
mod error;
mod layout;
mod manifest;
mod profile;
mod retry;
pub mod segment;
mod stats;
pub mod store;

pub use cache::{CHUNK_BYTES, ChunkCache};
pub use config::{Backend, DEFAULT_CACHE_BYTES, RetryBounds, S3Config, StaticCredentials, TieredConfig};
pub use error::{Error, Result};
pub use layout::{MANIFEST_EXTENSION, Object, ROOT, check_key_prefix};
pub use segment::{FileKind, RemoteFile, RemoteSegment, SegmentId, TopicId, UploadId};
pub use stats::{StatsSnapshot, StoreStats};
pub use store::{PART_BYTES, RemoteStore};
