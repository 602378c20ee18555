//! The raft groups one broker hosts: every partition replica it holds, keyed
//! by (topic id, partition), plus the cluster metadata group.
//!
//! Ownership: a broker owns one [`RaftNode`] for its lifetime. It owns the
//! transport and the table of [`Group`]s; the table is shared with the
//! transport, whose inbound requests look their group up in it. Each group's
//! log and raft metadata live in `<data dir>/<group dir>` (see
//! [`GroupId::dir_name`]). Groups are created and removed by the broker's
//! reconciliation (one task at a time per node, serialised here).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use fjord_storage::{Log, LogConfig};
use openraft::BasicNode;
use openraft::async_runtime::watch::WatchReceiver;
use tokio::sync::watch;

use crate::config::{ConfigError, RaftConfig};
use crate::elections::ElectionStats;
use crate::error::RaftError;
use crate::log_reader::LogReader;
use crate::log_store::LogStore;
use crate::producer_state::SharedProducerStates;
use crate::state_machine::StateMachine;
use crate::tiered::SharedTieredState;
use crate::transport::{Dispatch, NetworkFactory, PeerStats, Transport};
use crate::types::TypeConfig;

/// The raft handle of one group.
pub type FjordRaft = openraft::Raft<TypeConfig, StateMachine>;

/// Kafka's `Uuid.METADATA_TOPIC_ID` (0, 1): the id KRaft gives `__cluster_metadata`.
pub const METADATA_TOPIC_ID: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A raft group: one partition of one topic, by topic id (Kafka's 16-byte
/// UUID) and partition index; [`GroupId::METADATA`] is the metadata group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub topic_id: [u8; 16],
    pub partition: i32,
}

impl GroupId {
    /// `__cluster_metadata-0`, as KRaft names it.
    pub const METADATA: GroupId = GroupId { topic_id: METADATA_TOPIC_ID, partition: 0 };

    pub fn new(topic_id: [u8; 16], partition: i32) -> Self {
        Self { topic_id, partition }
    }

    pub fn is_metadata(&self) -> bool {
        *self == Self::METADATA
    }

    /// The group's directory under the data dir: `__cluster_metadata-0`, or
    /// `<topic id hex>-<partition>` (raft knows no topic names).
    pub fn dir_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_metadata() {
            return write!(f, "__cluster_metadata-0");
        }
        for b in self.topic_id {
            write!(f, "{b:02x}")?;
        }
        write!(f, "-{}", self.partition)
    }
}

/// Why the node or a group could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("raft listener on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("group {group}: {source}")]
    Open { group: GroupId, source: RaftError },
    #[error("group {group}: raft did not start: {detail}")]
    Start { group: GroupId, detail: String },
    #[error("group {group}: retention: {detail}")]
    Retention { group: GroupId, detail: String },
}

/// One hosted group: its raft handle and what readers need besides it.
pub struct Group {
    id: GroupId,
    dir: PathBuf,
    raft: FjordRaft,
    log: LogReader,
    high_watermark: watch::Receiver<i64>,
    producers: SharedProducerStates,
    tiered: SharedTieredState,
}

impl Group {
    pub fn id(&self) -> GroupId {
        self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn raft(&self) -> &FjordRaft {
        &self.raft
    }

    /// Runs `f` on the partition log under its read lock.
    pub fn with_log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        self.log.with_log(f)
    }

    /// Runs `f` on the partition log under its write lock; see
    /// [`LogReader::with_log_mut`] for what it may do.
    pub fn with_log_mut<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        self.log.with_log_mut(f)
    }

    /// Hands the partition log new settings (a topic config change).
    pub fn set_log_config(&self, config: LogConfig) -> Result<(), RaftError> {
        self.log.set_config(config)
    }

    /// The producer states as of the last applied entry, for the leader's
    /// idempotence checks before it proposes a batch.
    pub fn producer_states(&self) -> &SharedProducerStates {
        &self.producers
    }

    /// Which of the partition's segments are in the object store.
    pub fn tiered(&self) -> &SharedTieredState {
        &self.tiered
    }

    /// The high watermark (offset after the last applied batch), to wait on.
    pub fn high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.clone()
    }

    /// Kafka's retention on a replicated partition, done as raft's purge so
    /// that raft knows the prefix is gone: finds the raft index through which
    /// `retention.ms`/`retention.bytes` allow deleting below the high
    /// watermark, makes sure a snapshot covers it (a follower that still
    /// needs the prefix installs that instead), and purges through it; the
    /// log store then deletes the same whole segments. Each replica runs it on
    /// its own log, like Kafka's log cleaner thread. `bound` keeps what lies
    /// at or above it (tiered storage: what is not uploaded yet). Returns
    /// the purge point.
    pub async fn apply_retention(&self, bound: Option<i64>, timeout: std::time::Duration) -> Result<Option<u64>, NodeError> {
        let fail = |detail: String| NodeError::Retention { group: self.id, detail };
        let hw = (*self.high_watermark.borrow()).min(bound.unwrap_or(i64::MAX));
        let Some(point) = self.with_log(|log| log.retention_point_raft(hw)).map_err(|e| fail(e.to_string()))? else {
            return Ok(None);
        };
        let covered = |m: &openraft::RaftMetrics<TypeConfig>| m.snapshot.is_some_and(|s| s.index() >= point);
        if !covered(&self.raft.metrics().borrow_watched()) {
            self.raft.trigger().snapshot().await.map_err(|e| fail(e.to_string()))?;
            self.raft
                .wait(Some(timeout))
                .metrics(covered, "a snapshot covering the retention point")
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        self.raft.trigger().purge_log(point).await.map_err(|e| fail(e.to_string()))?;
        Ok(Some(point))
    }
}

