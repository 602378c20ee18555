//! Consumer groups with Apache Kafka's own Java clients and tools (Kafka
//! 4.4's jars): `kafka-console-consumer --group`, `kafka-consumer-groups`
//! (list, describe with lag, reset-offsets, delete, delete-offsets),
//! `kafka-consumer-perf-test --group`, a member killed with SIGKILL, and
//! committed offsets across a broker restart.
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.
//!
//! What Kafka's tools print, which these tests read:
//! - `kafka-consumer-groups` exits 0 even when it reports an error; the error
//!   is a line on stdout starting with `Error:`, so the output is what is
//!   checked. Notes such as `Consumer group 'G' has no active members.` go
//!   to stderr.
//! - `--describe` prints `GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET
//!   LAG CONSUMER-ID HOST CLIENT-ID` rows, `-` for none; one row per assigned
//!   or committed partition.
//! - `--reset-offsets` prints `GROUP TOPIC PARTITION NEW-OFFSET` rows for both
//!   `--dry-run` and `--execute`.
//! - the console consumer, with the formatter properties used here, prints
//!   `CreateTime:<ms>\tPartition:<p>\tOffset:<o>\t<key>\t<value>` per record
//!   and, with `--group`, commits its position on exit (auto-commit). Its
//!   `--consumer-property` is deprecated in 4.4 and the notice goes to
//!   stdout, so these tests pass `--command-property`.
//!
//! The brokers run with their default `group.initial.rebalance.delay.ms`
//! (the harness sets 0 for Kafka; fjord's own default applies to fjord):
//! nothing here depends on how long a first join takes, since every wait is
//! for an observed state with a deadline.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::groups::{Bg, Row, T, describe_group, group_state, groups, groups_ok, parse_rows, wait_for};
use support::{Broker, kafka_tool, run_ok};

// ---------------------------------------------------------------------------
// kafka-consumer-groups

