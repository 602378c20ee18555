//! librdkafka against the broker, twice over: Debian's `kcat` (librdkafka 2.0)
//! and confluent-kafka's Python binding (its own, newer librdkafka, through
//! `tests/interop/python/confluent_client.py`). For each compression codec,
//! keyed records go in and come back by explicit partition assignment from
//! offset 0, identical, in order, at dense offsets.
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.

mod support;

use std::time::Duration;

use support::{Broker, Rec, kcat, parse_records, python, run_ok, value_of};

const T: Duration = Duration::from_secs(90);
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn create_topic(b: &Broker, topic: &str, partitions: u32) {
    run_ok(
        python("confluent_client.py").args([
            "create-topic",
            "--brokers",
            &b.bootstrap(),
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
        ]),
        None,
        T,
    );
}

/// Everything in partition `p` of `topic`, read by kcat from the beginning
/// to the current end (no group).
fn kcat_read(b: &Broker, topic: &str, p: i32) -> Vec<Rec> {
    let out = run_ok(
        kcat().args(["-C", "-b", &b.bootstrap(), "-t", topic, "-p", &p.to_string(), "-o", "beginning", "-e", "-q"]).args([
            "-f",
            "%p\t%o\t%k\t%s\n",
            "-X",
            "fetch.wait.max.ms=100",
        ]),
        None,
        T,
    );
    parse_records(&out)
}

fn expected(n: usize, key_prefix: &str, value_prefix: &str, bytes: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| Rec { partition: 0, offset: i as i64, key: format!("{key_prefix}{i}"), value: value_of(value_prefix, i, bytes) })
        .collect()
}

#[test]
fn kcat_round_trips_every_codec() {
    let b = Broker::start();
    let n = 2000;
    for codec in CODECS {
        let topic = format!("kcat-{codec}");
        create_topic(&b, &topic, 1);
        let want = expected(n, "key-", &format!("{codec}-value-"), 120);
        let input: String = want.iter().map(|r| format!("{}:{}\n", r.key, r.value)).collect();
        run_ok(
            kcat().args(["-P", "-b", &b.bootstrap(), "-t", &topic, "-p", "0", "-K", ":", "-z", codec]).args([
                "-X",
                "acks=all",
                "-X",
                "linger.ms=20",
            ]),
            Some(input.as_bytes()),
            T,
        );
        assert_eq!(kcat_read(&b, &topic, 0), want, "{codec}: kcat read back differs");
    }
}

#[test]
fn confluent_kafka_idempotent_producer_every_codec() {
    let b = Broker::start();
    let n = 2000;
    for codec in CODECS {
        let topic = format!("confluent-{codec}");
        create_topic(&b, &topic, 1);
        let out = run_ok(
            python("confluent_client.py").args(["produce", "--brokers", &b.bootstrap(), "--topic", &topic]).args([
                "--count",
                &n.to_string(),
                "--partition",
                "0",
                "--compression",
                codec,
                "--value-bytes",
                "150",
            ]),
            None,
            T,
        );
        let want = expected(n, "k", "v", 150);
        assert_eq!(parse_records(&out), want, "{codec}: delivery reports are not offsets 0..{n} in send order");
        assert_eq!(kcat_read(&b, &topic, 0), want, "{codec}: kcat read back differs");
    }
}

#[test]
fn kcat_metadata_lists_the_topic_and_its_leaders() {
    let b = Broker::start();
    create_topic(&b, "kcat-meta", 3);
    let out = run_ok(kcat().args(["-L", "-b", &b.bootstrap(), "-t", "kcat-meta"]), None, T);
    assert!(out.contains("topic \"kcat-meta\" with 3 partitions:"), "{out}");
    for p in 0..3 {
        let line = out.lines().find(|l| l.trim_start().starts_with(&format!("partition {p}, leader "))).unwrap_or_else(|| {
            panic!("no partition {p} in kcat -L:\n{out}");
        });
        assert!(!line.contains("leader -1") && line.contains("isrs:"), "partition {p} has no leader: {line}");
    }
}
