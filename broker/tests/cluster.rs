//! A multi-node cluster driven by Kafka's own admin tools and clients:
//! rack-aware placement and a consumer group over three brokers, any broker
//! answering for the whole cluster, leader failover and preferred-leader
//! election, reassignment onto a broker-only node while a producer runs, and
//! readable KRaft configuration errors.
//!
//! Every test passes against Apache Kafka too (`FJORD_TEST_BROKER=kafka`);
//! see `support/cluster.rs` for how the nodes are started.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{Duration, Instant};

use support::cluster::{Cluster, TopicView, py};
use support::groups::{Bg, T, parse_rows, wait_for};
use support::{Kind, Rec, kafka_tool, kind, parse_records, run, run_ok, wire};

/// `describe_cluster` through one broker: `id host port rack` per node.
const DESCRIBE_CLUSTER: &str = r#"
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
desc = admin.describe_cluster(request_timeout=30).result(timeout=60)
for n in sorted(desc.nodes, key=lambda n: n.id):
    print(f"{n.id}\t{n.host}\t{n.port}\t{n.rack}")
"#;

/// With one broker as the only bootstrap server, one record (acks=all) to
/// each of the topic's partitions; prints `partition offset` per record.
const PRODUCE_TO_EVERY_PARTITION: &str = r#"
import sys
from confluent_kafka import Producer
brokers, topic, partitions, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
p = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True})
acked, errors = [], []
def done(err, msg):
    if err is not None:
        errors.append(f"partition {msg.partition()}: {err}")
    else:
        acked.append((msg.partition(), msg.offset()))
for part in range(partitions):
    p.produce(topic, key=f"{tag}-{part}".encode(), value=tag.encode(), partition=part, on_delivery=done)
left = p.flush(60)
for part, off in sorted(acked):
    print(f"{part}\t{off}")
if errors or left:
    sys.exit(f"errors: {errors}, unacknowledged: {left}")
"#;

/// Produces records `k<i>`/`r<i>` for i = 0, 1, ... at `rate` a second
/// (acks=all, idempotent, keyed so they spread over the partitions) until
/// the file `stop` exists; prints `partition offset key value` for each
/// acknowledged one as it comes, and fails if any is not acknowledged.
const PACED_PRODUCER: &str = r#"
import os, sys, time
from confluent_kafka import Producer
brokers, topic, rate, stop = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
p = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
errors = []
def done(err, msg):
    if err is not None:
        errors.append(f"{msg.key()}: {err}")
    else:
        print(f"{msg.partition()}\t{msg.offset()}\t{msg.key().decode()}\t{msg.value().decode()}")
# The pace starts once the first record is in (the producer id is there).
p.produce(topic, key=b"k0", value=b"r0", on_delivery=done)
if p.flush(60):
    sys.exit("the first record was not acknowledged within 60 s")
start, i = time.monotonic(), 1
while not os.path.exists(stop):
    due = start + i / rate
    while True:
        now = time.monotonic()
        if now >= due:
            break
        p.poll(min(due - now, 0.05))
    p.produce(topic, key=f"k{i}".encode(), value=f"r{i}".encode(), on_delivery=done)
    p.poll(0)
    i += 1
left = p.flush(120)
if errors or left:
    sys.exit(f"{len(errors)} errors (first: {errors[:5]}), {left} of {i} unacknowledged")
"#;

/// Reads every partition of a topic from offset 0 to its end offset (by
/// assignment, no group); prints `partition offset key value`.
const READ_ALL: &str = r#"
import sys, time
from confluent_kafka import Consumer, TopicPartition
brokers, topic = sys.argv[1], sys.argv[2]
c = Consumer({"bootstrap.servers": brokers, "group.id": "read-all-no-commits", "enable.auto.commit": False})
parts = sorted(c.list_topics(topic, timeout=30).topics[topic].partitions)
ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts}
c.assign([TopicPartition(topic, p, 0) for p in parts])
pos = {p: 0 for p in parts}
deadline = time.monotonic() + 60
while any(pos[p] < ends[p] for p in parts):
    if time.monotonic() > deadline:
        sys.exit(f"timed out at {pos} of {ends}")
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        sys.exit(str(m.error()))
    key = "<null>" if m.key() is None else m.key().decode()
    print(f"{m.partition()}\t{m.offset()}\t{key}\t{m.value().decode()}")
    pos[m.partition()] = m.offset() + 1
