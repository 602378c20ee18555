//! The raft entry: one Kafka v2 record batch, kept as its bytes.
//!
//! - A normal entry is the producer's batch ([`KafkaBatch`]), not decoded, not
//!   re-encoded.
//! - A blank, membership or tiered entry is a private control batch that
//!   takes no Kafka offset (`fjord_storage::batch::build_offsetless_control`).
//!   Its payload starts with [`RAFT_MAGIC`], a version and a kind byte; a
//!   membership entry follows it with the membership as JSON, a tiered
//!   entry with its [`TieredOp`] as JSON. Tiered entries are application
//!   data to openraft (proposed with [`KafkaBatch::tiered`]).
//!
//! The term and index live beside the bytes ([`RaftEntry::log_id_parts`]).
//! The batch's own baseOffset and partitionLeaderEpoch are authoritative only
//! once the log has stored it: the log patches both on append, so an entry
//! read back carries its term in partitionLeaderEpoch.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use fjord_storage::batch::{self, BatchHeader, HEADER_BYTES};
use openraft::EntryPayload;
use openraft::entry::RaftEntry;

use crate::error::RaftError;
use crate::receipt::{AppendReceipt, ReceiptSlot};
use crate::tiered::TieredOp;
use crate::types::{CommittedLeaderId, LogId, Membership, Payload, epoch_of};

/// First bytes of the payload of every raft-private control batch.
pub const RAFT_MAGIC: [u8; 4] = *b"FJRF";
const RAFT_VERSION: u8 = 1;
const KIND_BLANK: u8 = 0;
const KIND_MEMBERSHIP: u8 = 1;
const KIND_TIERED: u8 = 2;
const RAFT_HEADER_BYTES: usize = RAFT_MAGIC.len() + 2;
/// Kafka's NO_TIMESTAMP: raft's own batches stay out of time-based roll and retention.
const NO_TIMESTAMP: i64 = -1;

/// Application data of a normal entry: a record batch a producer sent.
///
/// The only ways to get one validate it (magic 2, lengths, record counts,
/// CRC-32C) and refuse the offsetless control shape that raft's own entries
/// use, so a normal entry can never pass for a blank or membership entry.
/// This holds for batches arriving from the network too (`Deserialize` goes
/// through [`KafkaBatch::new`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Bytes", into = "Bytes")]
pub struct KafkaBatch(Bytes, ReceiptSlot, Option<Arc<TieredOp>>);

impl KafkaBatch {
    pub fn new(bytes: Bytes) -> Result<Self, RaftError> {
        let h = batch::validate(&bytes)?;
        if is_raft_private(&h) {
            return Err(RaftError::ReservedBatch);
        }
        Ok(Self(bytes, ReceiptSlot::default(), None))
    }

    /// A tiered-storage record (see `tiered.rs`), proposed like a batch.
    pub fn tiered(op: &TieredOp) -> Self {
        let json = serde_json::to_vec(op).expect("a tiered op (numbers, strings and byte arrays) always serializes");
        let bytes = Bytes::from(batch::build_offsetless_control(0, NO_TIMESTAMP, &raft_payload(KIND_TIERED, &json)));
        Self(bytes, ReceiptSlot::default(), Some(Arc::new(op.clone())))
    }

    /// Asks the leader's log store to fill `receipt` when it appends this
    /// batch (acks=1; see `receipt.rs`).
    pub fn with_receipt(mut self, receipt: Arc<AppendReceipt>) -> Self {
        self.1 = ReceiptSlot(Some(receipt));
        self
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl TryFrom<Bytes> for KafkaBatch {
    type Error = RaftError;
    fn try_from(bytes: Bytes) -> Result<Self, RaftError> {
        Self::new(bytes)
    }
}

impl From<KafkaBatch> for Bytes {
    fn from(b: KafkaBatch) -> Bytes {
        b.0
    }
}

impl fmt::Display for KafkaBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch({} bytes)", self.0.len())
    }
}

/// What an entry is, as its bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntryKind {
    #[default]
    Normal,
    Blank,
    Membership,
    Tiered,
}

/// One raft entry. Owned by whoever holds it; cheap to clone (the bytes are
/// shared, often a slice of a segment map).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "WireEntry", into = "WireEntry")]
pub struct Entry {
    leader: CommittedLeaderId,
    index: u64,
    batch: Bytes,
    kind: EntryKind,
    /// Decoded once, when the entry is made or read.
    membership: Option<Arc<Membership>>,
    tiered: Option<Arc<TieredOp>>,
    /// The producer's acks=1 receipt, on the leader only.
    receipt: ReceiptSlot,
}

