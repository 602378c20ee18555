//! Kafka Streams from Maven Central (4.4) with `exactly_once_v2` on a
//! 3-broker cluster, one broker SIGKILLed while it runs: `WordCountEos` of
//! `tests/eos` (a repartition through `groupBy`, a RocksDB count store with
//! its changelog topic, commits every 100 ms, internal topics with
//! replication factor 3) counts the words of a known corpus that
//! `LineProducer` (a plain idempotent producer) feeds in at a steady pace.
//! A third of the way in, the broker that coordinates the application's
//! transactions is killed; once two thirds are in and counted without it,
//! it is started again. In the end a
//! `read_committed` consumer must find, for every word, a last count equal
//! to the word's exact count in the corpus, and each word's counts rising
//! one committed update after another: nothing lost, nothing counted twice.
//!
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use support::cluster::Cluster;
use support::eos::{eos_java, kafka_transactions, parse_checked, read_check, transactions_table};
use support::groups::{Bg, T, wait_for};
use support::{Rec, parse_records, run, run_ok};

const LINES: usize = 3000;
const WORDS_PER_LINE: usize = 7;
const DISTINCT: usize = 50;
/// Lines a second `LineProducer` sends: the corpus takes about 30 s, so the
/// application is busy with transactions when the broker dies.
const RATE: usize = 100;
/// How long the test may take to count everything, from its start; a
/// passing run takes about 80 s against Apache Kafka (three JVM brokers).
const BUDGET: Duration = Duration::from_secs(170);

