//! DescribeQuorum (`kafka-metadata-quorum describe --status / --replication`)
//! on a cluster of three controllers and a broker-only node: every node
//! answers with the active controller's view (voters 1-3, observer 4), and
//! after the active controller is killed another one leads in a later epoch.
//!
//! Then the production layout: three controller-only nodes and three
//! brokers, the quorum failing over and the brokers carrying on.
//!
//! Passes against Apache Kafka too (`FJORD_TEST_BROKER=kafka`). Offsets and
//! directory ids differ between the two (fjord's are raft positions and it
//! has no directory ids), so only what both must agree on is asserted.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use support::cluster::{Cluster, TopicView};
use support::groups::{T, wait_for};
use support::{kafka_tool, run, run_ok, wire};

const METADATA_TOPIC: &str = "__cluster_metadata";
const VOTERS: [i32; 3] = [1, 2, 3];
const OBSERVER: i32 = 4;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// `describe --status`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    leader: i32,
    epoch: i32,
    high_watermark: i64,
    voters: Vec<i32>,
    observers: Vec<i32>,
}

/// Reads `Key:   value` lines; the replica lists are JSON arrays of
/// `{"id": 1, "directoryId": ..., "endpoints": [...]}`.
fn parse_status(out: &str) -> Status {
    let fields: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
    let field = |k: &str| *fields.get(k).unwrap_or_else(|| panic!("no {k} in describe --status:\n{out}"));
    let num = |k: &str| field(k).parse::<i64>().unwrap_or_else(|_| panic!("bad {k} in describe --status:\n{out}"));
    let ids = |k: &str| -> Vec<i32> {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(field(k)).unwrap_or_else(|e| panic!("{k} is not a JSON list ({e}):\n{out}"));
        let mut ids: Vec<i32> = list.iter().map(|r| r["id"].as_i64().unwrap_or_else(|| panic!("no id in {r} of:\n{out}")) as i32).collect();
        ids.sort_unstable();
        ids
    };
    Status {
        leader: num("LeaderId") as i32,
        epoch: num("LeaderEpoch") as i32,
        high_watermark: num("HighWatermark"),
        voters: ids("CurrentVoters"),
        observers: ids("CurrentObservers"),
    }
}

/// One row of `describe --replication`.
#[derive(Debug, Clone)]
struct Row {
    id: i32,
    log_end_offset: i64,
    lag: i64,
    last_fetch_ms: i64,
    last_caught_up_ms: i64,
    status: String,
}

/// Reads the table of `describe --replication` by its header's column names.
fn parse_replication(out: &str) -> Vec<Row> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> =
        lines.next().unwrap_or_else(|| panic!("no header in describe --replication:\n{out}")).split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in:\n{out}"));
    let (id, leo, lag, fetch, caught_up, status) =
        (col("NodeId"), col("LogEndOffset"), col("Lag"), col("LastFetchTimestamp"), col("LastCaughtUpTimestamp"), col("Status"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), header.len(), "row {l:?} does not fit the header in:\n{out}");
            let num = |i: usize| f[i].parse::<i64>().unwrap_or_else(|_| panic!("bad {} in {l:?} of:\n{out}", header[i]));
            Row {
                id: num(id) as i32,
                log_end_offset: num(leo),
                lag: num(lag),
                last_fetch_ms: num(fetch),
                last_caught_up_ms: num(caught_up),
                status: f[status].to_string(),
            }
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// `kafka-metadata-quorum describe --status` through node `via`, or `None`
/// if the tool fails (no leader yet).
fn try_status(c: &Cluster, via: i32) -> Option<(Status, String)> {
    let ran = run(c.tool("kafka-metadata-quorum", via).args(["describe", "--status"]), None, T);
    if !ran.status.success() {
        eprintln!("describe --status through node {via} failed:\n{}", ran.text());
        return None;
    }
    Some((parse_status(&ran.stdout), ran.stdout))
}

/// Waits until `describe --status` through `via` shows the full quorum:
/// voters 1-3, node 4 among the observers, the leader a voter.
fn settled_status(c: &Cluster, via: i32) -> Status {
    wait_for(&format!("describe --status through node {via} to show voters {VOTERS:?} and observer {OBSERVER}"), T, || {
        let (s, out) = try_status(c, via)?;
        eprintln!("describe --status through node {via}:\n{out}");
        (s.voters == VOTERS && s.observers.contains(&OBSERVER) && VOTERS.contains(&s.leader) && s.high_watermark > 0).then_some(s)
    })
}