c.close()
"#;

fn create_topic(c: &Cluster, via: i32, topic: &str, partitions: u32, rf: u32) {
    let out =
        c.topics(via, &["--create", "--topic", topic, "--partitions", &partitions.to_string(), "--replication-factor", &rf.to_string()]);
    assert!(out.contains(&format!("Created topic {topic}")), "kafka-topics --create printed:\n{out}");
}

/// Every partition of `v` has a leader and `rf` replicas in sync.
fn fully_in_sync(v: &TopicView, partitions: usize, rf: usize) -> bool {
    v.len() == partitions && v.values().all(|p| p.leader.is_some() && p.replicas.len() == rf && p.isr.len() == rf)
}

fn led_by_preferred(v: &TopicView) -> bool {
    v.values().all(|p| p.leader.is_some() && p.leader == p.replicas.first().copied())
}

/// `kafka-producer-perf-test` of `count` records of `size` bytes, acks=all,
/// unthrottled, through `bootstrap`; fails unless every record is sent.
fn perf_produce(bootstrap: &str, topic: &str, count: usize, size: usize) -> String {
    let out = run_ok(
        kafka_tool("kafka-producer-perf-test")
            .args(["--bootstrap-server", bootstrap, "--topic", topic, "--num-records", &count.to_string()])
            .args(["--record-size", &size.to_string(), "--throughput", "-1", "--command-property", "acks=all"]),
        None,
        T,
    );
    let summary = out.lines().rev().find(|l| l.contains("records sent")).unwrap_or_else(|| panic!("no summary in:\n{out}"));
    assert!(summary.starts_with(&format!("{count} records sent")), "not every record was sent: {summary:?}\n{out}");
    summary.to_string()
}

// ---------------------------------------------------------------------------

