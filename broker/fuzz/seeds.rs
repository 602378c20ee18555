//! Writes the seed corpus of the `request` target: one valid request per
//! served API at its lowest and highest served version, produce requests
//! with each codec, and bare batches for the CRC-fixed path. Each request
//! seed is checked to decode cleanly first, so a seed that stops being valid
//! (a served range moved) fails here instead of silently seeding garbage.
//!
//! Usage: `cargo run --release --bin seeds -- corpus/request` (in broker/fuzz).

use std::io::Write;
use std::path::PathBuf;

use bytes::{BufMut, Bytes, BytesMut};
use fjord_broker::handlers::APIS;
use fjord_broker::protocol::decode_all::{CLOCK_MS, check_batch, decode_request};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

const TOPIC_ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic(text: &'static str) -> TopicName {
    TopicName(s(text))
}

/// A request frame (no size prefix), as dispatch receives it.
fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
    let mut b = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(i32::from(version) + 1)
        .with_client_id(Some(s("fjord-fuzz")));
    header.encode(&mut b, key.request_header_version(version).max(1)).expect("header encodes");
    body.encode(&mut b, version).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
    b.freeze()
}

fn put_varint(b: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.push((z as u8) | 0x80);
        z >>= 7;
    }
    b.push(z as u8);
}

/// A length-prefixed field; `None` is written as length -1 (null).
fn put_bytes(b: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(f) => {
            put_varint(b, f.len() as i64);
            b.extend_from_slice(f);
        }
        None => put_varint(b, -1),
    }
}

/// One record of the seed batches.
struct Record {
    key: Option<&'static [u8]>,
    value: Option<&'static [u8]>,
    headers: &'static [(&'static [u8], &'static [u8])],
}

/// A keyed record with a header, a tombstone, an unkeyed record.
const RECORDS: [Record; 3] = [
    Record { key: Some(b"k1"), value: Some(b"value one"), headers: &[(b"h", b"v")] },
    Record { key: Some(b"k2"), value: None, headers: &[] },
    Record { key: None, value: Some(b"three"), headers: &[] },
];

/// [`RECORDS`], encoded; timestamp deltas 0, 5, 10.
fn records() -> Vec<u8> {
    let mut out = Vec::new();
    for (delta, record) in RECORDS.iter().enumerate() {
        let mut r = vec![0u8];
        put_varint(&mut r, delta as i64 * 5);
        put_varint(&mut r, delta as i64);
        put_bytes(&mut r, record.key);
        put_bytes(&mut r, record.value);
        put_varint(&mut r, record.headers.len() as i64);
        for (k, v) in record.headers {
            put_bytes(&mut r, Some(k));
            put_bytes(&mut r, Some(v));
        }
        put_varint(&mut out, r.len() as i64);
        out.extend_from_slice(&r);
    }
    out
}

fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
    match codec {
        0 => raw.to_vec(),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw).expect("gzip");
            e.finish().expect("gzip")
        }
        2 => {
            // snappy-java's xerial framing, as the Java client writes it.
            let block = snap::raw::Encoder::new().compress_vec(raw).expect("snappy");
            let mut out = b"\x82SNAPPY\x00".to_vec();
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&(block.len() as i32).to_be_bytes());
            out.extend_from_slice(&block);
            out
        }
        3 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(raw).expect("lz4");
            e.finish().expect("lz4")
        }
        4 => zstd::encode_all(raw, 3).expect("zstd"),
        other => panic!("codec {other}"),
    }
}

