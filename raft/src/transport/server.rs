//! The receiving side: the listener that accepts peers' connections, and the
//! fan-out of an envelope's requests to the groups they name.
//!
//! Ownership: the listener task belongs to the [`super::Transport`]; each
//! inbound request runs on a task of its own (spawned by the peer's reader),
//! which calls the group's `Raft` and queues the answer on the same peer.

use tokio::net::TcpListener;

use super::Transport;
use super::frame::{self, FrameError, Handshake, Kind, Rpc, decode_body, encode_body};
use super::peer::Urgency;
use super::stream::{self, Stream};
use crate::registry::{FjordRaft, GroupId};
use crate::types::{SnapshotMeta, TypeConfig, Vote};

/// Finds the raft instance of a group hosted on this node.
pub trait Dispatch: Send + Sync + 'static {
    fn raft(&self, group: &GroupId) -> Option<FjordRaft>;

    /// Serves a [`Rpc::Control`] request: the broker's, not a group's.
    fn control(&self, body: Vec<u8>) -> futures_util::future::BoxFuture<'static, Result<Vec<u8>, String>> {
        let _ = body;
        Box::pin(async { Err("no control handler on this node".to_string()) })
    }
}

type AppendRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
type VoteRequest = openraft::raft::VoteRequest<TypeConfig>;
type TransferLeaderRequest = openraft::raft::TransferLeaderRequest<TypeConfig>;

/// The body of a snapshot request: the whole snapshot in one message (a
/// partition's snapshot is small: offsets and producer states, no data).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SnapshotRequest {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// A decoded inbound request.
pub(crate) enum Inbound {
    Append(AppendRequest),
    Heartbeat(AppendRequest),
    Vote(VoteRequest),
    PreVote(VoteRequest),
    Snapshot(SnapshotRequest),
    TransferLeader(TransferLeaderRequest),
    Control(Vec<u8>),
}

impl Inbound {
    /// Answers linger like the requests they answer.
    pub fn urgency(&self) -> Urgency {
        match self {
            Inbound::Heartbeat(_) | Inbound::Vote(_) | Inbound::PreVote(_) => Urgency::Linger,
            _ => Urgency::Now,
        }
    }
}

/// Decodes a request body; an error closes the connection it came on.
/// Entries are validated here (each batch's CRC), see `entry::WireEntry`.
pub(crate) fn decode_request(rpc: Rpc, body: &[u8]) -> Result<Inbound, FrameError> {
    Ok(match rpc {
        Rpc::Append => Inbound::Append(decode_body("append entries", body)?),
        Rpc::Heartbeat => Inbound::Heartbeat(decode_body("heartbeat", body)?),
        Rpc::Vote => Inbound::Vote(decode_body("vote", body)?),
        Rpc::PreVote => Inbound::PreVote(decode_body("pre-vote", body)?),
        Rpc::Snapshot => Inbound::Snapshot(decode_body("snapshot", body)?),
        Rpc::TransferLeader => Inbound::TransferLeader(decode_body("transfer leader", body)?),
        Rpc::Control => Inbound::Control(body.to_vec()),
    })
}

/// Serves one request on its group; the kind and body of the answer.
pub(crate) async fn serve(dispatch: &dyn Dispatch, group: GroupId, request: Inbound) -> (Kind, Vec<u8>) {
    let request = match request {
        Inbound::Control(body) => {
            return match dispatch.control(body).await {
                Ok(body) => (Kind::Response(Rpc::Control), body),
                Err(e) => (Kind::Failure, e.into_bytes()),
            };
        }
        other => other,
    };
    let Some(raft) = dispatch.raft(&group) else {
        // Not created here yet, or already removed: the sender backs off and retries.
        return (Kind::Failure, format!("group {group} is not hosted here").into_bytes());
    };
    let (rpc, answer) = match request {
        Inbound::Append(r) => (Rpc::Append, raft.append_entries(r).await.map(|a| encode_body(&a)).map_err(|e| e.to_string())),
        Inbound::Heartbeat(r) => (Rpc::Heartbeat, raft.append_entries(r).await.map(|a| encode_body(&a)).map_err(|e| e.to_string())),
        Inbound::Vote(r) => (Rpc::Vote, raft.vote(r).await.map(|a| encode_body(&a)).map_err(|e| e.to_string())),
        Inbound::PreVote(r) => (Rpc::PreVote, raft.pre_vote(r).await.map(|a| encode_body(&a)).map_err(|e| e.to_string())),
        Inbound::Snapshot(s) => {
            let snapshot = openraft::Snapshot { meta: s.meta, snapshot: s.data };
            (Rpc::Snapshot, raft.install_full_snapshot(s.vote, snapshot).await.map(|a| encode_body(&a)).map_err(|e| e.to_string()))
        }
        Inbound::TransferLeader(r) => {
            (Rpc::TransferLeader, raft.handle_transfer_leader(r).await.map(|a| encode_body(&a)).map_err(|e| e.to_string()))
        }
        Inbound::Control(_) => unreachable!("served above"),
    };
    match answer {
        Ok(body) => (Kind::Response(rpc), body),
        Err(e) => (Kind::Failure, e.into_bytes()),
    }
}

