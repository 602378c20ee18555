//! Gauges read from broker state at scrape time, and the counters other
//! crates keep as plain atomics (raft elections, the transport, tiered
//! storage), copied into the registry just before it is encoded.
//!
//! Reading at scrape time keeps these off every hot path: a partition's
//! leadership or a group's lag costs nothing until someone asks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::{counter_vec, gauge, gauge_vec, metrics};
use crate::Broker;
use crate::cluster::Cluster;
use crate::group::classic::State;

/// The scrape-time families. Refreshes are serialised by `lock`, so the
/// copies of monotonic atomics into counters never race.
pub(crate) struct Gauges {
    lock: tokio::sync::Mutex<()>,
    partitions: IntGauge,
    leaders: IntGauge,
    under_replicated: IntGauge,
    under_min_isr: IntGauge,
    offline: IntGauge,
    active_controller: IntGauge,
    elections: IntCounterVec,
    elections_won: IntCounterVec,
    leader_changes: IntCounterVec,
    groups: IntGaugeVec,
    group_lag: IntGaugeVec,
    remote_upload_bytes: IntCounter,
    remote_download_bytes: IntCounter,
    remote_segments_uploaded: IntCounter,
    remote_upload_failures: IntCounter,
    remote_download_failures: IntCounter,
    remote_delete_failures: IntCounter,
    replication_bytes_out: IntCounterVec,
    replication_bytes_in: IntCounterVec,
    transport_stalls: IntCounterVec,
    /// Peers seen, so a counter is only ever raised (never reset by a
    /// peer that left the stats map).
    peers_seen: Mutex<BTreeMap<u64, ()>>,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help)).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

/// Raises a counter to `value`, a monotonic count kept elsewhere.
fn raise(c: &IntCounter, value: u64) {
    let current = c.get();
    if value > current {
        c.inc_by(value - current);
    }
}