#[test]
fn three_racks_placement_produce_and_group_consume() {
    let c = Cluster::start(3, 0, &[]);
    let topic = "placed";
    create_topic(&c, 1, topic, 6, 3);
    c.wait_topic(2, topic, "6 partitions, each led and 3 in sync", Duration::from_secs(30), |v| fully_in_sync(v, 6, 3));
    let view = c.describe(2, topic);
    assert_eq!(view.keys().copied().collect::<Vec<_>>(), (0..6).collect::<Vec<_>>(), "{view:#?}");
    for (p, pv) in &view {
        let replicas: BTreeSet<i32> = pv.replicas.iter().copied().collect();
        assert_eq!(replicas, BTreeSet::from([1, 2, 3]), "partition {p}: replicas {:?} are not 3 distinct brokers", pv.replicas);
        assert_eq!(pv.isr_sorted(), vec![1, 2, 3], "partition {p}: ISR {:?}", pv.isr);
        let leader = pv.leader.unwrap_or_else(|| panic!("partition {p} has no leader"));
        assert!(replicas.contains(&leader), "partition {p}: leader {leader} is not a replica");
    }
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for pv in view.values() {
        *led.entry(pv.leader.unwrap()).or_default() += 1;
    }
    assert_eq!(led.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3], "leaders are not spread over the brokers: {led:?}\n{view:#?}");

    // The racks, as a client's DescribeCluster shows them: one broker per
    // rack, so every partition (3 distinct replicas) spans the 3 racks.
    let out = run_ok(py(DESCRIBE_CLUSTER).arg(c.bootstrap_of(3)), None, T);
    let racks: BTreeMap<i32, String> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "bad describe_cluster line {l:?}");
            assert_eq!((f[1], f[2]), ("127.0.0.1", c.port(f[0].parse().unwrap()).to_string().as_str()), "{l:?}");
            (f[0].parse().unwrap(), f[3].to_string())
        })
        .collect();
    let want: BTreeMap<i32, String> = (1..=3).map(|i| (i, format!("az{i}"))).collect();
    assert_eq!(racks, want, "describe_cluster:\n{out}");
    for (p, pv) in &view {
        let spanned: BTreeSet<&str> = pv.replicas.iter().map(|r| racks[r].as_str()).collect();
        assert_eq!(spanned.len(), 3, "partition {p} spans racks {spanned:?}");
    }

    // 20000 records in through broker 1, a consumer group reads them all
    // through broker 2, the offsets add up through broker 3.
    let started = Instant::now();
    let summary = perf_produce(&c.bootstrap_of(1), topic, 20_000, 200);
    eprintln!("producer: {summary} ({:?})", started.elapsed());
    let out = run_ok(
        c.tool("kafka-consumer-perf-test", 2).args([
            "--topic",
            topic,
            "--group",
            "perf-group",
            "--num-records",
            "20000",
            "--timeout",
            "60000",
        ]),
        None,
        T,
    );
    let mut lines = out.lines().skip_while(|l| !l.contains("data.consumed.in.nMsg"));
    let header: Vec<&str> = lines.next().unwrap_or_else(|| panic!("no header in:\n{out}")).split(", ").collect();
    let row: Vec<&str> = lines.next().unwrap_or_else(|| panic!("no result line in:\n{out}")).split(", ").collect();
    let col = header.iter().position(|h| h.trim() == "data.consumed.in.nMsg").unwrap();
    assert_eq!(row[col].trim(), "20000", "the consumer group read another count:\n{out}");
    let ends = c.end_offsets(3, topic);
    assert_eq!(ends.len(), 6, "{ends:?}");
    assert_eq!(ends.values().sum::<i64>(), 20_000, "end offsets {ends:?}");
    assert!(ends.values().all(|&e| e > 0), "a partition got no record: {ends:?}");

    // The group's committed offsets, asked of the third broker.
    let ran = run(c.tool("kafka-consumer-groups", 3).args(["--describe", "--group", "perf-group"]), None, T);
    let header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"];
    let rows = parse_rows(&ran.stdout, &header);
    let committed: i64 = rows.iter().map(|r| r[3].parse::<i64>().unwrap_or(0)).sum();
    assert_eq!((rows.len(), committed), (6, 20_000), "the group's committed offsets:\n{}", ran.text());
}

