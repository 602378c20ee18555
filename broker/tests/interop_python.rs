//! kafka-python (the pure-Python client, through
//! `tests/interop/python/kafka_python_client.py`) against the broker: it
//! creates topics, its idempotent acks=all producer sends keyed records (plain
//! and gzip), and its consumer reads them back by explicit partition
//! assignment. `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.

mod support;

use std::time::Duration;

use support::{Broker, Rec, assert_dense_from_zero, parse_records, python, run_ok, value_of};

const T: Duration = Duration::from_secs(90);
const CLIENT: &str = "kafka_python_client.py";

fn kp(b: &Broker, command: &str, topic: &str, extra: &[&str]) -> String {
    run_ok(python(CLIENT).args([command, "--brokers", &b.bootstrap(), "--topic", topic]).args(extra), None, T)
}

#[test]
fn kafka_python_round_trips_keyed_records_over_two_partitions() {
    let b = Broker::start();
    kp(&b, "create-topic", "kp-two", &["--partitions", "2"]);
    let n = 1000;
    let acked = parse_records(&kp(&b, "produce", "kp-two", &["--count", &n.to_string(), "--value-bytes", "50"]));
    assert_eq!(acked.len(), n, "every record acknowledged");
    for (i, r) in acked.iter().enumerate() {
        assert_eq!((r.key.as_str(), r.value.as_str()), (format!("k{i}").as_str(), value_of("v", i, 50).as_str()));
    }
    let mut total = 0;
    for p in 0..2 {
        let mut want: Vec<Rec> = acked.iter().filter(|r| r.partition == p).cloned().collect();
        want.sort_by_key(|r| r.offset);
        assert!(!want.is_empty(), "the key-hash partitioner put nothing on partition {p}");
        let read = parse_records(&kp(&b, "consume", "kp-two", &["--partition", &p.to_string(), "--to-end"]));
        assert_dense_from_zero(&read);
        assert_eq!(read, want, "partition {p}: read back differs from what was acknowledged");
        total += read.len();
    }
    assert_eq!(total, n);
}

#[test]
fn kafka_python_gzip_and_reads_from_an_offset() {
    let b = Broker::start();
    kp(&b, "create-topic", "kp-gzip", &["--partitions", "1"]);
    let n = 600;
    let acked = parse_records(&kp(
        &b,
        "produce",
        "kp-gzip",
        &["--count", &n.to_string(), "--compression", "gzip", "--partition", "0", "--value-bytes", "300"],
    ));
    let want: Vec<Rec> =
        (0..n).map(|i| Rec { partition: 0, offset: i as i64, key: format!("k{i}"), value: value_of("v", i, 300) }).collect();
    assert_eq!(acked, want, "acknowledged offsets are not 0..{n} in send order");
    assert_eq!(parse_records(&kp(&b, "consume", "kp-gzip", &["--partition", "0", "--to-end"])), want);
    let mid = parse_records(&kp(&b, "consume", "kp-gzip", &["--partition", "0", "--from", "250", "--count", "10"]));
    assert_eq!(mid, want[250..260].to_vec(), "reading from offset 250");
    // A second producer appends after the first one's records.
    let more = parse_records(&kp(&b, "produce", "kp-gzip", &["--count", "5", "--partition", "0", "--key-prefix", "again"]));
    assert_eq!(more.iter().map(|r| r.offset).collect::<Vec<_>>(), (n as i64..n as i64 + 5).collect::<Vec<_>>());
}