/// A v2 batch of [`records`] with `codec`; idempotent (producer 5, epoch 0,
/// sequence 0) when asked.
fn batch(codec: i16, idempotent: bool) -> Bytes {
    let payload = compress(codec, &records());
    let mut b = Vec::new();
    b.put_i64(0);
    b.put_i32((61 - 12 + payload.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(codec);
    b.put_i32(2);
    b.put_i64(CLOCK_MS);
    b.put_i64(CLOCK_MS + 10);
    b.put_i64(if idempotent { 5 } else { -1 });
    b.put_i16(if idempotent { 0 } else { -1 });
    b.put_i32(if idempotent { 0 } else { -1 });
    b.put_i32(3);
    b.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn produce(version: i16, codec: i16) -> Bytes {
    use produce_request::{PartitionProduceData, TopicProduceData};
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(batch(codec, version >= 9)));
    let topic = TopicProduceData::default().with_name(topic("events")).with_partition_data(vec![partition]);
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    frame(ApiKey::Produce, version, &req)
}

fn fetch(version: i16) -> Bytes {
    use fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    let partition = FetchPartition::default().with_partition(0).with_fetch_offset(42).with_partition_max_bytes(1 << 20);
    let (mut t, mut gone) = (FetchTopic::default(), ForgottenTopic::default().with_partitions(vec![1]));
    if version >= 13 {
        t = t.with_topic_id(TOPIC_ID);
        gone = gone.with_topic_id(TOPIC_ID);
    } else {
        t = t.with_topic(topic("events"));
        gone = gone.with_topic(topic("events"));
    }
    let mut req = FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(500).with_min_bytes(1).with_max_bytes(50 << 20);
    req = req.with_topics(vec![t.with_partitions(vec![partition])]);
    if version >= 7 {
        req = req.with_session_id(0).with_session_epoch(-1).with_forgotten_topics_data(vec![gone]);
    }
    if version >= 11 {
        req = req.with_rack_id(s("rack-a"));
    }
    frame(ApiKey::Fetch, version, &req)
}

fn list_offsets(version: i16) -> Bytes {
    use list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let p = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1);
    let t = ListOffsetsTopic::default().with_name(topic("events")).with_partitions(vec![p]);
    let mut req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![t]);
    if version >= 10 {
        req = req.with_timeout_ms(1000);
    }
    frame(ApiKey::ListOffsets, version, &req)
}

fn metadata(version: i16) -> Bytes {
    use metadata_request::MetadataRequestTopic;
    let mut t = MetadataRequestTopic::default().with_name(Some(topic("events")));
    if version >= 10 {
        t = t.with_topic_id(TOPIC_ID);
    }
    let mut req = MetadataRequest::default().with_topics(Some(vec![t]));
    if version >= 4 {
        req = req.with_allow_auto_topic_creation(true);
    }
    frame(ApiKey::Metadata, version, &req)
}

fn api_versions(version: i16) -> Bytes {
    let mut req = ApiVersionsRequest::default();
    if version >= 3 {
        req = req.with_client_software_name(s("fjord-fuzz")).with_client_software_version(s("1.0"));
    }
    frame(ApiKey::ApiVersions, version, &req)
}

fn create_topics(version: i16) -> Bytes {
    use create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig};
    let config = CreatableTopicConfig::default().with_name(s("retention.ms")).with_value(Some(s("60000")));
    let plain =
        CreatableTopic::default().with_name(topic("made")).with_num_partitions(3).with_replication_factor(1).with_configs(vec![config]);
    let assigned = CreatableTopic::default()
        .with_name(topic("placed"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![CreatableReplicaAssignment::default().with_partition_index(0).with_broker_ids(vec![BrokerId(1)])]);
    let req = CreateTopicsRequest::default().with_topics(vec![plain, assigned]).with_timeout_ms(30_000);
    frame(ApiKey::CreateTopics, version, &req)
}

fn delete_topics(version: i16) -> Bytes {
    use delete_topics_request::DeleteTopicState;
    let req = DeleteTopicsRequest::default().with_timeout_ms(30_000);
    let req = if version >= 6 {
        req.with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic("gone"))),
            DeleteTopicState::default().with_topic_id(TOPIC_ID),
        ])
    } else {
        req.with_topic_names(vec![topic("gone")])
    };
    frame(ApiKey::DeleteTopics, version, &req)
}

fn init_producer_id(version: i16) -> Bytes {
    let mut req = InitProducerIdRequest::default().with_transaction_timeout_ms(60_000);
    if version >= 3 {
        req = req.with_producer_id(ProducerId(5)).with_producer_epoch(0);
    }
    frame(ApiKey::InitProducerId, version, &req)
}

fn offset_for_leader_epoch(version: i16) -> Bytes {
    use offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    let p = OffsetForLeaderPartition::default().with_partition(0).with_current_leader_epoch(3).with_leader_epoch(2);
    let t = OffsetForLeaderTopic::default().with_topic(topic("events")).with_partitions(vec![p]);
    let mut req = OffsetForLeaderEpochRequest::default().with_topics(vec![t]);
    if version >= 3 {
        req = req.with_replica_id(BrokerId(-1));
    }
    frame(ApiKey::OffsetForLeaderEpoch, version, &req)
}

fn describe_configs(version: i16) -> Bytes {
    use describe_configs_request::DescribeConfigsResource;
    let topic_resource = DescribeConfigsResource::default().with_resource_type(2).with_resource_name(s("events"));
    let broker = DescribeConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(s("1"))
        .with_configuration_keys(Some(vec![s("log.dirs")]));
    let mut req = DescribeConfigsRequest::default().with_resources(vec![topic_resource, broker]).with_include_synonyms(true);
    if version >= 3 {
        req = req.with_include_documentation(true);
    }
    frame(ApiKey::DescribeConfigs, version, &req)
}

