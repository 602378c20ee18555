//! The broker: what every request handler reaches through its context.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fjord_raft::registry::RaftNode;

use crate::cluster::Cluster;
use crate::config::{BrokerConfig, Listener};
use crate::group::GroupCoordinator;
use crate::metadata::{MetadataImage, MetadataRecord, MetadataStore, TopicImage};
use crate::partition::PartitionManager;
use crate::producer_ids::ProducerIds;

/// Why the broker could not start; `main` prints it as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("log.dirs {dir}: {source}")]
    DataDir { dir: PathBuf, source: std::io::Error },
    #[error("raft listener: {0}")]
    Raft(String),
    #[error("cluster metadata: {0}")]
    Metadata(String),
    #[error("tiered storage: {0}")]
    Tiered(fjord_tiered::Error),
}

/// See [`Broker::leader_view`].
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderView {
    pub leader: i32,
    pub epoch: i32,
    pub isr: Vec<i32>,
}

/// One per process; shared by every connection as `Arc<Broker>`.
pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub node: Arc<RaftNode>,
    pub metadata: Arc<MetadataStore>,
    pub partitions: Arc<PartitionManager>,
    pub producer_ids: ProducerIds,
    pub fetch_sessions: crate::handlers::fetch_session::FetchSessions,
    pub groups: Arc<GroupCoordinator>,
    /// The transaction coordinator of the `__transaction_state` partitions led here.
    pub txn: Arc<crate::txn::TxnCoordinator>,
    pub cluster: Arc<Cluster>,
    /// The object store of tiered storage, when `remote.log.storage.system.enable`.
    pub remote: Option<Arc<fjord_tiered::RemoteStore>>,
}

impl Broker {
    /// Opens the data directory, starts raft, replays the cluster metadata
    /// and brings the partitions online, before any listener opens.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Self>, StartError> {
        let config = Arc::new(config);
        let remote = match &config.remote_log_storage {
            Some(c) => Some(Arc::new(fjord_tiered::RemoteStore::open(c).map_err(StartError::Tiered)?)),
            None => None,
        };
        let (data_dir, node, metadata) = open_quorum_member(&config).await?;
        let cluster = Cluster::new(Arc::clone(&config), Arc::clone(&node), Arc::clone(&metadata));
        // Registering first: a broker that is not a voter gets the metadata
        // only once the controller has made it a learner.
        tokio::spawn(crate::cluster::heartbeat::run(Arc::clone(&cluster)));
        tokio::spawn(crate::cluster::liveness::run(Arc::clone(&cluster)));
        let image = wait_for_registration(&cluster).await?;
        if image.cluster_id.is_none() {
            let id = config.cluster_id.clone().unwrap_or_else(|| crate::metadata::TopicId::random().to_base64());
            metadata
                .write(|image| {
                    let records = if image.cluster_id.is_none() { vec![MetadataRecord::ClusterId { id: id.clone() }] } else { vec![] };
                    Ok::<_, crate::metadata::MetadataError>((records, ()))
                })
                .await
                .map_err(|e| StartError::Metadata(e.to_string()))?;
        }
        let partitions = PartitionManager::new(Arc::clone(&node), Arc::clone(&config), data_dir, remote.clone());
        cluster.set_partitions(Arc::clone(&partitions));
        partitions.reconcile(&metadata.image()).await;
        tokio::spawn(Arc::clone(&partitions).run(metadata.subscribe()));
        tokio::spawn(crate::cluster::leadership::run(Arc::clone(&cluster)));
        let producer_ids = ProducerIds::new(config.node_id);
        let groups = GroupCoordinator::new(Arc::clone(&config), Arc::clone(&partitions), Arc::clone(&metadata));
        tokio::spawn(Arc::clone(&groups).run());
        let txn = crate::txn::TxnCoordinator::new(Arc::clone(&config), Arc::clone(&partitions), Arc::clone(&metadata));
        let broker = Arc::new(Self {
            config,
            node,
            metadata,
            partitions,
            producer_ids,
            fetch_sessions: Default::default(),
            groups,
            txn,
            cluster,
            remote,
        });
        // Markers, verification and producer ids reach the broker from these.
        broker.txn.attach(&broker);
        crate::cluster::control::attach_broker(&broker);
        tokio::spawn(Arc::clone(&broker.txn).run());
        Ok(broker)
    }

    /// The cluster id, once the metadata log has one.
    pub fn cluster_id(&self) -> String {
        self.metadata.image().cluster_id.clone().unwrap_or_default()
    }

    /// A partition's leader, leader epoch and ISR as this broker knows them:
    /// the metadata, unless this broker hosts a replica that has seen a newer
    /// term (its raft knows before the leader's report is committed). A
    /// leader that is fenced is no leader (-1): clients wait and look again.
    pub fn leader_view(&self, image: &MetadataImage, topic: &TopicImage, index: i32) -> LeaderView {
        let (mut leader, mut epoch, mut isr) =
            topic.state(index).map_or((-1, -1, Vec::new()), |s| (s.leader, s.leader_epoch, s.isr.clone()));
        if let Some(p) = self.partitions.get(&topic.name, index).filter(|p| p.topic_id == topic.id)
            && let Some(local) = p.leader_id()
            && p.leader_epoch() > epoch
        {
            (leader, epoch) = (local, p.leader_epoch());
        }
        if leader >= 0 && !image.is_live(leader) && !(leader == self.config.node_id && image.brokers.is_empty()) {
            leader = -1;
        }
        if isr.is_empty() {
            isr = topic.replicas.get(index as usize).cloned().unwrap_or_default();
        }
        isr.retain(|b| counts_in_sync(image, *b));
        LeaderView { leader, epoch, isr }
    }

    /// The size of the ISR [`Self::leader_view`] shows, without building it
    /// (the produce path asks this for every acks=all batch).
    pub fn in_sync_count(image: &MetadataImage, topic: &TopicImage, index: i32) -> usize {
        match topic.state(index) {
            Some(s) if !s.isr.is_empty() => s.isr.iter().filter(|b| counts_in_sync(image, **b)).count(),
            _ => topic.replicas.get(index as usize).map_or(0, |r| r.iter().filter(|b| counts_in_sync(image, **b)).count()),
        }
    }

    /// Where broker `id` is reached on `listener` (host, port, rack).
    pub fn endpoint_of(&self, id: i32, listener: &str) -> Option<(String, u16, Option<String>)> {
        let image = self.metadata.image();
        match image.brokers.get(&id) {
            Some(b) => b.endpoint(listener).map(|e| (e.host.clone(), e.port, b.rack.clone())),
            None if id == self.config.node_id => {
                self.advertised(listener).map(|l| (l.host.clone(), l.port, self.config.broker_rack.clone()))
            }
            None => None,
        }
    }

    /// The advertised endpoint of listener `name`: the host and port clients
    /// that arrived on that listener are told to use.
    pub fn advertised(&self, name: &str) -> Option<&Listener> {
        self.config.advertised_listeners.iter().find(|l| l.name == name)
    }

    /// Hands leadership over (`controlled.shutdown.enable`; within the
    /// session timeout, after which the controller would fence this broker
    /// anyway), then stops raft cleanly (the logs are flushed by their stores).
    pub async fn shutdown(&self) {
        let limit = Duration::from_millis(self.config.cluster.session_timeout_ms);
        if self.config.cluster.controlled_shutdown {
            crate::cluster::shutdown::hand_off(&self.cluster, limit).await;
        }
        self.node.shutdown().await;
    }
}

