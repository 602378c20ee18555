//! The one error type of fjord-storage. The broker maps each variant to a Kafka
//! error code at its handler edge; nothing here knows about the wire.

use std::io;
use std::path::PathBuf;

/// Why a batch was refused before anything was written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("batch is {len} bytes, shorter than the 61-byte v2 header")]
    TooShort { len: usize },
    #[error("magic byte {magic} is not supported, only record batch v2 (magic 2) is")]
    UnsupportedMagic { magic: i8 },
    #[error("batchLength {declared} does not match the {actual} bytes that follow the length field")]
    LengthMismatch { declared: i32, actual: usize },
    #[error("crc32c mismatch: header says {stored:#010x}, bytes give {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record count {record_count} with lastOffsetDelta {last_offset_delta} is not a valid batch")]
    BadRecordCount { record_count: i32, last_offset_delta: i32 },
    #[error("batch of {len} bytes exceeds the segment size of {segment_bytes} bytes")]
    TooLarge { len: usize, segment_bytes: u64 },
}

/// Errors of the partition log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    #[error("raft index {index} is out of range: the log holds [{first}, {next})")]
    RaftIndexOutOfRange { index: u64, first: u64, next: u64 },
    #[error("raft index {got} does not follow the last entry; expected {expected}")]
    RaftIndexGap { got: u64, expected: u64 },
    #[error("leader epoch {epoch} is not valid: {reason}")]
    BadLeaderEpoch { epoch: i32, reason: &'static str },
    #[error("invalid log config: {0}")]
    Config(String),
    #[error("corrupt {what} in {path}: {detail}")]
    Corrupt { what: &'static str, path: PathBuf, detail: String },
    #[error("{context} {path}: {source}")]
    Io { context: &'static str, path: PathBuf, source: io::Error },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Attaches the failing operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StorageError::Io { context, path: path.to_path_buf(), source })
    }
}
