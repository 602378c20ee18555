//! The Fetch response (API key 1), encoded by hand so that record bytes are never copied.
//!
//! kafka-protocol's `FetchResponse` encoder writes `records` into the one buffer it encodes
//! into, so every fetched byte would be copied once more before it reaches the socket
//! (notes/openraft-and-kafka-protocol.md, pitfall 17). Here the small fields go into one
//! `BytesMut` and each partition's record slices (`Bytes` over mmap'd segment ranges) are
//! spliced between its pieces: the frame is a list of chunks for
//! [`super::vectored::write_all_vectored`]. Kafka does the same with its `RecordsWriter`
//! (apache/kafka PR 9008).
//!
//! Layout: Kafka 4.1's `FetchResponse.json`, as generated in kafka-protocol 0.18
//! (`messages/fetch_response.rs`), which the tests decode our bytes with:
//! - v7+ top-level `error_code` and `session_id`; v5+ `log_start_offset`; v11+
//!   `preferred_read_replica`;
//! - v12+ flexible: compact arrays, strings and records (unsigned varint length + 1), a tagged
//!   field section after every struct, and response header v1;
//! - v13+ topics by `topic_id`, not by name;
//! - v16+ top-level tagged field 0, `node_endpoints`;
//! - v18 changed only the request (KIP-1166), so its response is v17's.

use std::ops::RangeInclusive;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;

/// The versions this encoder writes. The Fetch handler advertises its own range, which must
/// lie inside this one.
pub const ENCODER_VERSIONS: RangeInclusive<i16> = 4..=18;

const FIRST_LOG_START_OFFSET_VERSION: i16 = 5;
const FIRST_SESSION_VERSION: i16 = 7;
const FIRST_PREFERRED_REPLICA_VERSION: i16 = 11;
const FIRST_FLEXIBLE_VERSION: i16 = 12;
const FIRST_TOPIC_ID_VERSION: i16 = 13;
const FIRST_NODE_ENDPOINTS_VERSION: i16 = 16;

/// The size prefix that starts every frame; it does not count itself.
const SIZE_PREFIX_BYTES: usize = 4;

/// A whole Fetch response, built by the Fetch handler for one request and consumed by
/// [`encode`]. Fields that the response version does not carry are left out of the frame
/// (see each field); nothing here is validated against the version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponseParts {
    pub throttle_time_ms: i32,
    /// The top-level error; v7+ only.
    pub error_code: i16,
    /// The fetch session (KIP-227), 0 for none; v7+ only.
    pub session_id: i32,
    pub topics: Vec<FetchTopicParts>,
    /// Endpoints of the `current_leader`s named in the partitions; v16+ only, as top-level
    /// tagged field 0, written only when non-empty.
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// One topic of a [`FetchResponseParts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopicParts {
    /// The topic name, written for v<13. `StrBytes` so that the request's name can be passed
    /// on without a copy.
    pub name: StrBytes,
    /// The topic id, written for v13+.
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartitionParts>,
}