/// What the broker above raft serves to its peers over the raft transport
/// ([`RaftNode::call_control`]): cluster control, whose messages raft does
/// not know. Bodies are the broker's own encoding.
pub trait ControlHandler: Send + Sync + 'static {
    fn handle(&self, body: Vec<u8>) -> futures_util::future::BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// The groups by id; what the transport dispatches inbound requests with.
#[derive(Default)]
struct GroupTable {
    groups: RwLock<HashMap<GroupId, Arc<Group>>>,
    control: RwLock<Option<Arc<dyn ControlHandler>>>,
}

impl GroupTable {
    fn get(&self, id: &GroupId) -> Option<Arc<Group>> {
        self.groups.read().expect("group table lock").get(id).cloned()
    }
}

impl Dispatch for GroupTable {
    fn raft(&self, group: &GroupId) -> Option<FjordRaft> {
        self.get(group).map(|g| g.raft.clone())
    }

    fn control(&self, body: Vec<u8>) -> futures_util::future::BoxFuture<'static, Result<Vec<u8>, String>> {
        match self.control.read().expect("control lock").clone() {
            Some(h) => h.handle(body),
            None => Box::pin(async { Err("this node is still starting".to_string()) }),
        }
    }
}

/// A broker's raft side. See the module doc.
pub struct RaftNode {
    id: u64,
    data_dir: PathBuf,
    openraft: Arc<openraft::Config>,
    transport: Transport,
    groups: Arc<GroupTable>,
    elections: Arc<ElectionStats>,
    /// Serialises creation and removal, so a group is opened once.
    changes: tokio::sync::Mutex<()>,
}

impl RaftNode {
    /// Validates `config`, binds the raft listener on `listen` and starts
    /// accepting peers. Groups are added with [`RaftNode::create_group`].
    pub async fn start(id: u64, listen: SocketAddr, data_dir: impl Into<PathBuf>, config: RaftConfig) -> Result<Self, NodeError> {
        Self::start_advertised(id, listen, None, data_dir, config).await
    }

    /// [`RaftNode::start`], telling peers to reach this node at `advertised`
    /// (`host:port`) rather than at the bound address: behind a proxy, NAT or
    /// a load balancer, as Kafka's `advertised.listeners` does for clients.
    pub async fn start_advertised(
        id: u64,
        listen: SocketAddr,
        advertised: Option<String>,
        data_dir: impl Into<PathBuf>,
        config: RaftConfig,
    ) -> Result<Self, NodeError> {
        Self::start_secured(id, listen, advertised, data_dir, config, None).await
    }

