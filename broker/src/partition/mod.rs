//! Partitions: each one a raft group over a fjord-storage log, named
//! `<topic>-<partition>` under `log.dirs` as Kafka names it.
//!
//! - [`manager`]: the partitions this broker hosts, reconciled with the metadata image.
//! - [`append`]: the produce path: validation, idempotence, proposal, acks.
//! - [`validate`]: Kafka's checks on a client batch, before anything is written.
//! - [`sequencer`]: producer sequences of batches proposed but not yet applied.
//! - [`tiering`]: uploads rolled segments and deletes remote ones (KIP-405's remote log manager).
//! - [`txn`]: last stable offset, aborted transactions.
//! - [`markers`]: writes transaction markers (WriteTxnMarkers and the transaction coordinator).
//! - [`replay`]: reading a partition back from its start (the coordinators' loads).
//! - [`remote_read`]: Fetch and ListOffsets below the local log start, from the object store.

pub mod append;
pub mod cleaner;
pub mod epochs;
pub mod manager;
pub mod markers;
pub mod remote_read;
pub mod replay;
pub mod sequencer;
pub mod tiering;
pub mod txn;
pub mod validate;

use std::sync::{Arc, RwLock};

use fjord_raft::TypeConfig;
use fjord_raft::registry::Group;
use fjord_storage::{ReadResult, StorageError};
use openraft::async_runtime::watch::WatchReceiver;
use tokio::sync::watch;

pub use append::{AppendError, Appended};
pub use manager::PartitionManager;

use crate::config::TopicConfig;
use crate::metadata::TopicId;

/// One hosted partition replica. Owned by the [`PartitionManager`]; handlers
/// hold an `Arc` for the length of a request.
pub struct Partition {
    pub topic: String,
    pub topic_id: TopicId,
    pub index: i32,
    node_id: u64,
    group: Arc<Group>,
    config: RwLock<Arc<TopicConfig>>,
    /// Serialises the check-and-propose step of produce, so batches reach
    /// raft in the order their sequences were checked.
    sequencer: tokio::sync::Mutex<sequencer::Sequencer>,
    isr: std::sync::Mutex<IsrTracker>,
    /// The term in which this leader has applied its whole inherited log
    /// (see `append::ready_to_lead`); 0 before.
    ready_term: std::sync::atomic::AtomicU64,
    /// Its topic's traffic counters, resolved once (the produce and fetch paths count into them).
    pub(crate) counters: crate::metrics::TopicCounters,
}

/// When each follower last caught up with the leader's log end, for the
/// ISR (Kafka's `lastCaughtUpTimeMs`), sampled each time the leader reports.
#[derive(Default)]
struct IsrTracker {
    term: u64,
    /// The previous sample: when, and the leader's last raft index then.
    previous: Option<(std::time::Instant, u64)>,
    caught_up_at: std::collections::HashMap<u64, std::time::Instant>,
}

impl IsrTracker {
    /// The leader itself, or a follower that caught up within `lag_max`.
    fn in_sync(&self, voter: u64, leader: u64, now: std::time::Instant, lag_max: std::time::Duration) -> bool {
        voter == leader || self.caught_up_at.get(&voter).is_some_and(|at| now.duration_since(*at) <= lag_max)
    }
}

impl Partition {
    pub(crate) fn new(topic: String, topic_id: TopicId, index: i32, node_id: u64, group: Arc<Group>, config: TopicConfig) -> Self {
        Self {
            topic_id,
            index,
            node_id,
            group,
            config: RwLock::new(Arc::new(config)),
            sequencer: tokio::sync::Mutex::new(sequencer::Sequencer::default()),
            isr: std::sync::Mutex::new(IsrTracker::default()),
            ready_term: std::sync::atomic::AtomicU64::new(0),
            counters: crate::metrics::metrics().topic(&topic),
            topic,
        }
    }

    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    pub fn config(&self) -> Arc<TopicConfig> {
        Arc::clone(&self.config.read().expect("config lock"))
    }

    pub(crate) fn set_config(&self, config: TopicConfig) {
        if let Err(e) = self.group.set_log_config(config.log_config()) {
            tracing::warn!(topic = %self.topic, partition = self.index, "log config not applied: {e}");
        }
        *self.config.write().expect("config lock") = Arc::new(config);
    }

    /// Reads the raft metrics in place: produce asks for leadership on
    /// every batch, and a full copy holds the membership maps.
    fn with_metrics<T>(&self, f: impl FnOnce(&openraft::RaftMetrics<TypeConfig>) -> T) -> T {
        f(&self.group.raft().metrics().borrow_watched())
    }

    /// Whether this replica leads the partition now.
    pub fn is_leader(&self) -> bool {
        self.with_metrics(|m| m.current_leader == Some(self.node_id))
    }

