//! DescribeProducers (key 61): the producers a partition leader tracks, with
//! their open transaction's first offset (`kafka-transactions
//! describe-producers`, `find-hanging` and `abort` read it).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};

use super::RequestContext;
use super::authz::allowed;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

pub async fn handle(ctx: &RequestContext, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let image = ctx.broker.metadata.image();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let may_read = allowed(ctx, &image, AclOperation::Read, ResourceType::Topic, &name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let r = PartitionResponse::default().with_partition_index(index);
                    if !may_read {
                        return r.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(topic) = image.topic(&name).filter(|ti| index >= 0 && index < ti.partition_count()) else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    match ctx.broker.partitions.get(&name, index).filter(|p| p.topic_id == topic.id && p.is_leader()) {
                        None => r.with_error_code(ResponseError::NotLeaderOrFollower.code()),
                        Some(p) => r.with_active_producers(producers(&p)),
                    }
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn producers(partition: &crate::partition::Partition) -> Vec<ProducerState> {
    let states = partition.group().producer_states();
    let states = states.read().expect("producer states");
    states
        .iter()
        .map(|(id, e)| {
            ProducerState::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(i32::from(e.epoch()))
                .with_last_sequence(e.last_seq())
                .with_last_timestamp(e.last_timestamp_ms())
                // The coordinator epoch of the last marker is not kept.
                .with_coordinator_epoch(-1)
                .with_current_txn_start_offset(e.current_txn_first_offset().unwrap_or(-1))
        })
        .collect()
}
