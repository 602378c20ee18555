//! Log compaction end to end (issue 12): a `cleanup.policy=compact` topic
//! written with keys by confluent-kafka (librdkafka; rounds uncompressed,
//! gzip and lz4, tombstones included), read from the beginning by
//! confluent-kafka and by Kafka's console consumer (the Java client).
//!
//! Segments roll every 100 ms (`segment.ms`) and the cleaner looks every
//! 200 ms (`log.cleaner.backoff.ms`) with `min.cleanable.dirty.ratio=0.01`,
//! so a segment is compacted soon after the next write seals it. Each record
//! keeps its offset; a reader sees only the newest value of each key, the
//! tombstones until `delete.retention.ms` after their first cleaning, and
//! then not even those.
//!
//! The 3-node test compacts while the partition's first replica is down,
//! brings it back (it catches up from the cleaned log), makes it leader
//! again and reads the same records at the same offsets from it; on fjord
//! it then compares the three replicas' logs on disk: the same batches at
//! the same offsets and raft indexes on every one.
//!
//! `FJORD_TEST_BROKER=kafka` runs both against Apache Kafka, whose answers
//! these expectations are.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::cluster::{Cluster, TopicView, py};
use support::groups::T;
use support::{Broker, Kind, kafka_tool, run_ok};

const TOPIC: &str = "compacted";
/// How long a tombstone outlives its first cleaning.
const DELETE_RETENTION: Duration = Duration::from_secs(3);
const SEGMENT_MS: u64 = 100;

fn topic_configs() -> Vec<String> {
    [
        "cleanup.policy=compact".to_string(),
        format!("segment.ms={SEGMENT_MS}"),
        "min.cleanable.dirty.ratio=0.01".into(),
        format!("delete.retention.ms={}", DELETE_RETENTION.as_millis()),
    ]
    .iter()
    .flat_map(|c| ["--config".to_string(), c.clone()])
    .collect()
}

/// Produces `key\tvalue` lines from stdin (`<null>`: a tombstone) to
/// partition 0 with the codec given, idempotent, acks=all.
const PRODUCE: &str = r#"
import sys
from confluent_kafka import Producer
brokers, topic, codec = sys.argv[1:4]
p = Producer({"bootstrap.servers": brokers, "compression.type": codec, "linger.ms": 50, "acks": "all", "enable.idempotence": True})
errors = []
def report(err, msg):
    if err:
        errors.append(str(err))
for line in sys.stdin.read().splitlines():
    k, v = line.split("\t")
    p.produce(topic, key=k.encode(), value=None if v == "<null>" else v.encode(), partition=0, on_delivery=report)
left = p.flush(60)
if left or errors:
    sys.exit(f"{left} undelivered, errors: {errors}")
"#;

/// Reads partition 0 from the beginning up to the high watermark and prints
/// `offset\tkey\tvalue` (`<null>` for a tombstone). The last record below
/// the high watermark is always a key's newest, so it is never cleaned away.
const READ: &str = r#"
import sys, time
from confluent_kafka import Consumer, TopicPartition
brokers, topic = sys.argv[1:3]
c = Consumer({"bootstrap.servers": brokers, "group.id": "compaction-reader", "enable.auto.commit": False})
end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
c.assign([TopicPartition(topic, 0, 0)])
deadline = time.monotonic() + 60
last = -1
while last < end - 1:
    if time.monotonic() > deadline:
        sys.exit(f"timed out at offset {last} of {end}")
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        sys.exit(str(m.error()))
    value = "<null>" if m.value() is None else m.value().decode()
    print(f"{m.offset()}\t{m.key().decode()}\t{value}")
    last = m.offset()
c.close()
"#;

type Record = (i64, String, String);

fn produce(bootstrap: &str, codec: &str, lines: &[(String, &str)]) {
    let input: String = lines.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    run_ok(py(PRODUCE).args([bootstrap, TOPIC, codec]), Some(input.as_bytes()), T);
}

fn read(bootstrap: &str) -> Vec<Record> {
    run_ok(py(READ).args([bootstrap, TOPIC]), None, T)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            (f[0].parse().unwrap_or_else(|_| panic!("bad line {l:?}")), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// The same records through Kafka's console consumer (the Java client).
fn read_java(bootstrap: &str, count: usize) -> Vec<Record> {
    let out = run_ok(
        kafka_tool("kafka-console-consumer").args(["--bootstrap-server", bootstrap, "--topic", TOPIC, "--partition", "0"]).args([
            "--offset",
            "earliest",
            "--max-messages",
            &count.to_string(),
            "--timeout-ms",
            "60000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "print.offset=true",
        ]),
        None,
        T,
    );
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            let offset = f[0].strip_prefix("Offset:").and_then(|o| o.parse().ok()).unwrap_or_else(|| panic!("bad line {l:?}"));
            (offset, f[1].to_string(), if f[2] == "null" { "<null>".to_string() } else { f[2].to_string() })
        })
        .collect()
}