fn alter_configs(version: i16) -> Bytes {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let config = AlterableConfig::default().with_name(s("cleanup.policy")).with_value(Some(s("compact")));
    let resource = AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("events")).with_configs(vec![config]);
    frame(ApiKey::AlterConfigs, version, &AlterConfigsRequest::default().with_resources(vec![resource]))
}

fn create_partitions(version: i16) -> Bytes {
    use create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
    let grow = CreatePartitionsTopic::default().with_name(topic("events")).with_count(4);
    let placed = CreatePartitionsTopic::default()
        .with_name(topic("placed"))
        .with_count(2)
        .with_assignments(Some(vec![CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)])]));
    frame(ApiKey::CreatePartitions, version, &CreatePartitionsRequest::default().with_topics(vec![grow, placed]).with_timeout_ms(30_000))
}

fn incremental_alter_configs(version: i16) -> Bytes {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let set = AlterableConfig::default().with_name(s("retention.ms")).with_config_operation(0).with_value(Some(s("1000")));
    let delete = AlterableConfig::default().with_name(s("segment.bytes")).with_config_operation(1);
    let append = AlterableConfig::default().with_name(s("cleanup.policy")).with_config_operation(2).with_value(Some(s("compact")));
    let resource =
        AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("events")).with_configs(vec![set, delete, append]);
    frame(ApiKey::IncrementalAlterConfigs, version, &IncrementalAlterConfigsRequest::default().with_resources(vec![resource]))
}

fn describe_cluster(version: i16) -> Bytes {
    let mut req = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    if version >= 1 {
        req = req.with_endpoint_type(1);
    }
    frame(ApiKey::DescribeCluster, version, &req)
}

fn describe_topic_partitions(version: i16) -> Bytes {
    use describe_topic_partitions_request::{Cursor, TopicRequest};
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(topic("events")), TopicRequest::default().with_name(topic("made"))])
        .with_response_partition_limit(2000)
        .with_cursor(Some(Cursor::default().with_topic_name(topic("events")).with_partition_index(1)));
    frame(ApiKey::DescribeTopicPartitions, version, &req)
}

/// The seed request of `key` at `version`.
fn request(key: ApiKey, version: i16) -> Bytes {
    match key {
        ApiKey::Produce => produce(version, 0),
        ApiKey::Fetch => fetch(version),
        ApiKey::ListOffsets => list_offsets(version),
        ApiKey::Metadata => metadata(version),
        ApiKey::ApiVersions => api_versions(version),
        ApiKey::CreateTopics => create_topics(version),
        ApiKey::DeleteTopics => delete_topics(version),
        ApiKey::InitProducerId => init_producer_id(version),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch(version),
        ApiKey::DescribeConfigs => describe_configs(version),
        ApiKey::AlterConfigs => alter_configs(version),
        ApiKey::CreatePartitions => create_partitions(version),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs(version),
        ApiKey::DescribeCluster => describe_cluster(version),
        ApiKey::DescribeTopicPartitions => describe_topic_partitions(version),
        other => panic!("{other:?} is served but has no seed"),
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: seeds <corpus dir>"));
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let mut seeds: Vec<(String, Bytes)> = Vec::new();
    for api in APIS {
        for version in [*api.versions.start(), *api.versions.end()] {
            seeds.push((format!("{:?}-v{version}", api.key), request(api.key, version)));
        }
    }
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (codec, name) in codecs.iter().enumerate() {
        let codec = codec as i16;
        let version = if codec == 4 { 12 } else { 7 + codec };
        seeds.push((format!("Produce-v{version}-{name}"), produce(version, codec)));
    }
    for (name, bytes) in &seeds {
        let decoded = decode_request(bytes.clone()).unwrap_or_else(|e| panic!("seed {name} does not decode: {e}"));
        assert!(decoded.batches.iter().all(Result::is_ok), "seed {name}: {:?}", decoded.batches);
    }
    for (codec, name) in codecs.iter().enumerate() {
        let b = batch(codec as i16, codec % 2 == 0);
        check_batch(b.clone()).unwrap_or_else(|e| panic!("batch {name}: {e}"));
        seeds.push((format!("batch-{name}"), b));
    }
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    }
    println!("{} seeds in {}", seeds.len(), dir.display());
}
