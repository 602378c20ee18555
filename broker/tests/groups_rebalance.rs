//! Rebalances that real clients make the group coordinator go through:
//! static membership (`group.instance.id`, KIP-345) with Java's console
//! consumer and librdkafka, and cooperative rebalancing (KIP-429) with
//! Java's `CooperativeStickyAssignor` and librdkafka's `cooperative-sticky`.
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.
//!
//! What is observed, besides `kafka-consumer-groups --describe` (rows of
//! `GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST
//! CLIENT-ID`, `--members` and `--state`):
//! - the Java consumers run with their log at INFO (on stderr), which names
//!   each rebalance they take part in: `(Re-)joining group`, `Successfully
//!   joined group with generation Generation{generationId=N, ...}`, and, with
//!   a cooperative assignor, `Updating assignment with` followed by the
//!   `Added partitions (assigned - owned): [...]` and `Revoked partitions
//!   (owned - assigned): [...]` lines. A member that took no part in a
//!   rebalance logged none of these.
//! - the librdkafka members (`tests/interop/python/groups_consumer.py`)
//!   print `#assigned<TAB>p,...` (their whole assignment) each time the group
//!   gives them partitions, `#member<TAB>id` after it, and with
//!   `cooperative-sticky` the increments as `#incremental-assign` and
//!   `#incremental-revoke` lines; with `--debug cgrp`, librdkafka's group log
//!   on stderr (`JoinGroup response: ... LeaderId <id> (me), my MemberId
//!   <id>, ...`, `I am elected leader for group ...`).
//!
//! Records are produced with librdkafka (`confluent_client.py produce`), which
//! prints where each landed, so a record read can be checked against its
//! partition and offset. The console consumers auto-commit every 500 ms and
//! print each record before committing past it; the Python members commit
//! synchronously after printing. So once `--describe` shows every partition
//! committed at its log end, everything has been printed at least once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use support::groups::{
    Bg, Row, assert_all_read, create_topic, describe, group_state, groups_ok, java_records, owners, parse_rows, partition_set, produce,
    py_assigned, py_member, py_records, py_tagged, wait_all_committed, wait_for,
};
use support::{Broker, Rec, kafka_tool};

// ---------------------------------------------------------------------------
// kafka-consumer-groups

/// Consumer ids (member ids) by client id, from `--describe` rows.
fn consumer_ids(rows: &BTreeMap<i32, Row>) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows.values() {
        if let (Some(client), Some(id)) = (&r.client_id, &r.consumer_id) {
            m.entry(client.clone()).or_default().insert(id.clone());
        }
    }
    m
}

/// One `--describe --members` row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MemberRow {
    consumer_id: String,
    instance_id: Option<String>,
    client_id: String,
    partitions: usize,
}

