//! One module per Kafka API key, each declaring the versions it serves; the
//! registry below is what ApiVersions advertises and what dispatch accepts,
//! so the two can never drift apart.
//!
//! A handler is `async fn handle(ctx, request) -> response`. Dispatch runs
//! handlers one request at a time per connection, in arrival order; a
//! handler whose answer waits (produce waiting for acks, fetch long-polling)
//! returns a [`Pending`] future instead, which the connection awaits in
//! order while it reads and starts the next request.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod authz;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod fetch_session;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod util;
pub mod write_txn_markers;

use std::future::Future;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

use crate::Broker;
use crate::protocol::frame::{FrameError, Request, decode_body, encode_response};

/// What a request needs to know about where it came from.
pub struct RequestContext {
    pub broker: Arc<Broker>,
    /// The listener the request arrived on (Metadata answers with its advertised endpoints).
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    /// The connection's security state: its principal, for ACLs.
    pub session: Arc<crate::server::session::Session>,
}

/// What the connection does after a request.
pub enum Reply {
    /// Write this frame (chunks in order, size prefix included).
    Frame(Vec<Bytes>),
    /// acks=0 produce: nothing is written.
    Nothing,
    /// Close the connection (Kafka closes it for these; acks=0 with an error).
    Close(String),
}

/// A reply that may still be waiting (acks, long poll).
pub type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

pub fn ready(reply: Reply) -> Pending {
    Box::pin(std::future::ready(reply))
}

/// One served API.
pub struct Api {
    pub key: ApiKey,
    pub versions: RangeInclusive<i16>,
}

/// Every API this broker serves, with its versions.
pub const APIS: &[Api] = &[
    Api { key: ApiKey::Produce, versions: produce::VERSIONS },
    Api { key: ApiKey::Fetch, versions: fetch::VERSIONS },
    Api { key: ApiKey::ListOffsets, versions: list_offsets::VERSIONS },
    Api { key: ApiKey::Metadata, versions: metadata::VERSIONS },
    Api { key: ApiKey::ApiVersions, versions: api_versions::VERSIONS },
    Api { key: ApiKey::CreateTopics, versions: create_topics::VERSIONS },
    Api { key: ApiKey::DeleteTopics, versions: delete_topics::VERSIONS },
    Api { key: ApiKey::InitProducerId, versions: init_producer_id::VERSIONS },
    Api { key: ApiKey::AddPartitionsToTxn, versions: add_partitions_to_txn::VERSIONS },
    Api { key: ApiKey::AddOffsetsToTxn, versions: add_offsets_to_txn::VERSIONS },
    Api { key: ApiKey::EndTxn, versions: end_txn::VERSIONS },
    Api { key: ApiKey::DescribeTransactions, versions: describe_transactions::VERSIONS },
    Api { key: ApiKey::ListTransactions, versions: list_transactions::VERSIONS },
    Api { key: ApiKey::OffsetForLeaderEpoch, versions: offset_for_leader_epoch::VERSIONS },
    Api { key: ApiKey::DescribeConfigs, versions: describe_configs::VERSIONS },
    Api { key: ApiKey::AlterConfigs, versions: alter_configs::VERSIONS },
    Api { key: ApiKey::CreatePartitions, versions: create_partitions::VERSIONS },
    Api { key: ApiKey::IncrementalAlterConfigs, versions: incremental_alter_configs::VERSIONS },
    Api { key: ApiKey::DescribeCluster, versions: describe_cluster::VERSIONS },
    Api { key: ApiKey::DescribeQuorum, versions: describe_quorum::VERSIONS },
    Api { key: ApiKey::DescribeTopicPartitions, versions: describe_topic_partitions::VERSIONS },
    Api { key: ApiKey::OffsetCommit, versions: offset_commit::VERSIONS },
    Api { key: ApiKey::OffsetFetch, versions: offset_fetch::VERSIONS },
    Api { key: ApiKey::TxnOffsetCommit, versions: txn_offset_commit::VERSIONS },
    Api { key: ApiKey::FindCoordinator, versions: find_coordinator::VERSIONS },
    Api { key: ApiKey::JoinGroup, versions: join_group::VERSIONS },
    Api { key: ApiKey::Heartbeat, versions: heartbeat::VERSIONS },
    Api { key: ApiKey::LeaveGroup, versions: leave_group::VERSIONS },
    Api { key: ApiKey::SyncGroup, versions: sync_group::VERSIONS },
    Api { key: ApiKey::DescribeGroups, versions: describe_groups::VERSIONS },
    Api { key: ApiKey::ListGroups, versions: list_groups::VERSIONS },
    Api { key: ApiKey::DeleteGroups, versions: delete_groups::VERSIONS },
    Api { key: ApiKey::OffsetDelete, versions: offset_delete::VERSIONS },
    Api { key: ApiKey::DescribeLogDirs, versions: describe_log_dirs::VERSIONS },
    Api { key: ApiKey::ElectLeaders, versions: elect_leaders::VERSIONS },
    Api { key: ApiKey::AlterPartitionReassignments, versions: alter_partition_reassignments::VERSIONS },
    Api { key: ApiKey::ListPartitionReassignments, versions: list_partition_reassignments::VERSIONS },
    Api { key: ApiKey::SaslHandshake, versions: sasl_handshake::VERSIONS },
    Api { key: ApiKey::SaslAuthenticate, versions: sasl_authenticate::VERSIONS },
    Api { key: ApiKey::DescribeClientQuotas, versions: describe_client_quotas::VERSIONS },
    Api { key: ApiKey::DescribeUserScramCredentials, versions: describe_user_scram_credentials::VERSIONS },
    Api { key: ApiKey::AlterUserScramCredentials, versions: alter_user_scram_credentials::VERSIONS },
    Api { key: ApiKey::DescribeAcls, versions: describe_acls::VERSIONS },
    Api { key: ApiKey::CreateAcls, versions: create_acls::VERSIONS },
    Api { key: ApiKey::DeleteAcls, versions: delete_acls::VERSIONS },
    Api { key: ApiKey::WriteTxnMarkers, versions: write_txn_markers::VERSIONS },
    Api { key: ApiKey::DescribeProducers, versions: describe_producers::VERSIONS },
];

