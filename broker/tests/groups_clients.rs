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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{Broker, Ran, Rec, kafka_tool, parse_records, python, run, run_ok};

const T: Duration = Duration::from_secs(120);
const MEMBER: &str = "groups_consumer.py";
/// The members' session timeout: long, so that a partition moving sooner
/// than this shows the LeaveGroup did it, not an expired session.
const SESSION: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// kafka-consumer-groups

/// Kafka's `kafka-consumer-groups` against `b`.
fn consumer_groups_command(b: &Broker) -> Command {
    let mut cmd = kafka_tool("kafka-consumer-groups");
    cmd.args(["--bootstrap-server", &b.bootstrap()]);
    cmd
}

fn groups(b: &Broker, args: &[&str]) -> Ran {
    let ran = run(consumer_groups_command(b).args(args), None, T);
    assert!(ran.status.success() && !ran.stdout.contains("Error:"), "kafka-consumer-groups {args:?} failed:\n{}", ran.text());
    ran
}

/// One `--describe` row: committed offset, log-end offset, owner's client id.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    current: Option<i64>,
    log_end: Option<i64>,
    client_id: Option<String>,
}

/// `--describe --group G` rows by partition (one topic per group here), and
/// everything the tool printed. No rows (and an error printed) while the
/// group does not exist yet: callers wait for rows.
fn describe(b: &Broker, group: &str, topic: &str) -> (BTreeMap<i32, Row>, String) {
    let ran = run(consumer_groups_command(b).args(["--describe", "--group", group]), None, T);
    assert!(ran.status.success(), "kafka-consumer-groups --describe failed:\n{}", ran.text());
    let text = ran.text();
    let header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"];
    let mut lines = ran.stdout.lines().skip_while(|l| l.split_whitespace().collect::<Vec<_>>() != header);
    let mut rows = BTreeMap::new();
    if lines.next().is_some() {
        for l in lines.take_while(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() == 9 && f[0] == group && f[1] == topic, "unexpected row {l:?} in:\n{text}");
            let num = |s: &str| (s != "-").then(|| s.parse::<i64>().unwrap_or_else(|_| panic!("bad number {s:?} in {l:?}")));
            let row = Row { current: num(f[3]), log_end: num(f[4]), client_id: (f[8] != "-").then(|| f[8].to_string()) };
            rows.insert(f[2].parse().unwrap(), row);
        }
    }
    (rows, text)
}

/// Partitions by owner (client id), from `--describe` rows.
fn owners(rows: &BTreeMap<i32, Row>) -> BTreeMap<String, Vec<i32>> {
    let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (p, r) in rows {
        if let Some(c) = &r.client_id {
            m.entry(c.clone()).or_default().push(*p);
        }
    }
    m
}