/// DescribeQuorum `version` for these topics and partitions, sent to node `id`.
fn describe_raw(c: &Cluster, id: i32, version: i16, topics: &[(&str, &[i32])]) -> DescribeQuorumResponse {
    let topics = topics
        .iter()
        .map(|(name, partitions)| {
            TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(partitions.iter().map(|p| PartitionData::default().with_partition_index(*p)).collect())
        })
        .collect();
    let mut s = c.connect(id).unwrap_or_else(|| panic!("node {id} does not accept connections"));
    wire::request(&mut s, ApiKey::DescribeQuorum, version, &DescribeQuorumRequest::default().with_topics(topics))
}

/// The quorum as node `id` answers a raw DescribeQuorum: (leader, epoch,
/// voters, observers); `None` while it answers with an error.
fn raw_quorum(c: &Cluster, id: i32, version: i16) -> Option<(i32, i32, Vec<i32>, Vec<i32>)> {
    let resp = describe_raw(c, id, version, &[(METADATA_TOPIC, &[0])]);
    assert_eq!(resp.error_code, 0, "node {id}, v{version}: {resp:?}");
    let [t] = resp.topics.as_slice() else { panic!("node {id}, v{version}: not one topic: {resp:?}") };
    let [p] = t.partitions.as_slice() else { panic!("node {id}, v{version}: not one partition: {resp:?}") };
    assert_eq!((t.topic_name.0.as_str(), p.partition_index), (METADATA_TOPIC, 0), "node {id}, v{version}");
    if p.error_code != 0 {
        eprintln!("node {id}, v{version}: DescribeQuorum error {}", p.error_code);
        return None;
    }
    let leader = p.current_voters.iter().find(|v| v.replica_id == p.leader_id).unwrap_or_else(|| panic!("leader not a voter: {p:?}"));
    assert!(leader.log_end_offset >= p.high_watermark, "node {id}, v{version}: {p:?}");
    if p.high_watermark < 0 {
        // Kafka's new leader knows no high watermark until it commits in its epoch.
        eprintln!("node {id}, v{version}: no high watermark yet");
        return None;
    }
    if version >= 2 {
        let mut with_endpoints: Vec<i32> = resp.nodes.iter().filter(|n| !n.listeners.is_empty()).map(|n| n.node_id.0).collect();
        with_endpoints.sort_unstable();
        assert_eq!(with_endpoints, VOTERS, "node {id}, v{version}: each voter's controller listener: {resp:?}");
    } else {
        assert!(resp.nodes.is_empty());
    }
    let sorted = |v: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
        let mut ids: Vec<i32> = v.iter().map(|r| r.replica_id.0).collect();
        ids.sort_unstable();
        ids
    };
    Some((p.leader_id.0, p.leader_epoch, sorted(&p.current_voters), sorted(&p.observers)))
}

