//! Offsets committed inside transactions (TxnOffsetCommit): Kafka's
//! `pendingTransactionalOffsets` and `openTransactionsByGroup`. Each
//! producer's are held apart until a marker of that producer lands on the
//! partition: COMMIT makes them committed offsets, ABORT drops them. Until
//! then OffsetFetch does not show them, and answers UNSTABLE_OFFSET_COMMIT to
//! a consumer that asks for stable offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::offsets::{Committed, TopicPartition};

#[derive(Default)]
pub struct PendingOffsets {
    by_producer: HashMap<i64, HashMap<String, BTreeMap<TopicPartition, Committed>>>,
    /// The producers with pending offsets, per group.
    open_by_group: HashMap<String, HashSet<i64>>,
}

impl PendingOffsets {
    /// Holds a commit of `producer_id`'s open transaction; of two for the
    /// same partition, the later record stands.
    pub fn add(&mut self, producer_id: i64, group: &str, tp: TopicPartition, committed: Committed) {
        let offsets = self.by_producer.entry(producer_id).or_default().entry(group.to_string()).or_default();
        if offsets.get(&tp).is_none_or(|c| c.record_offset < committed.record_offset) {
            offsets.insert(tp, committed);
        }
        self.open_by_group.entry(group.to_string()).or_default().insert(producer_id);
    }

    /// Whether some open transaction has an offset for this partition of the group.
    pub fn contains(&self, group: &str, tp: &TopicPartition) -> bool {
        self.open_by_group.get(group).is_some_and(|producers| {
            producers.iter().any(|p| self.by_producer.get(p).and_then(|g| g.get(group)).is_some_and(|o| o.contains_key(tp)))
        })
    }

    /// Whether the group has an open transaction holding offsets.
    pub fn has_group(&self, group: &str) -> bool {
        self.open_by_group.contains_key(group)
    }

    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.open_by_group.keys()
    }

    /// The partitions of the group some open transaction has an offset for.
    pub fn partitions_of(&self, group: &str) -> BTreeSet<TopicPartition> {
        let producers = self.open_by_group.get(group).into_iter().flatten();
        producers.filter_map(|p| self.by_producer.get(p)?.get(group)).flat_map(|o| o.keys().cloned()).collect()
    }

    /// Drops what a tombstone written at `tombstone_offset` deletes: every
    /// pending commit of the partition written before it (Kafka drops them
    /// all when it replays a tombstone; the log order is the same rule when
    /// records are applied out of order).
    pub fn delete(&mut self, group: &str, tp: &TopicPartition, tombstone_offset: i64) {
        let Some(producers) = self.open_by_group.get(group) else { return };
        let mut closed = Vec::new();
        for &p in producers {
            let Some(groups) = self.by_producer.get_mut(&p) else { continue };
            let Some(offsets) = groups.get_mut(group) else { continue };
            if offsets.get(tp).is_some_and(|c| c.record_offset < tombstone_offset) {
                offsets.remove(tp);
            }
            if offsets.is_empty() {
                groups.remove(group);
                closed.push(p);
            }
            if groups.is_empty() {
                self.by_producer.remove(&p);
            }
        }
        self.forget(group, &closed);
    }

    /// Takes all of a producer's pending offsets: its transaction ended.
    pub fn take(&mut self, producer_id: i64) -> Vec<(String, TopicPartition, Committed)> {
        let Some(groups) = self.by_producer.remove(&producer_id) else { return Vec::new() };
        let mut out = Vec::new();
        for (group, offsets) in groups {
            self.forget(&group, &[producer_id]);
            out.extend(offsets.into_iter().map(|(tp, c)| (group.clone(), tp, c)));
        }
        out
    }

    fn forget(&mut self, group: &str, producers: &[i64]) {
        if let Some(open) = self.open_by_group.get_mut(group) {
            for p in producers {
                open.remove(p);
            }
            if open.is_empty() {
                self.open_by_group.remove(group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::OffsetValue;

    fn c(offset: i64, record_offset: i64) -> Committed {
        let value = OffsetValue { offset, leader_epoch: -1, metadata: String::new(), commit_timestamp: 0, expire_timestamp: None };
        Committed { value, record_offset }
    }

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    #[test]
    fn pending_offsets_are_kept_per_producer_until_taken() {
        let mut p = PendingOffsets::default();
        p.add(1, "g", tp(0), c(10, 5));
        p.add(1, "g", tp(0), c(8, 3));
        p.add(1, "h", tp(1), c(20, 6));
        p.add(2, "g", tp(1), c(30, 7));
        assert!(p.contains("g", &tp(0)) && p.contains("g", &tp(1)) && p.contains("h", &tp(1)));
        assert!(!p.contains("h", &tp(0)) && !p.contains("x", &tp(0)));
        assert_eq!(p.partitions_of("g"), BTreeSet::from([tp(0), tp(1)]));
        let mut taken = p.take(1);
        taken.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(taken, vec![("g".into(), tp(0), c(10, 5)), ("h".into(), tp(1), c(20, 6))], "the later record of a partition stands");
        assert!(!p.has_group("h") && p.has_group("g"), "h had only producer 1");
        assert!(!p.contains("g", &tp(0)) && p.contains("g", &tp(1)));
        assert!(p.take(1).is_empty(), "a second marker finds nothing");
        assert_eq!(p.take(2).len(), 1);
        assert!(!p.has_group("g") && p.groups().next().is_none() && p.by_producer.is_empty());
    }

    #[test]
    fn a_tombstone_drops_only_the_pending_commits_written_before_it() {
        let mut p = PendingOffsets::default();
        p.add(1, "g", tp(0), c(10, 5));
        p.add(2, "g", tp(0), c(11, 9));
        p.add(2, "g", tp(1), c(12, 10));
        p.delete("g", &tp(0), 7);
        assert!(p.contains("g", &tp(0)), "producer 2's commit came after the tombstone");
        assert!(p.take(1).is_empty(), "producer 1's only commit is gone");
        assert!(p.has_group("g"));
        p.delete("g", &tp(0), 20);
        p.delete("g", &tp(1), 20);
        assert!(!p.has_group("g") && p.by_producer.is_empty());
    }
}
