//! Moving leaders and replicas.
//!
//! - **Reassignment**: a partition's leader drives the raft voters to the
//!   partition's target replicas (`TopicImage::target`): new replicas join
//!   as learners and catch up, then one membership change (joint consensus)
//!   makes the target the voters; a leader that is leaving hands leadership
//!   to an in-sync target replica first. Its next heartbeat reports the new
//!   voters and the controller records the reassignment as done.
//! - **Preferred leaders**: the first replica of a partition is its
//!   preferred leader. With `auto.leader.rebalance.enable`, every
//!   `leader.imbalance.check.interval.seconds` each broker hands the
//!   partitions it leads back to their preferred replica when that broker
//!   leads less than `100 - leader.imbalance.per.broker.percentage` % of the
//!   partitions that prefer it, is alive and in sync (Kafka's rule).
//!   ElectLeaders does the same for the partitions it names, at once.
//!
//! Leadership moves with raft's TransferLeader: the leader stops accepting
//! writes and tells the target to stand for election at once, so no
//! acknowledged write is lost and the gap is one election round trip.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::BasicNode;
use openraft::async_runtime::watch::WatchReceiver;

use super::Cluster;
use super::control::{ControlRequest, ControlResponse, call};
use crate::metadata::{MetadataImage, TopicId};
use crate::partition::Partition;

/// How often the leader compares voters with the target replicas.
const RECONCILE_EVERY: Duration = Duration::from_millis(500);
/// How long a new replica may take to catch up before the leader retries.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs on every broker for its lifetime.
pub async fn run(cluster: Arc<Cluster>) {
    let moving: Arc<Mutex<HashSet<(TopicId, i32)>>> = Arc::default();
    let mut last_balance = Instant::now();
    let balance_every = Duration::from_millis(cluster.config.cluster.imbalance_check_interval_ms);
    loop {
        tokio::time::sleep(RECONCILE_EVERY).await;
        if cluster.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let Some(partitions) = cluster.partitions() else { continue };
        let image = cluster.metadata.image();
        for p in partitions.all() {
            if p.is_leader() {
                reconcile_voters(&cluster, &image, &p, &moving);
            }
        }
        if cluster.config.cluster.auto_leader_rebalance && last_balance.elapsed() >= balance_every {
            last_balance = Instant::now();
            rebalance(&cluster, &image, &partitions.all()).await;
        }
    }
}

/// Starts moving `p`'s voters to its target replicas if they differ.
fn reconcile_voters(cluster: &Arc<Cluster>, image: &MetadataImage, p: &Arc<Partition>, moving: &Arc<Mutex<HashSet<(TopicId, i32)>>>) {
    let Some(topic) = image.topic_by_id(&p.topic_id) else { return };
    let target: BTreeSet<u64> = topic.target(p.index).into_iter().map(|b| b as u64).collect();
    let voters: BTreeSet<u64> = p.voters().into_iter().map(|b| b as u64).collect();
    if target.is_empty() || target == voters {
        return;
    }
    // Every target replica must be registered, so its raft address is known.
    let Some(nodes) =
        target.iter().map(|b| image.brokers.get(&(*b as i32)).map(|r| (*b, r.raft_addr.clone()))).collect::<Option<Vec<(u64, String)>>>()
    else {
        return;
    };
    let key = (p.topic_id, p.index);
    if !moving.lock().expect("moving lock").insert(key) {
        return;
    }
    let (cluster, p, moving) = (Arc::clone(cluster), Arc::clone(p), Arc::clone(moving));
    let isr: Vec<i32> = topic.state(p.index).map(|s| s.isr.clone()).unwrap_or_default();
    tokio::spawn(async move {
        if let Err(e) = move_voters(&cluster, &p, &voters, &target, &nodes, &isr).await {
            tracing::warn!(topic = %p.topic, partition = p.index, "reassignment step failed (retrying): {e}");
        }
        moving.lock().expect("moving lock").remove(&key);
    });
}

async fn move_voters(
    cluster: &Cluster,
    p: &Partition,
    voters: &BTreeSet<u64>,
    target: &BTreeSet<u64>,
    nodes: &[(u64, String)],
    isr: &[i32],
) -> Result<(), String> {
    let me = cluster.node.id();
    let raft = p.group().raft();
    if !target.contains(&me) {
        // Leave the leading to a target replica that is already a voter and in sync.
        if let Some(next) = target.iter().find(|b| voters.contains(b) && isr.contains(&(**b as i32))) {
            tracing::info!(topic = %p.topic, partition = p.index, to = next, "leader is being reassigned away; transferring leadership");
            return raft.trigger().transfer_leader(*next).await.map_err(|e| e.to_string());
        }
    }
    let members = raft.metrics().borrow_watched().membership_config.membership().clone();
    for (id, addr) in nodes {
        if voters.contains(id) {
            continue;
        }
        cluster.node.set_peer_address(*id, addr);
        // An earlier attempt may have made it a learner already; adding it
        // again just waits for it to catch up.
        if members.get_node(id).is_none() {
            tracing::info!(topic = %p.topic, partition = p.index, replica = id, "adding a replica; waiting for it to catch up");
        }
        let caught_up = tokio::time::timeout(CATCH_UP_TIMEOUT, raft.add_learner(*id, BasicNode::new(addr), true)).await;
        match caught_up {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("adding replica {id}: {e}")),
            Err(_) => return Err(format!("replica {id} did not catch up within {CATCH_UP_TIMEOUT:?}")),
        }
    }
    tracing::info!(topic = %p.topic, partition = p.index, from = ?voters, to = ?target, "changing the partition's voters");
    raft.change_membership(target.clone(), false).await.map_err(|e| e.to_string())?;
    cluster.report_now.notify_one();
    Ok(())
}

