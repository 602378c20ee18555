//! Metadata (key 3): brokers on the request's listener, topics, partitions
//! and their leaders; auto-creates unknown topics when allowed.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::RequestContext;
use super::authz::{CLUSTER_NAME, OPERATIONS_NOT_REQUESTED, allowed, authorized_operations, cluster_allowed};
use super::util::{str_bytes, topic_id, topic_name, uuid, validate_topic_name};
use crate::Broker;
use crate::admin::create::{NewTopic, create_topic};
use crate::metadata::{MetadataImage, TopicImage};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=13;

/// How long an auto-created topic is waited for before answering.
const AUTO_CREATE_WAIT: Duration = Duration::from_secs(5);

pub async fn handle(ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let v = ctx.api_version;
    let mut image = broker.metadata.image();
    let all = match &req.topics {
        None => true,
        Some(t) => v == 0 && t.is_empty(),
    };
    let mut topics = Vec::new();
    if all {
        // Topics the principal may not describe are left out, as Kafka does.
        let visible = image.topics.values().filter(|t| allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, &t.name));
        topics.extend(visible.map(|t| describe_topic(broker, &image, t)));
    } else {
        // v4+ asks; older versions always allow auto-creation.
        let allow_create = broker.config.auto_create_topics_enable && (v < 4 || req.allow_auto_topic_creation);
        // Kafka looks topics up by id as soon as any requested id is set
        // (v12+); the Java admin then sends "" as the name.
        let by_id = v >= 12 && req.topics.iter().flatten().any(|t| !t.topic_id.is_nil());
        for requested in req.topics.iter().flatten() {
            let found = if by_id {
                match image.topic_by_id(&topic_id(&requested.topic_id)) {
                    Some(t) if !allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, &t.name) => {
                        Err((ResponseError::TopicAuthorizationFailed, None))
                    }
                    Some(t) => Ok(describe_topic(broker, &image, t)),
                    None => Err((ResponseError::UnknownTopicId, None)),
                }
            } else {
                match &requested.name {
                    Some(name) if !allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, name) => {
                        Err((ResponseError::TopicAuthorizationFailed, Some(name.to_string())))
                    }
                    Some(name) => {
                        // Auto-creation needs CREATE on the cluster or the topic.
                        let may_create = allow_create
                            && (cluster_allowed(ctx, &image, AclOperation::Create)
                                || allowed(ctx, &image, AclOperation::Create, ResourceType::Topic, name));
                        match lookup_or_create(broker, &mut image, name, may_create).await {
                            Err((ResponseError::UnknownTopicOrPartition, n)) if allow_create && !may_create => {
                                Err((ResponseError::TopicAuthorizationFailed, n))
                            }
                            other => other,
                        }
                    }
                    None => Err((ResponseError::InvalidRequest, None)),
                }
            };
            topics.push(found.unwrap_or_else(|(code, name)| {
                MetadataResponseTopic::default()
                    .with_error_code(code.code())
                    .with_name(name.map(|n: String| topic_name(&n)))
                    .with_topic_id(if by_id { requested.topic_id } else { Default::default() })
            }));
        }
    }
    if v >= 8 && req.include_topic_authorized_operations {
        for t in &mut topics {
            // Kafka computes them for the topics it looked up, not for those
            // refused or named by an unknown id.
            let looked_up = ![ResponseError::TopicAuthorizationFailed, ResponseError::UnknownTopicId, ResponseError::InvalidRequest]
                .iter()
                .any(|e| e.code() == t.error_code);
            if let Some(name) = t.name.as_ref().filter(|_| looked_up) {
                t.topic_authorized_operations = authorized_operations(ctx, &image, ResourceType::Topic, name);
            }
        }
    }
    // The field is v8-10 only; without DESCRIBE on the cluster the operations are none.
    let cluster_operations = if !(8..=10).contains(&v) || !req.include_cluster_authorized_operations {
        OPERATIONS_NOT_REQUESTED
    } else if cluster_allowed(ctx, &image, AclOperation::Describe) {
        authorized_operations(ctx, &image, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        0
    };
    let brokers = advertised_brokers(ctx, &image, false);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&broker.cluster_id())))
        .with_controller_id(BrokerId(controller_id(broker, &image)))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

type Missing = (ResponseError, Option<String>);

