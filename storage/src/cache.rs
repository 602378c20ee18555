//! The bounded set of sealed segments that are open (mapped, indexes loaded).
//! A log of 10,000 segments keeps at most `max_open_segments` of them open;
//! evicting one only drops our handle, so readers holding its bytes are safe.

use std::sync::Arc;

use crate::segment::Segment;

/// Least recently used first. Small (tens of entries), so a Vec is the right map.
#[derive(Debug)]
pub struct SegmentCache {
    entries: Vec<(i64, Arc<Segment>)>,
    capacity: usize,
}

impl SegmentCache {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "the cache must hold at least one segment");
        Self { entries: Vec::with_capacity(capacity), capacity }
    }

    pub fn get(&mut self, base_offset: i64) -> Option<Arc<Segment>> {
        let i = self.entries.iter().position(|(b, _)| *b == base_offset)?;
        let e = self.entries.remove(i);
        let seg = Arc::clone(&e.1);
        self.entries.push(e);
        Some(seg)
    }

    pub fn insert(&mut self, base_offset: i64, seg: Arc<Segment>) {
        self.remove(base_offset);
        while self.entries.len() >= self.capacity {
            self.entries.remove(0);
        }
        self.entries.push((base_offset, seg));
    }

    pub fn remove(&mut self, base_offset: i64) {
        self.entries.retain(|(b, _)| *b != base_offset);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.entries.len() > self.capacity {
            self.entries.remove(0);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
