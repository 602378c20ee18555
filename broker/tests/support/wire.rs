//! Raw Kafka requests over a socket, encoded and decoded with kafka-protocol's
//! client side, for tests that need exact control of what is sent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::Broker;

pub fn connect(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(b.bootstrap()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

pub fn send_raw(s: &mut TcpStream, frame: &[u8]) {
    s.write_all(frame).unwrap();
}

/// Whether the broker closed the connection (EOF or reset) rather than answering.
pub fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

/// Writes one request frame.
pub fn send_request<Req: Encodable>(s: &mut TcpStream, key: ApiKey, version: i16, req: &Req) {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let mut body = BytesMut::new();
    header.encode(&mut body, key.request_header_version(version)).unwrap();
    req.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    s.write_all(&frame).unwrap();
}

/// Reads one response frame and decodes it.
pub fn read_response<Resp: Decodable>(s: &mut TcpStream, key: ApiKey, version: i16) -> Resp {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("a response");
    let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut resp).unwrap();
    let mut resp = Bytes::from(resp);
    let h = ResponseHeader::decode(&mut resp, key.response_header_version(version)).unwrap();
    assert_eq!(h.correlation_id, 7);
    Resp::decode(&mut resp, version).unwrap()
}

pub fn request<Req: Encodable, Resp: Decodable>(s: &mut TcpStream, key: ApiKey, version: i16, req: &Req) -> Resp {
    send_request(s, key, version, req);
    read_response(s, key, version)
}

pub fn produce(s: &mut TcpStream, topic: &str, records: Bytes) -> (i16, i64) {
    produce_acks(s, topic, records, -1)
}

/// A Produce of one batch to partition 0 of `topic`.
pub fn produce_request(topic: &str, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
    ])
}

/// One batch to partition 0 with these acks (not 0); (error code, base offset).
pub fn produce_acks(s: &mut TcpStream, topic: &str, records: Bytes, acks: i16) -> (i16, i64) {
    let resp: ProduceResponse = request(s, ApiKey::Produce, 9, &produce_request(topic, records, acks));
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn batch(values: &[&[u8]]) -> Bytes {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    Bytes::from(fjord_broker::protocol::records::build_batch(&values.iter().map(|v| v.to_vec()).collect::<Vec<_>>(), now))
}

pub fn create_topic(s: &mut TcpStream, name: &str) {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.into())))),
        ]))
        .with_allow_auto_topic_creation(true);
    for _ in 0..50 {
        let resp: MetadataResponse = request(s, ApiKey::Metadata, 12, &req);
        let t = &resp.topics[0];
        if t.error_code == 0 && t.partitions.first().is_some_and(|p| p.error_code == 0 && p.leader_id.0 >= 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("topic {name} never came online");
}
