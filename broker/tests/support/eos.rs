//! What the exactly-once tests (`transactions`, `streams_eos`) share: the
//! Java programs of `tests/eos` (compiled by `scripts/install-test-deps.sh`
//! into `.cache/eos-classes`, run against the Kafka client and Kafka Streams
//! jars in `.cache/eos-libs`), what they print, and Kafka's
//! `kafka-transactions` tool (`org.apache.kafka.tools.TransactionsCommand`,
//! which `tests/interop/kafka-tool.sh` does not name).

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use super::{INSTALL, Rec, parse_records, repo_root, require};

/// `java` running class `class` of `tests/eos/src` with a heap of `heap`
/// (`-Xmx`); the clients log to stderr at `log_level` (`warn`, `info`, ...).
pub fn eos_java(class: &str, heap: &str, log_level: &str) -> Command {
    let root = repo_root();
    let classes = root.join(".cache/eos-classes");
    let stamp = classes.join(".sources-sha256");
    require(&stamp, "the exactly-once test programs");
    require(&root.join(".cache/eos-libs/.pom-sha256"), "the Kafka Streams jars");
    let built = fs::metadata(&stamp).and_then(|m| m.modified()).unwrap();
    let src = root.join("tests/eos/src");
    for f in fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).chain([root.join("tests/eos/pom.xml")]) {
        let changed = fs::metadata(&f).and_then(|m| m.modified()).unwrap();
        assert!(changed <= built, "{} is older than {}: {INSTALL}", classes.display(), f.display());
    }
    let mut cmd = Command::new("java");
    cmd.arg(format!("-Xmx{heap}"))
        .arg(format!("-Dorg.slf4j.simpleLogger.defaultLogLevel={log_level}"))
        .args(["-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"])
        .arg("-cp")
        .arg(format!("{}:{}/*", classes.display(), root.join(".cache/eos-libs").display()))
        .arg(class);
    cmd
}

/// Kafka's `kafka-transactions --bootstrap-server <bootstrap>`.
pub fn kafka_transactions(bootstrap: &str) -> Command {
    let root = repo_root();
    let libs = root.join(".cache/kafka-libs");
    require(&libs.join(".version"), "Kafka's jars");
    require(&root.join(".cache/interop-libs/.pom-sha256"), "the interop jars");
    let mut cmd = Command::new("java");
    cmd.args(["-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp"])
        .arg(format!("{}/*:{}/*", libs.display(), root.join(".cache/interop-libs").display()))
        .args(["org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server", bootstrap]);
    cmd
}

/// A `TxnProducer` command for `txn_id` writing `transactions` transactions
/// of `records` records over `partitions` partitions of `topic`, every
/// `abort_every`-th aborted (0: none).
pub fn txn_producer(
    bootstrap: &str,
    topic: &str,
    txn_id: &str,
    transactions: usize,
    records: usize,
    partitions: i32,
    abort_every: usize,
) -> Command {
    let mut cmd = eos_java("TxnProducer", "256m", "warn");
    cmd.args(["--bootstrap", bootstrap, "--topic", topic, "--txn-id", txn_id])
        .args(["--transactions", &transactions.to_string(), "--records", &records.to_string()])
        .args(["--partitions", &partitions.to_string(), "--abort-every", &abort_every.to_string()]);
    cmd
}

/// What a `TxnProducer` run printed: each record with its fate (`commit`,
/// `abort`, `hang`) at the offset it was acknowledged at, and each finished
/// transaction's number and whether it committed.
#[derive(Debug, Default)]
pub struct Produced {
    pub records: Vec<(String, Rec)>,
    pub txns: Vec<(usize, bool)>,
    pub hanging: bool,
}

impl Produced {
    /// The records of this fate.
    pub fn with_fate(&self, fate: &str) -> Vec<Rec> {
        self.records.iter().filter(|(f, _)| f == fate).map(|(_, r)| r.clone()).collect()
    }
}

/// Reads `TxnProducer`'s output; fails the test on a line it does not know.
pub fn parse_produced(out: &str) -> Produced {
    let mut p = Produced::default();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        match f[0] {
            "REC" if f.len() == 6 => {
                let rec = Rec {
                    partition: f[2].parse().unwrap_or_else(|_| panic!("bad partition in {line:?}")),
                    offset: f[3].parse().unwrap_or_else(|_| panic!("bad offset in {line:?}")),
                    key: f[4].to_string(),
                    value: f[5].to_string(),
                };
                p.records.push((f[1].to_string(), rec));
            }
            "TXN" if f.len() == 3 => {
                let n = f[1].parse().unwrap_or_else(|_| panic!("bad transaction number in {line:?}"));
                p.txns.push((n, f[2] == "committed"));
            }
            "HANGING" => p.hanging = true,
            _ => panic!("unexpected TxnProducer line {line:?} in:\n{out}"),
        }
    }
    p
}

/// A `ReadCommittedCheck` of `topic` with `isolation` (`read_committed` or
/// `read_uncommitted`); the caller adds when to stop (`--expect`,
/// `--settle-ms`, `--to-end`, `--timeout-ms`).
pub fn read_check(bootstrap: &str, topic: &str, isolation: &str) -> Command {
    let mut cmd = eos_java("ReadCommittedCheck", "256m", "warn");
    cmd.args(["--bootstrap", bootstrap, "--topic", topic, "--isolation", isolation]);
    cmd
}

/// What a `ReadCommittedCheck` run read, and its closing stderr line: the end
/// offsets (at its isolation level) and its positions, by partition.
#[derive(Debug)]
pub struct Checked {
    pub records: Vec<Rec>,
    pub end_offsets: BTreeMap<i32, i64>,
    pub positions: BTreeMap<i32, i64>,
    pub timed_out: bool,
}

/// Reads a `ReadCommittedCheck` run's stdout and stderr.
pub fn parse_checked(stdout: &str, stderr: &str) -> Checked {
    let summary = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("# read "))
        .unwrap_or_else(|| panic!("no `# read` line from ReadCommittedCheck; stderr:\n{stderr}"));
    // `N records; end offsets {0=5, 1=7}; positions {0=5, 1=7}`
    let map = |name: &str| -> BTreeMap<i32, i64> {
        let start = summary.find(name).unwrap_or_else(|| panic!("no {name} in {summary:?}")) + name.len();
        let body = &summary[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.split(", ")
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("bad {name} entry {kv:?} in {summary:?}"));
                (k.parse().unwrap(), v.parse().unwrap())
            })
            .collect()
    };
    Checked {
        records: parse_records(stdout),
        end_offsets: map("end offsets"),
        positions: map("positions"),
        timed_out: stderr.lines().any(|l| l.starts_with("# timed out")),
    }
}

/// A `kafka-transactions` table (`list`, `describe`: tab-separated, padded
/// columns under a header line): one map of column to value per row.
pub fn transactions_table(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return Vec::new() };
    let cols: Vec<String> = header.split('\t').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
    lines
        .map(|l| {
            let vals: Vec<&str> = l.split('\t').map(str::trim).collect();
            assert!(vals.len() >= cols.len(), "a row with fewer fields than {cols:?}: {l:?} in:\n{out}");
            cols.iter().cloned().zip(vals.iter().map(|v| v.to_string())).collect()
        })
        .collect()
}
