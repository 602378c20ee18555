//! A partition's side of transactions over a raw socket: transactional
//! batches hold back the last stable offset, WriteTxnMarkers ends them (as
//! `kafka-transactions abort` does, without EndTxn), and read_committed
//! Fetch and ListOffsets stop at the last stable offset and report aborted
//! transactions. The coordinator only opens the transactions.
//! `FJORD_TEST_BROKER=kafka` runs it against Apache Kafka.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::Broker;
use support::wire::{batch, connect, create_topic, produce, request};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const TOPIC: &str = "txn-partition";

/// A batch of `values` from producer `pid` at epoch 0, first sequence `seq`.
fn producer_batch(values: &[&[u8]], pid: i64, seq: i32, transactional: bool) -> Bytes {
    let mut b = batch(values).to_vec();
    if transactional {
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    }
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// Retries `f` while it answers one of Kafka's retriable coordinator errors
/// (the transaction topic is being created or loaded, or a transaction is
/// still completing).
fn retrying<T>(mut f: impl FnMut() -> Result<T, i16>) -> T {
    const RETRIABLE: [i16; 4] = [14, 15, 16, 51];
    for _ in 0..150 {
        match f() {
            Ok(v) => return v,
            Err(code) if RETRIABLE.contains(&code) => std::thread::sleep(std::time::Duration::from_millis(200)),
            Err(code) => panic!("error {code}"),
        }
    }
    panic!("still retrying");
}

/// A transactional producer's id (epoch 0), with the partition added to its transaction.
fn transactional_producer(s: &mut std::net::TcpStream, id: &'static str) -> i64 {
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str(id)).with_key_type(1);
    retrying(|| {
        let resp: FindCoordinatorResponse = request(s, ApiKey::FindCoordinator, 3, &find);
        if resp.error_code == 0 { Ok(()) } else { Err(resp.error_code) }
    });
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(id))))
        .with_transaction_timeout_ms(60_000);
    let pid = retrying(|| {
        let resp: InitProducerIdResponse = request(s, ApiKey::InitProducerId, 4, &init);
        if resp.error_code == 0 { Ok(resp.producer_id.0) } else { Err(resp.error_code) }
    });
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str(id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(0)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default().with_name(topic_name()).with_partitions(vec![0]),
        ]);
    retrying(|| {
        let resp: AddPartitionsToTxnResponse = request(s, ApiKey::AddPartitionsToTxn, 3, &add);
        let code = resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
        if code == 0 { Ok(()) } else { Err(code) }
    });
    pid
}

/// One batch to partition 0 with a transactional id; (error code, base offset).
fn produce_txn(s: &mut std::net::TcpStream, id: &'static str, records: Bytes) -> (i16, i64) {
    let req =
        support::wire::produce_request(TOPIC, records, -1).with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(id))));
    let resp: ProduceResponse = request(s, ApiKey::Produce, 9, &req);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn marker(s: &mut std::net::TcpStream, pid: i64, epoch: i16, commit: bool) -> i16 {
    let req = WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default().with_name(topic_name()).with_partition_indexes(vec![0])]),
    ]);
    let resp: WriteTxnMarkersResponse = request(s, ApiKey::WriteTxnMarkers, 1, &req);
    resp.markers[0].topics[0].partitions[0].error_code
}

/// What a fetch from `offset` returns: high watermark, last stable offset,
/// the aborted transactions (producer, first offset) and the base offsets of
/// the batches.
struct Fetched {
    high_watermark: i64,
    last_stable_offset: i64,
    aborted: Option<Vec<(i64, i64)>>,
    batches: Vec<i64>,
}

fn fetch(s: &mut std::net::TcpStream, offset: i64, read_committed: bool) -> Fetched {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(i8::from(read_committed))
        .with_topics(vec![FetchTopic::default().with_topic(topic_name()).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
        ])]);
    let resp: FetchResponse = request(s, ApiKey::Fetch, 11, &req);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let mut batches = Vec::new();
    let mut rest = p.records.clone().unwrap_or_default();
    while rest.len() >= 12 {
        let base = i64::from_be_bytes(rest[0..8].try_into().unwrap());
        let len = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize;
        batches.push(base);
        let _ = rest.split_to((12 + len).min(rest.len()));
    }
    Fetched {
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        aborted: p.aborted_transactions.as_ref().map(|a| a.iter().map(|t| (t.producer_id.0, t.first_offset)).collect()),
        batches,
    }
}