fn list_groups(b: &Broker) -> BTreeSet<String> {
    groups_ok(b, &["--list"]).stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// Committed offsets (CURRENT-OFFSET) by (topic, partition), partitions
/// without one left out.
fn committed(rows: &BTreeMap<(String, i32), Row>) -> BTreeMap<(String, i32), i64> {
    rows.iter().filter_map(|(k, r)| Some((k.clone(), r.current?))).collect()
}

/// `--reset-offsets` with `spec` and `mode` (`--dry-run` or `--execute`) on
/// `topic`: the NEW-OFFSET table by partition.
fn reset(b: &Broker, group: &str, topic: &str, spec: &[&str], mode: &str) -> BTreeMap<i32, i64> {
    let args = [&["--reset-offsets", "--group", group, "--topic", topic][..], spec, &[mode]].concat();
    let out = groups_ok(b, &args).stdout;
    let rows = parse_rows(&out, &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
    assert!(!rows.is_empty(), "no NEW-OFFSET rows from {args:?}:\n{out}");
    rows.iter()
        .map(|f| {
            assert_eq!((f[0].as_str(), f[1].as_str()), (group, topic), "unexpected row in:\n{out}");
            (f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// console producer and consumer

fn create_topic(b: &Broker, topic: &str, partitions: u32) {
    run_ok(
        kafka_tool("kafka-topics")
            .args(["--bootstrap-server", &b.bootstrap(), "--create", "--topic", topic])
            .args(["--partitions", &partitions.to_string()]),
        None,
        T,
    );
}

/// Produces records with keys `<prefix><i>` and values `<prefix>-value-<i>`,
/// `i` in `range`, in order, with kafka-console-producer (the keys spread
/// them over the partitions by Kafka's murmur2 hash).
fn produce(b: &Broker, topic: &str, prefix: &str, range: std::ops::Range<usize>) -> Vec<(String, String)> {
    let recs: Vec<(String, String)> = range.map(|i| (format!("{prefix}{i}"), format!("{prefix}-value-{i}"))).collect();
    let input: String = recs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    run_ok(
        kafka_tool("kafka-console-producer").args(["--bootstrap-server", &b.bootstrap(), "--topic", topic]).args([
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=:",
        ]),
        Some(input.as_bytes()),
        T,
    );
    recs
}

/// One record as the console consumer prints it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CRec {
    partition: i32,
    offset: i64,
    key: String,
    value: String,
    timestamp: i64,
}

/// The console consumer's record lines (other lines, such as deprecation
/// notices, are not records and are skipped).
fn parse_console(out: &str) -> Vec<CRec> {
    out.lines()
        .filter(|l| l.starts_with("CreateTime:"))
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, '\t').collect();
            assert_eq!(f.len(), 5, "not a `CreateTime Partition Offset key value` line: {l:?}");
            let field = |s: &str, name: &str| -> i64 {
                s.strip_prefix(name).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no {name} in {l:?}"))
            };
            CRec {
                timestamp: field(f[0], "CreateTime:"),
                partition: field(f[1], "Partition:") as i32,
                offset: field(f[2], "Offset:"),
                key: f[3].to_string(),
                value: f[4].to_string(),
            }
        })
        .collect()
}

/// kafka-console-consumer in group `group` on `topic`, printing timestamp,
/// partition, offset, key and value; `--from-beginning` (used only when the
/// group has no committed offset), and `extra` arguments.
fn console_consumer(b: &Broker, topic: &str, group: &str, extra: &[&str]) -> Command {
    let mut cmd = kafka_tool("kafka-console-consumer");
    cmd.args(["--bootstrap-server", &b.bootstrap(), "--topic", topic, "--group", group, "--from-beginning"]);
    for p in ["print.timestamp", "print.partition", "print.offset", "print.key"] {
        cmd.args(["--formatter-property", &format!("{p}=true")]);
    }
    cmd.args(extra);
    cmd
}

/// Runs a console consumer in `group` until it has printed `n` records (at
/// most 60 s between records), and returns them; on exit it commits.
fn consume_n(b: &Broker, topic: &str, group: &str, n: usize, extra: &[&str]) -> Vec<CRec> {
    let max = n.to_string();
    let out =
        run_ok(&mut console_consumer(b, topic, group, &[&["--max-messages", &max, "--timeout-ms", "60000"][..], extra].concat()), None, T);
    let recs = parse_console(&out);
    assert_eq!(recs.len(), n, "the console consumer printed {} records, not {n}:\n{out}", recs.len());
    recs
}

/// Checks that `recs` (as read) are exactly the records `want` (as produced):
/// each once, each partition's in produce order at consecutive offsets from
/// `from[partition]` (0 when absent).
fn assert_reads(recs: &[CRec], want: &[(String, String)], from: &BTreeMap<i32, i64>) {
    let got: BTreeSet<(&str, &str)> = recs.iter().map(|r| (r.key.as_str(), r.value.as_str())).collect();
    let wanted: BTreeSet<(&str, &str)> = want.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got, wanted, "read a different set of records than expected");
    assert_eq!(recs.len(), want.len(), "some record read twice: {recs:?}");
    let order: BTreeMap<&str, usize> = want.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)).collect();
    let mut by_p: BTreeMap<i32, Vec<&CRec>> = BTreeMap::new();
    for r in recs {
        by_p.entry(r.partition).or_default().push(r);
    }
    for (p, rs) in by_p {
        let start = from.get(&p).copied().unwrap_or(0);
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(r.offset, start + i as i64, "partition {p}: record {i} read is {r:?}, expected offset {}", start + i as i64);
        }
        assert!(rs.windows(2).all(|w| order[w[0].key.as_str()] < order[w[1].key.as_str()]), "partition {p} not in produce order: {rs:?}");
    }
}

/// Per-partition record counts of `recs`.
fn counts(recs: &[CRec]) -> BTreeMap<i32, i64> {
    let mut c = BTreeMap::new();
    for r in recs {
        *c.entry(r.partition).or_insert(0) += 1;
    }
    c
}

/// `map` with the topic name added to each partition key.
fn on_topic(topic: &str, map: &BTreeMap<i32, i64>) -> BTreeMap<(String, i32), i64> {
    map.iter().map(|(p, o)| ((topic.to_string(), *p), *o)).collect()
}

/// Committed offsets sampled over time: fails the test if one goes back
/// (or disappears) between samples.
#[derive(Default)]
struct Monotonic {
    seen: BTreeMap<(String, i32), i64>,
    samples: usize,
}

