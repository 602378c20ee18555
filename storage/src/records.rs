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

use crate::batch::{self, HEADER_BYTES};

const ATTR_COMPRESSION_MASK: i16 = 0x07;

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

/// The header fields record decoding needs, from [`batch::BatchHeader`].
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
    fn parse(bytes: &[u8]) -> Result<Self, RecordsError> {
        let h = batch::BatchHeader::parse(bytes).map_err(|_| RecordsError::ShortBatch { len_bytes: bytes.len() })?;
        let expected_len = usize::try_from(h.batch_length).ok().and_then(|len| len.checked_add(batch::LOG_OVERHEAD));
        if expected_len != Some(bytes.len()) {
            return Err(RecordsError::BatchLengthMismatch {
                field_bytes: h.batch_length,
                actual_bytes: bytes.len().saturating_sub(batch::LOG_OVERHEAD),
            });
        }
        if h.magic != batch::MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic { magic: h.magic });
        }
        let record_count = u32::try_from(h.record_count).map_err(|_| RecordsError::NegativeRecordCount { record_count: h.record_count })?;
        Ok(Self {
            base_offset: h.base_offset,
            compression: Compression::from_attributes(h.attributes)?,
            log_append_time: h.is_log_append_time(),
            last_offset_delta: h.last_offset_delta,
            base_timestamp: h.base_timestamp,
            max_timestamp: h.max_timestamp,
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
    for_each_raw_record(batch, max_decompressed_bytes, |record, _| visit(record))
}

/// [`for_each_record`], also handing each record's encoded bytes (its length
/// varint included, uncompressed): what the log cleaner copies into a
/// rewritten batch.
pub(crate) fn for_each_raw_record(
    batch: &[u8],
    max_decompressed_bytes: usize,
    mut visit: impl FnMut(&Record<'_>, &[u8]) -> ControlFlow<()>,
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
            visiting = visit(&record, &records[at_byte..cursor.position()]).is_continue();
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
mod tests;
