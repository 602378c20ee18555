//! The records the transaction coordinator keeps in `__transaction_state`, in
//! Kafka's exact bytes (`transaction-coordinator/src/main/resources/common/message/`
//! `TransactionLogKey.json` and `TransactionLogValue.json`), so a new
//! coordinator rebuilds its transactions by replaying the log and Kafka's
//! `TransactionLogMessageFormatter` and `kafka-dump-log --transaction-log-decoder`
//! read what we wrote.
//!
//! Key = int16 version (0) + transactional id (int16-length string).
//! Value = int16 version + TransactionLogValue, or null (tombstone) once an
//! id has expired. Version 0 is the classic encoding; version 1 (flexible,
//! KIP-915) is written only once the `transaction.version` feature is 1 or
//! more, which Fjord does not advertise, so we write v0 and read both.
//!
//! The bytes come from a disk and are untrusted: decoding checks every
//! length against what is left and never panics.

use std::collections::BTreeMap;

use bytes::BufMut;

/// The only TransactionLogKey version.
const KEY_VERSION: i16 = 0;
/// What `TransactionVersion.TV_0.transactionLogValueVersion()` writes.
const VALUE_VERSION_WRITTEN: i16 = 0;
/// The first flexible value version, also the highest.
const VALUE_VERSION_FLEXIBLE: i16 = 1;
/// Kafka's strings are at most `i16::MAX` bytes.
const MAX_STRING_BYTES: usize = i16::MAX as usize;
/// Tags of TransactionLogValue v1's tagged fields.
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// One transactional id's state as stored. `partitions` is empty for Empty
/// (written as a null array, as Kafka writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// `TransactionState.id`: 0 Empty … 7 PrepareEpochFence ([`super::state::TxnState`]).
    pub status: i8,
    /// Topic → partitions, as Kafka groups them.
    pub partitions: BTreeMap<String, Vec<i32>>,
    pub last_update_ms: i64,
    pub start_ms: i64,
    /// v1's tagged fields; -1 when absent (always after a v0 record).
    pub previous_producer_id: i64,
    pub next_producer_id: i64,
}

