//! The Kafka v2 record batch header: parsing, validation and the two in-place
//! patches the log makes (baseOffset and partitionLeaderEpoch, the only fields
//! outside the CRC, so patching never recomputes it).
//!
//! Layout (big-endian), from Kafka's `DefaultRecordBatch`:
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records

use crate::error::BatchError;

pub const HEADER_BYTES: usize = 61;
/// Bytes before the batchLength field's payload: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const RECORD_COUNT: usize = 57;
/// The CRC covers attributes to the end of the batch.
const CRC_START: usize = ATTRIBUTES;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
/// KIP-534: the cleaner set a delete horizon, held in the baseTimestamp field.
const ATTR_DELETE_HORIZON: i16 = 0x40;

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The decoded fixed header of one batch. Cheap to copy; holds no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Length of everything after the batchLength field.
    pub batch_length: i32,
    pub leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub record_count: i32,
}

impl BatchHeader {
    /// Decodes the header of `bytes`, which must hold at least [`HEADER_BYTES`].
    /// Checks nothing but the length; see [`validate`] for the rest.
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_BYTES {
            return Err(BatchError::TooShort { len: bytes.len() });
        }
        Ok(Self {
            base_offset: i64_at(bytes, BASE_OFFSET),
            batch_length: i32_at(bytes, BATCH_LENGTH),
            leader_epoch: i32_at(bytes, LEADER_EPOCH),
            magic: bytes[MAGIC] as i8,
            crc: u32::from_be_bytes(bytes[CRC..CRC + 4].try_into().expect("4 bytes")),
            attributes: i16_at(bytes, ATTRIBUTES),
            last_offset_delta: i32_at(bytes, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(bytes, BASE_TIMESTAMP),
            max_timestamp: i64_at(bytes, MAX_TIMESTAMP),
            producer_id: i64_at(bytes, PRODUCER_ID),
            record_count: i32_at(bytes, RECORD_COUNT),
        })
    }

    /// Total size on disk: the length field plus what it counts.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// How many Kafka offsets the batch takes: `lastOffsetDelta + 1`. Zero for
    /// the log's private control batches (Raft's blank and membership entries),
    /// which keep Kafka offsets dense.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// The last offset the batch takes; `base_offset - 1` when it takes none.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn compression_codec(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    /// KIP-534's delete horizon, set by the log cleaner on a batch that held
    /// tombstones when first cleaned: tombstones go once it has passed.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }
}