/// `--describe --state`: (assignment strategy, state, member count).
fn group_state(b: &Broker, group: &str) -> (String, String, usize) {
    let out = groups(b, &["--describe", "--group", group, "--state"]).stdout;
    let row = out.lines().find(|l| l.split_whitespace().next() == Some(group)).unwrap_or_else(|| panic!("no {group} row in:\n{out}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    assert!(f.len() >= 5, "unexpected --state row {row:?}");
    let n = f.len();
    (f[n - 3].to_string(), f[n - 2].to_string(), f[n - 1].parse().unwrap_or_else(|_| panic!("bad #MEMBERS in {row:?}")))
}

fn wait_for<R>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        // Most checks run a JVM tool; this only spaces out the cheap ones.
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// members

/// A client running in the background with its output in files; SIGKILLed
/// when dropped (its output printed if the test is failing).
struct Bg {
    name: String,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Bg {
    fn spawn(name: &str, dir: &Path, cmd: &mut Command) -> Bg {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        cmd.stdin(Stdio::null()).stdout(File::create(&out).unwrap()).stderr(File::create(&err).unwrap());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        Bg { name: name.to_string(), child: Some(child), out, err }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The records printed so far (complete lines only).
    fn records(&self) -> Vec<Rec> {
        let text = self.stdout();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let recs: String = complete.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        parse_records(&recs)
    }

    /// The partitions of the member's latest `#assigned` line.
    fn assigned(&self) -> Option<Vec<i32>> {
        let text = self.stdout();
        let last = text.lines().rev().find_map(|l| l.strip_prefix("#assigned\t"))?;
        Some(last.split(',').filter(|p| !p.is_empty()).map(|p| p.parse().unwrap()).collect())
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("already reaped");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "{} still running after {limit:?}:\n{}\n{}", self.name, self.stdout(), self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (the member closes its consumer, leaving the group), and wait.
    fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.as_ref().expect("already reaped").id();
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        self.wait(limit)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let tail = |s: String| s.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            eprintln!(
                "----- {}: stdout (end) -----\n{}\n----- stderr (end) -----\n{}",
                self.name,
                tail(self.stdout()),
                tail(self.stderr())
            );
        }
    }
}

fn member(b: &Broker, dir: &Path, client: &str, topic: &str, group: &str, client_id: &str) -> Bg {
    let mut cmd = python(MEMBER);
    cmd.args(["--client", client, "--brokers", &b.bootstrap(), "--topic", topic, "--group", group, "--client-id", client_id])
        .args(["--session-timeout-ms", &SESSION.as_millis().to_string()]);
    Bg::spawn(client_id, dir, &mut cmd)
}

/// The Python test client of the same library (`confluent_client.py` or
/// `kafka_python_client.py`).
fn producer_script(client: &str) -> &'static str {
    match client {
        "confluent" => "confluent_client.py",
        "kafka-python" => "kafka_python_client.py",
        other => panic!("no client {other}"),
    }
}

/// Produces `n` records (keys `<prefix><i>`, values `<prefix>-v<i>`) and
/// returns them as acknowledged.
fn produce(b: &Broker, client: &str, topic: &str, prefix: &str, n: usize) -> Vec<Rec> {
    let out =
        run_ok(
            python(producer_script(client))
                .args(["produce", "--brokers", &b.bootstrap(), "--topic", topic, "--count", &n.to_string()])
                .args(["--key-prefix", prefix, "--value-prefix", &format!("{prefix}-v")]),
            None,
            T,
        );
    let acked = parse_records(&out);
    assert_eq!(acked.len(), n, "not every record acknowledged:\n{out}");
    acked
}

fn create_topic(b: &Broker, client: &str, topic: &str, partitions: u32) {
    run_ok(
        python(producer_script(client))
            .args(["create-topic", "--brokers", &b.bootstrap(), "--topic", topic])
            .args(["--partitions", &partitions.to_string()]),
        None,
        T,
    );
}

/// Waits until `--describe` shows every one of `partitions` partitions
/// committed at its log end, `total` records in all; returns the rows.
fn wait_all_committed(b: &Broker, group: &str, topic: &str, partitions: usize, total: i64) -> BTreeMap<i32, Row> {
    wait_for(&format!("all {total} records of {group} committed"), Duration::from_secs(60), || {
        let (rows, _) = describe(b, group, topic);
        let done = rows.len() == partitions
            && rows.values().all(|r| r.current.is_some() && r.current == r.log_end)
            && rows.values().filter_map(|r| r.current).sum::<i64>() == total;
        done.then_some(rows)
    })
}

/// Fails unless every record of `want` is among `read` (at its acknowledged
/// partition and offset, with its key and value).
fn assert_all_read(read: &[Rec], want: &[Rec], what: &str) {
    let got: BTreeSet<&Rec> = read.iter().collect();
    let missing: Vec<&Rec> = want.iter().filter(|r| !got.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {} records never read, first ones: {:?}",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(5)]
    );
}

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

    let mut a = member(&b, work.path(), client, &topic, &group, &id_a);
    let mut bm = member(&b, work.path(), client, &topic, &group, &id_b);
    let shared = wait_for("2 members with 2 partitions each, as they see it too", Duration::from_secs(90), || {
        let (rows, _) = describe(&b, &group, &topic);
        let m = owners(&rows);
        let agreed = m.len() == 2
            && m.values().all(|ps| ps.len() == 2)
            && a.assigned().as_ref() == m.get(&id_a)
            && bm.assigned().as_ref() == m.get(&id_b);
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
        (m.len() == 1 && m.get(&id_b).is_some_and(|ps| ps.len() == 4) && bm.assigned() == Some(vec![0, 1, 2, 3])).then_some(())
    });
    let moved = left_at.elapsed();
    eprintln!("{client}: {id_a}'s partitions moved {moved:?} after it was told to close");
    assert!(moved < SESSION, "partitions moved only after {moved:?}, not before the {SESSION:?} session timeout");

    let second = produce(&b, client, &topic, "b", 40);
    let rows = wait_all_committed(&b, &group, &topic, 4, 80);
    assert!(rows.values().all(|r| r.client_id.as_deref() == Some(id_b.as_str())), "{rows:?}");
    assert_all_read(&[a.records(), bm.records()].concat(), &[first, second.clone()].concat(), "the two members");
    assert_all_read(&bm.records(), &second, &id_b);
    for r in a.records().iter().chain(bm.records().iter()) {
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

    let rdk = member(&b, work.path(), "confluent", topic, group, "mixed-rdk");
    let kpy = member(&b, work.path(), "kafka-python", topic, group, "mixed-kpy");
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
    let shared = wait_for("3 members with 2 partitions each", Duration::from_secs(90), || {
        let (rows, _) = describe(&b, group, topic);
        let m = owners(&rows);
        (rows.len() == 6 && m.len() == 3 && m.values().all(|ps| ps.len() == 2)).then_some(m)
    });
    assert_eq!(shared.keys().map(String::as_str).collect::<Vec<_>>(), vec!["mixed-java", "mixed-kpy", "mixed-rdk"]);
    assert_eq!(group_state(&b, group), ("range".to_string(), "Stable".to_string(), 3), "--describe --state");
    wait_all_committed(&b, group, topic, 6, 60);

    // The console consumer prints `Partition:p\tOffset:o\tkey\tvalue`.
    let java_read: Vec<Rec> = java
        .stdout()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            let p = f.first()?.strip_prefix("Partition:")?.parse().ok()?;
            let o = f.get(1)?.strip_prefix("Offset:")?.parse().ok()?;
            Some(Rec { partition: p, offset: o, key: f.get(2)?.to_string(), value: f.get(3)?.to_string() })
        })
        .collect();
    assert_all_read(&[rdk.records(), kpy.records(), java_read].concat(), &recs, "the three members");
}