#[test]
fn any_broker_answers_for_the_whole_cluster() {
    let c = Cluster::start(3, 0, &[]);
    create_topic(&c, 2, "everywhere", 3, 3);
    create_topic(&c, 3, "single", 3, 1);

    // Every broker's Metadata: the same three brokers with their ports and
    // racks, one cluster id, and the same leaders and replicas.
    let want: Vec<(i32, String, i32, Option<String>)> =
        (1..=3).map(|i| (i, "127.0.0.1".to_string(), i32::from(c.port(i)), Some(format!("az{i}")))).collect();
    let mut views: BTreeMap<&str, TopicView> = BTreeMap::new();
    for topic in ["everywhere", "single"] {
        let rf = if topic == "single" { 1 } else { 3 };
        let first = c.wait_topic(1, topic, "every partition led and in sync", Duration::from_secs(30), |v| fully_in_sync(v, 3, rf));
        for id in [2, 3] {
            c.wait_topic(id, topic, "the same leaders and replicas as node 1", Duration::from_secs(30), |v| *v == first);
        }
        views.insert(topic, first);
    }
    let mut cluster_ids = BTreeSet::new();
    for id in 1..=3 {
        let seen: Vec<_> = c.brokers_seen(id).unwrap().into_iter().map(|b| (b.id, b.host, b.port, b.rack)).collect();
        assert_eq!(seen, want, "brokers in node {id}'s Metadata");
        let m = c.metadata(id, Some(&[])).unwrap();
        assert!((1..=3).contains(&m.controller_id.0), "node {id}'s Metadata names controller {:?}", m.controller_id);
        cluster_ids.insert(m.cluster_id.map(|s| s.to_string()));
    }
    assert_eq!(cluster_ids.len(), 1, "the brokers disagree on the cluster id: {cluster_ids:?}");
    assert!(cluster_ids.first().unwrap().is_some(), "no cluster id");
    let single: BTreeSet<i32> = views["single"].values().map(|p| p.replicas[0]).collect();
    assert_eq!(single.len(), 3, "single's 3 partitions are not one on each broker: {:#?}", views["single"]);

    // A Produce to a broker that does not lead the partition (a follower,
    // or a broker without a replica) is refused with NOT_LEADER_OR_FOLLOWER;
    // the leader takes it.
    for (topic, view) in &views {
        for (&p, pv) in view {
            let leader = pv.leader.unwrap();
            for id in (1..=3).filter(|&id| id != leader) {
                let (err, _) = c.produce_to(id, topic, p, wire::batch(&[b"refused"]));
                let role = if pv.replicas.contains(&id) { "follower" } else { "non-replica" };
                assert_eq!(err, 6, "{topic}-{p} produced to {role} {id} (leader {leader}): error {err}, not NOT_LEADER_OR_FOLLOWER");
            }
            let (err, base) = c.produce_to(leader, topic, p, wire::batch(&[b"accepted"]));
            assert_eq!((err, base), (0, 0), "{topic}-{p} produced to its leader {leader}");
        }
    }

    // A client given any one broker finds every partition's leader.
    for id in 1..=3 {
        let out = run_ok(py(PRODUCE_TO_EVERY_PARTITION).args([&c.bootstrap_of(id), "everywhere", "3", &format!("via-{id}")]), None, T);
        let acked: Vec<(i32, i64)> = out
            .lines()
            .map(|l| {
                let (p, o) = l.split_once('\t').unwrap_or_else(|| panic!("bad line {l:?}"));
                (p.parse().unwrap(), o.parse().unwrap())
            })
            .collect();
        let want: Vec<(i32, i64)> = (0..3).map(|p| (p, i64::from(id))).collect();
        assert_eq!(acked, want, "records produced with only node {id} as bootstrap:\n{out}");
    }
    for id in 1..=3 {
        let ends = c.end_offsets(id, "everywhere");
        assert_eq!(ends, BTreeMap::from([(0, 4), (1, 4), (2, 4)]), "end offsets through node {id}");
    }
}

#[test]
fn leader_fails_over_and_preferred_leader_returns() {
    let mut c = Cluster::start(
        3,
        0,
        &[("broker.session.timeout.ms", "3000"), ("broker.heartbeat.interval.ms", "500"), ("auto.leader.rebalance.enable", "false")],
    );
    let topic = "failover";
    create_topic(&c, 1, topic, 3, 3);
    let before = c
        .wait_topic(1, topic, "preferred leaders, all in sync", Duration::from_secs(30), |v| fully_in_sync(v, 3, 3) && led_by_preferred(v));
    perf_produce(&c.bootstrap(), topic, 1000, 100);

    let dead = before[&0].leader.unwrap();
    let alive: Vec<i32> = (1..=3).filter(|&i| i != dead).collect();
    c.kill(dead);
    let killed = Instant::now();
    let moved = |v: &TopicView| v.len() == 3 && v.values().all(|p| p.leader.is_some_and(|l| l != dead) && !p.isr.contains(&dead));
    c.wait_topic(alive[0], topic, &format!("leaders and ISRs without killed node {dead}"), Duration::from_secs(30), moved);
    eprintln!("node {dead} killed; partition 0 led elsewhere and ISRs shrunk after {:?}", killed.elapsed());
    let after = c.describe(alive[1], topic);
    assert!(moved(&after), "kafka-topics --describe after node {dead} was killed:\n{after:#?}");
    assert_eq!(after[&0].isr_sorted(), alive, "partition 0's ISR");
    wait_for(&format!("node {dead} to leave the brokers in Metadata"), Duration::from_secs(30), || {
        alive.iter().all(|&id| c.brokers_seen(id).is_some_and(|b| b.iter().map(|b| b.id).collect::<Vec<_>>() == alive)).then_some(())
    });
    // acks=all still works with two of three replicas.
    perf_produce(&c.bootstrap_of_all(&alive), topic, 1000, 100);

    c.restart(dead);
    let back =
        c.wait_topic(alive[0], topic, &format!("node {dead} back in every ISR"), Duration::from_secs(60), |v| fully_in_sync(v, 3, 3));
    let not_preferred: Vec<i32> = back.iter().filter(|(_, p)| p.leader != p.replicas.first().copied()).map(|(&i, _)| i).collect();
    assert!(not_preferred.contains(&0), "partition 0 should not be led by its preferred leader {dead} before the election:\n{back:#?}");

    let out = run_ok(c.tool("kafka-leader-election", alive[0]).args(["--election-type", "PREFERRED", "--all-topic-partitions"]), None, T);
    assert!(out.contains("Successfully completed leader election (PREFERRED) for partitions"), "kafka-leader-election printed:\n{out}");
    for p in &not_preferred {
        assert!(out.contains(&format!("{topic}-{p}")), "kafka-leader-election does not name {topic}-{p}:\n{out}");
    }
    c.wait_topic(dead, topic, "every partition led by its first replica", Duration::from_secs(30), led_by_preferred);
    let elected = c.describe(alive[1], topic);
    assert!(led_by_preferred(&elected) && fully_in_sync(&elected, 3, 3), "after kafka-leader-election:\n{elected:#?}");
    assert_eq!(elected[&0].leader, Some(dead));
    assert_eq!(c.end_offsets(dead, topic).values().sum::<i64>(), 2000);
}

