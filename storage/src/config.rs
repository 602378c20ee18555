//! Per-log settings, named after Kafka's topic configs (`segment.bytes`,
//! `retention.ms`, ...) with the units last, as the rest of the code names things.

use crate::batch::HEADER_BYTES;
use crate::error::{Result, StorageError};

/// Kafka's `segment.ms` and `retention.ms` default: seven days.
const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Settings of one partition log. Changing a topic's config hands the log a new
/// value through [`crate::Log::set_config`]; segments already on disk keep
/// their size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: the active segment rolls before it would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: the active segment rolls once its first batch is this old.
    pub segment_ms: i64,
    /// `index.interval.bytes`: one sparse index entry per this many log bytes.
    pub index_interval_bytes: u64,
    /// `retention.ms`; `None` keeps data forever (Kafka's -1).
    pub retention_ms: Option<i64>,
    /// `retention.bytes`; `None` means no size limit (Kafka's default -1).
    pub retention_bytes: Option<u64>,
    /// `flush.messages`: fsync after this many records; `None` never (Kafka's default).
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when the oldest unflushed write is this old; `None` never.
    pub flush_ms: Option<i64>,
    /// Kafka's durability model: an append counts as durable once it is in
    /// the page cache (which outlives the process), and fsyncs follow
    /// `flush.messages`, `flush.ms` and segment rolls. Off, every append is
    /// synced (group commit) before it counts. The log only carries the
    /// choice; its user (raft's log store) acts on it.
    pub write_cache: bool,
    /// How far ahead of the write position disk blocks are reserved. Writing
    /// into an mmap of unreserved blocks on a full disk raises SIGBUS; a
    /// failed reservation is an ordinary error instead.
    pub preallocate_step_bytes: u64,
    /// How many sealed segments may be mapped with their indexes loaded at
    /// once. Opening a log with thousands of segments maps none of them.
    pub max_open_segments: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: WEEK_MS,
            index_interval_bytes: 4096,
            retention_ms: Some(WEEK_MS),
            retention_bytes: None,
            flush_messages: None,
            flush_ms: None,
            write_cache: false,
            preallocate_step_bytes: 16 << 20,
            max_open_segments: 16,
        }
    }
}

impl LogConfig {
    /// Rejects values the log cannot honour. Kafka's own lower bounds (1 MiB
    /// segments) are the broker's to enforce; the log only needs room for a
    /// batch header and positions that fit the 32-bit index entries.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(StorageError::Config(m));
        if self.segment_bytes < 2 * HEADER_BYTES as u64 || self.segment_bytes > i32::MAX as u64 {
            return bad(format!("segment.bytes {} must lie in [{}, {}]", self.segment_bytes, 2 * HEADER_BYTES, i32::MAX));
        }
        if self.segment_ms <= 0 {
            return bad(format!("segment.ms {} must be positive", self.segment_ms));
        }
        if self.index_interval_bytes == 0 {
            return bad("index.interval.bytes must be positive".into());
        }
        if matches!(self.retention_ms, Some(ms) if ms < 0) {
            return bad("retention.ms must be -1 or non-negative".into());
        }
        if matches!(self.flush_messages, Some(0)) || matches!(self.flush_ms, Some(ms) if ms < 0) {
            return bad("flush.messages must be positive and flush.ms non-negative".into());
        }
        if self.preallocate_step_bytes == 0 || self.max_open_segments == 0 {
            return bad("preallocation step and open segment limit must be positive".into());
        }
        Ok(())
    }
}

/// Wall-clock milliseconds. A trait so tests can move time by hand.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests of rolls, flushes and retention.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(now_ms))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = LogConfig::default();
        c.validate().unwrap();
        assert_eq!((c.segment_bytes, c.index_interval_bytes, c.flush_messages), (1 << 30, 4096, None));
    }

    #[test]
    fn bad_values_are_refused() {
        let cases = [
            LogConfig { segment_bytes: 10, ..Default::default() },
            LogConfig { segment_bytes: 1 << 32, ..Default::default() },
            LogConfig { segment_ms: 0, ..Default::default() },
            LogConfig { index_interval_bytes: 0, ..Default::default() },
            LogConfig { flush_messages: Some(0), ..Default::default() },
            LogConfig { retention_ms: Some(-5), ..Default::default() },
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
