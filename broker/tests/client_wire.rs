//! fjord-client's wire layer against a real broker (fjord, or Apache Kafka
//! with FJORD_TEST_BROKER=kafka): topics created, records produced with each
//! acks setting and compression, then consumed back, each exactly once, in
//! order, with the content it was sent with.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fjord_client::cluster::Cluster;
use fjord_client::consumer::{Consumer, ConsumerConfig, Fetched, StartAt};
use fjord_client::error::ClientError;
use fjord_client::producer::{BatchOutcome, Producer, ProducerConfig};
use kafka_protocol::ResponseError;
use kafka_protocol::records::Compression;
use support::Broker;

const PARTITIONS: i32 = 3;

/// What a consumer callback collected, per partition.
type ByPartition<T> = Arc<Mutex<BTreeMap<i32, Vec<T>>>>;
const TIMESTAMP_MS: i64 = 1_700_000_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Record `i` of a topic: partition `i % 3`, key `i`, a value naming both.
fn record(topic: &str, i: usize) -> (i32, Bytes, Bytes) {
    let mut value = format!("{topic}/{i}/").into_bytes();
    value.resize(100 + i % 50, b'.');
    ((i % PARTITIONS as usize) as i32, Bytes::from(i.to_string()), Bytes::from(value))
}

/// What the AckFn saw, per partition: (first send instant, base offset, records).
#[derive(Default)]
struct Acks {
    batches: BTreeMap<i32, Vec<(Instant, i64, usize)>>,
    failures: Vec<String>,
    bytes: usize,
}

async fn new_topic(cluster: &Cluster, topic: &str) {
    cluster.create_topic(topic, PARTITIONS, 1, &[]).await.expect("create topic");
    assert_eq!(cluster.wait_for_leaders(topic, Duration::from_secs(60)).await.expect("leaders"), PARTITIONS);
}

/// Sends `count` records and flushes; returns what the AckFn saw.
async fn produce(cluster: &Arc<Cluster>, topic: &str, count: usize, acks: i16, compression: Compression) -> Acks {
    let seen = Arc::new(Mutex::new(Acks::default()));
    let sink = seen.clone();
    let on_ack = Arc::new(move |o: &BatchOutcome<'_>| {
        let mut s = sink.lock().unwrap();
        s.bytes += o.bytes;
        match o.result {
            Ok(base) => s.batches.entry(o.partition).or_default().push((o.sent_at[0], base, o.sent_at.len())),
            Err(e) => s.failures.push(format!("{}-{}: {e}", o.topic, o.partition)),
        }
    });
    let config = ProducerConfig { client_id: "client-wire".into(), acks, compression, ..ProducerConfig::default() };
    let producer = Producer::new(cluster.clone(), config, on_ack).await.expect("producer");
    for i in 0..count {
        let (partition, key, value) = record(topic, i);
        producer.send(topic, partition, Some(key), value, TIMESTAMP_MS + i as i64).await.expect("send");
    }
    producer.flush().await;
    producer.close().await;
    std::mem::take(&mut *seen.lock().unwrap())
}

/// Checks the acks: every record acknowledged once, and per partition the
/// batches, in the order they were filled, at increasing contiguous offsets.
fn check_acks(acks: &mut Acks, topic: &str, count: usize, acks_zero: bool) {
    assert!(acks.failures.is_empty(), "{topic}: failed batches: {:?}", acks.failures);
    let expected_bytes: usize = (0..count).map(|i| record(topic, i)).map(|(_, k, v)| k.len() + v.len()).sum();
    assert_eq!(acks.bytes, expected_bytes, "{topic}: key+value bytes acknowledged");
    let mut total = 0;
    for (partition, batches) in &mut acks.batches {
        batches.sort_by_key(|b| b.0);
        let mut next = 0;
        for &(_, base, n) in batches.iter() {
            if acks_zero {
                assert_eq!(base, -1, "{topic}-{partition}: acks=0 has no offset");
            } else {
                assert_eq!(base, next, "{topic}-{partition}: batches out of order or with a gap");
            }
            next += n as i64;
        }
        total += next as usize;
    }
    assert_eq!(total, count, "{topic}: records acknowledged");
}

