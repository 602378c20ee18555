//! Transactions end to end with Kafka's own Java client (4.4) and tools:
//! `TxnProducer` and `ReadCommittedCheck` of `tests/eos` (see their
//! comments) and `kafka-transactions`, against one broker.
//!
//! - committed and aborted transactions interleaved: a `read_committed`
//!   consumer reads exactly the committed records, at the offsets the
//!   producer was given, in order; a `read_uncommitted` one reads all;
//! - a producer halted inside a transaction holds back `read_committed`
//!   readers (the last stable offset stays at its first record) until the
//!   transaction times out and is aborted, then another producer's later
//!   commits become readable and the halted one's records never do;
//! - `kafka-transactions list` and `describe`.
//!
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka, which is
//! where every expectation here was checked.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use support::eos::{
    Checked, Produced, kafka_transactions, parse_checked, parse_produced, read_check, transactions_table as table, txn_producer,
};
use support::groups::T;
use support::{Broker, Rec, kafka_tool, run, run_ok};

/// How often the broker looks for timed-out transactions (Kafka's key;
/// default 10 s), lowered so the halted producer's transaction is aborted
/// soon after its timeout.
const ABORT_CHECK: (&str, &str) = ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000");

fn create_topic(b: &Broker, topic: &str, partitions: i32) {
    run_ok(
        kafka_tool("kafka-topics")
            .args(["--bootstrap-server", &b.bootstrap(), "--create", "--topic", topic])
            .args(["--partitions", &partitions.to_string()]),
        None,
        T,
    );
}

/// Runs a `TxnProducer` to the end; fails unless it exits 0 (or, for a
/// `--hang` run, halts with 3 after printing `HANGING`).
fn produce(cmd: &mut Command) -> Produced {
    let ran = run(cmd, None, T);
    let p = parse_produced(&ran.stdout);
    let want = if p.hanging { 3 } else { 0 };
    assert_eq!(ran.status.code(), Some(want), "TxnProducer {cmd:?}:\n{}", ran.text());
    p
}

/// Runs a `ReadCommittedCheck` with `args`; fails unless it exits 0.
fn check(b: &Broker, topic: &str, isolation: &str, args: &[&str]) -> Checked {
    let mut cmd = read_check(&b.bootstrap(), topic, isolation);
    cmd.args(args);
    let ran = run(&mut cmd, None, T);
    assert!(ran.status.success(), "ReadCommittedCheck {args:?} failed:\n{}", ran.text());
    parse_checked(&ran.stdout, &ran.stderr)
}

/// The transactional id and the (transaction, record) numbers of a
/// `TxnProducer` key `<id>-<i>-<j>`.
fn sent_as(key: &str) -> (&str, (usize, usize)) {
    let mut f = key.rsplitn(3, '-');
    let j = f.next().and_then(|s| s.parse().ok());
    let i = f.next().and_then(|s| s.parse().ok());
    let id = f.next();
    id.zip(i.zip(j)).unwrap_or_else(|| panic!("not a TxnProducer key: {key:?}"))
}

/// Fails unless `read` holds exactly the records of `want` (partition,
/// offset, key and value), each once, and each partition's in offset order,
/// which is also the order each producer sent them in.
fn assert_exactly(read: &[Rec], want: &[Rec], what: &str) {
    let got: BTreeSet<&Rec> = read.iter().collect();
    let wanted: BTreeSet<&Rec> = want.iter().collect();
    let missing: Vec<&&Rec> = wanted.difference(&got).take(5).collect();
    let extra: Vec<&&Rec> = got.difference(&wanted).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: read {} records, expected {}; first missing {missing:?}; first unexpected {extra:?}",
        read.len(),
        want.len()
    );
    assert_eq!(read.len(), want.len(), "{what}: some record read twice");
    let mut by_p: BTreeMap<i32, Vec<&Rec>> = BTreeMap::new();
    for r in read {
        by_p.entry(r.partition).or_default().push(r);
    }
    for (p, rs) in by_p {
        for w in rs.windows(2) {
            assert!(w[0].offset < w[1].offset, "{what}: partition {p} read out of offset order: {:?} then {:?}", w[0], w[1]);
        }
        let mut last_of: BTreeMap<&str, (usize, usize, &Rec)> = BTreeMap::new();
        for r in rs {
            let (id, n) = sent_as(&r.key);
            if let Some((i, j, before)) = last_of.insert(id, (n.0, n.1, r)) {
                assert!((i, j) < n, "{what}: partition {p} not in {id}'s send order: {before:?} before {r:?}");
            }
        }
    }
}

