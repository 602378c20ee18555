//! Consumer groups with librdkafka (confluent-kafka) and kafka-python, as
//! members run by `tests/interop/python/groups_consumer.py`: two members
//! share a topic, one closes (LeaveGroup) and the other gets every
//! partition, every record is read at least once, and the commits show in
//! Kafka's `kafka-consumer-groups --describe`. Then one group mixing
//! librdkafka, kafka-python and Java's console consumer.
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.
//!
//! The members commit synchronously after printing each poll's records, and
//! print `#assigned<TAB>p,p,...` when the group gives them partitions (see
//! the script). `kafka-consumer-groups` is run as kafka-tool.sh would run it
//! (that script does not map it); it exits 0 even on errors, so its output
//! is what is checked.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::groups::{
    Bg, assert_all_read, create_topic, describe, group_state, java_records, owners, produce, py_assigned, py_member, py_records,
    wait_all_committed, wait_for,
};
use support::{Broker, kafka_tool};

/// The members' session timeout: long, so that a partition moving sooner
/// than this shows the LeaveGroup did it, not an expired session.
const SESSION: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// the tests

/// Two members of `client` share a 4-partition topic; one closes and the
/// other gets every partition before the session timeout; every record is
/// read at least once; `kafka-consumer-groups` shows the commits.
fn two_members_then_one_leaves(client: &str, tag: &str) {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = (format!("{tag}-topic"), format!("{tag}-group"));
    let (id_a, id_b) = (format!("{tag}-a"), format!("{tag}-b"));
    create_topic(&b, client, &topic, 4);
    let first = produce(&b, client, &topic, "a", 40);
    assert_eq!(first.iter().map(|r| r.partition).collect::<BTreeSet<_>>().len(), 4, "the keys should reach every partition");

    let mut a = py_member(&b, work.path(), client, &topic, &group, &id_a, SESSION, &[]);
    let mut bm = py_member(&b, work.path(), client, &topic, &group, &id_b, SESSION, &[]);
    let shared = wait_for("2 members with 2 partitions each, as they see it too", Duration::from_secs(90), || {
        let (rows, _) = describe(&b, &group, &topic);
        let m = owners(&rows);
        let agreed = m.len() == 2
            && m.values().all(|ps| ps.len() == 2)
            && py_assigned(&a).as_ref() == m.get(&id_a)
            && py_assigned(&bm).as_ref() == m.get(&id_b);
        (rows.len() == 4 && agreed).then_some(m)
    });
    eprintln!("{client}: shared as {shared:?}");
    wait_all_committed(&b, &group, &topic, 4, 40);
    let (strategy, state, n) = group_state(&b, &group);
    assert_eq!((state.as_str(), n), ("Stable", 2), "--describe --state");
    eprintln!("{client}: assignment strategy {strategy}");

    // a closes: LeaveGroup, so b gets a's partitions without waiting for a's session to expire.
    let left_at = Instant::now();
    let status = a.terminate(Duration::from_secs(30));
    assert!(status.success() && a.stdout().ends_with("#closed\n"), "{id_a} did not close cleanly ({status}):\n{}", a.stderr());
    wait_for(&format!("{id_b} to own all 4 partitions"), SESSION, || {
        let (rows, _) = describe(&b, &group, &topic);
        let m = owners(&rows);
        (m.len() == 1 && m.get(&id_b).is_some_and(|ps| ps.len() == 4) && py_assigned(&bm) == Some(BTreeSet::from([0, 1, 2, 3])))
            .then_some(())
    });
    let moved = left_at.elapsed();
    eprintln!("{client}: {id_a}'s partitions moved {moved:?} after it was told to close");
    assert!(moved < SESSION, "partitions moved only after {moved:?}, not before the {SESSION:?} session timeout");

    let second = produce(&b, client, &topic, "b", 40);
    let rows = wait_all_committed(&b, &group, &topic, 4, 80);
    assert!(rows.values().all(|r| r.client_id.as_deref() == Some(id_b.as_str())), "{rows:?}");
    assert_all_read(&[py_records(&a), py_records(&bm)].concat(), &[first, second.clone()].concat(), "the two members");
    assert_all_read(&py_records(&bm), &second, &id_b);
    for r in py_records(&a).iter().chain(py_records(&bm).iter()) {
        assert_eq!(r.value, format!("{}-v{}", &r.key[..1], &r.key[1..]), "corrupt record {r:?}");
    }

    // b closes too; the group keeps its offsets, with no member.
    let status = bm.terminate(Duration::from_secs(30));
    assert!(status.success() && bm.stdout().ends_with("#closed\n"), "{id_b} did not close cleanly ({status}):\n{}", bm.stderr());
    let (rows, text) = describe(&b, &group, &topic);
    assert!(rows.values().all(|r| r.client_id.is_none()), "a member left after both closed:\n{text}");
    assert_eq!(rows.values().filter_map(|r| r.current).sum::<i64>(), 80, "{text}");
    assert_eq!(group_state(&b, &group).1, "Empty");
}