/// Consumes every partition from the earliest offset until `count` records
/// came; checks each arrived once, in order, as sent.
async fn consume_and_check(cluster: &Arc<Cluster>, topic: &str, count: usize) {
    let got: ByPartition<(i64, i64, Bytes, Bytes)> = Arc::default();
    let sink = got.clone();
    let on_records = Arc::new(move |f: &Fetched<'_>| {
        let mut got = sink.lock().unwrap();
        let part = got.entry(f.partition).or_default();
        for r in f.records {
            part.push((r.offset, r.timestamp, r.key.clone().unwrap_or_default(), r.value.clone().unwrap_or_default()));
        }
    });
    let assignments = (0..PARTITIONS).map(|p| (topic.to_string(), p)).collect();
    let config = ConsumerConfig { client_id: "client-wire".into(), ..ConsumerConfig::default() };
    let consumer = Consumer::start(cluster.clone(), config, assignments, StartAt::Earliest, on_records).await.expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.lock().unwrap().values().map(Vec::len).sum::<usize>() < count {
        assert!(Instant::now() < deadline, "{topic}: consumed only {:?} of {count}", consumer.positions());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long enough for a duplicate delivery to show up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let positions = consumer.positions();
    consumer.stop().await;

    let got = got.lock().unwrap();
    let mut expected: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for i in 0..count {
        expected.entry(record(topic, i).0).or_default().push(i);
    }
    for (partition, indexes) in &expected {
        let recs = got.get(partition).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(recs.len(), indexes.len(), "{topic}-{partition}: records consumed");
        for (offset, (&i, (at, timestamp, key, value))) in indexes.iter().zip(recs).enumerate() {
            let (_, want_key, want_value) = record(topic, i);
            assert_eq!(*at, offset as i64, "{topic}-{partition}: offsets not dense from 0");
            assert_eq!((key, value), (&want_key, &want_value), "{topic}-{partition} offset {offset}");
            assert_eq!(*timestamp, TIMESTAMP_MS + i as i64, "{topic}-{partition} offset {offset}: CreateTime");
        }
        assert!(positions.contains(&(topic.to_string(), *partition, indexes.len() as i64)), "{topic}: positions {positions:?}");
    }
}

async fn latest_offsets(cluster: &Cluster, topic: &str) -> Vec<i64> {
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        ends.push(cluster.list_offset(topic, p, -1).await.expect("list offsets"));
    }
    ends
}

async fn round_trip(cluster: &Arc<Cluster>, topic: &str, count: usize, acks: i16, compression: Compression) {
    new_topic(cluster, topic).await;
    let mut seen = produce(cluster, topic, count, acks, compression).await;
    check_acks(&mut seen, topic, count, false);
    let ends = latest_offsets(cluster, topic).await;
    let per_partition: Vec<i64> = (0..PARTITIONS).map(|p| seen.batches[&p].iter().map(|b| b.2 as i64).sum()).collect();
    assert_eq!(ends, per_partition, "{topic}: ListOffsets latest after the acks");
    assert_eq!(ends.iter().sum::<i64>(), count as i64);
    assert_eq!(earliest_offsets(cluster, topic).await, vec![0; PARTITIONS as usize]);
    consume_and_check(cluster, topic, count).await;
}

async fn earliest_offsets(cluster: &Cluster, topic: &str) -> Vec<i64> {
    let mut starts = Vec::new();
    for p in 0..PARTITIONS {
        starts.push(cluster.list_offset(topic, p, -2).await.expect("list offsets"));
    }
    starts
}

#[test]
fn records_produced_with_acks_all_and_one_are_consumed_exactly_once_in_order() {
    let b = Broker::start();
    runtime().block_on(async {
        let cluster = Cluster::connect(&[b.bootstrap()], "client-wire").await.expect("cluster");
        round_trip(&cluster, "wire-all-lz4", 20_000, -1, Compression::Lz4).await;
        round_trip(&cluster, "wire-one-plain", 20_000, 1, Compression::None).await;
    });
}