/// The corpus (line `i` holds `WORDS_PER_LINE` words drawn from `DISTINCT`
/// by a fixed pseudo-random sequence) and each word's count in it.
fn corpus() -> (Vec<String>, BTreeMap<String, i64>) {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut counts = BTreeMap::new();
    let lines = (0..LINES)
        .map(|_| {
            (0..WORDS_PER_LINE)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let w = format!("word{:02}", x % DISTINCT as u64);
                    *counts.entry(w.clone()).or_insert(0) += 1;
                    w
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (lines, counts)
}

/// The last `ACKED n` a `LineProducer` printed.
fn acked(p: &Bg) -> usize {
    p.out_lines().iter().rev().find_map(|l| l.strip_prefix("ACKED\t")?.parse().ok()).unwrap_or(0)
}

/// Each word's counts in the order read (a word's counts all sit in one
/// partition of the output topic).
fn counts_by_word(recs: &[Rec]) -> BTreeMap<String, Vec<i64>> {
    let mut m: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in recs {
        let n = r.value.parse().unwrap_or_else(|_| panic!("not a count: {r:?}"));
        m.entry(r.key.clone()).or_default().push(n);
    }
    m
}

fn last_counts(by_word: &BTreeMap<String, Vec<i64>>) -> BTreeMap<String, i64> {
    by_word.iter().map(|(w, ns)| (w.clone(), *ns.last().unwrap())).collect()
}

/// Fails the test, with what the application printed, if it has exited.
fn assert_alive(app: &mut Bg, when: &str) {
    assert!(app.is_running(), "the Streams application exited {when}:\n{}\n{}", app.stdout(), app.stderr());
}

/// Each word's last count as the live `reader` has read them so far.
fn live_counts(reader: &Bg) -> BTreeMap<String, i64> {
    let text: String = reader.out_lines().iter().map(|l| format!("{l}\n")).collect();
    last_counts(&counts_by_word(&parse_records(&text)))
}

/// Waits (at most `limit`) until `done(lines acknowledged, live counts)`
/// holds; returns the counts. Fails at once if the application exits or a
/// count passes the word's count in the corpus (a record counted twice),
/// and on timeout with the counts that are off.
fn wait_counting(
    what: &str,
    app: &mut Bg,
    producer: &Bg,
    reader: &Bg,
    expected: &BTreeMap<String, i64>,
    limit: Duration,
    done: impl Fn(usize, &BTreeMap<String, i64>) -> bool,
) -> BTreeMap<String, i64> {
    let deadline = Instant::now() + limit;
    loop {
        assert_alive(app, &format!("while waiting for {what}"));
        let counted = live_counts(reader);
        let over: Vec<_> = counted.iter().filter(|(w, n)| **n > expected.get(*w).copied().unwrap_or(0)).collect();
        assert!(over.is_empty(), "counted more than the corpus holds (read_committed): {over:?}; expected {expected:?}");
        if done(acked(producer), &counted) {
            return counted;
        }
        if Instant::now() > deadline {
            let off: Vec<_> = expected.iter().filter(|(w, n)| counted.get(*w) != Some(n)).map(|(w, n)| (w, counted.get(w), n)).collect();
            panic!(
                "waited {limit:?} for {what}: {} lines acknowledged, {} of {} words counted; (word, counted, expected) off: {off:?}",
                acked(producer),
                counted.values().sum::<i64>(),
                expected.values().sum::<i64>()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The coordinator (broker id) of the application's transactional ids in
/// `kafka-transactions list`, once it lists one.
fn txn_coordinator(c: &Cluster, app_id: &str, app: &mut Bg) -> i32 {
    let prefix = format!("{app_id}-");
    wait_for("kafka-transactions list to show the application's transactional id", Duration::from_secs(60), || {
        assert_alive(app, "before it started a transaction");
        let out = run_ok(kafka_transactions(&c.bootstrap()).arg("list"), None, T);
        let rows = transactions_table(&out);
        let ids: Vec<i32> = rows
            .iter()
            .filter(|r| r.get("TransactionalId").is_some_and(|id| id.starts_with(&prefix)))
            .map(|r| r["Coordinator"].parse().unwrap_or_else(|_| panic!("bad Coordinator in:\n{out}")))
            .collect();
        eprintln!("kafka-transactions list:\n{out}");
        ids.first().copied()
    })
}

/// The records of `topic` a fresh `read_committed` (or `read_uncommitted`)
/// consumer reads up to the end offsets it finds when it starts.
fn read_to_end(c: &Cluster, topic: &str, isolation: &str, longs: bool) -> Vec<Rec> {
    let mut cmd = read_check(&c.bootstrap(), topic, isolation);
    cmd.args(["--to-end", "--timeout-ms", "60000"]);
    if longs {
        cmd.args(["--value", "long"]);
    }
    let ran = run(&mut cmd, None, T);
    assert!(ran.status.success(), "ReadCommittedCheck of {topic} failed:\n{}", ran.text());
    let checked = parse_checked(&ran.stdout, &ran.stderr);
    assert!(!checked.timed_out, "reading {topic} to its end timed out:\n{}", ran.stderr);
    checked.records
}

/// The test's folder (the corpus, the programs' output and the Streams state
/// directory), kept when the test fails.
struct Work(Option<tempfile::TempDir>);

impl Work {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- (the test's folder, with each program's full output, kept: {}) -----",
                self.0.take().unwrap().keep().display()
            );
        }
    }
}

#[test]
fn word_count_exactly_once_survives_a_broker_kill() {
    let started = Instant::now();
    // Each wait: at most `cap` seconds, and within the budget.
    let stage = |cap: u64| Duration::from_secs(cap).min(BUDGET.saturating_sub(started.elapsed()));
    let mut c = Cluster::start(3, 0, &[]);
    let work = Work(Some(tempfile::Builder::new().prefix("fjord-streams-eos-").tempdir().unwrap()));
    let (input, output, app_id) = ("wc-input", "wc-output", "wc-eos");
    c.topics(1, &["--create", "--topic", input, "--partitions", "6", "--replication-factor", "3"]);
    c.topics(1, &["--create", "--topic", output, "--partitions", "3", "--replication-factor", "3"]);
    let (lines, expected) = corpus();
    let corpus_file = work.path().join("corpus.txt");
    fs::write(&corpus_file, lines.join("\n") + "\n").unwrap();
    let state_dir = work.path().join("state");
    let path = |p: &Path| p.display().to_string();

    let mut app = Bg::spawn(
        "wordcount",
        work.path(),
        eos_java("WordCountEos", "512m", "info")
            .args(["--bootstrap", &c.bootstrap(), "--app-id", app_id, "--input", input, "--output", output])
            .args(["--state-dir", &path(&state_dir), "--replication-factor", "3", "--commit-interval-ms", "100"]),
    );
    // Starting includes creating `__consumer_offsets`, the internal topics
    // and `__transaction_state` (about 20 s against Apache Kafka).
    wait_for("the Streams application to be RUNNING", stage(100), || {
        assert_alive(&mut app, "while starting");
        app.out_lines().iter().any(|l| l == "STATE\tREBALANCING\tRUNNING").then_some(())
    });
    eprintln!("Streams application running at {:?}", started.elapsed());

    // A live read_committed view of the output, and the corpus fed in.
    let mut reader = Bg::spawn(
        "reader",
        work.path(),
        read_check(&c.bootstrap(), output, "read_committed").args(["--value", "long", "--timeout-ms", "600000"]),
    );
    let mut feed = eos_java("LineProducer", "256m", "warn");
    feed.args(["--bootstrap", &c.bootstrap(), "--topic", input, "--file", &path(&corpus_file)]);
    feed.args(["--rate", &RATE.to_string(), "--every", "50"]);
    let mut producer = Bg::spawn("producer", work.path(), &mut feed);

    wait_counting("a third of the corpus in, and counts out", &mut app, &producer, &reader, &expected, stage(60), |acked, counted| {
        acked >= LINES / 3 && !counted.is_empty()
    });
    let victim = txn_coordinator(&c, app_id, &mut app);
    c.kill(victim);
    eprintln!("killed node {victim} (the application's transaction coordinator) at {:?}, {} lines in", started.elapsed(), acked(&producer));

    // The application carries on without the broker: it counts the first
    // two thirds of the corpus completely before the broker is back.
    let two_thirds = (WORDS_PER_LINE * (2 * LINES / 3)) as i64;
    wait_counting(
        "two thirds of the corpus in and counted with a broker down",
        &mut app,
        &producer,
        &reader,
        &expected,
        stage(60),
        |acked, counted| acked >= 2 * LINES / 3 && counted.values().sum::<i64>() >= two_thirds,
    );
    eprintln!("at {:?}: {} lines in and counted with node {victim} down; restarting it", started.elapsed(), acked(&producer));
    c.restart(victim);

    let status = producer.wait(stage(60));
    assert!(status.success(), "LineProducer failed ({status}):\n{}\n{}", producer.stdout(), producer.stderr());
    let done = wait_counting(
        "every word's count to reach its count in the corpus",
        &mut app,
        &producer,
        &reader,
        &expected,
        stage(60),
        |_, counted| counted == &expected,
    );
    eprintln!("all {} words counted at {:?}", done.values().sum::<i64>(), started.elapsed());
    let status = app.terminate(Duration::from_secs(60));
    let errors: Vec<String> = app.out_lines().into_iter().filter(|l| l.starts_with("THREAD-ERROR")).collect();
    eprintln!("Streams application closed ({status}); stream threads replaced after errors: {errors:?}");
    reader.kill();

    // A fresh read_committed consumer: each word's last count is exact, and
    // its counts rise with every committed update.
    let committed = read_to_end(&c, output, "read_committed", true);
    let by_word = counts_by_word(&committed);
    assert_eq!(last_counts(&by_word), expected, "the last count of each word (read_committed)");
    for (w, ns) in &by_word {
        assert!(ns.windows(2).all(|p| p[0] < p[1]), "the committed counts of {w} do not rise: {ns:?}");
    }
    let all = read_to_end(&c, output, "read_uncommitted", true);
    eprintln!("output records: {} committed, {} in the log (aborted writes included)", committed.len(), all.len());

    // The input holds the corpus exactly once (the producer lost and
    // duplicated nothing), so the counts above are exact counts of it.
    let mut seen: Vec<(usize, String)> = read_to_end(&c, input, "read_committed", false)
        .into_iter()
        .map(|r| (r.key.parse().unwrap_or_else(|_| panic!("bad key {r:?}")), r.value))
        .collect();
    seen.sort();
    let want: Vec<(usize, String)> = lines.into_iter().enumerate().collect();
    assert!(seen == want, "the input topic does not hold the corpus exactly once: {} records for {} lines", seen.len(), want.len());
    eprintln!("done in {:?}", started.elapsed());
}
