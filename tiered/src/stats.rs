//! [`StoreStats`]: counters of what the store moved and what failed, plain
//! atomics for a metrics exporter to read. Owned by the
//! [`crate::RemoteStore`] (shared with its multipart retry policy); updated
//! by whichever task runs an operation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters since the store was opened. Relaxed: each is read on
/// its own, for display.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Bytes of segment files and manifests written to the store.
    pub bytes_uploaded: AtomicU64,
    /// Bytes read from the store (chunks and manifests), cache hits excluded.
    pub bytes_downloaded: AtomicU64,
    /// Segment uploads completed (manifest written).
    pub segments_uploaded: AtomicU64,
    /// Segment uploads that failed.
    pub upload_failures: AtomicU64,
    /// Reads (ranges, manifests, listings) that failed, not found included.
    pub download_failures: AtomicU64,
    /// Segment deletions that failed.
    pub delete_failures: AtomicU64,
    /// Requests tried again after a transient failure.
    pub retries: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

/// The counters at one moment, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub bytes_uploaded: u64,
    pub bytes_downloaded: u64,
    pub segments_uploaded: u64,
    pub upload_failures: u64,
    pub download_failures: u64,
    pub delete_failures: u64,
    pub retries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl StoreStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            bytes_uploaded: get(&self.bytes_uploaded),
            bytes_downloaded: get(&self.bytes_downloaded),
            segments_uploaded: get(&self.segments_uploaded),
            upload_failures: get(&self.upload_failures),
            download_failures: get(&self.download_failures),
            delete_failures: get(&self.delete_failures),
            retries: get(&self.retries),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