/// Accepts peers until the transport stops. Each connection's handshake runs
/// on its own task, so a silent client cannot hold up the others.
pub(crate) async fn listen(listener: TcpListener, transport: Transport) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let transport = transport.clone();
                tokio::spawn(async move {
                    let setup = transport.config().connection_setup_timeout();
                    let opened = async {
                        let stream = stream::accept(transport.tls(), stream).await?;
                        handshake(stream, &transport).await
                    };
                    match tokio::time::timeout(setup, opened).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!("raft transport: refused connection from {from}: {e}"),
                        Err(_) => tracing::warn!("raft transport: handshake from {from} timed out"),
                    }
                });
            }
            // Out of descriptors and the like: wait rather than spin.
            Err(e) => {
                tracing::warn!("raft transport accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads the first frame. A hello must come from a lower id (one connection
/// per pair, the lower id dials): answer it and hand the connection to that
/// peer's manager. A dial-back must come from a higher id: dial it.
async fn handshake(mut stream: Stream, transport: &Transport) -> Result<(), FrameError> {
    let local = transport.local_id();
    match frame::read_handshake(&mut stream).await? {
        Handshake::Hello { node_id: remote } if remote < local => {
            frame::write_hello(&mut stream, local).await?;
            let peer = transport.peer(remote, None);
            peer.accepted().send(stream).await.map_err(|_| FrameError::Unexpected("a running transport"))
        }
        Handshake::DialBack { node_id: remote, addr } if remote > local => {
            // The peer's own word on where it listens now beats any older record.
            transport.set_address(remote, &addr);
            transport.peer(remote, Some(&addr)).redial_now();
            Ok(())
        }
        Handshake::Hello { node_id } | Handshake::DialBack { node_id, .. } => {
            Err(FrameError::Body { what: "hello", detail: format!("node {node_id} and node {local}: the lower id dials") })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::Bytes;
    use fjord_storage::batch::uncompressed_batch;
    use openraft::entry::RaftEntry;

    use super::*;
    use crate::entry::{Entry, KafkaBatch};
    use crate::types::{Membership, StoredMembership, log_id};

    /// postcard is not self-describing: every openraft message we carry must round-trip through it.
    #[test]
    fn openraft_messages_round_trip_through_postcard() {
        let vote = Vote::new_committed(3, 2);
        let batch = KafkaBatch::new(Bytes::from(uncompressed_batch(&[1, 2, 3], 10))).unwrap();
        let m = Membership::new_with_defaults(vec![BTreeSet::from([1, 2, 3])], []);
        let entries =
            vec![Entry::new_blank(log_id(3, 5)), Entry::new_membership(log_id(3, 6), m.clone()), Entry::new_normal(log_id(3, 7), batch)];
        let append = AppendRequest { vote, prev_log_id: Some(log_id(2, 4)), leader_commit: Some(log_id(2, 4)), entries };
        let Inbound::Append(back) = decode_request(Rpc::Append, &encode_body(&append)).unwrap() else { panic!() };
        assert_eq!((back.vote, back.prev_log_id, back.entries.clone()), (append.vote, append.prev_log_id, append.entries.clone()));

        let req = VoteRequest { vote, last_log_id: Some(log_id(3, 7)), leadership_transfer: true };
        let Inbound::Vote(back) = decode_request(Rpc::Vote, &encode_body(&req)).unwrap() else { panic!() };
        assert_eq!(back, req);
        let resp = openraft::raft::VoteResponse::<TypeConfig>::new(vote, Some(log_id(3, 7)), true);
        assert_eq!(decode_body::<openraft::raft::VoteResponse<TypeConfig>>("vote", &encode_body(&resp)).unwrap(), resp);
        for resp in [
            openraft::raft::AppendEntriesResponse::<TypeConfig>::Success,
            openraft::raft::AppendEntriesResponse::PartialSuccess(Some(log_id(3, 6))),
            openraft::raft::AppendEntriesResponse::Conflict,
            openraft::raft::AppendEntriesResponse::HigherVote(vote),
        ] {
            assert_eq!(decode_body::<openraft::raft::AppendEntriesResponse<TypeConfig>>("append", &encode_body(&resp)).unwrap(), resp);
        }

        let meta = SnapshotMeta { last_log_id: Some(log_id(3, 7)), last_membership: StoredMembership::new(Some(log_id(3, 6)), m) };
        let snap = SnapshotRequest { vote, meta: meta.clone(), data: vec![1, 2, 3] };
        let Inbound::Snapshot(back) = decode_request(Rpc::Snapshot, &encode_body(&snap)).unwrap() else { panic!() };
        assert_eq!((back.vote, back.meta, back.data), (vote, meta, vec![1, 2, 3]));
        assert!(decode_request(Rpc::Append, b"\xff\xff\xff").is_err(), "garbage is an error");
    }
}
