//! A partition's side of transactions: the markers a coordinator writes, and
//! the index of aborted transactions read_committed consumers need.
//!
//! A marker is Kafka's control batch (`EndTransactionMarker`): attributes
//! transactional | control, the transaction's producer id and epoch, and one
//! record whose key is `version i16 (0) | type i16` (ABORT = 0, COMMIT = 1)
//! and whose value is `version i16 (0) | coordinatorEpoch i32`. It takes one
//! offset, as in Kafka.
//!
//! Kafka keeps aborted transactions in a `.txnindex` file per segment. Here
//! they are partition state kept with the producer states (built as committed
//! entries apply, part of the raft snapshot, pruned with the log start), so
//! every replica has the same index for the same applied prefix, and uploads
//! to tiered storage need no index file of their own: the index outlives the
//! local segments it describes.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use fjord_storage::batch::{BatchHeader, HEADER_BYTES, MAGIC_V2};
use fjord_storage::records::for_each_record;

/// Kafka's `ControlRecordType`: what a marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MarkerType {
    Abort,
    Commit,
}

impl MarkerType {
    fn code(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
        }
    }
}

const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
/// batchLength covers everything after itself.
const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;

/// The marker batch for a transaction of `producer_id` at `producer_epoch`,
/// with baseOffset 0 (the log assigns it) and partitionLeaderEpoch 0 (the
/// log patches in the raft term).
pub fn build_marker(producer_id: i64, producer_epoch: i16, marker: MarkerType, coordinator_epoch: i32, timestamp_ms: i64) -> Vec<u8> {
    // One record: attributes, timestampDelta 0, offsetDelta 0, key, value, no headers.
    let mut record = vec![0u8, 0, 0];
    record.push(zigzag(4));
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.code().to_be_bytes());
    record.push(zigzag(6));
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0);
    let mut b = Vec::with_capacity(HEADER_BYTES + 1 + record.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&[0; 4]); // batchLength, below
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(MAGIC_V2 as u8);
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    b.extend_from_slice(&1i32.to_be_bytes()); // recordCount
    b.push(zigzag(record.len() as i64));
    b.extend_from_slice(&record);
    let length = (b.len() - LENGTH_AT - 4) as i32;
    b[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_FROM..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// A one-byte zigzag varint (values in -64..=63).
fn zigzag(v: i64) -> u8 {
    debug_assert!((-64..=63).contains(&v));
    ((v << 1) ^ (v >> 63)) as u8
}

/// What a transactional control batch says, or `None` for any other batch
/// (or a control record this broker does not know: Kafka ignores those too).
pub fn marker_of(batch: &[u8]) -> Option<MarkerType> {
    let h = BatchHeader::parse(batch).ok()?;
    if !h.is_control() || !h.is_transactional() {
        return None;
    }
    let mut found = None;
    let _ = for_each_record(batch, 1 << 16, |r| {
        if let Some(key) = r.key.filter(|k| k.len() >= 4) {
            found = match i16::from_be_bytes([key[2], key[3]]) {
                0 => Some(MarkerType::Abort),
                1 => Some(MarkerType::Commit),
                _ => None,
            };
        }
        ControlFlow::Break(())
    });
    found
}

/// One aborted transaction: Kafka's `AbortedTxn` (a `.txnindex` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// The transaction's first offset on this partition.
    pub first_offset: i64,
    /// The ABORT marker's offset.
    pub last_offset: i64,
    /// The partition's last stable offset once the marker applied (the
    /// earliest other open transaction's first offset, else the marker's
    /// offset + 1): where the index search may stop.
    pub last_stable_offset: i64,
}

/// Aborted transactions in marker order (so by `last_offset`, ascending).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AbortedIndex {
    entries: VecDeque<AbortedTxn>,
}

impl AbortedIndex {
    pub fn push(&mut self, txn: AbortedTxn) {
        assert!(txn.first_offset <= txn.last_offset, "a transaction ends after it starts: {txn:?}");
        assert!(txn.last_stable_offset <= txn.last_offset + 1, "nothing past the marker is stable: {txn:?}");
        assert!(self.entries.back().is_none_or(|b| b.last_offset < txn.last_offset), "markers apply in offset order");
        self.entries.push_back(txn);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Aborted transactions a read of `[from, upto)` must report: Kafka's
    /// `collectAbortedTxns` (last offset at least `from`, first offset below
    /// `upto`). Entries are in marker order, so once one was written when
    /// the last stable offset had reached `upto`, no later one can start
    /// below `upto`.
    pub fn between(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        let start = self.entries.partition_point(|t| t.last_offset < from);
        let mut out = Vec::new();
        for t in self.entries.range(start..) {
            if t.first_offset < upto {
                out.push(*t);
            }
            if t.last_stable_offset >= upto {
                break;
            }
        }
        out
    }

    /// Forgets transactions wholly below `log_start_offset`.
    pub fn remove_below(&mut self, log_start_offset: i64) -> usize {
        let n = self.entries.partition_point(|t| t.last_offset < log_start_offset);
        self.entries.drain(..n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_a_valid_batch_that_says_what_it_is() {
        for m in [MarkerType::Abort, MarkerType::Commit] {
            let b = build_marker(42, 7, m, 3, 1_000);
            let h = fjord_storage::batch::validate(&b).expect("valid batch");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.record_count, h.last_offset_delta, h.offset_count()), (42, 1, 0, 1));
            assert_eq!(i16::from_be_bytes([b[51], b[52]]), 7);
            assert_eq!(marker_of(&b), Some(m));
            let mut value = None;
            for_each_record(&b, 1 << 16, |r| {
                value = r.value.map(<[u8]>::to_vec);
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(value.unwrap(), [0, 0, 0, 0, 0, 3], "version 0, coordinator epoch 3");
        }
        assert_eq!(marker_of(&fjord_storage::batch::uncompressed_batch(&[1], 3)), None);
    }

    #[test]
    fn between_follows_kafkas_search() {
        let mut ix = AbortedIndex::default();
        // 4 is open from offset 2 through all the others, so it bounds their stable offsets.
        for (pid, first, last, lso) in [(1, 0, 5, 2), (2, 3, 10, 2), (3, 12, 20, 2), (4, 2, 30, 31)] {
            ix.push(AbortedTxn { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: lso });
        }
        let pids = |v: Vec<AbortedTxn>| v.into_iter().map(|t| t.producer_id).collect::<Vec<_>>();
        assert_eq!(pids(ix.between(0, 4)), [1, 2, 4], "2 and 4 started below 4, though 1 ended past it");
        assert_eq!(pids(ix.between(6, 12)), [2, 4], "3 starts at the bound");
        assert_eq!(pids(ix.between(6, 40)), [2, 3, 4]);
        assert_eq!(pids(ix.between(21, 25)), [4]);
        assert_eq!(pids(ix.between(31, 40)), Vec::<i64>::new());
        let mut short = AbortedIndex::default();
        for (pid, first, last) in [(1, 0, 1), (2, 2, 3)] {
            short.push(AbortedTxn { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: last + 1 });
        }
        assert_eq!(pids(short.between(0, 2)), [1], "the search stops once the stable offset passed the bound");
        assert_eq!(ix.remove_below(11), 2);
        assert_eq!(pids(ix.between(0, 100)), [3, 4]);
    }
}
