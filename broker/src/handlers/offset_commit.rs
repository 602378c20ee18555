//! OffsetCommit (key 8): a member's, or with generation -1 an admin's or an
//! `assign()` consumer's, committed offsets. They are visible once their
//! record in `__consumer_offsets` is committed.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::RequestContext;
use super::authz::{allowed, group_allowed};
use crate::group::classic::ClassicGroup;
use crate::group::records::{GroupRecord, OffsetValue};
use crate::metadata::store::now_ms;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 2..=9;

pub async fn handle(ctx: &RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    // Every requested partition gets a code; those still None are written.
    let mut codes: Vec<Vec<Option<i16>>> = req.topics.iter().map(|t| vec![None; t.partitions.len()]).collect();
    if let Err(code) = commit(ctx, &req, &mut codes).await {
        for c in codes.iter_mut().flatten() {
            c.get_or_insert(code);
        }
    }
    let topics = req
        .topics
        .iter()
        .zip(codes)
        .map(|(t, codes)| {
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                t.partitions
                    .iter()
                    .zip(codes)
                    .map(|(p, code)| {
                        OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code.unwrap_or(0))
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

async fn commit(ctx: &RequestContext, req: &OffsetCommitRequest, codes: &mut [Vec<Option<i16>>]) -> Result<(), i16> {
    let group_id = req.group_id.to_string();
    if !group_allowed(ctx, AclOperation::Read, &group_id) {
        return Err(E::GroupAuthorizationFailed.code());
    }
    if group_id.is_empty() {
        return Err(E::InvalidGroupId.code());
    }
    let coordinator = &ctx.broker.groups;
    let image = ctx.broker.metadata.image();
    let locked = coordinator.lock(&group_id).await?;
    let generation = req.generation_id_or_member_epoch;
    let instance = req.group_instance_id.as_ref().map(|i| i.to_string());
    match locked.state.groups.get(&group_id) {
        Some(g) => g.validate_offset_commit(&req.member_id, instance.as_deref(), generation)?,
        None if generation < 0 => {}
        None if ctx.api_version >= 9 => return Err(E::GroupIdNotFound.code()),
        None => return Err(E::IllegalGeneration.code()),
    }
    let now = now_ms();
    let expire = (ctx.api_version <= 4 && req.retention_time_ms != -1).then(|| now.saturating_add(req.retention_time_ms));
    let max_metadata = usize::try_from(ctx.broker.config.groups.offset_metadata_max_bytes).unwrap_or(0);
    let mut records = Vec::new();
    for (t, codes) in req.topics.iter().zip(codes.iter_mut()) {
        let known = image.topic(&t.name).map(|ti| ti.partition_count());
        for (p, code) in t.partitions.iter().zip(codes.iter_mut()) {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            if !allowed(ctx, &image, AclOperation::Read, ResourceType::Topic, &t.name) {
                *code = Some(E::TopicAuthorizationFailed.code());
            } else if !known.is_some_and(|n| (0..n).contains(&p.partition_index)) {
                *code = Some(E::UnknownTopicOrPartition.code());
            } else if metadata.encode_utf16().count() > max_metadata {
                *code = Some(E::OffsetMetadataTooLarge.code());
            } else {
                records.push(GroupRecord::Offset {
                    group: group_id.clone(),
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    value: Some(OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: metadata.to_string(),
                        commit_timestamp: now,
                        expire_timestamp: expire,
                    }),
                });
            }
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    let mut state = coordinator.write_offsets(locked, records).await?;
    // A group that only commits (generation -1): Kafka's "simple" group.
    state.groups.entry(group_id.clone()).or_insert_with(|| ClassicGroup::new(&group_id, now));
    Ok(())
}