#[test]
fn metadata_quorum_is_described_through_any_node_and_follows_a_new_leader() {
    let mut c = Cluster::start(3, 1, &[]);

    // The tool picks which broker to ask, so ask each node directly too:
    // every one answers with the active controller's view, in every version.
    let (leader, epoch, _, _) = wait_for("a raw DescribeQuorum to show observer 4", T, || {
        raw_quorum(&c, OBSERVER, 2).filter(|(_, _, voters, observers)| voters == &VOTERS && observers.contains(&OBSERVER))
    });
    for id in c.ids() {
        for version in 0..=2 {
            let (l, e, voters, observers) =
                wait_for(&format!("node {id} to answer DescribeQuorum v{version}"), T, || raw_quorum(&c, id, version));
            assert_eq!((l, e, voters.as_slice()), (leader, epoch, VOTERS.as_slice()), "node {id}, v{version}");
            assert!(observers.contains(&OBSERVER), "node {id}, v{version}: observers {observers:?}");
        }
    }
    // Kafka's raft answers any other partition with UNKNOWN_TOPIC_OR_PARTITION.
    let asked: [(&str, &[i32]); 2] = [(METADATA_TOPIC, &[1]), ("orders", &[0])];
    let resp = describe_raw(&c, OBSERVER, 2, &asked);
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let answered: Vec<(String, i32, i16)> = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_name.0.to_string(), p.partition_index, p.error_code)))
        .collect();
    let want = [(METADATA_TOPIC.to_string(), 1, UNKNOWN_TOPIC_OR_PARTITION), ("orders".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION)];
    assert_eq!(answered, want, "{resp:?}");

    // The tool through the broker-only node and through the controller.
    let through_observer = settled_status(&c, OBSERVER);
    let through_controller = settled_status(&c, through_observer.leader);
    assert_eq!(
        (through_observer.leader, through_observer.epoch),
        (through_controller.leader, through_controller.epoch),
        "node {OBSERVER} and the controller disagree:\n{through_observer:?}\n{through_controller:?}"
    );
    assert_eq!(through_observer.leader, leader, "the raw answers named another leader");

    // Every voter and the observer, each with its log end.
    let follower = *VOTERS.iter().find(|&&v| v != leader).expect("a follower");
    let rows = wait_for("describe --replication to list every replica", T, || {
        let out = run_ok(c.tool("kafka-metadata-quorum", follower).args(["describe", "--replication"]), None, T);
        eprintln!("describe --replication through node {follower}:\n{out}");
        let rows = parse_replication(&out);
        let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
        (VOTERS.iter().all(|v| ids.contains(v)) && ids.contains(&OBSERVER)).then_some(rows)
    });
    let now = now_ms();
    for r in &rows {
        let want = if r.id == leader {
            "Leader"
        } else if VOTERS.contains(&r.id) {
            "Follower"
        } else {
            "Observer"
        };
        assert_eq!(r.status, want, "{r:?}");
        assert!(r.log_end_offset > 0 && r.lag >= 0, "{r:?}");
        if VOTERS.contains(&r.id) || r.id == OBSERVER {
            // Heard from within the last two minutes, by the leader's clock (this machine's).
            assert!((now - 120_000..=now + 1_000).contains(&r.last_fetch_ms), "{r:?} at {now}");
            assert!(r.last_caught_up_ms == -1 || r.last_caught_up_ms <= now + 1_000, "{r:?} at {now}");
        }
    }
    let leader_row = rows.iter().find(|r| r.id == leader).expect("the leader's row");
    assert_eq!(leader_row.lag, 0, "{leader_row:?}");

    // Kill the active controller: another voter leads, in a later epoch.
    c.kill(leader);
    let killed = Instant::now();
    let alive_voter = *VOTERS.iter().find(|&&v| v != leader).expect("another voter");
    let after = wait_for(&format!("a new leader after node {leader} was killed"), Duration::from_secs(90), || {
        let (s, out) = try_status(&c, OBSERVER)?;
        eprintln!("describe --status through node {OBSERVER} after killing node {leader}:\n{out}");
        (s.leader != leader && VOTERS.contains(&s.leader)).then_some(s)
    });
    eprintln!("node {} leads after {:?}", after.leader, killed.elapsed());
    assert!(after.epoch > epoch, "the new leader's epoch {} is not above {epoch}: {after:?}", after.epoch);
    assert_eq!(after.voters, VOTERS, "the voters do not change: {after:?}");
    let (l, e, _, _) = wait_for(&format!("node {alive_voter} to answer DescribeQuorum"), T, || raw_quorum(&c, alive_voter, 2));
    assert_eq!((l, e), (after.leader, after.epoch), "node {alive_voter} disagrees with the tool");
}

/// Every partition of `v` has a leader and its replicas are `brokers`, all in sync.
fn placed_on(v: &TopicView, partitions: usize, brokers: &[i32]) -> bool {
    v.len() == partitions
        && v.values().all(|p| {
            let mut r = p.replicas.clone();
            r.sort_unstable();
            p.leader.is_some_and(|l| brokers.contains(&l)) && r == brokers && p.isr_sorted() == brokers
        })
}

/// `kafka-producer-perf-test`: `count` records, acks=all, through `bootstrap`.
fn produce(bootstrap: &str, topic: &str, count: usize) {
    let out = run_ok(
        kafka_tool("kafka-producer-perf-test")
            .args(["--bootstrap-server", bootstrap, "--topic", topic, "--num-records", &count.to_string()])
            .args(["--record-size", "100", "--throughput", "-1", "--command-property", "acks=all"]),
        None,
        T,
    );
    let summary = out.lines().rev().find(|l| l.contains("records sent")).unwrap_or_else(|| panic!("no summary in:\n{out}"));
    assert!(summary.starts_with(&format!("{count} records sent")), "not every record was sent: {summary:?}\n{out}");
}

/// Waits until `describe --status` through broker `via` names a leader
/// among `voters` other than `not`, with every voter and `observers` listed.
fn status_led_by_another(c: &Cluster, via: i32, not: i32, voters: &[i32], observers: &[i32]) -> Status {
    wait_for(&format!("describe --status through node {via} to name a leader other than {not}"), Duration::from_secs(90), || {
        let (s, out) = try_status(c, via)?;
        eprintln!("describe --status through node {via}:\n{out}");
        let listed = s.voters == voters && observers.iter().all(|o| s.observers.contains(o));
        (listed && s.leader != not && voters.contains(&s.leader)).then_some(s)
    })
}

