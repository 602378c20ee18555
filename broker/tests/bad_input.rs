//! Bad input over a real socket: each malformed frame closes its own
//! connection, each bad batch gets its Kafka error code, the broker stays
//! up, other connections carry on, and no log changes (the next good batch
//! lands at the offset right after the last good one).

mod support;

use std::io::Read;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::Decodable;
use support::Broker;
use support::wire::{batch, closed, connect, create_topic, produce, send_raw};

#[test]
fn malformed_frames_close_only_their_connection_and_bad_batches_get_their_error() {
    let b = Broker::start_with(&[("message.max.bytes", "2000"), ("auto.create.topics.enable", "true")]);
    let mut good = connect(&b);
    create_topic(&mut good, "bad-input");
    assert_eq!(produce(&mut good, "bad-input", batch(&[b"first"])), (0, 0));

    // Frames that close their connection: a negative size, a size over
    // socket.request.max.bytes, a header too short, an unknown API key, a
    // body that does not decode.
    let mut garbage_body = BytesMut::new();
    garbage_body.put_i16(0); // Produce
    garbage_body.put_i16(9);
    garbage_body.put_i32(1);
    garbage_body.put_slice(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    let frames: Vec<Vec<u8>> = vec![
        (-5i32).to_be_bytes().to_vec(),
        (200_000_000i32).to_be_bytes().to_vec(),
        [&3i32.to_be_bytes()[..], &[0, 3, 0]].concat(),
        [&8i32.to_be_bytes()[..], &999i16.to_be_bytes(), &0i16.to_be_bytes(), &1i32.to_be_bytes()].concat(),
        [&(garbage_body.len() as i32).to_be_bytes()[..], &garbage_body].concat(),
    ];
    for (i, f) in frames.iter().enumerate() {
        let mut s = connect(&b);
        send_raw(&mut s, f);
        assert!(closed(&mut s), "frame {i} should close its connection\n{}", b.log_tail(20));
    }

    // Bad batches on a healthy connection: each its own error code.
    let mut bad_crc = batch(&[b"x"]).to_vec();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(produce(&mut good, "bad-input", Bytes::from(bad_crc)).0, 2, "CORRUPT_MESSAGE");
    assert_eq!(
        produce(&mut good, "bad-input", Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])).0,
        87,
        "INVALID_RECORD for records that are not a batch, as Kafka answers"
    );
    assert_eq!(produce(&mut good, "no-such-topic-xyz", batch(&[b"x"])).0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let big = vec![7u8; 5000];
    assert_eq!(produce(&mut good, "bad-input", batch(&[&big])).0, 10, "MESSAGE_TOO_LARGE");
    let mut two = batch(&[b"a"]).to_vec();
    two.extend_from_slice(&batch(&[b"b"]));
    assert_eq!(produce(&mut good, "bad-input", Bytes::from(two)).0, 87, "INVALID_RECORD for two batches");

    // ApiVersions from the future: KIP-511's v0 error reply listing our range.
    let mut s = connect(&b);
    let mut f = BytesMut::new();
    f.put_i32(11);
    f.put_i16(ApiKey::ApiVersions as i16);
    f.put_i16(99);
    f.put_i32(11);
    f.put_i16(-1);
    f.put_u8(0); // header v2's empty tagged fields
    send_raw(&mut s, &f);
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut resp).unwrap();
    let mut resp = Bytes::from(resp);
    assert_eq!(resp.get_i32(), 11);
    let v: ApiVersionsResponse = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(v.error_code, 35);
    assert!(v.api_keys.iter().any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version >= 3));

    // Nothing above reached the log; the broker still serves the old connection.
    assert_eq!(produce(&mut good, "bad-input", batch(&[b"second", b"third"])), (0, 1));
    assert_eq!(produce(&mut good, "bad-input", batch(&[b"fourth"])), (0, 3));
}
