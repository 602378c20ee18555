//! Transactional offset commits on the coordinator's side. TxnOffsetCommit's
//! records go to the group's partition as a batch of the producer's
//! transaction (Kafka's coordinator writes them the same way), and wait in
//! the shard's pending offsets; the marker writer calls
//! [`GroupCoordinator::complete_txn`] once a marker of that producer is
//! committed on the partition, and they commit or go.
//!
//! A write's offsets are applied once its batch is committed, with the shard
//! unlocked in between, so a marker can be handled while they are on the way
//! (a transaction aborted on timeout while its TxnOffsetCommit was being
//! written). Such a write then looks in the log after its batch for a marker
//! of its producer, as a load would find it, instead of leaving its offsets
//! pending forever.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use tokio::sync::OwnedMutexGuard;

use super::coordinator::{GroupCoordinator, Locked, ShardState, write_error_code};
use super::offsets::TopicPartition;
use super::records::GroupRecord;
use crate::metadata::store::now_ms;
use crate::partition::Partition;
use crate::partition::append::AppendError;
use crate::protocol::records::{batches, build_txn_keyed_batch};

/// TxnOffsetCommit writes proposed but not yet applied, per producer id.
#[derive(Default)]
pub struct TxnWrites {
    by_producer: HashMap<i64, InFlight>,
}

#[derive(Default)]
struct InFlight {
    writes: usize,
    /// The partitions the writes commit offsets for (one entry per record).
    partitions: Vec<(String, TopicPartition)>,
    /// A marker of the producer was handled while a write was on its way.
    marker_seen: bool,
}

impl TxnWrites {
    fn start(&mut self, producer_id: i64, partitions: &[(String, TopicPartition)]) {
        let w = self.by_producer.entry(producer_id).or_default();
        w.writes += 1;
        w.partitions.extend_from_slice(partitions);
    }

    /// The write is over; whether a marker of its producer was handled meanwhile.
    fn finish(&mut self, producer_id: i64, partitions: &[(String, TopicPartition)]) -> bool {
        let Some(w) = self.by_producer.get_mut(&producer_id) else { return false };
        for p in partitions {
            if let Some(i) = w.partitions.iter().position(|q| q == p) {
                w.partitions.swap_remove(i);
            }
        }
        let seen = w.marker_seen;
        w.writes = w.writes.saturating_sub(1);
        if w.writes == 0 {
            self.by_producer.remove(&producer_id);
        }
        seen
    }

    fn marker(&mut self, producer_id: i64) {
        if let Some(w) = self.by_producer.get_mut(&producer_id) {
            w.marker_seen = true;
        }
    }

    /// Whether a write on its way commits an offset for the partition of the group.
    pub fn touches(&self, group: &str, tp: &TopicPartition) -> bool {
        self.by_producer.values().any(|w| w.partitions.iter().any(|(g, p)| g == group && p == tp))
    }
}

/// The coordinator error for a failed transactional write: the producer's
/// own errors pass through (Kafka's `handleOperationException` keeps them;
/// the client treats a stale epoch as fenced), the rest as for any write.
pub fn txn_write_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::InvalidProducerEpoch(_) => E::InvalidProducerEpoch.code(),
        AppendError::InvalidTxnState(_) => E::InvalidTxnState.code(),
        AppendError::Earlier(code) => *code,
        other => write_error_code(other),
    }
}