/// `--describe --members`: the group's members, by client id.
fn members(b: &Broker, group: &str) -> BTreeMap<String, MemberRow> {
    let ran = groups_ok(b, &["--describe", "--group", group, "--members"]);
    let header = ["GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS"];
    parse_rows(&ran.stdout, &header)
        .into_iter()
        .map(|f| {
            assert_eq!(f[0], group, "a row of another group in:\n{}", ran.text());
            let row = MemberRow {
                consumer_id: f[1].clone(),
                instance_id: (f[2] != "-").then(|| f[2].clone()),
                client_id: f[4].clone(),
                partitions: f[5].parse().unwrap_or_else(|_| panic!("bad #PARTITIONS in:\n{}", ran.text())),
            };
            (f[4].clone(), row)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// producing

/// Fails unless every record read is one that was produced.
fn assert_only_produced(read: &[Rec], produced: &[Rec], what: &str) {
    let known: BTreeSet<&Rec> = produced.iter().collect();
    let unknown: Vec<&Rec> = read.iter().filter(|r| !known.contains(r)).collect();
    assert!(unknown.is_empty(), "{what} read records never produced (corrupt or misplaced): {:?}", &unknown[..unknown.len().min(5)]);
}

fn in_partitions(recs: &[Rec], ps: &BTreeSet<i32>) -> Vec<Rec> {
    recs.iter().filter(|r| ps.contains(&r.partition)).cloned().collect()
}

// ---------------------------------------------------------------------------
// members

/// A console consumer in `group` with client id `client_id`, these consumer
/// properties, its log at INFO; it prints `Partition:p\tOffset:o\tkey\tvalue`.
fn java_member(b: &Broker, dir: &Path, topic: &str, group: &str, client_id: &str, props: &[String]) -> Bg {
    let mut cmd = kafka_tool("kafka-console-consumer");
    cmd.args(["--bootstrap-server", &b.bootstrap(), "--topic", topic, "--group", group, "--from-beginning"])
        .args(["--command-property", &format!("client.id={client_id}")])
        .args(["--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true"])
        .args(["--formatter-property", "print.key=true"])
        .env("KAFKA_TOOL_LOG_LEVEL", "info");
    for p in props {
        cmd.args(["--command-property", p]);
    }
    Bg::spawn(client_id, dir, &mut cmd)
}

/// The lines of a Java member's log (stderr) from byte `from` on that
/// contain `needle`.
fn log_lines(m: &Bg, from: usize, needle: &str) -> Vec<String> {
    let log = m.stderr();
    log.get(from..).unwrap_or("").lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
}

/// The generations a Java member joined, from its log, in order.
fn java_generations(m: &Bg) -> Vec<i32> {
    log_lines(m, 0, "Successfully joined group with generation")
        .iter()
        .map(|l| {
            let n = l.split("generationId=").nth(1).unwrap_or_else(|| panic!("no generationId in {l:?}"));
            n[..n.find(|c: char| !c.is_ascii_digit()).unwrap_or(n.len())].parse().unwrap_or_else(|_| panic!("bad generation in {l:?}"))
        })
        .collect()
}

/// The partitions in a log line ending `[topic-p, topic-q]`.
fn logged_partitions(line: &str, topic: &str) -> BTreeSet<i32> {
    let list = &line[line.rfind('[').unwrap_or_else(|| panic!("no list in {line:?}")) + 1..];
    let list = list.trim_end().trim_end_matches(']');
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.strip_prefix(&format!("{topic}-")).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("bad partition {s:?} in {line:?}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// static membership

/// Consumer properties of a static Java member.
fn static_props(instance: &str, session: Duration) -> Vec<String> {
    vec![
        format!("group.instance.id={instance}"),
        format!("session.timeout.ms={}", session.as_millis()),
        "heartbeat.interval.ms=1000".to_string(),
        "auto.commit.interval.ms=500".to_string(),
    ]
}

/// Starts static Java members `st-i1` (first, so it leads the group) and
/// `st-i2` on a 4-partition topic holding `first`; waits until each owns 2
/// partitions and everything is committed. Returns the two members and the
/// partitions by client id.
fn two_static_java_members(
    b: &Broker,
    dir: &Path,
    topic: &str,
    group: &str,
    session: Duration,
    first: &[Rec],
) -> (Bg, Bg, BTreeMap<String, BTreeSet<i32>>) {
    let i1 = java_member(b, dir, topic, group, "st-i1", &static_props("i1", session));
    wait_for("st-i1 alone to own all 4 partitions", Duration::from_secs(90), || {
        let (rows, _) = describe(b, group, topic);
        let m = owners(&rows);
        (m.len() == 1 && m.get("st-i1").is_some_and(|ps| ps.len() == 4)).then_some(())
    });
    let i2 = java_member(b, dir, topic, group, "st-i2", &static_props("i2", session));
    let shared = wait_for("st-i1 and st-i2 to own 2 partitions each", Duration::from_secs(90), || {
        let (rows, _) = describe(b, group, topic);
        let m = owners(&rows);
        (rows.len() == 4 && m.len() == 2 && m.values().all(|ps| ps.len() == 2)).then_some(m)
    });
    wait_all_committed(b, group, topic, 4, first.len() as i64);
    let ms = members(b, group);
    let instances: BTreeMap<&str, Option<&str>> = ms.iter().map(|(c, m)| (c.as_str(), m.instance_id.as_deref())).collect();
    assert_eq!(instances, BTreeMap::from([("st-i1", Some("i1")), ("st-i2", Some("i2"))]), "--members: {ms:?}");
    assert_all_read(&[java_records(&i1), java_records(&i2)].concat(), first, "the two members");
    (i1, i2, shared)
}

/// Issue: static membership, Java. Static member i1 (the group's leader) is
/// SIGKILLed and restarted with the same `group.instance.id` well within its
/// session timeout: it gets its 2 partitions back without a rebalance (it
/// rejoins the same generation, i2 never rejoins), `--describe` shows i2's
/// partitions with i2 throughout and every partition owned, the group keeps
/// 2 members, and the restarted member reads what is produced after it
/// started from the committed offsets (nothing skipped, nothing read again).
#[test]
fn java_static_member_restarted_within_its_session_gets_its_partitions_back() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("st-java", "st-java-group");
    let session = Duration::from_secs(25);
    create_topic(&b, "confluent", topic, 4);
    let first = produce(&b, "confluent", topic, "a", 40);
    assert_eq!(first.iter().map(|r| r.partition).collect::<BTreeSet<_>>().len(), 4, "the keys should reach every partition");
    let (mut i1, i2, shared) = two_static_java_members(&b, work.path(), topic, group, session, &first);
    let (p1, p2) = (shared["st-i1"].clone(), shared["st-i2"].clone());
    let (rows, _) = describe(&b, group, topic);
    let ids = consumer_ids(&rows);
    let (c1, c2) = (ids["st-i1"].clone(), ids["st-i2"].clone());
    assert!(c1.len() == 1 && c1.iter().all(|c| c.starts_with("i1-")), "st-i1's consumer id: {c1:?}");
    let generation = *java_generations(&i2).last().expect("st-i2 joined a generation");
    assert_eq!(java_generations(&i1).last(), Some(&generation), "st-i1 and st-i2 in different generations");
    let i2_log_at = i2.stderr().len();
    eprintln!("shared as {shared:?} in generation {generation}");

    // SIGKILL i1 and start it again at once.
    i1.kill();
    let killed_at = Instant::now();
    let i1b = java_member(&b, work.path(), topic, group, "st-i1", &static_props("i1", session));
    let mut samples = 0;
    let c1b = wait_for("the restarted st-i1 to own its partitions again", session, || {
        let (rows, text) = describe(&b, group, topic);
        samples += 1;
        assert_eq!(rows.len(), 4, "{text}");
        let m = owners(&rows);
        assert_eq!(m.get("st-i2"), Some(&p2), "st-i2's partitions changed while st-i1 restarted:\n{text}");
        assert_eq!(consumer_ids(&rows).get("st-i2"), Some(&c2), "st-i2's consumer id changed:\n{text}");
        assert_eq!(m.get("st-i1"), Some(&p1), "st-i1's partitions are not all with st-i1 while it restarts:\n{text}");
        let now = consumer_ids(&rows)["st-i1"].clone();
        (now != c1).then_some(now)
    });
    let back_after = killed_at.elapsed();
    eprintln!("the restarted st-i1 ({c1b:?}) owned {p1:?} again {back_after:?} after the SIGKILL ({samples} samples)");
    assert!(back_after < session, "the restart took {back_after:?}, not within the {session:?} session timeout");
    assert!(c1b.len() == 1 && c1b.iter().all(|c| c.starts_with("i1-")), "the restarted st-i1's consumer id: {c1b:?}");
    let (strategy, state, n) = group_state(&b, group);
    assert_eq!((state.as_str(), n), ("Stable", 2), "--describe --state after the restart (strategy {strategy})");

    // What is produced now: i1's partitions go to the restarted i1, i2's to i2.
    let second = produce(&b, "confluent", topic, "b", 40);
    wait_all_committed(&b, group, topic, 4, 80);
    let (read1, read2) = (java_records(&i1b), java_records(&i2));
    assert_only_produced(&read1, &[first.clone(), second.clone()].concat(), "the restarted st-i1");
    assert_only_produced(&read2, &[first.clone(), second.clone()].concat(), "st-i2");
    assert_all_read(&read1, &in_partitions(&second, &p1), "the restarted st-i1, its partitions");
    assert_all_read(&read2, &in_partitions(&second, &p2), "st-i2, its partitions");
    assert!(read1.iter().all(|r| p1.contains(&r.partition)), "the restarted st-i1 read other partitions: {read1:?}");
    let again: Vec<&Rec> = read1.iter().filter(|r| first.contains(r)).collect();
    assert!(again.is_empty(), "the restarted st-i1 read committed records again: {again:?}");

    // No rebalance: the restarted member joined the very generation i2 is in,
    // and i2 never rejoined. It led the group before the kill (it joined
    // first), and as the returning static leader it is told to keep its
    // assignment (JoinGroup v9 SkipAssignment, KIP-814) rather than assign.
    let joined = java_generations(&i1b);
    assert_eq!(joined, vec![generation], "the restarted st-i1 joined generations {joined:?}");
    let skipped = log_lines(&i1b, 0, &format!("Skipped assignment for returning static leader at generation {generation}."));
    assert_eq!(skipped.len(), 1, "the restarted st-i1 was not told it is the returning static leader");
    let rejoins = log_lines(&i2, i2_log_at, "(Re-)joining group");
    assert!(rejoins.is_empty(), "st-i2 rejoined the group while st-i1 restarted: {rejoins:?}");
    let ms = members(&b, group);
    assert_eq!(ms.len(), 2, "--members: {ms:?}");
    assert_eq!(ms["st-i1"].instance_id.as_deref(), Some("i1"), "{ms:?}");
    assert_eq!(BTreeSet::from([ms["st-i1"].consumer_id.clone()]), c1b, "{ms:?}");
    assert_eq!(BTreeSet::from([ms["st-i2"].consumer_id.clone()]), c2, "{ms:?}");
}

/// Issue: static membership, Java. A static member that closes (SIGTERM: the
/// console consumer closes its consumer, which for a static member sends no
/// LeaveGroup) and does not come back keeps its partitions, and its place in
/// the group, until its session times out; then they move to the other member,
/// which reads what is produced to them.
#[test]
fn java_static_member_gone_for_good_loses_its_partitions_after_its_session() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("st-gone", "st-gone-group");
    let session = Duration::from_secs(12);
    create_topic(&b, "confluent", topic, 4);
    let first = produce(&b, "confluent", topic, "a", 40);
    let (mut i1, i2, shared) = two_static_java_members(&b, work.path(), topic, group, session, &first);
    let p1 = shared["st-i1"].clone();
    let c1 = consumer_ids(&describe(&b, group, topic).0)["st-i1"].clone();
    let i2_log_at = i2.stderr().len();

    let stopped_at = Instant::now();
    let status = i1.terminate(Duration::from_secs(30));
    let closed_in = stopped_at.elapsed();
    assert!(!i1.is_running(), "st-i1 still running");
    eprintln!("st-i1 exited ({status}) {closed_in:?} after SIGTERM");
    let left = log_lines(&i1, 0, "LeaveGroup");
    assert!(left.is_empty(), "the static member st-i1 left the group on close: {left:?}");

    // Still a member, its partitions still its own, until the session ends.
    let (rows, text) = describe(&b, group, topic);
    let seen_at = stopped_at.elapsed();
    if seen_at + Duration::from_secs(2) < session {
        assert_eq!(owners(&rows).get("st-i1"), Some(&p1), "st-i1's partitions moved {seen_at:?} after it closed:\n{text}");
        assert_eq!(consumer_ids(&rows).get("st-i1"), Some(&c1), "{text}");
    } else {
        eprintln!("(the first --describe took until {seen_at:?} after the close: too late to look for st-i1)");
    }
    let moved = wait_for("st-i2 to own all 4 partitions", session + Duration::from_secs(30), || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        (m.len() == 1 && m.get("st-i2").is_some_and(|ps| ps.len() == 4)).then_some(stopped_at.elapsed())
    });
    eprintln!("st-i1's partitions {p1:?} moved to st-i2 {moved:?} after st-i1 was told to stop (session {session:?})");
    // The session was last renewed by a heartbeat at most a heartbeat
    // interval (1 s) before the SIGTERM; allow as much again for a slow one.
    assert!(moved + Duration::from_secs(2) >= session, "st-i1's partitions moved after {moved:?}, before its {session:?} session ended");
    let (_, state, n) = group_state(&b, group);
    assert_eq!((state.as_str(), n), ("Stable", 1), "--describe --state after st-i1's session ended");
    let ms = members(&b, group);
    assert_eq!(ms.keys().map(String::as_str).collect::<Vec<_>>(), vec!["st-i2"], "--members: {ms:?}");
    assert_eq!(ms["st-i2"].instance_id.as_deref(), Some("i2"));
    // i2 rejoined (once the coordinator dropped st-i1), and kept its own partitions.
    assert!(!log_lines(&i2, i2_log_at, "(Re-)joining group").is_empty(), "st-i2 never rejoined");

    let second = produce(&b, "confluent", topic, "b", 40);
    wait_all_committed(&b, group, topic, 4, 80);
    let read2 = java_records(&i2);
    assert_only_produced(&read2, &[first.clone(), second.clone()].concat(), "st-i2");
    assert_all_read(&read2, &second, "st-i2, everything produced after st-i1 left");
    assert!(read2.iter().any(|r| p1.contains(&r.partition)), "st-i2 read none of st-i1's former partitions {p1:?}");
}

/// Issue: static membership, librdkafka. Static member i1 (the leader) is
/// SIGKILLed and restarted with the same `group.instance.id` within its
/// session timeout: it gets the same 2 partitions back under a new member id,
/// i2 is not rebalanced (no new assignment, same member id), and both read
/// what is produced after the restart, the restarted one from its committed
/// offsets.
#[test]
fn librdkafka_static_member_restarted_within_its_session_gets_its_partitions_back() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("st-rdk", "st-rdk-group");
    let session = Duration::from_secs(15);
    create_topic(&b, "confluent", topic, 4);
    let first = produce(&b, "confluent", topic, "a", 40);
    assert_eq!(first.iter().map(|r| r.partition).collect::<BTreeSet<_>>().len(), 4, "the keys should reach every partition");

    // librdkafka's group log (stderr) shows the JoinGroup responses.
    let member = |name: &str, instance: &str| {
        py_member(&b, work.path(), "confluent", topic, group, name, session, &["--group-instance-id", instance, "--debug", "cgrp"])
    };
    let mut i1 = member("st-rdk-i1", "i1");
    wait_for("st-rdk-i1 alone to own all 4 partitions", Duration::from_secs(60), || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        (m.len() == 1 && m.get("st-rdk-i1").is_some_and(|ps| ps.len() == 4)).then_some(())
    });
    let i2 = member("st-rdk-i2", "i2");
    let shared = wait_for("2 members with 2 partitions each, as they see it too", Duration::from_secs(90), || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        let agreed = m.len() == 2
            && m.values().all(|ps| ps.len() == 2)
            && py_assigned(&i1).as_ref() == m.get("st-rdk-i1")
            && py_assigned(&i2).as_ref() == m.get("st-rdk-i2");
        (rows.len() == 4 && agreed).then_some(m)
    });
    let (p1, p2) = (shared["st-rdk-i1"].clone(), shared["st-rdk-i2"].clone());
    wait_all_committed(&b, group, topic, 4, 40);
    let ms = members(&b, group);
    assert_eq!(ms.get("st-rdk-i1").and_then(|m| m.instance_id.as_deref()), Some("i1"), "--members: {ms:?}");
    assert_eq!(ms.get("st-rdk-i2").and_then(|m| m.instance_id.as_deref()), Some("i2"), "--members: {ms:?}");
    let (c1, c2) = (ms["st-rdk-i1"].consumer_id.clone(), ms["st-rdk-i2"].consumer_id.clone());
    assert_eq!(py_tagged(&i1, "member").last(), Some(&c1), "st-rdk-i1's member id as it sees it");
    assert!(c1.starts_with("i1-"), "st-rdk-i1's member id {c1:?}");
    let i2_assignments = py_tagged(&i2, "assigned").len();
    eprintln!("shared as {shared:?}");

    i1.kill();
    let killed_at = Instant::now();
    let i1b = member("st-rdk-i1", "i1");
    let mut samples = 0;
    let c1b = wait_for("the restarted st-rdk-i1 to own its partitions again", session, || {
        let (rows, text) = describe(&b, group, topic);
        samples += 1;
        assert_eq!(rows.len(), 4, "{text}");
        let m = owners(&rows);
        assert_eq!(m.get("st-rdk-i2"), Some(&p2), "st-rdk-i2's partitions changed while st-rdk-i1 restarted:\n{text}");
        assert_eq!(m.get("st-rdk-i1"), Some(&p1), "st-rdk-i1's partitions are not all with st-rdk-i1 while it restarts:\n{text}");
        let now = consumer_ids(&rows)["st-rdk-i1"].clone();
        (py_assigned(&i1b).as_ref() == Some(&p1) && now != BTreeSet::from([c1.clone()])).then_some(now)
    });
    let back_after = killed_at.elapsed();
    eprintln!("the restarted st-rdk-i1 ({c1b:?}) owned {p1:?} again {back_after:?} after the SIGKILL ({samples} samples)");
    assert!(back_after < session, "the restart took {back_after:?}, not within the {session:?} session timeout");
    assert_eq!(py_tagged(&i1b, "assigned").len(), 1, "the restarted st-rdk-i1 was assigned more than once");
    assert_eq!(py_tagged(&i1b, "member").last().map(|m| BTreeSet::from([m.clone()])), Some(c1b.clone()), "its member id as it sees it");

    let second = produce(&b, "confluent", topic, "b", 40);
    wait_all_committed(&b, group, topic, 4, 80);
    let (read1, read2) = (py_records(&i1b), py_records(&i2));
    let all = [first.clone(), second.clone()].concat();
    assert_only_produced(&read1, &all, "the restarted st-rdk-i1");
    assert_only_produced(&read2, &all, "st-rdk-i2");
    assert_all_read(&read1, &in_partitions(&second, &p1), "the restarted st-rdk-i1, its partitions");
    assert_all_read(&read2, &in_partitions(&second, &p2), "st-rdk-i2, its partitions");
    assert!(read1.iter().all(|r| p1.contains(&r.partition)), "the restarted st-rdk-i1 read other partitions");
    let again: Vec<&Rec> = read1.iter().filter(|r| first.contains(r)).collect();
    assert!(again.is_empty(), "the restarted st-rdk-i1 read committed records again: {again:?}");

    // i2 took no part: no new assignment, no revocation, the same member id.
    assert_eq!(py_tagged(&i2, "assigned").len(), i2_assignments, "st-rdk-i2 was assigned again:\n{}", i2.stdout());
    let ms = members(&b, group);
    assert_eq!(ms.len(), 2, "--members: {ms:?}");
    assert_eq!(ms["st-rdk-i2"].consumer_id, c2, "st-rdk-i2's member id changed: {ms:?}");
    assert_eq!(BTreeSet::from([ms["st-rdk-i1"].consumer_id.clone()]), c1b, "{ms:?}");
    let (_, state, n) = group_state(&b, group);
    assert_eq!((state.as_str(), n), ("Stable", 2));

    // i1 led the group before the kill (it joined first). librdkafka sends
    // JoinGroup v5, before SkipAssignment (v9): Kafka answers the returning
    // static leader with the leader id it replaced, so that it does not
    // believe it leads and run its assignor for a Stable group.
    assert!(i1.stderr().contains("I am elected leader for group"), "st-rdk-i1 never led the group");
    let responses = i1b.stderr().lines().filter(|l| l.contains("JoinGroup response:")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(responses.len(), 1, "the restarted st-rdk-i1's JoinGroup responses: {responses:?}");
    assert!(
        !responses[0].contains("(me)") && !i1b.stderr().contains("I am elected leader"),
        "the restarted static leader was told it leads (and ran its assignor): {}",
        responses[0]
    );
}

