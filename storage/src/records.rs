//! Record-level access to one Kafka v2 record batch (magic 2) kept as opaque bytes.
//!
//! The log stores batches exactly as producers sent them; most paths (fetch, replication)
//! never look inside. A few do: ListOffsets by timestamp, the max-timestamp lookup and log
//! compaction need the individual records. This module decodes them on demand.
//!
//! The caller has validated the batch header and its CRC, but the records part is still
//! untrusted (disk or network): nothing here panics, allocates from an unchecked length or
//! decompresses past `max_decompressed_bytes`.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};
use std::ops::ControlFlow;

/// Size of the fixed v2 batch header; the records (maybe compressed) start right after it.
pub const HEADER_BYTES: usize = 61;

/// Bytes before the batch length field is counted from (baseOffset + batchLength).
const LOG_OVERHEAD_BYTES: usize = 12;

const MAGIC_V2: i8 = 2;
const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;

/// snappy-java's stream header (`SnappyCodec.MAGIC_HEADER`), followed by two i32 versions.
const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

/// zstd's own default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 128 MiB), set explicitly so the
/// window a frame header may make the decoder allocate is bounded by us, not by a library
/// default. zstd-jni uses the same default, so anything a Java producer writes decodes.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Most bytes of a zigzag varint (i32) and varlong (i64), as in Kafka's `ByteUtils`.
const VARINT_MAX_BYTES: u8 = 5;
const VARLONG_MAX_BYTES: u8 = 10;

/// Codec of a batch, from bits 0-2 of its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// Codec named by a batch's attributes; ids 5-7 are not assigned by Kafka.
    pub fn from_attributes(attributes: i16) -> Result<Self, RecordsError> {
        match attributes & ATTR_COMPRESSION_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            // The mask keeps the id within 0..=7, so it always fits a u8.
            other => Err(RecordsError::UnknownCodec { codec: other as u8 }),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Kafka's `compression.type` spelling, so messages match what operators configure.
        f.write_str(match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        })
    }
}

/// One record of a batch, borrowed from the batch (or its decompressed copy) for the
/// duration of one `visit` call; copy what must outlive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset_delta: i32,
    /// Absolute offset: the batch's baseOffset + `offset_delta`.
    pub offset: i64,
    /// baseTimestamp + timestampDelta; for LogAppendTime batches the batch maxTimestamp,
    /// as Kafka's `DefaultRecordBatch` reports it (the broker overwrote only the header).
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone for compaction.
    pub value: Option<&'a [u8]>,
    pub headers_count: u32,
}

/// Why the records of a batch could not be read. Byte positions (`at_byte`) count from the
/// start of the (decompressed) records, i.e. from batch byte 61 for uncompressed batches.
/// The broker maps every variant to CORRUPT_MESSAGE.
#[derive(thiserror::Error, Debug)]
pub enum RecordsError {
    /// The buffer cannot even hold the fixed v2 header.
    #[error("batch of {len_bytes} bytes is shorter than the 61-byte v2 header")]
    ShortBatch { len_bytes: usize },
    /// The batchLength field disagrees with the buffer we were given.
    #[error("batch length field says {field_bytes} bytes follow it, buffer holds {actual_bytes}")]
    BatchLengthMismatch { field_bytes: i32, actual_bytes: usize },
    /// Only v2 batches have this record layout.
    #[error("unsupported magic {magic}, expected 2")]
    UnsupportedMagic { magic: i8 },
    /// Codec ids 5-7 in the attributes.
    #[error("unknown compression codec {codec}")]
    UnknownCodec { codec: u8 },
    #[error("negative record count {record_count}")]
    NegativeRecordCount { record_count: i32 },
    /// The codec rejected the payload (bad framing, checksum, truncated stream ...).
    #[error("corrupt {codec} payload: {source}")]
    Decompress {
        codec: Compression,
        #[source]
        source: io::Error,
    },
    /// Decompressing would produce more than the caller's limit (a bomb, or a limit too low).
    #[error("decompressed size exceeds limit of {limit_bytes} bytes")]
    DecompressedTooLarge { limit_bytes: usize },
    /// A field runs past the end of the records or of its record.
    #[error("truncated record at byte {at_byte}")]
    Truncated { at_byte: usize },
    /// A varint longer than Kafka allows (5 or 10 bytes) or outside its type's range.
    #[error("malformed varint at byte {at_byte} (more than {max_bytes} bytes or out of range)")]
    MalformedVarint { at_byte: usize, max_bytes: u8 },
    /// A negative length where none is allowed (or below -1 where -1 means null).
    #[error("invalid {field} length {length} at byte {at_byte}")]
    InvalidLength { field: &'static str, length: i32, at_byte: usize },
    /// Bytes left inside a record after its last header.
    #[error("record at byte {at_byte} declares {declared_bytes} bytes but its fields use {used_bytes}")]
    RecordLengthMismatch { at_byte: usize, declared_bytes: usize, used_bytes: usize },
    /// Offset deltas must increase strictly and stay within the header's lastOffsetDelta;
    /// compaction leaves gaps but never reorders.
    #[error(
        "offset delta {offset_delta} at byte {at_byte} is not after {previous_delta:?} or exceeds last offset delta {last_offset_delta}"
    )]
    OffsetDeltaOutOfOrder { offset_delta: i32, previous_delta: Option<i32>, last_offset_delta: i32, at_byte: usize },
    #[error("base offset {base_offset} plus offset delta {offset_delta} overflows")]
    OffsetOverflow { base_offset: i64, offset_delta: i32 },
    #[error("record count mismatch: header says {header_count}, records hold {parsed_count}")]
    RecordCountMismatch { header_count: u32, parsed_count: u64 },
}