fn keys(range: std::ops::Range<usize>, value: &str) -> Vec<(String, &str)> {
    range.map(|i| (format!("k{i}"), value)).collect()
}

fn rec(offset: i64, key: &str, value: &str) -> Record {
    (offset, key.to_string(), value.to_string())
}

/// Writes the three rounds and a record to seal the last one: offsets 0-9
/// (k0-k9=v1), 10-19 (k0-k9=v2, gzip), 20-25 (tombstones for k0-k2,
/// k3-k5=v3, lz4), 26 (roll1=x).
fn write_rounds(bootstrap: &str) {
    let pause = Duration::from_millis(3 * SEGMENT_MS);
    produce(bootstrap, "none", &keys(0..10, "v1"));
    std::thread::sleep(pause);
    produce(bootstrap, "gzip", &keys(0..10, "v2"));
    std::thread::sleep(pause);
    let mut third = keys(0..3, "<null>");
    third.extend(keys(3..6, "v3"));
    produce(bootstrap, "lz4", &third);
    std::thread::sleep(pause);
    produce(bootstrap, "none", &[("roll1".to_string(), "x")]);
}

/// What a reader sees once the rounds are compacted, before the tombstones' horizon.
fn compacted() -> Vec<Record> {
    let mut want: Vec<Record> = (6..10).map(|i| rec(10 + i, &format!("k{i}"), "v2")).collect();
    want.extend((0..3).map(|i| rec(20 + i, &format!("k{i}"), "<null>")));
    want.extend((3..6).map(|i| rec(20 + i, &format!("k{i}"), "v3")));
    want.push(rec(26, "roll1", "x"));
    want
}

/// ... and after it, once another pass has run.
fn without_tombstones() -> Vec<Record> {
    let mut want: Vec<Record> = compacted().into_iter().filter(|(_, _, v)| v != "<null>").collect();
    want.push(rec(27, "roll2", "y"));
    want
}

/// Reads until the records are `want`, at most `limit`.
fn wait_read(bootstrap: &str, want: &[Record], what: &str, limit: Duration) {
    wait_read_any(bootstrap, &[want.to_vec()], what, limit);
}

