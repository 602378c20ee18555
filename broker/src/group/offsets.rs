//! Committed offsets of the groups one `__consumer_offsets` partition
//! coordinates, as its log says: a commit becomes visible once its record
//! is committed, and a record never overrides a later one. Commits made in
//! a transaction wait in [`PendingOffsets`] for their producer's marker.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::records::{GroupRecord, OffsetValue};
use super::txn_offsets::PendingOffsets;

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
    pending: PendingOffsets,
}

impl Offsets {
    /// Applies a record (a commit, or a tombstone when `value` is None)
    /// written at `record_offset`, unless a later record of the key is known.
    pub fn apply(&mut self, group: &str, tp: TopicPartition, value: Option<OffsetValue>, record_offset: i64) {
        let key = (group.to_string(), tp);
        if self.deleted.get(&key).is_some_and(|&at| at > record_offset) {
            return;
        }
        if value.is_none() {
            self.pending.delete(&key.0, &key.1, record_offset);
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

    /// Applies a record of `producer_id`'s transaction: a commit waits for
    /// the transaction's end ([`complete_txn`](Self::complete_txn)); a
    /// tombstone applies at once, as Kafka replays it.
    pub fn apply_txn(&mut self, producer_id: i64, group: &str, tp: TopicPartition, value: Option<OffsetValue>, record_offset: i64) {
        let Some(value) = value else { return self.apply(group, tp, None, record_offset) };
        let key = (group.to_string(), tp);
        if self.deleted.get(&key).is_some_and(|&at| at > record_offset) {
            return;
        }
        self.pending.add(producer_id, group, key.1, Committed { value, record_offset });
    }

    /// A marker of `producer_id` landed: on COMMIT its pending offsets become
    /// committed ones (unless a later record of the partition is known, as
    /// for any record), on ABORT they are dropped. How many were pending.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) -> usize {
        let taken = self.pending.take(producer_id);
        let n = taken.len();
        if commit {
            for (group, tp, c) in taken {
                self.apply(&group, tp, Some(c.value), c.record_offset);
            }
        }
        n
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

    /// [`apply_written`](Self::apply_written) for a batch of `producer_id`'s transaction.
    pub fn apply_written_txn(&mut self, producer_id: i64, records: Vec<GroupRecord>, base_offset: i64) {
        for (i, r) in records.into_iter().enumerate() {
            if let GroupRecord::Offset { group, topic, partition, value } = r {
                self.apply_txn(producer_id, &group, (topic, partition), value, base_offset + i as i64);
            }
        }
    }

    pub fn get(&self, group: &str, tp: &TopicPartition) -> Option<&Committed> {
        self.by_group.get(group)?.get(tp)
    }

    pub fn of_group(&self, group: &str) -> impl Iterator<Item = (&TopicPartition, &Committed)> {
        self.by_group.get(group).into_iter().flatten()
    }

    /// Whether the group has offsets, committed or in an open transaction.
    pub fn has_group(&self, group: &str) -> bool {
        self.by_group.get(group).is_some_and(|o| !o.is_empty()) || self.pending.has_group(group)
    }

    /// Groups with committed offsets.
    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.by_group.keys()
    }

    /// Groups with offsets in an open transaction.
    pub fn pending_groups(&self) -> impl Iterator<Item = &String> {
        self.pending.groups()
    }

    /// Whether an open transaction has an offset for the partition.
    pub fn has_pending(&self, group: &str, tp: &TopicPartition) -> bool {
        self.pending.contains(group, tp)
    }

    /// Whether the group has an open transaction with offsets.
    pub fn has_pending_group(&self, group: &str) -> bool {
        self.pending.has_group(group)
    }

    /// The partitions of the group some open transaction has an offset for.
    pub fn pending_partitions(&self, group: &str) -> BTreeSet<TopicPartition> {
        self.pending.partitions_of(group)
    }

    /// Every partition a deletion of the group's offsets must tombstone:
    /// committed ones and those only an open transaction has (Kafka's
    /// `deleteAllOffsets`), so the transaction's commit cannot bring them back.
    pub fn all_partitions(&self, group: &str) -> BTreeSet<TopicPartition> {
        let mut all = self.pending_partitions(group);
        all.extend(self.of_group(group).map(|(tp, _)| tp.clone()));
        all
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

    #[test]
    fn transactional_commits_wait_for_their_marker() {
        let mut o = Offsets::default();
        let (tp, other) = (("t".to_string(), 0), ("t".to_string(), 1));
        let at = |o: &Offsets| o.get("g", &("t".to_string(), 0)).map(|c| c.value.offset);
        o.apply("g", tp.clone(), Some(v(5)), 1);
        o.apply_txn(7, "g", tp.clone(), Some(v(10)), 3);
        assert_eq!(at(&o), Some(5), "not visible before the marker");
        assert!(o.has_pending("g", &tp) && !o.has_pending("g", &other));
        assert_eq!(o.complete_txn(7, true), 1);
        assert_eq!(at(&o), Some(10));
        assert!(!o.has_pending("g", &tp) && !o.has_pending_group("g"));

        o.apply_txn(8, "g", tp.clone(), Some(v(20)), 6);
        assert_eq!(o.complete_txn(8, false), 1);
        assert_eq!(at(&o), Some(10), "aborted");

        o.apply_txn(9, "g", tp.clone(), Some(v(30)), 8);
        o.apply("g", tp.clone(), Some(v(25)), 9);
        o.complete_txn(9, true);
        assert_eq!(at(&o), Some(25), "a plain commit written after the transactional one wins");
        o.apply("g", tp.clone(), Some(v(40)), 10);
        o.apply_txn(9, "g", tp.clone(), Some(v(45)), 11);
        o.complete_txn(9, true);
        assert_eq!(at(&o), Some(45), "a transactional commit written after the plain one wins");

        o.apply_txn(3, "h", other.clone(), Some(v(1)), 12);
        assert!(o.has_group("h") && !o.groups().any(|g| g == "h"), "a group with only pending offsets has offsets");
        assert_eq!(o.all_partitions("h"), BTreeSet::from([other.clone()]));
        o.apply("h", other.clone(), None, 13);
        assert!(!o.has_pending("h", &other) && !o.has_group("h"), "the tombstone dropped it");
        assert_eq!(o.complete_txn(3, true), 0);
        assert!(o.get("h", &other).is_none());
        o.apply_txn(4, "h", other.clone(), Some(v(2)), 11);
        assert!(!o.has_pending("h", &other), "a commit written before a known tombstone stays deleted");
    }
}
