//! Tiered storage (KIP-405) end to end: real `fjord` processes, Kafka's own
//! tools (kafka-topics, kafka-configs, kafka-get-offsets, the console
//! producer and consumer) and confluent-kafka from the test venv, and a
//! real S3 server (moto's) behind a TCP proxy the test can stop.
//!
//! Each test fills 1 MiB segments with 1 KiB records whose bytes are
//! unique and pseudo-random, waits until the sealed segments are in the
//! object store and gone from the local disk, and then reads everything
//! back through the broker, byte for byte: records below the local log
//! start can only come from the store. The stores are checked directly
//! too (keys, one manifest per base offset, the files beside each
//! manifest), and the offsets through ListOffsets' earliest (-2),
//! earliest-local (-4) and latest-tiered (-5).
//!
//! Fjord only: Apache Kafka tiers through a RemoteStorageManager plugin
//! (Aiven's) that the test setup does not install, so with
//! `FJORD_TEST_BROKER=kafka` these tests say so and pass without running.
//! They take turns (each is several JVMs and megabytes of records on a
//! two-core machine).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::cluster::{Cluster, TopicView, py};
use support::groups::T;
use support::s3::{Moto, Objects, Proxy, Store};
use support::{Broker, Kind, kafka_tool, kind, run_ok};

/// Every record's value, in bytes.
const RECORD_BYTES: usize = 1024;
/// The smallest `segment.bytes` a topic may have.
const SEGMENT_BYTES: usize = 1 << 20;
/// What every uploaded segment has beside its manifest.
const SEGMENT_FILES: &[&str] = &["log", "index", "timeindex"];
/// Local .log files a tiered partition keeps with `local.retention.ms`
/// of a second: the active segment, and a sealed one between its upload
/// and the next retention run.
const FEW_LOCAL: usize = 2;
/// How long tiering may take: uploads run every 500 ms here.
const TIERING: Duration = Duration::from_secs(60);

static SERIAL: Mutex<()> = Mutex::new(());

