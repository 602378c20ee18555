//! The metadata quorum as Kafka's DescribeQuorum shows it
//! (`kafka-metadata-quorum describe --status / --replication`): who leads
//! `__cluster_metadata-0`, in which term, and how far each voter and each
//! observer (a broker-only node, a raft learner here) has replicated.
//!
//! Only the group's leader (the active controller) knows its followers'
//! progress, so, as a Kafka broker forwards DescribeQuorum to the active
//! controller, [`describe`] asks the controller with a control RPC unless this
//! node is it; [`local`] is the controller's side. Stateless: each call reads
//! the raft metrics once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::Instant as _;
use openraft::async_runtime::watch::WatchReceiver;
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::control::{ControlRequest, ControlResponse, call_controller};
use crate::metadata::store::now_ms;

/// Kafka's `LeaderState.OBSERVER_SESSION_TIMEOUT_MS`: an observer not heard
/// from for this long is no longer listed.
const OBSERVER_SESSION_MS: u64 = 300_000;

/// What DescribeQuorum answers, as the active controller saw it. Offsets are
/// raft positions (index + 1), not Kafka offsets: the metadata log's raft
/// entries that carry no record (a new leader's blank entry, membership
/// changes) take an index but no offset, and only indexes are known for
/// followers. Timestamps are the controller's wall clock in epoch ms, -1 when
/// unknown (Kafka's convention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumState {
    pub leader_id: i32,
    /// The raft term.
    pub leader_epoch: i32,
    /// The committed raft index + 1: the position before which every entry
    /// is committed, as Kafka's high watermark is for its offsets.
    pub high_watermark: i64,
    /// Every voter, the leader included, by id.
    pub voters: Vec<ReplicaProgress>,
    /// The learners heard from within [`OBSERVER_SESSION_MS`], by id.
    pub observers: Vec<ReplicaProgress>,
    /// Each voter's controller listener (DescribeQuorum v2's `nodes`).
    pub endpoints: Vec<VoterEndpoint>,
}

/// One replica of the metadata log, as the leader tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaProgress {
    pub id: i32,
    /// The replica's matched raft index + 1 (the leader's last index + 1 for
    /// the leader); -1 if the leader does not know it yet.
    pub log_end_offset: i64,
    /// When the replica last acknowledged an append or heartbeat sent then.
    pub last_fetch_ms: i64,
    /// When the replica last held every committed entry.
    pub last_caught_up_ms: i64,
}

/// Where a voter's raft transport (its controller listener) listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterEndpoint {
    pub id: i32,
    /// The listener's name: `controller.listener.names`' first.
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// The quorum from the active controller: here if this node is it, else
/// over the control RPC. `Err` when no controller answers.
pub async fn describe(cluster: &Arc<Cluster>) -> Result<QuorumState, String> {
    match call_controller(cluster, &ControlRequest::DescribeQuorum).await? {
        ControlResponse::Quorum(q) => Ok(q),
        other => Err(format!("unexpected answer to DescribeQuorum: {other:?}")),
    }
}

/// The quorum as this node's raft sees it; `None` unless this node leads the
/// metadata group (only the leader tracks its followers).
pub fn local(cluster: &Cluster) -> Option<QuorumState> {
    let m = cluster.metadata.group().raft().metrics().borrow_watched().clone();
    let leader = m.current_leader.filter(|l| *l == m.id)?;
    let membership = m.membership_config.membership();
    let view = LeaderView {
        leader,
        term: m.current_term,
        last_index: m.last_log_index,
        committed_index: m.local_committed.map(|c| c.index),
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
        matched: m.replication.iter().flatten().map(|(id, log_id)| (*id, log_id.map(|l| l.index))).collect(),
        acked_ago: m.heartbeat.iter().flatten().map(|(id, at)| (*id, at.as_ref().map(|t| t.elapsed()))).collect(),
    };
    let endpoints =
        view.voters.iter().filter_map(|&id| voter_endpoint(cluster, id, membership.get_node(&id).map(|n| n.addr.as_str()))).collect();
    Some(view.state(now_ms(), endpoints))
}

/// Voter `id`'s controller listener: its `controller.quorum.voters` entry,
/// else the raft address it joined with, else its registration's.
fn voter_endpoint(cluster: &Cluster, id: u64, joined_with: Option<&str>) -> Option<VoterEndpoint> {
    let config = &cluster.config;
    let listener = config.controller_listener_names.first().cloned().unwrap_or_else(|| "CONTROLLER".to_string());
    let id = i32::try_from(id).ok()?;
    if let Some(v) = config.controller_quorum_voters.iter().find(|v| v.id == id) {
        return Some(VoterEndpoint { id, listener, host: v.host.clone(), port: v.port });
    }
    let registered = cluster.metadata.image().brokers.get(&id).map(|b| b.raft_addr.clone());
    let (host, port) = joined_with.and_then(split_host_port).or_else(|| registered.as_deref().and_then(split_host_port))?;
    Some(VoterEndpoint { id, listener, host, port })
}

/// `host:port` or `[v6]:port` into its parts.
fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host.to_string(), port.parse().ok()?))
}