impl Monotonic {
    fn observe(&mut self, rows: &BTreeMap<(String, i32), Row>, out: &str) {
        for (k, r) in rows {
            match (self.seen.get(k), r.current) {
                (Some(&before), Some(now)) => {
                    assert!(now >= before, "committed offset of {k:?} went back from {before} to {now}:\n{out}")
                }
                (Some(&before), None) => panic!("committed offset of {k:?} ({before}) disappeared:\n{out}"),
                _ => {}
            }
            if let Some(now) = r.current {
                self.seen.insert(k.clone(), now);
            }
        }
        self.samples += 1;
    }
}

// ---------------------------------------------------------------------------
// the tests

/// Issue proof 1: the console consumer in a group reads everything the
/// console producer wrote, commits, and a later run of the same group reads
/// only what was produced after.
#[test]
fn console_consumer_group_reads_all_then_only_new_records() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("cg-console", "cg-console-group");
    create_topic(&b, topic, 3);
    let first = produce(&b, topic, "a", 0..30);

    let read = consume_n(&b, topic, group, first.len(), &[]);
    assert_reads(&read, &first, &BTreeMap::new());
    let ends = counts(&read);
    assert_eq!(ends.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2], "the keys should reach every partition");

    // Everything read is committed: CURRENT-OFFSET = LOG-END-OFFSET, no lag, no member.
    let (out, rows) = describe_group(&b, group);
    assert_eq!(committed(&rows), on_topic(topic, &ends), "committed offsets after reading everything:\n{out}");
    for (k, r) in &rows {
        assert_eq!((r.log_end, r.lag, &r.consumer_id), (ends.get(&k.1).copied(), Some(0), &None), "{k:?}:\n{out}");
    }
    assert!(list_groups(&b).contains(group), "{group} not in --list");

    // A second run in the same group, started before anything new exists:
    // once it owns the partitions, produce 15 more; it must read exactly those.
    let mut second = Bg::spawn("second", work.path(), &mut console_consumer(&b, topic, group, &["--max-messages", "15"]));
    wait_for("the second consumer to own all 3 partitions", Duration::from_secs(60), || {
        let (_, rows) = describe_group(&b, group);
        let owners: BTreeSet<_> = rows.values().filter_map(|r| r.consumer_id.clone()).collect();
        (rows.len() == 3 && owners.len() == 1 && rows.values().all(|r| r.consumer_id.is_some())).then_some(())
    });
    assert!(parse_console(&second.stdout()).is_empty(), "the second run read old records:\n{}", second.stdout());
    let more = produce(&b, topic, "b", 0..15);
    let status = second.wait(Duration::from_secs(60));
    assert!(status.success(), "second consumer: {status}\n{}", second.stderr());
    let read2 = parse_console(&second.stdout());
    assert_reads(&read2, &more, &ends);

    let total: BTreeMap<i32, i64> = counts(&[read, read2].concat());
    let (out, rows) = describe_group(&b, group);
    assert_eq!(committed(&rows), on_topic(topic, &total), "committed offsets after the second run:\n{out}");
    assert!(rows.values().all(|r| r.lag == Some(0)), "lag left after the second run:\n{out}");
}

