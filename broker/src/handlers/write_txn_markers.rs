//! WriteTxnMarkers (key 27): a transaction coordinator (another broker's, or
//! `kafka-transactions abort` through the admin client) asks this partition
//! leader to end a transaction with a COMMIT or ABORT marker. Fjord's own
//! coordinators reach leaders over the raft transport's control RPC and
//! land in the same [`write_markers_locally`].

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use crate::partition::markers::{TxnMarker, write_markers_locally};
use crate::security::acl::AclOperation;

/// Kafka 4 serves version 1 only (v0 went with KIP-896).
pub const VERSIONS: RangeInclusive<i16> = 1..=1;

pub async fn handle(ctx: &RequestContext, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let allowed = cluster_allowed(ctx, &ctx.broker.metadata.image(), AclOperation::ClusterAction);
    let mut results = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let marker = TxnMarker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let partitions: Vec<(String, i32)> =
            m.topics.iter().flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p))).collect();
        let codes = if allowed {
            write_markers_locally(&ctx.broker, &marker, &partitions).await
        } else {
            partitions.into_iter().map(|p| (p, ResponseError::ClusterAuthorizationFailed.code())).collect()
        };
        let topics = m
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        let code = codes.iter().find(|((n, i), _)| n.as_str() == t.name.0.as_str() && i == p).map_or(0, |(_, c)| *c);
                        WritableTxnMarkerPartitionResult::default().with_partition_index(*p).with_error_code(code)
                    })
                    .collect();
                WritableTxnMarkerTopicResult::default().with_name(t.name.clone()).with_partitions(partitions)
            })
            .collect();
        results.push(WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics));
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
