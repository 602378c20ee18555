//! DescribeQuorum (key 55): `kafka-metadata-quorum describe --status` and
//! `--replication` (Admin's `describeMetadataQuorum`). A Kafka broker
//! forwards the request to the active controller, whose raft client answers
//! it (`KafkaRaftClient.handleDescribeQuorumRequest`, `RaftUtil`); so does
//! this one, over the control RPC ([`crate::cluster::quorum`]).
//!
//! Offsets in the answer are raft positions (index + 1) of the metadata log,
//! not Kafka offsets: see [`QuorumState`]. Directory ids are Kafka's zero
//! uuid: fjord's log directories have none, and the tool prints `null`.

use std::ops::RangeInclusive;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use uuid::Uuid;

use super::RequestContext;
use super::authz::cluster_allowed;
use super::util::{str_bytes, topic_name};
use crate::cluster::quorum::{QuorumState, ReplicaProgress, VoterEndpoint, describe};
use crate::security::acl::AclOperation;

/// Kafka 4.x serves 0-2 (v1: fetch and caught-up timestamps, KIP-836; v2:
/// directory ids, error messages and the voters' endpoints, KIP-853).
pub const VERSIONS: RangeInclusive<i16> = 0..=2;

const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;

/// How long the controller may take to answer before the client is told to
/// retry (Admin retries NOT_LEADER_OR_FOLLOWER within its own timeout).
const CONTROLLER_WAIT: Duration = Duration::from_secs(10);

pub async fn handle(ctx: &RequestContext, req: DescribeQuorumRequest) -> DescribeQuorumResponse {
    if !cluster_allowed(ctx, &ctx.broker.metadata.image(), AclOperation::Describe) {
        return DescribeQuorumResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Cluster authorization failed.")));
    }
    if !asks_for_the_metadata_partition(&req) {
        return unknown_partitions(&req);
    }
    match tokio::time::timeout(CONTROLLER_WAIT, describe(&ctx.broker.cluster)).await {
        Ok(Ok(quorum)) => answer(ctx.api_version, &quorum),
        Ok(Err(e)) => {
            tracing::debug!("DescribeQuorum: no controller answered: {e}");
            not_leader()
        }
        Err(_) => {
            tracing::debug!("DescribeQuorum: the controller did not answer within {CONTROLLER_WAIT:?}");
            not_leader()
        }
    }
}

/// Kafka's `RaftUtil.hasValidTopicPartition`: exactly one topic,
/// `__cluster_metadata`, with exactly partition 0.
fn asks_for_the_metadata_partition(req: &DescribeQuorumRequest) -> bool {
    match req.topics.as_slice() {
        [t] => {
            t.topic_name.0.as_str() == METADATA_TOPIC && matches!(t.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION)
        }
        _ => false,
    }
}

/// `DescribeQuorumRequest.getPartitionLevelErrorResponse`: every partition
/// asked for gets UNKNOWN_TOPIC_OR_PARTITION; the top level has no error.
fn unknown_partitions(req: &DescribeQuorumRequest) -> DescribeQuorumResponse {
    let code = ResponseError::UnknownTopicOrPartition.code();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| PartitionData::default().with_partition_index(p.partition_index).with_error_code(code))
                .collect();
            TopicData::default().with_topic_name(t.topic_name.clone()).with_partitions(partitions)
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

/// `DescribeQuorumResponse.singletonErrorResponse(NOT_LEADER_OR_FOLLOWER)`,
/// what a Kafka node that is not the leader answers.
fn not_leader() -> DescribeQuorumResponse {
    let partition =
        PartitionData::default().with_partition_index(METADATA_PARTITION).with_error_code(ResponseError::NotLeaderOrFollower.code());
    metadata_topic(partition, Vec::new())
}

/// `RaftUtil.singletonDescribeQuorumResponse`.
fn answer(version: i16, q: &QuorumState) -> DescribeQuorumResponse {
    let replicas = |v: &[ReplicaProgress]| v.iter().map(|r| replica_state(version, r)).collect::<Vec<_>>();
    let partition = PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(q.leader_id))
        .with_leader_epoch(q.leader_epoch)
        .with_high_watermark(q.high_watermark)
        .with_current_voters(replicas(&q.voters))
        .with_observers(replicas(&q.observers));
    // Only v2 has `nodes`; Kafka lists the voters there.
    let nodes = if version >= 2 { q.endpoints.iter().map(node).collect() } else { Vec::new() };
    metadata_topic(partition, nodes)
}

fn replica_state(version: i16, r: &ReplicaProgress) -> ReplicaState {
    // The encoder refuses a non-nil directory id below v2, and a nil one is
    // Kafka's "no directory id" at v2, so nil serves every version.
    debug_assert!(version <= *VERSIONS.end());
    ReplicaState::default()
        .with_replica_id(BrokerId(r.id))
        .with_replica_directory_id(Uuid::nil())
        .with_log_end_offset(r.log_end_offset)
        .with_last_fetch_timestamp(r.last_fetch_ms)
        .with_last_caught_up_timestamp(r.last_caught_up_ms)
}

