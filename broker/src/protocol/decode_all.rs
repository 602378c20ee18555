//! Every decoder a request's bytes reach before a handler touches broker
//! state, run the way dispatch runs them, with no broker behind it: the
//! header ([`parse_request`]), the served-version gate, the body of each
//! served API, and for Produce each partition's batch through the checks
//! `Partition::append` makes before it proposes (split, header, CRC, every
//! record, decompressed under the broker's own cap).
//!
//! The fuzz target in `broker/fuzz` and the hostile-input tests below drive
//! this, so what they find is what a socket can reach. Keep the match in
//! [`decode_request`] in step with `handlers::dispatch`; a test fails when a
//! served API is missing here.

use std::sync::LazyLock;

use bytes::Bytes;
use kafka_protocol::messages::*;

use super::frame::{FrameError, Request, decode_body, parse_request};
use crate::config::TopicConfig;
use crate::handlers::{api_versions, served};
use crate::partition::AppendError;
use crate::partition::validate::{single_batch, validate};

/// The clock batches are checked against. Fixed, so a fuzz input fails or
/// passes the same way on every run; seeds carry timestamps near it.
pub const CLOCK_MS: i64 = 1_700_000_000_000;

/// Kafka's topic defaults: what a topic created without overrides checks.
static TOPIC_CONFIG: LazyLock<TopicConfig> = LazyLock::new(TopicConfig::default);

/// What a request decoded to, as far as a test needs to know. Built and
/// dropped by [`decode_request`]'s caller; holds no request bytes.
#[derive(Debug)]
pub struct Decoded {
    pub api_key: ApiKey,
    pub version: i16,
    /// Produce only: each partition's verdict on its records, in request
    /// order. A failure here is an error code in the answer, not a close.
    pub batches: Vec<Result<(), AppendError>>,
}

