//! One input, three ways in: as a request frame (size prefix stripped), the
//! way a connection hands it to dispatch; as one batch whose length and CRC
//! are made right first (a fuzzer cannot forge a CRC-32C and the record walk,
//! decompression included, lies behind it), checked as produce checks it and
//! read as the group coordinator reads `__consumer_offsets`; and as one
//! `__consumer_offsets` record, the first byte splitting key from value.
//! None may panic, hang or allocate without bound, whatever the bytes.

#![no_main]

use bytes::Bytes;
use fjord_broker::group::records::GroupRecord;
use fjord_broker::protocol::decode_all::{check_batch, decode_request};
use fjord_broker::protocol::records::batch_records;
use fjord_storage::batch::{HEADER_BYTES, LOG_OVERHEAD};
use libfuzzer_sys::fuzz_target;

/// Where a v2 batch keeps batchLength and its CRC, and where the CRC starts.
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const CRC_START: usize = 21;

fuzz_target!(|data: &[u8]| {
    let _ = decode_request(Bytes::copy_from_slice(data));
    if let Some(batch) = with_valid_crc(data) {
        let _ = batch_records(&batch);
        let _ = check_batch(batch);
    }
    if let Some((&split, rest)) = data.split_first() {
        let (key, value) = rest.split_at(usize::from(split).min(rest.len()));
        let _ = GroupRecord::decode(key, Some(value));
    }
});

/// `data` with the batchLength and CRC fields a batch of its size needs.
fn with_valid_crc(data: &[u8]) -> Option<Bytes> {
    if data.len() < HEADER_BYTES {
        return None;
    }
    let mut b = data.to_vec();
    let batch_length = i32::try_from(b.len() - LOG_OVERHEAD).ok()?;
    b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Some(Bytes::from(b))
}