/// Kafka's auto leader rebalance, for the partitions this broker leads.
async fn rebalance(cluster: &Arc<Cluster>, image: &MetadataImage, hosted: &[Arc<Partition>]) {
    let pct = f64::from(cluster.config.cluster.imbalance_percentage);
    for b in image.live_brokers() {
        let mut preferred = 0usize;
        let mut not_led = Vec::new();
        for t in image.topics.values() {
            for (i, replicas) in t.replicas.iter().enumerate() {
                let state = &t.partitions[i];
                if replicas.first() != Some(&b.id) || state.reassigning() {
                    continue;
                }
                preferred += 1;
                if state.leader != b.id && state.isr.contains(&b.id) {
                    not_led.push((t.id, i as i32));
                }
            }
        }
        if preferred == 0 || (not_led.len() as f64 * 100.0 / preferred as f64) <= pct {
            continue;
        }
        for (topic_id, index) in not_led {
            if let Some(p) = hosted.iter().find(|p| p.topic_id == topic_id && p.index == index && p.is_leader()) {
                tracing::info!(topic = %p.topic, partition = p.index, to = b.id, "moving leadership back to the preferred replica");
                if let Err(e) = p.group().raft().trigger().transfer_leader(b.id as u64).await {
                    tracing::warn!(topic = %p.topic, partition = p.index, "leader transfer: {e}");
                }
            }
        }
    }
}

/// Serves a TransferLeader control request for a partition hosted here.
pub async fn transfer_local(cluster: &Cluster, topic_id: TopicId, partition: i32, to: i32) -> Result<(), String> {
    let Some(partitions) = cluster.partitions() else { return Err("still starting".into()) };
    let p = partitions.all().into_iter().find(|p| p.topic_id == topic_id && p.index == partition).ok_or("partition not hosted here")?;
    if !p.is_leader() {
        return Err(format!("not the leader of {}-{}", p.topic, p.index));
    }
    if !p.voters().contains(&to) {
        return Err(format!("broker {to} is not a voter of {}-{}", p.topic, p.index));
    }
    p.group().raft().trigger().transfer_leader(to as u64).await.map_err(|e| e.to_string())
}

/// Why a preferred-leader election was not done (ElectLeaders' codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotElected {
    UnknownPartition,
    NotNeeded,
    PreferredUnavailable,
    TimedOut,
}

/// Makes the preferred replica of `topic`-`partition` its leader, waiting up
/// to `timeout` for the metadata to say so.
pub async fn elect_preferred(cluster: &Arc<Cluster>, topic: &str, partition: i32, timeout: Duration) -> Result<(), NotElected> {
    let image = cluster.metadata.image();
    let t = image.topic(topic).ok_or(NotElected::UnknownPartition)?;
    let (Some(replicas), Some(state)) = (usize::try_from(partition).ok().and_then(|p| t.replicas.get(p)), t.state(partition)) else {
        return Err(NotElected::UnknownPartition);
    };
    let preferred = replicas[0];
    if state.leader == preferred {
        return Err(NotElected::NotNeeded);
    }
    if !image.is_live(preferred) || !state.isr.contains(&preferred) || state.leader < 0 {
        return Err(NotElected::PreferredUnavailable);
    }
    let request = ControlRequest::TransferLeader { topic_id: t.id, partition, to: preferred };
    let addr = image.brokers.get(&state.leader).map(|b| b.raft_addr.clone());
    match call(cluster, state.leader as u64, addr.as_deref(), &request).await {
        Ok(ControlResponse::Done) => {}
        Ok(other) => {
            tracing::info!(topic, partition, "preferred leader election refused: {other:?}");
            return Err(NotElected::PreferredUnavailable);
        }
        Err(e) => {
            tracing::info!(topic, partition, "preferred leader election: {e}");
            return Err(NotElected::PreferredUnavailable);
        }
    }
    let id = t.id;
    let mut images = cluster.metadata.subscribe();
    let elected =
        move |img: &Arc<MetadataImage>| img.topic_by_id(&id).and_then(|t| t.state(partition)).is_some_and(|s| s.leader == preferred);
    match tokio::time::timeout(timeout, images.wait_for(elected)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(NotElected::TimedOut),
    }
}