/// Kafka's production layout: controllers 1-3 are `process.roles=controller`
/// (a CONTROLLER listener only), brokers 4-6 are `process.roles=broker`.
/// The controllers are not brokers (Metadata never names them, no replica is
/// placed on them); the brokers are the quorum's observers. The active
/// controller killed (-9) and stopped (SIGTERM): another voter leads, and
/// topics are created, brokers fenced and records acknowledged as before.
#[test]
fn controller_only_nodes_run_the_quorum_for_the_brokers() {
    let mut c = Cluster::start_separate(3, 3, &[]);
    let (voters, brokers) = (c.voter_ids(), c.broker_ids());
    assert_eq!((voters.as_slice(), brokers.as_slice()), ([1, 2, 3].as_slice(), [4, 5, 6].as_slice()));

    // Only the brokers are brokers (Cluster::start_separate waited until
    // every broker's Metadata lists exactly 4, 5 and 6).
    for &b in &brokers {
        let seen: Vec<i32> = c.brokers_seen(b).expect("an answer").iter().map(|s| s.id).collect();
        assert_eq!(seen, brokers, "broker {b}'s Metadata");
    }
    let status = status_led_by_another(&c, 4, -1, &voters, &brokers);
    assert!(!status.observers.iter().any(|o| voters.contains(o)), "a voter is also an observer: {status:?}");

    // Topics go on the brokers only.
    let out = c.topics(4, &["--create", "--topic", "orders", "--partitions", "6", "--replication-factor", "3"]);
    assert!(out.contains("Created topic orders"), "{out}");
    c.wait_topic(5, "orders", "orders on brokers 4-6, all in sync", T, |v| placed_on(v, 6, &brokers));
    let out = run(c.tool("kafka-topics", 4).args(["--create", "--topic", "too-wide", "--replication-factor", "4"]), None, T);
    assert!(!out.status.success() && out.text().contains("InvalidReplicationFactor"), "RF 4 over 3 brokers:\n{}", out.text());
    produce(&c.bootstrap(), "orders", 3000);

    // The active controller killed: another voter leads, and the quorum
    // still writes metadata (a new topic) and answers heartbeats.
    let first = status.leader;
    c.kill(first);
    let second = status_led_by_another(&c, 5, first, &voters, &brokers);
    assert!(second.epoch > status.epoch, "{second:?} after {status:?}");
    let out = c.topics(6, &["--create", "--topic", "after-failover", "--partitions", "3", "--replication-factor", "3"]);
    assert!(out.contains("Created topic after-failover"), "{out}");
    c.wait_topic(4, "after-failover", "after-failover on brokers 4-6", T, |v| placed_on(v, 3, &brokers));
    produce(&c.bootstrap(), "orders", 3000);

    // The new controller fences a broker that stops heartbeating, and lets
    // it back in when it returns.
    c.kill(6);
    wait_for("brokers 4 and 5 to see broker 6 fenced", Duration::from_secs(60), || {
        [4, 5].iter().all(|&b| c.brokers_seen(b).is_some_and(|s| s.iter().map(|s| s.id).collect::<Vec<_>>() == [4, 5])).then_some(())
    });
    c.restart(6);

    // The killed controller rejoins as a follower and catches up.
    c.restart(first);
    wait_for(&format!("node {first} to follow the quorum again"), T, || {
        let out = run_ok(c.tool("kafka-metadata-quorum", 4).args(["describe", "--replication"]), None, T);
        let row = parse_replication(&out).into_iter().find(|r| r.id == first)?;
        eprintln!("describe --replication through node 4:\n{out}");
        (row.status == "Follower" && row.log_end_offset > 0 && row.lag == 0).then_some(())
    });

    // SIGTERM to the active controller: it exits, another voter leads.
    let now = status_led_by_another(&c, 4, -1, &voters, &brokers);
    c.stop(now.leader);
    let third = status_led_by_another(&c, 4, now.leader, &voters, &brokers);
    assert!(third.epoch > now.epoch, "{third:?} after {now:?}");
    produce(&c.bootstrap(), "orders", 3000);

    // Nothing lost: 9,000 records, every partition fully in sync again.
    let v = c.wait_topic(4, "orders", "orders fully in sync", T, |v| placed_on(v, 6, &brokers));
    assert_eq!(v.len(), 6);
    let ends = c.end_offsets(5, "orders");
    assert_eq!(ends.values().sum::<i64>(), 9000, "end offsets {ends:?}");
}