/// Issue proof 2: three console consumers share a 6-partition topic, two
/// partitions each; one is SIGKILLed and its partitions move to the two
/// others after its session times out; every record is read at least once
/// and committed offsets never go back.
#[test]
fn three_console_consumers_share_six_partitions_and_survive_a_sigkill() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (topic, group) = ("cg-share", "cg-share-group");
    let session = Duration::from_millis(6000);
    create_topic(&b, topic, 6);
    let first = produce(&b, topic, "a", 0..60);

    let member = |i: usize| {
        let client_id = format!("member-{i}");
        let props = [
            format!("session.timeout.ms={}", session.as_millis()),
            "heartbeat.interval.ms=500".to_string(),
            "auto.commit.interval.ms=500".to_string(),
            format!("client.id={client_id}"),
        ];
        let mut cmd = console_consumer(&b, topic, group, &[]);
        for p in &props {
            cmd.args(["--command-property", p]);
        }
        Bg::spawn(&client_id, work.path(), &mut cmd)
    };
    let mut members: Vec<Bg> = (0..3).map(member).collect();
    let mut mono = Monotonic::default();

    // Owners (CLIENT-ID) by partition, once every partition has one.
    let owners = |mono: &mut Monotonic| -> Option<BTreeMap<i32, String>> {
        let (out, rows) = describe_group(&b, group);
        mono.observe(&rows, &out);
        let owned: BTreeMap<i32, String> = rows.iter().filter_map(|(k, r)| Some((k.1, r.client_id.clone()?))).collect();
        (owned.len() == 6).then_some(owned)
    };
    let by_member = |owned: &BTreeMap<i32, String>| {
        let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (p, c) in owned {
            m.entry(c.clone()).or_default().push(*p);
        }
        m
    };

    let shared = wait_for("3 members with 2 partitions each", Duration::from_secs(90), || {
        let owned = owners(&mut mono)?;
        let m = by_member(&owned);
        (m.len() == 3 && m.values().all(|ps| ps.len() == 2)).then_some(m)
    });
    assert_eq!(shared.keys().cloned().collect::<Vec<_>>(), vec!["member-0", "member-1", "member-2"], "{shared:?}");

    // SIGKILL member-1: no LeaveGroup; the coordinator notices only when its
    // session times out.
    let victim_partitions = shared["member-1"].clone();
    members[1].kill();
    let killed_at = Instant::now();
    let survivors = wait_for("the 2 survivors to own all 6 partitions", Duration::from_secs(45), || {
        let owned = owners(&mut mono)?;
        let m = by_member(&owned);
        (m.len() == 2 && !m.contains_key("member-1")).then_some(m)
    });
    let moved_after = killed_at.elapsed();
    eprintln!("partitions {victim_partitions:?} of the killed member moved after {moved_after:?}: {survivors:?}");
    assert!(
        moved_after < session + Duration::from_secs(20),
        "the killed member's partitions took {moved_after:?} to move (session timeout {session:?})"
    );

    // What is produced now only the survivors can read, the killed member's
    // former partitions included.
    let second = produce(&b, topic, "b", 0..60);
    let all: Vec<(String, String)> = [first.clone(), second.clone()].concat();
    wait_for("every record committed", Duration::from_secs(60), || {
        let (out, rows) = describe_group(&b, group);
        mono.observe(&rows, &out);
        let done = rows.len() == 6 && rows.values().all(|r| r.current.is_some() && r.current == r.log_end);
        (done && rows.values().filter_map(|r| r.current).sum::<i64>() == all.len() as i64).then_some(())
    });
    assert!(mono.samples >= 3, "too few samples of the committed offsets");

    // The consumers print a record before committing past it, so everything
    // committed has been printed: check the union against what was produced.
    let read: Vec<Vec<CRec>> = members.iter().map(|m| parse_console(&m.stdout())).collect();
    let mut where_: BTreeMap<&str, (i32, i64)> = BTreeMap::new();
    for r in read.iter().flatten() {
        assert_eq!(r.value, format!("{}-value-{}", &r.key[..1], &r.key[1..]), "corrupt record {r:?}");
        if let Some(before) = where_.insert(r.key.as_str(), (r.partition, r.offset)) {
            assert_eq!(before, (r.partition, r.offset), "key {} read at two places", r.key);
        }
    }
    let missing: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).filter(|k| !where_.contains_key(k)).collect();
    assert!(missing.is_empty(), "records never consumed: {missing:?}");
    let by_survivors: BTreeSet<(&str, i32)> = [&read[0], &read[2]].into_iter().flatten().map(|r| (r.key.as_str(), r.partition)).collect();
    let missed: Vec<&str> = second.iter().map(|(k, _)| k.as_str()).filter(|k| !by_survivors.iter().any(|(sk, _)| sk == k)).collect();
    assert!(missed.is_empty(), "records produced after the kill that no survivor read: {missed:?}");
    for p in &victim_partitions {
        assert!(
            by_survivors.iter().any(|(k, rp)| rp == p && k.starts_with('b')),
            "no survivor read partition {p} (the killed member's) after the kill"
        );
    }
    for m in members.iter_mut() {
        m.kill();
    }
}