    /// The current leader's broker id, if one is known.
    pub fn leader_id(&self) -> Option<i32> {
        self.with_metrics(|m| m.current_leader.map(|l| l as i32))
    }

    /// Kafka's leader epoch: the raft term, which every batch written in it
    /// carries as its partitionLeaderEpoch.
    pub fn leader_epoch(&self) -> i32 {
        self.with_metrics(|m| i32::try_from(m.current_term).unwrap_or(i32::MAX))
    }

    /// Replica ids of the group's voters (the ISR: raft commits on a quorum of them).
    pub fn voters(&self) -> Vec<i32> {
        self.with_metrics(|m| m.membership_config.membership().voter_ids().map(|v| v as i32).collect())
    }

    /// What the leader tells the controller: its term, its voters, and the
    /// in-sync replicas (voters that reached the leader's log end within
    /// `lag_max`, as Kafka's `replica.lag.time.max.ms`). `None` unless this
    /// replica leads.
    pub fn leader_report(&self, lag_max: std::time::Duration) -> Option<crate::cluster::heartbeat::LeaderReport> {
        // Read in place: this runs for every hosted partition every 250 ms.
        let metrics = self.group.raft().metrics();
        let m = metrics.borrow_watched();
        if m.current_leader != Some(self.node_id) {
            return None;
        }
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        let now = std::time::Instant::now();
        let mut t = self.isr.lock().expect("isr lock");
        if t.term != m.current_term {
            // A new leader starts with every voter in sync, as Kafka's keeps the ISR it inherits.
            *t = IsrTracker { term: m.current_term, previous: None, caught_up_at: voters.iter().map(|v| (*v, now)).collect() };
        }
        if let (Some((at, last)), Some(replication)) = (t.previous, m.replication.as_ref()) {
            for (follower, matched) in replication {
                if matched.as_ref().map_or(0, |l| l.index()) >= last {
                    t.caught_up_at.insert(*follower, at);
                }
            }
        }
        t.previous = Some((now, m.last_log_index.unwrap_or(0)));
        let isr: Vec<i32> = voters.iter().filter(|v| t.in_sync(**v, self.node_id, now, lag_max)).map(|v| *v as i32).collect();
        Some(crate::cluster::heartbeat::LeaderReport {
            topic_id: self.topic_id,
            partition: self.index,
            epoch: i32::try_from(m.current_term).unwrap_or(i32::MAX),
            isr,
            voters: voters.iter().map(|v| *v as i32).collect(),
        })
    }

    /// For `/metrics`: the in-sync replicas (as [`Self::leader_report`]
    /// finds them, without taking a sample) and the number of voters; `None`
    /// unless this replica leads.
    pub fn in_sync_replicas(&self, lag_max: std::time::Duration) -> Option<(Vec<i32>, usize)> {
        let metrics = self.group.raft().metrics();
        let m = metrics.borrow_watched();
        if m.current_leader != Some(self.node_id) {
            return None;
        }
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        let t = self.isr.lock().expect("isr lock");
        let now = std::time::Instant::now();
        // No sample in this term yet: a new leader counts every voter in sync.
        let fresh = t.term != m.current_term;
        let in_sync = voters.iter().filter(|v| fresh || t.in_sync(**v, self.node_id, now, lag_max)).map(|v| *v as i32).collect();
        Some((in_sync, voters.len()))
    }

    /// The offset after the last committed record.
    pub fn high_watermark(&self) -> i64 {
        *self.group.high_watermark().borrow()
    }

    /// Wakes when the high watermark moves.
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.group.high_watermark()
    }

    /// The first offset readers may see, in the object store or on local
    /// disk (Kafka's `logStartOffset`).
    pub fn log_start_offset(&self) -> i64 {
        let local = self.local_log_start_offset();
        let t = self.group.tiered().read().expect("tiered state lock");
        match t.remote_log_start() {
            Some(remote) if remote < local => remote,
            _ => local.max(t.log_start_floor()),
        }
    }

    /// The first offset on local disk (Kafka's `localLogStartOffset`).
    pub fn local_log_start_offset(&self) -> i64 {
        self.group.with_log(|l| l.log_start_offset())
    }

    pub fn log_end_offset(&self) -> i64 {
        self.group.with_log(|l| l.log_end_offset())
    }

    /// Batches from the one holding `offset`, up to `max_bytes` (the first
    /// batch whole, KIP-74), never past `upto`; slices point into the maps.
    pub fn read(&self, offset: i64, max_bytes: usize, upto: i64) -> Result<ReadResult, StorageError> {
        self.group.with_log(|l| l.read(offset, max_bytes, upto))
    }
}
