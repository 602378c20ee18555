//! Producer state of one partition: Kafka's `ProducerStateManager` in spirit.
//!
//! For every idempotent producer id the partition keeps its epoch, its last
//! [`NUM_BATCHES_TO_RETAIN`] batches (sequence range, offsets, timestamp) and
//! the time it was last seen. The state machine records a batch when its raft
//! entry is committed and applied ([`ProducerStates::apply`]), so every
//! replica holds the same state for the same applied prefix; the leader
//! checks an incoming batch against it ([`ProducerStates::check`]) before it
//! proposes the batch. The rules are Kafka's (`UnifiedLog.analyzeAndValidateProducerState`,
//! `ProducerAppendInfo.checkProducerEpoch`/`checkSequence`,
//! `ProducerStateEntry.findDuplicateBatch`); see shared/notes/kafka-data-path.md §4.
//!
//! As in Kafka, applying never refuses a batch: what was committed happened.
//! Checks belong to the leader, before the batch enters the log.
//!
//! Ownership: the partition's [`StateMachine`](crate::StateMachine) is the only
//! writer (under its lock, see [`SharedProducerStates`]); the broker's produce
//! path reads it to check batches, and its expiry timer removes producers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use fjord_storage::BatchError;
use fjord_storage::batch::BatchHeader;

use crate::txn::{AbortedIndex, AbortedTxn, MarkerType};

/// Batches remembered per producer for duplicate detection: Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`, which is also the most
/// in-flight requests an idempotent producer may have
/// (`max.in.flight.requests.per.connection` ≤ 5).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Kafka's default `producer.id.expiration.ms` (one day).
pub const PRODUCER_ID_EXPIRATION_MS_DEFAULT: i64 = 86_400_000;
/// Kafka's `RecordBatch.NO_PRODUCER_ID`: the batch is not idempotent.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's `RecordBatch.NO_SEQUENCE`.
pub const NO_SEQUENCE: i32 = -1;

/// Byte positions in the v2 batch header that `BatchHeader` does not decode.
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;

/// The producer fields of one batch header. Only batches with a producer id
/// have one ([`ProducerBatch::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    /// baseSequence.
    pub first_seq: i32,
    /// baseSequence + lastOffsetDelta, wrapping past `i32::MAX` to 0 as Kafka does.
    pub last_seq: i32,
    pub last_offset_delta: i32,
    pub max_timestamp_ms: i64,
    /// A control batch (a transaction marker): it moves the epoch, not the sequences.
    pub is_control: bool,
    /// Part of a transaction (attribute 0x10): data batches open one.
    pub is_transactional: bool,
    /// For a transaction marker, what it says.
    pub marker: Option<MarkerType>,
}

impl ProducerBatch {
    /// The producer fields of `batch`, or `None` when it carries no producer id
    /// (not idempotent: nothing to track or check). Fails only on a batch
    /// shorter than its header.
    pub fn parse(batch: &[u8]) -> Result<Option<Self>, BatchError> {
        let h = BatchHeader::parse(batch)?;
        // Kafka's `hasProducerId`: any id above NO_PRODUCER_ID.
        if h.producer_id <= NO_PRODUCER_ID {
            return Ok(None);
        }
        let epoch = i16::from_be_bytes([batch[PRODUCER_EPOCH_AT], batch[PRODUCER_EPOCH_AT + 1]]);
        let first_seq = i32::from_be_bytes(batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].try_into().expect("4 bytes"));
        Ok(Some(Self {
            producer_id: h.producer_id,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, h.last_offset_delta),
            last_offset_delta: h.last_offset_delta,
            max_timestamp_ms: h.max_timestamp,
            is_control: h.is_control(),
            is_transactional: h.is_transactional(),
            marker: crate::txn::marker_of(batch),
        }))
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from
/// `i32::MAX` to 0.
pub fn increment_sequence(seq: i32, by: i32) -> i32 {
    if by >= 0 && seq > i32::MAX - by { by - (i32::MAX - seq) - 1 } else { seq.wrapping_add(by) }
}

/// Kafka's `ProducerAppendInfo.inSequence`: `next` follows `last`, with the
/// wrap from `i32::MAX` to 0.
pub fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// One remembered batch: enough to answer a duplicate with the original offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's maxTimestamp; a duplicate answers with it as log_append_time.
    pub timestamp_ms: i64,
}