/// Decodes `frame` (one request, size prefix stripped) as dispatch would.
/// `Err` is what makes the broker close the connection.
pub fn decode_request(frame: Bytes) -> Result<Decoded, FrameError> {
    let Request { api_key, header, body } = parse_request(frame)?;
    let version = header.request_api_version;
    let in_range = served(api_key).is_some_and(|v| v.contains(&version));
    let mut decoded = Decoded { api_key, version, batches: Vec::new() };
    if api_key == ApiKey::ApiVersions {
        // KIP-511: a version out of range is answered without reading the body.
        if in_range {
            let req: ApiVersionsRequest = decode_body(api_key, version, body)?;
            api_versions::handle(version, &req);
        }
        return Ok(decoded);
    }
    if !in_range {
        return Err(FrameError::BadBody { api: api_key, version, detail: "unsupported version".into() });
    }
    macro_rules! body {
        ($request:ty) => {{
            let _: $request = decode_body(api_key, version, body)?;
        }};
    }
    match api_key {
        ApiKey::Produce => {
            let req: ProduceRequest = decode_body(api_key, version, body)?;
            let partitions = req.topic_data.into_iter().flat_map(|t| t.partition_data);
            decoded.batches = partitions.map(|p| check_records(p.records)).collect();
        }
        ApiKey::Fetch => body!(FetchRequest),
        ApiKey::ListOffsets => body!(ListOffsetsRequest),
        ApiKey::Metadata => body!(MetadataRequest),
        ApiKey::CreateTopics => body!(CreateTopicsRequest),
        ApiKey::DeleteTopics => body!(DeleteTopicsRequest),
        ApiKey::InitProducerId => body!(InitProducerIdRequest),
        ApiKey::OffsetForLeaderEpoch => body!(OffsetForLeaderEpochRequest),
        ApiKey::DescribeConfigs => body!(DescribeConfigsRequest),
        ApiKey::AlterConfigs => body!(AlterConfigsRequest),
        ApiKey::CreatePartitions => body!(CreatePartitionsRequest),
        ApiKey::DescribeLogDirs => body!(DescribeLogDirsRequest),
        ApiKey::ElectLeaders => body!(ElectLeadersRequest),
        ApiKey::AlterPartitionReassignments => body!(AlterPartitionReassignmentsRequest),
        ApiKey::ListPartitionReassignments => body!(ListPartitionReassignmentsRequest),
        ApiKey::IncrementalAlterConfigs => body!(IncrementalAlterConfigsRequest),
        ApiKey::DescribeCluster => body!(DescribeClusterRequest),
        ApiKey::DescribeTopicPartitions => body!(DescribeTopicPartitionsRequest),
        ApiKey::OffsetCommit => body!(OffsetCommitRequest),
        ApiKey::OffsetFetch => body!(OffsetFetchRequest),
        ApiKey::FindCoordinator => body!(FindCoordinatorRequest),
        ApiKey::JoinGroup => body!(JoinGroupRequest),
        ApiKey::SyncGroup => body!(SyncGroupRequest),
        ApiKey::Heartbeat => body!(HeartbeatRequest),
        ApiKey::LeaveGroup => body!(LeaveGroupRequest),
        ApiKey::DescribeGroups => body!(DescribeGroupsRequest),
        ApiKey::ListGroups => body!(ListGroupsRequest),
        ApiKey::DeleteGroups => body!(DeleteGroupsRequest),
        ApiKey::OffsetDelete => body!(OffsetDeleteRequest),
        ApiKey::DescribeQuorum => body!(DescribeQuorumRequest),
        ApiKey::SaslHandshake => body!(SaslHandshakeRequest),
        ApiKey::SaslAuthenticate => body!(SaslAuthenticateRequest),
        ApiKey::DescribeClientQuotas => body!(DescribeClientQuotasRequest),
        ApiKey::DescribeUserScramCredentials => body!(DescribeUserScramCredentialsRequest),
        ApiKey::AlterUserScramCredentials => body!(AlterUserScramCredentialsRequest),
        ApiKey::DescribeAcls => body!(DescribeAclsRequest),
        ApiKey::CreateAcls => body!(CreateAclsRequest),
        ApiKey::DeleteAcls => body!(DeleteAclsRequest),
        ApiKey::AddPartitionsToTxn => body!(AddPartitionsToTxnRequest),
        ApiKey::AddOffsetsToTxn => body!(AddOffsetsToTxnRequest),
        ApiKey::EndTxn => body!(EndTxnRequest),
        ApiKey::WriteTxnMarkers => body!(WriteTxnMarkersRequest),
        ApiKey::TxnOffsetCommit => body!(TxnOffsetCommitRequest),
        ApiKey::DescribeProducers => body!(DescribeProducersRequest),
        ApiKey::DescribeTransactions => body!(DescribeTransactionsRequest),
        ApiKey::ListTransactions => body!(ListTransactionsRequest),
        other => return Err(FrameError::BadBody { api: other, version, detail: "not served".into() }),
    }
    Ok(decoded)
}

/// One partition's `records`, as the produce handler takes them: exactly one
/// whole batch, then [`check_batch`].
fn check_records(records: Option<Bytes>) -> Result<(), AppendError> {
    let records = records.unwrap_or_default();
    let (_, batch) = single_batch(&records)?;
    debug_assert_eq!(batch.len(), records.len());
    check_batch(batch)
}

