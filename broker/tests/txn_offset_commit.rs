//! TxnOffsetCommit on the wire, with the markers written by WriteTxnMarkers
//! as a transaction coordinator sends them: offsets committed in a
//! transaction stay invisible (and UNSTABLE_OFFSET_COMMIT to a fetch that
//! requires stable offsets) until a COMMIT marker lands on the group's
//! `__consumer_offsets` partition, are dropped on ABORT, and survive a
//! restart as pending.
//!
//! Fjord only: producer ids are made up here, with the transaction
//! verification of KIP-890 turned off (no transaction coordinator knows
//! them); Kafka would still refuse them. The client-driven flow, verified,
//! is covered with Kafka's own clients elsewhere.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use kafka_protocol::messages::txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::wire::{connect, create_topic, request};
use support::{Broker, Kind};

const OFFSETS: &str = "__consumer_offsets";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn start() -> Broker {
    // One offsets partition: every group's records land on partition 0.
    Broker::start_with(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "1"),
        ("transaction.partition.verification.enable", "false"),
    ])
}

/// Waits until the group's coordinator answers OffsetFetch.
fn coordinator_ready(c: &mut TcpStream, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp: FindCoordinatorResponse =
            request(c, ApiKey::FindCoordinator, 3, &FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0));
        if resp.error_code == 0 && fetch(c, group, "t", 0, false).1 == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no coordinator: {resp:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Txn<'a> {
    producer_id: i64,
    group: &'a str,
    generation: i32,
    member: &'a str,
}

fn txn(producer_id: i64, group: &str) -> Txn<'_> {
    Txn { producer_id, group, generation: -1, member: "" }
}

/// TxnOffsetCommit (v3): the codes of `parts` = (topic, partition, offset), in order.
fn txn_commit(c: &mut TcpStream, t: &Txn<'_>, parts: &[(&str, i32, i64)]) -> Vec<i16> {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for (name, p, o) in parts {
        let partition = TxnOffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o);
        match topics.iter_mut().find(|e| e.name.as_str() == *name) {
            Some(e) => e.partitions.push(partition),
            None => topics.push(TxnOffsetCommitRequestTopic::default().with_name(TopicName(s(name))).with_partitions(vec![partition])),
        }
    }
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("txn-wire")))
        .with_group_id(GroupId(s(t.group)))
        .with_producer_id(ProducerId(t.producer_id))
        .with_producer_epoch(0)
        .with_generation_id(t.generation)
        .with_member_id(s(t.member))
        .with_topics(topics);
    let resp: TxnOffsetCommitResponse = request(c, ApiKey::TxnOffsetCommit, 3, &req);
    parts
        .iter()
        .map(|(name, p, _)| {
            let topic = resp.topics.iter().find(|rt| rt.name.as_str() == *name).expect("topic answered");
            topic.partitions.iter().find(|rp| rp.partition_index == *p).expect("partition answered").error_code
        })
        .collect()
}

/// OffsetFetch (v8) of one partition: (offset, error).
fn fetch(c: &mut TcpStream, group: &str, topic: &str, partition: i32, require_stable: bool) -> (i64, i16) {
    let asked = OffsetFetchRequestTopics::default().with_name(TopicName(s(topic))).with_partition_indexes(vec![partition]);
    let req = OffsetFetchRequest::default()
        .with_require_stable(require_stable)
        .with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(GroupId(s(group))).with_topics(Some(vec![asked]))]);
    let resp: OffsetFetchResponse = request(c, ApiKey::OffsetFetch, 8, &req);
    let g = &resp.groups[0];
    if g.error_code != 0 {
        return (-1, g.error_code);
    }
    let p = &g.topics[0].partitions[0];
    (p.committed_offset, p.error_code)
}