/// Issue proof 4, librdkafka.
#[test]
fn librdkafka_group_two_members_then_one_leaves() {
    two_members_then_one_leaves("confluent", "rdk");
}

/// Issue proof 4, kafka-python.
#[test]
fn kafka_python_group_two_members_then_one_leaves() {
    two_members_then_one_leaves("kafka-python", "kpy");
}

/// One group of three different clients: librdkafka, kafka-python and Java's
/// console consumer. The coordinator picks the one assignor all of them offer
/// ("range"), each gets 2 of the 6 partitions, every record is read.
#[test]
fn mixed_clients_share_one_group() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("mixed-topic", "mixed-group");
    create_topic(&b, "confluent", topic, 6);
    let recs = produce(&b, "confluent", topic, "a", 60);

    let rdk = py_member(&b, work.path(), "confluent", topic, group, "mixed-rdk", SESSION, &[]);
    let kpy = py_member(&b, work.path(), "kafka-python", topic, group, "mixed-kpy", SESSION, &[]);
    let java = Bg::spawn(
        "mixed-java",
        work.path(),
        kafka_tool("kafka-console-consumer")
            .args(["--bootstrap-server", &b.bootstrap(), "--topic", topic, "--group", group, "--from-beginning"])
            .args(["--command-property", "client.id=mixed-java", "--command-property", "auto.commit.interval.ms=500"])
            .args(["--command-property", &format!("session.timeout.ms={}", SESSION.as_millis())])
            .args(["--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true"])
            .args(["--formatter-property", "print.key=true"]),
    );
    // Settled means the coordinator shows each member 2 partitions and the
    // python members got those same 2: a client still finishing its own
    // join (slow under load) may rejoin once, which starts one more
    // rebalance and is no fault of the coordinator's.
    let shared = wait_for("3 members with 2 partitions each, as the members themselves see", Duration::from_secs(90), || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        let even = rows.len() == 6 && m.len() == 3 && m.values().all(|ps| ps.len() == 2);
        let seen = |id: &str, member: &Bg| m.get(id).is_some_and(|ps| py_assigned(member).as_ref() == Some(ps));
        (even && seen("mixed-rdk", &rdk) && seen("mixed-kpy", &kpy)).then_some(m)
    });
    assert_eq!(shared.keys().map(String::as_str).collect::<Vec<_>>(), vec!["mixed-java", "mixed-kpy", "mixed-rdk"]);
    assert_eq!(group_state(&b, group), ("range".to_string(), "Stable".to_string(), 3), "--describe --state");
    wait_all_committed(&b, group, topic, 6, 60);

    // The console consumer prints `Partition:p\tOffset:o\tkey\tvalue`.
    let java_read = java_records(&java);
    assert_all_read(&[py_records(&rdk), py_records(&kpy), java_read].concat(), &recs, "the three members");
}
