//! OffsetForLeaderEpoch (key 23, v2-4): where a leader epoch ends, for
//! consumers validating their position after a leader change (KIP-320) and,
//! later, followers. Kafka's `ReplicaManager.lastOffsetForLeaderEpoch` and
//! `Partition.lastOffsetForLeaderEpoch`, over the epochs the log's batches
//! carry (`partition/epochs.rs`).

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::RequestContext;
use super::authz::{allowed, cluster_allowed};
use super::list_offsets::hosted_partition;
use crate::Broker;
use crate::metadata::TopicImage;
use crate::partition::epochs::{self, UNDEFINED_EPOCH};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 2..=4;

pub async fn handle(ctx: &RequestContext, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let image = ctx.broker.metadata.image();
    // Followers need CLUSTER_ACTION, consumers (KIP-320) DESCRIBE on the
    // topic; Kafka answers the refused topics after the others.
    let replica = cluster_allowed(ctx, &image, AclOperation::ClusterAction);
    let (permitted, refused): (Vec<_>, Vec<_>) =
        req.topics.iter().partition(|t| replica || allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, &t.topic.0));
    let answered = permitted.into_iter().map(|t| {
        let topic = image.topic(&t.topic.0).map(Arc::as_ref);
        let partitions = t.partitions.iter().map(|p| end_offset(&ctx.broker, topic, p)).collect();
        OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
    });
    let refused = refused.into_iter().map(|t| {
        let partitions = t
            .partitions
            .iter()
            .map(|p| EpochEndOffset::default().with_partition(p.partition).with_error_code(ResponseError::TopicAuthorizationFailed.code()))
            .collect();
        OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
    });
    OffsetForLeaderEpochResponse::default().with_topics(answered.chain(refused).collect())
}

/// One partition's answer. Only the leader answers, followers included
/// (`fetchOnlyFromLeader = true`); an epoch the log cannot place is
/// `(-1, -1)` without an error.
fn end_offset(broker: &Broker, topic: Option<&TopicImage>, p: &OffsetForLeaderPartition) -> EpochEndOffset {
    let base = EpochEndOffset::default().with_partition(p.partition);
    let partition = match hosted_partition(broker, topic, p.partition) {
        Ok(partition) => partition,
        Err(e) => return base.with_error_code(e.code()),
    };
    let current = (p.current_leader_epoch != UNDEFINED_EPOCH).then_some(p.current_leader_epoch);
    if let Err(e) = partition.check_leader(current, true) {
        return base.with_error_code(epochs::error_code(e));
    }
    match partition.end_offset_for_epoch(p.leader_epoch) {
        Ok(Some(end)) => base.with_leader_epoch(end.epoch).with_end_offset(end.end_offset),
        Ok(None) => base,
        Err(e) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, "epoch lookup: {e}");
            base.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}