fn latest(s: &mut std::net::TcpStream, read_committed: bool) -> i64 {
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_isolation_level(i8::from(read_committed)).with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(topic_name())
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)]),
    ]);
    let resp: ListOffsetsResponse = request(s, ApiKey::ListOffsets, 5, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// The open transaction's first offset DescribeProducers reports per producer.
fn txn_start(s: &mut std::net::TcpStream, pid: i64) -> Option<i64> {
    let req = DescribeProducersRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(topic_name()).with_partition_indexes(vec![0])]);
    let resp: DescribeProducersResponse = request(s, ApiKey::DescribeProducers, 0, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.active_producers.iter().find(|a| a.producer_id.0 == pid).map(|a| a.current_txn_start_offset)
}

#[test]
fn read_committed_stops_at_the_last_stable_offset_and_learns_the_aborted() {
    let b = Broker::start();
    let mut s = connect(&b);
    create_topic(&mut s, TOPIC);
    let (a, c) = (transactional_producer(&mut s, "rc-a"), transactional_producer(&mut s, "rc-c"));

    // Transactional records need a transactional id.
    assert_eq!(produce(&mut s, TOPIC, producer_batch(&[b"a0", b"a1"], a, 0, true)).0, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert_eq!(produce_txn(&mut s, "rc-a", producer_batch(&[b"a0", b"a1"], a, 0, true)), (0, 0));
    assert_eq!(produce_txn(&mut s, "rc-c", producer_batch(&[b"c0"], c, 0, true)), (0, 2));
    assert_eq!(produce(&mut s, TOPIC, batch(&[b"plain"])), (0, 3));

    let f = fetch(&mut s, 0, true);
    assert_eq!((f.high_watermark, f.last_stable_offset, f.batches.len()), (4, 0, 0), "nothing is stable yet");
    assert_eq!(f.aborted, Some(vec![]));
    let f = fetch(&mut s, 0, false);
    assert_eq!((f.last_stable_offset, f.batches), (0, vec![0, 2, 3]), "read_uncommitted reads to the high watermark");
    assert_eq!((latest(&mut s, true), latest(&mut s, false)), (0, 4));
    assert_eq!((txn_start(&mut s, a), txn_start(&mut s, c)), (Some(0), Some(2)));

    // A non-transactional batch while the producer's transaction is open.
    assert_eq!(produce(&mut s, TOPIC, producer_batch(&[b"x"], c, 1, false)).0, INVALID_TXN_STATE);

    // Abort a's transaction: the marker takes offset 4, c still holds the stable offset at 2.
    assert_eq!(marker(&mut s, a, 0, false), 0);
    let f = fetch(&mut s, 0, true);
    assert_eq!((f.high_watermark, f.last_stable_offset, f.batches), (5, 2, vec![0]));
    assert_eq!(f.aborted, Some(vec![(a, 0)]));
    assert_eq!(txn_start(&mut s, a), Some(-1));

    // Commit c's: everything is stable; only a's transaction is reported, and only to reads that overlap it.
    assert_eq!(marker(&mut s, c, 0, true), 0);
    let f = fetch(&mut s, 0, true);
    assert_eq!((f.high_watermark, f.last_stable_offset, f.batches), (6, 6, vec![0, 2, 3, 4, 5]));
    assert_eq!(f.aborted, Some(vec![(a, 0)]));
    assert_eq!(fetch(&mut s, 5, true).aborted, Some(vec![]));
    assert_eq!(fetch(&mut s, 5, false).aborted, None, "read_uncommitted gets no list");
    assert_eq!(latest(&mut s, true), 6);

    // A marker from an epoch older than the producer's is refused.
    assert_eq!(marker(&mut s, a, 1, false), 0);
    assert_eq!(marker(&mut s, a, 0, true), INVALID_PRODUCER_EPOCH);
    assert_eq!(latest(&mut s, false), 7, "the refused marker took no offset");
}