/// Checks everything the log relies on before a single byte is written:
/// magic 2, a batchLength that matches the bytes, a sane record count and the
/// CRC-32C. Returns the header on success.
///
/// Record counts: a data batch takes `lastOffsetDelta + 1` offsets and holds
/// at most that many records: fewer once the log cleaner removed some, none
/// when it removed all (Kafka's cleaner keeps such empty batches too, and
/// here every batch is a raft entry, so none may go). A client's batch must
/// hold exactly one record per offset; the broker checks that before it
/// proposes one. A control batch takes either as many offsets as records
/// (transaction markers) or none (the log's own entries).
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    if header.magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic { magic: header.magic });
    }
    let actual = bytes.len() - LOG_OVERHEAD;
    if header.batch_length < (HEADER_BYTES - LOG_OVERHEAD) as i32 || header.batch_length as usize != actual {
        return Err(BatchError::LengthMismatch { declared: header.batch_length, actual });
    }
    let (count, delta) = (header.record_count, header.last_offset_delta);
    let counts_ok = if header.is_control() {
        count >= 0 && (delta == -1 || (delta >= 0 && delta.checked_add(1) == Some(count)))
    } else {
        delta >= 0 && (0..=delta.saturating_add(1)).contains(&count)
    };
    if !counts_ok {
        return Err(BatchError::BadRecordCount { record_count: count, last_offset_delta: delta });
    }
    let computed = crc32c::crc32c(&bytes[CRC_START..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    Ok(header)
}

/// Writes baseOffset and partitionLeaderEpoch in place. Both lie outside the
/// CRC, so the batch stays valid.
pub fn patch(bytes: &mut [u8], base_offset: i64, leader_epoch: i32) {
    assert!(bytes.len() >= HEADER_BYTES, "patching a batch shorter than its header");
    bytes[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    bytes[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Kafka's LogAppendTime for a batch (its in-place path): `timestamp_ms`
/// becomes maxTimestamp and the timestamp-type bit is set; records keep
/// their deltas. Both fields lie under the CRC, so it is recomputed.
pub fn stamp_log_append_time(bytes: &mut [u8], timestamp_ms: i64) {
    assert!(bytes.len() >= HEADER_BYTES, "stamping a batch shorter than its header");
    let attributes = i16_at(bytes, ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
    bytes[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[CRC_START..]);
    bytes[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Builds a v2 batch around already-encoded `records`. Used for the log's
/// private control batches and by tests; the broker never re-encodes client data.
#[allow(clippy::too_many_arguments)]
pub fn build(
    base_offset: i64,
    leader_epoch: i32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    record_count: i32,
    records: &[u8],
) -> Vec<u8> {
    let total = HEADER_BYTES + records.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((total - LOG_OVERHEAD) as i32).to_be_bytes());
    b.extend_from_slice(&leader_epoch.to_be_bytes());
    b.push(MAGIC_V2 as u8);
    b.extend_from_slice(&[0; 4]); // crc, filled below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&last_offset_delta.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&record_count.to_be_bytes());
    b.extend_from_slice(records);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(b.len(), total);
    b
}

/// `original` with new records: the header is copied (baseOffset, lastOffsetDelta,
/// partitionLeaderEpoch, maxTimestamp and the producer fields stay) and
/// batchLength, attributes, baseTimestamp, recordCount and the CRC are set
/// for `records`. The log cleaner's way to shrink a batch in place.
pub(crate) fn rebuild(original: &[u8], attributes: i16, base_timestamp: i64, record_count: i32, records: &[u8]) -> Vec<u8> {
    assert!(original.len() >= HEADER_BYTES, "rebuilding a batch shorter than its header");
    let total = HEADER_BYTES + records.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&original[..HEADER_BYTES]);
    b.extend_from_slice(records);
    let length = i32::try_from(total - LOG_OVERHEAD).expect("a rebuilt batch is smaller than 2 GiB");
    b[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    b[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Attribute bits the cleaner sets or clears.
pub(crate) const COMPRESSION_MASK: i16 = ATTR_COMPRESSION_MASK;
pub(crate) const DELETE_HORIZON_FLAG: i16 = ATTR_DELETE_HORIZON;

/// A private control batch that takes no Kafka offset: Raft's blank and
/// membership entries are stored as these so the raft log stays contiguous
/// while Kafka offsets stay dense. `payload` is opaque to the log.
pub fn build_offsetless_control(leader_epoch: i32, timestamp: i64, payload: &[u8]) -> Vec<u8> {
    build(0, leader_epoch, ATTR_CONTROL, -1, timestamp, timestamp, -1, 0, payload)
}

/// An uncompressed batch with one record per timestamp, each with a key
/// `k<i>` and a value of `value_len` bytes. For tests, benchmarks and tools;
/// the broker never builds client batches.
pub fn uncompressed_batch(timestamps: &[i64], value_len: usize) -> Vec<u8> {
    let n = timestamps.len();
    assert!(n > 0);
    let base_ts = timestamps[0];
    let mut records = Vec::new();
    for (i, ts) in timestamps.iter().enumerate() {
        let mut body = Vec::new();
        body.push(0u8); // attributes
        put_varint(&mut body, ts - base_ts);
        put_varint(&mut body, i as i64);
        let key = format!("k{i}");
        put_varint(&mut body, key.len() as i64);
        body.extend_from_slice(key.as_bytes());
        put_varint(&mut body, value_len as i64);
        body.extend((0..value_len).map(|j| (i + j) as u8));
        put_varint(&mut body, 0); // headers
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let max_ts = *timestamps.iter().max().unwrap();
    build(0, 0, 0, n as i32 - 1, base_ts, max_ts, -1, n as i32, &records)
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_validates_and_patch_keeps_crc() {
        let mut b = uncompressed_batch(&[10, 20, 15], 7);
        let h = validate(&b).unwrap();
        assert_eq!((h.record_count, h.offset_count(), h.max_timestamp), (3, 3, 20));
        patch(&mut b, 1234, 9);
        let h = validate(&b).unwrap();
        assert_eq!((h.base_offset, h.leader_epoch, h.last_offset()), (1234, 9, 1236));
    }

    #[test]
    fn log_append_time_stamp_keeps_the_batch_valid() {
        let mut b = uncompressed_batch(&[10, 20], 7);
        stamp_log_append_time(&mut b, 99);
        let h = validate(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!((h.max_timestamp, h.base_timestamp, h.record_count), (99, 10, 2));
    }

    #[test]
    fn offsetless_control_batch_takes_no_offset() {
        let b = build_offsetless_control(3, 99, b"membership");
        let h = validate(&b).unwrap();
        assert!(h.is_control());
        assert_eq!(h.offset_count(), 0);
    }

    #[test]
    fn rejections_say_what_is_wrong() {
        let good = uncompressed_batch(&[1, 2], 3);
        type Case = (&'static str, Vec<u8>, fn(&BatchError) -> bool);
        let cases: Vec<Case> = vec![
            ("short", good[..40].to_vec(), |e| matches!(e, BatchError::TooShort { len: 40 })),
            (
                "magic 1",
                {
                    let mut b = good.clone();
                    b[MAGIC] = 1;
                    b
                },
                |e| matches!(e, BatchError::UnsupportedMagic { magic: 1 }),
            ),
            (
                "magic 0",
                {
                    let mut b = good.clone();
                    b[MAGIC] = 0;
                    b
                },
                |e| matches!(e, BatchError::UnsupportedMagic { magic: 0 }),
            ),
            (
                "length",
                {
                    let mut b = good.clone();
                    b.push(0);
                    b
                },
                |e| matches!(e, BatchError::LengthMismatch { .. }),
            ),
            (
                "crc",
                {
                    let mut b = good.clone();
                    let l = b.len();
                    b[l - 1] ^= 0xff;
                    b
                },
                |e| matches!(e, BatchError::CrcMismatch { .. }),
            ),
            ("zero records", build(0, 0, 0, -1, 0, 0, -1, 0, &[]), |e| matches!(e, BatchError::BadRecordCount { .. })),
            ("more records than offsets", build(0, 0, 0, 1, 0, 0, -1, 3, &[]), |e| matches!(e, BatchError::BadRecordCount { .. })),
            ("negative count", build(0, 0, 0, 5, 0, 0, -1, -1, &[]), |e| matches!(e, BatchError::BadRecordCount { .. })),
        ];
        for (name, bytes, ok) in cases {
            let err = validate(&bytes).expect_err(name);
            assert!(ok(&err), "{name}: {err}");
        }
    }

    /// What the log cleaner leaves: fewer records than offsets, or none,
    /// with lastOffsetDelta unchanged.
    #[test]
    fn cleaned_batches_hold_fewer_records_than_offsets() {
        for (delta, count) in [(5, 2), (5, 0), (0, 0), (5, 6)] {
            let h = validate(&build(0, 0, 0, delta, 0, 0, -1, count, &[])).unwrap();
            assert_eq!((h.offset_count(), h.record_count), (i64::from(delta) + 1, count));
        }
    }

    #[test]
    fn rebuild_keeps_the_header_and_sets_the_rest() {
        let mut original = uncompressed_batch(&[10, 20, 15], 7);
        patch(&mut original, 500, 7);
        let b = rebuild(&original, ATTR_DELETE_HORIZON, 99, 0, &[]);
        let h = validate(&b).unwrap();
        assert_eq!((h.base_offset, h.leader_epoch, h.last_offset_delta, h.max_timestamp), (500, 7, 2, 20));
        assert_eq!((h.record_count, h.delete_horizon_ms(), b.len()), (0, Some(99), HEADER_BYTES));
    }

    proptest::proptest! {
        /// Any bytes at all, from a socket or a damaged disk: an answer, never a panic.
        #[test]
        fn validate_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = validate(&bytes);
        }

        /// A valid batch with any one byte flipped is refused (CRC or structure).
        #[test]
        fn any_flipped_byte_after_the_epoch_is_caught(at in 16usize..120, bit in 0u8..8) {
            let mut b = uncompressed_batch(&[1, 2, 3], 10);
            let at = 16 + at % (b.len() - 16);
            b[at] ^= 1 << bit;
            proptest::prop_assert!(validate(&b).is_err());
        }
    }
}