// ---------------------------------------------------------------------------
// cooperative rebalancing

/// Issue: cooperative rebalancing, Java. Three console consumers with the
/// `CooperativeStickyAssignor` share 6 partitions; one is SIGKILLed. After its
/// session times out the two survivors keep every partition they had (in
/// every `--describe` sample and as their own logs say: nothing revoked) and
/// gain exactly the dead member's; every record is read at least once.
#[test]
fn java_cooperative_sticky_survivors_keep_their_partitions_and_gain_the_dead_members() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("coop-java", "coop-java-group");
    let session = Duration::from_secs(8);
    create_topic(&b, "confluent", topic, 6);
    let first = produce(&b, "confluent", topic, "a", 60);
    let props = vec![
        "partition.assignment.strategy=org.apache.kafka.clients.consumer.CooperativeStickyAssignor".to_string(),
        format!("session.timeout.ms={}", session.as_millis()),
        "heartbeat.interval.ms=1000".to_string(),
        "auto.commit.interval.ms=500".to_string(),
    ];
    let names = ["coop-0", "coop-1", "coop-2"];
    let mut ms: Vec<Bg> = names.iter().map(|n| java_member(&b, work.path(), topic, group, n, &props)).collect();
    let shared = wait_for("3 members with 2 partitions each", Duration::from_secs(90), || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        (rows.len() == 6 && m.len() == 3 && m.values().all(|ps| ps.len() == 2)).then_some(m)
    });
    assert_eq!(shared.keys().map(String::as_str).collect::<Vec<_>>(), names, "{shared:?}");
    wait_all_committed(&b, group, topic, 6, 60);
    assert_eq!(group_state(&b, group), ("cooperative-sticky".to_string(), "Stable".to_string(), 3), "--describe --state");
    eprintln!("shared as {shared:?}");

    // SIGKILL coop-1: no LeaveGroup; its session has to time out.
    let victim = shared["coop-1"].clone();
    let log_at: Vec<usize> = ms.iter().map(|m| m.stderr().len()).collect();
    ms[1].kill();
    let killed_at = Instant::now();
    let mut samples = 0;
    let after = wait_for("the survivors to own all 6 partitions", session + Duration::from_secs(45), || {
        let (rows, text) = describe(&b, group, topic);
        samples += 1;
        let m = owners(&rows);
        // A survivor's partitions are its own or, mid-rebalance, nobody's; never another's.
        for s in ["coop-0", "coop-2"] {
            for p in &shared[s] {
                let owner = rows.get(p).and_then(|r| r.client_id.as_deref());
                assert!(owner.is_none() || owner == Some(s), "partition {p} of {s} is with {owner:?}:\n{text}");
            }
        }
        let done = rows.len() == 6 && !m.contains_key("coop-1") && m.values().map(BTreeSet::len).sum::<usize>() == 6;
        done.then_some(m)
    });
    eprintln!("{victim:?} moved {:?} after the SIGKILL ({samples} samples): {after:?}", killed_at.elapsed());
    let mut gained = BTreeSet::new();
    for (i, s) in [(0, "coop-0"), (2, "coop-2")] {
        assert!(after[s].is_superset(&shared[s]), "{s} lost partitions: had {:?}, has {:?}", shared[s], after[s]);
        gained.extend(after[s].difference(&shared[s]).copied());
        // What the survivor's consumer says it did in the rebalance(s) since.
        let revoked = log_lines(&ms[i], log_at[i], "Revoked partitions (owned - assigned):");
        let added = log_lines(&ms[i], log_at[i], "Added partitions (assigned - owned):");
        assert!(!added.is_empty(), "{s} logged no rebalance after the kill");
        for l in &revoked {
            assert!(logged_partitions(l, topic).is_empty(), "{s} revoked partitions: {l:?}");
        }
        let added: BTreeSet<i32> = added.iter().flat_map(|l| logged_partitions(l, topic)).collect();
        assert_eq!(added, after[s].difference(&shared[s]).copied().collect(), "{s}'s log disagrees with --describe");
    }
    assert_eq!(gained, victim, "the survivors gained other partitions than the dead member's");

    let second = produce(&b, "confluent", topic, "b", 60);
    wait_all_committed(&b, group, topic, 6, 120);
    let all = [first.clone(), second.clone()].concat();
    let read: Vec<Rec> = ms.iter().flat_map(java_records).collect();
    assert_only_produced(&read, &all, "the members");
    assert_all_read(&read, &all, "the three members");
    let by_survivors: Vec<Rec> = [&ms[0], &ms[2]].into_iter().flat_map(java_records).collect();
    assert_all_read(&by_survivors, &second, "the survivors, after the kill");
}