/// The header fields record decoding needs.
#[derive(Debug, Clone, Copy)]
struct BatchHeader {
    base_offset: i64,
    compression: Compression,
    log_append_time: bool,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: u32,
}

impl BatchHeader {
    fn parse(batch: &[u8]) -> Result<Self, RecordsError> {
        let short = RecordsError::ShortBatch { len_bytes: batch.len() };
        let fixed = batch.get(..HEADER_BYTES).ok_or(short)?;
        let mut cursor = Cursor::new(fixed, 0);
        let base_offset = cursor.read_i64()?;
        let batch_length = cursor.read_i32()?;
        let expected_len = usize::try_from(batch_length).ok().and_then(|len| len.checked_add(LOG_OVERHEAD_BYTES));
        if expected_len != Some(batch.len()) {
            return Err(RecordsError::BatchLengthMismatch {
                field_bytes: batch_length,
                actual_bytes: batch.len().saturating_sub(LOG_OVERHEAD_BYTES),
            });
        }
        let _partition_leader_epoch = cursor.read_i32()?;
        let magic = cursor.read_i8()?;
        if magic != MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic { magic });
        }
        let _crc = cursor.read_i32()?;
        let attributes = cursor.read_i16()?;
        let last_offset_delta = cursor.read_i32()?;
        let base_timestamp = cursor.read_i64()?;
        let max_timestamp = cursor.read_i64()?;
        let _producer_id = cursor.read_i64()?;
        let _producer_epoch = cursor.read_i16()?;
        let _base_sequence = cursor.read_i32()?;
        let record_count = cursor.read_i32()?;
        debug_assert!(cursor.is_empty(), "header fields must cover 61 bytes");
        let record_count = u32::try_from(record_count).map_err(|_| RecordsError::NegativeRecordCount { record_count })?;
        Ok(Self {
            base_offset,
            compression: Compression::from_attributes(attributes)?,
            log_append_time: attributes & ATTR_LOG_APPEND_TIME != 0,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            record_count,
        })
    }
}

/// Calls `visit` for each record in offset order; stops calling it once it returns
/// `ControlFlow::Break`.
///
/// The whole batch is still validated after a break, so a batch either decodes or fails
/// the same way whatever the caller looks for (a ListOffsets answer must not depend on
/// whether the corruption lies before or after the record it wanted).
pub fn for_each_record(
    batch: &[u8],
    max_decompressed_bytes: usize,
    mut visit: impl FnMut(&Record<'_>) -> ControlFlow<()>,
) -> Result<(), RecordsError> {
    let header = BatchHeader::parse(batch)?;
    let payload = batch.get(HEADER_BYTES..).unwrap_or_default();
    let records = decompress(header.compression, payload, max_decompressed_bytes)?;

    let mut cursor = Cursor::new(&records, 0);
    let mut parsed_count: u64 = 0;
    let mut previous_delta: Option<i32> = None;
    let mut visiting = true;
    while !cursor.is_empty() {
        let at_byte = cursor.position();
        let record = read_record(&mut cursor, &header)?;
        let in_order = previous_delta.is_none_or(|previous| record.offset_delta > previous);
        if !in_order || record.offset_delta < 0 || record.offset_delta > header.last_offset_delta {
            return Err(RecordsError::OffsetDeltaOutOfOrder {
                offset_delta: record.offset_delta,
                previous_delta,
                last_offset_delta: header.last_offset_delta,
                at_byte,
            });
        }
        previous_delta = Some(record.offset_delta);
        parsed_count += 1;
        if visiting {
            visiting = visit(&record).is_continue();
        }
    }
    if parsed_count != u64::from(header.record_count) {
        return Err(RecordsError::RecordCountMismatch { header_count: header.record_count, parsed_count });
    }
    Ok(())
}

/// Offset and timestamp of the first record (in offset order) whose timestamp is at least
/// `target_ts`, as Kafka's `LogSegment.findOffsetByTimestamp` picks it within a batch;
/// `None` when every record is older.
pub fn first_record_at_or_after(batch: &[u8], target_ts: i64, max_decompressed_bytes: usize) -> Result<Option<(i64, i64)>, RecordsError> {
    let mut found = None;
    for_each_record(batch, max_decompressed_bytes, |record| {
        if record.timestamp >= target_ts {
            found = Some((record.offset, record.timestamp));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    debug_assert!(found.is_none_or(|(_, ts)| ts >= target_ts));
    Ok(found)
}

/// Offset of the first record whose timestamp equals the batch maxTimestamp (Kafka's
/// `RecordBatch.offsetOfMaxTimestamp`); `None` if no record carries it (an empty batch, or
/// a header that disagrees with its records). For LogAppendTime batches every record
/// carries it, so this is the first record's offset, as in Kafka.
pub fn offset_of_max_timestamp(batch: &[u8], max_decompressed_bytes: usize) -> Result<Option<i64>, RecordsError> {
    let max_timestamp = BatchHeader::parse(batch)?.max_timestamp;
    let mut found = None;
    for_each_record(batch, max_decompressed_bytes, |record| {
        if record.timestamp == max_timestamp {
            found = Some(record.offset);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(found)
}

/// Reads one record: its length, then exactly that many bytes of fields.
fn read_record<'a>(cursor: &mut Cursor<'a>, header: &BatchHeader) -> Result<Record<'a>, RecordsError> {
    let record_at = cursor.position();
    let length = cursor.read_varint()?;
    let declared_bytes =
        usize::try_from(length).map_err(|_| RecordsError::InvalidLength { field: "record", length, at_byte: record_at })?;
    let body_at = cursor.position();
    let body = cursor.take(declared_bytes).map_err(|_| RecordsError::Truncated { at_byte: record_at })?;
    let mut fields = Cursor::new(body, body_at);

    // Record attributes are unused since KIP-98; Kafka ignores them on read too.
    let _attributes = fields.read_i8()?;
    let timestamp_delta = fields.read_varlong()?;
    let offset_delta = fields.read_varint()?;
    let key = fields.read_nullable_bytes("key")?;
    let value = fields.read_nullable_bytes("value")?;
    let headers_at = fields.position();
    let headers_count = fields.read_varint()?;
    let headers_count = u32::try_from(headers_count).map_err(|_| RecordsError::InvalidLength {
        field: "headers count",
        length: headers_count,
        at_byte: headers_at,
    })?;
    // Each header consumes at least two bytes or fails, so a huge count cannot spin long.
    for _ in 0..headers_count {
        let _header_key = fields.read_bytes("header key")?;
        let _header_value = fields.read_nullable_bytes("header value")?;
    }
    if !fields.is_empty() {
        return Err(RecordsError::RecordLengthMismatch {
            at_byte: record_at,
            declared_bytes,
            used_bytes: declared_bytes - fields.remaining(),
        });
    }

    let offset = header
        .base_offset
        .checked_add(i64::from(offset_delta))
        .ok_or(RecordsError::OffsetOverflow { base_offset: header.base_offset, offset_delta })?;
    let timestamp = if header.log_append_time {
        header.max_timestamp
    } else {
        // Java's long addition wraps; a wild delta gives a wild timestamp, not a panic.
        header.base_timestamp.wrapping_add(timestamp_delta)
    };
    Ok(Record { offset_delta, offset, timestamp, key, value, headers_count })
}

/// The records bytes of a batch: borrowed when uncompressed, else decompressed into a
/// buffer of at most `limit_bytes`.
fn decompress(codec: Compression, payload: &[u8], limit_bytes: usize) -> Result<Cow<'_, [u8]>, RecordsError> {
    // Compaction keeps emptied batches as bare headers (to retain producer state); their
    // payload is empty whatever codec the attributes still name.
    if payload.is_empty() {
        return Ok(Cow::Borrowed(payload));
    }
    let corrupt = |source| RecordsError::Decompress { codec, source };
    let records = match codec {
        Compression::None => return Ok(Cow::Borrowed(payload)),
        // Java's GZIPInputStream reads concatenated members; so do we.
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(payload), codec, limit_bytes)?,
        Compression::Snappy => decompress_snappy(payload, limit_bytes)?,
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(payload), codec, limit_bytes)?,
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload).map_err(corrupt)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
            read_bounded(decoder, codec, limit_bytes)?
        }
    };
    debug_assert!(records.len() <= limit_bytes);
    Ok(Cow::Owned(records))
}

