//! The broker: what every request handler reaches through its context.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fjord_raft::registry::RaftNode;

use crate::config::{BrokerConfig, Listener};
use crate::group::GroupCoordinator;
use crate::metadata::{MetadataRecord, MetadataStore};
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
}

impl Broker {
    /// Opens the data directory, starts raft, replays the cluster metadata
    /// and brings the partitions online, before any listener opens.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Self>, StartError> {
        let config = Arc::new(config);
        let data_dir = config.log_dirs.first().cloned().unwrap_or_else(|| PathBuf::from("data"));
        if data_dir.exists() && !data_dir.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
            return Err(StartError::DataDir { dir: data_dir, source });
        }
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir { dir: data_dir.clone(), source })?;
        check_writable(&data_dir).map_err(|source| StartError::DataDir { dir: data_dir.clone(), source })?;
        let raft_addr = config.raft_listener.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let node = RaftNode::start(config.node_id as u64, raft_addr, &data_dir, config.raft.clone())
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let node = Arc::new(node);
        let metadata = MetadataStore::open(&node).await.map_err(|e| StartError::Metadata(e.to_string()))?;
        let image = metadata.caught_up(Duration::from_secs(60)).await.map_err(|e| StartError::Metadata(e.to_string()))?;
        if image.cluster_id.is_none() {
            let id = config.cluster_id.clone().unwrap_or_else(|| crate::metadata::TopicId::random().to_base64());
            let controller = metadata.controller().await;
            controller.propose(&[MetadataRecord::ClusterId { id }]).await.map_err(|e| StartError::Metadata(e.to_string()))?;
        }
        let partitions = PartitionManager::new(Arc::clone(&node), Arc::clone(&config), data_dir);
        partitions.reconcile(&metadata.image()).await;
        tokio::spawn(Arc::clone(&partitions).run(metadata.subscribe()));
        let producer_ids = ProducerIds::new(config.node_id);
        let groups = GroupCoordinator::new(Arc::clone(&config), Arc::clone(&partitions), Arc::clone(&metadata));
        tokio::spawn(Arc::clone(&groups).run());
        Ok(Arc::new(Self { config, node, metadata, partitions, producer_ids, fetch_sessions: Default::default(), groups }))
    }

    /// The cluster id, once the metadata log has one.
    pub fn cluster_id(&self) -> String {
        self.metadata.image().cluster_id.clone().unwrap_or_default()
    }

    /// The advertised endpoint of listener `name`: the host and port clients
    /// that arrived on that listener are told to use.
    pub fn advertised(&self, name: &str) -> Option<&Listener> {
        self.config.advertised_listeners.iter().find(|l| l.name == name)
    }

    /// Stops raft cleanly (the logs are flushed by their stores).
    pub async fn shutdown(&self) {
        self.node.shutdown().await;
    }
}

fn check_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(".fjord-write-check");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}