/// Issue proof 3a: `--list` and `--describe` with lag, `--state`, `--members`.
#[test]
fn consumer_groups_list_and_describe_with_lag() {
    let b = Broker::start();
    let (topic, group) = ("cg-lag", "cg-lag-group");
    create_topic(&b, topic, 1);
    let recs = produce(&b, topic, "a", 0..10);

    // max.poll.records=1: the position (what is committed on exit) is right
    // after the last record printed.
    let read = consume_n(&b, topic, group, 4, &["--command-property", "max.poll.records=1"]);
    assert_reads(&read, &recs[..4], &BTreeMap::new());

    let lag_row = |b: &Broker| {
        let (out, rows) = describe_group(b, group);
        assert_eq!(rows.len(), 1, "one partition, one row:\n{out}");
        let r = rows.get(&(topic.to_string(), 0)).unwrap_or_else(|| panic!("no {topic} 0 row:\n{out}")).clone();
        assert_eq!((&r.consumer_id, &r.client_id), (&None, &None), "no active member:\n{out}");
        assert!(out.contains(&format!("Consumer group '{group}' has no active members.")), "{out}");
        (r.current, r.log_end, r.lag)
    };
    assert_eq!(lag_row(&b), (Some(4), Some(10), Some(6)), "CURRENT-OFFSET, LOG-END-OFFSET, LAG");
    produce(&b, topic, "b", 0..5);
    assert_eq!(lag_row(&b), (Some(4), Some(15), Some(11)), "after 5 more records");

    let listed = list_groups(&b);
    assert!(listed.contains(group), "{group} not in --list: {listed:?}");
    assert!(!listed.contains("cg-never-used"), "{listed:?}");
    let states = groups_ok(&b, &["--list", "--state"]).stdout;
    let row: Vec<&str> = states.lines().find(|l| l.split_whitespace().next() == Some(group)).unwrap_or("").split_whitespace().collect();
    assert_eq!(row, vec![group, "Empty"], "--list --state:\n{states}");
    let (_, state, n) = group_state(&b, group);
    assert_eq!((state, n), ("Empty".to_string(), 0));
    let members = groups(&b, &["--describe", "--group", group, "--members"]);
    assert!(members.stderr.contains(&format!("Consumer group '{group}' has no active members.")), "{}", members.text());

    // A group that never existed: Kafka 4.4 (DescribeGroups v6) reports
    // GroupIdNotFoundException; DescribeGroups before v6 makes the tool say
    // it does not exist. Either way, no rows.
    let none = groups(&b, &["--describe", "--group", "cg-never-used"]);
    assert!(
        none.stdout.contains("GroupIdNotFoundException") || none.stdout.contains("Consumer group 'cg-never-used' does not exist."),
        "describing an unknown group:\n{}",
        none.text()
    );
    assert!(!none.stdout.contains("CURRENT-OFFSET"), "{}", none.text());
}

