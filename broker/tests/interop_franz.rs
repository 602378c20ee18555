//! franz-go (the Go client, through `tests/interop/franz`) against the broker:
//! topics it creates, records its idempotent producer sends with every codec
//! and over several partitions, read back by explicit partition assignment.
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{Broker, Rec, assert_dense_from_zero, franz, parse_records, run_ok, value_of};

const T: Duration = Duration::from_secs(90);

fn create_topic(b: &Broker, topic: &str, partitions: u32) {
    run_ok(franz().args(["create-topic", "--brokers", &b.bootstrap(), "--topic", topic, "--partitions", &partitions.to_string()]), None, T);
}

fn produce(b: &Broker, topic: &str, count: usize, extra: &[&str]) -> Vec<Rec> {
    let out = run_ok(
        franz().args(["produce", "--brokers", &b.bootstrap(), "--topic", topic, "--count", &count.to_string()]).args(extra),
        None,
        T,
    );
    parse_records(&out)
}

fn consume_to_end(b: &Broker, topic: &str) -> Vec<Rec> {
    parse_records(&run_ok(franz().args(["consume", "--brokers", &b.bootstrap(), "--topic", topic, "--to-end"]), None, T))
}

/// Groups records by partition, keeping their order.
fn by_partition(recs: &[Rec]) -> BTreeMap<i32, Vec<Rec>> {
    let mut m: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    for r in recs {
        m.entry(r.partition).or_default().push(r.clone());
    }
    m
}

#[test]
fn franz_go_idempotent_producer_over_three_partitions() {
    let b = Broker::start();
    create_topic(&b, "franz-multi", 3);
    let n = 3000;
    let acked = produce(&b, "franz-multi", n, &["--value-bytes", "64"]);
    assert_eq!(acked.len(), n, "every record acknowledged");

    // Every key acknowledged once, with its value; the key-hash partitioner
    // spread them over all three partitions.
    let mut keys: Vec<&str> = acked.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "each record acknowledged once");
    for r in &acked {
        let i: usize = r.key[1..].parse().unwrap();
        assert_eq!(r.value, value_of("v", i, 64));
    }
    let acked_by_p = by_partition(&acked);
    assert_eq!(acked_by_p.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2], "records on every partition");

    // Read back: per partition, exactly the acknowledged records at their
    // acknowledged offsets, dense from 0, in the order they were sent.
    let read = consume_to_end(&b, "franz-multi");
    let read_by_p = by_partition(&read);
    assert_eq!(read_by_p.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    for (p, recs) in &read_by_p {
        assert_dense_from_zero(recs);
        let mut want = acked_by_p[p].clone();
        want.sort_by_key(|r| r.offset);
        assert_eq!(recs, &want, "partition {p}: what was read is not what was acknowledged");
        let sent_order: Vec<usize> = recs.iter().map(|r| r.key[1..].parse().unwrap()).collect();
        assert!(sent_order.windows(2).all(|w| w[0] < w[1]), "partition {p} is not in send order: {sent_order:?}");
    }
}

#[test]
fn franz_go_every_codec_round_trips() {
    let b = Broker::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("franz-{codec}");
        create_topic(&b, &topic, 1);
        let n = 500;
        let acked = produce(&b, &topic, n, &["--compression", codec, "--partition", "0", "--value-bytes", "200"]);
        let want: Vec<Rec> =
            (0..n).map(|i| Rec { partition: 0, offset: i as i64, key: format!("k{i}"), value: value_of("v", i, 200) }).collect();
        let mut acked_sorted = acked.clone();
        acked_sorted.sort_by_key(|r| r.offset);
        assert_eq!(acked_sorted, want, "{codec}: acknowledged offsets are not 0..{n} in send order");
        assert_eq!(consume_to_end(&b, &topic), want, "{codec}: read back differs");
        // A read from the middle starts exactly there, even inside a compressed batch.
        let mid = parse_records(&run_ok(
            franz().args(["consume", "--brokers", &b.bootstrap(), "--topic", &topic, "--partition", "0", "--from", "123", "--count", "5"]),
            None,
            T,
        ));
        assert_eq!(mid, want[123..128].to_vec(), "{codec}: reading from offset 123");
    }
}

#[test]
fn franz_go_plain_acks_leader_producer() {
    let b = Broker::start();
    create_topic(&b, "franz-acks1", 2);
    let acked = produce(&b, "franz-acks1", 1000, &["--idempotent=false", "--acks", "leader", "--partition", "1"]);
    assert_eq!(acked.len(), 1000);
    let read = consume_to_end(&b, "franz-acks1");
    assert!(read.iter().all(|r| r.partition == 1), "records only on partition 1");
    assert_dense_from_zero(&read);
    let mut acked_sorted = acked;
    acked_sorted.sort_by_key(|r| r.offset);
    assert_eq!(read, acked_sorted);
}
