//! Heartbeats: each broker tells the active controller, every
//! `broker.heartbeat.interval.ms` and at once when something changed, who it
//! is (its registration: incarnation, rack, endpoints, raft address) and the
//! partitions it leads (term, voters, ISR). The controller turns what is new
//! into metadata records: a registration, an unfencing, a partition's new
//! leader or ISR, a finished reassignment. So every broker's image knows
//! every partition's leader, which is what Metadata answers with.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openraft::BasicNode;
use openraft::async_runtime::watch::WatchReceiver;
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::control::{ControlRequest, ControlResponse, call_controller};
use crate::metadata::records::BrokerEndpoint;
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord, TopicId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: i32,
    pub incarnation: String,
    pub rack: Option<String>,
    pub endpoints: Vec<BrokerEndpoint>,
    pub raft_addr: String,
    pub controller: bool,
    pub leaders: Vec<LeaderReport>,
    /// The broker's last heartbeat before a controlled shutdown: fence it now.
    #[serde(default)]
    pub shutting_down: bool,
}

/// One partition this broker leads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderReport {
    pub topic_id: TopicId,
    pub partition: i32,
    /// The raft term.
    pub epoch: i32,
    pub isr: Vec<i32>,
    pub voters: Vec<i32>,
}

/// How often the loop looks for changes to report.
const SAMPLE: Duration = Duration::from_millis(250);

/// This broker's heartbeat as of now.
pub fn build(cluster: &Cluster) -> Heartbeat {
    let config = &cluster.config;
    let endpoints = config
        .advertised_listeners
        .iter()
        .map(|l| BrokerEndpoint { name: l.name.clone(), host: l.host.clone(), port: l.port, security_protocol: l.security_protocol as i16 })
        .collect();
    let lag = Duration::from_millis(config.cluster.replica_lag_time_max_ms);
    let mut leaders: Vec<LeaderReport> =
        cluster.partitions().map(|p| p.all().iter().filter_map(|p| p.leader_report(lag)).collect()).unwrap_or_default();
    leaders.sort_by_key(|a| (a.topic_id, a.partition));
    Heartbeat {
        id: config.node_id,
        incarnation: cluster.incarnation.clone(),
        rack: config.broker_rack.clone(),
        endpoints,
        raft_addr: cluster.node.node().addr,
        controller: config.is_controller(),
        leaders,
        shutting_down: cluster.shutting_down.load(Ordering::SeqCst),
    }
}

