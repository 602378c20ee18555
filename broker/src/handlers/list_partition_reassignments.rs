//! ListPartitionReassignments (key 46): `kafka-reassign-partitions
//! --verify` and `--list`: the partitions being reassigned, with their
//! replicas and the replicas joining and leaving, from the metadata image.

use std::ops::RangeInclusive;

use kafka_protocol::messages::list_partition_reassignments_response::{OngoingPartitionReassignment, OngoingTopicReassignment};
use kafka_protocol::messages::{BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use super::util::topic_name;
use crate::metadata::TopicImage;
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

pub async fn handle(ctx: &RequestContext, req: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    let image = ctx.broker.metadata.image();
    if !cluster_allowed(ctx, &image, AclOperation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(super::util::str_bytes("Cluster authorization failed.")));
    }
    let ongoing = |t: &TopicImage, p: i32| -> Option<OngoingPartitionReassignment> {
        let state = t.state(p).filter(|s| s.reassigning())?;
        let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
        Some(
            OngoingPartitionReassignment::default()
                .with_partition_index(p)
                .with_replicas(ids(&t.replicas[p as usize]))
                .with_adding_replicas(ids(&state.adding))
                .with_removing_replicas(ids(&state.removing)),
        )
    };
    let topics: Vec<OngoingTopicReassignment> = match &req.topics {
        // Every reassignment in the cluster.
        None => image
            .topics
            .values()
            .filter_map(|t| {
                let partitions: Vec<_> = (0..t.partition_count()).filter_map(|p| ongoing(t, p)).collect();
                (!partitions.is_empty())
                    .then(|| OngoingTopicReassignment::default().with_name(topic_name(&t.name)).with_partitions(partitions))
            })
            .collect(),
        // Kafka leaves out unknown topics and partitions not being moved.
        Some(asked) => asked
            .iter()
            .filter_map(|a| {
                let t = image.topic(a.name.0.as_str())?;
                let partitions: Vec<_> = a.partition_indexes.iter().filter_map(|p| ongoing(t, *p)).collect();
                (!partitions.is_empty())
                    .then(|| OngoingTopicReassignment::default().with_name(topic_name(&t.name)).with_partitions(partitions))
            })
            .collect(),
    };
    ListPartitionReassignmentsResponse::default().with_error_message(None).with_topics(topics)
}