#[test]
fn acks_zero_records_arrive() {
    let b = Broker::start();
    runtime().block_on(async {
        let cluster = Cluster::connect(&[b.bootstrap()], "client-wire").await.expect("cluster");
        let topic = "wire-zero";
        let count = 5_000;
        new_topic(&cluster, topic).await;
        let mut seen = produce(&cluster, topic, count, 0, Compression::Snappy).await;
        check_acks(&mut seen, topic, count, true);
        // Nothing confirms acks=0 writes: wait until they are all there.
        let deadline = Instant::now() + Duration::from_secs(30);
        while latest_offsets(&cluster, topic).await.iter().sum::<i64>() < count as i64 {
            assert!(Instant::now() < deadline, "acks=0 records missing: {:?}", latest_offsets(&cluster, topic).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        consume_and_check(&cluster, topic, count).await;
    });
}

#[test]
fn admin_requests_create_and_delete_topics() {
    let b = Broker::start();
    runtime().block_on(async {
        let cluster = Cluster::connect(&[b.bootstrap()], "client-wire").await.expect("cluster");
        let configs = [("retention.ms".to_string(), "3600000".to_string())];
        cluster.create_topic("wire-admin", 2, 1, &configs).await.expect("create");
        assert_eq!(cluster.wait_for_leaders("wire-admin", Duration::from_secs(60)).await.expect("leaders"), 2);
        assert_eq!(cluster.partition_count("wire-admin"), Some(2));
        assert!(cluster.leader("wire-admin", 1).is_some());
        match cluster.create_topic("wire-admin", 2, 1, &[]).await {
            Err(ClientError::Broker { error: ResponseError::TopicAlreadyExists, .. }) => {}
            other => panic!("creating it again: {other:?}"),
        }
        cluster.delete_topic("wire-admin").await.expect("delete");
        assert_eq!(cluster.leader("wire-admin", 0), None);
        // Deletion completes asynchronously in Kafka; the metadata catches up.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            cluster.refresh_metadata().await.expect("metadata");
            if cluster.partition_count("wire-admin").is_none() {
                break;
            }
            assert!(Instant::now() < deadline, "the deleted topic is still in the metadata");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let conn = cluster.connection(cluster.broker_ids()[0]).await.expect("connection");
        assert!(conn.version(kafka_protocol::messages::ApiKey::Produce, 3..=12).is_ok());
        assert!(conn.version(kafka_protocol::messages::ApiKey::Produce, 100..=101).is_err());
    });
}

/// A broker restart mid-stream: the producer retries what the lost connection
/// took with it (so records may be written twice, there being no
/// idempotence), and the consumer resumes where it was, missing nothing.
#[test]
fn producer_and_consumer_ride_out_a_broker_restart() {
    let mut b = Broker::start();
    let rt = runtime();
    let topic = "wire-restart";
    let count = 30_000;
    let cluster = rt.block_on(async {
        let cluster = Cluster::connect(&[b.bootstrap()], "client-wire").await.expect("cluster");
        new_topic(&cluster, topic).await;
        cluster
    });
    let consumed: ByPartition<(i64, Bytes)> = Arc::default();
    let sink = consumed.clone();
    let on_records = Arc::new(move |f: &Fetched<'_>| {
        let mut got = sink.lock().unwrap();
        got.entry(f.partition).or_default().extend(f.records.iter().map(|r| (r.offset, r.value.clone().unwrap_or_default())));
    });
    let assignments = (0..PARTITIONS).map(|p| (topic.to_string(), p)).collect();
    let consumer = rt
        .block_on(Consumer::start(cluster.clone(), ConsumerConfig::default(), assignments, StartAt::Earliest, on_records))
        .expect("consumer");
    let producing = rt.spawn({
        let cluster = cluster.clone();
        async move {
            let seen = Arc::new(Mutex::new(Acks::default()));
            let sink = seen.clone();
            let on_ack = Arc::new(move |o: &BatchOutcome<'_>| {
                let mut s = sink.lock().unwrap();
                match o.result {
                    Ok(base) => s.batches.entry(o.partition).or_default().push((o.sent_at[0], base, o.sent_at.len())),
                    Err(e) => s.failures.push(format!("{}-{}: {e}", o.topic, o.partition)),
                }
            });
            let config = ProducerConfig { acks: -1, ..ProducerConfig::default() };
            let producer = Producer::new(cluster, config, on_ack).await.expect("producer");
            for i in 0..count {
                let (partition, key, value) = record(topic, i);
                producer.send(topic, partition, Some(key), value, TIMESTAMP_MS).await.expect("send");
                if i % 100 == 99 {
                    // Spread the sends over the restart.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            producer.close().await;
            std::mem::take(&mut *seen.lock().unwrap())
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    b.restart();
    let acks = rt.block_on(producing).expect("producing");
    assert!(acks.failures.is_empty(), "failed batches: {:?}", acks.failures);
    let acked: usize = acks.batches.values().flatten().map(|b| b.2).sum();
    assert_eq!(acked, count, "records acknowledged");

    rt.block_on(async {
        let ends = latest_offsets(&cluster, topic).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let at: Vec<i64> = consumer.positions().iter().map(|p| p.2).collect();
            if at == ends {
                break;
            }
            assert!(Instant::now() < deadline, "consumer at {at:?}, log ends at {ends:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        consumer.stop().await;
    });
    let consumed = consumed.lock().unwrap();
    let mut values = std::collections::HashSet::new();
    for (partition, recs) in consumed.iter() {
        for (i, (offset, value)) in recs.iter().enumerate() {
            assert_eq!(*offset, i as i64, "{topic}-{partition}: consumed offsets not dense from 0 (a gap or a duplicate)");
            values.insert(value.clone());
        }
    }
    for i in 0..count {
        assert!(values.contains(&record(topic, i).2), "record {i} was acknowledged but never consumed");
    }
}