/// The broker's side: runs for the broker's lifetime.
pub async fn run(cluster: Arc<Cluster>) {
    let interval = Duration::from_millis(cluster.config.cluster.heartbeat_interval_ms);
    let mut sent: Option<(Heartbeat, Instant)> = None;
    let mut failing_since: Option<Instant> = None;
    loop {
        let hb = build(&cluster);
        let due = sent.as_ref().is_none_or(|(last, at)| *last != hb || at.elapsed() >= interval);
        if due {
            match call_controller(&cluster, &ControlRequest::Heartbeat(hb.clone())).await {
                Ok(ControlResponse::Done) if hb.shutting_down => {
                    tracing::info!("controlled shutdown: the controller has fenced this broker");
                    cluster.farewell_sent.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(ControlResponse::Done) => {
                    sent = Some((hb, Instant::now()));
                    if failing_since.take().is_some() {
                        tracing::info!("heartbeats reach the controller again");
                    }
                }
                other => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    // Once at the start of a streak, then every 10 s of it.
                    if since.elapsed() < SAMPLE || since.elapsed().as_millis() % 10_000 < SAMPLE.as_millis() {
                        tracing::warn!("heartbeat not accepted: {other:?}; retrying");
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE) => {}
            _ = cluster.report_now.notified() => {}
        }
    }
}

/// The controller's side: records what is new in `hb`.
pub async fn serve(cluster: &Arc<Cluster>, hb: Heartbeat) -> Result<(), MetadataError> {
    cluster.liveness.heard(hb.id);
    if !hb.controller && !hb.shutting_down {
        ensure_learner(cluster, &hb).await;
    }
    cluster.metadata.write(|image| Ok::<_, MetadataError>((records_for(image, &hb), ()))).await?;
    Ok(())
}

/// A broker that is not a voter follows the metadata log as a raft learner.
async fn ensure_learner(cluster: &Cluster, hb: &Heartbeat) {
    let raft = cluster.metadata.group().raft();
    let known = raft.metrics().borrow_watched().membership_config.membership().get_node(&(hb.id as u64)).is_some();
    if known {
        return;
    }
    tracing::info!(broker = hb.id, addr = %hb.raft_addr, "adding the broker to the metadata group as a learner");
    cluster.node.set_peer_address(hb.id as u64, &hb.raft_addr);
    if let Err(e) = raft.add_learner(hb.id as u64, BasicNode::new(&hb.raft_addr), false).await {
        tracing::warn!(broker = hb.id, "could not add the broker as a metadata learner: {e}");
    }
}

/// The records that bring `image` in line with `hb`.
pub fn records_for(image: &MetadataImage, hb: &Heartbeat) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    match image.brokers.get(&hb.id) {
        // Going away: fenced at once, and its reports no longer count.
        Some(b) if hb.shutting_down => {
            if b.incarnation == hb.incarnation && !b.fenced {
                out.push(MetadataRecord::BrokerFenced { id: hb.id, fenced: true });
            }
            return out;
        }
        None if hb.shutting_down => return out,
        Some(b)
            if b.incarnation == hb.incarnation
                && b.rack == hb.rack
                && b.endpoints == hb.endpoints
                && b.raft_addr == hb.raft_addr
                && b.controller == hb.controller =>
        {
            if b.fenced {
                out.push(MetadataRecord::BrokerFenced { id: hb.id, fenced: false });
            }
        }
        _ => out.push(MetadataRecord::RegisterBroker {
            id: hb.id,
            incarnation: hb.incarnation.clone(),
            rack: hb.rack.clone(),
            endpoints: hb.endpoints.clone(),
            raft_addr: hb.raft_addr.clone(),
            controller: hb.controller,
        }),
    }
    for r in &hb.leaders {
        let Some(topic) = image.topic_by_id(&r.topic_id) else { continue };
        let (Some(state), Some(replicas)) = (topic.state(r.partition), topic.replicas.get(r.partition as usize)) else { continue };
        if !replicas.contains(&hb.id) {
            continue;
        }
        let newer = r.epoch > state.leader_epoch || (r.epoch == state.leader_epoch && (state.leader != hb.id || state.isr != r.isr));
        if newer {
            out.push(MetadataRecord::PartitionLeader {
                id: r.topic_id,
                partition: r.partition,
                leader: hb.id,
                epoch: r.epoch,
                isr: r.isr.clone(),
            });
        }
        if state.reassigning() {
            let mut voters = r.voters.clone();
            let mut target = topic.target(r.partition);
            voters.sort_unstable();
            target.sort_unstable();
            if voters == target {
                out.push(MetadataRecord::ReassignDone { id: r.topic_id, partition: r.partition });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn hb(id: i32, leaders: Vec<LeaderReport>) -> Heartbeat {
        Heartbeat {
            id,
            incarnation: "a".into(),
            rack: Some("az1".into()),
            endpoints: vec![],
            raft_addr: "127.0.0.1:1".into(),
            controller: true,
            leaders,
            shutting_down: false,
        }
    }

    #[test]
    fn only_news_become_records() {
        let mut img = MetadataImage::default();
        let first = records_for(&img, &hb(1, vec![]));
        assert!(matches!(first.as_slice(), [MetadataRecord::RegisterBroker { id: 1, .. }]));
        for r in &first {
            img.apply(r);
        }
        assert!(records_for(&img, &hb(1, vec![])).is_empty(), "nothing new");
        img.apply(&MetadataRecord::BrokerFenced { id: 1, fenced: true });
        assert_eq!(records_for(&img, &hb(1, vec![])), vec![MetadataRecord::BrokerFenced { id: 1, fenced: false }]);
        img.apply(&MetadataRecord::BrokerFenced { id: 1, fenced: false });
        let mut restarted = hb(1, vec![]);
        restarted.incarnation = "b".into();
        assert!(matches!(records_for(&img, &restarted).as_slice(), [MetadataRecord::RegisterBroker { .. }]));

        let id = TopicId::random();
        img.apply(&MetadataRecord::Topic { name: "t".into(), id, replicas: vec![vec![1, 2, 3]], configs: BTreeMap::new() });
        let report = LeaderReport { topic_id: id, partition: 0, epoch: 2, isr: vec![1, 2, 3], voters: vec![1, 2, 3] };
        let recs = records_for(&img, &hb(1, vec![report.clone()]));
        assert_eq!(recs.len(), 1);
        img.apply(&recs[0]);
        assert!(records_for(&img, &hb(1, vec![report.clone()])).is_empty());
        // A broker that is not a replica cannot claim the partition; an old term changes nothing.
        assert!(records_for(&img, &hb(9, vec![report.clone()])).iter().all(|r| !matches!(r, MetadataRecord::PartitionLeader { .. })));
        let old = LeaderReport { epoch: 1, ..report.clone() };
        assert!(records_for(&img, &hb(2, vec![old])).iter().all(|r| !matches!(r, MetadataRecord::PartitionLeader { .. })));
        // Reassignment: done once the voters are the target.
        img.apply(&MetadataRecord::Reassign { id, partition: 0, target: vec![4, 2, 3] });
        assert!(records_for(&img, &hb(1, vec![report.clone()])).is_empty());
        let moved = LeaderReport { voters: vec![2, 3, 4], ..report };
        assert!(records_for(&img, &hb(1, vec![moved.clone()])).contains(&MetadataRecord::ReassignDone { id, partition: 0 }));

        // The last heartbeat of a controlled shutdown fences, once, and reports nothing.
        let going = Heartbeat { shutting_down: true, ..hb(1, vec![moved]) };
        assert_eq!(records_for(&img, &going), vec![MetadataRecord::BrokerFenced { id: 1, fenced: true }]);
        img.apply(&MetadataRecord::BrokerFenced { id: 1, fenced: true });
        assert!(records_for(&img, &going).is_empty());
        // An older incarnation saying goodbye does not fence the new one.
        img.apply(&MetadataRecord::BrokerFenced { id: 1, fenced: false });
        assert!(records_for(&img, &Heartbeat { incarnation: "old".into(), ..going.clone() }).is_empty());
        assert!(records_for(&img, &Heartbeat { id: 7, ..going }).is_empty());
    }
}
