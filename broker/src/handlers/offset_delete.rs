//! OffsetDelete (key 47): `kafka-consumer-groups --delete-offsets`. A group
//! still consuming a topic keeps that topic's offsets
//! (GROUP_SUBSCRIBED_TO_TOPIC).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::RequestContext;
use crate::group::classic::State;
use crate::group::records::GroupRecord;

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

pub async fn handle(ctx: &RequestContext, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    match delete(ctx, &req).await {
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

async fn delete(ctx: &RequestContext, req: &OffsetDeleteRequest) -> Result<Vec<Vec<i16>>, i16> {
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
    for t in &req.topics {
        let name = t.name.to_string();
        let busy = subscribed.contains(&name);
        codes.push(vec![if busy { E::GroupSubscribedToTopic.code() } else { 0 }; t.partitions.len()]);
        if !busy {
            for p in &t.partitions {
                records.push(GroupRecord::Offset {
                    group: group_id.clone(),
                    topic: name.clone(),
                    partition: p.partition_index,
                    value: None,
                });
            }
        }
    }
    if records.is_empty() {
        return Ok(codes);
    }
    coordinator.write_offsets(locked, records).await?;
    Ok(codes)
}