/// Reads until the records are one of `wants`, at most `limit`.
fn wait_read_any(bootstrap: &str, wants: &[Vec<Record>], what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got = read(bootstrap);
        if wants.contains(&got) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} for {what}; a reader from the beginning gets:\n{got:#?}\nwant one of:\n{wants:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Past the tombstones' horizon, writes what makes the log dirty again and
/// seals it, then waits for the pass that drops them.
fn expire_tombstones(bootstrap: &str) {
    std::thread::sleep(DELETE_RETENTION + Duration::from_secs(1));
    produce(bootstrap, "none", &[("roll2".to_string(), "y")]);
    std::thread::sleep(Duration::from_millis(3 * SEGMENT_MS));
    produce(bootstrap, "none", &[("roll3".to_string(), "z")]);
    let mut want = without_tombstones();
    want.push(rec(28, "roll3", "z"));
    wait_read(bootstrap, &want, "the tombstones to go after delete.retention.ms", Duration::from_secs(60));
}

fn earliest_and_latest(bootstrap: &str) -> (i64, i64) {
    let offset = |time: &str| {
        let out =
            run_ok(kafka_tool("kafka-get-offsets").args(["--bootstrap-server", bootstrap, "--topic", TOPIC, "--time", time]), None, T);
        out.trim().rsplit(':').next().and_then(|o| o.parse::<i64>().ok()).unwrap_or_else(|| panic!("kafka-get-offsets printed {out:?}"))
    };
    (offset("-2"), offset("-1"))
}

#[test]
fn a_compacted_topic_keeps_the_newest_value_per_key() {
    let b = Broker::start_with(&[("log.cleaner.backoff.ms", "200")]);
    let bootstrap = b.bootstrap();
    run_ok(
        kafka_tool("kafka-topics")
            .args(["--bootstrap-server", &bootstrap, "--create", "--topic", TOPIC, "--partitions", "1"])
            .args(topic_configs()),
        None,
        T,
    );
    write_rounds(&bootstrap);
    wait_read(&bootstrap, &compacted(), "the rounds to be compacted", Duration::from_secs(60));
    assert_eq!(read_java(&bootstrap, compacted().len()), compacted(), "the Java consumer reads the same records");
    assert_eq!(earliest_and_latest(&bootstrap), (0, 27), "compaction moves no offset");

    expire_tombstones(&bootstrap);
    let mut want = without_tombstones();
    want.push(rec(28, "roll3", "z"));
    assert_eq!(read_java(&bootstrap, want.len()), want);
    assert_eq!(earliest_and_latest(&bootstrap), (0, 29));
}

fn in_sync(v: &TopicView) -> bool {
    v.get(&0).is_some_and(|p| p.leader.is_some() && p.replicas.len() == 3 && p.isr.len() == 3)
}

#[test]
fn a_replica_that_was_down_catches_up_from_the_cleaned_log() {
    let mut c = Cluster::start(3, 0, &[("log.cleaner.backoff.ms", "200")]);
    let configs = topic_configs();
    let mut create = vec!["--create", "--topic", TOPIC, "--partitions", "1", "--replication-factor", "3"];
    create.extend(configs.iter().map(String::as_str));
    c.topics(1, &create);
    let view = c.wait_topic(1, TOPIC, "three replicas in sync", Duration::from_secs(60), in_sync);
    // The first replica is the preferred leader: it goes down, misses the
    // writes and the cleaning, and is made leader again once back.
    let first = view[&0].replicas[0];
    let others: Vec<i32> = c.ids().into_iter().filter(|id| *id != first).collect();
    c.kill(first);
    let alive = c.bootstrap_of_all(&others);
    c.wait_topic(others[0], TOPIC, "a leader other than the killed replica", Duration::from_secs(60), |v| {
        v[&0].leader.is_some_and(|l| l != first)
    });
    write_rounds(&alive);
    wait_read(&alive, &compacted(), "the rounds to be compacted on the new leader", Duration::from_secs(60));

    c.restart(first);
    c.wait_topic(others[0], TOPIC, "the returned replica back in sync", Duration::from_secs(90), in_sync);
    let out = run_ok(
        c.tool("kafka-leader-election", others[0]).args(["--election-type", "PREFERRED", "--topic", TOPIC, "--partition", "0"]),
        None,
        T,
    );
    assert!(out.contains("Successfully completed leader election"), "kafka-leader-election printed:\n{out}");
    c.wait_topic(others[0], TOPIC, "the returned replica leading", Duration::from_secs(60), |v| v[&0].leader == Some(first));
    // It serves the records at the offsets the others served. Catching up
    // may outlast the tombstones' horizon (seconds here), and each replica
    // drops them by the horizon the first cleaning wrote into their batch.
    let past_horizon: Vec<Record> = compacted().into_iter().filter(|(_, _, v)| v != "<null>").collect();
    wait_read_any(
        &c.bootstrap_of(first),
        &[compacted(), past_horizon],
        "the returned replica to serve the compacted records",
        Duration::from_secs(60),
    );
    expire_tombstones(&c.bootstrap_of(first));

    if c.kind() == Kind::Fjord {
        for id in c.ids() {
            c.stop(id);
        }
        same_batches_everywhere(&c);
    }
}

/// Every replica's log holds the same batches (offsets, raft indexes,
/// terms) as far as all of them reach (the last nodes stopped may have
/// taken a leader's blank entry more), and each live key's newest record at
/// the same offset. Tombstones are left out: each replica drops them on its
/// own schedule.
fn same_batches_everywhere(c: &Cluster) {
    type Batches = Vec<(u64, i64, i32, i32)>;
    let mut seen: BTreeMap<i32, (Batches, BTreeMap<String, i64>)> = BTreeMap::new();
    for id in c.ids() {
        let dir = c.data_dir(id).join(format!("{TOPIC}-0"));
        let config = fjord_storage::LogConfig { segment_bytes: 1 << 20, ..Default::default() };
        let log = fjord_storage::Log::open(&dir, config).unwrap_or_else(|e| panic!("node {id}'s log at {}: {e}", dir.display()));
        assert!(log.log_end_offset() >= 29, "node {id} holds every record: its log ends at {}", log.log_end_offset());
        let (first, next) = (log.first_raft_index().unwrap(), log.next_raft_index());
        let mut batches = Vec::new();
        let mut newest = BTreeMap::new();
        for e in log.entries(first, next, usize::MAX).unwrap() {
            let h = fjord_storage::batch::validate(&e.bytes).unwrap();
            batches.push((e.raft_index, h.base_offset, h.last_offset_delta, h.leader_epoch));
            if h.is_control() {
                continue;
            }
            fjord_storage::records::for_each_record(&e.bytes, 1 << 24, |r| {
                let key = String::from_utf8_lossy(r.key.unwrap_or_default()).into_owned();
                match r.value {
                    Some(_) => newest.insert(key, r.offset),
                    None => newest.remove(&key),
                };
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        }
        seen.insert(id, (batches, newest));
    }
    let common = seen.values().map(|(b, _)| b.len()).min().unwrap_or(0);
    let (first_id, first) = seen.iter().next().unwrap();
    for (id, other) in &seen {
        assert_eq!(other.0[..common], first.0[..common], "node {id}'s batches differ from node {first_id}'s");
        assert_eq!(other.1, first.1, "node {id}'s newest record per key differs from node {first_id}'s");
    }
}
