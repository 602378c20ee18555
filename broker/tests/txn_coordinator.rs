//! The transaction coordinator driven by Apache Kafka's own tools (Kafka
//! 4.4's jars): `kafka-producer-perf-test --transactional-id` as the
//! transactional producer, `kafka-transactions list/describe` to read the
//! coordinator's state, `kafka-console-consumer` with `read_committed` to
//! see that the markers landed, and Kafka's `TransactionLogMessageFormatter`
//! to read `__transaction_state` itself. One node, default settings.
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.
//!
//! What the tools print, which these tests read:
//! - `kafka-transactions describe` prints one tab-separated row under
//!   `CoordinatorId TransactionalId ProducerId ProducerEpoch TransactionState
//!   TransactionTimeoutMs CurrentTransactionStartTimeMs TransactionDurationMs
//!   TopicPartitions`; TopicPartitions is empty once a transaction completed.
//!   An unknown id exits 1 with "could not be found" on stderr.
//! - `kafka-transactions list` prints `TransactionalId Coordinator ProducerId
//!   TransactionState` rows.
//! - `kafka-producer-perf-test` commits every `--transaction-duration-ms`; a
//!   fenced one keeps running, printing ProducerFencedException for each send.
//! - the console consumer prints `Processed a total of N messages` on stderr.

mod support;

use std::process::Command;
use std::time::Duration;

use support::cluster::Cluster;
use support::eos::kafka_transactions;
use support::groups::{Bg, T, wait_for};
use support::{Broker, Kind, kafka_tool, repo_root, run, run_ok};

/// How long the broker waits between checks for timed-out transactions
/// (Kafka's default is 10 s; the tests set it lower on both brokers).
const ABORT_CHECK: (&str, &str) = ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "500");

/// A broker serving Transactions V1, as Fjord does (see [`transactions_v1`]).
fn start_broker(overrides: &[(&str, &str)]) -> Broker {
    let b = Broker::start_with(overrides);
    transactions_v1(b.kind(), &b.bootstrap());
    b
}

/// A new Kafka 4.4 cluster finalizes `transaction.version` 2 (an epoch bump
/// at every EndTxn); Fjord does not advertise it, so clients use
/// Transactions V1. The Kafka broker's feature is disabled to compare like with like.
fn transactions_v1(kind: Kind, bootstrap: &str) {
    if kind != Kind::Kafka {
        return;
    }
    let root = repo_root();
    let classpath = format!("{}/*:{}/*", root.join(".cache/kafka-libs").display(), root.join(".cache/interop-libs").display());
    let mut cmd = Command::new("java");
    cmd.args(["-Xmx256m", "-cp", &classpath, "org.apache.kafka.tools.FeatureCommand", "--bootstrap-server", bootstrap]);
    run_ok(cmd.args(["disable", "--feature", "transaction.version"]), None, T);
}

/// One row of `kafka-transactions describe`.
#[derive(Debug, Clone, PartialEq)]
struct Described {
    coordinator: i32,
    producer_id: i64,
    epoch: i16,
    state: String,
    timeout_ms: i32,
    partitions: Vec<String>,
}

/// The rows under `header` in a tool's tab-separated table (cells trimmed;
/// an empty last cell kept).
fn table(out: &str, header: &[&str]) -> Vec<Vec<String>> {
    let cells = |l: &str| -> Vec<String> { l.split('\t').map(|c| c.trim().to_string()).take(header.len()).collect() };
    let mut lines = out.lines().skip_while(|l| cells(l) != header);
    if lines.next().is_none() {
        return Vec::new();
    }
    lines.filter(|l| !l.trim().is_empty()).map(cells).collect()
}

/// `kafka-transactions describe`, None when the id is not found.
fn describe(b: &str, id: &str) -> Option<Described> {
    let ran = run(kafka_transactions(b).args(["describe", "--transactional-id", id]), None, T);
    if !ran.status.success() {
        assert!(ran.stderr.contains("could not be found"), "describe {id} failed:\n{}", ran.text());
        return None;
    }
    let header = [
        "CoordinatorId",
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ];
    let rows = table(&ran.stdout, &header);
    assert_eq!(rows.len(), 1, "one row expected:\n{}", ran.text());
    let r = &rows[0];
    assert_eq!(r[1], id);
    Some(Described {
        coordinator: r[0].parse().unwrap(),
        producer_id: r[2].parse().unwrap(),
        epoch: r[3].parse().unwrap(),
        state: r[4].clone(),
        timeout_ms: r[5].parse().unwrap(),
        partitions: r.get(8).filter(|p| !p.is_empty()).map(|p| p.split(',').map(str::to_string).collect()).unwrap_or_default(),
    })
}

/// `kafka-transactions list [extra]`: (id, coordinator, producer id, state) rows.
fn list(b: &str, extra: &[&str]) -> Vec<(String, i32, i64, String)> {
    let out = run_ok(kafka_transactions(b).arg("list").args(extra), None, T);
    table(&out, &["TransactionalId", "Coordinator", "ProducerId", "TransactionState"])
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap(), r[2].parse().unwrap(), r[3].clone()))
        .collect()
}

