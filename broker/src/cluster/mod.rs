//! The cluster: brokers registering with the controller quorum, liveness,
//! leadership reports, placement and the moves of leaders and replicas.
//!
//! - [`control`]: the messages brokers send each other over the raft
//!   transport (forwarded metadata writes, heartbeats, leadership moves).
//! - [`heartbeat`]: a broker's heartbeat loop, and the controller's answer:
//!   registration, unfencing, partition leaders and ISRs into the metadata log.
//! - [`liveness`]: the controller fences brokers it stops hearing from.
//! - [`placement`]: rack-aware replica placement for new partitions.
//! - [`quorum`]: the metadata quorum's state for DescribeQuorum, from the
//!   active controller's raft.
//! - [`leadership`]: preferred-leader election and driving each partition's
//!   raft voters to its assigned replicas (reassignment).
//! - [`shutdown`]: handing leadership over before the broker stops.
//!
//! Ownership: one [`Cluster`] per broker, created before the partitions, so
//! that a broker registers (and a non-voter becomes a metadata learner)
//! before it needs the metadata.

pub mod control;
pub mod heartbeat;
pub mod leadership;
pub mod liveness;
pub mod placement;
pub mod quorum;
pub mod shutdown;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use fjord_raft::registry::RaftNode;

use crate::config::BrokerConfig;
use crate::metadata::MetadataStore;
use crate::partition::PartitionManager;

/// See the module doc.
pub struct Cluster {
    pub config: Arc<BrokerConfig>,
    pub node: Arc<RaftNode>,
    pub metadata: Arc<MetadataStore>,
    /// Set once the partition manager exists (it needs the metadata first).
    partitions: OnceLock<Arc<PartitionManager>>,
    /// A new value of this process: a restart is a new registration.
    pub incarnation: String,
    pub liveness: liveness::Liveness,
    /// Wakes the heartbeat loop early (a leadership change to report).
    pub report_now: tokio::sync::Notify,
    /// Set by [`shutdown::hand_off`]: the next heartbeat is the last.
    pub shutting_down: AtomicBool,
    /// Set once the controller has accepted that last heartbeat.
    pub farewell_sent: AtomicBool,
}

impl Cluster {
    pub fn new(config: Arc<BrokerConfig>, node: Arc<RaftNode>, metadata: Arc<MetadataStore>) -> Arc<Self> {
        let cluster = Arc::new(Self {
            config,
            node,
            metadata,
            partitions: OnceLock::new(),
            incarnation: crate::metadata::TopicId::random().to_base64(),
            liveness: liveness::Liveness::default(),
            report_now: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            farewell_sent: AtomicBool::new(false),
        });
        control::install(&cluster);
        cluster
    }

    pub fn set_partitions(&self, partitions: Arc<PartitionManager>) {
        let _ = self.partitions.set(partitions);
    }

    pub fn partitions(&self) -> Option<&Arc<PartitionManager>> {
        self.partitions.get()
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }
}