/// What the leader should do with an incoming batch. The broker maps it to
/// Kafka error codes at its handler edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Append it.
    Accept,
    /// Same epoch and sequence range as one of the producer's last five
    /// batches: answer success with that batch's offsets and timestamp, and
    /// write nothing (Kafka never sends DUPLICATE_SEQUENCE_NUMBER here).
    Duplicate(BatchMetadata),
    /// An epoch older than the stored one: INVALID_PRODUCER_EPOCH (47).
    InvalidProducerEpoch { epoch: i16, stored_epoch: i16 },
    /// A sequence that does not follow the stored one (a gap, or a new epoch
    /// not starting at 0): OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    OutOfOrderSequence { epoch: i16, first_seq: i32, stored_epoch: i16, stored_last_seq: i32 },
}

/// The state of one producer id. Batches are oldest first, all of `epoch`
/// (a new epoch forgets the old batches, as Kafka's `maybeUpdateProducerEpoch`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    /// maxTimestamp of the producer's last batch or marker: what expiry counts from.
    last_timestamp_ms: i64,
    /// First offset of the producer's open transaction on this partition
    /// (Kafka's `currentTxnFirstOffset`).
    #[serde(default)]
    current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn new() -> Self {
        Self {
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
            last_timestamp_ms: -1,
            current_txn_first_offset: None,
        }
    }

    /// First offset of the producer's open transaction here, if one is open.
    pub fn current_txn_first_offset(&self) -> Option<i64> {
        self.current_txn_first_offset
    }

    pub fn epoch(&self) -> i16 {
        self.epoch
    }

    /// The remembered batches, oldest first; at most [`NUM_BATCHES_TO_RETAIN`].
    pub fn batches(&self) -> impl ExactSizeIterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    /// The last sequence written in this epoch; [`NO_SEQUENCE`] if none.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// The last offset written in this epoch, if any.
    pub fn last_offset(&self) -> Option<i64> {
        self.batches.back().map(|b| b.last_offset)
    }

    pub fn last_timestamp_ms(&self) -> i64 {
        self.last_timestamp_ms
    }

    /// Kafka's rules for a batch `(epoch, first_seq..=last_seq)` of this
    /// producer, in Kafka's order: duplicate, then epoch, then sequence.
    pub fn check(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Outcome {
        if epoch == self.epoch
            && let Some(original) = self.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Outcome::Duplicate(*original);
        }
        if epoch < self.epoch {
            return Outcome::InvalidProducerEpoch { epoch, stored_epoch: self.epoch };
        }
        let in_order = if epoch != self.epoch {
            // A new epoch (KIP-360 bump) restarts at 0, unless nothing was ever
            // known of the producer's epoch.
            first_seq == 0 || self.epoch == NO_PRODUCER_EPOCH
        } else {
            // With no known epoch (all state removed) any sequence is accepted.
            self.epoch == NO_PRODUCER_EPOCH || in_sequence(self.last_seq(), first_seq)
        };
        if in_order {
            Outcome::Accept
        } else {
            Outcome::OutOfOrderSequence { epoch, first_seq, stored_epoch: self.epoch, stored_last_seq: self.last_seq() }
        }
    }

    /// Kafka's `maybeUpdateProducerEpoch`: a different epoch forgets the batches.
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    /// Kafka's `ProducerStateEntry.addBatch`.
    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        self.set_epoch(epoch);
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp_ms = batch.timestamp_ms;
        debug_assert!(self.batches.len() <= NUM_BATCHES_TO_RETAIN);
        debug_assert!(
            self.batches.iter().zip(self.batches.iter().skip(1)).all(|(a, b)| a.last_offset < b.first_offset),
            "batches in log order"
        );
    }
}

/// The producer states of one partition, by producer id. Serialized into the
/// partition's raft snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Open transactions as (first offset, producer id): the first is the
    /// last stable offset's bound.
    #[serde(default)]
    ongoing: BTreeSet<(i64, i64)>,
    /// Aborted transactions, for read_committed fetches.
    #[serde(default)]
    aborted: AbortedIndex,
}

/// How the state machine shares producer states with the produce path.
pub type SharedProducerStates = std::sync::Arc<std::sync::RwLock<ProducerStates>>;

impl ProducerStates {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// How many producer ids are tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Kafka's checks for an incoming batch. A batch without a producer id
    /// and a producer with no state (new, expired, or removed with the log
    /// prefix) are accepted with any sequence, as Kafka does.
    pub fn check(&self, producer_id: i64, epoch: i16, first_seq: i32, last_seq: i32) -> Outcome {
        match self.producers.get(&producer_id) {
            Some(entry) if producer_id > NO_PRODUCER_ID => entry.check(epoch, first_seq, last_seq),
            _ => Outcome::Accept,
        }
    }

