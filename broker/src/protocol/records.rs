//! The little of the record format the broker itself writes and walks: its
//! own metadata records (one uncompressed batch per proposal), the group
//! coordinator's keyed records and their replay, and the split of a produce
//! request's `records` into batches, by the 61-byte header alone. Records are
//! read with fjord-storage's bounded decoder, never kafka-protocol's: that one
//! pre-allocates from wire counts (pitfall 16).

use std::ops::ControlFlow;

use bytes::{BufMut, Bytes};
use fjord_storage::batch::{self, BatchHeader, HEADER_BYTES};

/// A compressed batch may not inflate past this while its records are read
/// (the same bound as the produce path's checks).
const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;
/// The CRC-32C covers the batch from its attributes (byte 21) to its end.
const CRC_START: usize = 21;

/// Why [`batch_records`] could not read a batch. Each means a corrupt log.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// Fewer bytes than a batch header (`batch_length` None), or a batchLength
    /// field that disagrees with them.
    #[error("not one whole batch: {len_bytes} bytes, batchLength field {batch_length:?}")]
    NotOneBatch { len_bytes: usize, batch_length: Option<i32> },
    #[error("batch at offset {base_offset}: crc {stored:#010x} stored, {computed:#010x} computed")]
    CrcMismatch { base_offset: i64, stored: u32, computed: u32 },
    /// Its records do not decode (bad magic or codec, truncated or inconsistent records).
    #[error("batch at offset {base_offset}: {source}")]
    Records {
        base_offset: i64,
        #[source]
        source: fjord_storage::records::RecordsError,
    },
}

/// Splits `records` into whole batches: (header, bytes of the batch). Stops at
/// the first piece that is not a whole batch and returns it as the error.
pub fn split_batches(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, usize> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let header = whole_batch(&records[at..]).ok_or(at)?;
        let total = header.total_bytes();
        out.push((header, records.slice(at..at + total)));
        at += total;
    }
    Ok(out)
}

/// Iterates the whole batches in a read slice; a cut-off tail is ignored (a
/// fetch may end inside a batch).
pub fn batches(slice: &[u8]) -> impl Iterator<Item = (BatchHeader, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let rest = slice.get(at..)?;
        let header = whole_batch(rest)?;
        let total = header.total_bytes();
        at += total;
        Some((header, &rest[..total]))
    })
}

/// The header of the batch `bytes` starts with, if the whole batch is there:
/// a full header and a length that covers it and fits in `bytes`.
fn whole_batch(bytes: &[u8]) -> Option<BatchHeader> {
    let header = BatchHeader::parse(bytes).ok()?;
    (HEADER_BYTES..=bytes.len()).contains(&header.total_bytes()).then_some(header)
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

/// A varint length and the bytes, or length -1 for null.
fn put_nullable_bytes(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.extend_from_slice(b);
        }
        None => put_varint(buf, -1),
    }
}

/// One uncompressed v2 batch holding one record per value (no keys, no
/// headers), with timestamp `now_ms`.
pub fn build_batch(values: &[Vec<u8>], now_ms: i64) -> Vec<u8> {
    build_uncompressed(values.iter().map(|value| (None, Some(value.as_slice()))), now_ms)
}

/// One uncompressed v2 batch of keyed records (value None = tombstone,
/// written as length -1), timestamps `now_ms`, producer id -1, base offset 0
/// (the log assigns offsets). Used for the group coordinator's records in
/// `__consumer_offsets`, which is compacted and so needs every key.
pub fn build_keyed_batch(records: &[(Vec<u8>, Option<Vec<u8>>)], now_ms: i64) -> Vec<u8> {
    build_uncompressed(records.iter().map(|(key, value)| (Some(key.as_slice()), value.as_deref())), now_ms)
}