/// One partition of a [`FetchTopicParts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionParts {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    /// v5+ only.
    pub log_start_offset: i64,
    /// `None` is written as a null array (what Kafka sends for read_uncommitted).
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// -1 for none; v11+ only.
    pub preferred_read_replica: i32,
    /// v12+ tagged field 0, written when `Some`.
    pub diverging_epoch: Option<EpochEndOffset>,
    /// v12+ tagged field 1, written when `Some`.
    pub current_leader: Option<LeaderIdAndEpoch>,
    /// v12+ tagged field 2, written when `Some`.
    pub snapshot_id: Option<SnapshotId>,
    /// The record bytes as slices, in order; the field's length is their sum. They go into the
    /// frame as they are, never copied. No slices is zero-length records, never null:
    /// librdkafka fails on null ("invalid MessageSetSize -1", KAFKA-18646).
    pub records: Vec<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub epoch: i32,
    pub end_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderIdAndEpoch {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotId {
    pub end_offset: i64,
    pub epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The whole response frame: the 4-byte size prefix, the response header (v0 below v12, v1
/// from v12) and the body. The chunks concatenated are exactly the bytes to put on the wire;
/// each non-empty record slice of `parts` is one chunk, the same allocation as the input.
///
/// # Panics
/// If `version` is outside [`ENCODER_VERSIONS`] (the dispatcher rejects those before any
/// handler runs), or if the frame or one partition's records exceed `i32::MAX` bytes
/// (`fetch.max.bytes` keeps them far below).
pub fn encode(correlation_id: i32, version: i16, parts: &FetchResponseParts) -> Vec<Bytes> {
    assert!(ENCODER_VERSIONS.contains(&version), "fetch response version {version} is outside {ENCODER_VERSIONS:?}");
    let mut frame = FrameBuilder { meta: BytesMut::with_capacity(estimated_meta_bytes(parts)), splices: Vec::new(), records_bytes: 0 };
    put_frame(&mut frame, correlation_id, version, parts);
    frame.finish()
}

/// The length of the frame [`encode`] would return, size prefix included, without building
/// it: one pass of arithmetic over the parts, for size accounting and quotas.
pub fn encoded_len(version: i16, parts: &FetchResponseParts) -> usize {
    assert!(ENCODER_VERSIONS.contains(&version));
    let mut counter = Counter::default();
    put_frame(&mut counter, 0, version, parts);
    counter.bytes
}

/// Where encoded bytes go: the frame being built, or a counter that only adds up lengths.
/// One encoding routine drives both, so [`encoded_len`] cannot drift from [`encode`].
trait Sink<'a> {
    fn put(&mut self, bytes: &[u8]);

    /// Splices record slices (their lengths summing to `records_bytes`) into the output.
    fn put_records(&mut self, records: &'a [Bytes], records_bytes: usize);

    fn put_i16(&mut self, value: i16) {
        self.put(&value.to_be_bytes());
    }

    fn put_i32(&mut self, value: i32) {
        self.put(&value.to_be_bytes());
    }

    fn put_i64(&mut self, value: i64) {
        self.put(&value.to_be_bytes());
    }

    fn put_unsigned_varint(&mut self, mut value: u32) {
        let mut encoded = [0u8; 5];
        let mut len = 0;
        while value >= 0x80 {
            encoded[len] = (value as u8) | 0x80;
            value >>= 7;
            len += 1;
        }
        encoded[len] = value as u8;
        self.put(&encoded[..=len]);
    }

    /// An array's length: int32 (-1 for null) in classic versions, unsigned varint
    /// length + 1 (0 for null) in flexible ones.
    fn put_array_len(&mut self, flexible: bool, len: Option<usize>) {
        let len = len.map(|len| i32::try_from(len).expect("array longer than i32::MAX"));
        match (flexible, len) {
            (true, None) => self.put_unsigned_varint(0),
            (true, Some(len)) => self.put_unsigned_varint(len as u32 + 1),
            (false, None) => self.put_i32(-1),
            (false, Some(len)) => self.put_i32(len),
        }
    }

    /// A string: int16 length (-1 for null) in classic versions, unsigned varint length + 1
    /// (0 for null) in flexible ones.
    fn put_string(&mut self, flexible: bool, value: Option<&str>) {
        match (flexible, value) {
            (true, None) => self.put_unsigned_varint(0),
            (true, Some(s)) => {
                let len = u32::try_from(s.len()).expect("string longer than u32::MAX");
                assert!(len < u32::MAX);
                self.put_unsigned_varint(len + 1);
                self.put(s.as_bytes());
            }
            (false, None) => self.put_i16(-1),
            (false, Some(s)) => {
                self.put_i16(i16::try_from(s.len()).expect("string longer than i16::MAX"));
                self.put(s.as_bytes());
            }
        }
    }

    /// The `records` field: int32 length in classic versions, unsigned varint length + 1 in
    /// flexible ones, then the slices themselves. Never null (see `FetchPartitionParts`).
    fn put_record_set(&mut self, flexible: bool, records: &'a [Bytes]) {
        let records_bytes: usize = records.iter().map(Bytes::len).sum();
        let len = i32::try_from(records_bytes).expect("partition records exceed i32::MAX bytes");
        if flexible {
            self.put_unsigned_varint(len as u32 + 1);
        } else {
            self.put_i32(len);
        }
        self.put_records(records, records_bytes);
    }

    /// One tagged field: tag, value size, value. The size comes from encoding the value once
    /// into a [`Counter`]; tagged values here are a few bytes.
    fn put_tagged<T: TaggedValue>(&mut self, tag: u32, value: &T)
    where
        Self: Sized,
    {
        let mut counter = Counter::default();
        value.put(&mut counter);
        self.put_unsigned_varint(tag);
        self.put_unsigned_varint(u32::try_from(counter.bytes).expect("tagged field too large"));
        value.put(self);
    }
}

/// A value carried in a tagged field; tagged fields exist only in flexible versions, so these
/// always encode flexibly, each ending with its own (empty) tagged field section.
trait TaggedValue {
    fn put<'a, S: Sink<'a>>(&self, sink: &mut S);
}

impl TaggedValue for EpochEndOffset {
    fn put<'a, S: Sink<'a>>(&self, sink: &mut S) {
        sink.put_i32(self.epoch);
        sink.put_i64(self.end_offset);
        sink.put_unsigned_varint(0);
    }
}

impl TaggedValue for LeaderIdAndEpoch {
    fn put<'a, S: Sink<'a>>(&self, sink: &mut S) {
        sink.put_i32(self.leader_id);
        sink.put_i32(self.leader_epoch);
        sink.put_unsigned_varint(0);
    }
}

impl TaggedValue for SnapshotId {
    fn put<'a, S: Sink<'a>>(&self, sink: &mut S) {
        sink.put_i64(self.end_offset);
        sink.put_i32(self.epoch);
        sink.put_unsigned_varint(0);
    }
}

/// The v16+ `node_endpoints` array, a compact array of structs.
struct NodeEndpoints<'p>(&'p [NodeEndpoint]);

impl TaggedValue for NodeEndpoints<'_> {
    fn put<'a, S: Sink<'a>>(&self, sink: &mut S) {
        sink.put_array_len(true, Some(self.0.len()));
        for endpoint in self.0 {
            sink.put_i32(endpoint.node_id);
            sink.put_string(true, Some(&endpoint.host));
            sink.put_i32(endpoint.port);
            sink.put_string(true, endpoint.rack.as_deref());
            sink.put_unsigned_varint(0);
        }
    }
}

fn put_frame<'a, S: Sink<'a>>(sink: &mut S, correlation_id: i32, version: i16, parts: &'a FetchResponseParts) {
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    // The size prefix; `FrameBuilder::finish` fills it in.
    sink.put_i32(0);
    sink.put_i32(correlation_id);
    if flexible {
        // Response header v1: an empty tagged field section.
        sink.put_unsigned_varint(0);
    }
    sink.put_i32(parts.throttle_time_ms);
    if version >= FIRST_SESSION_VERSION {
        sink.put_i16(parts.error_code);
        sink.put_i32(parts.session_id);
    }
    sink.put_array_len(flexible, Some(parts.topics.len()));
    for topic in &parts.topics {
        put_topic(sink, version, topic);
    }
    if flexible {
        let endpoints = version >= FIRST_NODE_ENDPOINTS_VERSION && !parts.node_endpoints.is_empty();
        sink.put_unsigned_varint(u32::from(endpoints));
        if endpoints {
            sink.put_tagged(0, &NodeEndpoints(&parts.node_endpoints));
        }
    }
}

fn put_topic<'a, S: Sink<'a>>(sink: &mut S, version: i16, topic: &'a FetchTopicParts) {
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    if version >= FIRST_TOPIC_ID_VERSION {
        sink.put(&topic.topic_id);
    } else {
        sink.put_string(flexible, Some(topic.name.as_str()));
    }
    sink.put_array_len(flexible, Some(topic.partitions.len()));
    for partition in &topic.partitions {
        put_partition(sink, version, partition);
    }
    if flexible {
        sink.put_unsigned_varint(0);
    }
}

fn put_partition<'a, S: Sink<'a>>(sink: &mut S, version: i16, partition: &'a FetchPartitionParts) {
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    sink.put_i32(partition.partition_index);
    sink.put_i16(partition.error_code);
    sink.put_i64(partition.high_watermark);
    sink.put_i64(partition.last_stable_offset);
    if version >= FIRST_LOG_START_OFFSET_VERSION {
        sink.put_i64(partition.log_start_offset);
    }
    let aborted = partition.aborted_transactions.as_deref();
    sink.put_array_len(flexible, aborted.map(<[_]>::len));
    for transaction in aborted.unwrap_or_default() {
        sink.put_i64(transaction.producer_id);
        sink.put_i64(transaction.first_offset);
        if flexible {
            sink.put_unsigned_varint(0);
        }
    }
    if version >= FIRST_PREFERRED_REPLICA_VERSION {
        sink.put_i32(partition.preferred_read_replica);
    }
    sink.put_record_set(flexible, &partition.records);
    if flexible {
        // Tagged fields go in ascending tag order, each only when present.
        let tagged = u32::from(partition.diverging_epoch.is_some())
            + u32::from(partition.current_leader.is_some())
            + u32::from(partition.snapshot_id.is_some());
        sink.put_unsigned_varint(tagged);
        if let Some(diverging_epoch) = &partition.diverging_epoch {
            sink.put_tagged(0, diverging_epoch);
        }
        if let Some(current_leader) = &partition.current_leader {
            sink.put_tagged(1, current_leader);
        }
        if let Some(snapshot_id) = &partition.snapshot_id {
            sink.put_tagged(2, snapshot_id);
        }
    }
}

/// A guess at the encoded size without the records, so that the buffer rarely grows; too
/// small only costs a reallocation.
fn estimated_meta_bytes(parts: &FetchResponseParts) -> usize {
    const FRAME_BYTES: usize = 32;
    const TOPIC_BYTES: usize = 24;
    const PARTITION_BYTES: usize = 96;
    const ABORTED_BYTES: usize = 17;
    let topics: usize = parts
        .topics
        .iter()
        .map(|topic| {
            let partitions: usize = topic
                .partitions
                .iter()
                .map(|p| {
                    let aborted = p.aborted_transactions.as_ref().map_or(0, Vec::len);
                    PARTITION_BYTES + ABORTED_BYTES * aborted
                })
                .sum();
            TOPIC_BYTES + topic.name.len() + partitions
        })
        .sum();
    let endpoints: usize = parts.node_endpoints.iter().map(|e| 16 + e.host.len() + e.rack.as_ref().map_or(0, String::len)).sum();
    FRAME_BYTES + topics + endpoints
}

/// Adds up lengths; the sink of [`encoded_len`] and of tagged field sizes.
#[derive(Default)]
struct Counter {
    bytes: usize,
}

impl Sink<'_> for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len();
    }

    fn put_records(&mut self, _records: &[Bytes], records_bytes: usize) {
        self.bytes += records_bytes;
    }
}