/// Why a key or value of `__transaction_state` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnRecordError {
    /// The key or value cannot even hold its int16 version.
    #[error("{part} of {len_bytes} bytes is too short for its 2-byte version")]
    NoVersion { part: &'static str, len_bytes: usize },
    /// A value version Kafka has never written (its loader fails on these too).
    #[error("TransactionLogValue version {0} is unknown (known: 0 and 1)")]
    UnknownValueVersion(i16),
    /// A field that does not decode; `at_byte` counts from the start of the key or value.
    #[error("{schema}: field {field} at byte {at_byte}: {problem}")]
    Field { schema: &'static str, field: &'static str, at_byte: usize, problem: &'static str },
    /// Bytes after the last field: a writer that disagrees with us on the schema.
    #[error("{schema}: {trailing_bytes} bytes left after the last field")]
    TrailingBytes { schema: &'static str, trailing_bytes: usize },
}

/// Whether `transactional_id` and every topic of `value` fit Kafka's int16
/// string length, so [`encode`] can write them. Kafka's request parsers
/// refuse longer strings; the coordinator checks before it writes.
pub fn fits(transactional_id: &str, value: Option<&TxnLogValue>) -> bool {
    transactional_id.len() <= MAX_STRING_BYTES && value.is_none_or(|v| v.partitions.keys().all(|t| t.len() <= MAX_STRING_BYTES))
}

/// Key and value bytes as Kafka writes them (value v0; None = tombstone).
///
/// # Panics
/// If a string does not [`fits`]: writing a record we cannot read back
/// would corrupt the log.
pub fn encode(transactional_id: &str, value: Option<&TxnLogValue>) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut key = Vec::with_capacity(4 + transactional_id.len());
    key.put_i16(KEY_VERSION);
    put_string(&mut key, transactional_id);
    (key, value.map(encode_value))
}

fn encode_value(v: &TxnLogValue) -> Vec<u8> {
    let mut buf = Vec::with_capacity(48);
    buf.put_i16(VALUE_VERSION_WRITTEN);
    buf.put_i64(v.producer_id);
    buf.put_i16(v.producer_epoch);
    buf.put_i32(v.timeout_ms);
    buf.put_i8(v.status);
    if v.partitions.is_empty() {
        // Kafka writes null for Empty and an empty list otherwise; both read back as none.
        buf.put_i32(if v.status == 0 { -1 } else { 0 });
    } else {
        buf.put_i32(i32::try_from(v.partitions.len()).expect("topics fit an i32 count"));
        for (topic, ids) in &v.partitions {
            put_string(&mut buf, topic);
            buf.put_i32(i32::try_from(ids.len()).expect("partitions fit an i32 count"));
            for id in ids {
                buf.put_i32(*id);
            }
        }
    }
    buf.put_i64(v.last_update_ms);
    buf.put_i64(v.start_ms);
    buf
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    assert!(s.len() <= MAX_STRING_BYTES, "a string of {} bytes does not fit Kafka's int16 length", s.len());
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

/// Decodes a record: `Ok(None)` for a key version Kafka's loader skips
/// ("a left over from an aborted upgrade"), else the transactional id and
/// its value (None: tombstone).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<(String, Option<TxnLogValue>)>, TxnRecordError> {
    let (version, body) = split_version(key, "key")?;
    if version != KEY_VERSION {
        return Ok(None);
    }
    let mut r = Reader { buf: body, pos: 0, schema: "TransactionLogKey", flexible: false };
    let id = r.string("TransactionalId")?;
    r.finish()?;
    let value = value.map(decode_value).transpose()?;
    Ok(Some((id, value)))
}

fn decode_value(bytes: &[u8]) -> Result<TxnLogValue, TxnRecordError> {
    let (version, body) = split_version(bytes, "value")?;
    if !(0..=VALUE_VERSION_FLEXIBLE).contains(&version) {
        return Err(TxnRecordError::UnknownValueVersion(version));
    }
    let mut r = Reader { buf: body, pos: 0, schema: "TransactionLogValue", flexible: version >= VALUE_VERSION_FLEXIBLE };
    let producer_id = r.i64("ProducerId")?;
    let producer_epoch = r.i16("ProducerEpoch")?;
    let timeout_ms = r.i32("TransactionTimeoutMs")?;
    let status = r.i8("TransactionStatus")?;
    let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if let Some(topics) = r.length("TransactionPartitions", true)? {
        for _ in 0..topics {
            let topic = r.string("Topic")?;
            let count = r.length("PartitionIds", true)?.ok_or_else(|| r.fail("PartitionIds", "null, which the schema does not allow"))?;
            // Each id takes four bytes, so this bounds the allocation by the input.
            let mut ids = Vec::with_capacity(count.min(r.remaining() / 4));
            for _ in 0..count {
                ids.push(r.i32("PartitionIds")?);
            }
            r.tagged_fields(|_, _| Ok(()))?;
            partitions.entry(topic).or_default().extend(ids);
        }
    }
    let last_update_ms = r.i64("TransactionLastUpdateTimestampMs")?;
    let start_ms = r.i64("TransactionStartTimestampMs")?;
    let (mut previous_producer_id, mut next_producer_id) = (-1, -1);
    r.tagged_fields(|tag, data| {
        let long = |data: &[u8]| <[u8; 8]>::try_from(data).map(i64::from_be_bytes).map_err(|_| "an int64 tagged field of another size");
        match tag {
            TAG_PREVIOUS_PRODUCER_ID => previous_producer_id = long(data)?,
            TAG_NEXT_PRODUCER_ID => next_producer_id = long(data)?,
            // The client's transaction version: Transactions V2 only, which Fjord does not serve.
            TAG_CLIENT_TRANSACTION_VERSION => {}
            _ => {}
        }
        Ok(())
    })?;
    r.finish()?;
    // Kafka ignores the partitions of an Empty transaction on load.
    if status == 0 {
        partitions.clear();
    }
    Ok(TxnLogValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        status,
        partitions,
        last_update_ms,
        start_ms,
        previous_producer_id,
        next_producer_id,
    })
}

fn split_version<'a>(bytes: &'a [u8], part: &'static str) -> Result<(i16, &'a [u8]), TxnRecordError> {
    let (version, rest) = bytes.split_first_chunk::<2>().ok_or(TxnRecordError::NoVersion { part, len_bytes: bytes.len() })?;
    Ok((i16::from_be_bytes(*version), rest))
}

