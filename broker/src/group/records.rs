//! The records the group coordinator keeps in `__consumer_offsets`, in Kafka's
//! exact bytes (`group-coordinator/src/main/resources/common/message/`), so
//! that a new coordinator rebuilds its groups by replaying the log and Kafka's
//! `OffsetsMessageFormatter` can read what we wrote.
//!
//! Key = int16 record type (Kafka calls it the key version) + key struct;
//! value = int16 value version + value struct, or null for a tombstone
//! (`CoordinatorRecordSerde`). Types 0 and 1 are offset commits, 2 is group
//! metadata; everything above belongs to KIP-848 consumer groups, share and
//! streams groups, which the classic coordinator skips.
//!
//! Up to value version 3 the encoding is Kafka's classic one (int16-length
//! strings, int32-length bytes and arrays); version 4 is flexible (compact
//! lengths as unsigned varints holding length + 1, tagged fields after each
//! struct). We write the versions Kafka's coordinator writes and read every
//! version it has written. The bytes come from a disk and are untrusted:
//! decoding checks every length against what is left and never panics.

use bytes::{BufMut, Bytes};

/// Record types (key versions) of the classic coordinator.
const OFFSET_COMMIT_KEY_V0: i16 = 0;
const OFFSET_COMMIT_KEY_V1: i16 = 1;
const GROUP_METADATA_KEY_V2: i16 = 2;

/// Value versions Kafka's coordinator writes (`MetadataVersion.offsetCommitValueVersion`,
/// `groupMetadataValueVersion`): v1 is the only one that carries an expire timestamp.
const OFFSET_VALUE_VERSION: i16 = 3;
const OFFSET_VALUE_EXPIRE_VERSION: i16 = 1;
const GROUP_VALUE_VERSION: i16 = 3;
/// Highest value version of both schemas, and their first flexible one (KIP-915).
const MAX_VALUE_VERSION: i16 = 4;
const FIRST_FLEXIBLE_VERSION: i16 = 4;

/// Kafka's strings are at most `i16::MAX` bytes, compact ones included
/// (its generated readers reject longer ones).
const MAX_STRING_BYTES: usize = i16::MAX as usize;
/// Bytes of the version that starts every key and value; error positions count it.
const VERSION_BYTES: usize = 2;

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when unknown (and always after a v0-v2 or v1 record, which lack it).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only OffsetCommit v1 requests set one; written as value v1, which has no leader epoch.
    pub expire_timestamp: Option<i64>,
}

/// One member of a classic group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A classic group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown (and after a v0 or v1 record, which lack it).
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// One record of `__consumer_offsets` that the classic coordinator replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    /// None: tombstone (offset deleted).
    Offset { group: String, topic: String, partition: i32, value: Option<OffsetValue> },
    /// None: tombstone (group deleted).
    Group { group: String, value: Option<GroupValue> },
}

/// Why a key or value of `__consumer_offsets` could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The key or value cannot even hold its int16 version.
    #[error("{part} of {len_bytes} bytes is too short for its 2-byte version")]
    NoVersion { part: &'static str, len_bytes: usize },
    /// A negative key version: no record type Kafka defines.
    #[error("unknown record type (key version) {version}")]
    UnknownRecordType { version: i16 },
    /// A value version Kafka has never written (it fails the load on these too).
    #[error("{schema} version {version} is unknown (known: 0 to {MAX_VALUE_VERSION})")]
    UnknownValueVersion { schema: &'static str, version: i16 },
    /// A field that does not decode; `at_byte` counts from the start of the key or value.
    #[error("{schema} v{version}: field {field} at byte {at_byte}: {problem}")]
    Field { schema: &'static str, version: i16, field: &'static str, at_byte: usize, problem: FieldProblem },
    /// Bytes after the last field: a writer that disagrees with us on the schema.
    #[error("{schema} v{version}: {trailing_bytes} bytes left after the last field")]
    TrailingBytes { schema: &'static str, version: i16, trailing_bytes: usize },
}

/// What is wrong with one field, for [`RecordError::Field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("runs past the end")]
    Truncated,
    #[error("invalid length {0}")]
    InvalidLength(i64),
    #[error("null, which the schema does not allow")]
    Null,
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("malformed unsigned varint")]
    MalformedVarint,
}

