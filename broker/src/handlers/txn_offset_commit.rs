//! TxnOffsetCommit (key 28): a transactional producer's offsets for a
//! consumer group (`sendOffsetsToTransaction`). They are written to the
//! group's `__consumer_offsets` partition inside the producer's transaction
//! and become the group's committed offsets when its COMMIT marker lands
//! there, or are dropped on ABORT (see `group::txn_commit`).
//!
//! As Kafka's `KafkaApis.handleTxnOffsetCommitRequest` and
//! `OffsetMetadataManager.commitTransactionalOffset`: WRITE on the
//! transactional id, then READ on the group, or the whole request fails;
//! READ on each topic, and whether it and the partition exist, per
//! partition; then the group's checks (v3+ name the member, as Kafka
//! Streams' exactly-once does), whose errors answer the partitions left.
//! v5 (Transactions V2: an implicit AddOffsetsToTxn) is not served, as
//! Fjord does not advertise `transaction.version` 2.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::RequestContext;
use super::authz::allowed;
use crate::group::OFFSETS_TOPIC;
use crate::group::classic::ClassicGroup;
use crate::group::records::{GroupRecord, OffsetValue};
use crate::metadata::MetadataImage;
use crate::metadata::store::now_ms;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=4;

/// Per topic, per partition: its answer, `None` while it is still to be written.
type Codes = Vec<Vec<Option<i16>>>;

pub async fn handle(ctx: &RequestContext, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let mut codes: Codes = req.topics.iter().map(|t| vec![None; t.partitions.len()]).collect();
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
            TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                t.partitions
                    .iter()
                    .zip(codes)
                    .map(|(p, code)| {
                        let code = answer_code(ctx.api_version, code.unwrap_or(0));
                        TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
                    })
                    .collect(),
            )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Producers from before Kafka 2.0 (v0-1) fail on COORDINATOR_LOAD_IN_PROGRESS
/// (KAFKA-7296); Kafka tells them COORDINATOR_NOT_AVAILABLE instead.
fn answer_code(version: i16, code: i16) -> i16 {
    if version < 2 && code == E::CoordinatorLoadInProgress.code() { E::CoordinatorNotAvailable.code() } else { code }
}