pub fn served(key: ApiKey) -> Option<&'static RangeInclusive<i16>> {
    APIS.iter().find(|a| a.key == key).map(|a| &a.versions)
}

/// Encodes a response frame for the request in `ctx`.
pub fn respond<R: Encodable + HeaderVersion>(ctx: &RequestContext, response: &R) -> Reply {
    match encode_response(ctx.correlation_id, ctx.api_version, response) {
        Ok(frame) => Reply::Frame(vec![frame]),
        Err(e) => Reply::Close(e.to_string()),
    }
}

/// Decodes and runs one request. Errors close the connection, as Kafka
/// closes it for an unknown key, a version it does not serve, or a body
/// that does not parse.
pub async fn dispatch(ctx: RequestContext, request: Request) -> Result<Pending, FrameError> {
    let Request { api_key, header, body } = request;
    let version = header.request_api_version;
    let in_range = served(api_key).is_some_and(|v| v.contains(&version));
    if api_key == ApiKey::ApiVersions {
        // Any version passes the gate (KIP-511): too new gets a v0 error reply.
        return Ok(ready(api_versions::dispatch(&ctx, version, body)));
    }
    if !in_range {
        return Err(FrameError::BadBody { api: api_key, version, detail: "unsupported version".into() });
    }
    let ctx = Arc::new(ctx);
    macro_rules! simple {
        ($module:ident, $request:ty) => {{
            let req: $request = decode_body(api_key, version, body)?;
            let resp = $module::handle(&ctx, req).await;
            Ok(ready(respond(&ctx, &resp)))
        }};
    }
    match api_key {
        ApiKey::Produce => {
            let req: ProduceRequest = decode_body(api_key, version, body)?;
            Ok(produce::handle(ctx, req).await)
        }
        ApiKey::Fetch => {
            let req: FetchRequest = decode_body(api_key, version, body)?;
            Ok(fetch::handle(ctx, req).await)
        }
        ApiKey::ListOffsets => simple!(list_offsets, ListOffsetsRequest),
        ApiKey::Metadata => simple!(metadata, MetadataRequest),
        ApiKey::CreateTopics => simple!(create_topics, CreateTopicsRequest),
        ApiKey::DeleteTopics => simple!(delete_topics, DeleteTopicsRequest),
        ApiKey::InitProducerId => simple!(init_producer_id, InitProducerIdRequest),
        ApiKey::AddPartitionsToTxn => simple!(add_partitions_to_txn, AddPartitionsToTxnRequest),
        ApiKey::AddOffsetsToTxn => simple!(add_offsets_to_txn, AddOffsetsToTxnRequest),
        ApiKey::EndTxn => simple!(end_txn, EndTxnRequest),
        ApiKey::DescribeTransactions => simple!(describe_transactions, DescribeTransactionsRequest),
        ApiKey::ListTransactions => simple!(list_transactions, ListTransactionsRequest),
        ApiKey::WriteTxnMarkers => simple!(write_txn_markers, WriteTxnMarkersRequest),
        ApiKey::DescribeProducers => simple!(describe_producers, DescribeProducersRequest),
        ApiKey::OffsetForLeaderEpoch => simple!(offset_for_leader_epoch, OffsetForLeaderEpochRequest),
        ApiKey::DescribeConfigs => simple!(describe_configs, DescribeConfigsRequest),
        ApiKey::AlterConfigs => simple!(alter_configs, AlterConfigsRequest),
        ApiKey::CreatePartitions => simple!(create_partitions, CreatePartitionsRequest),
        ApiKey::DescribeLogDirs => simple!(describe_log_dirs, DescribeLogDirsRequest),
        ApiKey::ElectLeaders => simple!(elect_leaders, ElectLeadersRequest),
        ApiKey::AlterPartitionReassignments => simple!(alter_partition_reassignments, AlterPartitionReassignmentsRequest),
        ApiKey::ListPartitionReassignments => simple!(list_partition_reassignments, ListPartitionReassignmentsRequest),
        ApiKey::IncrementalAlterConfigs => simple!(incremental_alter_configs, IncrementalAlterConfigsRequest),
        ApiKey::DescribeCluster => simple!(describe_cluster, DescribeClusterRequest),
        ApiKey::DescribeQuorum => simple!(describe_quorum, DescribeQuorumRequest),
        ApiKey::DescribeTopicPartitions => simple!(describe_topic_partitions, DescribeTopicPartitionsRequest),
        ApiKey::OffsetCommit => simple!(offset_commit, OffsetCommitRequest),
        ApiKey::OffsetFetch => simple!(offset_fetch, OffsetFetchRequest),
        ApiKey::TxnOffsetCommit => simple!(txn_offset_commit, TxnOffsetCommitRequest),
        ApiKey::FindCoordinator => simple!(find_coordinator, FindCoordinatorRequest),
        ApiKey::JoinGroup => {
            let req: JoinGroupRequest = decode_body(api_key, version, body)?;
            Ok(join_group::handle(ctx, req).await)
        }
        ApiKey::SyncGroup => {
            let req: SyncGroupRequest = decode_body(api_key, version, body)?;
            Ok(sync_group::handle(ctx, req).await)
        }
        ApiKey::Heartbeat => simple!(heartbeat, HeartbeatRequest),
        ApiKey::LeaveGroup => simple!(leave_group, LeaveGroupRequest),
        ApiKey::DescribeGroups => simple!(describe_groups, DescribeGroupsRequest),
        ApiKey::ListGroups => simple!(list_groups, ListGroupsRequest),
        ApiKey::DeleteGroups => simple!(delete_groups, DeleteGroupsRequest),
        ApiKey::OffsetDelete => simple!(offset_delete, OffsetDeleteRequest),
        ApiKey::SaslHandshake => Ok(sasl_handshake::handle(ctx, decode_body(api_key, version, body)?)),
        ApiKey::SaslAuthenticate => Ok(sasl_authenticate::handle(ctx, decode_body(api_key, version, body)?)),
        ApiKey::DescribeClientQuotas => simple!(describe_client_quotas, DescribeClientQuotasRequest),
        ApiKey::DescribeUserScramCredentials => simple!(describe_user_scram_credentials, DescribeUserScramCredentialsRequest),
        ApiKey::AlterUserScramCredentials => simple!(alter_user_scram_credentials, AlterUserScramCredentialsRequest),
        ApiKey::DescribeAcls => simple!(describe_acls, DescribeAclsRequest),
        ApiKey::CreateAcls => simple!(create_acls, CreateAclsRequest),
        ApiKey::DeleteAcls => simple!(delete_acls, DeleteAclsRequest),
        other => Err(FrameError::BadBody { api: other, version, detail: "not served".into() }),
    }
}