/// Reads a decoder to its end, reading one byte past the limit so that output of exactly
/// `limit_bytes` passes and anything more is reported rather than silently cut.
fn read_bounded(decoder: impl Read, codec: Compression, limit_bytes: usize) -> Result<Vec<u8>, RecordsError> {
    let cap_bytes = u64::try_from(limit_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    decoder.take(cap_bytes).read_to_end(&mut out).map_err(|source| RecordsError::Decompress { codec, source })?;
    if out.len() > limit_bytes {
        return Err(RecordsError::DecompressedTooLarge { limit_bytes });
    }
    Ok(out)
}

/// Kafka's Java client writes snappy-java's xerial framing; some other clients (older
/// librdkafka, sarama) write one raw snappy block, and snappy-java falls back to raw when
/// the magic is missing, so we do too.
fn decompress_snappy(payload: &[u8], limit_bytes: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    if !payload.starts_with(&XERIAL_MAGIC) {
        append_raw_snappy(payload, &mut out, limit_bytes)?;
        return Ok(out);
    }
    let mut rest = payload.get(XERIAL_HEADER_BYTES..).ok_or_else(|| snappy_corrupt("truncated xerial header"))?;
    while !rest.is_empty() {
        let (length_be, tail) = rest.split_first_chunk::<4>().ok_or_else(|| snappy_corrupt("truncated xerial block length"))?;
        let block_bytes = usize::try_from(i32::from_be_bytes(*length_be)).map_err(|_| snappy_corrupt("negative xerial block length"))?;
        let (block, after) = tail.split_at_checked(block_bytes).ok_or_else(|| snappy_corrupt("xerial block longer than payload"))?;
        append_raw_snappy(block, &mut out, limit_bytes)?;
        rest = after;
    }
    Ok(out)
}

/// Decompresses one raw snappy block onto `out`, checking the length the block claims
/// against the limit before allocating for it.
fn append_raw_snappy(block: &[u8], out: &mut Vec<u8>, limit_bytes: usize) -> Result<(), RecordsError> {
    debug_assert!(out.len() <= limit_bytes);
    let block_out_bytes = snap::raw::decompress_len(block).map_err(snappy_corrupt)?;
    if block_out_bytes > limit_bytes - out.len() {
        return Err(RecordsError::DecompressedTooLarge { limit_bytes });
    }
    let start = out.len();
    out.resize(start + block_out_bytes, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(snappy_corrupt)?;
    out.truncate(start + written);
    Ok(())
}

fn snappy_corrupt(reason: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> RecordsError {
    RecordsError::Decompress { codec: Compression::Snappy, source: io::Error::new(io::ErrorKind::InvalidData, reason) }
}

/// Bounds-checked reader over a byte slice. `base` is the slice's position within the
/// records so that errors name a byte a human can find.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    fn position(&self) -> usize {
        self.base + self.pos
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RecordsError> {
        debug_assert!(self.pos <= self.buf.len());
        let at_byte = self.position();
        let bytes = self.buf.get(self.pos..).and_then(|rest| rest.get(..len)).ok_or(RecordsError::Truncated { at_byte })?;
        self.pos += len;
        Ok(bytes)
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], RecordsError> {
        let at_byte = self.position();
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| RecordsError::Truncated { at_byte })
    }

    fn read_i8(&mut self) -> Result<i8, RecordsError> {
        Ok(i8::from_be_bytes(self.read_array()?))
    }

    fn read_i16(&mut self) -> Result<i16, RecordsError> {
        Ok(i16::from_be_bytes(self.read_array()?))
    }

    fn read_i32(&mut self) -> Result<i32, RecordsError> {
        Ok(i32::from_be_bytes(self.read_array()?))
    }

    fn read_i64(&mut self) -> Result<i64, RecordsError> {
        Ok(i64::from_be_bytes(self.read_array()?))
    }

    /// Unsigned LEB128 of at most `max_bytes` bytes whose value fits in `max_bits` bits.
    fn read_unsigned_varint(&mut self, max_bytes: u8, max_bits: u32) -> Result<u64, RecordsError> {
        debug_assert!(u32::from(max_bytes) * 7 >= max_bits && max_bits <= 64);
        let at_byte = self.position();
        let malformed = RecordsError::MalformedVarint { at_byte, max_bytes };
        let mut value: u64 = 0;
        for index in 0..u32::from(max_bytes) {
            let [byte] = self.read_array::<1>()?;
            let shift = 7 * index;
            let payload = u64::from(byte & 0x7f);
            // Bits above the type's width mean a malformed varint, not a value to wrap
            // (Java drops them silently; no encoder writes them).
            let top_bit = shift + (u64::BITS - payload.leading_zeros());
            if payload != 0 && top_bit > max_bits {
                return Err(malformed);
            }
            value |= payload << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed)
    }

    /// Zigzag varint (Kafka `ByteUtils.readVarint`).
    fn read_varint(&mut self) -> Result<i32, RecordsError> {
        let raw = self.read_unsigned_varint(VARINT_MAX_BYTES, 32)?;
        let raw = u32::try_from(raw).unwrap_or(u32::MAX);
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Zigzag varlong (Kafka `ByteUtils.readVarlong`).
    fn read_varlong(&mut self) -> Result<i64, RecordsError> {
        let raw = self.read_unsigned_varint(VARLONG_MAX_BYTES, 64)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Varint length then that many bytes; length -1 is null.
    fn read_nullable_bytes(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, RecordsError> {
        let at_byte = self.position();
        let length = self.read_varint()?;
        if length == -1 {
            return Ok(None);
        }
        let len = usize::try_from(length).map_err(|_| RecordsError::InvalidLength { field, length, at_byte })?;
        self.take(len).map(Some)
    }

    /// Varint length then that many bytes; null is not allowed (header keys).
    fn read_bytes(&mut self, field: &'static str) -> Result<&'a [u8], RecordsError> {
        let at_byte = self.position();
        self.read_nullable_bytes(field)?.ok_or(RecordsError::InvalidLength { field, length: -1, at_byte })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as KafkaCompression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use proptest::prelude::*;

    use super::*;

    const LIMIT_BYTES: usize = 1 << 20;
    const BASE_OFFSET: i64 = 1000;
    const ATTRIBUTES_AT: usize = 21;
    const MAX_TIMESTAMP_AT: usize = 35;
    const RECORD_COUNT_AT: usize = 57;

    const ALL_CODECS: [KafkaCompression; 5] =
        [KafkaCompression::None, KafkaCompression::Gzip, KafkaCompression::Snappy, KafkaCompression::Lz4, KafkaCompression::Zstd];

    /// What a visit saw, owned so it can outlive the callback.
    #[derive(Debug, PartialEq, Eq)]
    struct Seen {
        offset: i64,
        offset_delta: i32,
        timestamp: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers_count: u32,
    }

    fn collect(batch: &[u8], limit_bytes: usize) -> Result<Vec<Seen>, RecordsError> {
        let mut seen = Vec::new();
        for_each_record(batch, limit_bytes, |record| {
            seen.push(Seen {
                offset: record.offset,
                offset_delta: record.offset_delta,
                timestamp: record.timestamp,
                key: record.key.map(<[u8]>::to_vec),
                value: record.value.map(<[u8]>::to_vec),
                headers_count: record.headers_count,
            });
            ControlFlow::Continue(())
        })?;
        Ok(seen)
    }

    fn kafka_record(
        offset: i64,
        timestamp: i64,
        key: Option<&'static [u8]>,
        value: Option<Bytes>,
        headers: &[(&'static str, Option<&'static [u8]>)],
    ) -> KafkaRecord {
        let mut record = KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder splits batches unless offset - sequence is constant.
            sequence: (offset - BASE_OFFSET) as i32,
            timestamp,
            key: key.map(Bytes::from_static),
            value,
            headers: Default::default(),
        };
        for (name, value) in headers {
            record.headers.insert(StrBytes::from_static_str(name), value.map(Bytes::from_static));
        }
        record
    }

    /// Offsets with gaps (as after compaction), out-of-order timestamps with a tie at the
    /// maximum, null and empty keys and values, headers with a null value, and one
    /// value big enough for the codecs to have something to do.
    fn sample_records() -> Vec<KafkaRecord> {
        let big = Bytes::from(b"fjord ".repeat(700));
        vec![
            kafka_record(1000, 1_000, Some(b"k0"), Some(Bytes::from_static(b"v0")), &[("h1", Some(b"x")), ("h2", None)]),
            kafka_record(1001, 900, None, Some(Bytes::from_static(b"v1")), &[]),
            kafka_record(1003, 1_500, Some(b""), None, &[]),
            kafka_record(1004, 1_500, Some(b"k3"), Some(Bytes::new()), &[]),
            kafka_record(1007, 1_200, Some(b"k4"), Some(big), &[("h", Some(b""))]),
        ]
    }

    fn encode(records: &[KafkaRecord], codec: KafkaCompression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: codec };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encode batch");
        let batch = buf.to_vec();
        assert!(BatchHeader::parse(&batch).is_ok(), "encoder wrote one batch");
        batch
    }

    fn expected(records: &[KafkaRecord]) -> Vec<Seen> {
        records
            .iter()
            .map(|r| Seen {
                offset: r.offset,
                offset_delta: (r.offset - BASE_OFFSET) as i32,
                timestamp: r.timestamp,
                key: r.key.as_ref().map(|k| k.to_vec()),
                value: r.value.as_ref().map(|v| v.to_vec()),
                headers_count: r.headers.len() as u32,
            })
            .collect()
    }

    /// The batch's header with `payload` as its records, batchLength fixed up.
    fn with_payload(batch: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = batch[..HEADER_BYTES].to_vec();
        out.extend_from_slice(payload);
        let batch_length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES).expect("small batch");
        out[8..12].copy_from_slice(&batch_length.to_be_bytes());
        out
    }

    fn set_codec(batch: &mut [u8], codec_id: u8) {
        batch[ATTRIBUTES_AT + 1] = (batch[ATTRIBUTES_AT + 1] & !0x07) | codec_id;
    }

    fn set_i32(batch: &mut [u8], at: usize, value: i32) {
        batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    fn uncompressed_records(records: &[KafkaRecord]) -> Vec<u8> {
        encode(records, KafkaCompression::None)[HEADER_BYTES..].to_vec()
    }

    /// A header-only batch for hand-made records: lastOffsetDelta 10, base timestamp 0.
    fn hand_made(payload: &[u8], record_count: i32) -> Vec<u8> {
        let template = encode(&[kafka_record(BASE_OFFSET, 0, None, None, &[])], KafkaCompression::None);
        let mut batch = with_payload(&template, payload);
        set_i32(&mut batch, 23, 10);
        set_i32(&mut batch, RECORD_COUNT_AT, record_count);
        batch
    }

    /// Zigzag varint as the Kafka spec defines it (kafka-protocol keeps its own private).
    fn varint(value: i64) -> Vec<u8> {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        let mut out = Vec::new();
        while zigzag >= 0x80 {
            out.push((zigzag as u8) | 0x80);
            zigzag >>= 7;
        }
        out.push(zigzag as u8);
        out
    }

    /// One record from its fields after the length prefix.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = varint(body.len() as i64);
        out.extend_from_slice(body);
        out
    }

    /// attributes, timestampDelta 0, offsetDelta, then `rest` (key, value, headers).
    fn body(offset_delta: i64, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0];
        out.extend(varint(offset_delta));
        out.extend_from_slice(rest);
        out
    }

    fn xerial(blocks: &[&[u8]]) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for block in blocks {
            let compressed = snap::raw::Encoder::new().compress_vec(block).expect("snappy compress");
            out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
            out.extend(compressed);
        }
        out
    }

    /// `data` compressed the way Kafka frames each codec (snappy: xerial).
    fn compress(codec_id: u8, data: &[u8]) -> Vec<u8> {
        match codec_id {
            0 => data.to_vec(),
            1 => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).expect("gzip");
                encoder.finish().expect("gzip")
            }
            2 => xerial(&data.chunks(32 * 1024).collect::<Vec<_>>()),
            3 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder.write_all(data).expect("lz4");
                encoder.finish().expect("lz4")
            }
            4 => zstd::encode_all(data, 3).expect("zstd"),
            _ => unreachable!("codec {codec_id}"),
        }
    }

    /// Lowest offset with timestamp >= target, in offset order: the Kafka rule, spelled
    /// out on the input records.
    fn oracle_first_at_or_after(records: &[KafkaRecord], target: i64) -> Option<(i64, i64)> {
        records.iter().find(|r| r.timestamp >= target).map(|r| (r.offset, r.timestamp))
    }

    #[test]
    fn every_codec_decodes_exactly_the_records_written() {
        let records = sample_records();
        for codec in ALL_CODECS {
            let batch = encode(&records, codec);
            let header = BatchHeader::parse(&batch).expect("header");
            assert_eq!(header.compression as u8, codec as u8, "{codec:?}");
            assert_eq!(collect(&batch, LIMIT_BYTES).expect("decode"), expected(&records), "{codec:?}");
        }
    }

    #[test]
    fn kafka_protocol_writes_xerial_snappy() {
        let batch = encode(&sample_records(), KafkaCompression::Snappy);
        assert!(batch[HEADER_BYTES..].starts_with(&XERIAL_MAGIC));
    }

    #[test]
    fn raw_and_multi_block_xerial_snappy_decode() {
        let records = sample_records();
        let plain = uncompressed_records(&records);
        let raw = snap::raw::Encoder::new().compress_vec(&plain).expect("snappy");
        let (first, second) = plain.split_at(plain.len() / 3);
        for payload in [raw, xerial(&[first, second]), xerial(&[first, &[], second])] {
            let mut batch = with_payload(&encode(&records, KafkaCompression::None), &payload);
            set_codec(&mut batch, 2);
            assert_eq!(collect(&batch, LIMIT_BYTES).expect("decode"), expected(&records));
        }
    }

    #[test]
    fn first_record_at_or_after_follows_kafka_for_every_codec() {
        let records = sample_records();
        // Hand-checked answers, so the oracle itself is pinned down.
        let table = [
            (i64::MIN, Some((1000, 1_000))),
            (900, Some((1000, 1_000))),
            (1_000, Some((1000, 1_000))),
            (1_001, Some((1003, 1_500))),
            (1_200, Some((1003, 1_500))),
            (1_500, Some((1003, 1_500))),
            (1_501, None),
            (i64::MAX, None),
        ];
        for codec in ALL_CODECS {
            let batch = encode(&records, codec);
            for (target, want) in table {
                assert_eq!(want, oracle_first_at_or_after(&records, target));
                let got = first_record_at_or_after(&batch, target, LIMIT_BYTES).expect("decode");
                assert_eq!(got, want, "{codec:?} target {target}");
            }
            for target in 850..1_600 {
                let got = first_record_at_or_after(&batch, target, LIMIT_BYTES).expect("decode");
                assert_eq!(got, oracle_first_at_or_after(&records, target), "{codec:?} target {target}");
            }
        }
    }

    #[test]
    fn offset_of_max_timestamp_picks_the_first_of_a_tie() {
        for codec in ALL_CODECS {
            let batch = encode(&sample_records(), codec);
            assert_eq!(offset_of_max_timestamp(&batch, LIMIT_BYTES).expect("decode"), Some(1003));
        }
    }

    #[test]
    fn empty_batch_has_no_records_whatever_its_codec() {
        for codec_id in 0..=4 {
            let mut batch = hand_made(&[], 0);
            set_codec(&mut batch, codec_id);
            assert_eq!(collect(&batch, LIMIT_BYTES).expect("decode"), vec![]);
            assert_eq!(offset_of_max_timestamp(&batch, LIMIT_BYTES).expect("decode"), None);
            assert_eq!(first_record_at_or_after(&batch, i64::MIN, LIMIT_BYTES).expect("decode"), None);
        }
    }

    #[test]
    fn log_append_time_gives_every_record_the_batch_max_timestamp() {
        const APPEND_TS: i64 = 5_000;
        let records = sample_records();
        for codec in ALL_CODECS {
            // kafka-protocol never sets the bit; the broker sets it and overwrites
            // maxTimestamp, leaving the records alone, so do exactly that.
            let mut batch = encode(&records, codec);
            batch[ATTRIBUTES_AT + 1] |= ATTR_LOG_APPEND_TIME as u8;
            batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&APPEND_TS.to_be_bytes());

            let seen = collect(&batch, LIMIT_BYTES).expect("decode");
            assert_eq!(seen.len(), records.len());
            assert!(seen.iter().all(|r| r.timestamp == APPEND_TS), "{codec:?}");
            assert_eq!(first_record_at_or_after(&batch, 1_500, LIMIT_BYTES).expect("decode"), Some((1000, APPEND_TS)));
            assert_eq!(first_record_at_or_after(&batch, APPEND_TS, LIMIT_BYTES).expect("decode"), Some((1000, APPEND_TS)));
            assert_eq!(first_record_at_or_after(&batch, APPEND_TS + 1, LIMIT_BYTES).expect("decode"), None);
            assert_eq!(offset_of_max_timestamp(&batch, LIMIT_BYTES).expect("decode"), Some(1000));
        }
    }

    #[test]
    fn break_stops_visits_but_the_rest_is_still_validated() {
        let batch = encode(&sample_records(), KafkaCompression::None);
        let mut visits = 0;
        for_each_record(&batch, LIMIT_BYTES, |_| {
            visits += 1;
            ControlFlow::Break(())
        })
        .expect("decode");
        assert_eq!(visits, 1);

        // Corrupt only the last record: the answer for the first record must not be Ok.
        let corrupt = with_payload(&batch, &batch[HEADER_BYTES..batch.len() - 1]);
        assert!(matches!(first_record_at_or_after(&corrupt, i64::MIN, LIMIT_BYTES), Err(RecordsError::Truncated { .. })));
    }

    #[test]
    fn varint_boundaries_match_kafka_byte_utils_vectors() {
        // Vectors from Kafka's ByteUtilsTest.
        let ints: [(&[u8], i32); 5] = [
            (&[0x00], 0),
            (&[0x01], -1),
            (&[0x02], 1),
            (&[0xfe, 0xff, 0xff, 0xff, 0x0f], i32::MAX),
            (&[0xff, 0xff, 0xff, 0xff, 0x0f], i32::MIN),
        ];
        for (bytes, want) in ints {
            let mut cursor = Cursor::new(bytes, 0);
            assert_eq!(cursor.read_varint().expect("varint"), want);
            assert!(cursor.is_empty());
        }
        let longs: [(&[u8], i64); 2] = [
            (&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], i64::MAX),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], i64::MIN),
        ];
        for (bytes, want) in longs {
            let mut cursor = Cursor::new(bytes, 0);
            assert_eq!(cursor.read_varlong().expect("varlong"), want);
            assert!(cursor.is_empty());
        }
        let malformed: [(&[u8], bool); 4] = [
            (&[0xff, 0xff, 0xff, 0xff, 0x1f], false),
            (&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], false),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], true),
            (&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], true),
        ];
        for (bytes, long) in malformed {
            let mut cursor = Cursor::new(bytes, 0);
            let result = if long { cursor.read_varlong().map(|_| ()) } else { cursor.read_varint().map(|_| ()) };
            assert!(matches!(result, Err(RecordsError::MalformedVarint { at_byte: 0, .. })), "{bytes:?}");
        }
    }

    #[test]
    fn corrupt_batches_are_errors_not_panics() {
        let records = sample_records();
        let good = encode(&records, KafkaCompression::None);
        let plain = uncompressed_records(&records);
        let mut extra_byte = good.clone();
        extra_byte.push(0);
        let mut magic_1 = good.clone();
        magic_1[16] = 1;
        let mut negative_count = good.clone();
        set_i32(&mut negative_count, RECORD_COUNT_AT, -1);
        let mut count_high = good.clone();
        set_i32(&mut count_high, RECORD_COUNT_AT, 6);
        let mut count_low = good.clone();
        set_i32(&mut count_low, RECORD_COUNT_AT, 4);
        let truncated = with_payload(&good, &plain[..plain.len() - 1]);
        let gzip_cut = {
            let gz = compress(1, &plain);
            let mut batch = with_payload(&good, &gz[..gz.len() / 2]);
            set_codec(&mut batch, 1);
            batch
        };
        let one_record = |rest: &[u8]| hand_made(&framed(&body(0, rest)), 1);
        let huge_key = [varint(i64::from(i32::MAX)), varint(-1), varint(0)].concat();
        let null_header_key = [varint(-1), varint(-1), varint(1), varint(-1), varint(-1)].concat();
        let mut padded = body(0, &[varint(-1), varint(-1), varint(0)].concat());
        padded.push(0);
        let out_of_order = [
            framed(&body(1, &[varint(-1), varint(-1), varint(0)].concat())),
            framed(&body(1, &[varint(-1), varint(-1), varint(0)].concat())),
        ]
        .concat();
        let beyond_last_delta = framed(&body(11, &[varint(-1), varint(-1), varint(0)].concat()));

        type Check = fn(&RecordsError) -> bool;
        let cases: Vec<(&str, Vec<u8>, Check)> = vec![
            ("short batch", good[..20].to_vec(), |e| matches!(e, RecordsError::ShortBatch { len_bytes: 20 })),
            ("trailing byte", extra_byte, |e| matches!(e, RecordsError::BatchLengthMismatch { .. })),
            ("magic 1", magic_1, |e| matches!(e, RecordsError::UnsupportedMagic { magic: 1 })),
            ("negative count", negative_count, |e| matches!(e, RecordsError::NegativeRecordCount { record_count: -1 })),
            ("count too high", count_high, |e| matches!(e, RecordsError::RecordCountMismatch { header_count: 6, parsed_count: 5 })),
            ("count too low", count_low, |e| matches!(e, RecordsError::RecordCountMismatch { header_count: 4, parsed_count: 5 })),
            ("truncated record", truncated, |e| matches!(e, RecordsError::Truncated { .. })),
            ("truncated gzip", gzip_cut, |e| matches!(e, RecordsError::Decompress { codec: Compression::Gzip, .. })),
            ("huge record length", hand_made(&varint(i64::from(i32::MAX)), 1), |e| matches!(e, RecordsError::Truncated { at_byte: 0 })),
            ("negative record length", hand_made(&varint(-2), 1), |e| {
                matches!(e, RecordsError::InvalidLength { field: "record", length: -2, .. })
            }),
            ("six-byte varint", hand_made(&[0xff; 6], 1), |e| matches!(e, RecordsError::MalformedVarint { at_byte: 0, .. })),
            ("huge key length", one_record(&huge_key), |e| matches!(e, RecordsError::Truncated { .. })),
            ("key length -2", one_record(&[varint(-2), varint(-1), varint(0)].concat()), |e| {
                matches!(e, RecordsError::InvalidLength { field: "key", length: -2, .. })
            }),
            ("negative headers count", one_record(&[varint(-1), varint(-1), varint(-1)].concat()), |e| {
                matches!(e, RecordsError::InvalidLength { field: "headers count", .. })
            }),
            ("huge headers count", one_record(&[varint(-1), varint(-1), varint(i64::from(i32::MAX))].concat()), |e| {
                matches!(e, RecordsError::Truncated { .. })
            }),
            ("null header key", one_record(&null_header_key), |e| {
                matches!(e, RecordsError::InvalidLength { field: "header key", length: -1, .. })
            }),
            ("record longer than its fields", hand_made(&framed(&padded), 1), |e| {
                matches!(e, RecordsError::RecordLengthMismatch { at_byte: 0, used_bytes: 6, declared_bytes: 7 })
            }),
            ("repeated offset delta", hand_made(&out_of_order, 2), |e| {
                matches!(e, RecordsError::OffsetDeltaOutOfOrder { offset_delta: 1, previous_delta: Some(1), .. })
            }),
            ("offset delta beyond last", hand_made(&beyond_last_delta, 1), |e| {
                matches!(e, RecordsError::OffsetDeltaOutOfOrder { offset_delta: 11, .. })
            }),
        ];
        for (name, batch, check) in cases {
            let err = collect(&batch, LIMIT_BYTES).expect_err(name);
            assert!(check(&err), "{name}: {err:?}");
            // Every entry point reports the same corruption.
            assert!(first_record_at_or_after(&batch, 0, LIMIT_BYTES).is_err(), "{name}");
            assert!(offset_of_max_timestamp(&batch, LIMIT_BYTES).is_err(), "{name}");
        }
    }

    #[test]
    fn unknown_codecs_are_errors() {
        for codec_id in 5..=7 {
            let mut batch = encode(&sample_records(), KafkaCompression::None);
            set_codec(&mut batch, codec_id);
            let err = collect(&batch, LIMIT_BYTES).expect_err("unknown codec");
            assert!(matches!(err, RecordsError::UnknownCodec { codec } if codec == codec_id));
            assert_eq!(err.to_string(), format!("unknown compression codec {codec_id}"));
        }
    }

    #[test]
    fn garbage_payloads_are_decompression_errors() {
        let garbage = b"not a compressed stream, just some bytes from a disk";
        for codec_id in 1..=4 {
            let mut batch = hand_made(garbage, 1);
            set_codec(&mut batch, codec_id);
            let err = collect(&batch, LIMIT_BYTES).expect_err("garbage");
            assert!(matches!(err, RecordsError::Decompress { .. }), "codec {codec_id}: {err:?}");
        }
        // Magic with nothing after it, and a block longer than the payload.
        let bad_xerial = [XERIAL_MAGIC.to_vec(), xerial(&[b"records"])[XERIAL_MAGIC.len()..][..10].to_vec()];
        for payload in [bad_xerial[0].clone(), bad_xerial.concat()] {
            let mut batch = hand_made(&payload, 1);
            set_codec(&mut batch, 2);
            let err = collect(&batch, LIMIT_BYTES).expect_err("bad xerial");
            assert!(matches!(err, RecordsError::Decompress { codec: Compression::Snappy, .. }), "{err:?}");
        }
    }

    #[test]
    fn decompression_bombs_stop_at_the_limit() {
        const BOMB_BYTES: usize = 16 << 20;
        let zeros = vec![0u8; BOMB_BYTES];
        let raw_snappy = snap::raw::Encoder::new().compress_vec(&zeros).expect("snappy");
        let bombs = (1..=4).map(|codec_id| (codec_id, compress(codec_id, &zeros))).chain([(2, raw_snappy)]);
        for (codec_id, payload) in bombs {
            assert!(payload.len() < BOMB_BYTES / 16, "codec {codec_id} compresses zeros");
            let mut batch = hand_made(&payload, 1);
            set_codec(&mut batch, codec_id);
            let err = collect(&batch, LIMIT_BYTES).expect_err("bomb");
            assert!(matches!(err, RecordsError::DecompressedTooLarge { limit_bytes: LIMIT_BYTES }), "codec {codec_id}: {err:?}");
        }
    }

    #[test]
    fn output_of_exactly_the_limit_is_accepted() {
        let records = sample_records();
        let plain = uncompressed_records(&records);
        for codec_id in 1..=4 {
            let mut batch = with_payload(&encode(&records, KafkaCompression::None), &compress(codec_id, &plain));
            set_codec(&mut batch, codec_id);
            assert_eq!(collect(&batch, plain.len()).expect("at limit"), expected(&records));
            let err = collect(&batch, plain.len() - 1).expect_err("over limit");
            assert!(matches!(err, RecordsError::DecompressedTooLarge { .. }), "codec {codec_id}: {err:?}");
        }
    }

    #[test]
    fn error_messages_are_lowercase_and_name_the_problem() {
        let err = RecordsError::Truncated { at_byte: 42 };
        assert_eq!(err.to_string(), "truncated record at byte 42");
        let err = RecordsError::RecordCountMismatch { header_count: 3, parsed_count: 2 };
        assert_eq!(err.to_string(), "record count mismatch: header says 3, records hold 2");
        let err = RecordsError::DecompressedTooLarge { limit_bytes: 10 };
        assert_eq!(err.to_string(), "decompressed size exceeds limit of 10 bytes");
    }

    proptest! {
        #[test]
        fn arbitrary_records_after_a_valid_header_never_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..512),
            attributes in 0u8..64,
            record_count in -2i32..8,
            target in any::<i64>(),
        ) {
            let mut batch = hand_made(&payload, record_count);
            batch[ATTRIBUTES_AT + 1] = attributes;
            let _ = collect(&batch, 4096);
            let _ = first_record_at_or_after(&batch, target, 4096);
            let _ = offset_of_max_timestamp(&batch, 4096);
        }

        #[test]
        fn corrupted_valid_batches_never_panic(
            codec_index in 0usize..5,
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
            cut in any::<usize>(),
        ) {
            let mut batch = encode(&sample_records(), ALL_CODECS[codec_index]);
            let records_bytes = batch.len() - HEADER_BYTES;
            for (at, mask) in flips {
                batch[HEADER_BYTES + at % records_bytes] ^= mask;
            }
            let kept = cut % (records_bytes + 1);
            let batch = with_payload(&batch, &batch[HEADER_BYTES..HEADER_BYTES + kept]);
            let _ = collect(&batch, LIMIT_BYTES);
        }
    }
}