impl Entry {
    /// An entry read back from the log: the term is the batch's
    /// partitionLeaderEpoch. Checks the header and, for a raft-private batch,
    /// its payload; the CRC was checked when the batch was appended or recovered.
    pub fn from_stored(index: u64, batch: Bytes) -> Result<Self, RaftError> {
        let h = BatchHeader::parse(&batch)?;
        let term = u64::try_from(h.leader_epoch)
            .map_err(|_| RaftError::CorruptEntry { index, detail: format!("negative leader epoch {}", h.leader_epoch) })?;
        let Classified { kind, membership, tiered } = classify(index, &h, &batch)?;
        Ok(Self { leader: CommittedLeaderId::new(term), index, batch, kind, membership, tiered, receipt: ReceiptSlot::default() })
    }

    /// The acks=1 receipt the producer attached, if this is the leader's copy.
    pub(crate) fn receipt(&self) -> Option<&Arc<AppendReceipt>> {
        self.receipt.0.as_ref()
    }

    pub fn term(&self) -> u64 {
        self.leader.term
    }

    /// The batch bytes, as the log stores them.
    pub fn batch(&self) -> &Bytes {
        &self.batch
    }

    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// What a tiered entry records.
    pub fn tiered(&self) -> Option<&TieredOp> {
        self.tiered.as_deref()
    }

    /// How many Kafka offsets the entry takes (0 for raft's own entries).
    pub fn offset_count(&self) -> i64 {
        // Every constructor parsed the header already.
        BatchHeader::parse(&self.batch).map_or(0, |h| h.offset_count())
    }
}

fn is_raft_private(h: &BatchHeader) -> bool {
    h.is_control() && h.offset_count() == 0
}

/// Payload of a raft-private control batch: magic, version, kind, body.
fn raft_payload(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(RAFT_HEADER_BYTES + body.len());
    p.extend_from_slice(&RAFT_MAGIC);
    p.push(RAFT_VERSION);
    p.push(kind);
    p.extend_from_slice(body);
    p
}

/// An entry's kind and its decoded payload.
#[derive(Default)]
struct Classified {
    kind: EntryKind,
    membership: Option<Arc<Membership>>,
    tiered: Option<Arc<TieredOp>>,
}

fn classify(index: u64, h: &BatchHeader, batch: &[u8]) -> Result<Classified, RaftError> {
    if !is_raft_private(h) {
        return Ok(Classified::default());
    }
    let corrupt = |detail: String| RaftError::CorruptEntry { index, detail };
    let end = h.total_bytes().min(batch.len());
    let payload = batch.get(HEADER_BYTES..end).unwrap_or_default();
    if payload.len() < RAFT_HEADER_BYTES || payload[..4] != RAFT_MAGIC {
        return Err(corrupt("control batch without the raft header".into()));
    }
    if payload[4] != RAFT_VERSION {
        return Err(corrupt(format!("raft entry version {}", payload[4])));
    }
    match payload[5] {
        KIND_BLANK => Ok(Classified { kind: EntryKind::Blank, ..Classified::default() }),
        KIND_MEMBERSHIP => {
            let m: Membership = serde_json::from_slice(&payload[RAFT_HEADER_BYTES..]).map_err(|e| corrupt(format!("membership: {e}")))?;
            Ok(Classified { kind: EntryKind::Membership, membership: Some(Arc::new(m)), ..Classified::default() })
        }
        KIND_TIERED => {
            let op: TieredOp = serde_json::from_slice(&payload[RAFT_HEADER_BYTES..]).map_err(|e| corrupt(format!("tiered: {e}")))?;
            Ok(Classified { kind: EntryKind::Tiered, tiered: Some(Arc::new(op)), ..Classified::default() })
        }
        k => Err(corrupt(format!("unknown raft entry kind {k}"))),
    }
}

impl RaftEntry for Entry {
    type CommittedLeaderId = CommittedLeaderId;
    type Payload = Payload;

    fn new(log_id: LogId, payload: Payload) -> Self {
        // The epoch written here is a placeholder the log overwrites on
        // append; an oversized term is refused there, not here.
        let epoch = epoch_of(log_id.committed_leader_id().term).unwrap_or(0);
        let mut receipt = ReceiptSlot::default();
        let (batch, kind, membership, tiered) = match payload {
            // Only `KafkaBatch::tiered` makes a private batch of application data.
            EntryPayload::Normal(KafkaBatch(bytes, slot, None)) => {
                receipt = slot;
                (bytes, EntryKind::Normal, None, None)
            }
            EntryPayload::Normal(KafkaBatch(bytes, _, Some(op))) => (bytes, EntryKind::Tiered, None, Some(op)),
            EntryPayload::Blank => {
                let bytes = batch::build_offsetless_control(epoch, NO_TIMESTAMP, &raft_payload(KIND_BLANK, &[]));
                (Bytes::from(bytes), EntryKind::Blank, None, None)
            }
            EntryPayload::Membership(m) => {
                let json = serde_json::to_vec(&m).expect("a membership (sets and maps of ids and nodes) always serializes");
                let bytes = batch::build_offsetless_control(epoch, NO_TIMESTAMP, &raft_payload(KIND_MEMBERSHIP, &json));
                (Bytes::from(bytes), EntryKind::Membership, Some(Arc::new(m)), None)
            }
        };
        Self { leader: *log_id.committed_leader_id(), index: log_id.index(), batch, kind, membership, tiered, receipt }
    }

