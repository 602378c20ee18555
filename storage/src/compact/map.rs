//! The cleaner's key → latest offset map over the dirty part of a log
//! (Kafka's `SkimpyOffsetMap`). Kafka keeps 16-byte MD5 digests in a fixed
//! buffer; this keeps the keys themselves, so two keys never collide, and
//! counts their bytes against the same kind of budget
//! (`log.cleaner.dedupe.buffer.size`).

use std::collections::HashMap;

/// What one entry costs beside its key: the offset, the key's length and
/// capacity, and the table's own slot, roughly.
const ENTRY_OVERHEAD_BYTES: usize = 48;

/// Owned by one cleaning pass; dropped with it.
#[derive(Debug)]
pub(crate) struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    max_bytes: usize,
}

impl OffsetMap {
    pub fn new(max_bytes: usize) -> Self {
        Self { latest: HashMap::new(), bytes: 0, max_bytes }
    }

    /// Records `offset` as the latest for `key`. Offsets arrive in log
    /// order, so a later put always wins.
    pub fn put(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(o) => {
                debug_assert!(*o < offset, "offsets reach the map in log order");
                *o = offset;
            }
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
                self.latest.insert(key.into(), offset);
            }
        }
    }

    /// The latest offset of `key` in the mapped range, if it occurs there.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Whether the budget is spent: the pass maps no further batch.
    pub fn is_full(&self) -> bool {
        self.bytes >= self.max_bytes
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_offsets_win_and_the_budget_counts_keys_once() {
        let mut m = OffsetMap::new(2 * (ENTRY_OVERHEAD_BYTES + 1));
        m.put(b"a", 1);
        m.put(b"a", 5);
        assert_eq!((m.get(b"a"), m.get(b"b"), m.len(), m.is_full()), (Some(5), None, 1, false));
        m.put(b"b", 6);
        assert!(m.is_full());
    }
}
