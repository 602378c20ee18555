//! CreatePartitions (key 37): `kafka-topics --alter --partitions N`. Topics
//! named twice are refused as Kafka's `ControllerApis.createPartitions`
//! refuses them; the rest is [`crate::admin::partitions`].

use std::collections::HashSet;
use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::RequestContext;
use super::authz::allowed;
use super::create_topics::admin_wait;
use super::util::{str_bytes, topic_name};
use crate::admin::partitions::{NewPartitions, create_partitions};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=3;

pub async fn handle(ctx: &RequestContext, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<&str> = req.topics.iter().map(|t| t.name.0.as_str()).filter(|n| !seen.insert(*n)).collect();
    let mut results = Vec::with_capacity(req.topics.len());
    let mut answered = HashSet::new();
    let mut todo = Vec::new();
    for t in &req.topics {
        let name = t.name.0.as_str();
        if duplicates.contains(name) {
            // One answer per duplicated name, however often it appears.
            if answered.insert(name) {
                results.push(error(name, ResponseError::InvalidRequest, "Duplicate topic name."));
            }
            continue;
        }
        if !allowed(ctx, &ctx.broker.metadata.image(), AclOperation::Alter, ResourceType::Topic, name) {
            results.push(error(name, ResponseError::TopicAuthorizationFailed, "Authorization failed."));
            continue;
        }
        let assignments = t.assignments.as_ref().map(|a| a.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect());
        todo.push(NewPartitions { name: name.to_string(), count: t.count, assignments });
    }
    let outcomes = create_partitions(&ctx.broker, &todo, req.validate_only, admin_wait(req.timeout_ms)).await;
    for (t, outcome) in todo.iter().zip(outcomes) {
        results.push(match outcome {
            Ok(()) => CreatePartitionsTopicResult::default().with_name(topic_name(&t.name)),
            Err(e) => error(&t.name, e.code, &e.message),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

fn error(name: &str, code: ResponseError, message: &str) -> CreatePartitionsTopicResult {
    CreatePartitionsTopicResult::default()
        .with_name(topic_name(name))
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(message)))
}
