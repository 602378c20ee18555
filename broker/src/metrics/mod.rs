//! Prometheus metrics: what the broker counts and where `/metrics` serves it.
//!
//! - this file: every metric family, in one process-wide registry, as
//!   Kafka keeps its Yammer metrics in one default registry. Hot paths hold
//!   handles resolved once ([`TopicCounters`] per partition, [`ApiTimer`]
//!   per API key), so counting costs an atomic add and no label lookup.
//! - [`scrape`]: the gauges read from broker state when Prometheus scrapes
//!   (partition and leader counts, under-replicated and offline partitions,
//!   groups and their lag, raft elections, tiered storage and replication
//!   traffic).
//! - [`http`]: the endpoint (`metrics.listener`): `GET /metrics`, `GET /ready`.
//!
//! Names follow Prometheus conventions (`fjord_` prefix, `_total` counters,
//! `_seconds`, `_bytes`); README.md maps each to the Kafka JMX metric it
//! stands for.

pub mod http;
pub mod names;
pub mod scrape;

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Request and commit latencies: 100 µs to about 52 s, doubling. Kafka's
/// requests span both ends: an ApiVersions in microseconds, a long-polled
/// Fetch in `fetch.max.wait.ms`.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0001, 2.0, 20).expect("valid buckets")
}

/// Every family, registered once.
pub struct Metrics {
    pub registry: Registry,
    topic_bytes_in: IntCounterVec,
    topic_messages_in: IntCounterVec,
    topic_bytes_out: IntCounterVec,
    topic_messages_out: IntCounterVec,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    request_errors: IntCounterVec,
    connections: IntGaugeVec,
    connections_accepted: IntCounterVec,
    failed_authentications: IntCounterVec,
    pub raft_commit_latency: Histogram,
    pub(crate) gauges: scrape::Gauges,
    /// Topics with counters, so a deleted topic's series can be dropped.
    topics: Mutex<HashSet<String>>,
    /// One timer per API key, resolved on first use.
    apis: [OnceLock<ApiTimer>; API_SLOTS],
}

/// API keys with a slot of their own; Kafka's go up to about 90.
const API_SLOTS: usize = 128;

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

pub(crate) fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

pub(crate) fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("registered once");
    g
}

pub(crate) fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::with_opts(Opts::new(name, help)).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("registered once");
    g
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "fjord_request_duration_seconds",
                "Time from reading a request to writing its response (queue, handling, waiting for acks or data, sending), by API.",
            )
            .buckets(latency_buckets()),
            &["api"],
        )
        .expect("valid metric");
        registry.register(Box::new(request_duration.clone())).expect("registered once");
        let raft_commit_latency = Histogram::with_opts(
            HistogramOpts::new(
                "fjord_raft_commit_latency_seconds",
                "Time from proposing a produced batch to raft until a quorum has it and it is applied (the acks=all wait).",
            )
            .buckets(latency_buckets()),
        )
        .expect("valid metric");
        registry.register(Box::new(raft_commit_latency.clone())).expect("registered once");
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("registered once");
        Self {
            topic_bytes_in: counter_vec(
                r,
                "fjord_topic_bytes_in_total",
                "Record batch bytes appended by producers, by topic (on the leader).",
                &["topic"],
            ),
            topic_messages_in: counter_vec(
                r,
                "fjord_topic_messages_in_total",
                "Records appended by producers, by topic (on the leader).",
                &["topic"],
            ),
            topic_bytes_out: counter_vec(
                r,
                "fjord_topic_bytes_out_total",
                "Record batch bytes returned to fetchers, by topic.",
                &["topic"],
            ),
            topic_messages_out: counter_vec(
                r,
                "fjord_topic_messages_out_total",
                "Records in the batches returned to fetchers, by topic.",
                &["topic"],
            ),
            requests: counter_vec(r, "fjord_requests_total", "Requests received, by API.", &["api"]),
            request_duration,
            request_errors: counter_vec(
                r,
                "fjord_request_errors_total",
                "Partition-level errors in Produce and Fetch responses (and Fetch's top-level error), by API and Kafka error name.",
                &["api", "error"],
            ),
            connections: gauge_vec(r, "fjord_connections", "Client connections open now, by listener.", &["listener"]),
            connections_accepted: counter_vec(
                r,
                "fjord_connections_accepted_total",
                "Client connections accepted, by listener.",
                &["listener"],
            ),
            failed_authentications: counter_vec(
                r,
                "fjord_failed_authentications_total",
                "Failed SASL logins and TLS handshakes, by listener.",
                &["listener"],
            ),
            raft_commit_latency,
            gauges: scrape::Gauges::new(r),
            topics: Mutex::new(HashSet::new()),
            apis: [const { OnceLock::new() }; API_SLOTS],
            registry,
        }
    }

    /// The counters of one topic, for a partition to keep.
    pub fn topic(&self, topic: &str) -> TopicCounters {
        self.topics.lock().expect("topics lock").insert(topic.to_string());
        TopicCounters {
            bytes_in: self.topic_bytes_in.with_label_values(&[topic]),
            messages_in: self.topic_messages_in.with_label_values(&[topic]),
            bytes_out: self.topic_bytes_out.with_label_values(&[topic]),
            messages_out: self.topic_messages_out.with_label_values(&[topic]),
        }
    }

    /// Drops the series of topics that no longer exist.
    pub(crate) fn forget_topics_except(&self, exists: impl Fn(&str) -> bool) {
        let mut topics = self.topics.lock().expect("topics lock");
        topics.retain(|t| {
            if exists(t) {
                return true;
            }
            for family in [&self.topic_bytes_in, &self.topic_messages_in, &self.topic_bytes_out, &self.topic_messages_out] {
                let _ = family.remove_label_values(&[t]);
            }
            false
        });
    }

    /// Counts a request of `api_key` arriving; the timer records its duration.
    pub fn request_started(&'static self, api_key: i16) -> RequestTimer {
        let api = usize::try_from(api_key).ok().filter(|k| *k < API_SLOTS).map(|k| {
            self.apis[k].get_or_init(|| {
                let name = names::api_name(api_key);
                ApiTimer {
                    requests: self.requests.with_label_values(&[&name]),
                    duration: self.request_duration.with_label_values(&[&name]),
                }
            })
        });
        if let Some(a) = api {
            a.requests.inc();
        }
        RequestTimer { started: Instant::now(), histogram: api.map(|a| &a.duration) }
    }

    /// Counts a non-zero error code in a response of `api`.
    pub fn request_error(&self, api: &str, code: i16) {
        debug_assert_ne!(code, 0);
        self.request_errors.with_label_values(&[api, &names::error_name(code)]).inc();
    }

    /// Counts an accepted connection; the guard counts it closed when dropped.
    pub fn connection_opened(&self, listener: &str) -> ConnectionGuard {
        self.connections_accepted.with_label_values(&[listener]).inc();
        let open = self.connections.with_label_values(&[listener]);
        open.inc();
        ConnectionGuard(open)
    }

    pub fn failed_authentication(&self, listener: &str) {
        self.failed_authentications.with_label_values(&[listener]).inc();
    }

    /// The whole registry in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!("encoding metrics: {e}");
        }
        out
    }
}

