//! The one error type of fjord-raft. openraft's storage traits speak
//! `std::io::Error`; [`RaftError`] converts into one at that edge, keeping its
//! message, and the broker maps it to Kafka error codes at its handler edge.

use std::io;

use fjord_storage::{BatchError, StorageError};

/// Errors of the raft glue.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// The partition log refused or failed an operation.
    #[error("partition log: {0}")]
    Storage(#[from] StorageError),
    /// Bytes that should be a record batch are not a valid one.
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
    /// An application batch that takes no Kafka offset: that shape is reserved
    /// for raft's own entries, so a client may not send it.
    #[error("an offsetless control batch is reserved for raft's own entries")]
    ReservedBatch,
    /// A raft-private control batch whose payload we cannot read.
    #[error("corrupt raft entry at index {index}: {detail}")]
    CorruptEntry { index: u64, detail: String },
    /// A term above `i32::MAX` does not fit Kafka's partitionLeaderEpoch.
    #[error("term {term} does not fit in partitionLeaderEpoch (i32)")]
    TermOverflow { term: u64 },
    /// The vote/committed/purged file is unreadable.
    #[error("corrupt raft metadata in {path}: {detail}")]
    CorruptMeta { path: std::path::PathBuf, detail: String },
    /// A snapshot whose bytes do not decode or do not match its meta.
    #[error("invalid snapshot: {0}")]
    Snapshot(String),
    /// The log store must be opened inside a Tokio runtime (it spawns its flusher).
    #[error("the log store needs a Tokio runtime")]
    NoRuntime,
    #[error("{context} {path}: {source}")]
    Io { context: &'static str, path: std::path::PathBuf, source: io::Error },
}

impl From<RaftError> for io::Error {
    fn from(e: RaftError) -> Self {
        let kind = match &e {
            RaftError::Io { source, .. } => source.kind(),
            RaftError::Storage(StorageError::Io { source, .. }) => source.kind(),
            RaftError::TermOverflow { .. } | RaftError::ReservedBatch | RaftError::Batch(_) => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

pub type Result<T, E = RaftError> = std::result::Result<T, E>;