fn marker(c: &mut TcpStream, producer_id: i64, commit: bool) {
    let m = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(0)
        .with_transaction_result(commit)
        .with_coordinator_epoch(0)
        .with_topics(vec![WritableTxnMarkerTopic::default().with_name(TopicName(s(OFFSETS))).with_partition_indexes(vec![0])]);
    let resp: WriteTxnMarkersResponse = request(c, ApiKey::WriteTxnMarkers, 1, &WriteTxnMarkersRequest::default().with_markers(vec![m]));
    assert_eq!(resp.markers[0].topics[0].partitions[0].error_code, 0, "{resp:?}");
}

#[test]
fn transactional_offsets_wait_for_their_marker() {
    if support::kind() == Kind::Kafka {
        return;
    }
    let mut b = start();
    let mut c = connect(&b);
    create_topic(&mut c, "t");
    let g = "txn-group";
    coordinator_ready(&mut c, g);

    // An unknown group with generation -1 is created by the commit; unknown
    // topics and partitions are answered each on their own.
    assert_eq!(
        txn_commit(&mut c, &txn(1000, g), &[("t", 0, 10), ("t", 99, 1), ("no-such-topic", 0, 1)]),
        vec![0, E::UnknownTopicOrPartition.code(), E::UnknownTopicOrPartition.code()]
    );
    assert_eq!(fetch(&mut c, g, "t", 0, false), (-1, 0), "not visible before the marker");
    assert_eq!(fetch(&mut c, g, "t", 0, true), (-1, E::UnstableOffsetCommit.code()));
    marker(&mut c, 1000, true);
    assert_eq!(fetch(&mut c, g, "t", 0, true), (10, 0), "committed with the transaction");

    assert_eq!(txn_commit(&mut c, &txn(1001, g), &[("t", 0, 99)]), vec![0]);
    assert_eq!(fetch(&mut c, g, "t", 0, false), (10, 0));
    marker(&mut c, 1001, false);
    assert_eq!(fetch(&mut c, g, "t", 0, true), (10, 0), "dropped with the aborted transaction");

    // The group's checks (v3+ carry member and generation).
    assert_eq!(txn_commit(&mut c, &Txn { generation: 3, ..txn(1002, "no-such-group") }, &[("t", 0, 1)]), vec![E::IllegalGeneration.code()]);
    assert_eq!(
        txn_commit(&mut c, &Txn { generation: 1, member: "stranger", ..txn(1002, g) }, &[("t", 0, 1)]),
        vec![E::UnknownMemberId.code()]
    );
    assert_eq!(txn_commit(&mut c, &txn(1002, ""), &[("t", 0, 1)]), vec![E::InvalidGroupId.code()]);
    assert_eq!(txn_commit(&mut c, &txn(-1, g), &[("t", 0, 1)]), vec![E::InvalidProducerIdMapping.code()]);

    // A transaction still open when the coordinator restarts is pending again after the load.
    assert_eq!(txn_commit(&mut c, &txn(1003, g), &[("t", 0, 20)]), vec![0]);
    drop(c);
    b.restart();
    let mut c = connect(&b);
    coordinator_ready(&mut c, g);
    assert_eq!(fetch(&mut c, g, "t", 0, true), (-1, E::UnstableOffsetCommit.code()), "still open after the load");
    assert_eq!(fetch(&mut c, g, "t", 0, false), (10, 0));
    marker(&mut c, 1003, true);
    assert_eq!(fetch(&mut c, g, "t", 0, true), (20, 0));
}

#[test]
fn a_producer_no_transaction_coordinator_knows_is_refused() {
    if support::kind() == Kind::Kafka {
        return;
    }
    let b = Broker::start_with(&[("offsets.topic.num.partitions", "1")]);
    let mut c = connect(&b);
    create_topic(&mut c, "t");
    let g = "unverified-group";
    coordinator_ready(&mut c, g);
    let code = txn_commit(&mut c, &txn(2000, g), &[("t", 0, 10)])[0];
    // Retriable while `__transaction_state` is being created, then unknown to it.
    assert!([E::CoordinatorNotAvailable.code(), E::InvalidProducerIdMapping.code()].contains(&code), "{code}");
    assert_eq!(fetch(&mut c, g, "t", 0, true), (-1, 0), "nothing was written");
}
