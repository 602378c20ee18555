//! `fjord bench`'s command line, in the shape of an OpenMessaging Benchmark
//! workload: topics, partitions, record size, clients, rate, acks,
//! compression, and a window bounded by time or by records.

use std::time::Duration;

use clap::{Args, ValueEnum};
use kafka_protocol::records::Compression;

#[derive(Args, Debug, Clone)]
#[command(about = "Load-test any Kafka-compatible broker: throughput, publish and end-to-end latency")]
pub struct BenchArgs {
    /// Brokers to bootstrap from: HOST:PORT[,HOST:PORT...]
    #[arg(long, value_name = "HOST:PORT,...", default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Created topics are named PREFIX-<random>-<n>, and deleted at the end.
    #[arg(long, default_value = "fjord-bench")]
    pub topic_prefix: String,
    /// How many topics to create.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub topics: u32,
    /// Partitions per created topic.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub partitions: i32,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i16).range(1..=100))]
    pub replication_factor: i16,
    /// Use this existing topic (all its partitions) instead of creating topics.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["topics", "topic_config"])]
    pub topic: Option<String>,
    /// A config for the created topics (repeatable): --topic-config min.insync.replicas=2
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub topic_config: Vec<(String, String)>,
    /// Bytes of each record's value (no key).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub record_size: u64,
    /// Producer clients, each with its own connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub producers: u32,
    /// Consumer clients; the partitions are divided among them. With
    /// --producers 0 they read --topic from its earliest offset.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub consumers: u32,
    /// Records per second over all producers; 0 is as fast as the broker acknowledges.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// all (or -1), 1 or 0.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
    #[arg(long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,
    /// Bytes per partition batch (batch.size).
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub batch_size: u64,
    /// How long a batch waits for more records (linger.ms).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Produce requests in flight per broker connection.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_in_flight: u64,
    /// Length of the measured window (after warm-up): 30s, 500ms, 2m.
    #[arg(long, value_parser = parse_duration, conflicts_with = "records")]
    pub duration: Option<Duration>,
    /// Or bound the measured window by records produced (consumed with --producers 0).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: Option<u64>,
    /// Load before the measured window, reported apart (not with --producers 0).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Reporting interval of the progress line and the JSON rows.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Draw throughput.png and latency.png into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<std::path::PathBuf>,
    /// Leave the created topics in place.
    #[arg(long)]
    pub keep_topics: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn compression(self) -> Compression {
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("acks must be all, -1, 1 or 0, not {s:?}")),
    }
}

/// `250ms`, `5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("expected a duration like 30s or 500ms, got {s:?}"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?}: use ms, s, m or h")),
    };
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn acks() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("1"), Ok(1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert!(parse_acks("2").is_err());
    }
}