/// Controlled shutdown: a broker stopped with SIGTERM hands its partitions
/// to the other replicas and is fenced before it exits, so right after it
/// is gone no broker names it as a leader, in an ISR or in Metadata. The
/// session timeout is long (30 s) so that only the hand-over, not the
/// controller noticing silence, can explain that; acks=all writes keep
/// being acknowledged across the stop.
#[test]
fn sigterm_hands_leadership_over_before_stopping() {
    let mut c = Cluster::start(
        3,
        0,
        &[("broker.session.timeout.ms", "30000"), ("broker.heartbeat.interval.ms", "500"), ("auto.leader.rebalance.enable", "false")],
    );
    let topic = "handover";
    create_topic(&c, 1, topic, 6, 3);
    let before = c
        .wait_topic(1, topic, "preferred leaders, all in sync", Duration::from_secs(30), |v| fully_in_sync(v, 6, 3) && led_by_preferred(v));
    let going = before[&0].leader.unwrap();
    let led: Vec<i32> = before.iter().filter(|(_, p)| p.leader == Some(going)).map(|(&i, _)| i).collect();
    assert!(!led.is_empty());
    let alive: Vec<i32> = (1..=3).filter(|&i| i != going).collect();

    let stop_file = c.folder().join("stop-producing");
    let mut producer =
        Bg::spawn("producer", c.folder(), py(PACED_PRODUCER).args([&c.bootstrap_of_all(&alive), topic, "200"]).arg(&stop_file));
    wait_for("the producer's first acknowledgements", Duration::from_secs(60), || (producer.out_lines().len() >= 20).then_some(()));

    let stopping = Instant::now();
    c.stop(going);
    eprintln!("node {going} (leader of partitions {led:?}) stopped {:?} after SIGTERM", stopping.elapsed());
    let handed_over = |v: &TopicView| v.len() == 6 && v.values().all(|p| p.leader.is_some_and(|l| l != going) && !p.isr.contains(&going));
    for &id in &alive {
        let v = c.wait_topic(id, topic, &format!("node {going}'s partitions handed over"), Duration::from_secs(10), handed_over);
        assert_eq!(v[&0].isr_sorted(), alive, "partition 0's ISR as node {id} sees it");
        wait_for(&format!("node {id} to drop node {going} from Metadata, well within the 30 s session"), Duration::from_secs(10), || {
            c.brokers_seen(id).is_some_and(|b| b.iter().map(|b| b.id).collect::<Vec<_>>() == alive).then_some(())
        });
    }
    let acked_at_stop = producer.out_lines().len();
    wait_for("acknowledgements after the stop", Duration::from_secs(30), || {
        (producer.out_lines().len() >= acked_at_stop + 200).then_some(())
    });
    fs::write(&stop_file, b"").unwrap();
    let status = producer.wait(Duration::from_secs(90));
    assert!(status.success(), "the producer failed ({status}):\n{}", producer.stderr());
    let acked = parse_records(&producer.stdout());
    assert_eq!(c.end_offsets(alive[0], topic).values().sum::<i64>(), acked.len() as i64, "records in the topic vs acknowledged");
}