/// A topic's traffic counters (Kafka's `BrokerTopicMetrics` for one topic).
#[derive(Clone)]
pub struct TopicCounters {
    pub bytes_in: IntCounter,
    pub messages_in: IntCounter,
    pub bytes_out: IntCounter,
    pub messages_out: IntCounter,
}

impl TopicCounters {
    /// Counts whole record batches sent to a fetcher: their bytes, and
    /// their records from each batch header.
    pub fn fetched(&self, slices: &[bytes::Bytes]) {
        let (bytes, records) = slices.iter().fold((0u64, 0u64), |(b, r), s| (b + s.len() as u64, r + batch_records(s)));
        self.bytes_out.inc_by(bytes);
        self.messages_out.inc_by(records);
    }
}

/// Records in the v2 batches laid end to end in `data` (a read slice holds
/// whole batches); a torn tail counts nothing.
pub fn batch_records(data: &[u8]) -> u64 {
    const LENGTH_AT: usize = 8;
    const COUNT_AT: usize = 57;
    const HEADER: usize = 61;
    let mut at = 0;
    let mut records = 0u64;
    while data.len() >= at + HEADER {
        let length = i32::from_be_bytes(data[at + LENGTH_AT..at + LENGTH_AT + 4].try_into().expect("4 bytes"));
        let count = i32::from_be_bytes(data[at + COUNT_AT..at + COUNT_AT + 4].try_into().expect("4 bytes"));
        let Ok(length) = usize::try_from(length) else { break };
        records += u64::try_from(count).unwrap_or(0);
        at += 12 + length;
    }
    records
}

struct ApiTimer {
    requests: IntCounter,
    duration: Histogram,
}

/// Started when a request is read; [`RequestTimer::finish`] after its response is written.
pub struct RequestTimer {
    started: Instant,
    histogram: Option<&'static Histogram>,
}

impl RequestTimer {
    pub fn finish(self) {
        if let Some(h) = self.histogram {
            h.observe(self.started.elapsed().as_secs_f64());
        }
    }
}

/// Holds one open connection in `fjord_connections`.
pub struct ConnectionGuard(IntGauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: i32, payload: usize) -> Vec<u8> {
        let mut b = vec![0u8; 61 + payload];
        let length = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&length.to_be_bytes());
        b[57..61].copy_from_slice(&records.to_be_bytes());
        b
    }

    #[test]
    fn counts_records_across_batches_and_ignores_a_torn_tail() {
        let mut data = batch(3, 40);
        data.extend(batch(5, 0));
        assert_eq!(batch_records(&data), 8);
        data.extend(&batch(7, 10)[..30]);
        assert_eq!(batch_records(&data), 8);
        assert_eq!(batch_records(&[]), 0);
    }

    #[test]
    fn topic_series_go_with_their_topic() {
        let m = metrics();
        m.topic("metrics-unit-a").bytes_in.inc_by(10);
        m.topic("metrics-unit-b").bytes_in.inc_by(20);
        let text = m.encode();
        assert!(text.contains("fjord_topic_bytes_in_total{topic=\"metrics-unit-a\"} 10"), "{text}");
        m.forget_topics_except(|t| t != "metrics-unit-a");
        let text = m.encode();
        assert!(!text.contains("metrics-unit-a"), "{text}");
        assert!(text.contains("fjord_topic_bytes_in_total{topic=\"metrics-unit-b\"} 20"), "{text}");
    }

    #[test]
    fn requests_are_counted_and_timed_by_api_name() {
        let m = metrics();
        m.request_started(18).finish();
        m.request_error("Fetch", 6);
        let text = m.encode();
        assert!(text.contains("fjord_requests_total{api=\"ApiVersions\"}"), "{text}");
        assert!(text.contains("fjord_request_duration_seconds_bucket{api=\"ApiVersions\",le=\"0.0001\"}"), "{text}");
        assert!(text.contains("fjord_request_errors_total{api=\"Fetch\",error=\"NOT_LEADER_OR_FOLLOWER\"}"), "{text}");
        // An unknown key is counted nowhere rather than panicking.
        m.request_started(-1).finish();
        m.request_started(30000).finish();
    }
}
