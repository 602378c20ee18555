//! One input, two ways in: as a request frame (size prefix stripped), the
//! way a connection hands it to dispatch; and as one produce batch whose
//! length and CRC are made right first, since a fuzzer cannot forge a
//! CRC-32C and the record walk (decompression included) lies behind it.
//! Neither may panic, hang or allocate without bound, whatever the bytes.

#![no_main]

use bytes::Bytes;
use fjord_broker::protocol::decode_all::{check_batch, decode_request};
use fjord_storage::batch::{HEADER_BYTES, LOG_OVERHEAD};
use libfuzzer_sys::fuzz_target;

/// Where a v2 batch keeps batchLength and its CRC, and where the CRC starts.
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const CRC_START: usize = 21;

fuzz_target!(|data: &[u8]| {
    let _ = decode_request(Bytes::copy_from_slice(data));
    if let Some(batch) = with_valid_crc(data) {
        let _ = check_batch(batch);
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