impl Gauges {
    pub(crate) fn new(r: &Registry) -> Self {
        Self {
            lock: tokio::sync::Mutex::new(()),
            partitions: gauge(r, "fjord_partitions", "Partition replicas this broker hosts."),
            leaders: gauge(r, "fjord_leader_partitions", "Partitions this broker leads."),
            under_replicated: gauge(
                r,
                "fjord_under_replicated_partitions",
                "Partitions this broker leads with a replica out of sync: not caught up with the leader's log within replica.lag.time.max.ms.",
            ),
            under_min_isr: gauge(
                r,
                "fjord_under_min_isr_partitions",
                "Partitions this broker leads whose in-sync replicas are fewer than min.insync.replicas.",
            ),
            offline: gauge(
                r,
                "fjord_offline_partitions",
                "Partitions without a live leader; reported by the active controller only (0 elsewhere), as Kafka does.",
            ),
            active_controller: gauge(r, "fjord_active_controller", "1 on the node that leads the metadata quorum, else 0."),
            elections: counter_vec(
                r,
                "fjord_raft_elections_total",
                "Raft elections seen (new terms) on the groups this node hosts: partitions, or the metadata quorum.",
                &["group"],
            ),
            elections_won: counter_vec(r, "fjord_raft_elections_won_total", "Raft elections this node won.", &["group"]),
            leader_changes: counter_vec(
                r,
                "fjord_raft_leader_changes_total",
                "Leader changes this node saw on the raft groups it hosts.",
                &["group"],
            ),
            groups: gauge_vec(r, "fjord_consumer_groups", "Consumer groups this broker coordinates, by state.", &["state"]),
            group_lag: gauge_vec(
                r,
                "fjord_consumer_group_lag",
                "Committed-offset lag (high watermark minus committed offset) of the groups this broker coordinates, \
                 for partitions it hosts a replica of.",
                &["group", "topic", "partition"],
            ),
            remote_upload_bytes: counter(
                r,
                "fjord_remote_upload_bytes_total",
                "Bytes of segments and manifests written to the object store.",
            ),
            remote_download_bytes: counter(
                r,
                "fjord_remote_download_bytes_total",
                "Bytes read from the object store (cache hits excluded).",
            ),
            remote_segments_uploaded: counter(r, "fjord_remote_segments_uploaded_total", "Segments uploaded to the object store."),
            remote_upload_failures: counter(r, "fjord_remote_upload_failures_total", "Segment uploads that failed."),
            remote_download_failures: counter(r, "fjord_remote_download_failures_total", "Reads from the object store that failed."),
            remote_delete_failures: counter(r, "fjord_remote_delete_failures_total", "Remote segment deletions that failed."),
            replication_bytes_out: counter_vec(
                r,
                "fjord_replication_bytes_out_total",
                "Bytes this node's raft transport sent to a peer (replication, votes, metadata).",
                &["peer"],
            ),
            replication_bytes_in: counter_vec(
                r,
                "fjord_replication_bytes_in_total",
                "Bytes this node's raft transport received from a peer.",
                &["peer"],
            ),
            transport_stalls: counter_vec(
                r,
                "fjord_raft_transport_stalls_total",
                "Raft connections dropped and redialled because the peer went silent while owing an answer.",
                &["peer"],
            ),
            peers_seen: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Brings every scrape-time family up to date for a broker.
pub async fn refresh_broker(broker: &Broker) {
    let g = &metrics().gauges;
    let _serial = g.lock.lock().await;
    let image = broker.metadata.image();
    let lag_max = Duration::from_millis(broker.config.cluster.replica_lag_time_max_ms);
    let hosted = broker.partitions.all();
    let (mut leaders, mut under_replicated, mut under_min_isr) = (0, 0, 0);
    for p in &hosted {
        let Some((mut in_sync, voters)) = p.in_sync_replicas(lag_max) else { continue };
        leaders += 1;
        // A broker the controller has fenced is out of every ISR at once, as
        // in Kafka, before its replica's lag runs out.
        if !image.brokers.is_empty() {
            in_sync.retain(|b| image.is_live(*b));
        }
        let in_sync = in_sync.len();
        let assigned = image.topic(&p.topic).and_then(|t| t.replicas.get(p.index as usize)).map_or(voters, Vec::len);
        if in_sync < assigned.max(voters) {
            under_replicated += 1;
        }
        if (in_sync as i64) < i64::from(p.config().min_insync_replicas) {
            under_min_isr += 1;
        }
    }
    g.partitions.set(hosted.len() as i64);
    g.leaders.set(leaders);
    g.under_replicated.set(under_replicated);
    g.under_min_isr.set(under_min_isr);
    refresh_quorum(&broker.cluster);
    refresh_groups(broker).await;
    if let Some(store) = &broker.remote {
        let s = store.stats().snapshot();
        raise(&g.remote_upload_bytes, s.bytes_uploaded);
        raise(&g.remote_download_bytes, s.bytes_downloaded);
        raise(&g.remote_segments_uploaded, s.segments_uploaded);
        raise(&g.remote_upload_failures, s.upload_failures);
        raise(&g.remote_download_failures, s.download_failures);
        raise(&g.remote_delete_failures, s.delete_failures);
    }
    metrics().forget_topics_except(|t| image.topic(t).is_some());
}

/// What every quorum member has: the controller role, offline partitions
/// (on the active controller), elections and the raft transport.
pub fn refresh_quorum(cluster: &Cluster) {
    let g = &metrics().gauges;
    let active = cluster.metadata.is_controller();
    g.active_controller.set(i64::from(active));
    let offline = if active {
        let image = cluster.metadata.image();
        image
            .topics
            .values()
            .flat_map(|t| (0..t.partition_count()).map(move |i| t.state(i).map_or(-1, |s| s.leader)))
            .filter(|&leader| leader < 0 || !image.is_live(leader))
            .count()
    } else {
        0
    };
    g.offline.set(offline as i64);
    let stats = cluster.node.election_stats();
    for (label, metadata) in [("partition", false), ("metadata", true)] {
        let c = stats.counts(metadata);
        raise(&g.elections.with_label_values(&[label]), c.elections_started);
        raise(&g.elections_won.with_label_values(&[label]), c.elections_won);
        raise(&g.leader_changes.with_label_values(&[label]), c.leader_changes);
    }
    let mut seen = g.peers_seen.lock().expect("peers lock");
    for (peer, s) in cluster.node.peer_stats() {
        seen.insert(peer, ());
        let label = peer.to_string();
        raise(&g.replication_bytes_out.with_label_values(&[&label]), s.bytes_sent);
        raise(&g.replication_bytes_in.with_label_values(&[&label]), s.bytes_received);
        raise(&g.transport_stalls.with_label_values(&[&label]), s.stalls);
    }
}

/// Groups by state and their lag, over the `__consumer_offsets` partitions
/// this broker leads. Lag needs a high watermark, which only a replica of
/// the partition knows; partitions hosted elsewhere are left out.
async fn refresh_groups(broker: &Broker) {
    let g = &metrics().gauges;
    let mut by_state: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut lags: Vec<(String, String, i32, i64)> = Vec::new();
    for index in broker.groups.led_partitions() {
        let Ok(locked) = broker.groups.lock_shard(index).await else { continue };
        let state = &locked.state;
        for group in state.groups.values().filter(|g| g.state != State::Dead) {
            *by_state.entry(group.state.as_str()).or_default() += 1;
        }
        // Groups that only commit offsets (assign(), no membership) are Empty groups to Kafka.
        let offsets_only = state.offsets.groups().filter(|id| !state.groups.contains_key(*id)).count();
        *by_state.entry(State::Empty.as_str()).or_default() += offsets_only as i64;
        for id in state.offsets.groups() {
            for ((topic, partition), committed) in state.offsets.of_group(id) {
                if let Some(p) = broker.partitions.get(topic, *partition) {
                    let lag = (p.high_watermark() - committed.value.offset).max(0);
                    lags.push((id.clone(), topic.clone(), *partition, lag));
                }
            }
        }
    }
    g.groups.reset();
    for state in [State::Empty, State::PreparingRebalance, State::CompletingRebalance, State::Stable] {
        g.groups.with_label_values(&[state.as_str()]).set(by_state.get(state.as_str()).copied().unwrap_or(0));
    }
    g.group_lag.reset();
    for (group, topic, partition, lag) in lags {
        g.group_lag.with_label_values(&[&group, &topic, &partition.to_string()]).set(lag);
    }
}
