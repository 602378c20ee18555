//! AlterPartitionReassignments (key 45): `kafka-reassign-partitions
//! --execute` and `--cancel`; the work is [`crate::admin::reassign`].

use std::ops::RangeInclusive;

use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use super::util::{str_bytes, topic_name};
use crate::admin::reassign::{Move, reassign};
use crate::security::acl::AclOperation;

/// v1 adds allow_replication_factor_change (KIP-860).
pub const VERSIONS: RangeInclusive<i16> = 0..=1;

pub async fn handle(ctx: &RequestContext, req: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
    if !cluster_allowed(ctx, &ctx.broker.metadata.image(), AclOperation::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(super::util::str_bytes("Cluster authorization failed.")));
    }
    let moves: Vec<Move> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Move {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
            })
        })
        .collect();
    // v0 has no flag and allows any change, as Kafka's default does.
    let allow_rf_change = ctx.api_version == 0 || req.allow_replication_factor_change;
    let mut outcomes = reassign(&ctx.broker, &moves, allow_rf_change).await.into_iter();
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
                    match outcomes.next().expect("one outcome per partition") {
                        Ok(()) => r.with_error_message(None),
                        Err(e) => r.with_error_code(e.code.code()).with_error_message(Some(str_bytes(&e.message))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default().with_name(topic_name(&t.name.0)).with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_error_message(None)
        .with_responses(responses)
}