async fn lookup_or_create(
    broker: &Arc<Broker>,
    image: &mut Arc<MetadataImage>,
    name: &str,
    allow_create: bool,
) -> Result<MetadataResponseTopic, Missing> {
    if let Some(t) = image.topic(name) {
        return Ok(describe_topic(broker, image, t));
    }
    if validate_topic_name(name).is_err() {
        return Err((ResponseError::InvalidTopicException, Some(name.to_string())));
    }
    if !allow_create {
        return Err((ResponseError::UnknownTopicOrPartition, Some(name.to_string())));
    }
    if name == crate::group::OFFSETS_TOPIC {
        // Created as the coordinator needs it, not with num.partitions.
        crate::group::topic::ensure_offsets_topic(broker).await;
        *image = broker.metadata.image();
        return image
            .topic(name)
            .map(|t| describe_topic(broker, image, t))
            .ok_or((ResponseError::LeaderNotAvailable, Some(name.to_string())));
    }
    let new = NewTopic {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: Default::default(),
    };
    match create_topic(broker, &new, false, AUTO_CREATE_WAIT).await {
        Ok(_) => {}
        // Created by someone else meanwhile: describe theirs.
        Err(e) if e.code == ResponseError::TopicAlreadyExists => {}
        Err(e) => {
            tracing::warn!(topic = name, "auto-create failed: {e}");
            return Err((ResponseError::UnknownTopicOrPartition, Some(name.to_string())));
        }
    }
    *image = broker.metadata.image();
    image.topic(name).map(|t| describe_topic(broker, image, t)).ok_or((ResponseError::UnknownTopicOrPartition, Some(name.to_string())))
}

/// The controller id clients are given: Kafka's KRaft brokers name a live
/// broker (clients send admin requests there, and any broker forwards them
/// to the quorum); Fjord names the active controller when it is a live
/// broker, else itself.
pub fn controller_id(broker: &Broker, image: &MetadataImage) -> i32 {
    broker
        .metadata
        .controller_node()
        .map(|(id, _)| id as i32)
        .filter(|id| image.brokers.get(id).is_some_and(|b| !b.fenced && !b.endpoints.is_empty()))
        .unwrap_or(broker.config.node_id)
}

/// The registered brokers (fenced ones only if asked), as each advertises
/// itself on the listener the request came in on; a broker without that
/// listener is left out, as Kafka does. Before any registration is in the
/// image (a single node's first moments), this broker.
pub fn advertised_brokers(ctx: &RequestContext, image: &MetadataImage, fenced_too: bool) -> Vec<MetadataResponseBroker> {
    let b = &ctx.broker;
    if image.brokers.is_empty() {
        return match b.advertised(&ctx.listener) {
            Some(l) => vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.config.node_id))
                    .with_host(str_bytes(&l.host))
                    .with_port(i32::from(l.port))
                    .with_rack(b.config.broker_rack.as_deref().map(str_bytes)),
            ],
            None => Vec::new(),
        };
    }
    image
        .brokers
        .values()
        .filter(|r| fenced_too || !r.fenced)
        .filter_map(|r| {
            let e = r.endpoint(&ctx.listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(r.id))
                    .with_host(str_bytes(&e.host))
                    .with_port(i32::from(e.port))
                    .with_rack(r.rack.as_deref().map(str_bytes)),
            )
        })
        .collect()
}

fn describe_topic(broker: &Broker, image: &MetadataImage, t: &TopicImage) -> MetadataResponseTopic {
    let partitions = t
        .replicas
        .iter()
        .enumerate()
        .map(|(i, replicas)| {
            let view = broker.leader_view(image, t, i as i32);
            let offline: Vec<BrokerId> = replicas.iter().filter(|r| !image.is_live(**r)).map(|r| BrokerId(*r)).collect();
            let offline = if image.brokers.is_empty() { Vec::new() } else { offline };
            let base = MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_replica_nodes(replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(view.isr.iter().map(|r| BrokerId(*r)).collect())
                .with_offline_replicas(offline)
                .with_leader_epoch(view.epoch);
            if view.leader >= 0 {
                base.with_leader_id(BrokerId(view.leader))
            } else {
                base.with_error_code(ResponseError::LeaderNotAvailable.code()).with_leader_id(BrokerId(-1))
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.name)))
        .with_topic_id(uuid(t.id))
        .with_is_internal(t.is_internal())
        .with_partitions(partitions)
}
