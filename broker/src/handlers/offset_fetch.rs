//! OffsetFetch (key 9): committed offsets of one group (v0-7) or several
//! (v8+); all of a group's when no topics are named. Unknown groups and
//! partitions without a commit answer -1, not an error, as Kafka does.
//! With RequireStable (v7+; the Java consumer always sets it) a partition
//! an open transaction has committed an offset for answers
//! UNSTABLE_OFFSET_COMMIT, which the consumer retries until the
//! transaction ends (Kafka's `OffsetMetadataManager.fetchOffsets`).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::RequestContext;
use super::authz::{allowed, group_allowed};
use super::util::{str_bytes, topic_name};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 1..=9;

/// One partition's answer: (partition, offset, leader epoch, metadata, error).
type Fetched = (i32, i64, i32, Option<String>, i16);

pub async fn handle(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let stable = ctx.api_version >= 7 && req.require_stable;
    if ctx.api_version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let asked = g.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.clone(), t.partition_indexes.clone())).collect());
            let (code, topics) = match fetch(ctx, &g.group_id, asked, stable).await {
                Ok(t) => (0, t),
                Err(code) => (code, Vec::new()),
            };
            groups.push(
                OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_error_code(code).with_topics(
                    topics
                        .into_iter()
                        .map(|(name, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(name)
                                .with_partitions(parts.into_iter().map(partitions_v8).collect())
                        })
                        .collect(),
                ),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let asked = req.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.clone(), t.partition_indexes.clone())).collect());
    match fetch(ctx, &req.group_id, asked, stable).await {
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(name, parts)| {
                    OffsetFetchResponseTopic::default().with_name(name).with_partitions(parts.into_iter().map(partition_v0).collect())
                })
                .collect(),
        ),
        // v0-1 have no top-level error: it goes to each partition.
        Err(code) if ctx.api_version < 2 => OffsetFetchResponse::default().with_topics(
            req.topics
                .iter()
                .flatten()
                .map(|t| {
                    OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(
                        t.partition_indexes.iter().map(|&p| partition_v0((p, -1, -1, Some(String::new()), code))).collect(),
                    )
                })
                .collect(),
        ),
        Err(code) => OffsetFetchResponse::default().with_error_code(code),
    }
}

fn partition_v0((p, offset, epoch, metadata, code): Fetched) -> OffsetFetchResponsePartition {
    OffsetFetchResponsePartition::default()
        .with_partition_index(p)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(metadata.as_deref().map(str_bytes))
        .with_error_code(code)
}

fn partitions_v8((p, offset, epoch, metadata, code): Fetched) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(p)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(metadata.as_deref().map(str_bytes))
        .with_error_code(code)
}

async fn fetch(
    ctx: &RequestContext,
    group_id: &str,
    asked: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<(TopicName, Vec<Fetched>)>, i16> {
    if !group_allowed(ctx, AclOperation::Describe, group_id) {
        return Err(E::GroupAuthorizationFailed.code());
    }
    if group_id.is_empty() {
        return Err(E::InvalidGroupId.code());
    }
    let locked = ctx.broker.groups.lock(group_id).await.map_err(|code| {
        // Clients before 3.9 do not retry COORDINATOR_NOT_AVAILABLE here (Kafka maps it too).
        if code == E::CoordinatorNotAvailable.code() { E::NotCoordinator.code() } else { code }
    })?;
    let state = &locked.state;
    let offsets = &state.offsets;
    let fetched = |topic: &str, p: i32| -> Fetched {
        let tp = (topic.to_string(), p);
        if require_stable && state.unstable(group_id, &tp) {
            return (p, -1, -1, Some(String::new()), E::UnstableOffsetCommit.code());
        }
        match offsets.get(group_id, &tp) {
            Some(c) => (p, c.value.offset, c.value.leader_epoch, Some(c.value.metadata.clone()), 0),
            None => (p, -1, -1, Some(String::new()), 0),
        }
    };
    // Offsets of topics the principal may not describe are not shown: a
    // topic asked for is refused after the others, one not asked for is
    // left out (Kafka's `fetchOffsetsForGroup`, `fetchAllOffsetsForGroup`).
    let image = ctx.broker.metadata.image();
    let may = |topic: &str| allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, topic);
    Ok(match asked {
        Some(topics) => {
            let (permitted, refused): (Vec<_>, Vec<_>) = topics.into_iter().partition(|(name, _)| may(name));
            let answered = permitted.into_iter().map(|(name, parts)| {
                let f = parts.iter().map(|&p| fetched(&name, p)).collect();
                (name, f)
            });
            let refused = refused.into_iter().map(|(name, parts)| {
                let f = parts.iter().map(|&p| (p, -1, -1, Some(String::new()), E::TopicAuthorizationFailed.code())).collect();
                (name, f)
            });
            answered.chain(refused).collect()
        }
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<Fetched>> = Default::default();
            for ((topic, p), _) in offsets.of_group(group_id) {
                if may(topic) {
                    by_topic.entry(topic.clone()).or_default().push(fetched(topic, *p));
                }
            }
            by_topic.into_iter().map(|(t, f)| (topic_name(&t), f)).collect()
        }
    })
}
