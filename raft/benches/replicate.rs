//! Replicated appends through raft: batches/s, MB/s and commit latency of
//! 16-record batches with 1 KiB values, written to the leader of one group
//! by a fixed number of concurrent writers (1, 8, 32 in flight).
//!
//! - Cluster: 3 `RaftNode`s in this process on 127.0.0.1 (real TCP, one
//!   connection per node pair), one group with 3 replicas; then a 1-replica
//!   group on one node as the reference (the same write path without peers).
//! - Settings: `RaftConfig::default()` and Kafka's log defaults with
//!   retention off. Every append is fsynced (group commit) on every replica
//!   before it counts as replicated; `FJORD_BENCH_WRITE_CACHE=1` measures
//!   Kafka's page-cache model instead (the broker's default for topics).
//! - Latency: `client_write` call to return, i.e. the batch is committed on a
//!   quorum and applied on the leader (the offset is known). Recorded in
//!   microseconds with hdrhistogram; only calls that complete inside the
//!   measured window count, after a warm-up.
//! - MB/s counts batch bytes (10^6 bytes per MB), as Kafka's producer does.
//!
//! `FJORD_BENCH_RAFT` overrides raft settings by their Kafka-style names,
//! e.g. `FJORD_BENCH_RAFT=raft.transport.linger.ms=0,raft.max.payload.entries=64`.
//!
//! Data lives under `target/bench-tmp` (override with `FJORD_BENCH_DIR`) and is
//! deleted after each cluster. `cargo bench` passes `--bench` and gets the
//! full run (~80 s); any other invocation (`cargo test --benches`) runs a
//! smoke configuration of about a second that checks the writes landed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fjord_raft::config::RaftConfig;
use fjord_raft::registry::{FjordRaft, Group};
use fjord_raft::{GroupId, KafkaBatch, RaftNode};
use fjord_storage::LogConfig;
use fjord_storage::batch::uncompressed_batch;
use hdrhistogram::Histogram;
use openraft::async_runtime::watch::WatchReceiver;

const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 1024;
/// Highest latency the histograms track, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long to wait for a leader, or for followers to catch up.
const SETTLE: Duration = Duration::from_secs(20);

/// What to run: every replica count with every writer count.
struct Plan {
    replicas: &'static [u64],
    writers: &'static [usize],
    warmup: Duration,
    measure: Duration,
}

const FULL: Plan = Plan { replicas: &[3, 1], writers: &[1, 8, 32], warmup: Duration::from_secs(2), measure: Duration::from_secs(10) };
const SMOKE: Plan = Plan { replicas: &[3, 1], writers: &[1, 8], warmup: Duration::from_millis(50), measure: Duration::from_millis(200) };

/// One measured run.
struct Sample {
    replicas: u64,
    writers: usize,
    batches: u64,
    secs: f64,
    latency_us: Histogram<u64>,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let batch = kafka_batch();
    if let Ok(overrides) = std::env::var("FJORD_BENCH_RAFT") {
        println!("raft settings: {overrides}");
    }
    println!(
        "replicated appends: {RECORDS_PER_BATCH} records x {VALUE_BYTES} B values = {} B batches; {} s warm-up, {} s measured; {} cores",
        batch.bytes().len(),
        plan.warmup.as_secs_f64(),
        plan.measure.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut samples = Vec::new();
    for &replicas in plan.replicas {
        samples.extend(runtime.block_on(run_cluster(replicas, &plan, &batch)));
    }
    print_table(&samples, batch.bytes().len());
}

/// A valid v2 batch; every write sends the same bytes (the log patches its
/// own copy's offset and epoch).
fn kafka_batch() -> KafkaBatch {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64;
    KafkaBatch::new(Bytes::from(uncompressed_batch(&[now_ms; RECORDS_PER_BATCH], VALUE_BYTES))).expect("a valid batch")
}

fn bench_root() -> PathBuf {
    let root = std::env::var_os("FJORD_BENCH_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tmp"), PathBuf::from);
    std::fs::create_dir_all(&root).expect("creating the bench directory");
    root
}

/// The defaults, with `FJORD_BENCH_RAFT`'s overrides.
fn raft_config() -> RaftConfig {
    let mut config = RaftConfig::default();
    let overrides = std::env::var("FJORD_BENCH_RAFT").unwrap_or_default();
    for setting in overrides.split(',').filter(|s| !s.is_empty()) {
        let (name, value) = setting.split_once('=').expect("FJORD_BENCH_RAFT: name=value,...");
        config.set(name.trim(), value).expect("FJORD_BENCH_RAFT: a valid raft setting");
    }
    config
}

/// Kafka's defaults, retention off: nothing is deleted under the writers.
/// Every append is synced (group commit) unless `FJORD_BENCH_WRITE_CACHE=1`,
/// which measures Kafka's model (acknowledged from the page cache), what a
/// broker topic gets unless `flush.messages=1`.
fn log_config() -> LogConfig {
    let write_cache = std::env::var("FJORD_BENCH_WRITE_CACHE").is_ok_and(|v| v == "1");
    LogConfig { retention_ms: None, retention_bytes: None, write_cache, ..LogConfig::default() }
}