/// Issue: cooperative rebalancing, librdkafka. Two members with
/// `cooperative-sticky`: when the second joins, the first gives up only the
/// partitions that move (an incremental revoke, never all of them); when the
/// first closes (LeaveGroup) the second keeps its own and gains the others,
/// revoking nothing; every record is read at least once.
#[test]
fn librdkafka_cooperative_sticky_member_leaves_and_the_other_gets_all() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("coop-rdk", "coop-rdk-group");
    // Long: a partition moving sooner than this shows the LeaveGroup did it.
    let session = Duration::from_secs(30);
    create_topic(&b, "confluent", topic, 4);
    let first = produce(&b, "confluent", topic, "a", 40);
    let coop = ["--assignment-strategy", "cooperative-sticky"];

    let mut a = py_member(&b, work.path(), "confluent", topic, group, "coop-rdk-a", session, &coop);
    wait_for("coop-rdk-a alone to own all 4 partitions", Duration::from_secs(60), || {
        (py_assigned(&a).is_some_and(|ps| ps.len() == 4)).then_some(())
    });
    let bm = py_member(&b, work.path(), "confluent", topic, group, "coop-rdk-b", session, &coop);
    let shared = wait_for("2 members with 2 partitions each, as they see it too", Duration::from_secs(90), || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        let agreed = m.len() == 2
            && m.values().all(|ps| ps.len() == 2)
            && py_assigned(&a).as_ref() == m.get("coop-rdk-a")
            && py_assigned(&bm).as_ref() == m.get("coop-rdk-b");
        (rows.len() == 4 && agreed).then_some(m)
    });
    eprintln!("shared as {shared:?}");
    wait_all_committed(&b, group, topic, 4, 40);
    assert_eq!(group_state(&b, group), ("cooperative-sticky".to_string(), "Stable".to_string(), 2), "--describe --state");
    let revokes: Vec<BTreeSet<i32>> = py_tagged(&a, "incremental-revoke").iter().map(|l| partition_set(l)).collect();
    assert!(revokes.iter().any(|r| !r.is_empty()), "coop-rdk-a gave up no partition incrementally:\n{}", a.stdout());
    assert!(revokes.iter().all(|r| r.len() < 4), "coop-rdk-a gave up all its partitions at once: {revokes:?}");
    let b_lines_at = bm.out_lines().len();

    let left_at = Instant::now();
    let status = a.terminate(Duration::from_secs(30));
    assert!(status.success() && a.stdout().ends_with("#closed\n"), "coop-rdk-a did not close cleanly ({status}):\n{}", a.stderr());
    wait_for("coop-rdk-b to own all 4 partitions", session, || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        let all4 = BTreeSet::from([0, 1, 2, 3]);
        (m.len() == 1 && m.get("coop-rdk-b") == Some(&all4) && py_assigned(&bm) == Some(all4)).then_some(())
    });
    let moved = left_at.elapsed();
    eprintln!("coop-rdk-a's partitions moved {moved:?} after it was told to close");
    assert!(moved < session, "partitions moved only after {moved:?}, not before the {session:?} session timeout");
    let since: Vec<String> = bm.out_lines()[b_lines_at..].to_vec();
    let tagged = |tag: &str| -> Vec<BTreeSet<i32>> {
        since.iter().filter_map(|l| l.strip_prefix(&format!("#{tag}\t"))).map(partition_set).collect()
    };
    assert!(tagged("incremental-revoke").iter().all(BTreeSet::is_empty), "coop-rdk-b gave up partitions: {since:?}");
    let added: BTreeSet<i32> = tagged("incremental-assign").into_iter().flatten().collect();
    assert_eq!(added, shared["coop-rdk-a"], "coop-rdk-b gained other partitions than coop-rdk-a's: {since:?}");

    let second = produce(&b, "confluent", topic, "b", 40);
    let rows = wait_all_committed(&b, group, topic, 4, 80);
    assert!(rows.values().all(|r| r.client_id.as_deref() == Some("coop-rdk-b")), "{rows:?}");
    let all = [first.clone(), second.clone()].concat();
    let read = [py_records(&a), py_records(&bm)].concat();
    assert_only_produced(&read, &all, "the members");
    assert_all_read(&read, &all, "the two members");
    assert_all_read(&py_records(&bm), &second, "coop-rdk-b, after coop-rdk-a left");
}