async fn commit(ctx: &RequestContext, req: &TxnOffsetCommitRequest, codes: &mut Codes) -> Result<(), i16> {
    let image = ctx.broker.metadata.image();
    if !allowed(ctx, &image, AclOperation::Write, ResourceType::TransactionalId, &req.transactional_id) {
        return Err(E::TransactionalIdAuthorizationFailed.code());
    }
    if !allowed(ctx, &image, AclOperation::Read, ResourceType::Group, &req.group_id) {
        return Err(E::GroupAuthorizationFailed.code());
    }
    precheck(req, &image, |topic| allowed(ctx, &image, AclOperation::Read, ResourceType::Topic, topic), codes);
    if codes.iter().flatten().all(Option::is_some) {
        return Ok(());
    }
    let group_id = req.group_id.to_string();
    if group_id.is_empty() {
        return Err(E::InvalidGroupId.code());
    }
    // What the transaction coordinator answers for a producer id it does not
    // know; a transactional batch without one could never end.
    if req.producer_id.0 < 0 {
        return Err(E::InvalidProducerIdMapping.code());
    }
    verify(ctx, req, &group_id).await?;
    let coordinator = &ctx.broker.groups;
    let locked = coordinator.lock(&group_id).await?;
    let instance = req.group_instance_id.as_ref().map(|i| i.to_string());
    match locked.state.groups.get(&group_id) {
        Some(g) => g.validate_txn_offset_commit(&req.member_id, instance.as_deref(), req.generation_id)?,
        // A group that only commits (a producer reading with assign()): created
        // by its first commit, as OffsetCommit creates one.
        None if req.generation_id < 0 => {}
        None => return Err(E::IllegalGeneration.code()),
    }
    let now = now_ms();
    let max_metadata = usize::try_from(ctx.broker.config.groups.offset_metadata_max_bytes).unwrap_or(0);
    let mut records = Vec::new();
    for (t, codes) in req.topics.iter().zip(codes.iter_mut()) {
        for (p, code) in t.partitions.iter().zip(codes.iter_mut()).filter(|(_, c)| c.is_none()) {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            // Java's String.length(): UTF-16 units.
            if metadata.encode_utf16().count() > max_metadata {
                *code = Some(E::OffsetMetadataTooLarge.code());
                continue;
            }
            records.push(GroupRecord::Offset {
                group: group_id.clone(),
                topic: t.name.to_string(),
                partition: p.partition_index,
                value: Some(OffsetValue {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: metadata.to_string(),
                    commit_timestamp: now,
                    expire_timestamp: None,
                }),
            });
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    let mut state = coordinator.write_txn_offsets(locked, req.producer_id.0, req.producer_epoch, records).await?;
    state.groups.entry(group_id.clone()).or_insert_with(|| ClassicGroup::new(&group_id, now));
    Ok(())
}

/// KIP-890 part 1, as Kafka's coordinator does before a transactional
/// write: the transaction's first offsets on the group's partition are
/// written only if its coordinator has the partition in the producer's open
/// transaction (added by AddOffsetsToTxn), so a late commit of an ended
/// transaction cannot open one that no marker will end.
async fn verify(ctx: &RequestContext, req: &TxnOffsetCommitRequest, group_id: &str) -> Result<(), i16> {
    let groups = &ctx.broker.groups;
    let Some(index) = groups.partition_of(group_id) else { return Ok(()) };
    // Not led here: the lock that follows answers NOT_COORDINATOR.
    let Some(partition) = ctx.broker.partitions.get(OFFSETS_TOPIC, index) else { return Ok(()) };
    if partition.in_transaction(req.producer_id.0) {
        return Ok(());
    }
    let verified =
        crate::txn::verify_partition(&ctx.broker, &req.transactional_id, req.producer_id.0, req.producer_epoch, OFFSETS_TOPIC, index).await;
    verified.map_err(|code| verification_error(ctx.api_version, code))
}

/// `verify_partition` answers as Produce wants; TxnOffsetCommit answers as
/// Kafka's coordinator does (`handleOperationException` after
/// `AddPartitionsToTxnManager`): NOT_ENOUGH_REPLICAS stands for the
/// transaction coordinator's retriable errors, which a producer retries
/// after looking for the coordinator again; a partition not in the
/// transaction is TRANSACTION_ABORTABLE from v4, which KIP-890 made
/// abortable, and INVALID_TXN_STATE before.
fn verification_error(version: i16, code: i16) -> i16 {
    if code == E::NotEnoughReplicas.code() {
        E::CoordinatorNotAvailable.code()
    } else if code == E::InvalidTxnState.code() && version >= 4 {
        E::TransactionAbortable.code()
    } else {
        code
    }
}

/// READ on each topic (an unreadable topic is not looked up), then whether
/// the topic and partition exist (Kafka's `handleTxnOffsetCommitRequest`).
fn precheck(req: &TxnOffsetCommitRequest, image: &MetadataImage, may_read: impl Fn(&str) -> bool, codes: &mut Codes) {
    for (t, codes) in req.topics.iter().zip(codes.iter_mut()) {
        let partitions = image.topic(&t.name).map(|ti| ti.partition_count());
        let readable = may_read(&t.name);
        for (p, code) in t.partitions.iter().zip(codes.iter_mut()) {
            if !readable {
                *code = Some(E::TopicAuthorizationFailed.code());
            } else if !partitions.is_some_and(|n| (0..n).contains(&p.partition_index)) {
                *code = Some(E::UnknownTopicOrPartition.code());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};

    use super::*;
    use crate::handlers::util::str_bytes;
    use crate::metadata::{MetadataRecord, TopicId};

    fn request(topics: &[(&str, &[i32])]) -> TxnOffsetCommitRequest {
        TxnOffsetCommitRequest::default().with_topics(
            topics
                .iter()
                .map(|(name, parts)| {
                    TxnOffsetCommitRequestTopic::default().with_name(TopicName(str_bytes(name))).with_partitions(
                        parts.iter().map(|&p| TxnOffsetCommitRequestPartition::default().with_partition_index(p)).collect(),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn topics_are_checked_per_partition_before_the_group() {
        let mut image = MetadataImage::default();
        for name in ["readable", "secret"] {
            let replicas = vec![vec![1], vec![1]];
            image.apply(&MetadataRecord::Topic { name: name.into(), id: TopicId::random(), replicas, configs: BTreeMap::new() });
        }
        let req = request(&[("readable", &[0, 1, 2, -1]), ("secret", &[0, 9]), ("missing", &[0]), ("gone", &[3])]);
        let mut codes: Codes = req.topics.iter().map(|t| vec![None; t.partitions.len()]).collect();
        precheck(&req, &image, |t| t != "secret" && t != "gone", &mut codes);
        let (denied, unknown) = (Some(E::TopicAuthorizationFailed.code()), Some(E::UnknownTopicOrPartition.code()));
        assert_eq!(codes, vec![vec![None, None, unknown, unknown], vec![denied, denied], vec![unknown], vec![denied]]);
    }

    #[test]
    fn verification_errors_are_the_coordinators() {
        let (abortable, invalid) = (E::TransactionAbortable.code(), E::InvalidTxnState.code());
        assert_eq!(verification_error(4, invalid), abortable);
        assert_eq!(verification_error(3, invalid), invalid);
        assert_eq!(verification_error(3, E::NotEnoughReplicas.code()), E::CoordinatorNotAvailable.code());
        assert_eq!(verification_error(4, E::InvalidProducerEpoch.code()), E::InvalidProducerEpoch.code());
        assert_eq!(verification_error(4, E::InvalidProducerIdMapping.code()), E::InvalidProducerIdMapping.code());
    }

    #[test]
    fn old_producers_are_told_to_look_again_instead_of_waiting() {
        let (loading, unavailable) = (E::CoordinatorLoadInProgress.code(), E::CoordinatorNotAvailable.code());
        assert_eq!(answer_code(0, loading), unavailable);
        assert_eq!(answer_code(1, loading), unavailable);
        assert_eq!(answer_code(2, loading), loading);
        assert_eq!(answer_code(1, E::IllegalGeneration.code()), E::IllegalGeneration.code());
    }
}
