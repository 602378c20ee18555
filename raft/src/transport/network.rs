//! openraft's network traits over the shared per-peer connections.
//!
//! Ownership: each group's `Raft` owns one [`NetworkFactory`] (its group id
//! and a transport handle); openraft asks it for one [`GroupNetwork`] per
//! target and purpose (replication, heartbeat, snapshot). All of them for one
//! target share that target's [`Peer`].
//!
//! Errors: anything that means "no answer from the peer" (no connection, the
//! connection lost, the group not hosted there yet) is `Unreachable`, so
//! openraft backs off before it retries; a missing answer by the deadline is
//! `Timeout`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::RPCTypes;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};

use super::Transport;
use super::frame::{Rpc, decode_body, encode_body};
use super::peer::{CallError, Peer, Urgency};
use super::server::SnapshotRequest;
use crate::registry::GroupId;
use crate::types::{Snapshot, TypeConfig, Vote};

/// Creates the network clients of one group. See the module doc.
#[derive(Clone)]
pub struct NetworkFactory {
    group: GroupId,
    transport: Transport,
}

impl NetworkFactory {
    pub fn new(group: GroupId, transport: Transport) -> Self {
        Self { group, transport }
    }

    fn client(&self, target: u64, node: &BasicNode, heartbeat: bool) -> GroupNetwork {
        let peer = self.transport.peer(target, Some(&node.addr));
        GroupNetwork { group: self.group, local: self.transport.local_id(), peer, heartbeat }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = GroupNetwork;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GroupNetwork {
        self.client(target, node, false)
    }

    /// Heartbeats linger for company: that is what keeps envelopes per second
    /// proportional to node pairs rather than groups.
    async fn new_heartbeat_client(&mut self, target: u64, node: &BasicNode) -> GroupNetwork {
        self.client(target, node, true)
    }
}

/// One group's client for one target. See the module doc.
pub struct GroupNetwork {
    group: GroupId,
    local: u64,
    peer: Arc<Peer>,
    heartbeat: bool,
}

impl GroupNetwork {
    async fn call<Resp: serde::de::DeserializeOwned>(
        &self,
        rpc: Rpc,
        body: Vec<u8>,
        urgency: Urgency,
        ttl: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let action = match rpc {
            Rpc::Append | Rpc::Heartbeat => RPCTypes::AppendEntries,
            Rpc::Vote | Rpc::PreVote => RPCTypes::Vote,
            Rpc::Snapshot => RPCTypes::InstallSnapshot,
            Rpc::TransferLeader => RPCTypes::TransferLeader,
            Rpc::Control => unreachable!("groups send no control requests"),
        };
        let answer = self.peer.call(rpc, self.group, &body, urgency, ttl).await.map_err(|e| match e {
            CallError::Timeout(target) => RPCError::Timeout(Timeout { action, id: self.local, target, timeout: ttl }),
            e => RPCError::Unreachable(Unreachable::from_string(e)),
        })?;
        // The connection checked the frame; a body that does not decode is a broken peer.
        decode_body(action_name(rpc), &answer).map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))
    }
}

fn action_name(rpc: Rpc) -> &'static str {
    match rpc {
        Rpc::Append | Rpc::Heartbeat => "append entries answer",
        Rpc::Vote => "vote answer",
        Rpc::PreVote => "pre-vote answer",
        Rpc::Snapshot => "snapshot answer",
        Rpc::TransferLeader => "transfer leader answer",
        Rpc::Control => "control answer",
    }
}

impl RaftNetworkV2<TypeConfig> for GroupNetwork {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // Only heartbeats linger: an empty append from the replication client
        // carries a commit index that the next write waits for.
        let (kind, urgency) = if self.heartbeat { (Rpc::Heartbeat, Urgency::Linger) } else { (Rpc::Append, Urgency::Now) };
        self.call(kind, encode_body(&rpc), urgency, option.soft_ttl()).await
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(Rpc::Vote, encode_body(&rpc), Urgency::Linger, option.soft_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(Rpc::PreVote, encode_body(&rpc), Urgency::Linger, option.soft_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot<Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let body = encode_body(&SnapshotRequest { vote, meta: snapshot.meta, data: snapshot.snapshot });
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = self.call(Rpc::Snapshot, body, Urgency::Now, option.soft_ttl()) => r.map_err(StreamingError::from),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(Rpc::TransferLeader, encode_body(&req), Urgency::Now, option.soft_ttl()).await
    }
}
