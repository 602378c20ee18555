//! A controller-only node (`process.roles=controller`): a voter of the
//! metadata quorum and nothing else, as Kafka's dedicated controllers are.
//!
//! It runs the `__cluster_metadata` raft group on its CONTROLLER listener,
//! the control RPC (forwarded metadata writes, broker heartbeats,
//! DescribeQuorum) and, while it is the active controller, the fencing of
//! silent brokers. It registers no broker, so Metadata never names it and
//! placement never puts a replica on it; it opens no client listener.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{StartError, open_quorum_member};
use crate::cluster::Cluster;
use crate::config::BrokerConfig;

pub struct Controller {
    pub cluster: Arc<Cluster>,
}

impl Controller {
    /// Opens the data folder and the metadata log, then serves the quorum.
    pub async fn start(config: BrokerConfig) -> Result<Self, StartError> {
        debug_assert!(!config.is_broker(), "a broker starts with Broker::start");
        let config = Arc::new(config);
        let (_, node, metadata) = open_quorum_member(&config).await?;
        let cluster = Cluster::new(config, node, metadata);
        tokio::spawn(crate::cluster::liveness::run(Arc::clone(&cluster)));
        Ok(Self { cluster })
    }

    /// The raft transport's address (the CONTROLLER listener).
    pub fn raft_addr(&self) -> String {
        self.cluster.node.node().addr
    }

    /// Hands the active controller role over if this node has it
    /// (`controlled.shutdown.enable`, within the session timeout), then
    /// stops raft.
    pub async fn shutdown(&self) {
        let config = &self.cluster.config;
        if config.cluster.controlled_shutdown {
            let limit = Duration::from_millis(config.cluster.session_timeout_ms);
            crate::cluster::shutdown::hand_off(&self.cluster, limit).await;
        }
        self.cluster.node.shutdown().await;
    }
}