/// What every node runs, broker or controller: its data folder (checked
/// writable), the raft transport and the metadata log, replayed.
pub(crate) async fn open_quorum_member(config: &BrokerConfig) -> Result<(PathBuf, Arc<RaftNode>, Arc<MetadataStore>), StartError> {
    let data_dir = config.log_dirs.first().cloned().unwrap_or_else(|| PathBuf::from("data"));
    if data_dir.exists() && !data_dir.is_dir() {
        let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
        return Err(StartError::DataDir { dir: data_dir, source });
    }
    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir { dir: data_dir.clone(), source })?;
    check_writable(&data_dir).map_err(|source| StartError::DataDir { dir: data_dir.clone(), source })?;
    let raft_addr = config.raft_listen_addr();
    let tls = match &config.tls_between_nodes {
        Some(settings) => Some(crate::server::tls::between_nodes(settings).map_err(|e| StartError::Raft(format!("TLS: {e}")))?),
        None => None,
    };
    let node = RaftNode::start_secured(config.node_id as u64, raft_addr, config.raft_advertised(), &data_dir, config.raft.clone(), tls)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let node = Arc::new(node);
    let metadata = MetadataStore::open(&node, &config.controller_quorum_voters).await.map_err(|e| StartError::Metadata(e.to_string()))?;
    Ok((data_dir, node, metadata))
}

/// Whether ISR member `broker` still counts: the controller's view wins for
/// a broker it has fenced, as Kafka's controller takes a fenced broker out
/// of every ISR at once. (No registrations at all: a single node starting.)
fn counts_in_sync(image: &MetadataImage, broker: i32) -> bool {
    image.brokers.is_empty() || image.is_live(broker)
}

/// Waits until this broker's registration is in its own metadata image:
/// then a quorum is up, this broker can reach the controller, and the image
/// is caught up at least to that point. Logs while it waits (a cluster whose
/// other voters are not started yet waits here, as Kafka's brokers do).
async fn wait_for_registration(cluster: &Cluster) -> Result<Arc<crate::metadata::MetadataImage>, StartError> {
    const LIMIT: Duration = Duration::from_secs(600);
    let started = std::time::Instant::now();
    let mut images = cluster.metadata.subscribe();
    let me = cluster.config.node_id;
    loop {
        let registered = |i: &Arc<crate::metadata::MetadataImage>| i.brokers.get(&me).is_some_and(|b| b.incarnation == cluster.incarnation);
        match tokio::time::timeout(Duration::from_secs(10), images.wait_for(registered)).await {
            Ok(Ok(image)) => return Ok(Arc::clone(&image)),
            Ok(Err(_)) => return Err(StartError::Metadata("metadata tail stopped".into())),
            Err(_) if started.elapsed() > LIMIT => {
                return Err(StartError::Metadata(format!("no controller quorum to register with after {LIMIT:?}")));
            }
            Err(_) => {
                let voters: Vec<String> =
                    cluster.config.controller_quorum_voters.iter().map(|v| format!("{}@{}:{}", v.id, v.host, v.port)).collect();
                tracing::info!(voters = ?voters, "waiting for the controller quorum to register this broker");
            }
        }
    }
}

fn check_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(".fjord-write-check");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}
