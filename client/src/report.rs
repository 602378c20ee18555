//! The results file `fjord bench --output` writes: the workload, a summary
//! over the measured window, and one row per reporting interval. The plots
//! and `benches/compare` read it back, so its field names are a contract.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    /// `fjord bench` version and the arguments it ran with.
    pub tool: String,
    pub workload: Workload,
    /// Seconds since the Unix epoch at the start of the measured window.
    pub started_at_unix_s: f64,
    pub summary: Summary,
    /// One row per interval (1 s unless `--interval` says otherwise), warm-up included,
    /// marked by `warmup`.
    pub intervals: Vec<Interval>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workload {
    pub bootstrap_servers: String,
    pub topics: Vec<String>,
    pub partitions_per_topic: i32,
    pub replication_factor: i16,
    pub record_size: usize,
    pub producers: usize,
    pub consumers: usize,
    /// Records per second over all producers; 0 means as fast as acks allow.
    pub target_rate: u64,
    pub acks: i16,
    pub compression: String,
    pub batch_size: usize,
    pub linger_ms: u64,
    pub warmup_s: f64,
    /// Either a duration or a record count bounds the measured window.
    pub duration_s: Option<f64>,
    pub records: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Seconds in the measured window (after warm-up).
    pub duration_s: f64,
    pub publish: Throughput,
    pub consume: Throughput,
    /// Send (enqueue in the producer) to acknowledgement, per record.
    pub publish_latency_ms: Percentiles,
    /// Send to the consumer receiving it, per record (same host's clock).
    /// Records still arriving after the window closes count here (their
    /// latency is part of the run) but not in `consume`'s throughput, so
    /// `count` may exceed `consume.records`.
    pub end_to_end_latency_ms: Percentiles,
    /// Records the broker refused or that timed out.
    pub publish_errors: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Throughput {
    pub records: u64,
    /// Record value and key bytes, as kafka-producer-perf-test counts them.
    pub bytes: u64,
    pub records_per_s: f64,
    /// 2^20 bytes per second, as Kafka's perf tools report MB/s.
    pub mb_per_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples; 0 means the other fields carry no information.
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Interval {
    /// Seconds since the bench started (warm-up included) at the end of this interval.
    pub t_s: f64,
    pub warmup: bool,
    pub publish_records_per_s: f64,
    pub publish_mb_per_s: f64,
    pub consume_records_per_s: f64,
    pub consume_mb_per_s: f64,
    pub publish_latency_ms: Percentiles,
    pub end_to_end_latency_ms: Percentiles,
    pub publish_errors: u64,
}