/// This test's turn, or `None` (after saying why) against Apache Kafka.
fn fjord_only(test: &str) -> Option<MutexGuard<'static, ()>> {
    if kind() == Kind::Kafka {
        eprintln!(
            "{test}: not run against Apache Kafka, whose tiered storage needs a RemoteStorageManager plugin the tests do not install"
        );
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Tiered storage on, uploads and retention every 500 ms, quick retries.
fn tiered_settings() -> Vec<(String, String)> {
    [
        ("remote.log.storage.system.enable", "true"),
        ("remote.log.manager.task.interval.ms", "500"),
        ("log.retention.check.interval.ms", "500"),
        ("remote.log.manager.task.retry.backoff.ms", "200"),
        ("remote.log.manager.task.retry.backoff.max.ms", "1000"),
        ("remote.log.storage.request.max.attempts", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The S3 settings (Aiven's plugin's names) for moto's bucket at `endpoint`.
fn s3_settings(endpoint: &str) -> Vec<(String, String)> {
    [
        ("rsm.config.storage.s3.bucket.name", support::s3::BUCKET),
        ("rsm.config.storage.s3.endpoint.url", endpoint),
        ("rsm.config.storage.s3.region", "us-east-1"),
        ("rsm.config.storage.s3.path.style.access.enabled", "true"),
        // moto takes any; static ones keep the client off the EC2 metadata address.
        ("rsm.config.storage.aws.access.key.id", "testing"),
        ("rsm.config.storage.aws.secret.access.key", "testing"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn pairs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Record `i` of the records tagged `tag`: the tag and number first (so
/// every value is unique), then pseudo-random letters and digits up to
/// [`RECORD_BYTES`], so bytes served from the wrong place show.
fn value(tag: &str, i: usize) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut v = format!("{tag}-{i:07}-");
    let seed = tag.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut x = (seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    while v.len() < RECORD_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(ALNUM[(x % ALNUM.len() as u64) as usize] as char);
    }
    v
}

fn values(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| value(tag, i)).collect()
}

/// Polls `f` until it gives `Ok`, at most `limit`; the failure message
/// ends with what `f` last reported. (The brokers' logs follow, printed
/// when they are dropped.)
fn wait_until<R>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<R, String>) -> R {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(r) => return r,
            Err(last) => assert!(Instant::now() < deadline, "waited {limit:?} for {what}; last seen: {last}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------
// topics, offsets, local segments

/// Creates `topic` with tiering on, 1 MiB segments and `configs`; returns
/// its topic id as `kafka-topics --describe` prints it.
fn create_topic(bootstrap: &str, topic: &str, partitions: u32, rf: u32, configs: &[(&str, &str)]) -> String {
    let mut cmd = kafka_tool("kafka-topics");
    cmd.args(["--bootstrap-server", bootstrap, "--create", "--topic", topic]);
    cmd.args(["--partitions", &partitions.to_string(), "--replication-factor", &rf.to_string()]);
    let segment = SEGMENT_BYTES.to_string();
    for (k, v) in [("remote.storage.enable", "true"), ("segment.bytes", segment.as_str())].iter().chain(configs) {
        cmd.args(["--config", &format!("{k}={v}")]);
    }
    run_ok(&mut cmd, None, T);
    let out = run_ok(kafka_tool("kafka-topics").args(["--bootstrap-server", bootstrap, "--describe", "--topic", topic]), None, T);
    let id = out.split_whitespace().skip_while(|w| *w != "TopicId:").nth(1);
    id.unwrap_or_else(|| panic!("no TopicId in:\n{out}")).to_string()
}

/// `kafka-get-offsets --time <time>` of `topic`, by partition.
fn offsets(bootstrap: &str, topic: &str, time: &str) -> BTreeMap<i32, i64> {
    let out = run_ok(kafka_tool("kafka-get-offsets").args(["--bootstrap-server", bootstrap, "--topic", topic, "--time", time]), None, T);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.trim().rsplitn(3, ':').collect();
            assert_eq!((f.len(), f.get(2).copied()), (3, Some(topic)), "unexpected kafka-get-offsets --time {time} line {l:?} in:\n{out}");
            let num = |s: &str| s.parse::<i64>().unwrap_or_else(|_| panic!("bad line {l:?} in:\n{out}"));
            (num(f[1]) as i32, num(f[0]))
        })
        .collect()
}

/// Several `kafka-get-offsets --time` runs side by side (a JVM each), in `times`' order.
fn offsets_at<const N: usize>(bootstrap: &str, topic: &str, times: [&str; N]) -> [BTreeMap<i32, i64>; N] {
    std::thread::scope(|s| {
        let runs = times.map(|t| s.spawn(move || offsets(bootstrap, topic, t)));
        runs.map(|r| r.join().expect("kafka-get-offsets"))
    })
}

/// The base offsets of partition `partition`'s local `.log` files in
/// `data_dir`, ascending (none if the directory is not there).
fn local_logs(data_dir: &Path, topic: &str, partition: i32) -> Vec<i64> {
    let Ok(entries) = fs::read_dir(data_dir.join(format!("{topic}-{partition}"))) else { return Vec::new() };
    let mut v: Vec<i64> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".log")?;
            (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
        })
        .collect();
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// producing and consuming

/// confluent-kafka, acks=all and idempotent: each `partition:file`
/// argument's lines go to that partition in order; prints
/// `partition<TAB>offset` per acknowledged record.
const PRODUCE: &str = r#"
import sys
from confluent_kafka import Producer
brokers, topic = sys.argv[1], sys.argv[2]
p = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True,
              "linger.ms": 5, "batch.size": 65536, "message.timeout.ms": 90000})
acked, errors = [], []
def done(err, msg):
    if err is not None:
        errors.append(f"partition {msg.partition()}: {err}")
    else:
        acked.append(f"{msg.partition()}\t{msg.offset()}\n")
for arg in sys.argv[3:]:
    part, path = arg.split(":", 1)
    with open(path, "rb") as f:
        for line in f:
            while True:
                try:
                    p.produce(topic, value=line.rstrip(b"\n"), partition=int(part), on_delivery=done)
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
left = p.flush(100)
sys.stdout.write("".join(acked))
if errors or left:
    sys.stderr.write(f"{left} records not acknowledged; errors: {errors[:10]}\n")
    sys.exit(1)
"#;

/// confluent-kafka reading `count` records of one partition from offset
/// `start` (-2: the earliest) by assignment, no group; prints
/// `offset<TAB>value` per record. An offset out of range is an error,
/// not a reset.
const CONSUME: &str = r#"
import sys, time
from confluent_kafka import Consumer, KafkaException, TopicPartition
brokers, topic, part, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
c = Consumer({"bootstrap.servers": brokers, "group.id": "tiered-unused", "enable.auto.commit": False,
              "enable.auto.offset.store": False, "auto.offset.reset": "error"})
c.assign([TopicPartition(topic, part, start)])
out, deadline = [], time.monotonic() + 90
while len(out) < count:
    if time.monotonic() > deadline:
        sys.stderr.write(f"timed out with {len(out)} of {count} records\n")
        sys.exit(1)
    for msg in c.consume(1000, 0.5):
        if msg.error():
            raise KafkaException(msg.error())
        out.append(b"%d\t%s\n" % (msg.offset(), msg.value()))
c.close()
sys.stdout.buffer.write(b"".join(out[:count]))
"#;

/// Produces `new[p]` to each partition `p`, which holds `before[p]`
/// records, and checks that they are acknowledged at the next offsets, in
/// order (no loss, no duplicate).
fn produce(bootstrap: &str, topic: &str, work: &Path, new: &BTreeMap<i32, Vec<String>>, before: &BTreeMap<i32, usize>) {
    let mut cmd = py(PRODUCE);
    cmd.args([bootstrap, topic]);
    for (p, vals) in new {
        let file = work.join(format!("produce-{p}-{}.txt", before[p]));
        fs::write(&file, vals.iter().map(|v| format!("{v}\n")).collect::<String>()).unwrap();
        cmd.arg(format!("{p}:{}", file.display()));
    }
    let out = run_ok(&mut cmd, None, T);
    let mut acked: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for l in out.lines() {
        let (p, o) = l.split_once('\t').unwrap_or_else(|| panic!("bad producer line {l:?}"));
        acked.entry(p.parse().unwrap()).or_default().push(o.parse().unwrap());
    }
    for (p, vals) in new {
        let want: Vec<i64> = (before[p]..before[p] + vals.len()).map(|o| o as i64).collect();
        assert!(
            acked.get(p) == Some(&want),
            "partition {p}: records acknowledged at other offsets than {:?}..{:?}",
            want.first(),
            want.last()
        );
    }
}

/// Adds `n` records tagged `<tag><partition>` to every partition of
/// `sent` (produced through `bootstrap`).
fn produce_more(bootstrap: &str, topic: &str, work: &Path, sent: &mut BTreeMap<i32, Vec<String>>, tag: &str, n: usize) {
    let started = Instant::now();
    let new: BTreeMap<i32, Vec<String>> = sent.keys().map(|&p| (p, values(&format!("{tag}{p}"), n))).collect();
    let before = sent.iter().map(|(&p, v)| (p, v.len())).collect();
    produce(bootstrap, topic, work, &new, &before);
    for (p, vals) in new {
        sent.get_mut(&p).unwrap().extend(vals);
    }
    eprintln!("produced {n} records of {RECORD_BYTES} B to each of {} partitions in {:?}", sent.len(), started.elapsed());
}

/// Reads `count` records of `partition` from `start` (-2: the earliest)
/// with confluent-kafka: (offset, value) pairs.
fn consume(bootstrap: &str, topic: &str, partition: i32, start: i64, count: usize) -> Vec<(i64, String)> {
    let out = run_ok(py(CONSUME).args([bootstrap, topic, &partition.to_string(), &start.to_string(), &count.to_string()]), None, T);
    parse_read(&out, '\t')
}

/// `offset<sep>value` lines (the console consumer's are `Offset:o<TAB>value`).
fn parse_read(out: &str, sep: char) -> Vec<(i64, String)> {
    out.lines()
        .map(|l| {
            let (o, v) = l.split_once(sep).unwrap_or_else(|| panic!("bad consumer line {:.80}", l));
            (o.trim_start_matches("Offset:").parse().unwrap_or_else(|_| panic!("bad offset in {:.80}", l)), v.to_string())
        })
        .collect()
}

/// Fails unless `got` is exactly `want[from..]` at offsets `from, from + 1, ...`.
fn assert_read(what: &str, got: &[(i64, String)], from: usize, want: &[String]) {
    let want = &want[from..];
    for (i, ((offset, v), w)) in got.iter().zip(want).enumerate() {
        assert_eq!(*offset, (from + i) as i64, "{what}: record {i} read is at offset {offset}, not {}", from + i);
        assert!(v == w, "{what}: offset {offset} holds {:.40}… ({} bytes), not {:.40}… ({} bytes)", v, v.len(), w, w.len());
    }
    assert_eq!(got.len(), want.len(), "{what}: read {} records from offset {from}, want {}", got.len(), want.len());
}

// ---------------------------------------------------------------------------

/// One broker with nothing but `remote.log.storage.system.enable=true`
/// (and short intervals) tiers to `<log dir>/remote-log-storage`: the
/// sealed segments go up with their indexes and a manifest, local
/// retention removes them from the partition directory, the offsets say
/// where remote and local data start and end, and the console consumer
/// reads every record back from offset 0, in order, byte for byte.
#[test]
fn a_single_node_tiers_to_its_log_dir_by_default() {
    let Some(_turn) = fjord_only("a_single_node_tiers_to_its_log_dir_by_default") else { return };
    let started = Instant::now();
    let b = Broker::start_with(&pairs(&tiered_settings()));
    let topic = "tiered-local";
    let id = create_topic(&b.bootstrap(), topic, 1, 1, &[("local.retention.ms", "1000")]);
    let n = 8000;
    let want = values("local", n);
    let input: String = want.iter().map(|v| format!("{v}\n")).collect();
    run_ok(
        kafka_tool("kafka-console-producer").args(["--bootstrap-server", &b.bootstrap(), "--topic", topic]).args([
            "--command-property",
            "acks=all",
            "--command-property",
            "linger.ms=5",
            "--command-property",
            "batch.size=65536",
        ]),
        Some(input.as_bytes()),
        T,
    );
    eprintln!("produced {n} records in {:?}", started.elapsed());

    let store = Store::Dir(b.data_dir().join("remote-log-storage"));
    let (local, objects) = wait_until("the partition to tier to <log dir>/remote-log-storage", TIERING, || {
        let local = local_logs(&b.data_dir(), topic, 0);
        let objects = store.list();
        let manifests = objects.manifests(&id, 0);
        match local.len() <= FEW_LOCAL && manifests.len() >= 5 {
            true => Ok((local, objects)),
            false => Err(format!("local .log base offsets {local:?}, manifests at {manifests:?}, other files {:?}", objects.other)),
        }
    });
    eprintln!("tiered after {:?}: local segments at {local:?}", started.elapsed());
    let manifests = objects.manifests(&id, 0);
    assert_eq!(objects.problems(&id, 0, SEGMENT_FILES, true), Vec::<String>::new(), "{objects:#?}");
    assert_eq!(manifests[0], 0, "the first segment is not in the store: {manifests:?}");
    assert!(local[0] > 0, "segment 0 is still on local disk: {local:?}");
    let active = *local.last().unwrap();
    assert!(!manifests.contains(&active), "the active segment ({active}) was uploaded: {manifests:?}");
    let other_topics: BTreeSet<&str> = objects.keys.iter().map(|k| k.topic_id.as_str()).filter(|t| *t != id).collect();
    assert!(other_topics.is_empty(), "objects under topic ids other than {id}: {other_topics:?}");

    let [earliest, latest, earliest_local, latest_tiered, since_0] = offsets_at(&b.bootstrap(), topic, ["-2", "-1", "-4", "-5", "0"]);
    let (el, lt) = (earliest_local[&0], latest_tiered[&0]);
    assert_eq!((earliest[&0], latest[&0]), (0, n as i64), "earliest (-2) and latest (-1)");
    // Found through the remote segment's time index and records.
    assert_eq!(since_0[&0], 0, "the first record at or after timestamp 0");
    // The local start may move once more (the sealed segment beside the active one).
    let local_now = local_logs(&b.data_dir(), topic, 0);
    assert!(
        local.contains(&el) || local_now.contains(&el),
        "earliest-local (-4) {el} is no local segment's base: {local:?} then {local_now:?}"
    );
    assert!(el > 0, "earliest-local (-4) is 0");
    assert!(lt >= el - 1 && lt < n as i64, "latest-tiered (-5) {lt}: remote data must reach earliest-local {el} - 1 and end before {n}");

    // Offsets 0..el are in the store only.
    let out = run_ok(
        kafka_tool("kafka-console-consumer")
            .args(["--bootstrap-server", &b.bootstrap(), "--topic", topic, "--partition", "0", "--offset", "earliest"])
            .args(["--max-messages", &n.to_string(), "--timeout-ms", "60000", "--formatter-property", "print.offset=true"]),
        None,
        T,
    );
    assert_read("the console consumer from offset 0", &parse_read(&out, '\t'), 0, &want);

    // Deleting the topic deletes its uploads too.
    run_ok(kafka_tool("kafka-topics").args(["--bootstrap-server", &b.bootstrap(), "--delete", "--topic", topic]), None, T);
    wait_until("the deleted topic's uploads to go", TIERING, || {
        let left: Vec<String> = store.list().of(&id, 0).map(|k| format!("{k:?}")).collect();
        if left.is_empty() { Ok(()) } else { Err(format!("still in the store: {left:?}")) }
    });
    eprintln!("done in {:?}", started.elapsed());
}

/// Three brokers tier an RF 3 topic to S3 (moto, behind a proxy). The
/// leader of partition 0 is killed; its successor uploads the segments
/// after the ones already there and never uploads one again. Then S3 goes
/// away: writes and local reads go on, local segments pile up, the brokers
/// warn; when S3 is back the backlog goes up and local disks empty. Every
/// record of every phase is read back from offset 0.
#[test]
fn three_brokers_tier_to_s3_through_a_leader_change_and_an_outage() {
    let Some(_turn) = fjord_only("three_brokers_tier_to_s3_through_a_leader_change_and_an_outage") else { return };
    let started = Instant::now();
    let moto = Moto::start();
    let mut proxy = Proxy::start(moto.port());
    let mut settings = tiered_settings();
    settings.extend(s3_settings(&proxy.endpoint()));
    let mut c = Cluster::start(3, 0, &pairs(&settings));
    let topic = "tiered-s3";
    let id = create_topic(&c.bootstrap(), topic, 2, 3, &[("local.retention.ms", "1000")]);
    let all_in_sync = |v: &TopicView| v.len() == 2 && v.values().all(|p| p.leader.is_some() && p.isr.len() == 3);
    c.wait_topic(1, topic, "both partitions led and 3 in sync", Duration::from_secs(30), all_in_sync);
    let store = Store::S3(&moto);
    let work = tempfile::tempdir().unwrap();
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::from([(0, Vec::new()), (1, Vec::new())]);

    // A: tiered on every replica.
    produce_more(&c.bootstrap(), topic, work.path(), &mut sent, "a", 3000);
    let dirs = |c: &Cluster, ids: &[i32]| ids.iter().map(|&i| (i, c.data_dir(i))).collect::<Vec<_>>();
    let tiered_a = wait_tiered(&store, &id, topic, &dirs(&c, &c.ids()), &BTreeMap::from([(0, vec![]), (1, vec![])]), 2);
    eprintln!("A tiered after {:?}", started.elapsed());

    // B: a new leader for partition 0.
    let victim = c.topic_view(1, topic).and_then(|v| v[&0].leader).expect("a leader for partition 0");
    c.kill(victim);
    let alive: Vec<i32> = c.ids().into_iter().filter(|&i| i != victim).collect();
    let led = |v: &TopicView| v.len() == 2 && v.values().all(|p| p.leader.is_some_and(|l| l != victim));
    let view = c.wait_topic(alive[0], topic, &format!("leaders other than the killed {victim}"), Duration::from_secs(30), led);
    eprintln!("killed broker {victim}, leader of partition 0; now {view:?}");
    produce_more(&c.bootstrap_of_all(&alive), topic, work.path(), &mut sent, "b", 2000);
    let before: BTreeMap<i32, Vec<i64>> = (0..2).map(|p| (p, tiered_a.manifests(&id, p))).collect();
    let tiered_b = wait_tiered(&store, &id, topic, &dirs(&c, &alive), &before, 1);
    for p in 0..2 {
        let (old, new) = (tiered_a.uploads(&id, p), tiered_b.uploads(&id, p));
        let gone: Vec<_> = old.keys().filter(|k| !new.contains_key(*k)).collect();
        assert!(gone.is_empty(), "partition {p}: uploads {gone:?} from before the leader change are gone or replaced; now {new:?}");
    }
    c.restart(victim);
    eprintln!("B tiered by the new leader and broker {victim} back after {:?}", started.elapsed());

    // C: S3 unreachable.
    proxy.stop();
    std::thread::sleep(Duration::from_millis(500));
    let frozen = store.list();
    let marks: BTreeMap<i32, u64> = c.ids().into_iter().map(|i| (i, fs::metadata(c.log_path(i)).map_or(0, |m| m.len()))).collect();
    produce_more(&c.bootstrap(), topic, work.path(), &mut sent, "c", 4000);
    let (piled, warned) =
        wait_until("local segments to pile up on every replica and a warning that uploads fail", Duration::from_secs(45), || {
            let local: BTreeMap<(i32, i32), Vec<i64>> = c
                .ids()
                .into_iter()
                .flat_map(|i| (0..2).map(move |p| (i, p)))
                .map(|(i, p)| ((i, p), local_logs(&c.data_dir(i), topic, p)))
                .collect();
            let warned: Vec<String> = c.ids().into_iter().flat_map(|i| upload_warnings(&c.log_path(i), marks[&i])).collect();
            match local.values().all(|l| l.len() >= 4) && !warned.is_empty() {
                true => Ok((local, warned)),
                false => Err(format!("local .log base offsets by (node, partition) {local:?}; warnings {warned:?}")),
            }
        });
    eprintln!("S3 unreachable: local .log files by (node, partition) {piled:?}; {} upload warnings, first {:?}", warned.len(), warned[0]);
    // Nothing that is only local may go while the store is away.
    std::thread::sleep(Duration::from_secs(2));
    for ((i, p), logs) in &piled {
        let now = local_logs(&c.data_dir(*i), topic, *p);
        let frozen_bases = frozen.manifests(&id, *p);
        let lost: Vec<&i64> = logs.iter().filter(|b| !frozen_bases.contains(b) && !now.contains(b)).collect();
        assert!(
            lost.is_empty(),
            "node {i} partition {p}: segments {lost:?} deleted locally while S3 was unreachable (had {logs:?}, now {now:?})"
        );
    }
    let during = store.list();
    for p in 0..2 {
        assert_eq!(during.manifests(&id, p), frozen.manifests(&id, p), "partition {p}: manifests changed while S3 was unreachable");
    }
    let earliest_local = offsets(&c.bootstrap(), topic, "-4");
    for (p, vals) in &sent {
        let from = earliest_local[p] as usize;
        let got = consume(&c.bootstrap(), topic, *p, from as i64, vals.len() - from);
        assert_read(&format!("partition {p} from earliest-local {from} during the outage"), &got, from, vals);
    }
    eprintln!("C written and read locally during the outage after {:?}", started.elapsed());

    // S3 back: the backlog goes up, local disks empty, everything reads from 0.
    proxy.resume();
    let tiered_c =
        wait_tiered(&store, &id, topic, &dirs(&c, &c.ids()), &(0..2).map(|p| (p, frozen.manifests(&id, p))).collect::<BTreeMap<_, _>>(), 2);
    eprintln!("backlog uploaded after {:?}", started.elapsed());
    let [earliest, latest] = offsets_at(&c.bootstrap(), topic, ["-2", "-1"]);
    for (p, vals) in &sent {
        assert_eq!((earliest[p], latest[p]), (0, vals.len() as i64), "partition {p}: earliest (-2) and latest (-1)");
        assert_eq!(tiered_c.manifests(&id, *p)[0], 0, "partition {p}: segment 0 is not in S3");
        let got = consume(&c.bootstrap(), topic, *p, 0, vals.len());
        assert_read(&format!("partition {p} from 0 after the outage"), &got, 0, vals);
    }
    assert!(proxy.accepted() > 0, "no broker went through the S3 proxy");
    eprintln!("done in {:?}", started.elapsed());
}

/// Waits until, for each partition in `before`, every node in `dirs` keeps
/// at most [`FEW_LOCAL`] local .log files and the store holds at least
/// `grown` more manifests than `before[p]` lists, ending above them; then
/// checks one manifest per base offset, each beside its files. Returns
/// the listing.
fn wait_tiered(store: &Store, id: &str, topic: &str, dirs: &[(i32, PathBuf)], before: &BTreeMap<i32, Vec<i64>>, grown: usize) -> Objects {
    let objects = wait_until(
        &format!("{topic} to tier (local .log files on nodes {:?})", dirs.iter().map(|d| d.0).collect::<Vec<_>>()),
        TIERING,
        || {
            let objects = store.list();
            let mut state = Vec::new();
            let mut done = true;
            for (&p, old) in before {
                let m = objects.manifests(id, p);
                let above = m.iter().filter(|b| old.last().is_none_or(|top| *b > top)).count();
                done &= above >= grown;
                for (node, dir) in dirs {
                    let local = local_logs(dir, topic, p);
                    done &= local.len() <= FEW_LOCAL;
                    state.push(format!("node {node} partition {p}: local {local:?}"));
                }
                state.push(format!("partition {p}: manifests {m:?}"));
            }
            if done { Ok(objects) } else { Err(state.join("; ")) }
        },
    );
    for &p in before.keys() {
        assert_eq!(objects.problems(id, p, SEGMENT_FILES, true), Vec::<String>::new(), "partition {p}: {objects:#?}");
    }
    objects
}

/// Lines of a broker log after byte `from` that warn of a failed tiered upload.
fn upload_warnings(log: &Path, from: u64) -> Vec<String> {
    let text = fs::read(log).map(|b| String::from_utf8_lossy(&b[(from as usize).min(b.len())..]).into_owned()).unwrap_or_default();
    text.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            ["warn", "tiered", "upload", "failed"].iter().all(|w| l.contains(w))
        })
        .map(|l| without_colours(l).chars().take(300).collect())
        .collect()
}

