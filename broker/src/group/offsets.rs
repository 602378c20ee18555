//! Committed offsets of the groups one `__consumer_offsets` partition
//! coordinates, as its log says: a commit becomes visible once its record
//! is committed, and a record never overrides a later one.

use std::collections::{BTreeMap, HashMap};

use super::records::{GroupRecord, OffsetValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub value: OffsetValue,
    /// Where its record sits in `__consumer_offsets`.
    pub record_offset: i64,
}

pub type TopicPartition = (String, i32);

#[derive(Default)]
pub struct Offsets {
    by_group: HashMap<String, BTreeMap<TopicPartition, Committed>>,
    /// The record offset of the newest tombstone per key, so a commit
    /// written before it and applied after it stays deleted.
    deleted: HashMap<(String, TopicPartition), i64>,
}

impl Offsets {
    /// Applies a record (a commit, or a tombstone when `value` is None)
    /// written at `record_offset`, unless a later record of the key is known.
    pub fn apply(&mut self, group: &str, tp: TopicPartition, value: Option<OffsetValue>, record_offset: i64) {
        let key = (group.to_string(), tp);
        if self.deleted.get(&key).is_some_and(|&at| at > record_offset) {
            return;
        }
        let (group, tp) = key;
        let offsets = self.by_group.entry(group.clone()).or_default();
        if offsets.get(&tp).is_some_and(|c| c.record_offset > record_offset) {
            return;
        }
        match value {
            Some(value) => {
                offsets.insert(tp, Committed { value, record_offset });
            }
            None => {
                offsets.remove(&tp);
                if offsets.is_empty() {
                    self.by_group.remove(&group);
                }
                self.deleted.insert((group, tp), record_offset);
            }
        }
    }

    /// Applies the offset records of one written batch, the first at
    /// `base_offset` (other records in it are skipped).
    pub fn apply_written(&mut self, records: Vec<GroupRecord>, base_offset: i64) {
        for (i, r) in records.into_iter().enumerate() {
            if let GroupRecord::Offset { group, topic, partition, value } = r {
                self.apply(&group, (topic, partition), value, base_offset + i as i64);
            }
        }
    }

    pub fn get(&self, group: &str, tp: &TopicPartition) -> Option<&Committed> {
        self.by_group.get(group)?.get(tp)
    }

    pub fn of_group(&self, group: &str) -> impl Iterator<Item = (&TopicPartition, &Committed)> {
        self.by_group.get(group).into_iter().flatten()
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.by_group.get(group).is_some_and(|o| !o.is_empty())
    }

    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.by_group.keys()
    }

    /// Forgets tombstones older than the log start: nothing before it can arrive any more.
    pub fn forget_tombstones_before(&mut self, offset: i64) {
        self.deleted.retain(|_, at| *at >= offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(offset: i64) -> OffsetValue {
        OffsetValue { offset, leader_epoch: -1, metadata: String::new(), commit_timestamp: 0, expire_timestamp: None }
    }

    #[test]
    fn later_records_win_whatever_order_they_apply_in() {
        let mut o = Offsets::default();
        let tp = ("t".to_string(), 0);
        o.apply("g", tp.clone(), Some(v(10)), 5);
        o.apply("g", tp.clone(), Some(v(7)), 3);
        assert_eq!(o.get("g", &tp).map(|c| c.value.offset), Some(10), "an older commit applied late is ignored");
        o.apply("g", tp.clone(), None, 6);
        assert!(o.get("g", &tp).is_none() && !o.has_group("g"));
        o.apply("g", tp.clone(), Some(v(9)), 4);
        assert!(o.get("g", &tp).is_none(), "a commit from before the tombstone stays deleted");
        o.apply("g", tp.clone(), Some(v(11)), 8);
        assert_eq!(o.get("g", &tp).map(|c| c.value.offset), Some(11));
    }
}