/// [`build_keyed_batch`] as part of a transaction: the transactional
/// attribute (0x10) with the producer's id and epoch, base sequence -1 (as
/// Kafka's coordinator writes its transactional batches: no sequence to
/// check). The group coordinator's TxnOffsetCommit records.
pub fn build_txn_keyed_batch(records: &[(Vec<u8>, Option<Vec<u8>>)], now_ms: i64, producer_id: i64, producer_epoch: i16) -> Vec<u8> {
    const ATTR_TRANSACTIONAL: i16 = 0x10;
    const ATTRIBUTES_AT: usize = 21;
    const PRODUCER_ID_AT: usize = 43;
    const PRODUCER_EPOCH_AT: usize = 51;
    const CRC_AT: usize = 17;
    let mut b = build_uncompressed(records.iter().map(|(key, value)| (Some(key.as_slice()), value.as_deref())), now_ms);
    b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&ATTR_TRANSACTIONAL.to_be_bytes());
    b[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    b[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// One uncompressed v2 batch of (key, value) records without headers, all
/// stamped `now_ms`; base offset 0, no producer.
fn build_uncompressed<'a>(records: impl ExactSizeIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>, now_ms: i64) -> Vec<u8> {
    let n = i32::try_from(records.len()).expect("a batch holds at most i32::MAX records");
    assert!(n > 0, "a batch holds at least one record");
    let mut out = Vec::new();
    for (delta, (key, value)) in records.enumerate() {
        let mut body = Vec::with_capacity(key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + 16);
        body.put_u8(0); // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, delta as i64);
        put_nullable_bytes(&mut body, key);
        put_nullable_bytes(&mut body, value);
        put_varint(&mut body, 0); // headers
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    batch::build(0, 0, 0, n - 1, now_ms, now_ms, -1, n, &out)
}

/// One record as [`batch_records`] returns it: (offset, key, value), None for null.
pub type KeyedRecord = (i64, Option<Bytes>, Option<Bytes>);

/// The records of one v2 batch (the bytes of a whole batch as read from the
/// log): (offset, key, value) with key/value None when null. Compressed
/// batches are decompressed, with the produce path's bound. Control batches
/// (transaction markers, the log's own entries) yield no records. Errors,
/// never panics, on malformed input.
///
/// The CRC is checked, but not the record count against lastOffsetDelta as
/// `batch::validate` does: compaction leaves batches with fewer records than
/// offsets, even none. Whether the batch is transactional, and its producer,
/// are in its [`BatchHeader`] (see [`batches`]).
pub fn batch_records(batch: &[u8]) -> Result<Vec<KeyedRecord>, RecordsError> {
    let len_bytes = batch.len();
    let header = BatchHeader::parse(batch).map_err(|_| RecordsError::NotOneBatch { len_bytes, batch_length: None })?;
    // A negative batchLength counts as 0, which no batch of 61 bytes or more matches.
    if header.total_bytes() != len_bytes {
        return Err(RecordsError::NotOneBatch { len_bytes, batch_length: Some(header.batch_length) });
    }
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if computed != header.crc {
        return Err(RecordsError::CrcMismatch { base_offset: header.base_offset, stored: header.crc, computed });
    }
    let mut out = Vec::new();
    if header.is_control() {
        return Ok(out);
    }
    fjord_storage::records::for_each_record(batch, MAX_DECOMPRESSED_BYTES, |r| {
        out.push((r.offset, r.key.map(Bytes::copy_from_slice), r.value.map(Bytes::copy_from_slice)));
        ControlFlow::Continue(())
    })
    .map_err(|source| RecordsError::Records { base_offset: header.base_offset, source })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::ControlFlow;

    #[test]
    fn built_batches_validate_and_decode() {
        let values = vec![b"one".to_vec(), Vec::new(), vec![7u8; 300]];
        let b = build_batch(&values, 1234);
        let h = batch::validate(&b).unwrap();
        assert_eq!(h.record_count, 3);
        let mut seen = Vec::new();
        fjord_storage::records::for_each_record(&b, 1 << 20, |r| {
            seen.push(r.value.unwrap().to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, values);
    }

    #[test]
    fn split_rejects_partial_batches() {
        let one = build_batch(&[b"a".to_vec()], 1);
        let mut two = one.clone();
        two.extend_from_slice(&one);
        let all = Bytes::from(two.clone());
        assert_eq!(split_batches(&all).unwrap().len(), 2);
        let cut = Bytes::from(two[..two.len() - 1].to_vec());
        assert_eq!(split_batches(&cut).unwrap_err(), one.len());
        assert_eq!(batches(&two[..two.len() - 1]).count(), 1);
        assert!(split_batches(&Bytes::from_static(&[0u8; 10])).is_err());
    }

    fn keyed() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        vec![
            (b"k1".to_vec(), Some(b"v1".to_vec())),
            (b"k2".to_vec(), None),
            (Vec::new(), Some(Vec::new())),
            (b"k3".to_vec(), Some(vec![9u8; 300])),
        ]
    }

    #[test]
    fn keyed_batches_pass_validation_for_compacted_topics() {
        let now = 1_700_000_000_000;
        let mut config = crate::config::TopicConfig::resolve(&crate::config::BrokerConfig::from_pairs(&[]).unwrap().0, &Default::default());
        config.cleanup_policy = vec!["compact".into()];
        let b = Bytes::from(build_keyed_batch(&keyed(), now));
        let validated = crate::partition::validate::validate(b, &config, now).unwrap();
        assert_eq!(validated.header.record_count, 4);
        assert_eq!(validated.header.max_timestamp, now);
        assert!(validated.producer.is_none());
    }

    #[test]
    fn batch_records_reads_back_what_was_built() {
        let records = keyed();
        let read = batch_records(&build_keyed_batch(&records, 5)).unwrap();
        let expected: Vec<_> =
            records.into_iter().enumerate().map(|(i, (k, v))| (i as i64, Some(Bytes::from(k)), v.map(Bytes::from))).collect();
        assert_eq!(read, expected);
        // Offsets are the log's: base offset plus delta.
        let mut placed = build_batch(&[b"a".to_vec(), b"b".to_vec()], 5);
        batch::patch(&mut placed, 100, 3);
        assert_eq!(batch_records(&placed).unwrap(), vec![(100, None, Some(Bytes::from("a"))), (101, None, Some(Bytes::from("b")))]);
    }

    #[test]
    fn transactional_keyed_batches_carry_their_producer() {
        let b = build_txn_keyed_batch(&keyed(), 5, 4242, 7);
        let h = batch::validate(&b).unwrap();
        assert!(h.is_transactional() && !h.is_control());
        assert_eq!((h.producer_id, h.record_count, h.compression_codec()), (4242, 4, 0));
        assert_eq!(i16::from_be_bytes([b[51], b[52]]), 7, "producer epoch");
        assert_eq!(i32::from_be_bytes(b[53..57].try_into().unwrap()), -1, "no base sequence");
        assert_eq!(batch_records(&b).unwrap(), batch_records(&build_keyed_batch(&keyed(), 5)).unwrap());
    }

    #[test]
    fn control_batches_yield_no_records() {
        assert!(batch_records(&batch::build_offsetless_control(1, 5, b"raft")).unwrap().is_empty());
        // A transaction marker: one record, flagged control (0x20) and transactional (0x10).
        let marker = build_keyed_batch(&[(vec![0, 0, 0, 1], Some(vec![0, 0, 0, 0, 0, 0]))], 5);
        let records = &marker[HEADER_BYTES..];
        let marker = batch::build(0, 0, 0x30, 0, 5, 5, 7, 1, records);
        assert!(batch_records(&marker).unwrap().is_empty());
    }

    #[test]
    fn malformed_batches_are_errors() {
        let good = build_keyed_batch(&keyed(), 5);
        for cut in 0..good.len() {
            assert!(batch_records(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(batch_records(&longer), Err(RecordsError::NotOneBatch { .. })));
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            // Flips outside the CRC (offset, epoch) still read; none may panic.
            let _ = batch_records(&bad);
            if at >= CRC_START {
                assert!(batch_records(&bad).is_err(), "flip at {at}");
            }
        }
        // Records that do not add up, under a correct CRC.
        let records = &good[HEADER_BYTES..];
        let miscounted = batch::build(0, 0, 0, 3, 5, 5, -1, 5, records);
        assert!(matches!(batch_records(&miscounted), Err(RecordsError::Records { .. })));
        let unknown_codec = batch::build(0, 0, 6, 3, 5, 5, -1, 4, records);
        assert!(matches!(batch_records(&unknown_codec), Err(RecordsError::Records { .. })));
    }
}
