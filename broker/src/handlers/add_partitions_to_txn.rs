//! AddPartitionsToTxn (key 24). v0-3: a producer adds partitions to its
//! transaction before it writes to them. v4+: brokers batch several
//! transactions, and with `VerifyOnly` only ask whether the partitions are
//! in them (KIP-890; Fjord's own brokers ask over the control RPC instead).
//!
//! As Kafka's `KafkaApis.handleAddPartitionsToTxnRequest`: v4+ needs
//! CLUSTER_ACTION; v0-3 need WRITE on the transactional id and on each topic
//! (internal topics are never writable this way). If any partition fails
//! those checks or does not exist, none is added: the others answer
//! OPERATION_NOT_ATTEMPTED. Otherwise the coordinator's one answer is every
//! partition's.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::RequestContext;
use super::authz::{allowed, cluster_allowed};
use super::util::topic_name;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

/// The first version sent by brokers, batched.
const FIRST_BROKER_VERSION: i16 = 4;

/// One transaction of the request.
struct Txn<'a> {
    id: &'a str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &'a [AddPartitionsToTxnTopic],
}

pub async fn handle(ctx: &RequestContext, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let resp = AddPartitionsToTxnResponse::default();
    if ctx.api_version < FIRST_BROKER_VERSION {
        let txn = Txn {
            id: &req.v3_and_below_transactional_id,
            producer_id: req.v3_and_below_producer_id.0,
            producer_epoch: req.v3_and_below_producer_epoch,
            verify_only: false,
            topics: &req.v3_and_below_topics,
        };
        return resp.with_results_by_topic_v3_and_below(add(ctx, &txn).await);
    }
    if !cluster_allowed(ctx, &ctx.broker.metadata.image(), AclOperation::ClusterAction) {
        return resp.with_error_code(E::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let txn = Txn {
            id: &t.transactional_id,
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            verify_only: t.verify_only,
            topics: &t.topics,
        };
        let topics = add(ctx, &txn).await;
        results.push(AddPartitionsToTxnResult::default().with_transactional_id(t.transactional_id.clone()).with_topic_results(topics));
    }
    resp.with_results_by_transaction(results)
}

/// One transaction's partitions, each with its code.
async fn add(ctx: &RequestContext, txn: &Txn<'_>) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions: Vec<(String, i32)> =
        txn.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p))).collect();
    let codes = codes(ctx, txn, &partitions).await;
    results(&partitions, &codes)
}

async fn codes(ctx: &RequestContext, txn: &Txn<'_>, partitions: &[(String, i32)]) -> Vec<i16> {
    let from_client = ctx.api_version < FIRST_BROKER_VERSION;
    let image = ctx.broker.metadata.image();
    if from_client && !allowed(ctx, &image, AclOperation::Write, ResourceType::TransactionalId, txn.id) {
        return vec![E::TransactionalIdAuthorizationFailed.code(); partitions.len()];
    }
    let prechecked: Vec<Option<i16>> = partitions
        .iter()
        .map(|(topic, index)| {
            // Kafka's `Topic.isInternal`, by name: the topic need not exist.
            let internal = matches!(topic.as_str(), "__consumer_offsets" | "__transaction_state" | "__share_group_state");
            if from_client && (internal || !allowed(ctx, &image, AclOperation::Write, ResourceType::Topic, topic)) {
                return Some(E::TopicAuthorizationFailed.code());
            }
            match image.topic(topic) {
                Some(t) if *index >= 0 && *index < t.partition_count() => None,
                _ => Some(E::UnknownTopicOrPartition.code()),
            }
        })
        .collect();
    if prechecked.iter().any(Option::is_some) {
        return prechecked.into_iter().map(|c| c.unwrap_or(E::OperationNotAttempted.code())).collect();
    }
    let coordinator = &ctx.broker.txn;
    if txn.verify_only {
        return match coordinator.verify(txn.id, txn.producer_id, txn.producer_epoch, partitions).await {
            Ok(codes) => codes,
            Err(code) => vec![code; partitions.len()],
        };
    }
    let set: BTreeSet<(String, i32)> = partitions.iter().cloned().collect();
    let code = match coordinator.add_partitions(txn.id, txn.producer_id, txn.producer_epoch, &set).await {
        Ok(()) => 0,
        // Clients before v2 know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
        Err(code) if code == E::ProducerFenced.code() && ctx.api_version < 2 => E::InvalidProducerEpoch.code(),
        Err(code) => code,
    };
    vec![code; partitions.len()]
}

/// The response's topics, in the order the request named them.
fn results(partitions: &[(String, i32)], codes: &[i16]) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, index), code) in partitions.iter().zip(codes) {
        let result = AddPartitionsToTxnPartitionResult::default().with_partition_index(*index).with_partition_error_code(*code);
        match topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.results_by_partition.push(result),
            None => {
                topics.push(AddPartitionsToTxnTopicResult::default().with_name(topic_name(topic)).with_results_by_partition(vec![result]))
            }
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_group_by_topic_in_request_order() {
        let partitions = vec![("b".to_string(), 1), ("a".to_string(), 0), ("b".to_string(), 0)];
        let topics = results(&partitions, &[0, 3, 55]);
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        let b: Vec<(i32, i16)> = topics[0].results_by_partition.iter().map(|p| (p.partition_index, p.partition_error_code)).collect();
        assert_eq!(b, [(1, 0), (0, 55)]);
    }
}