/// Starts `replicas` nodes with one group, runs every writer count against
/// its leader, checks every replica holds every record, and stops.
async fn run_cluster(replicas: u64, plan: &Plan, batch: &KafkaBatch) -> Vec<Sample> {
    let dir = tempfile::Builder::new().prefix("replicate-bench-").tempdir_in(bench_root()).expect("creating a temp dir");
    let config = raft_config();
    let mut nodes = Vec::new();
    for id in 1..=replicas {
        let listen = "127.0.0.1:0".parse().expect("an address");
        nodes.push(RaftNode::start(id, listen, dir.path().join(format!("node-{id}")), config.clone()).await.expect("node start"));
    }
    let group = GroupId::new([7; 16], 0);
    let mut groups = Vec::new();
    for n in &nodes {
        groups.push(n.create_group(group, log_config()).await.expect("group creation"));
    }
    let leader = elect(&nodes, group).await;

    let mut samples = Vec::new();
    let mut written = 0;
    for &writers in plan.writers {
        let (sample, total) = drive(&leader, batch, replicas, writers, plan).await;
        samples.push(sample);
        written += total;
    }
    assert_replicated(&leader, &groups, written).await;
    for n in &nodes {
        n.shutdown().await;
    }
    samples
}

/// Initializes `group` on the first node and returns its leader once a quorum
/// has acknowledged it (before that, writes are refused).
async fn elect(nodes: &[RaftNode], group: GroupId) -> FjordRaft {
    let members: BTreeMap<u64, openraft::BasicNode> = nodes.iter().map(|n| (n.id(), n.node())).collect();
    let first = nodes[0].group(group).expect("group on node 1").raft().clone();
    first.initialize(members).await.expect("initialize");
    // Stand at once rather than after a whole election timeout.
    first.trigger().elect(false).await.expect("trigger election");
    let m = first.wait(Some(SETTLE)).metrics(|m| m.current_leader.is_some(), "a leader").await.expect("a leader");
    let leader = nodes.iter().find(|n| Some(n.id()) == m.current_leader).expect("the leader is one of the nodes");
    let raft = leader.group(group).expect("group on the leader").raft().clone();
    raft.wait(Some(SETTLE)).metrics(|m| m.last_quorum_acked.is_some(), "quorum acked").await.expect("quorum acked");
    raft
}

/// `writers` tasks, each with one write in flight, for the warm-up plus the
/// measured window. Returns the sample and how many writes succeeded in all.
async fn drive(leader: &FjordRaft, batch: &KafkaBatch, replicas: u64, writers: usize, plan: &Plan) -> (Sample, u64) {
    let started = Instant::now();
    let (window_start, window_end) = (started + plan.warmup, started + plan.warmup + plan.measure);
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (raft, batch) = (leader.clone(), batch.clone());
            tokio::spawn(async move {
                let mut latency_us = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).expect("histogram bounds");
                let (mut measured, mut total) = (0u64, 0u64);
                loop {
                    let call = Instant::now();
                    if call >= window_end {
                        break;
                    }
                    raft.client_write(batch.clone()).await.expect("client_write on the leader");
                    let done = Instant::now();
                    total += 1;
                    if done >= window_start && done < window_end {
                        latency_us.saturating_record(done.duration_since(call).as_micros() as u64);
                        measured += 1;
                    }
                }
                (latency_us, measured, total)
            })
        })
        .collect();
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).expect("histogram bounds");
    let (mut batches, mut total) = (0, 0);
    for t in tasks {
        let (h, measured, all) = t.await.expect("writer task");
        latency_us.add(&h).expect("histograms with the same bounds");
        batches += measured;
        total += all;
    }
    (Sample { replicas, writers, batches, secs: plan.measure.as_secs_f64(), latency_us }, total)
}

/// Every replica applied every write: the high watermark counts their records.
async fn assert_replicated(leader: &FjordRaft, groups: &[Arc<Group>], written: u64) {
    let committed = leader.metrics().borrow_watched().cluster_committed.expect("something committed");
    let records = (written * RECORDS_PER_BATCH as u64) as i64;
    for g in groups {
        g.raft().wait(Some(SETTLE)).applied_index_at_least(Some(committed.index), "caught up").await.expect("replica caught up");
        assert_eq!(*g.high_watermark().borrow(), records, "replica of {} holds every record written", g.id());
    }
}

fn print_table(samples: &[Sample], batch_bytes: usize) {
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!();
    println!("replicas  writers  batches/s    MB/s   p50 ms   p99 ms  p99.9 ms   max ms");
    for s in samples {
        let per_sec = s.batches as f64 / s.secs;
        let h = &s.latency_us;
        println!(
            "{:>8}  {:>7}  {:>9.0}  {:>6.1}  {:>7.2}  {:>7.2}  {:>8.2}  {:>7.2}",
            s.replicas,
            s.writers,
            per_sec,
            per_sec * batch_bytes as f64 / 1e6,
            ms(h, 0.5),
            ms(h, 0.99),
            ms(h, 0.999),
            h.max() as f64 / 1000.0,
        );
        assert!(s.batches > 0, "{} replicas, {} writers: no write completed in the window", s.replicas, s.writers);
    }
}
