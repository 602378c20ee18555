//! Elections and leader changes, as one node sees them across its groups:
//! one log line per change and counters for the broker's metrics.
//!
//! Each group gets a task on openraft's server metrics, which change only
//! with the vote, the server state, the leader or the membership, never
//! with a write, so a busy partition costs its watcher nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::ServerState;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::vote::RaftLeaderId;

use crate::registry::{FjordRaft, GroupId};

/// Counters over every group this node hosts, since it started.
#[derive(Debug, Default)]
pub struct ElectionStats {
    /// Elections seen: each raft term begins with an election, so this
    /// counts the new terms this node's groups moved to (several terms
    /// passed at once count one). Watching for the candidate state instead
    /// would miss elections settled between two looks.
    pub elections_started: AtomicU64,
    /// Elections this node won (it became leader).
    pub elections_won: AtomicU64,
    /// Times a group's leader changed to another known node, as seen here.
    pub leader_changes: AtomicU64,
    /// The same three for the metadata group alone (the controller quorum).
    pub metadata_elections_started: AtomicU64,
    pub metadata_elections_won: AtomicU64,
    pub metadata_leader_changes: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ElectionCounts {
    pub elections_started: u64,
    pub elections_won: u64,
    pub leader_changes: u64,
}

impl ElectionStats {
    /// Partition groups (`metadata: false`) or the metadata group.
    pub fn counts(&self, metadata: bool) -> ElectionCounts {
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        if metadata {
            ElectionCounts {
                elections_started: read(&self.metadata_elections_started),
                elections_won: read(&self.metadata_elections_won),
                leader_changes: read(&self.metadata_leader_changes),
            }
        } else {
            ElectionCounts {
                elections_started: read(&self.elections_started),
                elections_won: read(&self.elections_won),
                leader_changes: read(&self.leader_changes),
            }
        }
    }

    fn bump(&self, metadata: bool, event: Event) {
        let counter = match (metadata, event) {
            (false, Event::Started) => &self.elections_started,
            (false, Event::Won) => &self.elections_won,
            (false, Event::LeaderChanged) => &self.leader_changes,
            (true, Event::Started) => &self.metadata_elections_started,
            (true, Event::Won) => &self.metadata_elections_won,
            (true, Event::LeaderChanged) => &self.metadata_leader_changes,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Started,
    Won,
    LeaderChanged,
}

/// Watches one group until its raft stops. `name` is the group's directory
/// name (`<topic>-<partition>`), which is what an operator knows it by.
pub(crate) fn watch(raft: &FjordRaft, id: GroupId, name: String, stats: Arc<ElectionStats>) {
    let mut rx = raft.server_metrics();
    let metadata = id.is_metadata();
    tokio::spawn(async move {
        // What the group had when it opened (a restart's persisted vote) is no news.
        let (mut state, mut leader, mut term) = {
            let m = rx.borrow_watched();
            (m.state, m.current_leader, m.vote.leader_id().term())
        };
        while rx.changed().await.is_ok() {
            let (now_state, now_leader, now_term) = {
                let m = rx.borrow_watched();
                (m.state, m.current_leader, m.vote.leader_id().term())
            };
            if now_term > term {
                stats.bump(metadata, Event::Started);
            }
            if now_state != state && now_state == ServerState::Candidate {
                tracing::debug!(group = %name, term = now_term, "standing for election");
            }
            if now_state != state && now_state == ServerState::Leader {
                stats.bump(metadata, Event::Won);
            }
            if now_leader != leader
                && let Some(new) = now_leader
            {
                stats.bump(metadata, Event::LeaderChanged);
                tracing::info!(group = %name, term = now_term, leader = new, previous = ?leader, state = ?now_state, "raft leader changed");
            }
            (state, leader, term) = (now_state, now_leader, now_term.max(term));
        }
    });
}
