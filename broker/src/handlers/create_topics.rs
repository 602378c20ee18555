//! CreateTopics (key 19): `kafka-topics --create` and Admin `createTopics`.
//! Request-level checks are Kafka's `ControllerApis.createTopics`
//! (duplicates, `__cluster_metadata`); each topic then goes through
//! [`crate::admin::create::create_topic`], and is answered once its
//! partitions are online, so a produce right after finds a leader.

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::RequestContext;
use super::authz::{allowed, cluster_allowed};
use super::util::{str_bytes, topic_name, uuid};
use crate::admin::AdminError;
use crate::admin::create::{NewTopic, create_topic};
use crate::config::describe_topic;
use crate::metadata::TopicImage;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 2..=7;

/// The longest an admin request waits for new partitions to come online;
/// less if the request's `timeout_ms` says so. Past it the topic exists and
/// is answered as created, as Kafka answers once the records commit.
const MAX_ADMIN_WAIT: Duration = Duration::from_secs(10);

/// How long to wait for partitions after an admin write: `timeout_ms`
/// capped at [`MAX_ADMIN_WAIT`]; zero or less does not wait.
pub(crate) fn admin_wait(timeout_ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)).min(MAX_ADMIN_WAIT)
}

pub async fn handle(ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<&str> = req.topics.iter().map(|t| t.name.0.as_str()).filter(|n| !seen.insert(*n)).collect();
    // One deadline for the whole request, not a wait per topic.
    let deadline = tokio::time::Instant::now() + admin_wait(req.timeout_ms);
    let mut answered = HashSet::new();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.name.0.as_str();
        if duplicates.contains(name) {
            // One answer per duplicated name, however often it appears.
            if answered.insert(name) {
                results.push(failed(name, ResponseError::InvalidRequest, "Duplicate topic name."));
            }
            continue;
        }
        let image = ctx.broker.metadata.image();
        if !cluster_allowed(ctx, &image, AclOperation::Create) && !allowed(ctx, &image, AclOperation::Create, ResourceType::Topic, name) {
            results.push(failed(name, ResponseError::TopicAuthorizationFailed, "Authorization failed."));
            continue;
        }
        if name == "__cluster_metadata" {
            results.push(failed(name, ResponseError::InvalidRequest, "Creation of internal topic __cluster_metadata is prohibited."));
            continue;
        }
        let outcome = match new_topic(t) {
            Ok(new) => {
                let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                create_topic(&ctx.broker, &new, req.validate_only, wait).await
            }
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(topic) => created(ctx, &topic),
            Err(e) => failed(name, e.code, &e.message),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// The request's topic as `create_topic` takes it; null config values are
/// refused as Kafka's `computeConfigChanges` refuses them.
fn new_topic(t: &CreatableTopic) -> Result<NewTopic, AdminError> {
    let nulls: Vec<&str> = t.configs.iter().filter(|c| c.value.is_none()).map(|c| c.name.as_str()).collect();
    if !nulls.is_empty() {
        return Err(AdminError::new(
            ResponseError::InvalidConfig,
            format!("Null value not supported for topic configs: {}", nulls.join(",")),
        ));
    }
    let configs: BTreeMap<String, String> =
        t.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()).unwrap_or_default())).collect();
    if !t.assignments.is_empty() {
        // ReplicationControlManager's words; checked before the assignments themselves.
        let unset = if t.replication_factor != -1 {
            Some("replication factor")
        } else if t.num_partitions != -1 {
            Some("numPartitions")
        } else {
            None
        };
        if let Some(what) = unset {
            return Err(AdminError::new(
                ResponseError::InvalidRequest,
                format!("A manual partition assignment was specified, but {what} was not set to -1."),
            ));
        }
    }
    let mut assignments: Vec<(i32, Vec<i32>)> =
        t.assignments.iter().map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect())).collect();
    assignments.sort_by_key(|(p, _)| *p);
    if let Some(w) = assignments.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(AdminError::new(
            ResponseError::InvalidReplicaAssignment,
            format!("Found multiple manual partition assignments for partition {}", w[0].0),
        ));
    }
    if assignments.iter().enumerate().any(|(i, (p, _))| *p != i as i32) {
        return Err(AdminError::new(
            ResponseError::InvalidReplicaAssignment,
            "partitions should be a consecutive 0-based integer sequence",
        ));
    }
    Ok(NewTopic {
        name: t.name.to_string(),
        num_partitions: t.num_partitions,
        replication_factor: t.replication_factor,
        assignments: assignments.into_iter().map(|(_, r)| r).collect(),
        configs,
    })
}