/// acks=all fails fast with NOT_ENOUGH_REPLICAS once too few replicas are
/// in sync (Kafka's min.insync.replicas; fjord needs a raft majority in
/// any case), and a replica coming back ends it. Kafka still takes acks=1
/// with only the leader in sync; fjord refuses it the same way, as a raft
/// leader cut off from its majority accepts no write (documented).
/// Replicas 1, 4 and 5 with three controllers apart (1, 2, 3), so the
/// controller quorum outlives the two replicas killed and fences them.
#[test]
fn acks_all_fails_fast_without_enough_in_sync_replicas() {
    let mut c = Cluster::start(
        3,
        2,
        &[("broker.session.timeout.ms", "3000"), ("broker.heartbeat.interval.ms", "500"), ("auto.leader.rebalance.enable", "false")],
    );
    let topic = "min-isr";
    let out = c.topics(1, &["--create", "--topic", topic, "--replica-assignment", "1:4:5", "--config", "min.insync.replicas=2"]);
    assert!(out.contains("Created topic"), "kafka-topics --create printed:\n{out}");
    c.wait_topic(1, topic, "leader 1, all in sync", Duration::from_secs(30), |v| fully_in_sync(v, 1, 3) && v[&0].leader == Some(1));
    assert_eq!(c.produce_to(1, topic, 0, wire::batch(&[b"all in sync"])).0, 0);

    c.kill(4);
    c.kill(5);
    c.wait_topic(1, topic, "the ISR down to the leader", Duration::from_secs(60), |v| v[&0].leader == Some(1) && v[&0].isr == [1]);
    let (err, _) = c.produce_to(1, topic, 0, wire::batch(&[b"refused"]));
    assert_eq!(err, 19, "acks=all with only the leader in sync: error {err}, not NOT_ENOUGH_REPLICAS");
    let (err, base) = c.produce_acks(1, topic, 0, wire::batch(&[b"leader only"]), 1);
    let (taken, next) = match c.kind() {
        Kind::Kafka => ((0, 1), 2),
        Kind::Fjord => ((19, -1), 1),
    };
    assert_eq!((err, base), taken, "acks=1 with only the leader in sync");

    // Node 4 back: either of the two may lead now.
    c.restart(4);
    let v = c.wait_topic(1, topic, "node 4 back in the ISR", Duration::from_secs(60), |v| {
        v[&0].isr_sorted() == [1, 4] && v[&0].leader.is_some_and(|l| l == 1 || l == 4)
    });
    // As a client does: NOT_LEADER_OR_FOLLOWER (an election settling) or
    // NOT_ENOUGH_REPLICAS (the ISR news on its way) means look again.
    let mut leader = v[&0].leader.unwrap();
    let (err, base) = wait_for("an answer other than a retriable error", Duration::from_secs(30), || {
        let (err, base) = c.produce_to(leader, topic, 0, wire::batch(&[b"two in sync"]));
        if err == 6 || err == 19 {
            leader = c.topic_view(1, topic).and_then(|v| v[&0].leader).unwrap_or(leader);
            std::thread::sleep(Duration::from_millis(200));
            return None;
        }
        Some((err, base))
    });
    assert_eq!((err, base), (0, next), "acks=all with two of three in sync");
    assert_eq!(c.end_offsets(4, topic)[&0], next + 1);
}

