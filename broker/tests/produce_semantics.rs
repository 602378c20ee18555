//! Produce as Kafka answers it, over a raw socket: idempotent producers
//! deduplicated and sequence-checked, acks validated, acks=0 silent unless
//! something fails (then the connection closes).

mod support;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use support::Broker;
use support::wire::{batch, closed, connect, create_topic, produce, produce_acks, produce_request, send_request};

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_REQUIRED_ACKS: i16 = 21;

/// A batch of `values` from producer `pid` at `epoch`, first sequence `seq`.
fn idempotent(values: &[&[u8]], pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut b = batch(values).to_vec();
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

#[test]
fn idempotent_producers_are_deduplicated_and_sequence_checked() {
    let b = Broker::start();
    let mut s = connect(&b);
    create_topic(&mut s, "idem");
    let t = "idem";
    let pid = 4242;
    let first = idempotent(&[b"a", b"b"], pid, 0, 0);
    assert_eq!(produce(&mut s, t, first.clone()), (0, 0));
    // A retry of a written batch gets its original offset and is not written again.
    assert_eq!(produce(&mut s, t, first), (0, 0));
    assert_eq!(produce(&mut s, t, idempotent(&[b"c"], pid, 0, 2)), (0, 2));
    // A gap.
    assert_eq!(produce(&mut s, t, idempotent(&[b"x"], pid, 0, 9)).0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    // KIP-360: a bumped epoch restarts at 0, and then the old epoch is fenced.
    assert_eq!(produce(&mut s, t, idempotent(&[b"d"], pid, 1, 0)), (0, 3));
    assert_eq!(produce(&mut s, t, idempotent(&[b"y"], pid, 0, 3)).0, INVALID_PRODUCER_EPOCH);
    assert_eq!(produce(&mut s, t, idempotent(&[b"z"], pid, 1, 5)).0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    // A new producer may start anywhere.
    assert_eq!(produce(&mut s, t, idempotent(&[b"e"], pid + 1, 0, 77)), (0, 4));
    // Nothing refused or duplicated took an offset.
    assert_eq!(produce(&mut s, t, batch(&[b"f"])), (0, 5));

    // Five pipelined requests of one producer, written before any answer is read.
    let mut p = connect(&b);
    for i in 0..5 {
        send_request(&mut p, ApiKey::Produce, 9, &produce_request(t, idempotent(&[b"p"], pid + 2, 0, i), -1));
    }
    for i in 0..5i64 {
        let resp: kafka_protocol::messages::ProduceResponse = support::wire::read_response(&mut p, ApiKey::Produce, 9);
        let part = &resp.responses[0].partition_responses[0];
        assert_eq!((part.error_code, part.base_offset), (0, 6 + i), "pipelined request {i}");
    }
}

#[test]
fn acks_are_checked_and_acks_zero_closes_only_on_failure() {
    let b = Broker::start();
    let mut s = connect(&b);
    create_topic(&mut s, "acks");
    assert_eq!(produce_acks(&mut s, "acks", batch(&[b"x"]), 2).0, INVALID_REQUIRED_ACKS);
    assert_eq!(produce_acks(&mut s, "acks", batch(&[b"one"]), 1), (0, 0));

    // acks=0: no answer; the next request on the connection is answered.
    send_request(&mut s, ApiKey::Produce, 9, &produce_request("acks", batch(&[b"silent"]), 0));
    assert_eq!(produce(&mut s, "acks", batch(&[b"after"])), (0, 2), "the acks=0 batch took offset 1");

    // acks=0 to an unknown topic: Kafka closes the connection.
    send_request(&mut s, ApiKey::Produce, 9, &produce_request("no-such-topic-acks0", batch(&[b"x"]), 0));
    assert!(closed(&mut s), "acks=0 with an error must close the connection");
    let mut again = connect(&b);
    assert_eq!(produce(&mut again, "acks", batch(&[b"last"])), (0, 3));
}

#[test]
fn produce_v13_names_topics_by_id() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, metadata_request};
    use kafka_protocol::protocol::StrBytes;
    use support::wire::request;

    let b = Broker::start();
    let mut s = connect(&b);
    create_topic(&mut s, "by-id");
    let meta: MetadataResponse = request(
        &mut s,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(kafka_protocol::messages::TopicName(StrBytes::from_static_str("by-id")))),
        ])),
    );
    let id = meta.topics[0].topic_id;
    assert!(!id.is_nil(), "Metadata v12 carries the topic id");
    let by_id = |id: uuid::Uuid| {
        ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default()
                .with_topic_id(id)
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&[b"v13"])))]),
        ])
    };
    let resp: ProduceResponse = request(&mut s, ApiKey::Produce, 13, &by_id(id));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((resp.responses[0].topic_id, p.error_code, p.base_offset), (id, 0, 0));
    let resp: ProduceResponse = request(&mut s, ApiKey::Produce, 13, &by_id(uuid::Uuid::from_u128(42)));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 100, "UNKNOWN_TOPIC_ID");
    assert_eq!(produce(&mut s, "by-id", batch(&[b"v9"])), (0, 1));
}