/// Records per partition.
fn per_partition(recs: &[Rec]) -> BTreeMap<i32, i64> {
    let mut m = BTreeMap::new();
    for r in recs {
        *m.entry(r.partition).or_insert(0) += 1;
    }
    m
}

/// `kafka-transactions describe --transactional-id <id>`: its one row.
fn describe_txn(b: &Broker, id: &str) -> BTreeMap<String, String> {
    let out = run_ok(kafka_transactions(&b.bootstrap()).args(["describe", "--transactional-id", id]), None, T);
    let mut rows = table(&out);
    assert_eq!(rows.len(), 1, "describe {id}: expected one row:\n{out}");
    let row = rows.remove(0);
    assert_eq!(row.get("TransactionalId").map(String::as_str), Some(id), "describe {id}:\n{out}");
    row
}

/// `kafka-transactions list`: state (TransactionState) by transactional id.
fn list_txns(b: &Broker) -> BTreeMap<String, String> {
    let out = run_ok(kafka_transactions(&b.bootstrap()).arg("list"), None, T);
    table(&out)
        .into_iter()
        .map(|r| {
            let get = |k: &str| r.get(k).unwrap_or_else(|| panic!("no {k} column in:\n{out}")).clone();
            (get("TransactionalId"), get("TransactionState"))
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, col: &str) -> i64 {
    let v = row.get(col).unwrap_or_else(|| panic!("no {col} in {row:?}"));
    v.parse().unwrap_or_else(|_| panic!("{col} is not a number in {row:?}"))
}

/// Issue proof: committed and aborted transactions interleaved (every third
/// aborted) over three partitions. `read_committed` reads exactly the
/// committed records; `read_uncommitted` reads all of them; each transaction
/// leaves one marker (one offset) in every partition it wrote to.
#[test]
fn read_committed_reads_exactly_the_committed_transactions() {
    let b = Broker::start();
    let topic = "txn-mixed";
    let (txns, per_txn, parts) = (30, 10, 3);
    create_topic(&b, topic, parts);

    let started = Instant::now();
    let p = produce(&mut txn_producer(&b.bootstrap(), topic, "mixed", txns, per_txn, parts, 3));
    eprintln!("{txns} transactions of {per_txn} records in {:?}", started.elapsed());
    let expected_fates: Vec<(usize, bool)> = (0..txns).map(|i| (i, (i + 1) % 3 != 0)).collect();
    assert_eq!(p.txns, expected_fates, "the producer's transactions");
    let (committed, aborted) = (p.with_fate("commit"), p.with_fate("abort"));
    assert_eq!((committed.len(), aborted.len()), (200, 100));
    let all: Vec<Rec> = p.records.iter().map(|(_, r)| r.clone()).collect();

    let rc = check(&b, topic, "read_committed", &["--expect", "200", "--settle-ms", "2000"]);
    assert!(!rc.timed_out, "read_committed timed out with {} of 200 records", rc.records.len());
    assert!(rc.records.iter().all(|r| !r.value.contains(":abort:")), "read_committed returned aborted records");
    assert_exactly(&rc.records, &committed, "read_committed");

    let ru = check(&b, topic, "read_uncommitted", &["--expect", "300", "--settle-ms", "2000"]);
    assert!(!ru.timed_out, "read_uncommitted timed out with {} of 300 records", ru.records.len());
    assert_exactly(&ru.records, &all, "read_uncommitted");

    // Every transaction wrote to every partition: each partition's log holds
    // its records and one control record (the marker) per transaction.
    let ends: BTreeMap<i32, i64> = per_partition(&all).into_iter().map(|(p, n)| (p, n + txns as i64)).collect();
    assert_eq!(ru.end_offsets, ends, "log end offsets (records + one marker per transaction)");
    // Nothing open: the last stable offset is the high watermark, and a
    // read_committed consumer's position ends past the last marker.
    assert_eq!(rc.end_offsets, ends, "read_committed end offsets (last stable offsets)");
    assert_eq!(rc.positions, ends, "read_committed positions after reading everything");
}

/// Issue proof: a producer halted inside a transaction (Runtime.halt after
/// its records were acknowledged) is aborted once its
/// `transaction.timeout.ms` runs out. Until then `read_committed` readers
/// stop at its first record, so records another producer commits after it
/// on the same partitions stay unread; afterwards they are read, the halted
/// transaction's records never are, and `kafka-transactions describe` shows
/// it aborted with its producer epoch bumped (the producer fenced).
#[test]
fn a_transaction_left_open_is_aborted_after_its_timeout() {
    let timeout = Duration::from_secs(30);
    let b = Broker::start_with(&[ABORT_CHECK]);
    let (topic, parts) = ("txn-stuck", 3);
    create_topic(&b, topic, parts);

    let mut stuck = txn_producer(&b.bootstrap(), topic, "stuck", 1, 6, parts, 0);
    stuck.args(["--hang", "--transaction-timeout-ms", &timeout.as_millis().to_string()]);
    let a = produce(&mut stuck);
    let halted = Instant::now();
    assert!(a.hanging, "the stuck producer did not reach its open transaction");
    let (a_committed, a_open) = (a.with_fate("commit"), a.with_fate("hang"));
    assert_eq!((a_committed.len(), a_open.len()), (6, 6));

    let later = produce(&mut txn_producer(&b.bootstrap(), topic, "later", 2, 6, parts, 0)).with_fate("commit");
    assert_eq!(later.len(), 12);
    let first_open: BTreeMap<i32, i64> = a_open.iter().fold(BTreeMap::new(), |mut m, r| {
        let o = m.entry(r.partition).or_insert(r.offset);
        *o = (*o).min(r.offset);
        m
    });
    assert!(later.iter().all(|r| r.offset > first_open[&r.partition]), "the later commits are not after the open transaction");

    // While the transaction is open: only what was committed before it.
    eprintln!("the later producer committed {:?} after the halt", halted.elapsed());
    let held = check(&b, topic, "read_committed", &["--to-end", "--timeout-ms", &timeout.as_millis().to_string()]);
    eprintln!("read what is readable {:?} after the halt", halted.elapsed());
    let open = describe_txn(&b, "stuck");
    eprintln!("described the transaction {:?} after the halt: {open:?}", halted.elapsed());
    assert_eq!(
        open.get("TransactionState").map(String::as_str),
        Some("Ongoing"),
        "the transaction was no longer open after the first read ({:?} after the halt, timeout {timeout:?}), so that read proves nothing: {open:?}",
        halted.elapsed()
    );
    assert_eq!(num(&open, "TransactionTimeoutMs"), timeout.as_millis() as i64, "{open:?}");
    let mut open_parts: Vec<&str> = open.get("TopicPartitions").map(|s| s.split(',').collect()).unwrap_or_default();
    open_parts.sort_unstable();
    assert_eq!(open_parts, ["txn-stuck-0", "txn-stuck-1", "txn-stuck-2"], "{open:?}");
    assert!(!held.timed_out, "read_committed did not reach the end offsets {:?} it saw at its start: {held:?}", held.end_offsets);
    assert_exactly(&held.records, &a_committed, "read_committed while the transaction is open");
    assert_eq!(held.end_offsets, first_open, "read_committed end offsets (last stable offsets) while the transaction is open");

    // Once the coordinator aborts it: the later commits, not the open records.
    let mut want = [a_committed.clone(), later.clone()].concat();
    want.sort();
    let expect = want.len().to_string();
    let limit = (timeout + Duration::from_secs(45)).as_millis().to_string();
    let after = check(&b, topic, "read_committed", &["--expect", &expect, "--settle-ms", "2000", "--timeout-ms", &limit]);
    let readable_after = halted.elapsed();
    eprintln!("the later commits were readable {readable_after:?} after the halt (timeout {timeout:?})");
    assert!(!after.timed_out, "read_committed got {} of {expect} records within {limit} ms", after.records.len());
    assert_exactly(&after.records, &want, "read_committed after the timeout");
    assert!(after.records.iter().all(|r| !r.value.contains(":hang:")), "read the aborted transaction's records");

    let done = describe_txn(&b, "stuck");
    assert_eq!(done.get("TransactionState").map(String::as_str), Some("CompleteAbort"), "{done:?}");
    assert_eq!(done.get("ProducerId"), open.get("ProducerId"), "{open:?} then {done:?}");
    assert!(num(&done, "ProducerEpoch") > num(&open, "ProducerEpoch"), "the epoch was not bumped (fenced): {open:?} then {done:?}");

    // The aborted records are in the log, for read_uncommitted readers.
    let all = [a_committed, a_open, later].concat();
    let ru = check(&b, topic, "read_uncommitted", &["--expect", &all.len().to_string(), "--settle-ms", "1000"]);
    assert_exactly(&ru.records, &all, "read_uncommitted");
}

/// Issue proof: `kafka-transactions list` lists every transactional id with
/// its state, and `describe` shows one (an open transaction's partitions and
/// timeout); an unknown id is an error.
#[test]
fn kafka_transactions_lists_and_describes() {
    let b = Broker::start();
    let (topic, parts) = ("txn-listed", 2);
    create_topic(&b, topic, parts);
    produce(&mut txn_producer(&b.bootstrap(), topic, "listed-commit", 2, 4, parts, 0));
    produce(&mut txn_producer(&b.bootstrap(), topic, "listed-abort", 3, 4, parts, 3));
    // Open for two minutes: longer than the test.
    let mut open = txn_producer(&b.bootstrap(), topic, "listed-open", 1, 4, parts, 0);
    open.args(["--hang", "--transaction-timeout-ms", "120000"]);
    assert!(produce(&mut open).hanging);

    let listed = list_txns(&b);
    let want: BTreeMap<String, String> =
        [("listed-commit", "CompleteCommit"), ("listed-abort", "CompleteAbort"), ("listed-open", "Ongoing")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(listed, want, "kafka-transactions list");

    let d = describe_txn(&b, "listed-open");
    assert_eq!(d.get("TransactionState").map(String::as_str), Some("Ongoing"), "{d:?}");
    assert_eq!(num(&d, "TransactionTimeoutMs"), 120_000, "{d:?}");
    let mut tps: Vec<&str> = d.get("TopicPartitions").map(|s| s.split(',').collect()).unwrap_or_default();
    tps.sort_unstable();
    assert_eq!(tps, ["txn-listed-0", "txn-listed-1"], "{d:?}");
    assert!(num(&d, "CurrentTransactionStartTimeMs") > 0, "{d:?}");
    let c = describe_txn(&b, "listed-commit");
    assert_eq!(c.get("TransactionState").map(String::as_str), Some("CompleteCommit"), "{c:?}");
    assert_eq!(c.get("TopicPartitions").map(String::as_str), Some(""), "a finished transaction has no partitions: {c:?}");
    assert_ne!(c.get("ProducerId"), d.get("ProducerId"), "two transactional ids with one producer id");

    let unknown = run(kafka_transactions(&b.bootstrap()).args(["describe", "--transactional-id", "never-used"]), None, T);
    assert!(
        !unknown.status.success() && unknown.text().contains("could not be found"),
        "describing an unknown transactional id:\n{}",
        unknown.text()
    );
}