/// `yyyy-mm-ddThh:mm:ss.mmmZ` for `ms` since the epoch (UTC), the form
/// `--to-datetime` takes.
fn utc_datetime(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

#[test]
fn utc_datetime_formats_like_kafka_expects() {
    assert_eq!(utc_datetime(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(utc_datetime(951_827_696_789), "2000-02-29T12:34:56.789Z");
    assert_eq!(utc_datetime(1_795_639_257_949), "2026-11-25T20:40:57.949Z");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(utc_datetime(now).starts_with("20"), "{}", utc_datetime(now));
}

/// Issue proof 3b: `--reset-offsets` `--to-earliest`, `--to-latest`,
/// `--to-datetime`, `--shift-by`: `--dry-run` prints the plan and changes
/// nothing, `--execute` changes the committed offsets and the group's next
/// consumer reads from there.
#[test]
fn consumer_groups_reset_offsets_dry_run_and_execute() {
    let b = Broker::start();
    let (topic, group) = ("cg-reset", "cg-reset-group");
    create_topic(&b, topic, 2);
    let a = produce(&b, topic, "a", 0..20);
    let read_a = consume_n(&b, topic, group, a.len(), &[]);
    assert_reads(&read_a, &a, &BTreeMap::new());
    let a_counts = counts(&read_a);
    // A later JVM run of the producer: every B timestamp is after every A one.
    let bb = produce(&b, topic, "b", 0..20);
    let read_b = consume_n(&b, topic, group, bb.len(), &[]);
    assert_reads(&read_b, &bb, &a_counts);
    let ends = counts(&[read_a.clone(), read_b.clone()].concat());
    assert_eq!(ends.len(), 2, "the keys should reach both partitions: {ends:?}");
    let first_b = read_b.iter().map(|r| r.timestamp).min().unwrap();
    assert!(read_a.iter().all(|r| r.timestamp < first_b), "A and B timestamps overlap");

    let committed_now = |b: &Broker| {
        let (out, rows) = describe_group(b, group);
        (committed(&rows), out)
    };
    let zeros: BTreeMap<i32, i64> = ends.keys().map(|p| (*p, 0)).collect();
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &ends), "{out}");

    // --to-earliest
    assert_eq!(reset(&b, group, topic, &["--to-earliest"], "--dry-run"), zeros, "--to-earliest --dry-run");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &ends), "--dry-run changed the offsets:\n{out}");
    assert_eq!(reset(&b, group, topic, &["--to-earliest"], "--execute"), zeros, "--to-earliest --execute");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &zeros), "after --to-earliest --execute:\n{out}");
    let all = [a.clone(), bb.clone()].concat();
    assert_reads(&consume_n(&b, topic, group, all.len(), &[]), &all, &BTreeMap::new());

    // --shift-by -3
    let minus3: BTreeMap<i32, i64> = ends.iter().map(|(p, e)| (*p, e - 3)).collect();
    assert_eq!(reset(&b, group, topic, &["--shift-by", "-3"], "--dry-run"), minus3, "--shift-by -3 --dry-run");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &ends), "--dry-run changed the offsets:\n{out}");
    assert_eq!(reset(&b, group, topic, &["--shift-by", "-3"], "--execute"), minus3, "--shift-by -3 --execute");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &minus3), "after --shift-by -3 --execute:\n{out}");
    let tail = consume_n(&b, topic, group, 6, &[]);
    let want_tail: Vec<(String, String)> = [read_a.clone(), read_b.clone()]
        .concat()
        .iter()
        .filter(|r| r.offset >= minus3[&r.partition])
        .map(|r| (r.key.clone(), r.value.clone()))
        .collect();
    assert_reads(&tail, &want_tail, &minus3);

    // --to-datetime: B's first timestamp is where B starts in each partition
    // (a partition without B records would fall back to its end: also A's count).
    let at = utc_datetime(first_b);
    assert_eq!(reset(&b, group, topic, &["--to-datetime", &at], "--dry-run"), a_counts, "--to-datetime {at} --dry-run");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &ends), "--dry-run changed the offsets:\n{out}");
    assert_eq!(reset(&b, group, topic, &["--to-datetime", &at], "--execute"), a_counts, "--to-datetime {at} --execute");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &a_counts), "after --to-datetime --execute:\n{out}");
    assert_reads(&consume_n(&b, topic, group, bb.len(), &[]), &bb, &a_counts);

    // --to-latest, from the earliest offsets
    reset(&b, group, topic, &["--to-earliest"], "--execute");
    assert_eq!(reset(&b, group, topic, &["--to-latest"], "--dry-run"), ends, "--to-latest --dry-run");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &zeros), "--dry-run changed the offsets:\n{out}");
    assert_eq!(reset(&b, group, topic, &["--to-latest"], "--execute"), ends, "--to-latest --execute");
    let (now, out) = committed_now(&b);
    assert_eq!(now, on_topic(topic, &ends), "after --to-latest --execute:\n{out}");
    let c = produce(&b, topic, "c", 0..4);
    assert_reads(&consume_n(&b, topic, group, c.len(), &[]), &c, &ends);
}