    /// [`Self::start_advertised`], with TLS on every transport connection.
    pub async fn start_secured(
        id: u64,
        listen: SocketAddr,
        advertised: Option<String>,
        data_dir: impl Into<PathBuf>,
        config: RaftConfig,
        tls: Option<crate::transport::TransportTls>,
    ) -> Result<Self, NodeError> {
        let openraft = Arc::new(config.openraft()?);
        let groups = Arc::new(GroupTable::default());
        let dispatch: Arc<dyn Dispatch> = Arc::clone(&groups) as Arc<dyn Dispatch>;
        let transport = Transport::bind(id, listen, advertised, Arc::new(config), dispatch, tls)
            .await
            .map_err(|source| NodeError::Listen { addr: listen, source })?;
        Ok(Self {
            id,
            data_dir: data_dir.into(),
            openraft,
            transport,
            groups,
            elections: Arc::default(),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where peers reach this node's raft listener.
    pub fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// This node as a member of a group's membership.
    pub fn node(&self) -> BasicNode {
        BasicNode::new(self.transport.advertised())
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Where node `id`'s raft transport listens, as the cluster metadata says.
    pub fn set_peer_address(&self, id: u64, addr: &str) {
        if id != self.id {
            self.transport.set_address(id, addr);
        }
    }

    /// Installs what serves peers' control requests (until then they fail).
    pub fn set_control_handler(&self, handler: Arc<dyn ControlHandler>) {
        *self.groups.control.write().expect("control lock") = Some(handler);
    }

    /// Sends a control request to node `target` (at `addr`, if this node
    /// dials it) and returns the answer. A node answering with an error, an
    /// unreachable one and a late answer are all `Err`, with the reason.
    pub async fn call_control(
        &self,
        target: u64,
        addr: Option<&str>,
        body: &[u8],
        timeout: std::time::Duration,
    ) -> Result<bytes::Bytes, String> {
        let peer = self.transport.peer(target, addr);
        peer.call(crate::transport::frame::Rpc::Control, GroupId::METADATA, body, crate::transport::peer::Urgency::Now, timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// Transport counters per peer node id.
    pub fn peer_stats(&self) -> BTreeMap<u64, PeerStats> {
        self.transport.stats()
    }

    /// Elections and leader changes across this node's groups.
    pub fn election_stats(&self) -> &ElectionStats {
        &self.elections
    }

    pub fn group(&self, id: GroupId) -> Option<Arc<Group>> {
        self.groups.get(&id)
    }

    pub fn group_ids(&self) -> Vec<GroupId> {
        self.groups.groups.read().expect("group table lock").keys().copied().collect()
    }

    /// Opens (or recovers) the group's log in `<data dir>/<group dir>` and
    /// starts its raft; returns the running group if it already is. A new
    /// group joins a cluster through `initialize` or a leader adding it.
    pub async fn create_group(&self, id: GroupId, log_config: LogConfig) -> Result<Arc<Group>, NodeError> {
        self.create_group_in(id, &id.dir_name(), log_config).await
    }

    /// [`RaftNode::create_group`] with the group's directory named by the
    /// caller: the broker names a partition `<topic>-<partition>`, as Kafka
    /// does, which raft cannot (it knows topic ids, not names).
    pub async fn create_group_in(&self, id: GroupId, dir_name: &str, log_config: LogConfig) -> Result<Arc<Group>, NodeError> {
        let _changes = self.changes.lock().await;
        if let Some(g) = self.groups.get(&id) {
            return Ok(g);
        }
        let dir = self.data_dir.join(dir_name);
        let open_dir = dir.clone();
        let opened = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&open_dir).map_err(|source| RaftError::Io {
                context: "create group dir",
                path: open_dir.clone(),
                source,
            })?;
            let store = LogStore::open(&open_dir, log_config)?;
            // Attached to the log: restores the last snapshot and lets an
            // installed snapshot reset the log under it.
            let sm = StateMachine::open(&store)?;
            Ok((store, sm))
        })
        .await;
        let (store, sm) = match opened {
            Ok(r) => r.map_err(|source| NodeError::Open { group: id, source })?,
            Err(join) => return Err(NodeError::Start { group: id, detail: join.to_string() }),
        };
        let (high_watermark, log, producers, tiered) = (sm.high_watermark(), store.reader(), sm.producer_states(), sm.tiered_state());
        let network = NetworkFactory::new(id, self.transport.clone());
        let raft = openraft::Raft::new(self.id, Arc::clone(&self.openraft), network, store, sm)
            .await
            .map_err(|e| NodeError::Start { group: id, detail: e.to_string() })?;
        crate::elections::watch(&raft, id, dir_name.to_string(), Arc::clone(&self.elections));
        let group = Arc::new(Group { id, dir, raft, log, high_watermark, producers, tiered });
        self.groups.groups.write().expect("group table lock").insert(id, Arc::clone(&group));
        Ok(group)
    }

    /// Stops a group's raft and forgets it; its directory stays.
    pub async fn remove_group(&self, id: GroupId) {
        let _changes = self.changes.lock().await;
        let removed = self.groups.groups.write().expect("group table lock").remove(&id);
        if let Some(g) = removed
            && let Err(e) = g.raft.shutdown().await
        {
            tracing::warn!(group = %id, "raft shutdown: {e}");
        }
    }

    /// Stops every group and the transport.
    pub async fn shutdown(&self) {
        let _changes = self.changes.lock().await;
        self.transport.shutdown();
        let groups: Vec<_> = self.groups.groups.write().expect("group table lock").drain().map(|(_, g)| g).collect();
        for g in groups {
            if let Err(e) = g.raft.shutdown().await {
                tracing::warn!(group = %g.id, "raft shutdown: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_dirs_are_distinct_and_the_metadata_group_is_named_as_kraft_names_it() {
        assert_eq!(GroupId::METADATA.dir_name(), "__cluster_metadata-0");
        let g = GroupId::new([0xab; 16], 7);
        assert_eq!(g.dir_name(), format!("{}-7", "ab".repeat(16)));
        assert_ne!(GroupId::new(METADATA_TOPIC_ID, 1).dir_name(), GroupId::METADATA.dir_name());
        assert!(!g.is_metadata());
    }
}
