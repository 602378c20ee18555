//! The little of the record format the broker itself writes and walks: its
//! own metadata records (one uncompressed batch per proposal), and the split
//! of a produce request's `records` into batches, by the 61-byte header
//! alone. Client batches are never decoded record by record here: the
//! kafka-protocol record decoder pre-allocates from wire counts (pitfall 16).

use bytes::{BufMut, Bytes};
use fjord_storage::batch::{self, BatchHeader, HEADER_BYTES};

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

/// One uncompressed v2 batch holding one record per value (no keys, no
/// headers), with timestamp `now_ms`.
pub fn build_batch(values: &[Vec<u8>], now_ms: i64) -> Vec<u8> {
    assert!(!values.is_empty(), "a batch holds at least one record");
    let mut records = Vec::new();
    for (delta, value) in values.iter().enumerate() {
        let mut body = Vec::with_capacity(value.len() + 16);
        body.put_u8(0); // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, delta as i64);
        put_varint(&mut body, -1); // null key
        put_varint(&mut body, value.len() as i64);
        body.extend_from_slice(value);
        put_varint(&mut body, 0); // headers
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let n = values.len() as i32;
    batch::build(0, 0, 0, n - 1, now_ms, now_ms, -1, n, &records)
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
}