    /// Records a committed batch whose first offset is `first_offset` (data)
    /// or a transaction marker (control: epoch and time only, as Kafka's
    /// `appendEndTxnMarker`). Never refuses: see the module doc.
    pub fn apply(&mut self, batch: &ProducerBatch, first_offset: i64) {
        let entry = self.producers.entry(batch.producer_id).or_insert_with(ProducerEntry::new);
        if batch.epoch < entry.epoch {
            // Kafka logs and applies such a batch when it arrives by replication.
            tracing::warn!(
                producer_id = batch.producer_id,
                epoch = batch.epoch,
                stored_epoch = entry.epoch,
                "applied a batch with an older producer epoch"
            );
        }
        if batch.is_control {
            entry.set_epoch(batch.epoch);
            entry.last_timestamp_ms = batch.max_timestamp_ms;
            // Kafka's `appendEndTxnMarker`: the marker ends whatever is open.
            if let Some(txn_first) = entry.current_txn_first_offset.take() {
                self.ongoing.remove(&(txn_first, batch.producer_id));
                if batch.marker == Some(MarkerType::Abort) {
                    // Kafka's `ProducerStateManager.lastStableOffset(completedTxn)`.
                    let last_stable_offset = self.first_unstable_offset().unwrap_or(first_offset + 1);
                    let txn = AbortedTxn {
                        producer_id: batch.producer_id,
                        first_offset: txn_first,
                        last_offset: first_offset,
                        last_stable_offset,
                    };
                    self.aborted.push(txn);
                }
            }
            return;
        }
        let meta = BatchMetadata {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            first_offset,
            last_offset: first_offset + i64::from(batch.last_offset_delta),
            timestamp_ms: batch.max_timestamp_ms,
        };
        entry.add_batch(batch.epoch, meta);
        if batch.is_transactional && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(first_offset);
            self.ongoing.insert((first_offset, batch.producer_id));
        }
    }

    /// First offset of the earliest open transaction: the last stable offset
    /// when it is below the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first().map(|(offset, _)| *offset)
    }

    /// Open transactions as (first offset, producer id), oldest first.
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().copied()
    }

    /// Aborted transactions a read of `[from, upto)` must report.
    pub fn aborted_between(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        self.aborted.between(from, upto)
    }

    /// Every producer with state, by id.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Forgets producers not seen for `producer_id_expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`, `isProducerExpired`: last timestamp at
    /// least that long before `now_ms`). Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, producer_id_expiration_ms: i64) -> usize {
        let before = self.producers.len();
        // Kafka never expires a producer with an open transaction.
        self.producers
            .retain(|_, e| e.current_txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp_ms) < producer_id_expiration_ms);
        before - self.producers.len()
    }

    /// Forgets producers whose every batch lies below `log_start_offset`
    /// (retention or DeleteRecords removed them; Kafka's `truncateHead`).
    /// Returns how many went.
    pub fn remove_below(&mut self, log_start_offset: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| e.current_txn_first_offset.is_some() || e.last_offset().is_some_and(|o| o >= log_start_offset));
        self.aborted.remove_below(log_start_offset);
        before - self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pid: i64, epoch: i16, first_seq: i32, records: i32, ts: i64) -> ProducerBatch {
        let last_offset_delta = records - 1;
        ProducerBatch {
            producer_id: pid,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, last_offset_delta),
            last_offset_delta,
            max_timestamp_ms: ts,
            is_control: false,
            is_transactional: false,
            marker: None,
        }
    }

    /// Name, (producer id, epoch, first seq, last seq), expected outcome.
    type Case = (&'static str, (i64, i16, i32, i32), Outcome);

    /// Producer 7 at epoch 3 with batches seq 0..=1, 2..=4, 5..=5 at offsets 10.., 20.., 30.
    fn states() -> ProducerStates {
        let mut s = ProducerStates::default();
        s.apply(&data(7, 3, 0, 2, 100), 10);
        s.apply(&data(7, 3, 2, 3, 200), 20);
        s.apply(&data(7, 3, 5, 1, 300), 30);
        s
    }

    #[test]
    fn check_follows_kafkas_rules() {
        let s = states();
        let dup = |first_seq, last_seq, first_offset, last_offset, timestamp_ms| {
            Outcome::Duplicate(BatchMetadata { first_seq, last_seq, first_offset, last_offset, timestamp_ms })
        };
        let ooo = |epoch, first_seq| Outcome::OutOfOrderSequence { epoch, first_seq, stored_epoch: 3, stored_last_seq: 5 };
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("next in sequence",               (7, 3, 6, 9),  Outcome::Accept),
            ("duplicate of the oldest",        (7, 3, 0, 1),  dup(0, 1, 10, 11, 100)),
            ("duplicate of a middle batch",    (7, 3, 2, 4),  dup(2, 4, 20, 22, 200)),
            ("duplicate of the last",          (7, 3, 5, 5),  dup(5, 5, 30, 30, 300)),
            ("same first seq, other range",    (7, 3, 2, 3),  ooo(3, 2)),
            ("gap",                            (7, 3, 7, 7),  ooo(3, 7)),
            ("replay from before",             (7, 3, 1, 1),  ooo(3, 1)),
            ("older epoch",                    (7, 2, 6, 6),  Outcome::InvalidProducerEpoch { epoch: 2, stored_epoch: 3 }),
            ("older epoch, dup range",         (7, 2, 0, 1),  Outcome::InvalidProducerEpoch { epoch: 2, stored_epoch: 3 }),
            ("newer epoch from 0 (KIP-360)",   (7, 4, 0, 0),  Outcome::Accept),
            ("newer epoch not from 0",         (7, 4, 6, 6),  ooo(4, 6)),
            ("unknown producer, any sequence", (8, 0, 42, 50), Outcome::Accept),
            ("no producer id",                 (-1, -1, -1, -1), Outcome::Accept),
        ];
        for (name, (pid, epoch, first, last), want) in cases {
            assert_eq!(s.check(*pid, *epoch, *first, *last), *want, "{name}");
        }
    }

    #[test]
    fn entries_without_a_known_epoch_or_batches() {
        // Only a marker was seen at epoch 5: no batches, so the next must start at 0.
        let mut s = ProducerStates::default();
        s.apply(&ProducerBatch { is_control: true, ..data(1, 5, -1, 1, 10) }, 0);
        assert_eq!(s.get(1).map(|e| (e.epoch(), e.batches().len())), Some((5, 0)));
        assert_eq!(s.check(1, 5, 0, 0), Outcome::Accept);
        assert!(matches!(s.check(1, 5, 3, 3), Outcome::OutOfOrderSequence { stored_last_seq: NO_SEQUENCE, .. }));
        // A stored epoch of -1 (NO_PRODUCER_EPOCH) accepts any sequence in any epoch.
        let mut s = ProducerStates::default();
        s.apply(&data(2, NO_PRODUCER_EPOCH, 9, 1, 10), 0);
        assert_eq!(s.check(2, NO_PRODUCER_EPOCH, 40, 40), Outcome::Accept);
        assert_eq!(s.check(2, 0, 40, 40), Outcome::Accept);
    }

    #[test]
    fn sequences_wrap_past_int_max() {
        assert_eq!(increment_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        let mut s = ProducerStates::default();
        let b = data(1, 0, i32::MAX - 1, 2, 10);
        assert_eq!(b.last_seq, i32::MAX);
        s.apply(&b, 0);
        assert_eq!(s.check(1, 0, 0, 4), Outcome::Accept);
        assert!(matches!(s.check(1, 0, i32::MAX, i32::MAX), Outcome::OutOfOrderSequence { .. }));
        // A batch that wraps inside itself is remembered with its wrapped last sequence.
        s.apply(&data(1, 0, i32::MAX, 3, 20), 2);
        assert_eq!(s.get(1).unwrap().last_seq(), 1);
        assert!(matches!(s.check(1, 0, i32::MAX, 1), Outcome::Duplicate(_)));
        assert_eq!(s.check(1, 0, 2, 2), Outcome::Accept);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_a_new_epoch_forgets_them() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.apply(&data(1, 0, i, 1, i64::from(i)), i64::from(i));
        }
        let e = s.get(1).unwrap();
        assert_eq!(e.batches().map(|b| b.first_seq).collect::<Vec<_>>(), [2, 3, 4, 5, 6]);
        assert!(matches!(s.check(1, 0, 2, 2), Outcome::Duplicate(_)));
        assert!(matches!(s.check(1, 0, 1, 1), Outcome::OutOfOrderSequence { .. }), "forgotten, and not next");
        s.apply(&data(1, 1, 0, 2, 100), 7);
        let e = s.get(1).unwrap();
        assert_eq!((e.epoch(), e.batches().len(), e.last_seq(), e.last_offset()), (1, 1, 1, Some(8)));
        assert_eq!(s.check(1, 0, 6, 6), Outcome::InvalidProducerEpoch { epoch: 0, stored_epoch: 1 });
    }

    #[test]
    fn expiry_and_log_start_remove_producers() {
        let mut s = ProducerStates::default();
        s.apply(&data(1, 0, 0, 1, 1_000), 0);
        s.apply(&data(2, 0, 0, 1, 5_000), 1);
        s.apply(&data(3, 0, 0, 1, 9_000), 2);
        assert_eq!(s.remove_expired(5_000 + PRODUCER_ID_EXPIRATION_MS_DEFAULT - 1, PRODUCER_ID_EXPIRATION_MS_DEFAULT), 1);
        assert!(s.get(1).is_none() && s.get(2).is_some(), "expires at exactly the expiration, not before");
        assert_eq!(s.check(1, 0, 77, 77), Outcome::Accept, "an expired producer may continue at any sequence");
        assert_eq!(s.remove_below(2), 1);
        assert_eq!((s.len(), s.get(3).is_some()), (1, true));
    }

    fn txn(pid: i64, records: i32) -> ProducerBatch {
        ProducerBatch { is_transactional: true, ..data(pid, 0, 0, records, 10) }
    }

    fn marker(pid: i64, m: MarkerType) -> ProducerBatch {
        ProducerBatch { is_control: true, is_transactional: true, marker: Some(m), ..data(pid, 0, -1, 1, 20) }
    }

    #[test]
    fn transactions_hold_back_the_last_stable_offset_and_aborts_are_indexed() {
        let mut s = ProducerStates::default();
        s.apply(&data(9, 0, 0, 2, 1), 0); // offsets 0-1: not transactional
        assert_eq!(s.first_unstable_offset(), None);
        s.apply(&txn(1, 3), 2); // 2-4
        s.apply(&txn(2, 1), 5); // 5
        s.apply(&ProducerBatch { first_seq: 3, ..txn(1, 2) }, 6); // 6-7, same transaction
        assert_eq!(s.first_unstable_offset(), Some(2));
        assert_eq!(s.get(1).unwrap().current_txn_first_offset(), Some(2));
        s.apply(&marker(1, MarkerType::Commit), 8);
        assert_eq!(s.first_unstable_offset(), Some(5), "producer 2 still open");
        assert_eq!(s.aborted_between(0, 100), [], "a commit is not indexed");
        s.apply(&marker(2, MarkerType::Abort), 9);
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(s.aborted_between(0, 100), [AbortedTxn { producer_id: 2, first_offset: 5, last_offset: 9, last_stable_offset: 10 }]);
        assert_eq!(s.aborted_between(10, 100), [], "ended before the read");
        // A marker with nothing open (the partition was added but not written) changes nothing.
        s.apply(&marker(3, MarkerType::Abort), 10);
        assert_eq!((s.first_unstable_offset(), s.aborted_between(0, 100).len()), (None, 1));
        // A producer in a transaction is never expired, nor dropped with the log start.
        s.apply(&txn(4, 1), 11);
        assert_eq!(s.remove_expired(i64::MAX, 1), 4, "all but producer 4 expire");
        assert_eq!(s.remove_below(100), 0);
        assert_eq!(s.first_unstable_offset(), Some(11));
        // The state survives the snapshot's serialization.
        let back: ProducerStates = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // A snapshot from before transactions has no such fields.
        let old: ProducerStates = serde_json::from_str(r#"{"producers":{}}"#).unwrap();
        assert_eq!(old.first_unstable_offset(), None);
    }

    #[test]
    fn parse_reads_the_producer_fields() {
        let mut b = fjord_storage::batch::uncompressed_batch(&[5, 9], 3);
        assert_eq!(ProducerBatch::parse(&b).unwrap(), None, "producerId -1 is not tracked");
        b[43..51].copy_from_slice(&42i64.to_be_bytes());
        b[51..53].copy_from_slice(&3i16.to_be_bytes());
        b[53..57].copy_from_slice(&(i32::MAX).to_be_bytes());
        let p = ProducerBatch::parse(&b).unwrap().unwrap();
        assert_eq!(
            p,
            ProducerBatch {
                producer_id: 42,
                epoch: 3,
                first_seq: i32::MAX,
                last_seq: 0,
                last_offset_delta: 1,
                max_timestamp_ms: 9,
                is_control: false,
                is_transactional: false,
                marker: None,
            }
        );
        assert!(ProducerBatch::parse(&b[..60]).is_err());
    }
}