impl GroupRecord {
    /// Whether every string fits Kafka's int16 length, so [`encode`](Self::encode) can write it.
    pub fn fits(&self) -> bool {
        let ok = |s: &str| s.len() <= MAX_STRING_BYTES;
        let ok_opt = |s: &Option<String>| s.as_deref().is_none_or(ok);
        match self {
            Self::Offset { group, topic, value, .. } => ok(group) && ok(topic) && value.as_ref().is_none_or(|v| ok(&v.metadata)),
            Self::Group { group, value } => {
                ok(group)
                    && value.as_ref().is_none_or(|v| {
                        ok(&v.protocol_type)
                            && ok_opt(&v.protocol)
                            && ok_opt(&v.leader)
                            && v.members
                                .iter()
                                .all(|m| ok(&m.member_id) && ok_opt(&m.group_instance_id) && ok(&m.client_id) && ok(&m.client_host))
                    })
            }
        }
    }

    /// Key and value bytes as Kafka writes them: OffsetCommitKey v1,
    /// OffsetCommitValue v3 (v1 when expire_timestamp is Some),
    /// GroupMetadataKey v2, GroupMetadataValue v3; value None for tombstones.
    ///
    /// A value written as v1 loses `leader_epoch` (v1 has no such field), as in Kafka.
    ///
    /// # Panics
    /// If a string is longer than 32767 bytes: Kafka cannot encode it either, and
    /// writing a record we cannot read back would corrupt the log. Kafka rejects such
    /// strings when it parses the request; the coordinator checks [`fits`](Self::fits) first.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut key = Vec::new();
        match self {
            Self::Offset { group, topic, partition, value } => {
                key.put_i16(OFFSET_COMMIT_KEY_V1);
                put_string(&mut key, group);
                put_string(&mut key, topic);
                key.put_i32(*partition);
                (key, value.as_ref().map(encode_offset_value))
            }
            Self::Group { group, value } => {
                key.put_i16(GROUP_METADATA_KEY_V2);
                put_string(&mut key, group);
                (key, value.as_ref().map(encode_group_value))
            }
        }
    }

    /// Decodes any key version 0..=2 and any value version Kafka has written
    /// (OffsetCommitValue 0..=4, GroupMetadataValue 0..=4). Ok(None) for record
    /// types the classic coordinator skips (key versions 3..=15: KIP-848
    /// consumer groups, share groups) — those must not be an error.
    ///
    /// Every record type above 2 is skipped, not only 3..=15: Kafka 4.0 writes
    /// 16 (ConsumerGroupRegularExpression) and 4.1 streams groups from 17, and
    /// Kafka's loader ignores types it does not know ("a left over from an
    /// aborted upgrade"). The value of a skipped record is not looked at.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<GroupRecord>, RecordError> {
        let (version, body) = split_version(key, "key")?;
        match version {
            OFFSET_COMMIT_KEY_V0 | OFFSET_COMMIT_KEY_V1 => {
                let mut r = Reader::new(body, "OffsetCommitKey", version, false);
                let group = r.string("group")?;
                let topic = r.string("topic")?;
                let partition = r.i32("partition")?;
                r.finish()?;
                let value = value.map(decode_offset_value).transpose()?;
                Ok(Some(Self::Offset { group, topic, partition, value }))
            }
            GROUP_METADATA_KEY_V2 => {
                let mut r = Reader::new(body, "GroupMetadataKey", version, false);
                let group = r.string("group")?;
                r.finish()?;
                let value = value.map(decode_group_value).transpose()?;
                Ok(Some(Self::Group { group, value }))
            }
            3.. => Ok(None),
            _ => Err(RecordError::UnknownRecordType { version }),
        }
    }
}

fn encode_offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32 + v.metadata.len());
    match v.expire_timestamp {
        Some(expire_timestamp) => {
            buf.put_i16(OFFSET_VALUE_EXPIRE_VERSION);
            buf.put_i64(v.offset);
            put_string(&mut buf, &v.metadata);
            buf.put_i64(v.commit_timestamp);
            buf.put_i64(expire_timestamp);
        }
        None => {
            buf.put_i16(OFFSET_VALUE_VERSION);
            buf.put_i64(v.offset);
            buf.put_i32(v.leader_epoch);
            put_string(&mut buf, &v.metadata);
            buf.put_i64(v.commit_timestamp);
        }
    }
    buf
}

