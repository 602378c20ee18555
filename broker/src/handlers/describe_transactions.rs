//! DescribeTransactions (key 65): `kafka-transactions describe`. Each id is
//! answered by its coordinator (clients look it up with FindCoordinator
//! key type 1); DESCRIBE on the transactional id, and only topics the
//! principal may describe are listed (Kafka's
//! `KafkaApis.handleDescribeTransactionsRequest`).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId};

use super::RequestContext;
use super::authz::allowed;
use super::util::{str_bytes, topic_name};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

pub async fn handle(ctx: &RequestContext, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(req.transactional_ids.len());
    for id in &req.transactional_ids {
        states.push(describe(ctx, id).await.with_transactional_id(id.clone()));
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

async fn describe(ctx: &RequestContext, id: &str) -> TransactionState {
    let failed = |code: E| TransactionState::default().with_error_code(code.code()).with_transaction_state(str_bytes(""));
    let image = ctx.broker.metadata.image();
    if !allowed(ctx, &image, AclOperation::Describe, ResourceType::TransactionalId, id) {
        return failed(E::TransactionalIdAuthorizationFailed);
    }
    let meta = match ctx.broker.txn.describe(id).await {
        Ok(meta) => meta,
        Err(code) => return TransactionState::default().with_error_code(code).with_transaction_state(str_bytes("")),
    };
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, index) in &meta.partitions {
        if !allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, topic) {
            continue;
        }
        match topics.last_mut().filter(|t| t.topic.as_str() == topic) {
            Some(t) => t.partitions.push(*index),
            None => topics.push(TopicData::default().with_topic(topic_name(topic)).with_partitions(vec![*index])),
        }
    }
    TransactionState::default()
        .with_transaction_state(str_bytes(meta.state.name()))
        .with_transaction_timeout_ms(meta.timeout_ms)
        .with_transaction_start_time_ms(meta.start_ms)
        .with_producer_id(ProducerId(meta.producer_id))
        .with_producer_epoch(meta.producer_epoch)
        .with_topics(topics)
}
