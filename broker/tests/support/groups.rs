//! What the consumer group tests (`groups_java`, `groups_clients`,
//! `groups_rebalance`) share: Kafka's `kafka-consumer-groups` run and its
//! `--describe` output read, polling with a deadline, records produced and
//! checked with the Python clients, and clients run in the background
//! (`groups_consumer.py` members and Java console consumers).
//!
//! `kafka-consumer-groups` exits 0 even when it reports an error (a line on
//! stdout starting with `Error:`), so its output is what is checked; notes
//! such as `Consumer group 'G' has no active members.` go to stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Broker, Ran, Rec, kafka_tool, parse_records, python, run, run_ok};

/// How long one client tool may run: each is a JVM (or Python) start, and
/// several tests run at once on two cores.
pub const T: Duration = Duration::from_secs(120);

/// The group member script in `tests/interop/python`.
const MEMBER: &str = "groups_consumer.py";

// ---------------------------------------------------------------------------
// kafka-consumer-groups

/// Kafka's `kafka-consumer-groups` against `b`.
pub fn consumer_groups_command(b: &Broker) -> Command {
    let mut cmd = kafka_tool("kafka-consumer-groups");
    cmd.args(["--bootstrap-server", &b.bootstrap()]);
    cmd
}

/// Runs kafka-consumer-groups with `args`, whatever it reports.
pub fn groups(b: &Broker, args: &[&str]) -> Ran {
    run(consumer_groups_command(b).args(args), None, T)
}

/// Runs kafka-consumer-groups; fails the test if it exits non-zero or reports
/// an error (it exits 0 on most errors).
pub fn groups_ok(b: &Broker, args: &[&str]) -> Ran {
    let ran = groups(b, args);
    assert!(ran.status.success() && !ran.stdout.contains("Error:"), "kafka-consumer-groups {args:?} failed:\n{}", ran.text());
    ran
}

/// The whitespace-separated fields of the rows under the header line that
/// has exactly `header`'s columns (rows end at the first blank line).
pub fn parse_rows(out: &str, header: &[&str]) -> Vec<Vec<String>> {
    let mut lines = out.lines().skip_while(|l| l.split_whitespace().collect::<Vec<_>>() != header);
    if lines.next().is_none() {
        return Vec::new();
    }
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            assert_eq!(f.len(), header.len(), "a row with {} fields under {header:?}: {l:?} in:\n{out}", f.len());
            f
        })
        .collect()
}

/// One row of `--describe` (the offsets view), `None` where it prints `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub current: Option<i64>,
    pub log_end: Option<i64>,
    pub lag: Option<i64>,
    pub consumer_id: Option<String>,
    pub client_id: Option<String>,
}

/// `--describe --group G`: everything the tool printed (stdout and stderr)
/// and its rows by (topic, partition). No rows while the group does not
/// exist (the tool prints an error): callers wait for rows.
pub fn describe_group(b: &Broker, group: &str) -> (String, BTreeMap<(String, i32), Row>) {
    let ran = groups(b, &["--describe", "--group", group]);
    assert!(ran.status.success(), "kafka-consumer-groups --describe failed:\n{}", ran.text());
    let out = ran.text();
    let header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"];
    let rows = parse_rows(&ran.stdout, &header)
        .into_iter()
        .map(|f| {
            assert_eq!(f[0], group, "a row of another group in:\n{out}");
            let num = |s: &str| (s != "-").then(|| s.parse::<i64>().unwrap_or_else(|_| panic!("bad number {s:?} in:\n{out}")));
            let text = |s: &str| (s != "-").then(|| s.to_string());
            let key = (f[1].clone(), f[2].parse().unwrap_or_else(|_| panic!("bad partition in:\n{out}")));
            let row = Row { current: num(&f[3]), log_end: num(&f[4]), lag: num(&f[5]), consumer_id: text(&f[6]), client_id: text(&f[8]) };
            (key, row)
        })
        .collect();
    (out, rows)
}

/// [`describe_group`] of a group on one topic: its rows by partition, and
/// everything the tool printed.
pub fn describe(b: &Broker, group: &str, topic: &str) -> (BTreeMap<i32, Row>, String) {
    let (text, rows) = describe_group(b, group);
    let rows = rows
        .into_iter()
        .map(|((t, p), row)| {
            assert_eq!(t, topic, "a row of another topic in:\n{text}");
            (p, row)
        })
        .collect();
    (rows, text)
}

/// Partitions by owner (client id), from `--describe` rows.
pub fn owners(rows: &BTreeMap<i32, Row>) -> BTreeMap<String, BTreeSet<i32>> {
    let mut m: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for (p, r) in rows {
        if let Some(c) = &r.client_id {
            m.entry(c.clone()).or_default().insert(*p);
        }
    }
    m
}