fn encode_group_value(v: &GroupValue) -> Vec<u8> {
    let mut buf = Vec::new();
    buf.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut buf, &v.protocol_type);
    buf.put_i32(v.generation);
    put_nullable_string(&mut buf, v.protocol.as_deref());
    put_nullable_string(&mut buf, v.leader.as_deref());
    buf.put_i64(v.current_state_timestamp);
    buf.put_i32(i32::try_from(v.members.len()).expect("a group's members fit in an i32 count"));
    for m in &v.members {
        put_string(&mut buf, &m.member_id);
        put_nullable_string(&mut buf, m.group_instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout);
        buf.put_i32(m.session_timeout);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf
}

fn put_nullable_string(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    assert!(s.len() <= MAX_STRING_BYTES, "a string of {} bytes does not fit Kafka's int16 length", s.len());
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).expect("bytes longer than i32::MAX cannot be encoded"));
    buf.put_slice(b);
}

/// OffsetCommitValue: v0 and v2 share a layout; v1 adds expireTimestamp; v3 adds
/// leaderEpoch after offset; v4 is v3, flexible.
fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
    let mut r = Reader::value(bytes, "OffsetCommitValue")?;
    let offset = r.i64("offset")?;
    let leader_epoch = if r.version >= 3 { r.i32("leaderEpoch")? } else { -1 };
    let metadata = r.string("metadata")?;
    let commit_timestamp = r.i64("commitTimestamp")?;
    // Kafka reads -1 (its default, OffsetCommitRequest.DEFAULT_TIMESTAMP) as "none".
    let expire_timestamp = if r.version == 1 { Some(r.i64("expireTimestamp")?).filter(|&t| t != -1) } else { None };
    r.tagged_fields()?;
    r.finish()?;
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp, expire_timestamp })
}

/// GroupMetadataValue: v1 adds members' rebalanceTimeout, v2 currentStateTimestamp,
/// v3 members' groupInstanceId; v4 is v3, flexible.
fn decode_group_value(bytes: &[u8]) -> Result<GroupValue, RecordError> {
    let mut r = Reader::value(bytes, "GroupMetadataValue")?;
    let protocol_type = r.string("protocolType")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_string("protocol")?;
    let leader = r.nullable_string("leader")?;
    let current_state_timestamp = if r.version >= 2 { r.i64("currentStateTimestamp")? } else { -1 };
    let count = r.array_len("members")?;
    // Every member takes at least one byte, so this bounds the allocation by the input.
    let mut members = Vec::with_capacity(count.min(r.remaining()));
    for _ in 0..count {
        members.push(decode_member(&mut r)?);
    }
    r.tagged_fields()?;
    r.finish()?;
    Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp, members })
}

fn decode_member(r: &mut Reader<'_>) -> Result<MemberValue, RecordError> {
    let member_id = r.string("memberId")?;
    let group_instance_id = if r.version >= 3 { r.nullable_string("groupInstanceId")? } else { None };
    let client_id = r.string("clientId")?;
    let client_host = r.string("clientHost")?;
    let rebalance_timeout = if r.version >= 1 { Some(r.i32("rebalanceTimeout")?) } else { None };
    let session_timeout = r.i32("sessionTimeout")?;
    let subscription = r.bytes("subscription")?;
    let assignment = r.bytes("assignment")?;
    r.tagged_fields()?;
    Ok(MemberValue {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        // v0 predates the rebalance timeout; Kafka loads the session timeout in its place.
        rebalance_timeout: rebalance_timeout.unwrap_or(session_timeout),
        session_timeout,
        subscription,
        assignment,
    })
}

/// The int16 version `bytes` start with, and the rest.
fn split_version<'a>(bytes: &'a [u8], part: &'static str) -> Result<(i16, &'a [u8]), RecordError> {
    let (version, rest) = bytes.split_first_chunk::<VERSION_BYTES>().ok_or(RecordError::NoVersion { part, len_bytes: bytes.len() })?;
    Ok((i16::from_be_bytes(*version), rest))
}