/// The leader's raft metrics, reduced to what DescribeQuorum needs.
struct LeaderView {
    leader: u64,
    term: u64,
    last_index: Option<u64>,
    committed_index: Option<u64>,
    voters: Vec<u64>,
    learners: Vec<u64>,
    /// Each replica's matched index (`None`: nothing matched yet).
    matched: BTreeMap<u64, Option<u64>>,
    /// How long ago each replica's last acknowledged request was sent.
    acked_ago: BTreeMap<u64, Option<Duration>>,
}

impl LeaderView {
    fn state(&self, now_ms: i64, endpoints: Vec<VoterEndpoint>) -> QuorumState {
        debug_assert!(self.voters.contains(&self.leader), "a raft leader is a voter");
        let observers = self
            .learners
            .iter()
            .filter(|id| self.acked_within(**id, Duration::from_millis(OBSERVER_SESSION_MS)))
            .map(|&id| self.progress(id, now_ms))
            .collect();
        QuorumState {
            leader_id: to_i32(self.leader),
            leader_epoch: to_i32(self.term),
            high_watermark: position(self.committed_index),
            voters: self.voters.iter().map(|&id| self.progress(id, now_ms)).collect(),
            observers,
            endpoints,
        }
    }

    fn acked_within(&self, id: u64, limit: Duration) -> bool {
        self.acked_ago.get(&id).copied().flatten().is_some_and(|ago| ago <= limit)
    }

    /// Kafka reports the leader as fetching and caught up now. A follower
    /// that held every committed entry when it last answered was caught up
    /// then: the committed index was the leader's log end a moment before,
    /// which is how Kafka's `lastCaughtUpTimestamp` counts a follower that
    /// reached the leader's end as of its previous fetch.
    fn progress(&self, id: u64, now_ms: i64) -> ReplicaProgress {
        if id == self.leader {
            return ReplicaProgress {
                id: to_i32(id),
                log_end_offset: position(self.last_index).max(0),
                last_fetch_ms: now_ms,
                last_caught_up_ms: now_ms,
            };
        }
        let matched = self.matched.get(&id).copied().flatten();
        let last_fetch_ms = match self.acked_ago.get(&id).copied().flatten() {
            Some(ago) => now_ms - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX).min(now_ms),
            None => -1,
        };
        let caught_up = matched.is_some() && matched >= self.committed_index;
        ReplicaProgress {
            id: to_i32(id),
            log_end_offset: position(matched),
            last_fetch_ms,
            last_caught_up_ms: if caught_up { last_fetch_ms } else { -1 },
        }
    }
}

/// The position after raft index `index`; -1 if unknown.
fn position(index: Option<u64>) -> i64 {
    index.map_or(-1, |i| i64::try_from(i).map_or(i64::MAX, |i| i + 1))
}

/// Node ids and terms are i32 on the wire; ours fit (node ids come from
/// `node.id`, and a term is stored in each batch's partitionLeaderEpoch).
fn to_i32(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> LeaderView {
        LeaderView {
            leader: 1,
            term: 7,
            last_index: Some(41),
            committed_index: Some(40),
            voters: vec![1, 2, 3],
            learners: vec![4, 5, 6],
            matched: BTreeMap::from([(1, Some(41)), (2, Some(40)), (3, Some(12)), (4, Some(41)), (5, None), (6, Some(41))]),
            acked_ago: BTreeMap::from([
                (1, Some(Duration::ZERO)),
                (2, Some(Duration::from_millis(30))),
                (3, None),
                (4, Some(Duration::from_millis(250))),
                (5, Some(Duration::from_secs(1))),
                (6, Some(Duration::from_secs(301))),
            ]),
        }
    }

    #[test]
    fn the_leaders_metrics_become_kafkas_replica_states() {
        let now = 1_000_000;
        let q = view().state(now, vec![]);
        assert_eq!((q.leader_id, q.leader_epoch, q.high_watermark), (1, 7, 41));
        let rows =
            |v: &[ReplicaProgress]| v.iter().map(|r| (r.id, r.log_end_offset, r.last_fetch_ms, r.last_caught_up_ms)).collect::<Vec<_>>();
        // (id, log end, last fetch, last caught up)
        let voters = [
            (1, 42, now, now),           // the leader: its log end, now
            (2, 41, now - 30, now - 30), // holds everything committed
            (3, 13, -1, -1),             // behind, never answered this leader
        ];
        assert_eq!(rows(&q.voters), voters);
        // 6 has not answered for more than Kafka's observer session.
        let observers = [(4, 42, now - 250, now - 250), (5, -1, now - 1000, -1)];
        assert_eq!(rows(&q.observers), observers);
    }

    #[test]
    fn positions_are_index_plus_one() {
        for (index, pos) in [(None, -1), (Some(0), 1), (Some(9), 10), (Some(u64::MAX), i64::MAX)] {
            assert_eq!(position(index), pos, "{index:?}");
        }
    }

    #[test]
    fn host_and_port_split() {
        let cases = [
            ("127.0.0.1:9093", Some(("127.0.0.1", 9093))),
            ("[::1]:9093", Some(("::1", 9093))),
            ("ctrl-1.example:19093", Some(("ctrl-1.example", 19093))),
            ("no-port", None),
            ("host:99999", None),
        ];
        for (addr, want) in cases {
            assert_eq!(split_host_port(addr), want.map(|(h, p)| (h.to_string(), p)), "{addr}");
        }
    }
}