/// Waits until `describe` shows `state`, and returns that row.
fn wait_for_state(b: &str, id: &str, state: &str, limit: Duration) -> Described {
    let mut last = None;
    wait_for(&format!("{id} in {state}"), limit, || {
        last = describe(b, id);
        last.clone().filter(|d| d.state == state)
    })
}

fn create_topic(b: &str, topic: &str, partitions: u32, replicas: u32) {
    let mut cmd = kafka_tool("kafka-topics");
    cmd.args(["--bootstrap-server", b, "--create", "--topic", topic, "--partitions", &partitions.to_string()]);
    run_ok(cmd.args(["--replication-factor", &replicas.to_string()]), None, T);
}

/// `kafka-producer-perf-test` as transactional producer `id`: `records` of
/// 100 bytes at `per_second` (-1: as fast as it can), a commit every
/// `txn_ms`, then any `--command-property` given.
fn perf_producer(b: &str, topic: &str, id: &str, records: u32, per_second: i32, txn_ms: u32, props: &[&str]) -> Command {
    let mut cmd = kafka_tool("kafka-producer-perf-test");
    cmd.args(["--bootstrap-server", b, "--topic", topic, "--record-size", "100"])
        .args(["--num-records", &records.to_string(), "--throughput", &per_second.to_string()])
        .args(["--transactional-id", id, "--transaction-duration-ms", &txn_ms.to_string()]);
    if !props.is_empty() {
        cmd.arg("--command-property").args(props);
    }
    cmd
}

/// Fails unless a `read_committed` console consumer reads exactly `want`
/// records from the start of `topic` (it stops 15 s after the last one).
fn assert_read_committed(b: &str, topic: &str, partitions: i32, want: u32) {
    let ran = run(
        kafka_tool("kafka-console-consumer").args(["--bootstrap-server", b, "--topic", topic, "--from-beginning"]).args([
            "--isolation-level",
            "read_committed",
            "--timeout-ms",
            "15000",
        ]),
        None,
        T,
    );
    let line = ran.stderr.lines().find_map(|l| l.trim().strip_prefix("Processed a total of ")).map(str::to_string);
    let n: Option<u32> = line.and_then(|l| l.split_whitespace().next().and_then(|n| n.parse().ok()));
    if n != Some(want) {
        // What each partition's leader says of the producers: an open
        // transaction (CurrentTransactionStartOffset) holds the LSO back.
        let producers: Vec<String> = (0..partitions)
            .map(|p| {
                let args = ["describe-producers", "--topic", topic, "--partition", &p.to_string()];
                run(kafka_transactions(b).args(args), None, T).text()
            })
            .collect();
        panic!("read_committed from {topic}: {n:?} records, not {want}:\n{}\n{}", ran.text(), producers.join("\n"));
    }
}

/// The `transactionStatus` of each `__transaction_state` record of `id`, in
/// log order, as Kafka's own `TransactionLogMessageFormatter` decodes them.
fn logged_states(b: &str, id: &str) -> Vec<String> {
    let ran =
        run(
            kafka_tool("kafka-console-consumer")
                .args(["--bootstrap-server", b, "--topic", "__transaction_state", "--from-beginning"])
                .args(["--formatter", "org.apache.kafka.tools.consumer.TransactionLogMessageFormatter", "--timeout-ms", "10000"]),
            None,
            T,
        );
    assert!(!ran.stderr.contains("Exception:") || ran.stderr.contains("TimeoutException"), "the formatter failed:\n{}", ran.text());
    // One JSON object per record, not separated by newlines.
    let key = format!("\"transactionalId\":\"{id}\"");
    ran.stdout
        .split("{\"key\":")
        .filter(|r| r.contains(&key))
        .filter_map(|r| r.split("\"transactionStatus\":\"").nth(1).and_then(|s| s.split('"').next()).map(str::to_string))
        .collect()
}

/// Whether a producer was told it is fenced: by the coordinator
/// (PRODUCER_FENCED, fatal) or by a partition, for a batch of the old epoch
/// (INVALID_PRODUCER_EPOCH, which the Java client raises as abortable).
fn fenced(producer: &Bg) -> bool {
    let err = producer.stderr();
    err.contains("ProducerFencedException") || err.contains("InvalidProducerEpochException")
}