/// A bounds-checked reader over one struct.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    schema: &'static str,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn fail(&self, field: &'static str, problem: &'static str) -> TxnRecordError {
        // The 2-byte version precedes what this reader sees.
        TxnRecordError::Field { schema: self.schema, field, at_byte: 2 + self.pos, problem }
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], TxnRecordError> {
        if len > self.remaining() {
            return Err(self.fail(field, "runs past the end"));
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], TxnRecordError> {
        let bytes = self.take(N, field)?;
        Ok(bytes.try_into().expect("took N bytes"))
    }

    fn i8(&mut self, field: &'static str) -> Result<i8, TxnRecordError> {
        self.fixed(field).map(i8::from_be_bytes)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, TxnRecordError> {
        self.fixed(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, TxnRecordError> {
        self.fixed(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, TxnRecordError> {
        self.fixed(field).map(i64::from_be_bytes)
    }

    /// Kafka's `readUnsignedVarint`: at most 5 bytes; bits past 32 are malformed.
    fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, TxnRecordError> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let [byte] = self.fixed::<1>(field)?;
            let payload = u32::from(byte & 0x7f);
            if index == 4 && payload > 0x0f {
                return Err(self.fail(field, "malformed unsigned varint"));
            }
            value |= payload << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.fail(field, "malformed unsigned varint"))
    }

    /// A length prefix, None for null: compact (varint of length + 1) when
    /// flexible, else int32 (`wide`: arrays) or int16 (strings), -1 null.
    fn length(&mut self, field: &'static str, wide: bool) -> Result<Option<usize>, TxnRecordError> {
        let length = match (self.flexible, wide) {
            (true, _) => i64::from(self.unsigned_varint(field)?) - 1,
            (false, true) => i64::from(self.i32(field)?),
            (false, false) => i64::from(self.i16(field)?),
        };
        match length {
            -1 => Ok(None),
            0.. => Ok(Some(length as usize)),
            _ => Err(self.fail(field, "negative length")),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, TxnRecordError> {
        let len = self.length(field, false)?.ok_or_else(|| self.fail(field, "null, which the schema does not allow"))?;
        if len > MAX_STRING_BYTES {
            return Err(self.fail(field, "longer than 32767 bytes"));
        }
        let raw = self.take(len, field)?;
        std::str::from_utf8(raw).map(str::to_owned).map_err(|_| self.fail(field, "not valid UTF-8"))
    }

    /// A flexible struct's tagged fields, each handed to `known` (tag, data).
    fn tagged_fields(&mut self, mut known: impl FnMut(u32, &[u8]) -> Result<(), &'static str>) -> Result<(), TxnRecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.unsigned_varint("tagged fields")?;
        // Each field takes at least two bytes or fails, so a huge count ends soon.
        for _ in 0..count {
            let tag = self.unsigned_varint("tag")?;
            let size = self.unsigned_varint("tagged field size")?;
            let data = self.take(size as usize, "tagged field")?;
            known(tag, data).map_err(|problem| self.fail("tagged field", problem))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), TxnRecordError> {
        match self.remaining() {
            0 => Ok(()),
            trailing_bytes => Err(TxnRecordError::TrailingBytes { schema: self.schema, trailing_bytes }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ongoing() -> TxnLogValue {
        TxnLogValue {
            producer_id: 1000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: 1,
            partitions: BTreeMap::from([("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])]),
            last_update_ms: 1_700_000_000_123,
            start_ms: 1_700_000_000_000,
            previous_producer_id: -1,
            next_producer_id: -1,
        }
    }

    /// Written by Kafka 4.4's own classes (jshell over `.cache/kafka-libs`):
    /// `MessageUtil.toVersionPrefixedBytes(0, new TransactionLogKey().setTransactionalId("txn-1"))`
    /// and the same for a `TransactionLogValue` with the fields of [`ongoing`],
    /// partitions in topic order.
    #[test]
    fn golden_bytes_match_kafkas() {
        #[rustfmt::skip]
        let key = [0, 0, 0, 5, b't', b'x', b'n', b'-', b'1'];
        #[rustfmt::skip]
        let value = [
            0, 0,                                     // version 0
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,             // ProducerId 1000
            0, 3,                                     // ProducerEpoch
            0, 0, 0xea, 0x60,                         // TransactionTimeoutMs 60000
            1,                                        // TransactionStatus Ongoing
            0, 0, 0, 2,                               // TransactionPartitions: 2 topics
            0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2,
            0, 1, b'b', 0, 0, 0, 1, 0, 0, 0, 1,
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, // TransactionLastUpdateTimestampMs
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // TransactionStartTimestampMs
        ];
        assert_eq!(encode("txn-1", Some(&ongoing())), (key.to_vec(), Some(value.to_vec())));
        assert_eq!(decode(&key, Some(&value)).unwrap(), Some(("txn-1".to_string(), Some(ongoing()))));
    }

    /// Empty: Kafka writes the partitions as a null array.
    #[test]
    fn empty_writes_null_partitions() {
        let v = TxnLogValue { status: 0, partitions: BTreeMap::new(), start_ms: -1, ..ongoing() };
        let bytes = encode("t", Some(&v)).1.unwrap();
        // Kafka 4.4 (jshell): TransactionLogValue v0 with TransactionPartitions null.
        let kafka = "000000000000000003e800030000ea6000ffffffff0000018bcfe5687bffffffffffffffff";
        assert_eq!(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(), kafka);
        assert_eq!(decode(&encode("t", None).0, Some(&bytes)).unwrap().unwrap().1, Some(v));
    }

    #[test]
    fn tombstones_round_trip() {
        let (key, value) = encode("gone", None);
        assert_eq!(value, None);
        assert_eq!(decode(&key, None).unwrap(), Some(("gone".to_string(), None)));
    }

    /// v1 (flexible), as Kafka 4.4 writes it with `transaction.version` ≥ 1
    /// (bytes from the same jshell run): compact arrays and strings, tagged
    /// PreviousProducerId (0) and ClientTransactionVersion (2).
    #[test]
    fn flexible_value_decodes() {
        #[rustfmt::skip]
        let value = [
            0, 1,                                     // version 1
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,             // ProducerId 1000
            0, 3,                                     // ProducerEpoch
            0, 0, 0xea, 0x60,                         // TransactionTimeoutMs
            1,                                        // Ongoing
            2,                                        // compact array: 1 topic
            2, b'a', 2, 0, 0, 0, 7, 0,                // "a", [7], no tags
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b,
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
            2,                                        // 2 tagged fields (NextProducerId -1 is the default, left out)
            0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xe7,       // PreviousProducerId 999
            2, 2, 0, 2,                               // ClientTransactionVersion 2
        ];
        let v = decode(&encode("t", None).0, Some(&value)).unwrap().unwrap().1.unwrap();
        assert_eq!(v.partitions, BTreeMap::from([("a".to_string(), vec![7])]));
        assert_eq!((v.previous_producer_id, v.next_producer_id, v.producer_epoch), (999, -1, 3));
    }

    #[test]
    fn other_key_versions_are_skipped() {
        assert_eq!(decode(&[0, 1, 0, 1, b'x'], Some(&[0, 0])).unwrap(), None);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(decode(&[0], None), Err(TxnRecordError::NoVersion { .. })));
        let key = encode("t", None).0;
        assert_eq!(decode(&key, Some(&[0, 2])), Err(TxnRecordError::UnknownValueVersion(2)));
        let mut value = encode("t", Some(&ongoing())).1.unwrap();
        value.push(0);
        assert!(matches!(decode(&key, Some(&value)), Err(TxnRecordError::TrailingBytes { trailing_bytes: 1, .. })));
        let full = encode("t", Some(&ongoing())).1.unwrap();
        for cut in 0..full.len() {
            assert!(decode(&key, Some(&full[..cut])).is_err(), "prefix of {cut} bytes decoded");
        }
    }

    fn arb_value() -> impl Strategy<Value = TxnLogValue> {
        (
            any::<i64>(),
            any::<i16>(),
            any::<i32>(),
            1i8..8,
            prop::collection::btree_map("[a-z._-]{1,20}", prop::collection::vec(any::<i32>(), 1..5), 0..4),
            any::<i64>(),
            any::<i64>(),
        )
            .prop_map(|(producer_id, producer_epoch, timeout_ms, status, partitions, last_update_ms, start_ms)| TxnLogValue {
                producer_id,
                producer_epoch,
                timeout_ms,
                status,
                partitions,
                last_update_ms,
                start_ms,
                previous_producer_id: -1,
                next_producer_id: -1,
            })
    }

    proptest! {
        #[test]
        fn any_value_round_trips(id in "\\PC{1,40}", value in prop::option::of(arb_value())) {
            let (k, v) = encode(&id, value.as_ref());
            prop_assert_eq!(decode(&k, v.as_deref()).unwrap(), Some((id, value)));
        }

        #[test]
        fn garbage_never_panics(key in prop::collection::vec(any::<u8>(), 0..40), value in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&key, Some(&value));
        }
    }
}
