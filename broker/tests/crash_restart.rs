//! A broker killed with SIGKILL in the middle of acks=all production loses
//! nothing it acknowledged. franz-go's idempotent producer (through
//! `tests/interop/franz`) writes every acknowledged (partition, offset, key,
//! value) to a file as the acknowledgement arrives; the broker is killed,
//! then the producer; the broker restarts on the same data folder and port;
//! everything is read back by partition assignment. Twice, so the second
//! crash lands on a log that already went through recovery; then a fresh
//! producer appends after the recovered end.
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Broker, Rec, assert_dense_from_zero, franz, parse_records, run_ok, value_of};

const T: Duration = Duration::from_secs(120);
const TOPIC: &str = "crash";
const PARTITIONS: i32 = 3;
const VALUE_BYTES: usize = 100;

/// Round `round`'s record `i`: key `r<round>-k<i>`, value `r<round>-v<i>` padded.
fn key_prefix(round: usize) -> String {
    format!("r{round}-k")
}

fn value_prefix(round: usize) -> String {
    format!("r{round}-v")
}

/// The complete lines of the acknowledgement file (a SIGKILL may cut the last).
fn read_acks(path: &std::path::Path) -> Vec<Rec> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    parse_records(complete)
}

/// Starts a producer of round `round`, kills the broker once enough is
/// acknowledged, then kills the producer; returns what it acknowledged.
fn produce_and_crash(b: &mut Broker, round: usize, work: &std::path::Path) -> Vec<Rec> {
    let acks = work.join(format!("acks-{round}.txt"));
    let log = File::create(work.join(format!("producer-{round}.log"))).unwrap();
    let mut producer = franz()
        .args(["produce", "--brokers", &b.bootstrap(), "--topic", TOPIC, "--count", "5000000", "--acks", "all"])
        .args(["--value-bytes", &VALUE_BYTES.to_string(), "--key-prefix", &key_prefix(round), "--value-prefix", &value_prefix(round)])
        .args(["--timeout", "600s", "--out"])
        .arg(&acks)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting franz-interop");

    // Kill the broker after 20000 acknowledgements, or after 5 s of
    // acknowledgements if it is slower than that.
    let started = Instant::now();
    let mut first_ack: Option<Instant> = None;
    loop {
        let n = fs::metadata(&acks).map(|m| m.len()).unwrap_or(0) / (VALUE_BYTES as u64 + 10);
        if n > 0 && first_ack.is_none() {
            first_ack = Some(Instant::now());
        }
        if n >= 20_000 || first_ack.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break;
        }
        if let Some(status) = producer.try_wait().unwrap() {
            panic!(
                "round {round}: the producer exited ({status}) before the crash:\n{}",
                fs::read_to_string(work.join(format!("producer-{round}.log"))).unwrap_or_default()
            );
        }
        assert!(started.elapsed() < Duration::from_secs(60), "round {round}: nothing acknowledged in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(producer.try_wait().unwrap().is_none(), "round {round}: the producer finished before the crash");
    b.kill();
    // Let the producer see the dead broker (and retry into it), then kill it
    // too, so that nothing more is produced after the restart.
    std::thread::sleep(Duration::from_millis(500));
    let _ = producer.kill();
    let _ = producer.wait();
    let acked = read_acks(&acks);
    assert!(!acked.is_empty(), "round {round}: nothing acknowledged before the crash");
    eprintln!("round {round}: {} records acknowledged before the broker was killed", acked.len());
    acked
}

/// Reads the whole topic and checks it against everything acknowledged so far.
/// Returns each partition's end offset.
fn verify(b: &Broker, acked: &[Rec], rounds: usize) -> BTreeMap<i32, i64> {
    let read = parse_records(&run_ok(franz().args(["consume", "--brokers", &b.bootstrap(), "--topic", TOPIC, "--to-end"]), None, T));
    let mut by_p: BTreeMap<i32, Vec<Rec>> = (0..PARTITIONS).map(|p| (p, Vec::new())).collect();
    for r in read {
        by_p.get_mut(&r.partition).unwrap_or_else(|| panic!("a record on partition {}: {r:?}", r.partition)).push(r);
    }
    // Dense from 0, and every record one that a producer sent (its value is
    // the one its key implies), once.
    let mut seen: HashMap<String, (i32, i64)> = HashMap::new();
    let mut at: HashMap<(i32, i64), &Rec> = HashMap::new();
    for (p, recs) in &by_p {
        assert_dense_from_zero(recs);
        for r in recs {
            let (round, i) = (0..rounds)
                .find_map(|round| Some((round, r.key.strip_prefix(&key_prefix(round))?.parse::<usize>().ok()?)))
                .unwrap_or_else(|| panic!("partition {p}: a record no producer sent (corrupt?): {r:?}"));
            assert_eq!(r.value, value_of(&value_prefix(round), i, VALUE_BYTES), "partition {p}: corrupt value at offset {}", r.offset);
            if let Some(first) = seen.insert(r.key.clone(), (r.partition, r.offset)) {
                panic!("key {} stored twice: at {first:?} and at ({p}, {})", r.key, r.offset);
            }
            at.insert((r.partition, r.offset), r);
        }
    }
    // Every acknowledged record at its acknowledged place.
    let mut lost = Vec::new();
    for a in acked {
        match at.get(&(a.partition, a.offset)) {
            Some(r) if *r == a => {}
            other => lost.push(format!("acknowledged {a:?}, found {other:?}")),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records are missing or moved; first ones:\n{}",
        lost.len(),
        acked.len(),
        lost[..lost.len().min(10)].join("\n")
    );
    by_p.iter().map(|(p, recs)| (*p, recs.len() as i64)).collect()
}

#[test]
fn sigkill_mid_production_loses_no_acknowledged_record() {
    let work = tempfile::tempdir().unwrap();
    let mut b = Broker::start();
    run_ok(franz().args(["create-topic", "--brokers", &b.bootstrap(), "--topic", TOPIC, "--partitions", &PARTITIONS.to_string()]), None, T);

    let mut acked = Vec::new();
    let mut ends = BTreeMap::new();
    for round in 0..2 {
        acked.extend(produce_and_crash(&mut b, round, work.path()));
        b.restart();
        ends = verify(&b, &acked, round + 1);
        eprintln!("round {round}: after the restart the partitions end at {ends:?}");
    }

    // The restarted broker takes new writes right after what it recovered.
    let out = run_ok(
        franz().args(["produce", "--brokers", &b.bootstrap(), "--topic", TOPIC, "--count", "1000", "--acks", "all"]).args([
            "--value-bytes",
            &VALUE_BYTES.to_string(),
            "--key-prefix",
            &key_prefix(2),
            "--value-prefix",
            &value_prefix(2),
        ]),
        None,
        T,
    );
    let after = parse_records(&out);
    assert_eq!(after.len(), 1000);
    for p in 0..PARTITIONS {
        let mut offsets: Vec<i64> = after.iter().filter(|r| r.partition == p).map(|r| r.offset).collect();
        offsets.sort_unstable();
        let want: Vec<i64> = (ends[&p]..ends[&p] + offsets.len() as i64).collect();
        assert_eq!(offsets, want, "partition {p}: new records do not follow the recovered end {}", ends[&p]);
    }
    acked.extend(after);
    verify(&b, &acked, 3);
}