/// `line` without the terminal colour codes (`ESC [ ... m`) the broker's log has.
fn without_colours(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('\x1b') {
        out.push_str(&rest[..start]);
        rest = rest[start..].split_once('m').map_or("", |(_, after)| after);
    }
    out + rest
}

/// A topic's total retention (`retention.bytes`, local plus remote) set
/// after its segments are in S3 deletes the oldest remote segments,
/// manifest and files, and moves the earliest offset up to the first one
/// left; a consumer from the beginning starts there and reads to the end.
#[test]
fn total_retention_deletes_remote_segments() {
    let Some(_turn) = fjord_only("total_retention_deletes_remote_segments") else { return };
    let started = Instant::now();
    let moto = Moto::start();
    let mut settings = tiered_settings();
    settings.extend(s3_settings(&format!("http://127.0.0.1:{}", moto.port())));
    let b = Broker::start_with(&pairs(&settings));
    let topic = "tiered-retention";
    let id = create_topic(&b.bootstrap(), topic, 1, 1, &[("local.retention.ms", "1000")]);
    let work = tempfile::tempdir().unwrap();
    let mut sent = BTreeMap::from([(0, Vec::new())]);
    produce_more(&b.bootstrap(), topic, work.path(), &mut sent, "r", 10_000);
    let n = sent[&0].len();
    let store = Store::S3(&moto);

    // No total retention yet: every sealed segment goes up and stays.
    let dirs = [(1, b.data_dir())];
    let full = wait_tiered(&store, &id, topic, &dirs, &BTreeMap::from([(0, vec![])]), 8);
    let all = full.manifests(&id, 0);
    assert_eq!(all[0], 0, "segment 0 is not in S3: {all:?}");
    eprintln!("tiered after {:?}: manifests at {all:?}", started.elapsed());

    let retention_bytes = 3 * SEGMENT_BYTES;
    run_ok(
        kafka_tool("kafka-configs")
            .args(["--bootstrap-server", &b.bootstrap(), "--alter", "--entity-type", "topics", "--entity-name", topic])
            .args(["--add-config", &format!("retention.bytes={retention_bytes}")]),
        None,
        T,
    );
    let (earliest, left) = wait_until("remote segments deleted down to retention.bytes", TIERING, || {
        let objects = store.list();
        let m = objects.manifests(&id, 0);
        let problems = objects.problems(&id, 0, SEGMENT_FILES, false);
        if m.is_empty() || m.len() > 4 || m[0] == 0 || !problems.is_empty() {
            return Err(format!("manifests at {m:?}, problems {problems:?}"));
        }
        let earliest = offsets(&b.bootstrap(), topic, "-2")[&0];
        if earliest == m[0] { Ok((earliest, m)) } else { Err(format!("manifests at {m:?}, earliest (-2) {earliest}")) }
    });
    eprintln!("retention applied after {:?}: earliest {earliest}, manifests at {left:?}", started.elapsed());
    let kept = n - earliest as usize;
    // Whole segments go, oldest first, while the rest still holds retention.bytes.
    assert!(
        kept * RECORD_BYTES <= retention_bytes + SEGMENT_BYTES && kept * RECORD_BYTES * 3 >= retention_bytes * 2,
        "{kept} records ({} KiB of values) kept for retention.bytes of {} KiB",
        (kept * RECORD_BYTES) >> 10,
        retention_bytes >> 10
    );
    assert!(all.contains(&earliest), "the new earliest offset {earliest} is no segment's base: {all:?}");
    let [latest, earliest_local] = offsets_at(&b.bootstrap(), topic, ["-1", "-4"]);
    assert_eq!(latest[&0], n as i64, "latest (-1)");
    assert!(earliest_local[&0] >= earliest, "earliest-local (-4) {} below earliest {earliest}", earliest_local[&0]);

    let got = consume(&b.bootstrap(), topic, 0, -2, kept);
    assert_read("from the beginning after retention", &got, earliest as usize, &sent[&0]);
    eprintln!("done in {:?}", started.elapsed());
}