#[test]
fn a_committed_transaction_is_listed_described_and_logged() {
    let broker = start_broker(&[]);
    let b = &broker.bootstrap();
    create_topic(b, "committed", 3, 1);
    let id = "txn-committed";
    run_ok(&mut perf_producer(b, "committed", id, 2000, -1, 200, &[]), None, T);

    // The last EndTxn is answered once PrepareCommit is written; the markers follow.
    let d = wait_for_state(b, id, "CompleteCommit", Duration::from_secs(30));
    assert_eq!((d.coordinator, d.epoch, d.timeout_ms), (1, 0, 60_000), "{d:?}");
    assert!(d.partitions.is_empty(), "a completed transaction has no partitions: {d:?}");
    let listed = list(b, &[]);
    assert!(listed.contains(&(id.to_string(), 1, d.producer_id, "CompleteCommit".to_string())), "{listed:?}");
    // ListTransactions v1: only transactions running for longer than an hour.
    let long = list(b, &["--duration-filter", "3600000"]);
    assert!(!long.iter().any(|r| r.0 == id), "{long:?}");
    assert_eq!(describe(b, "no-such-id"), None);

    // Every marker landed: a read_committed consumer gets all the records.
    assert_read_committed(b, "committed", 3, 2000);

    // Kafka's own decoder reads the log: the id's first record is its
    // initialization, the last its completion, with Prepare before it.
    let states = logged_states(b, id);
    assert_eq!(states.first().map(String::as_str), Some("Empty"), "{states:?}");
    assert!(states.contains(&"Ongoing".to_string()), "{states:?}");
    let n = states.len();
    assert!(n >= 4 && states[n - 2] == "PrepareCommit" && states[n - 1] == "CompleteCommit", "{states:?}");
}

#[test]
fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
    let broker = start_broker(&[ABORT_CHECK]);
    let b = &broker.bootstrap();
    create_topic(b, "timeout", 2, 1);
    let dir = tempfile::tempdir().unwrap();
    let id = "txn-timeout";
    // One long transaction (a commit only after 10 minutes) with a 10 s timeout.
    let mut stuck =
        Bg::spawn("stuck", dir.path(), &mut perf_producer(b, "timeout", id, 100_000, 20, 600_000, &["transaction.timeout.ms=10000"]));
    let open = wait_for_state(b, id, "Ongoing", Duration::from_secs(60));
    assert_eq!((open.epoch, open.timeout_ms), (0, 10_000), "{open:?}");
    assert!(!open.partitions.is_empty() && open.partitions.iter().all(|p| p.starts_with("timeout-")), "{open:?}");

    // Aborted under a bumped epoch once the timeout passes.
    let aborted = wait_for_state(b, id, "CompleteAbort", Duration::from_secs(60));
    assert_eq!((aborted.producer_id, aborted.epoch), (open.producer_id, 1), "{aborted:?}");
    wait_for("the old producer to be fenced", Duration::from_secs(60), || fenced(&stuck).then_some(()));
    stuck.kill();

    // The id is usable again: the next producer gets the next epoch and commits.
    run_ok(&mut perf_producer(b, "timeout", id, 200, -1, 100, &[]), None, T);
    let d = wait_for_state(b, id, "CompleteCommit", Duration::from_secs(30));
    assert_eq!((d.producer_id, d.epoch), (open.producer_id, 2), "{d:?}");
    // The aborted records are skipped (their ABORT markers landed), the committed ones read.
    assert_read_committed(b, "timeout", 2, 200);
}

#[test]
fn a_new_producer_fences_the_open_transaction() {
    let broker = start_broker(&[]);
    let b = &broker.bootstrap();
    create_topic(b, "fence", 2, 1);
    let dir = tempfile::tempdir().unwrap();
    let id = "txn-fence";
    let mut old = Bg::spawn("old", dir.path(), &mut perf_producer(b, "fence", id, 100_000, 20, 600_000, &[]));
    let open = wait_for_state(b, id, "Ongoing", Duration::from_secs(60));
    assert_eq!(open.epoch, 0, "{open:?}");

    // InitProducerId of the new producer aborts the open transaction (epoch 1,
    // answered CONCURRENT_TRANSACTIONS), then its retry gets epoch 2.
    run_ok(&mut perf_producer(b, "fence", id, 300, -1, 100, &[]), None, T);
    let d = wait_for_state(b, id, "CompleteCommit", Duration::from_secs(30));
    assert_eq!((d.producer_id, d.epoch), (open.producer_id, 2), "{d:?}");
    wait_for("the old producer to be fenced", Duration::from_secs(60), || fenced(&old).then_some(()));
    old.kill();
    assert_read_committed(b, "fence", 2, 300);
}

/// Three brokers: the transaction's coordinator, its partitions' leaders and
/// the `__transaction_state` replicas are spread over them, so markers and
/// KIP-890 verification cross brokers (the control RPC between Fjord's).
#[test]
fn a_transaction_spans_brokers() {
    let cluster = Cluster::start(3, 0, &[]);
    let b = &cluster.bootstrap();
    transactions_v1(cluster.kind(), b);
    create_topic(b, "spread", 6, 3);
    let id = "txn-spread";
    run_ok(&mut perf_producer(b, "spread", id, 3000, -1, 200, &[]), None, T);
    let d = wait_for_state(b, id, "CompleteCommit", Duration::from_secs(60));
    assert_eq!(d.epoch, 0, "{d:?}");
    assert_read_committed(b, "spread", 6, 3000);
}