/// The frame of one [`encode`] call: every encoded field in `meta`, and where in `meta` each
/// partition's record slices belong.
struct FrameBuilder<'a> {
    meta: BytesMut,
    /// (offset in `meta`, slices to insert there), offsets non-decreasing.
    splices: Vec<(usize, &'a [Bytes])>,
    records_bytes: usize,
}

impl<'a> Sink<'a> for FrameBuilder<'a> {
    fn put(&mut self, bytes: &[u8]) {
        self.meta.put_slice(bytes);
    }

    fn put_records(&mut self, records: &'a [Bytes], records_bytes: usize) {
        if records_bytes > 0 {
            self.splices.push((self.meta.len(), records));
            self.records_bytes += records_bytes;
        }
    }
}

impl FrameBuilder<'_> {
    /// Fills in the size prefix and cuts `meta` (frozen once, then sliced: one allocation for
    /// all the small pieces) around the record slices.
    fn finish(mut self) -> Vec<Bytes> {
        let frame_bytes = self.meta.len() + self.records_bytes;
        let size = i32::try_from(frame_bytes - SIZE_PREFIX_BYTES).expect("fetch response exceeds i32::MAX bytes");
        self.meta[..SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
        let meta = self.meta.freeze();

        let slices: usize = self.splices.iter().map(|(_, records)| records.len()).sum();
        let mut chunks = Vec::with_capacity(2 * self.splices.len() + 1 + slices);
        let mut meta_start = 0;
        for (offset, records) in self.splices {
            debug_assert!(offset >= meta_start, "splices out of order");
            if offset > meta_start {
                chunks.push(meta.slice(meta_start..offset));
            }
            chunks.extend(records.iter().filter(|r| !r.is_empty()).cloned());
            meta_start = offset;
        }
        if meta_start < meta.len() {
            chunks.push(meta.slice(meta_start..));
        }
        debug_assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), frame_bytes);
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response as kp;
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
    use proptest::prelude::*;

    /// `data` cut at `cuts` into slices of one allocation, as a segment reader returns them.
    fn slices(data: &Bytes, cuts: &[usize]) -> Vec<Bytes> {
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(data.len());
        bounds.windows(2).map(|w| data.slice(w[0]..w[1])).collect()
    }

    fn partition(index: i32, records: Vec<Bytes>) -> FetchPartitionParts {
        FetchPartitionParts {
            partition_index: index,
            error_code: 0,
            high_watermark: 1_000 + i64::from(index),
            last_stable_offset: 900,
            log_start_offset: 7,
            aborted_transactions: None,
            preferred_read_replica: -1,
            diverging_epoch: None,
            current_leader: None,
            snapshot_id: None,
            records,
        }
    }

    fn sample_parts() -> FetchResponseParts {
        let segment = Bytes::from((0..=255u8).cycle().take(3000).collect::<Vec<u8>>());
        let mut with_data = partition(0, slices(&segment, &[100, 100, 1500]));
        with_data.aborted_transactions = Some(vec![
            AbortedTransaction { producer_id: 42, first_offset: 10 },
            AbortedTransaction { producer_id: i64::MAX, first_offset: -5 },
        ]);
        with_data.preferred_read_replica = 3;
        let mut not_leader = partition(1, Vec::new());
        not_leader.error_code = 6;
        not_leader.aborted_transactions = Some(Vec::new());
        not_leader.current_leader = Some(LeaderIdAndEpoch { leader_id: 2, leader_epoch: 9 });
        let mut diverging = partition(2, vec![Bytes::new(), segment.slice(5..6)]);
        diverging.diverging_epoch = Some(EpochEndOffset { epoch: 4, end_offset: 77 });
        diverging.snapshot_id = Some(SnapshotId { end_offset: 70, epoch: 3 });
        let mut unknown = partition(0, Vec::new());
        unknown.error_code = 3;
        FetchResponseParts {
            throttle_time_ms: 12,
            error_code: 0,
            session_id: 1234,
            topics: vec![
                FetchTopicParts {
                    name: StrBytes::from_static_str("orders"),
                    topic_id: [7; 16],
                    partitions: vec![with_data, not_leader, diverging],
                },
                FetchTopicParts { name: StrBytes::from_static_str("empty-topic"), topic_id: [0xAB; 16], partitions: Vec::new() },
                FetchTopicParts { name: StrBytes::from_string("x".repeat(249)), topic_id: [1; 16], partitions: vec![unknown] },
            ],
            node_endpoints: vec![
                NodeEndpoint { node_id: 2, host: "broker-2.example".into(), port: 9092, rack: Some("rack-b".into()) },
                NodeEndpoint { node_id: 5, host: String::new(), port: 1, rack: None },
            ],
        }
    }

    /// What a client can see of `parts` at `version`: fields the version lacks take the
    /// decoder's defaults, a tagged value equal to its default reads back as absent, and the
    /// records are one slice (or none when empty).
    fn on_the_wire(version: i16, parts: &FetchResponseParts) -> FetchResponseParts {
        let mut seen = parts.clone();
        if version < FIRST_SESSION_VERSION {
            seen.error_code = 0;
            seen.session_id = 0;
        }
        if version < FIRST_NODE_ENDPOINTS_VERSION {
            seen.node_endpoints.clear();
        }
        for topic in &mut seen.topics {
            if version >= FIRST_TOPIC_ID_VERSION {
                topic.name = StrBytes::new();
            } else {
                topic.topic_id = [0; 16];
            }
            for p in &mut topic.partitions {
                if version < FIRST_LOG_START_OFFSET_VERSION {
                    p.log_start_offset = -1;
                }
                if version < FIRST_PREFERRED_REPLICA_VERSION {
                    p.preferred_read_replica = -1;
                }
                if version < FIRST_FLEXIBLE_VERSION {
                    (p.diverging_epoch, p.current_leader, p.snapshot_id) = (None, None, None);
                }
                let default_epoch = EpochEndOffset { epoch: -1, end_offset: -1 };
                let default_leader = LeaderIdAndEpoch { leader_id: -1, leader_epoch: -1 };
                let default_snapshot = SnapshotId { end_offset: -1, epoch: -1 };
                p.diverging_epoch = p.diverging_epoch.filter(|v| *v != default_epoch);
                p.current_leader = p.current_leader.filter(|v| *v != default_leader);
                p.snapshot_id = p.snapshot_id.filter(|v| *v != default_snapshot);
                p.records = joined(&p.records);
            }
        }
        seen
    }

    fn joined(records: &[Bytes]) -> Vec<Bytes> {
        let all: Vec<u8> = records.iter().flat_map(|r| r.iter().copied()).collect();
        if all.is_empty() { Vec::new() } else { vec![Bytes::from(all)] }
    }

    /// kafka-protocol's view of a response, in our types, to compare with [`on_the_wire`].
    fn from_decoded(response: &FetchResponse) -> FetchResponseParts {
        FetchResponseParts {
            throttle_time_ms: response.throttle_time_ms,
            error_code: response.error_code,
            session_id: response.session_id,
            topics: response.responses.iter().map(topic_from_decoded).collect(),
            node_endpoints: response
                .node_endpoints
                .iter()
                .map(|e| NodeEndpoint {
                    node_id: e.node_id.0,
                    host: e.host.to_string(),
                    port: e.port,
                    rack: e.rack.as_ref().map(|r| r.to_string()),
                })
                .collect(),
        }
    }

    fn topic_from_decoded(topic: &kp::FetchableTopicResponse) -> FetchTopicParts {
        FetchTopicParts {
            name: topic.topic.0.clone(),
            topic_id: *topic.topic_id.as_bytes(),
            partitions: topic.partitions.iter().map(partition_from_decoded).collect(),
        }
    }

    fn partition_from_decoded(p: &kp::PartitionData) -> FetchPartitionParts {
        let records = p.records.as_ref().expect("records must never be null");
        let d = &p.diverging_epoch;
        let l = &p.current_leader;
        let s = &p.snapshot_id;
        FetchPartitionParts {
            partition_index: p.partition_index,
            error_code: p.error_code,
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
            aborted_transactions: p.aborted_transactions.as_ref().map(|txns| {
                txns.iter().map(|t| AbortedTransaction { producer_id: t.producer_id.0, first_offset: t.first_offset }).collect()
            }),
            preferred_read_replica: p.preferred_read_replica.0,
            diverging_epoch: (*d != kp::EpochEndOffset::default()).then_some(EpochEndOffset { epoch: d.epoch, end_offset: d.end_offset }),
            current_leader: (*l != kp::LeaderIdAndEpoch::default())
                .then_some(LeaderIdAndEpoch { leader_id: l.leader_id.0, leader_epoch: l.leader_epoch }),
            snapshot_id: (*s != kp::SnapshotId::default()).then_some(SnapshotId { end_offset: s.end_offset, epoch: s.epoch }),
            records: joined(std::slice::from_ref(records)),
        }
    }

    /// Encodes, then checks the frame against kafka-protocol's decoder (every field) and, when
    /// no tagged value was written with its default (kafka-protocol would leave it out), its
    /// encoder (every byte).
    fn check_round_trip(correlation_id: i32, version: i16, parts: &FetchResponseParts) {
        let chunks = encode(correlation_id, version, parts);
        let frame: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(frame.len(), encoded_len(version, parts), "v{version}");
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(size as usize, frame.len() - 4, "v{version}");

        let mut buf = Bytes::copy_from_slice(&frame[4..]);
        let header_version = FetchResponse::header_version(version);
        assert_eq!(header_version, i16::from(version >= 12));
        let header = ResponseHeader::decode(&mut buf, header_version).unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        assert!(header.unknown_tagged_fields.is_empty());
        let response = FetchResponse::decode(&mut buf, version).unwrap();
        assert!(buf.is_empty(), "v{version}: {} bytes left over", buf.len());
        assert!(response.unknown_tagged_fields.is_empty());
        assert_eq!(from_decoded(&response), on_the_wire(version, parts), "v{version}");

        let canonical = on_the_wire(version, parts).topics.iter().zip(&parts.topics).all(|(seen, sent)| {
            seen.partitions
                .iter()
                .zip(&sent.partitions)
                .all(|(a, b)| (a.diverging_epoch, a.current_leader, a.snapshot_id) == (b.diverging_epoch, b.current_leader, b.snapshot_id))
        });
        if canonical || version < 12 {
            let mut theirs = BytesMut::new();
            ResponseHeader::default().with_correlation_id(correlation_id).encode(&mut theirs, header_version).unwrap();
            response.encode(&mut theirs, version).unwrap();
            assert_eq!(&frame[4..], &theirs[..], "v{version}: bytes differ from kafka-protocol");
        }
    }

    #[test]
    fn every_version_round_trips_through_kafka_protocol() {
        let parts = sample_parts();
        for version in ENCODER_VERSIONS {
            check_round_trip(0x0102_0304, version, &parts);
        }
    }

    #[test]
    fn empty_and_edge_responses_round_trip() {
        let top_level_error = FetchResponseParts { error_code: 70, session_id: 0, ..FetchResponseParts::default() };
        let mut all_default_tags = partition(-1, Vec::new());
        all_default_tags.diverging_epoch = Some(EpochEndOffset { epoch: -1, end_offset: -1 });
        all_default_tags.current_leader = Some(LeaderIdAndEpoch { leader_id: -1, leader_epoch: -1 });
        let edge = FetchResponseParts {
            throttle_time_ms: i32::MAX,
            error_code: -1,
            session_id: i32::MIN,
            topics: vec![FetchTopicParts { name: StrBytes::new(), topic_id: [0xFF; 16], partitions: vec![all_default_tags] }],
            node_endpoints: Vec::new(),
        };
        for version in ENCODER_VERSIONS {
            check_round_trip(-1, version, &top_level_error);
            check_round_trip(i32::MIN, version, &edge);
        }
    }

    #[test]
    fn large_records_round_trip() {
        // 300,000 bytes: a three-byte varint length in flexible versions.
        let segment = Bytes::from(vec![0x42u8; 300_000]);
        let mut parts = FetchResponseParts::default();
        parts.topics.push(FetchTopicParts {
            name: StrBytes::from_static_str("big"),
            topic_id: [3; 16],
            partitions: vec![partition(0, slices(&segment, &[1, 65_536, 200_000])), partition(1, vec![segment.clone()])],
        });
        for version in ENCODER_VERSIONS {
            check_round_trip(5, version, &parts);
        }
    }

    #[test]
    fn record_slices_are_the_input_allocations() {
        let parts = sample_parts();
        for version in ENCODER_VERSIONS {
            let chunks = encode(1, version, &parts);
            let inputs = parts.topics.iter().flat_map(|t| &t.partitions).flat_map(|p| &p.records).filter(|r| !r.is_empty());
            // Every non-empty input slice is a chunk of its own, in order, pointing at the
            // same bytes; everything else is one allocation of encoded fields.
            let mut rest = chunks.iter();
            for input in inputs {
                let found = rest.by_ref().find(|c| c.as_ptr() == input.as_ptr());
                let chunk = found.expect("record slice missing or copied");
                assert_eq!(chunk.len(), input.len());
            }
        }
    }

    #[test]
    fn classic_versions_write_int32_record_lengths_and_flexible_ones_varints() {
        let mut parts = FetchResponseParts::default();
        let records = Bytes::from(vec![9u8; 200]);
        parts.topics.push(FetchTopicParts {
            name: StrBytes::from_static_str("t"),
            topic_id: [0; 16],
            partitions: vec![partition(0, vec![records.clone()])],
        });
        let v11: Vec<Bytes> = encode(0, 11, &parts);
        let before_records = &v11[0];
        assert_eq!(&before_records[before_records.len() - 4..], &200i32.to_be_bytes());
        let v12 = encode(0, 12, &parts);
        let before_records = &v12[0];
        // 201 as an unsigned varint: 0xC9 0x01.
        assert_eq!(&before_records[before_records.len() - 2..], &[0xC9, 0x01]);
        assert_eq!(v12[1].as_ptr(), records.as_ptr());
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<Bytes>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..4)
            .prop_map(|slices| slices.into_iter().map(Bytes::from).collect())
    }

    fn arb_partition() -> impl Strategy<Value = FetchPartitionParts> {
        (
            (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>()),
            prop::option::of(prop::collection::vec((any::<i64>(), any::<i64>()), 0..3)),
            any::<i32>(),
            (
                prop::option::of((any::<i32>(), any::<i64>())),
                prop::option::of((any::<i32>(), any::<i32>())),
                prop::option::of((any::<i64>(), any::<i32>())),
            ),
            arb_bytes(),
        )
            .prop_map(|(fixed, aborted, preferred, (diverging, leader, snapshot), records)| {
                let (partition_index, error_code, high_watermark, last_stable_offset, log_start) = fixed;
                FetchPartitionParts {
                    partition_index,
                    error_code,
                    high_watermark,
                    last_stable_offset,
                    log_start_offset: log_start,
                    aborted_transactions: aborted.map(|txns| {
                        txns.into_iter().map(|(producer_id, first_offset)| AbortedTransaction { producer_id, first_offset }).collect()
                    }),
                    preferred_read_replica: preferred,
                    diverging_epoch: diverging.map(|(epoch, end_offset)| EpochEndOffset { epoch, end_offset }),
                    current_leader: leader.map(|(leader_id, leader_epoch)| LeaderIdAndEpoch { leader_id, leader_epoch }),
                    snapshot_id: snapshot.map(|(end_offset, epoch)| SnapshotId { end_offset, epoch }),
                    records,
                }
            })
    }

    fn arb_parts() -> impl Strategy<Value = FetchResponseParts> {
        let topic = ("[a-zA-Z0-9._-]{0,40}", any::<[u8; 16]>(), prop::collection::vec(arb_partition(), 0..4))
            .prop_map(|(name, topic_id, partitions)| FetchTopicParts { name: StrBytes::from_string(name), topic_id, partitions });
        let endpoint = (any::<i32>(), "[a-z0-9.-]{0,20}", any::<i32>(), prop::option::of("[a-z0-9-]{0,8}"))
            .prop_map(|(node_id, host, port, rack)| NodeEndpoint { node_id, host, port, rack });
        ((any::<i32>(), any::<i16>(), any::<i32>()), prop::collection::vec(topic, 0..4), prop::collection::vec(endpoint, 0..3)).prop_map(
            |((throttle_time_ms, error_code, session_id), topics, node_endpoints)| FetchResponseParts {
                throttle_time_ms,
                error_code,
                session_id,
                topics,
                node_endpoints,
            },
        )
    }

    proptest! {
        #[test]
        fn random_parts_round_trip(
            correlation_id in any::<i32>(),
            version in ENCODER_VERSIONS,
            parts in arb_parts(),
        ) {
            check_round_trip(correlation_id, version, &parts);
        }
    }
}