#[test]
fn reassign_to_a_fourth_broker_under_load_loses_nothing() {
    let c = Cluster::start(3, 1, &[]);
    let topic = "moving";
    // Placed by hand on nodes 1-3 (leaders first), as before a fourth broker
    // joins.
    let out = c.topics(1, &["--create", "--topic", topic, "--replica-assignment", "1:2:3,2:3:1,3:1:2,1:3:2"]);
    assert!(out.contains(&format!("Created topic {topic}")), "kafka-topics --create printed:\n{out}");
    let before = c.wait_topic(4, topic, "4 partitions led, all in sync", Duration::from_secs(30), |v| fully_in_sync(v, 4, 3));
    let placed: Vec<Vec<i32>> = before.values().map(|p| p.replicas.clone()).collect();
    assert_eq!(placed, [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2]], "replicas before the reassignment: {before:#?}");

    // Partition 0 loses its leader to node 4, partition 1 a follower; 2
    // and 3 stay.
    let leader0 = before[&0].leader.unwrap();
    let target0: Vec<i32> = before[&0].replicas.iter().map(|&r| if r == leader0 { 4 } else { r }).collect();
    let leader1 = before[&1].leader.unwrap();
    let follower1 = *before[&1].replicas.iter().rfind(|&&r| r != leader1).unwrap();
    let target1: Vec<i32> = before[&1].replicas.iter().map(|&r| if r == follower1 { 4 } else { r }).collect();
    let plan = format!(
        r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":{target0:?}}},{{"topic":"{topic}","partition":1,"replicas":{target1:?}}}]}}"#
    );
    let plan_file = c.folder().join("reassignment.json");
    fs::write(&plan_file, &plan).unwrap();

    // A producer at 200 records a second, acks=all, through every broker,
    // from before the reassignment starts until after it is done.
    let stop = c.folder().join("stop-producing");
    let mut producer = Bg::spawn("producer", c.folder(), py(PACED_PRODUCER).args([&c.bootstrap(), topic, "200"]).arg(&stop));
    wait_for("the producer's first 200 acknowledgements", Duration::from_secs(60), || (producer.out_lines().len() >= 200).then_some(()));

    let started = Instant::now();
    let reassign =
        |args: &[&str]| run_ok(c.tool("kafka-reassign-partitions", 2).arg("--reassignment-json-file").arg(&plan_file).args(args), None, T);
    let acked_before = producer.out_lines().len();
    let out = reassign(&["--execute"]);
    assert!(out.contains("Successfully started partition reassignment"), "kafka-reassign-partitions --execute printed:\n{out}");
    wait_for("kafka-reassign-partitions --verify to report both partitions completed", Duration::from_secs(90), || {
        let out = reassign(&["--verify"]);
        let done = |p: i32| out.contains(&format!("Reassignment of partition {topic}-{p} is completed"));
        (done(0) && done(1)).then_some(())
    });
    let acked_during = producer.out_lines().len() - acked_before;
    eprintln!("reassignment completed after {:?}; {acked_during} records acknowledged meanwhile", started.elapsed());
    assert!(producer.is_running(), "the producer stopped:\n{}", producer.stderr());
    assert!(acked_during > 0, "no record was acknowledged while the partitions moved");

    let moved = |v: &TopicView| {
        let want =
            |p: i32, t: &[i32]| v[&p].replicas == t && v[&p].isr_sorted() == sorted(t) && v[&p].leader.is_some_and(|l| t.contains(&l));
        v.len() == 4 && want(0, &target0) && want(1, &target1) && want(2, &before[&2].replicas) && want(3, &before[&3].replicas)
    };
    c.wait_topic(3, topic, "the new replica lists", Duration::from_secs(30), moved);
    let after = c.describe(4, topic);
    assert!(moved(&after), "kafka-topics --describe after the reassignment:\n{after:#?}\nbefore:\n{before:#?}");

    // Node 4 holds the moved partitions; the removed replicas' directories go.
    let entries = |id: i32| -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(c.data_dir(id)).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let node4 = entries(4);
    for p in [0, 1] {
        assert!(node4.contains(&format!("{topic}-{p}")), "node 4 has no {topic}-{p} directory: {node4:?}");
    }
    for (p, removed) in [(0, leader0), (1, follower1)] {
        let dir = format!("{topic}-{p}");
        wait_for(&format!("{dir} to leave node {removed}'s log dir"), Duration::from_secs(30), || {
            // Kafka renames a removed replica's directory `<dir>.<id>-delete`
            // and deletes it a minute later; fjord deletes it.
            let left: Vec<String> = entries(removed).into_iter().filter(|e| *e == dir || e.starts_with(&format!("{dir}."))).collect();
            let gone = match c.kind() {
                Kind::Fjord => left.is_empty(),
                Kind::Kafka => left.iter().all(|e| e.ends_with("-delete")),
            };
            gone.then_some(())
        });
    }

    // Some more on the new replicas, then every acknowledged record is
    // there, once, and nothing else.
    let more = producer.out_lines().len() + 200;
    wait_for("200 more acknowledgements after the move", Duration::from_secs(60), || (producer.out_lines().len() >= more).then_some(()));
    fs::write(&stop, "").unwrap();
    let status = producer.wait(Duration::from_secs(150));
    assert!(status.success(), "the producer failed ({status}):\n{}", producer.stderr());
    let acked = parse_records(&producer.stdout());
    let keys: BTreeSet<&str> = acked.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), acked.len(), "a record acknowledged twice");
    let ends = c.end_offsets(4, topic);
    assert_eq!(ends.values().sum::<i64>(), acked.len() as i64, "end offsets {ends:?} against {} acknowledged records", acked.len());
    let read = parse_records(&run_ok(py(READ_ALL).args([&c.bootstrap(), topic]), None, T));
    let (acked, read): (BTreeSet<Rec>, BTreeSet<Rec>) = (acked.into_iter().collect(), read.into_iter().collect());
    let missing: Vec<&Rec> = acked.difference(&read).take(5).collect();
    let extra: Vec<&Rec> = read.difference(&acked).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "read back ≠ acknowledged; missing (first 5): {missing:?}, extra: {extra:?}");
}