impl GroupCoordinator {
    /// Writes offset records as part of `producer_id`'s transaction and
    /// holds them as its pending offsets once committed. Call with the
    /// shard locked; as [`write_offsets`](Self::write_offsets), the lock is
    /// released while the commit is awaited and the state returned locked.
    pub async fn write_txn_offsets(
        &self,
        locked: Locked,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<GroupRecord>,
    ) -> Result<OwnedMutexGuard<ShardState>, i16> {
        if !records.iter().all(GroupRecord::fits) {
            return Err(E::InvalidRequest.code());
        }
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = records.iter().map(GroupRecord::encode).collect();
        let batch = build_txn_keyed_batch(&encoded, now_ms(), producer_id, producer_epoch);
        let timeout = Duration::from_millis(self.config.groups.offsets_commit_timeout_ms.max(1) as u64);
        let touched: Vec<(String, TopicPartition)> = records
            .iter()
            .filter_map(|r| match r {
                GroupRecord::Offset { group, topic, partition, .. } => Some((group.clone(), (topic.clone(), *partition))),
                GroupRecord::Group { .. } => None,
            })
            .collect();
        let Locked { shard, mut state } = locked;
        // A batch of a fenced epoch may not reopen the transaction (Kafka's
        // `checkProducerEpoch`, which its coordinator's appends also pass).
        let stored = shard.partition.group().producer_states().read().expect("producer states").get(producer_id).map(|e| e.epoch());
        if let Some(stored) = stored.filter(|s| producer_epoch < *s) {
            tracing::debug!(producer_id, producer_epoch, stored, "transactional offset commit of a fenced epoch");
            return Err(E::InvalidProducerEpoch.code());
        }
        let wait = shard.partition.append_trusted(Bytes::from(batch), timeout).await.map_err(|e| txn_write_error_code(&e))?;
        state.txn_writes.start(producer_id, &touched);
        drop(state);
        let appended = wait.await;
        let mut state = Arc::clone(&shard.state).lock_owned().await;
        let marker_seen = state.txn_writes.finish(producer_id, &touched);
        let appended = appended.map_err(|e| txn_write_error_code(&e))?;
        let after = appended.base_offset + records.len() as i64;
        state.offsets.apply_written_txn(producer_id, records, appended.base_offset);
        if marker_seen && let Some(commit) = marker_after(&shard.partition, after, producer_id) {
            state.offsets.complete_txn(producer_id, commit);
        }
        Ok(state)
    }

    /// A marker of `producer_id` is committed on `__consumer_offsets`
    /// partition `partition`: its pending offsets there commit or go. Called
    /// by the marker writer; nothing to do when this broker does not
    /// coordinate the partition (its next coordinator replays the marker
    /// from the log).
    ///
    /// Must complete before the marker's write is reported done: the
    /// producer's next transaction may only write offsets after that, and
    /// they must not be taken for this one's.
    pub async fn complete_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        let Ok(mut locked) = self.lock_shard(partition).await else { return };
        let n = locked.state.offsets.complete_txn(producer_id, commit);
        locked.state.txn_writes.marker(producer_id);
        tracing::debug!(partition, producer_id, commit, offsets = n, "transaction ended on {}", super::OFFSETS_TOPIC);
    }
}

/// What the first marker of `producer_id` at or after `from` (up to the
/// high watermark) says: Some(true) for COMMIT.
fn marker_after(partition: &Partition, from: i64, producer_id: i64) -> Option<bool> {
    let end = partition.high_watermark();
    let mut at = from;
    while at < end {
        let read = match partition.read(at, 1 << 20, end) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(partition = partition.index, "looking for a marker of producer {producer_id}: {e}");
                return None;
            }
        };
        if read.is_empty() || read.next_offset <= at {
            return None;
        }
        for slice in &read.slices {
            for (header, bytes) in batches(slice) {
                if header.base_offset >= from
                    && header.producer_id == producer_id
                    && let Some(m) = fjord_raft::txn::marker_of(bytes)
                {
                    return Some(m == fjord_raft::txn::MarkerType::Commit);
                }
            }
        }
        at = read.next_offset;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gtp(g: &str, p: i32) -> (String, TopicPartition) {
        (g.to_string(), ("t".to_string(), p))
    }

    #[test]
    fn writes_on_their_way_are_tracked_until_they_finish() {
        let mut w = TxnWrites::default();
        let t0 = ("t".to_string(), 0);
        w.start(7, &[gtp("g", 0), gtp("g", 1)]);
        w.start(7, &[gtp("g", 0)]);
        assert!(w.touches("g", &t0) && !w.touches("h", &t0));
        w.marker(8);
        assert!(!w.finish(7, &[gtp("g", 0)]), "a marker of another producer does not count");
        assert!(w.touches("g", &t0), "the other write still commits g/t-0");
        w.marker(7);
        assert!(w.finish(7, &[gtp("g", 0), gtp("g", 1)]));
        assert!(!w.touches("g", &t0) && w.by_producer.is_empty());
        assert!(!w.finish(7, &[]), "nothing in flight");
    }
}