/// The checks `Partition::append` makes on one client batch before it takes
/// the producer lock: Kafka's validation (header, CRC, every record, under
/// the broker's decompression cap) and the producer fields.
pub fn check_batch(batch: Bytes) -> Result<(), AppendError> {
    let validated = validate(batch, &TOPIC_CONFIG, CLOCK_MS)?;
    debug_assert!(validated.header.record_count > 0, "validate passed a batch without records");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::handlers::APIS;
    use crate::protocol::records::build_batch;

    /// Records the largest allocation the current thread asks for, so a test
    /// can tell "failed cleanly" from "failed after reserving gigabytes"
    /// (overcommit lets the latter pass unnoticed otherwise).
    struct Tracking;

    thread_local! {
        static LARGEST_BYTES: Cell<usize> = const { Cell::new(0) };
    }

    fn note(size_bytes: usize) {
        // `try_with`: the slot is gone while the thread is torn down.
        let _ = LARGEST_BYTES.try_with(|l| l.set(l.get().max(size_bytes)));
    }

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Tracking {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Tracking = Tracking;

    /// No hostile input below may make the broker reserve more than this.
    const ALLOCATION_MAX_BYTES: usize = 1 << 20;

    /// `decode_request` on `frame`, and the largest allocation it made.
    fn decode_measured(frame: Bytes) -> (Result<Decoded, FrameError>, usize) {
        LARGEST_BYTES.with(|l| l.set(0));
        let result = decode_request(frame);
        (result, LARGEST_BYTES.with(Cell::get))
    }

    /// A frame: header v1 or v2 (by the API's flexible versions), then `body`.
    fn frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("fuzz")));
        header.encode(&mut b, key.request_header_version(version).max(1)).unwrap();
        b.put_slice(body);
        b.freeze()
    }

    fn encoded<T: Encodable>(request: &T, version: i16) -> Vec<u8> {
        let mut b = BytesMut::new();
        request.encode(&mut b, version).unwrap();
        b.to_vec()
    }

    fn produce(version: i16, records: Bytes) -> Bytes {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        let partition = PartitionProduceData::default().with_index(0).with_records(Some(records));
        let topic = TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("t"))).with_partition_data(vec![partition]);
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![topic]);
        frame(ApiKey::Produce, version, &encoded(&req, version))
    }

    /// A valid one-record batch with its record count (and last offset
    /// delta) rewritten, CRC recomputed, so only the records contradict it.
    fn batch_claiming(record_count: i32) -> Bytes {
        let mut b = build_batch(&[b"v".to_vec()], CLOCK_MS);
        b[23..27].copy_from_slice(&record_count.wrapping_sub(1).to_be_bytes());
        b[57..61].copy_from_slice(&record_count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    /// Each case must be an error (`Err`, or a rejected batch for Produce),
    /// reached without a panic or a large allocation.
    #[test]
    fn hostile_requests_are_errors_without_panics_or_large_allocations() {
        let varint_max: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f];
        let cases: Vec<(&str, Bytes)> = vec![
            // Metadata v1 (non-flexible): topics array of i32::MAX entries.
            ("huge array count", frame(ApiKey::Metadata, 1, &[0x7f, 0xff, 0xff, 0xff, 0, 1, b'a'])),
            // Metadata v12 (flexible): compact topics array of u32::MAX - 1 entries.
            ("huge compact array count", frame(ApiKey::Metadata, 12, &[varint_max, &[0, 0, 0]].concat())),
            // Metadata v1: one topic whose name length is -2.
            ("negative string length", frame(ApiKey::Metadata, 1, &[0, 0, 0, 1, 0xff, 0xfe])),
            // Metadata v4: a topics array of length -7 (only -1, null, is allowed).
            ("negative array length", frame(ApiKey::Metadata, 4, &[0xff, 0xff, 0xff, 0xf9, 0])),
            // Metadata v12: one topic (id, then a compact name of 99 bytes) with 3 bytes left.
            ("truncated compact string", frame(ApiKey::Metadata, 12, &[&[2u8][..], &[0; 16], &[100, b'a', b'b', b'c']].concat())),
            // CreateTopics v5: nothing but continuation bits (the crate stops a varint
            // after five bytes; what follows must still fail).
            ("over-long varints", frame(ApiKey::CreateTopics, 5, &[0xff; 12])),
            // Produce v9: compact records bytes claiming u32::MAX - 1 bytes.
            (
                "huge compact bytes",
                frame(ApiKey::Produce, 9, &[&[0u8, 0xff, 0xff, 0, 0, 0x03, 0xe8, 2, 2, b't', 2, 0, 0, 0, 0][..], varint_max].concat()),
            ),
            // A client id claiming 32,000 bytes in a 12-byte frame.
            ("client id past the end", Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 9, 0x7d, 0, b'x', b'y'])),
            // DescribeCluster v0: its boolean, then no tagged-field count.
            ("truncated body", frame(ApiKey::DescribeCluster, 0, &[1])),
            ("unserved version", frame(ApiKey::Produce, 2, &[])),
            ("unserved api", frame(ApiKey::ConsumerGroupHeartbeat, 0, &[])),
        ];
        for (name, f) in cases {
            let (result, largest_bytes) = decode_measured(f);
            assert!(result.is_err(), "{name}: decoded to {result:?}");
            assert!(largest_bytes <= ALLOCATION_MAX_BYTES, "{name}: allocated {largest_bytes} bytes");
        }
    }

    #[test]
    fn batches_claiming_absurd_record_counts_are_rejected_cheaply() {
        let claims = [i32::MAX, i32::MIN, 0, 2];
        for (version, claim) in [3, 9, 12].into_iter().flat_map(|v| claims.map(|c| (v, c))) {
            let (result, largest_bytes) = decode_measured(produce(version, batch_claiming(claim)));
            let decoded = result.unwrap_or_else(|e| panic!("v{version} claiming {claim}: {e}"));
            assert!(matches!(decoded.batches.as_slice(), [Err(AppendError::Corrupt(_))]), "v{version} claiming {claim}: {decoded:?}");
            assert!(largest_bytes <= ALLOCATION_MAX_BYTES, "v{version} claiming {claim}: allocated {largest_bytes} bytes");
        }
        let good = decode_request(produce(9, batch_claiming(1))).unwrap();
        assert!(matches!(good.batches.as_slice(), [Ok(())]), "{good:?}");
    }

    /// Every served API and version decodes its default request here, so a
    /// key added to `APIS` but not to [`decode_request`] fails this test.
    #[test]
    fn every_served_version_decodes() {
        macro_rules! default_body {
            ($key:expr, $version:expr, $($api:ident => $request:ty),* $(,)?) => {
                match $key {
                    $(ApiKey::$api => encoded(&<$request>::default(), $version),)*
                    other => panic!("{other:?} is served but has no case here"),
                }
            };
        }
        for api in APIS {
            for version in api.versions.clone() {
                let body = default_body!(api.key, version,
                    Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
                    Metadata => MetadataRequest, ApiVersions => ApiVersionsRequest, CreateTopics => CreateTopicsRequest,
                    DeleteTopics => DeleteTopicsRequest, InitProducerId => InitProducerIdRequest,
                    OffsetForLeaderEpoch => OffsetForLeaderEpochRequest, DescribeConfigs => DescribeConfigsRequest,
                    AlterConfigs => AlterConfigsRequest, CreatePartitions => CreatePartitionsRequest,
                    IncrementalAlterConfigs => IncrementalAlterConfigsRequest, DescribeCluster => DescribeClusterRequest,
                    DescribeTopicPartitions => DescribeTopicPartitionsRequest,
                    OffsetCommit => OffsetCommitRequest, OffsetFetch => OffsetFetchRequest, FindCoordinator => FindCoordinatorRequest, JoinGroup => JoinGroupRequest, SyncGroup => SyncGroupRequest, Heartbeat => HeartbeatRequest, LeaveGroup => LeaveGroupRequest, DescribeGroups => DescribeGroupsRequest, ListGroups => ListGroupsRequest, DeleteGroups => DeleteGroupsRequest, OffsetDelete => OffsetDeleteRequest,
                    DescribeLogDirs => DescribeLogDirsRequest, ElectLeaders => ElectLeadersRequest, AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
                    ListPartitionReassignments => ListPartitionReassignmentsRequest,
                    DescribeQuorum => DescribeQuorumRequest, SaslHandshake => SaslHandshakeRequest,
                    SaslAuthenticate => SaslAuthenticateRequest, DescribeClientQuotas => DescribeClientQuotasRequest,
                    DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
                    AlterUserScramCredentials => AlterUserScramCredentialsRequest,
                    DescribeAcls => DescribeAclsRequest, CreateAcls => CreateAclsRequest, DeleteAcls => DeleteAclsRequest,
                    AddPartitionsToTxn => AddPartitionsToTxnRequest, AddOffsetsToTxn => AddOffsetsToTxnRequest,
                    EndTxn => EndTxnRequest, WriteTxnMarkers => WriteTxnMarkersRequest,
                    TxnOffsetCommit => TxnOffsetCommitRequest, DescribeProducers => DescribeProducersRequest,
                    DescribeTransactions => DescribeTransactionsRequest, ListTransactions => ListTransactionsRequest,
                );
                let decoded = decode_request(frame(api.key, version, &body));
                let decoded = decoded.unwrap_or_else(|e| panic!("{:?} v{version}: {e}", api.key));
                assert_eq!((decoded.api_key, decoded.version), (api.key, version));
            }
        }
    }
}
