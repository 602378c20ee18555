//! OffsetDelete (key 47): `kafka-consumer-groups --delete-offsets`. A group
//! still consuming a topic keeps that topic's offsets
//! (GROUP_SUBSCRIBED_TO_TOPIC).
//!
//! As Kafka's `KafkaApis.handleOffsetDeleteRequest`: DELETE on the group or
//! the whole request is GROUP_AUTHORIZATION_FAILED; a topic without READ is
//! TOPIC_AUTHORIZATION_FAILED and an unknown topic or partition
//! UNKNOWN_TOPIC_OR_PARTITION, each partition on its own; the rest goes to
//! the coordinator, whose group errors answer the whole request.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::RequestContext;
use super::authz::{allowed, group_allowed};
use crate::group::classic::State;
use crate::group::records::GroupRecord;
use crate::metadata::MetadataImage;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

/// Per topic, per partition: the code it is answered with before the
/// coordinator sees it, or `None` when the coordinator decides.
type Prechecked = Vec<Vec<Option<i16>>>;

pub async fn handle(ctx: &RequestContext, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    // Checked before anything else, so even an empty group id is refused this way.
    if !group_allowed(ctx, AclOperation::Delete, &req.group_id) {
        return OffsetDeleteResponse::default().with_error_code(E::GroupAuthorizationFailed.code());
    }
    let image = ctx.broker.metadata.image();
    let prechecked = precheck(&req, &image, |topic| allowed(ctx, &image, AclOperation::Read, ResourceType::Topic, topic));
    match delete(ctx, &req, &prechecked).await {
        Ok(codes) => OffsetDeleteResponse::default().with_topics(
            req.topics
                .iter()
                .zip(codes)
                .map(|(t, codes)| {
                    OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(
                        t.partitions
                            .iter()
                            .zip(codes)
                            .map(|(p, code)| {
                                OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
                            })
                            .collect(),
                    )
                })
                .collect(),
        ),
        Err(code) => OffsetDeleteResponse::default().with_error_code(code),
    }
}

/// READ on each topic first (an unreadable topic is not looked up), then
/// whether the topic and partition exist.
fn precheck(req: &OffsetDeleteRequest, image: &MetadataImage, may_read: impl Fn(&str) -> bool) -> Prechecked {
    req.topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let topic = image.topic(name);
            t.partitions
                .iter()
                .map(|p| {
                    if !may_read(name) {
                        Some(E::TopicAuthorizationFailed.code())
                    } else if topic.is_none_or(|ti| p.partition_index < 0 || p.partition_index >= ti.partition_count()) {
                        Some(E::UnknownTopicOrPartition.code())
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect()
}

async fn delete(ctx: &RequestContext, req: &OffsetDeleteRequest, prechecked: &Prechecked) -> Result<Vec<Vec<i16>>, i16> {
    let group_id = req.group_id.to_string();
    if group_id.is_empty() {
        return Err(E::InvalidGroupId.code());
    }
    let coordinator = &ctx.broker.groups;
    let locked = coordinator.lock(&group_id).await?;
    let group = locked.state.groups.get(&group_id).filter(|g| g.state != State::Dead).ok_or(E::GroupIdNotFound.code())?;
    let subscribed = if group.state == State::Empty {
        Default::default()
    } else if group.protocol_type.as_deref() != Some("consumer") {
        return Err(E::NonEmptyGroup.code());
    } else {
        // Subscriptions that do not parse protect every topic.
        group.subscribed_topics().ok_or(E::NonEmptyGroup.code())?
    };
    let mut codes = Vec::new();
    let mut records = Vec::new();
    for (t, checked) in req.topics.iter().zip(prechecked) {
        let name = t.name.to_string();
        let busy = subscribed.contains(&name);
        let mut topic_codes = Vec::with_capacity(t.partitions.len());
        for (p, checked) in t.partitions.iter().zip(checked) {
            topic_codes.push(match checked {
                Some(code) => *code,
                None if busy => E::GroupSubscribedToTopic.code(),
                None => {
                    records.push(GroupRecord::Offset {
                        group: group_id.clone(),
                        topic: name.clone(),
                        partition: p.partition_index,
                        value: None,
                    });
                    0
                }
            });
        }
        codes.push(topic_codes);
    }
    if records.is_empty() {
        return Ok(codes);
    }
    coordinator.write_offsets(locked, records).await?;
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};

    use super::*;
    use crate::metadata::{MetadataRecord, TopicId};

    fn request(topics: &[(&str, &[i32])]) -> OffsetDeleteRequest {
        OffsetDeleteRequest::default().with_topics(
            topics
                .iter()
                .map(|(name, parts)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(super::super::util::str_bytes(name)))
                        .with_partitions(parts.iter().map(|&p| OffsetDeleteRequestPartition::default().with_partition_index(p)).collect())
                })
                .collect(),
        )
    }

    #[test]
    fn unreadable_topics_are_refused_before_they_are_looked_up() {
        let mut image = MetadataImage::default();
        for name in ["readable", "secret"] {
            let replicas = vec![vec![1], vec![1]];
            image.apply(&MetadataRecord::Topic { name: name.into(), id: TopicId::random(), replicas, configs: BTreeMap::new() });
        }
        let req = request(&[("readable", &[0, 1, 2, -1]), ("secret", &[0, 9]), ("missing", &[0]), ("gone", &[0])]);
        let may_read = |t: &str| t != "secret" && t != "gone";
        let (denied, unknown) = (Some(E::TopicAuthorizationFailed.code()), Some(E::UnknownTopicOrPartition.code()));
        assert_eq!(
            precheck(&req, &image, may_read),
            vec![vec![None, None, unknown, unknown], vec![denied, denied], vec![unknown], vec![denied]]
        );
    }
}