fn node(e: &VoterEndpoint) -> Node {
    let listener = Listener::default().with_name(str_bytes(&e.listener)).with_host(str_bytes(&e.host)).with_port(e.port);
    Node::default().with_node_id(BrokerId(e.id)).with_listeners(vec![listener])
}

fn metadata_topic(partition: PartitionData, nodes: Vec<Node>) -> DescribeQuorumResponse {
    let topic = TopicData::default().with_topic_name(topic_name(METADATA_TOPIC)).with_partitions(vec![partition]);
    DescribeQuorumResponse::default().with_topics(vec![topic]).with_nodes(nodes)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_quorum_request;
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;

    /// Topic names with the partitions asked for.
    type Asked<'a> = &'a [(&'a str, &'a [i32])];

    fn request(topics: Asked) -> DescribeQuorumRequest {
        let topics = topics
            .iter()
            .map(|(name, parts)| {
                let partitions = parts.iter().map(|p| describe_quorum_request::PartitionData::default().with_partition_index(*p)).collect();
                describe_quorum_request::TopicData::default().with_topic_name(topic_name(name)).with_partitions(partitions)
            })
            .collect();
        DescribeQuorumRequest::default().with_topics(topics)
    }

    #[test]
    fn only_the_metadata_partition_is_described() {
        let cases: [(Asked, bool); 6] = [
            (&[("__cluster_metadata", &[0])], true),
            (&[("__cluster_metadata", &[1])], false),
            (&[("__cluster_metadata", &[0, 1])], false),
            (&[("orders", &[0])], false),
            (&[("__cluster_metadata", &[0]), ("orders", &[0])], false),
            (&[], false),
        ];
        for (topics, ok) in cases {
            let req = request(topics);
            assert_eq!(asks_for_the_metadata_partition(&req), ok, "{topics:?}");
            if !ok {
                let resp = unknown_partitions(&req);
                assert_eq!(resp.error_code, 0);
                let asked: Vec<(String, i32)> = topics.iter().flat_map(|(t, ps)| ps.iter().map(|p| (t.to_string(), *p))).collect();
                let answered: Vec<(String, i32)> =
                    resp.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic_name.0.to_string(), p.partition_index))).collect();
                assert_eq!(answered, asked);
                let code = ResponseError::UnknownTopicOrPartition.code();
                assert!(resp.topics.iter().flat_map(|t| &t.partitions).all(|p| p.error_code == code));
            }
        }
    }

    fn quorum() -> QuorumState {
        let r = |id, leo| ReplicaProgress { id, log_end_offset: leo, last_fetch_ms: 1_700_000_000_000, last_caught_up_ms: -1 };
        QuorumState {
            leader_id: 2,
            leader_epoch: 5,
            high_watermark: 40,
            voters: vec![r(1, 40), r(2, 41), r(3, -1)],
            observers: vec![r(4, 39)],
            endpoints: (1..=3)
                .map(|id| VoterEndpoint { id, listener: "CONTROLLER".into(), host: "127.0.0.1".into(), port: 9090 + id as u16 })
                .collect(),
        }
    }

    #[test]
    fn every_version_encodes_and_round_trips() {
        for version in VERSIONS {
            let resp = answer(version, &quorum());
            let mut buf = bytes::BytesMut::new();
            resp.encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
            let back = DescribeQuorumResponse::decode(&mut buf.freeze(), version).expect("decodes");
            let p = &back.topics[0].partitions[0];
            assert_eq!((back.topics[0].topic_name.0.as_str(), p.partition_index, p.error_code), (METADATA_TOPIC, 0, 0));
            assert_eq!((p.leader_id.0, p.leader_epoch, p.high_watermark), (2, 5, 40));
            assert_eq!(
                p.current_voters.iter().map(|v| (v.replica_id.0, v.log_end_offset)).collect::<Vec<_>>(),
                [(1, 40), (2, 41), (3, -1)]
            );
            assert_eq!(p.observers.iter().map(|v| v.replica_id.0).collect::<Vec<_>>(), [4]);
            if version >= 1 {
                assert_eq!(p.current_voters[0].last_fetch_timestamp, 1_700_000_000_000);
                assert_eq!(p.current_voters[0].last_caught_up_timestamp, -1);
            }
            let nodes: Vec<(i32, String, u16)> =
                back.nodes.iter().flat_map(|n| n.listeners.iter().map(move |l| (n.node_id.0, l.name.to_string(), l.port))).collect();
            let want: Vec<(i32, String, u16)> =
                if version >= 2 { (1..=3).map(|id| (id, "CONTROLLER".to_string(), 9090 + id as u16)).collect() } else { vec![] };
            assert_eq!(nodes, want, "v{version}");
        }
    }

    #[test]
    fn no_controller_is_not_leader_or_follower() {
        let resp = not_leader();
        assert_eq!(resp.error_code, 0);
        let p = &resp.topics[0].partitions[0];
        assert_eq!((resp.topics[0].topic_name.0.as_str(), p.partition_index), (METADATA_TOPIC, 0));
        assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code());
    }
}
