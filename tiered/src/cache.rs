//! [`ChunkCache`]: fetched pieces of remote files, bounded by bytes, least
//! recently used evicted first.
//!
//! Remote files are read in fixed chunks of [`CHUNK_BYTES`] (1 MiB), aligned
//! to the file start, so that Fetch requests for neighbouring offsets hit the
//! same cached chunk instead of each paying a GET. 1 MiB because it is what
//! a consumer's Fetch reads per partition by default
//! (`max.partition.fetch.bytes`), so a sequential reader costs about one GET
//! per Fetch, a GET's fixed latency (tens of ms on S3) is small next to
//! transferring 1 MiB, and an index lookup wastes at most 1 MiB.
//!
//! Owned by the [`crate::RemoteStore`]; any task may use it (one mutex, held
//! for map updates only, never across I/O). Two tasks missing the same chunk
//! at once both fetch it; the second insert replaces the first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;

use crate::segment::{FileKind, SegmentId};

/// The size of a chunk; the last chunk of a file is shorter.
pub const CHUNK_BYTES: u64 = 1 << 20;

/// A chunk: chunk `index` covers bytes `index * CHUNK_BYTES ..` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub segment: SegmentId,
    pub kind: FileKind,
    pub index: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct ChunkCache {
    capacity_bytes: u64,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    /// Chunk → (its bytes, its last use).
    entries: HashMap<ChunkKey, (Bytes, u64)>,
    /// Last use → chunk; the first entry is the least recently used.
    by_use: BTreeMap<u64, ChunkKey>,
    used_bytes: u64,
    clock: u64,
}

impl ChunkCache {
    pub fn new(capacity_bytes: u64) -> Self {
        ChunkCache { capacity_bytes, inner: Mutex::new(Lru::default()) }
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// The bytes held now, never above the capacity.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunk, marked as just used.
    pub fn get(&self, key: &ChunkKey) -> Option<Bytes> {
        let mut lru = self.lock();
        let now = lru.tick();
        let (bytes, used) = lru.entries.get_mut(key)?;
        let (bytes, before) = (bytes.clone(), std::mem::replace(used, now));
        lru.by_use.remove(&before);
        lru.by_use.insert(now, *key);
        Some(bytes)
    }

    /// Keeps `bytes` as `key`, evicting the least recently used chunks until
    /// it fits. A chunk larger than the whole cache is not kept.
    pub fn insert(&self, key: ChunkKey, bytes: Bytes) {
        let len = bytes.len() as u64;
        if len > self.capacity_bytes {
            return;
        }
        let mut lru = self.lock();
        lru.remove(&key);
        while lru.used_bytes + len > self.capacity_bytes {
            let Some((_, oldest)) = lru.by_use.first_key_value().map(|(t, k)| (*t, *k)) else { break };
            lru.remove(&oldest);
        }
        let now = lru.tick();
        lru.entries.insert(key, (bytes, now));
        lru.by_use.insert(now, key);
        lru.used_bytes += len;
        debug_assert!(lru.used_bytes <= self.capacity_bytes && lru.entries.len() == lru.by_use.len());
    }

    /// Drops every chunk of `segment` (it was deleted remotely).
    pub fn remove_segment(&self, segment: &SegmentId) {
        let mut lru = self.lock();
        let keys: Vec<ChunkKey> = lru.entries.keys().filter(|k| k.segment == *segment).copied().collect();
        for k in keys {
            lru.remove(&k);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // The map is consistent after every statement that can panic, so a
        // poisoned lock still guards a usable cache.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Lru {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn remove(&mut self, key: &ChunkKey) {
        if let Some((bytes, used)) = self.entries.remove(key) {
            self.by_use.remove(&used);
            self.used_bytes -= bytes.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::UploadId;

    fn key(index: u64) -> ChunkKey {
        let segment = SegmentId { topic_id: [1; 16], partition: 0, base_offset: 0, upload_id: UploadId([2; 16]) };
        ChunkKey { segment, kind: FileKind::Log, index }
    }

    fn chunk(len: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; len])
    }

    #[test]
    fn never_exceeds_its_bound_and_evicts_the_least_recently_used() {
        let cache = ChunkCache::new(1000);
        cache.insert(key(0), chunk(400, 0));
        cache.insert(key(1), chunk(400, 1));
        assert_eq!(cache.used_bytes(), 800);
        // Using 0 makes 1 the least recently used, so 1 goes when 2 comes.
        assert_eq!(cache.get(&key(0)).unwrap()[0], 0);
        cache.insert(key(2), chunk(400, 2));
        assert_eq!((cache.used_bytes(), cache.len()), (800, 2));
        assert!(cache.get(&key(1)).is_none());
        assert!(cache.get(&key(0)).is_some() && cache.get(&key(2)).is_some());

        // A large chunk evicts as many as it needs, oldest first.
        cache.insert(key(3), chunk(900, 3));
        assert_eq!((cache.used_bytes(), cache.len()), (900, 1));
        // Larger than the cache: served by the caller, never kept.
        cache.insert(key(4), chunk(1001, 4));
        assert!(cache.get(&key(4)).is_none());
        assert_eq!(cache.used_bytes(), 900);
        // Replacing a chunk counts its new size only.
        cache.insert(key(3), chunk(100, 5));
        assert_eq!((cache.used_bytes(), cache.get(&key(3)).unwrap()[0]), (100, 5));
    }

    #[test]
    fn random_use_stays_within_the_bound() {
        let cache = ChunkCache::new(10_000);
        for i in 0..5_000u64 {
            let k = i * 7919 % 97;
            match cache.get(&key(k)) {
                Some(b) => assert_eq!(b[0], k as u8, "a chunk is never served under another key"),
                None => cache.insert(key(k), chunk(100 + (k as usize * 37) % 900, k as u8)),
            }
            assert!(cache.used_bytes() <= 10_000);
            // What was just used is the last to go, so it is still there.
            assert!(cache.get(&key(k)).is_some());
        }
    }

    #[test]
    fn zero_capacity_keeps_nothing_and_segments_can_be_dropped() {
        let off = ChunkCache::new(0);
        off.insert(key(0), chunk(1, 0));
        assert!(off.is_empty());

        let cache = ChunkCache::new(100);
        cache.insert(key(0), chunk(10, 0));
        let mut other = key(1);
        other.segment.base_offset = 5;
        cache.insert(other, chunk(10, 1));
        cache.remove_segment(&key(0).segment);
        assert_eq!((cache.len(), cache.used_bytes()), (1, 10));
        assert!(cache.get(&other).is_some());
    }
}