/// A bounds-checked reader over one struct of a known schema and version.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    schema: &'static str,
    version: i16,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], schema: &'static str, version: i16, flexible: bool) -> Self {
        Self { buf, pos: 0, schema, version, flexible }
    }

    /// A reader for a value of `schema`, whose versions are 0..=4, flexible from 4.
    fn value(bytes: &'a [u8], schema: &'static str) -> Result<Self, RecordError> {
        let (version, body) = split_version(bytes, "value")?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnknownValueVersion { schema, version });
        }
        Ok(Self::new(body, schema, version, version >= FIRST_FLEXIBLE_VERSION))
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn fail(&self, field: &'static str, problem: FieldProblem) -> RecordError {
        let (schema, version) = (self.schema, self.version);
        RecordError::Field { schema, version, field, at_byte: VERSION_BYTES + self.pos, problem }
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        let bytes = self.buf.get(self.pos..).and_then(|rest| rest.get(..len)).ok_or_else(|| self.fail(field, FieldProblem::Truncated))?;
        self.pos += len;
        debug_assert!(self.pos <= self.buf.len());
        Ok(bytes)
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let chunk =
            self.buf.get(self.pos..).and_then(|rest| rest.first_chunk::<N>()).ok_or_else(|| self.fail(field, FieldProblem::Truncated))?;
        self.pos += N;
        Ok(*chunk)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        self.fixed(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        self.fixed(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        self.fixed(field).map(i64::from_be_bytes)
    }

    /// Kafka's `readUnsignedVarint`: at most 5 bytes of 7 bits; bits past 32 are malformed.
    fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let [byte] = self.fixed::<1>(field)?;
            let payload = u32::from(byte & 0x7f);
            if index == 4 && payload > 0x0f {
                return Err(self.fail(field, FieldProblem::MalformedVarint));
            }
            value |= payload << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.fail(field, FieldProblem::MalformedVarint))
    }

    /// A length prefix, `None` for null: compact (varint of length + 1) when
    /// flexible, else int32 (`wide`: bytes, arrays) or int16 (strings), -1 null.
    fn length(&mut self, field: &'static str, wide: bool) -> Result<Option<usize>, RecordError> {
        let length = match (self.flexible, wide) {
            (true, _) => i64::from(self.unsigned_varint(field)?) - 1,
            (false, true) => i64::from(self.i32(field)?),
            (false, false) => i64::from(self.i16(field)?),
        };
        match length {
            -1 => Ok(None),
            // Non-negative and at most u32::MAX, so it fits a usize.
            0.. => Ok(Some(length as usize)),
            _ => Err(self.fail(field, FieldProblem::InvalidLength(length))),
        }
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        let Some(len) = self.length(field, false)? else { return Ok(None) };
        if len > MAX_STRING_BYTES {
            return Err(self.fail(field, FieldProblem::InvalidLength(len as i64)));
        }
        let raw = self.take(len, field)?;
        let s = std::str::from_utf8(raw).map_err(|_| self.fail(field, FieldProblem::InvalidUtf8))?;
        Ok(Some(s.to_owned()))
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?.ok_or_else(|| self.fail(field, FieldProblem::Null))
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        let len = self.length(field, true)?.ok_or_else(|| self.fail(field, FieldProblem::Null))?;
        self.take(len, field).map(Bytes::copy_from_slice)
    }

    fn array_len(&mut self, field: &'static str) -> Result<usize, RecordError> {
        self.length(field, true)?.ok_or_else(|| self.fail(field, FieldProblem::Null))
    }

    /// Skips a flexible struct's tagged fields; none of them is known to these schemas.
    fn tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.unsigned_varint("tagged fields")?;
        // Each field takes at least two bytes or fails, so a huge count ends soon.
        for _ in 0..count {
            self.unsigned_varint("tag")?;
            let size = self.unsigned_varint("tagged field size")?;
            self.take(size as usize, "tagged field")?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), RecordError> {
        match self.remaining() {
            0 => Ok(()),
            trailing_bytes => Err(RecordError::TrailingBytes { schema: self.schema, version: self.version, trailing_bytes }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(id: &str, instance: Option<&str>) -> MemberValue {
        MemberValue {
            member_id: id.into(),
            group_instance_id: instance.map(Into::into),
            client_id: "client".into(),
            client_host: "/10.0.0.1".into(),
            rebalance_timeout: 300_000,
            session_timeout: 45_000,
            subscription: Bytes::from_static(b"\x00\x01sub"),
            assignment: Bytes::new(),
        }
    }

    fn offset(expire_timestamp: Option<i64>) -> OffsetValue {
        let leader_epoch = if expire_timestamp.is_some() { -1 } else { 4 };
        OffsetValue { offset: 42, leader_epoch, metadata: "meta".into(), commit_timestamp: 1_700_000_000_000, expire_timestamp }
    }

    fn examples() -> Vec<GroupRecord> {
        let group = |value| GroupRecord::Group { group: "g".into(), value };
        let offsets = |value| GroupRecord::Offset { group: "g".into(), topic: "t".into(), partition: 7, value };
        vec![
            offsets(Some(offset(None))),
            offsets(Some(offset(Some(1_800_000_000_000)))),
            offsets(None),
            group(None),
            group(Some(GroupValue {
                protocol_type: "consumer".into(),
                generation: 0,
                protocol: None,
                leader: None,
                current_state_timestamp: -1,
                members: vec![],
            })),
            group(Some(GroupValue {
                protocol_type: "consumer".into(),
                generation: 3,
                protocol: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp: 1_700_000_000_000,
                members: vec![member("m1", None), member("m2", Some("static-2"))],
            })),
        ]
    }

    fn round_trip(record: &GroupRecord) -> Option<GroupRecord> {
        let (key, value) = record.encode();
        GroupRecord::decode(&key, value.as_deref()).unwrap()
    }

    #[test]
    fn every_variant_round_trips() {
        for record in examples() {
            assert_eq!(round_trip(&record).as_ref(), Some(&record));
        }
    }

    #[test]
    fn versions_written_are_kafkas() {
        for record in examples() {
            let (key, value) = record.encode();
            let value_version = value.map(|v| i16::from_be_bytes([v[0], v[1]]));
            let expected = match &record {
                GroupRecord::Offset { value: None, .. } => (1, None),
                GroupRecord::Offset { value: Some(v), .. } => (1, Some(if v.expire_timestamp.is_some() { 1 } else { 3 })),
                GroupRecord::Group { value, .. } => (2, value.as_ref().map(|_| 3)),
            };
            assert_eq!((i16::from_be_bytes([key[0], key[1]]), value_version), expected);
        }
    }

    /// Hand-computed from OffsetCommitKey.json (v1) and OffsetCommitValue.json (v3).
    #[test]
    fn offset_commit_golden_bytes() {
        let record = GroupRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(OffsetValue { offset: 42, leader_epoch: 5, metadata: "m".into(), commit_timestamp: 1000, expire_timestamp: None }),
        };
        #[rustfmt::skip]
        let key = [
            0, 1,                 // key version 1: OffsetCommitKey
            0, 1, b'g',           // group
            0, 1, b't',           // topic
            0, 0, 0, 3,           // partition
        ];
        #[rustfmt::skip]
        let value = [
            0, 3,                         // value version 3
            0, 0, 0, 0, 0, 0, 0, 42,      // offset
            0, 0, 0, 5,                   // leaderEpoch
            0, 1, b'm',                   // metadata
            0, 0, 0, 0, 0, 0, 0x03, 0xe8, // commitTimestamp 1000
        ];
        assert_eq!(record.encode(), (key.to_vec(), Some(value.to_vec())));
        assert_eq!(GroupRecord::decode(&key, Some(&value)).unwrap(), Some(record));
    }

    /// Hand-computed from GroupMetadataKey.json (v2) and GroupMetadataValue.json (v3).
    #[test]
    fn group_metadata_golden_bytes() {
        let record = GroupRecord::Group {
            group: "g".into(),
            value: Some(GroupValue {
                protocol_type: "consumer".into(),
                generation: 7,
                protocol: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp: 1700,
                members: vec![MemberValue {
                    member_id: "m1".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    rebalance_timeout: 300_000,
                    session_timeout: 45_000,
                    subscription: Bytes::from_static(&[1, 2]),
                    assignment: Bytes::new(),
                }],
            }),
        };
        let key = [0, 2, 0, 1, b'g'];
        #[rustfmt::skip]
        let value = [
            0, 3,                                       // value version 3
            0, 8, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r', // protocolType
            0, 0, 0, 7,                                 // generation
            0, 5, b'r', b'a', b'n', b'g', b'e',         // protocol
            0, 2, b'm', b'1',                           // leader
            0, 0, 0, 0, 0, 0, 0x06, 0xa4,               // currentStateTimestamp 1700
            0, 0, 0, 1,                                 // members: 1
            0, 2, b'm', b'1',                           //   memberId
            0xff, 0xff,                                 //   groupInstanceId: null
            0, 1, b'c',                                 //   clientId
            0, 2, b'/', b'h',                           //   clientHost
            0, 0x04, 0x93, 0xe0,                        //   rebalanceTimeout 300000
            0, 0, 0xaf, 0xc8,                           //   sessionTimeout 45000
            0, 0, 0, 2, 1, 2,                           //   subscription
            0, 0, 0, 0,                                 //   assignment
        ];
        assert_eq!(record.encode(), (key.to_vec(), Some(value.to_vec())));
        assert_eq!(GroupRecord::decode(&key, Some(&value)).unwrap(), Some(record));
    }

    fn offset_key() -> Vec<u8> {
        GroupRecord::Offset { group: "g".into(), topic: "t".into(), partition: 0, value: None }.encode().0
    }

    fn decode_offset(value: &[u8]) -> OffsetValue {
        match GroupRecord::decode(&offset_key(), Some(value)).unwrap() {
            Some(GroupRecord::Offset { value: Some(v), .. }) => v,
            other => panic!("not an offset commit: {other:?}"),
        }
    }

    fn decode_group(value: &[u8]) -> GroupValue {
        match GroupRecord::decode(&[0, 2, 0, 1, b'g'], Some(value)).unwrap() {
            Some(GroupRecord::Group { value: Some(v), .. }) => v,
            other => panic!("not group metadata: {other:?}"),
        }
    }

    #[test]
    fn old_offset_values_decode() {
        let mut head = vec![];
        head.put_i64(9); // offset
        let mut tail = vec![];
        tail.extend_from_slice(&[0, 2, b'm', b'd']); // metadata
        tail.put_i64(100); // commitTimestamp
        let expected = OffsetValue { offset: 9, leader_epoch: -1, metadata: "md".into(), commit_timestamp: 100, expire_timestamp: None };
        for version in [0i16, 2] {
            let bytes = [&version.to_be_bytes()[..], &head, &tail].concat();
            assert_eq!(decode_offset(&bytes), expected, "v{version}");
        }
        let v1 = [&1i16.to_be_bytes()[..], &head, &tail, &200i64.to_be_bytes()].concat();
        assert_eq!(decode_offset(&v1), OffsetValue { expire_timestamp: Some(200), ..expected.clone() });
        let v1_no_expiry = [&1i16.to_be_bytes()[..], &head, &tail, &(-1i64).to_be_bytes()].concat();
        assert_eq!(decode_offset(&v1_no_expiry), expected);
        // Key version 0 holds the same fields as 1.
        let key_v0 = [&[0u8, 0][..], &offset_key()[2..]].concat();
        assert!(matches!(GroupRecord::decode(&key_v0, None).unwrap(), Some(GroupRecord::Offset { value: None, .. })));
    }

    #[test]
    fn flexible_offset_value_decodes() {
        #[rustfmt::skip]
        let v4 = [
            0, 4,
            0, 0, 0, 0, 0, 0, 0, 9,       // offset
            0, 0, 0, 2,                   // leaderEpoch
            3, b'm', b'd',                // metadata: compact, length + 1
            0, 0, 0, 0, 0, 0, 0, 100,     // commitTimestamp
            1, 5, 2, 9, 9,                // one unknown tagged field (tag 5, 2 bytes): skipped
        ];
        let expected = OffsetValue { offset: 9, leader_epoch: 2, metadata: "md".into(), commit_timestamp: 100, expire_timestamp: None };
        assert_eq!(decode_offset(&v4), expected);
    }

    /// GroupMetadataValue bytes of `version` 0..=3 for one member `m` with
    /// session timeout 10, rebalance timeout 20 (v1+), instance id "i" (v3+).
    fn classic_group_value(version: i16) -> Vec<u8> {
        let mut b = vec![];
        b.put_i16(version);
        b.extend_from_slice(&[0, 1, b'c']); // protocolType
        b.put_i32(2); // generation
        b.extend_from_slice(&[0xff, 0xff]); // protocol: null
        b.extend_from_slice(&[0, 1, b'm']); // leader
        if version >= 2 {
            b.put_i64(77); // currentStateTimestamp
        }
        b.put_i32(1); // members
        b.extend_from_slice(&[0, 1, b'm']); // memberId
        if version >= 3 {
            b.extend_from_slice(&[0, 1, b'i']); // groupInstanceId
        }
        b.extend_from_slice(&[0, 2, b'c', b'l', 0, 2, b'/', b'h']); // clientId, clientHost
        if version >= 1 {
            b.put_i32(20); // rebalanceTimeout
        }
        b.put_i32(10); // sessionTimeout
        b.extend_from_slice(&[0, 0, 0, 1, 0xaa, 0, 0, 0, 1, 0xbb]); // subscription, assignment
        b
    }

    fn expected_group(rebalance_timeout: i32, current_state_timestamp: i64, group_instance_id: Option<&str>) -> GroupValue {
        GroupValue {
            protocol_type: "c".into(),
            generation: 2,
            protocol: None,
            leader: Some("m".into()),
            current_state_timestamp,
            members: vec![MemberValue {
                member_id: "m".into(),
                group_instance_id: group_instance_id.map(Into::into),
                client_id: "cl".into(),
                client_host: "/h".into(),
                rebalance_timeout,
                session_timeout: 10,
                subscription: Bytes::from_static(&[0xaa]),
                assignment: Bytes::from_static(&[0xbb]),
            }],
        }
    }

    #[test]
    fn old_group_values_decode() {
        let cases = [
            (0, expected_group(10, -1, None)),
            (1, expected_group(20, -1, None)),
            (2, expected_group(20, 77, None)),
            (3, expected_group(20, 77, Some("i"))),
        ];
        for (version, expected) in cases {
            assert_eq!(decode_group(&classic_group_value(version)), expected, "v{version}");
        }
    }

    #[test]
    fn flexible_group_value_decodes() {
        let mut b = vec![0, 4];
        b.extend_from_slice(&[2, b'c']); // protocolType
        b.put_i32(2); // generation
        b.push(0); // protocol: null
        b.extend_from_slice(&[2, b'm']); // leader
        b.put_i64(77); // currentStateTimestamp
        b.push(2); // members: 1
        b.extend_from_slice(&[2, b'm', 2, b'i', 3, b'c', b'l', 3, b'/', b'h']); // memberId, groupInstanceId, clientId, clientHost
        b.put_i32(20); // rebalanceTimeout
        b.put_i32(10); // sessionTimeout
        b.extend_from_slice(&[2, 0xaa, 2, 0xbb]); // subscription, assignment
        b.extend_from_slice(&[1, 0, 1, 0x42]); // member's tagged fields: tag 0 of 1 byte
        b.push(0); // the value's tagged fields: none
        assert_eq!(decode_group(&b), expected_group(20, 77, Some("i")));
    }

    #[test]
    fn other_record_types_are_skipped() {
        for version in [3i16, 8, 15, 16, 17, i16::MAX] {
            let key = [&version.to_be_bytes()[..], b"whatever"].concat();
            assert!(GroupRecord::decode(&key, Some(b"junk")).unwrap().is_none(), "type {version}");
            assert!(GroupRecord::decode(&key, None).unwrap().is_none(), "type {version}");
        }
    }

    #[test]
    fn bad_input_names_its_problem() {
        let err = |key: &[u8], value: Option<&[u8]>| GroupRecord::decode(key, value).unwrap_err();
        assert!(matches!(err(&[0], None), RecordError::NoVersion { part: "key", .. }));
        assert!(matches!(err(&[0xff, 0xff], None), RecordError::UnknownRecordType { version: -1 }));
        assert!(matches!(err(&offset_key(), Some(&[0, 5])), RecordError::UnknownValueVersion { version: 5, .. }));
        assert!(matches!(err(&offset_key(), Some(&[])), RecordError::NoVersion { part: "value", .. }));
        let trailing = [&offset_key()[..], &[0]].concat();
        assert!(matches!(err(&trailing, None), RecordError::TrailingBytes { trailing_bytes: 1, .. }));
        let null_group = [0, 2, 0xff, 0xff];
        let e = err(&null_group, None);
        assert!(matches!(e, RecordError::Field { problem: FieldProblem::Null, field: "group", .. }), "{e}");
        let bad_utf8 = [0, 2, 0, 1, 0xff];
        assert!(matches!(err(&bad_utf8, None), RecordError::Field { problem: FieldProblem::InvalidUtf8, .. }));
        let long_group = [0, 2, 0x7f, 0xff, b'g'];
        let e = err(&long_group, None);
        assert_eq!(e.to_string(), "GroupMetadataKey v2: field group at byte 4: runs past the end");
        // A member count far beyond the bytes: an error, not a huge allocation.
        let mut huge = classic_group_value(3);
        // version 2, protocolType 3, generation 4, protocol 2, leader 3, currentStateTimestamp 8
        let members_at = 22;
        assert_eq!(huge[members_at..members_at + 4], 1i32.to_be_bytes());
        huge[members_at..members_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(GroupRecord::decode(&[0, 2, 0, 1, b'g'], Some(&huge)).is_err());
    }

    /// The valid encodings the prefix and mutation tests start from.
    fn valid_encodings() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut all: Vec<_> = examples().iter().map(GroupRecord::encode).collect();
        all.extend((0..=3).map(|v| (vec![0, 2, 0, 1, b'g'], Some(classic_group_value(v)))));
        all
    }

    #[test]
    fn every_strict_prefix_is_an_error() {
        for (key, value) in valid_encodings() {
            for cut in 0..key.len() {
                assert!(GroupRecord::decode(&key[..cut], None).is_err(), "key cut at {cut}");
            }
            let Some(value) = value else { continue };
            for cut in 0..value.len() {
                assert!(GroupRecord::decode(&key, Some(&value[..cut])).is_err(), "value cut at {cut}");
            }
        }
    }

    fn arb_string() -> impl Strategy<Value = String> {
        "\\PC{0,12}"
    }

    fn arb_bytes() -> impl Strategy<Value = Bytes> {
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from)
    }

    fn arb_member() -> impl Strategy<Value = MemberValue> {
        (arb_string(), prop::option::of(arb_string()), arb_string(), arb_string(), any::<i32>(), any::<i32>(), arb_bytes(), arb_bytes())
            .prop_map(
                |(member_id, group_instance_id, client_id, client_host, rebalance_timeout, session_timeout, subscription, assignment)| {
                    MemberValue {
                        member_id,
                        group_instance_id,
                        client_id,
                        client_host,
                        rebalance_timeout,
                        session_timeout,
                        subscription,
                        assignment,
                    }
                },
            )
    }

    fn arb_record() -> impl Strategy<Value = GroupRecord> {
        // With an expire timestamp the value is v1, which has no leader epoch, and
        // -1 there means "none"; keep to what survives the trip.
        let offset_value = (any::<i64>(), any::<i32>(), arb_string(), any::<i64>(), prop::option::of(0..i64::MAX)).prop_map(
            |(offset, leader_epoch, metadata, commit_timestamp, expire_timestamp)| OffsetValue {
                offset,
                leader_epoch: if expire_timestamp.is_some() { -1 } else { leader_epoch },
                metadata,
                commit_timestamp,
                expire_timestamp,
            },
        );
        let group_value = (
            arb_string(),
            any::<i32>(),
            prop::option::of(arb_string()),
            prop::option::of(arb_string()),
            any::<i64>(),
            prop::collection::vec(arb_member(), 0..4),
        )
            .prop_map(|(protocol_type, generation, protocol, leader, current_state_timestamp, members)| GroupValue {
                protocol_type,
                generation,
                protocol,
                leader,
                current_state_timestamp,
                members,
            });
        prop_oneof![
            (arb_string(), arb_string(), any::<i32>(), prop::option::of(offset_value))
                .prop_map(|(group, topic, partition, value)| GroupRecord::Offset { group, topic, partition, value }),
            (arb_string(), prop::option::of(group_value)).prop_map(|(group, value)| GroupRecord::Group { group, value }),
        ]
    }

    proptest! {
        #[test]
        fn any_record_round_trips(record in arb_record()) {
            prop_assert_eq!(round_trip(&record), Some(record));
        }

        #[test]
        fn garbage_never_panics(
            key_version in -1i16..=4,
            key_tail in prop::collection::vec(any::<u8>(), 0..48),
            value_version in -1i16..=5,
            value_tail in prop::option::of(prop::collection::vec(any::<u8>(), 0..160)),
        ) {
            let key = [&key_version.to_be_bytes()[..], &key_tail].concat();
            let value = value_tail.map(|tail| [&value_version.to_be_bytes()[..], &tail].concat());
            let _ = GroupRecord::decode(&key, value.as_deref());
            let _ = GroupRecord::decode(&key_tail, Some(&key_tail));
        }

        #[test]
        fn mutated_encodings_never_panic(record in arb_record(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let (key, value) = record.encode();
            let mut key_bad = key.clone();
            let i = at.index(key_bad.len());
            key_bad[i] = byte;
            let _ = GroupRecord::decode(&key_bad, value.as_deref());
            if let Some(mut value) = value {
                let i = at.index(value.len());
                value[i] = byte;
                let _ = GroupRecord::decode(&key, Some(&value));
            }
        }
    }
}
