//! Decoding checked against kafka-protocol's independent encoder, for every codec.

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
    let batch_length = i32::try_from(out.len() - batch::LOG_OVERHEAD).expect("small batch");
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
        batch[ATTRIBUTES_AT + 1] |= 0x08;
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
    let out_of_order =
        [framed(&body(1, &[varint(-1), varint(-1), varint(0)].concat())), framed(&body(1, &[varint(-1), varint(-1), varint(0)].concat()))]
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
