//! Control requests between brokers, carried by the raft transport's
//! `Control` RPC (one connection per broker pair already exists for raft).
//! Bodies are JSON: a few per second, and readable in a packet capture.
//!
//! - `Propose`: a metadata write planned on another broker
//!   ([`crate::metadata::MetadataStore::write`]), committed here if this is
//!   the controller and the log has not moved since it was planned.
//! - `Heartbeat`: a broker's registration and the partitions it leads.
//! - `TransferLeader`: asks a partition's leader to hand leadership to a
//!   replica (preferred-leader election, reassignment).
//! - `DescribeQuorum`: the metadata quorum's replication state, which only
//!   the active controller knows ([`super::quorum`]).
//! - `WriteTxnMarkers`: a transaction coordinator asks a partition leader to
//!   write a transaction's marker (Kafka's WriteTxnMarkers between brokers).
//! - `VerifyTxn`: a partition leader asks a transaction coordinator whether
//!   partitions are in a producer's transaction (KIP-890's VerifyOnly).
//!
//! The last two need the whole broker, not just the cluster: they are served
//! once [`attach_broker`] has installed a handler that holds it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::heartbeat::Heartbeat;
use super::quorum::QuorumState;
use crate::config::QuorumVoter;
use crate::metadata::store::Forward;
use crate::metadata::{MetadataError, MetadataRecord, TopicId};
use crate::partition::markers::TxnMarker;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlRequest {
    Propose { based_on: i64, records: Vec<MetadataRecord> },
    Heartbeat(Heartbeat),
    TransferLeader { topic_id: TopicId, partition: i32, to: i32 },
    DescribeQuorum,
    WriteTxnMarkers { marker: TxnMarker, partitions: Vec<(String, i32)> },
    VerifyTxn { transactional_id: String, producer_id: i64, producer_epoch: i16, partitions: Vec<(String, i32)> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlResponse {
    Proposed {
        next_offset: i64,
    },
    Conflict,
    /// Not the controller; the one this node believes is, if any.
    NotController {
        leader: Option<u64>,
    },
    Done,
    Failed(String),
    /// The answer to `DescribeQuorum`.
    Quorum(QuorumState),
    /// The answer to `WriteTxnMarkers`: a Kafka error code per partition.
    TxnMarkers(Vec<((String, i32), i16)>),
    /// The answer to `VerifyTxn`: a code per partition, or one for all.
    TxnVerified(Result<Vec<i16>, i16>),
}

/// How long one control call may take (a proposal waits for a commit).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Installs the handler of inbound control requests and the forwarding of
/// metadata proposals.
pub(super) fn install(cluster: &Arc<Cluster>) {
    let handler = Arc::new(Handler(Arc::downgrade(cluster)));
    cluster.node.set_control_handler(Arc::clone(&handler) as Arc<dyn fjord_raft::registry::ControlHandler>);
    cluster.metadata.set_forward(handler);
}

struct Handler(Weak<Cluster>);

impl fjord_raft::registry::ControlHandler for Handler {
    fn handle(&self, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let cluster = self.0.upgrade();
        Box::pin(async move {
            let Some(cluster) = cluster else { return Err("the broker is shutting down".to_string()) };
            let request: ControlRequest = serde_json::from_slice(&body).map_err(|e| format!("bad control request: {e}"))?;
            let response = serve(&cluster, request).await;
            Ok(serde_json::to_vec(&response).expect("control responses serialize"))
        })
    }
}

impl Forward for Handler {
    fn propose(&self, based_on: i64, records: Vec<MetadataRecord>) -> BoxFuture<'static, Result<i64, MetadataError>> {
        let cluster = self.0.upgrade();
        Box::pin(async move {
            let Some(cluster) = cluster else { return Err(MetadataError::NoController("shutting down".into())) };
            match call_controller(&cluster, &ControlRequest::Propose { based_on, records }).await {
                Ok(ControlResponse::Proposed { next_offset }) => Ok(next_offset),
                Ok(ControlResponse::Conflict) => Err(MetadataError::Conflict),
                Ok(ControlResponse::Failed(e)) => Err(MetadataError::Write(e)),
                Ok(other) => Err(MetadataError::NoController(format!("unexpected answer {other:?}"))),
                Err(e) => Err(MetadataError::NoController(e)),
            }
        })
    }
}

/// Serves one request on this broker.
pub async fn serve(cluster: &Arc<Cluster>, request: ControlRequest) -> ControlResponse {
    match request {
        ControlRequest::Propose { based_on, records } => {
            if records.is_empty() {
                return ControlResponse::Failed("an empty proposal".into());
            }
            match cluster.metadata.commit_if(based_on, &records).await {
                Ok(next_offset) => ControlResponse::Proposed { next_offset },
                Err(MetadataError::Conflict) => ControlResponse::Conflict,
                Err(MetadataError::NotController) => not_controller(cluster),
                Err(e) => ControlResponse::Failed(e.to_string()),
            }
        }
        ControlRequest::Heartbeat(hb) => {
            if !cluster.metadata.is_controller() {
                return not_controller(cluster);
            }
            match super::heartbeat::serve(cluster, hb).await {
                Ok(()) => ControlResponse::Done,
                Err(MetadataError::NotController) => not_controller(cluster),
                Err(e) => ControlResponse::Failed(e.to_string()),
            }
        }
        ControlRequest::TransferLeader { topic_id, partition, to } => {
            match super::leadership::transfer_local(cluster, topic_id, partition, to).await {
                Ok(()) => ControlResponse::Done,
                Err(e) => ControlResponse::Failed(e),
            }
        }
        ControlRequest::DescribeQuorum => match super::quorum::local(cluster) {
            Some(quorum) => ControlResponse::Quorum(quorum),
            None => not_controller(cluster),
        },
        // Served by `BrokerHandler`; a node without a broker has no partitions or transactions.
        ControlRequest::WriteTxnMarkers { .. } | ControlRequest::VerifyTxn { .. } => {
            ControlResponse::Failed("not a broker, or not started yet".into())
        }
    }
}

/// Serves every control request on a broker: the transaction requests with
/// the broker, the rest as [`serve`] does.
pub fn attach_broker(broker: &Arc<crate::Broker>) {
    let handler = BrokerHandler { cluster: Arc::downgrade(&broker.cluster), broker: Arc::downgrade(broker) };
    broker.cluster.node.set_control_handler(Arc::new(handler));
}

struct BrokerHandler {
    cluster: Weak<Cluster>,
    broker: Weak<crate::Broker>,
}

impl fjord_raft::registry::ControlHandler for BrokerHandler {
    fn handle(&self, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let (cluster, broker) = (self.cluster.upgrade(), self.broker.upgrade());
        Box::pin(async move {
            let (Some(cluster), Some(broker)) = (cluster, broker) else { return Err("the broker is shutting down".to_string()) };
            let request: ControlRequest = serde_json::from_slice(&body).map_err(|e| format!("bad control request: {e}"))?;
            let response = match request {
                ControlRequest::WriteTxnMarkers { marker, partitions } => {
                    ControlResponse::TxnMarkers(crate::partition::markers::write_markers_locally(&broker, &marker, &partitions).await)
                }
                ControlRequest::VerifyTxn { transactional_id, producer_id, producer_epoch, partitions } => {
                    ControlResponse::TxnVerified(broker.txn.verify(&transactional_id, producer_id, producer_epoch, &partitions).await)
                }
                other => serve(&cluster, other).await,
            };
            Ok(serde_json::to_vec(&response).expect("control responses serialize"))
        })
    }
}

fn not_controller(cluster: &Cluster) -> ControlResponse {
    ControlResponse::NotController { leader: cluster.metadata.controller_node().map(|(id, _)| id) }
}

/// Sends `request` to node `target`: over the transport, or served here if
/// it is this node.
pub async fn call(cluster: &Arc<Cluster>, target: u64, addr: Option<&str>, request: &ControlRequest) -> Result<ControlResponse, String> {
    if target == cluster.node.id() {
        return Ok(Box::pin(serve(cluster, request.clone())).await);
    }
    let body = serde_json::to_vec(request).expect("control requests serialize");
    let answer = cluster.node.call_control(target, addr, &body, CALL_TIMEOUT).await?;
    serde_json::from_slice(&answer).map_err(|e| format!("bad control answer from node {target}: {e}"))
}

/// Sends `request` to the active controller: the metadata leader this node
/// knows of, else each voter in turn, following `NotController` hints.
pub async fn call_controller(cluster: &Arc<Cluster>, request: &ControlRequest) -> Result<ControlResponse, String> {
    let mut candidates: Vec<(u64, Option<String>)> = Vec::new();
    if let Some((id, addr)) = cluster.metadata.controller_node() {
        candidates.push((id, Some(addr)));
    }
    for v in &cluster.config.controller_quorum_voters {
        candidates.push((v.id as u64, Some(v.host_port())));
    }
    let mut tried = Vec::new();
    let mut last_error = "no controller known".to_string();
    let mut i = 0;
    while i < candidates.len() && tried.len() < 8 {
        let (target, addr) = candidates[i].clone();
        i += 1;
        if tried.contains(&target) {
            continue;
        }
        tried.push(target);
        match call(cluster, target, addr.as_deref(), request).await {
            Ok(ControlResponse::NotController { leader }) => {
                last_error = format!("node {target} is not the controller");
                if let Some(l) = leader.filter(|l| !tried.contains(l)) {
                    let addr = address_of(cluster, l);
                    candidates.insert(i, (l, addr));
                }
            }
            Ok(answer) => return Ok(answer),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// Where node `id`'s raft transport listens: its voter entry, else its registration.
pub fn address_of(cluster: &Cluster, id: u64) -> Option<String> {
    cluster
        .config
        .controller_quorum_voters
        .iter()
        .find(|v| v.id as u64 == id)
        .map(QuorumVoter::host_port)
        .or_else(|| cluster.metadata.image().brokers.get(&(id as i32)).map(|b| b.raft_addr.clone()))
}