/// A created topic (or one that would be, validate_only): v5+ carries its
/// partition count, replication factor and every config as DescribeConfigs
/// shows it (Kafka's `computeEffectiveTopicConfigs`, sorted by name).
fn created(ctx: &RequestContext, topic: &TopicImage) -> CreatableTopicResult {
    let base = CreatableTopicResult::default().with_name(topic_name(&topic.name)).with_topic_id(uuid(topic.id)).with_error_message(None);
    // KIP-525: the configs (and counts) are shown only to who may describe
    // them; otherwise the topic is created all the same and the config
    // error says why they are missing (Kafka's `ReplicationControlManager`).
    let image = ctx.broker.metadata.image();
    if !allowed(ctx, &image, AclOperation::DescribeConfigs, ResourceType::Topic, &topic.name) {
        return base.with_topic_config_error_code(ResponseError::TopicAuthorizationFailed.code());
    }
    let mut entries = describe_topic(&ctx.broker.config, &topic.configs, false);
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let configs = entries
        .iter()
        .map(|e| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(&e.name))
                .with_value(if e.sensitive { None } else { e.value.as_deref().map(str_bytes) })
                .with_read_only(e.read_only)
                .with_config_source(e.source.id())
                .with_is_sensitive(e.sensitive)
        })
        .collect();
    base.with_num_partitions(topic.partition_count()).with_replication_factor(topic.replication_factor()).with_configs(Some(configs))
}

/// A refused topic: v5+ reports -1 partitions and replication factor, no configs.
fn failed(name: &str, code: ResponseError, message: &str) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(topic_name(name))
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopicConfig};

    use super::*;

    fn topic(assignments: &[(i32, &[i32])], configs: &[(&str, Option<&str>)]) -> CreatableTopic {
        CreatableTopic::default()
            .with_name(topic_name("t"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                assignments
                    .iter()
                    .map(|(p, b)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(*p)
                            .with_broker_ids(b.iter().copied().map(BrokerId).collect())
                    })
                    .collect(),
            )
            .with_configs(
                configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(str_bytes(k)).with_value(v.map(str_bytes))).collect(),
            )
    }

    #[test]
    fn request_topics_are_checked_like_kafka() {
        let ok = new_topic(&topic(&[(1, &[1]), (0, &[1])], &[("retention.ms", Some("5"))])).unwrap();
        assert_eq!(ok.assignments, [vec![1], vec![1]]);
        assert_eq!(ok.configs.get("retention.ms").map(String::as_str), Some("5"));
        let cases: &[(CreatableTopic, ResponseError, &str)] = &[
            (topic(&[], &[("a", None), ("b", None)]), ResponseError::InvalidConfig, "Null value not supported for topic configs: a,b"),
            (
                topic(&[(0, &[1]), (0, &[1])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "Found multiple manual partition assignments for partition 0",
            ),
            (
                topic(&[(1, &[1])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "partitions should be a consecutive 0-based integer sequence",
            ),
            (
                topic(&[(0, &[1])], &[]).with_replication_factor(1),
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ),
            (
                topic(&[(0, &[1])], &[]).with_num_partitions(1),
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ),
        ];
        for (t, code, message) in cases {
            let e = new_topic(t).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (*code, *message));
        }
    }

    #[test]
    fn admin_wait_is_bounded() {
        assert_eq!(admin_wait(-1), Duration::ZERO);
        assert_eq!(admin_wait(0), Duration::ZERO);
        assert_eq!(admin_wait(1500), Duration::from_millis(1500));
        assert_eq!(admin_wait(i32::MAX), MAX_ADMIN_WAIT);
    }
}