    fn log_id_parts(&self) -> (&CommittedLeaderId, u64) {
        (&self.leader, self.index)
    }

    fn set_log_id(&mut self, new: LogId) {
        self.leader = *new.committed_leader_id();
        self.index = new.index();
    }

    fn get_membership(&self) -> Option<Membership> {
        self.membership.as_deref().cloned()
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}-{}:{:?}({} bytes)", self.leader.term, self.index, self.kind, self.batch.len())
    }
}

/// An entry on the wire between replicas: the term, index and batch. The
/// receiving side validates the whole batch, CRC included.
#[derive(serde::Serialize, serde::Deserialize)]
struct WireEntry {
    term: u64,
    index: u64,
    batch: Bytes,
}

impl From<Entry> for WireEntry {
    fn from(e: Entry) -> Self {
        Self { term: e.leader.term, index: e.index, batch: e.batch }
    }
}

impl TryFrom<WireEntry> for Entry {
    type Error = RaftError;
    fn try_from(w: WireEntry) -> Result<Self, RaftError> {
        let h = batch::validate(&w.batch)?;
        let Classified { kind, membership, tiered } = classify(w.index, &h, &w.batch)?;
        Ok(Self {
            leader: CommittedLeaderId::new(w.term),
            index: w.index,
            batch: w.batch,
            kind,
            membership,
            tiered,
            receipt: ReceiptSlot::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::types::log_id;

    #[test]
    fn raft_entries_round_trip_through_the_stored_form() {
        let m = Membership::new_with_defaults(vec![BTreeSet::from([1, 2, 3])], []);
        for e in [Entry::new_blank(log_id(3, 7)), Entry::new_membership(log_id(4, 8), m.clone())] {
            let h = batch::validate(e.batch()).unwrap();
            assert_eq!((h.offset_count(), h.leader_epoch), (0, e.term() as i32));
            let back = Entry::from_stored(e.index(), e.batch().clone()).unwrap();
            assert_eq!(back, e);
        }
        let back = Entry::from_stored(8, Entry::new_membership(log_id(4, 8), m.clone()).batch().clone()).unwrap();
        assert_eq!(back.get_membership(), Some(m));
    }

    #[test]
    fn normal_entries_must_be_valid_offset_taking_batches() {
        let good = Bytes::from(batch::uncompressed_batch(&[1, 2], 5));
        let e = Entry::new_normal(log_id(1, 1), KafkaBatch::new(good.clone()).unwrap());
        assert_eq!((e.kind(), e.offset_count()), (EntryKind::Normal, 2));
        let mut bad = good.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(KafkaBatch::new(Bytes::from(bad)), Err(RaftError::Batch(_))));
        let reserved = Bytes::from(batch::build_offsetless_control(0, -1, b"anything"));
        assert!(matches!(KafkaBatch::new(reserved), Err(RaftError::ReservedBatch)));
    }

    #[test]
    fn tiered_entries_are_private_and_round_trip() {
        use crate::tiered::{RemoteSegmentMeta, TieredOp};
        let op = TieredOp::Copied(RemoteSegmentMeta {
            base_offset: 10,
            next_offset: 20,
            upload_id: [9; 16],
            files: vec![],
            max_timestamp: -1,
            term: 3,
        });
        let e = Entry::new_normal(log_id(3, 7), KafkaBatch::tiered(&op));
        assert_eq!((e.kind(), e.offset_count(), e.tiered()), (EntryKind::Tiered, 0, Some(&op)));
        let back = Entry::from_stored(7, e.batch().clone()).unwrap();
        assert_eq!((back.kind(), back.tiered()), (EntryKind::Tiered, Some(&op)));
        let wire: Entry = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(wire.tiered(), Some(&op));
        // Nobody else can pass one off as a producer's batch.
        assert!(matches!(KafkaBatch::new(e.batch().clone()), Err(RaftError::ReservedBatch)));
    }

    #[test]
    fn wire_form_validates_what_it_receives() {
        let e = Entry::new_membership(log_id(2, 5), Membership::new_with_defaults(vec![BTreeSet::from([1])], []));
        let json = serde_json::to_vec(&e).unwrap();
        let back: Entry = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, e);
        // A control batch with a foreign payload is refused, not read as blank.
        let foreign = WireEntry { term: 1, index: 1, batch: Bytes::from(batch::build_offsetless_control(1, -1, b"nope")) };
        let json = serde_json::to_vec(&foreign).unwrap();
        assert!(serde_json::from_slice::<Entry>(&json).is_err());
    }
}