/// `--describe --state`: (assignment strategy, state, member count). The
/// strategy is read only where the group has one (not when it is Empty).
pub fn group_state(b: &Broker, group: &str) -> (String, String, usize) {
    let out = groups_ok(b, &["--describe", "--group", group, "--state"]).stdout;
    let row =
        out.lines().find(|l| l.split_whitespace().next() == Some(group)).unwrap_or_else(|| panic!("no state row for {group} in:\n{out}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    // GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS, the
    // coordinator being `host:port  (id)`.
    assert!(f.len() >= 5, "unexpected --state row {row:?} in:\n{out}");
    let n = f.len();
    (f[n - 3].to_string(), f[n - 2].to_string(), f[n - 1].parse().unwrap_or_else(|_| panic!("bad #MEMBERS in {row:?}")))
}

/// Polls `f` until it returns something, at most `limit`.
pub fn wait_for<R>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<R>) -> R {
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

/// Waits until `--describe` shows every one of `partitions` partitions
/// committed at its log end, `total` records in all; returns the rows.
pub fn wait_all_committed(b: &Broker, group: &str, topic: &str, partitions: usize, total: i64) -> BTreeMap<i32, Row> {
    wait_for(&format!("all {total} records of {group} committed"), Duration::from_secs(60), || {
        let (rows, _) = describe(b, group, topic);
        let done = rows.len() == partitions
            && rows.values().all(|r| r.current.is_some() && r.current == r.log_end)
            && rows.values().filter_map(|r| r.current).sum::<i64>() == total;
        done.then_some(rows)
    })
}

// ---------------------------------------------------------------------------
// producing with the Python clients

/// The Python test client of a library: `confluent` (librdkafka,
/// `confluent_client.py`) or `kafka-python` (`kafka_python_client.py`).
fn producer_script(client: &str) -> &'static str {
    match client {
        "confluent" => "confluent_client.py",
        "kafka-python" => "kafka_python_client.py",
        other => panic!("no client {other}"),
    }
}

/// Creates `topic` with `partitions` partitions, with `client`'s test client.
pub fn create_topic(b: &Broker, client: &str, topic: &str, partitions: u32) {
    run_ok(
        python(producer_script(client))
            .args(["create-topic", "--brokers", &b.bootstrap(), "--topic", topic])
            .args(["--partitions", &partitions.to_string()]),
        None,
        T,
    );
}

/// Produces `n` records (keys `<prefix><i>`, values `<prefix>-v<i>`) with
/// `client`'s test client and returns them as acknowledged (with partition
/// and offset).
pub fn produce(b: &Broker, client: &str, topic: &str, prefix: &str, n: usize) -> Vec<Rec> {
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

/// Fails unless every record of `want` is among `read` (at its acknowledged
/// partition and offset, with its key and value).
pub fn assert_all_read(read: &[Rec], want: &[Rec], what: &str) {
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
// background clients

/// A client running in the background with its output in files; SIGKILLed
/// when dropped (its output printed if the test is failing).
pub struct Bg {
    name: String,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Bg {
    /// Starts `cmd` with its output in `dir/<name>.out` and `.err`.
    pub fn spawn(name: &str, dir: &Path, cmd: &mut Command) -> Bg {
        // A restarted member gets files of its own.
        let mut file = name.to_string();
        let mut n = 1;
        while dir.join(format!("{file}.out")).exists() {
            n += 1;
            file = format!("{name}.{n}");
        }
        let out = dir.join(format!("{file}.out"));
        let err = dir.join(format!("{file}.err"));
        cmd.stdin(Stdio::null()).stdout(File::create(&out).unwrap()).stderr(File::create(&err).unwrap());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        Bg { name: file, child: Some(child), out, err }
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The complete lines of stdout.
    pub fn out_lines(&self) -> Vec<String> {
        let text = self.stdout();
        text[..text.rfind('\n').map_or(0, |i| i + 1)].lines().map(str::to_string).collect()
    }

    /// SIGKILL (kafka-tool.sh execs java, so this is the JVM itself): no
    /// goodbye to the group.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
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

    /// SIGTERM (a consumer then closes, and leaves its group unless it is a
    /// static member), and wait.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.as_ref().expect("already reaped").id();
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        self.wait(limit)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        self.kill();
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

/// A `groups_consumer.py` member of `client` (`confluent` for librdkafka, or
/// `kafka-python`) with `extra` arguments.
#[allow(clippy::too_many_arguments)]
pub fn py_member(b: &Broker, dir: &Path, client: &str, topic: &str, group: &str, client_id: &str, session: Duration, extra: &[&str]) -> Bg {
    let mut cmd = python(MEMBER);
    cmd.args(["--client", client, "--brokers", &b.bootstrap(), "--topic", topic, "--group", group, "--client-id", client_id])
        .args(["--session-timeout-ms", &session.as_millis().to_string()])
        .args(extra);
    Bg::spawn(client_id, dir, &mut cmd)
}

/// The records a `groups_consumer.py` member printed (complete lines only).
pub fn py_records(m: &Bg) -> Vec<Rec> {
    let recs: String = m.out_lines().iter().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    parse_records(&recs)
}

/// The values of a `groups_consumer.py` member's `#<tag>` lines, in order.
pub fn py_tagged(m: &Bg, tag: &str) -> Vec<String> {
    let prefix = format!("#{tag}\t");
    m.out_lines().iter().filter_map(|l| l.strip_prefix(&prefix).map(str::to_string)).collect()
}

/// The partitions of a `p,q,...` list.
pub fn partition_set(list: &str) -> BTreeSet<i32> {
    list.split(',').filter(|p| !p.is_empty()).map(|p| p.parse().unwrap_or_else(|_| panic!("bad partition list {list:?}"))).collect()
}

/// A `groups_consumer.py` member's whole assignment, as it last printed it.
pub fn py_assigned(m: &Bg) -> Option<BTreeSet<i32>> {
    py_tagged(m, "assigned").last().map(|l| partition_set(l))
}

/// The records a console consumer printed with `print.partition`,
/// `print.offset` and `print.key` (`Partition:p\tOffset:o\tkey\tvalue`);
/// other lines are skipped.
pub fn java_records(m: &Bg) -> Vec<Rec> {
    m.out_lines()
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            let p = f.first()?.strip_prefix("Partition:")?.parse().ok()?;
            let o = f.get(1)?.strip_prefix("Offset:")?.parse().ok()?;
            Some(Rec { partition: p, offset: o, key: f.get(2)?.to_string(), value: f.get(3)?.to_string() })
        })
        .collect()
}