fn sorted(v: &[i32]) -> Vec<i32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

#[test]
fn kraft_config_errors_are_readable() {
    if kind() == Kind::Kafka {
        eprintln!("kraft_config_errors_are_readable: fjord's messages only (Kafka words its own differently); nothing to run");
        return;
    }
    let dir = tempfile::Builder::new().prefix("fjord-kraft-config-").tempdir().unwrap();
    let (p, c1, c2) = (support::free_port(), support::free_port(), support::free_port());
    let start = |overrides: &[String]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.arg("start").args(["--override", &format!("log.dirs={}", dir.path().display())]);
        for o in overrides {
            cmd.args(["--override", o]);
        }
        let started = Instant::now();
        let ran = run(&mut cmd, None, Duration::from_secs(20));
        assert!(started.elapsed() < Duration::from_secs(10), "{cmd:?} took {:?} to fail", started.elapsed());
        assert!(!ran.status.success(), "{cmd:?} started:\n{}", ran.text());
        format!("{}{}", ran.stdout, ran.stderr)
    };

    // A broker and controller whose node.id is not one of the voters.
    let out = start(&[
        "node.id=5".into(),
        "process.roles=broker,controller".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c1}"),
        "controller.listener.names=CONTROLLER".into(),
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{c2}"),
    ]);
    for key in ["node.id", "controller.quorum.voters"] {
        assert!(out.contains(key), "the error for a controller outside the voters does not name {key}:\n{out}");
    }
    // A broker with no controllers to register with.
    let out = start(&["node.id=5".into(), "process.roles=broker".into(), format!("listeners=PLAINTEXT://127.0.0.1:{p}")]);
    for key in ["process.roles", "controller.quorum.voters"] {
        assert!(out.contains(key), "the error for a broker without voters does not name {key}:\n{out}");
    }
    // A controller-only node with a client listener: it would serve nobody.
    let out = start(&[
        "node.id=1".into(),
        "process.roles=controller".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c1}"),
        "controller.listener.names=CONTROLLER".into(),
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{c1}"),
    ]);
    for words in ["process.roles=controller", "PLAINTEXT", "listeners"] {
        assert!(out.contains(words), "the error for a controller-only node with a client listener does not say {words:?}:\n{out}");
    }
    // A controller-only node whose node.id is not a voter.
    let out = start(&[
        "node.id=2".into(),
        "process.roles=controller".into(),
        format!("listeners=CONTROLLER://127.0.0.1:{c1}"),
        "controller.listener.names=CONTROLLER".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{c2}"),
    ]);
    for key in ["node.id", "controller.quorum.voters"] {
        assert!(out.contains(key), "the error for a controller outside the voters does not name {key}:\n{out}");
    }
}