/// Issue proof 3c: `--delete` refuses a group with members and deletes an
/// empty one; `--delete-offsets` refuses a topic the group is subscribed to
/// and deletes an empty group's offsets of one topic; `--reset-offsets`
/// refuses an active group.
#[test]
fn consumer_groups_delete_and_delete_offsets() {
    let b = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let (ta, tb, group) = ("cg-del-a", "cg-del-b", "cg-del-group");
    create_topic(&b, ta, 2);
    create_topic(&b, tb, 1);
    let a = produce(&b, ta, "a", 0..10);
    let bb = produce(&b, tb, "b", 0..10);
    let read_a = consume_n(&b, ta, group, a.len(), &[]);
    assert_reads(&read_a, &a, &BTreeMap::new());
    consume_n(&b, tb, group, bb.len(), &[]);
    let mut want = on_topic(ta, &counts(&read_a));
    want.insert((tb.to_string(), 0), 10);
    let (out, rows) = describe_group(&b, group);
    assert_eq!(committed(&rows), want, "{out}");

    // A member subscribed to cg-del-b.
    let mut member = Bg::spawn("member", work.path(), &mut console_consumer(&b, tb, group, &[]));
    wait_for("the member to own cg-del-b 0", Duration::from_secs(60), || {
        let (_, rows) = describe_group(&b, group);
        rows.get(&(tb.to_string(), 0)).and_then(|r| r.consumer_id.clone())
    });

    let del = groups(&b, &["--delete", "--group", group]);
    assert!(
        del.stdout.contains(&format!("Group '{group}' could not be deleted due to: org.apache.kafka.common.errors.GroupNotEmptyException")),
        "deleting a group with a member:\n{}",
        del.text()
    );
    let refused = groups(&b, &["--reset-offsets", "--group", group, "--topic", ta, "--to-earliest", "--execute"]);
    assert!(
        refused.stdout.contains(&format!(
            "Error: Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable."
        )),
        "resetting an active group:\n{}",
        refused.text()
    );
    let subscribed = groups(&b, &["--delete-offsets", "--group", group, "--topic", tb]);
    assert!(
        subscribed.stdout.contains("GroupSubscribedToTopicException"),
        "deleting offsets of a topic the group is subscribed to:\n{}",
        subscribed.text()
    );
    assert!(list_groups(&b).contains(group), "a refused --delete removed the group");
    let (out, rows) = describe_group(&b, group);
    assert_eq!(committed(&rows), want, "refused operations changed offsets:\n{out}");

    // The member leaves (SIGTERM: the console consumer closes, which sends LeaveGroup).
    let status = member.terminate(Duration::from_secs(60));
    assert!(parse_console(&member.stdout()).is_empty(), "the member read old records:\n{}", member.stdout());
    eprintln!("member exited: {status}");
    wait_for("the group to be Empty", Duration::from_secs(30), || (group_state(&b, group).1 == "Empty").then_some(()));

    let out = groups_ok(&b, &["--delete-offsets", "--group", group, "--topic", ta]).stdout;
    assert!(out.contains(&format!("Request succeeded for deleting offsets from group {group}.")), "{out}");
    let mut statuses = parse_rows(&out, &["TOPIC", "PARTITION", "STATUS"]);
    statuses.sort();
    assert_eq!(
        statuses,
        vec![vec![ta.to_string(), "0".into(), "Successful".into()], vec![ta.to_string(), "1".into(), "Successful".into()]],
        "{out}"
    );
    let (out, rows) = describe_group(&b, group);
    assert_eq!(committed(&rows), BTreeMap::from([((tb.to_string(), 0), 10)]), "after --delete-offsets --topic {ta}:\n{out}");
    // With its offsets gone the group reads cg-del-a from the beginning again.
    assert_reads(&consume_n(&b, ta, group, a.len(), &[]), &a, &BTreeMap::new());

    let out = groups_ok(&b, &["--delete", "--group", group]).stdout;
    assert!(out.contains(&format!("Deletion of requested consumer groups ('{group}') was successful.")), "{out}");
    let listed = list_groups(&b);
    assert!(!listed.contains(group), "{group} still listed after --delete: {listed:?}");
    let gone = groups(&b, &["--describe", "--group", group]);
    assert!(
        gone.stdout.contains("GroupIdNotFoundException") || gone.stdout.contains(&format!("Consumer group '{group}' does not exist.")),
        "describing a deleted group:\n{}",
        gone.text()
    );
    let again = groups(&b, &["--delete", "--group", group]);
    assert!(again.stdout.contains("GroupIdNotFoundException: The group id does not exist."), "deleting a deleted group:\n{}", again.text());
}

/// Issue proof 5: committed offsets survive the broker stopping (SIGTERM)
/// and being killed (SIGKILL): `--describe` shows them after the restart
/// and the group's next consumer reads on from them.
#[test]
fn committed_offsets_survive_broker_restarts() {
    let mut b = Broker::start();
    let (topic, group) = ("cg-restart", "cg-restart-group");
    create_topic(&b, topic, 1);
    let recs = produce(&b, topic, "a", 0..20);
    let read = consume_n(&b, topic, group, 8, &["--command-property", "max.poll.records=1"]);
    assert_reads(&read, &recs[..8], &BTreeMap::new());
    let state = |b: &Broker| {
        let (out, rows) = describe_group(b, group);
        let r = rows.get(&(topic.to_string(), 0)).unwrap_or_else(|| panic!("no row:\n{out}")).clone();
        (r.current, r.log_end, r.lag)
    };
    assert_eq!(state(&b), (Some(8), Some(20), Some(12)));

    b.stop();
    b.restart();
    assert_eq!(state(&b), (Some(8), Some(20), Some(12)), "after a stop and restart");
    assert!(list_groups(&b).contains(group), "{group} not listed after the restart");
    assert_reads(&consume_n(&b, topic, group, 12, &[]), &recs[8..], &BTreeMap::from([(0, 8)]));
    assert_eq!(state(&b), (Some(20), Some(20), Some(0)));

    let more = produce(&b, topic, "b", 0..5);
    b.kill();
    b.restart();
    assert_eq!(state(&b), (Some(20), Some(25), Some(5)), "after a SIGKILL and restart");
    assert_reads(&consume_n(&b, topic, group, 5, &[]), &more, &BTreeMap::from([(0, 20)]));
    assert_eq!(state(&b), (Some(25), Some(25), Some(0)));
}

/// The CSV line of kafka-consumer-perf-test: field `name` of its data row.
fn perf_field(out: &str, name: &str) -> String {
    let mut lines = out.lines().filter(|l| !l.starts_with("WARNING"));
    let header: Vec<&str> =
        lines.by_ref().find(|l| l.starts_with("start.time")).unwrap_or_else(|| panic!("no header:\n{out}")).split(", ").collect();
    let data: Vec<&str> = lines.next().unwrap_or_else(|| panic!("no data row:\n{out}")).split(", ").collect();
    assert_eq!(header.len(), data.len(), "{out}");
    let i = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} column:\n{out}"));
    data[i].to_string()
}

/// Issue proof 6: kafka-consumer-perf-test with `--group` consumes the
/// requested record count (`--num-records`; Kafka 4.4 deprecates
/// `--messages`) and commits; a second run of the group reads only the new
/// records.
#[test]
fn consumer_perf_test_with_a_group() {
    let b = Broker::start();
    let (topic, group) = ("cg-perf", "cg-perf-group");
    create_topic(&b, topic, 3);
    let produce_perf = |n: usize| {
        let bootstrap = format!("bootstrap.servers={}", b.bootstrap());
        let out = run_ok(
            kafka_tool("kafka-producer-perf-test")
                .args(["--topic", topic, "--num-records", &n.to_string(), "--record-size", "100"])
                .args(["--throughput", "-1", "--command-property", "acks=all", &bootstrap]),
            None,
            T,
        );
        assert!(out.lines().any(|l| l.starts_with(&format!("{n} records sent,"))), "{out}");
    };
    let consume_perf = |n: usize| {
        let out =
            run_ok(
                kafka_tool("kafka-consumer-perf-test")
                    .args(["--bootstrap-server", &b.bootstrap(), "--topic", topic, "--group", group])
                    .args(["--num-records", &n.to_string(), "--timeout", "60000"]),
                None,
                T,
            );
        assert!(!out.contains("WARNING: Exiting before consuming the expected number of records"), "{out}");
        assert_eq!(perf_field(&out, "data.consumed.in.nMsg"), n.to_string(), "records consumed:\n{out}");
    };
    let committed_total = || {
        let (out, rows) = describe_group(&b, group);
        assert_eq!(rows.len(), 3, "{out}");
        assert!(rows.values().all(|r| r.current.is_some() && r.current == r.log_end), "not all committed:\n{out}");
        rows.values().filter_map(|r| r.current).sum::<i64>()
    };

    produce_perf(3000);
    consume_perf(3000);
    assert_eq!(committed_total(), 3000);
    produce_perf(600);
    consume_perf(600);
    assert_eq!(committed_total(), 3600, "the second run did not start at the committed offsets");
}
