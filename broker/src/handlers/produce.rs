//! Produce (key 0): each partition's batch is validated and proposed in
//! request order before the next request is read (so an idempotent
//! producer's pipelined requests keep their order); the answer waits for
//! acks in the returned future.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::authz::allowed;
use super::util::{str_bytes, topic_id};
use super::{Pending, Reply, RequestContext, ready, respond};
use crate::Broker;
use crate::metadata::{MetadataImage, TopicImage};
use crate::partition::append::{Acks, AppendWait, error_code};
use crate::partition::validate::single_batch;
use crate::partition::{AppendError, Partition};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 3..=13;

/// Kafka's `AdminUtils.ADMIN_CLIENT_ID`: the only client allowed to write internal topics.
const ADMIN_CLIENT_ID: &str = "__admin_client";
const ZSTD: i16 = 4;

/// One partition of the request: an answer now, or one to wait for.
enum Slot {
    Done(Result<i64, (ResponseError, Option<String>)>),
    Waiting(Arc<Partition>, AppendWait),
}

pub async fn handle(ctx: Arc<RequestContext>, req: ProduceRequest) -> Pending {
    let Some(acks) = Acks::from_wire(req.acks) else {
        return ready(respond(&ctx, &all_failed(&req, ResponseError::InvalidRequiredAcks)));
    };
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    let image = ctx.broker.metadata.image();
    let transactional_id = req.transactional_id.as_ref().map(|t| t.to_string());
    // Kafka refuses the whole request (`KafkaApis.handleProduceRequest`):
    // transactional records need a transactional id the client may write.
    let refused = match &transactional_id {
        Some(id) => !allowed(&ctx, &image, AclOperation::Write, ResourceType::TransactionalId, id),
        None => has_transactional_records(&req),
    };
    if refused {
        return ready(respond(&ctx, &all_failed(&req, ResponseError::TransactionalIdAuthorizationFailed)));
    }
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for t in req.topic_data {
        let topic =
            if ctx.api_version >= 13 { image.topic_by_id(&topic_id(&t.topic_id)).cloned() } else { image.topic(&t.name.0).cloned() };
        // Kafka answers an unauthorized topic before looking it up (a topic
        // id it does not know has no name to check).
        let name = topic.as_ref().map_or(t.name.0.as_str(), |ti| ti.name.as_str());
        let write_allowed = name.is_empty() || allowed(&ctx, &image, AclOperation::Write, ResourceType::Topic, name);
        let mut slots = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let slot = match &topic {
                // v13 names topics by id (KIP-516).
                None if ctx.api_version >= 13 => Slot::Done(Err((ResponseError::UnknownTopicId, None))),
                _ if !write_allowed => Slot::Done(Err((ResponseError::TopicAuthorizationFailed, None))),
                None => Slot::Done(Err((ResponseError::UnknownTopicOrPartition, None))),
                Some(ti) if ti.is_internal() && ctx.client_id != ADMIN_CLIENT_ID => {
                    Slot::Done(Err((ResponseError::InvalidTopicException, Some(format!("Cannot append to internal topic {}", ti.name)))))
                }
                Some(ti) => match ctx.broker.partitions.get(&ti.name, p.index).filter(|x| x.topic_id == ti.id) {
                    // A partition of the topic that another broker hosts: the client looks for its leader.
                    None if p.index >= 0 && p.index < ti.partition_count() => Slot::Done(Err((ResponseError::NotLeaderOrFollower, None))),
                    None => Slot::Done(Err((ResponseError::UnknownTopicOrPartition, None))),
                    Some(partition) => match enough_replicas(&image, ti, &partition, acks) {
                        Err(message) => Slot::Done(Err((ResponseError::NotEnoughReplicas, Some(message)))),
                        Ok(()) => propose(&ctx, &partition, p.records, acks, timeout, transactional_id.as_deref()).await,
                    },
                },
            };
            slots.push((p.index, slot));
        }
        topics.push((t.name, t.topic_id, slots));
    }
    Box::pin(async move {
        let mut any_error = false;
        let mut responses = Vec::with_capacity(topics.len());
        for (name, id, slots) in topics {
            let parts = join_all(slots.into_iter().map(|(index, slot)| async move {
                let (result, log_start) = match slot {
                    Slot::Done(r) => (r.map(|o| (o, -1)), -1),
                    Slot::Waiting(p, wait) => {
                        let r = wait.await.map(|a| (a.base_offset, a.log_append_time_ms)).map_err(|e| failure(&e));
                        (r, p.log_start_offset())
                    }
                };
                let base = PartitionProduceResponse::default().with_index(index).with_log_start_offset(log_start);
                match result {
                    Ok((offset, append_time)) => base.with_base_offset(offset).with_log_append_time_ms(append_time),
                    Err((code, message)) => base
                        .with_error_code(code.code())
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_error_message(message.map(|m| str_bytes(&m))),
                }
            }))
            .await;
            for p in parts.iter().filter(|p| p.error_code != 0) {
                any_error = true;
                crate::metrics::metrics().request_error("Produce", p.error_code);
            }
            responses.push(TopicProduceResponse::default().with_name(name).with_topic_id(id).with_partition_responses(parts));
        }
        match acks {
            // No answer for acks=0; Kafka closes the connection if anything failed.
            Acks::None if any_error => Reply::Close("acks=0 produce failed".into()),
            Acks::None => Reply::Nothing,
            _ => respond(&ctx, &ProduceResponse::default().with_responses(responses)),
        }
    })
}

/// Kafka's fast failure: a write is refused before it is appended when
/// fewer replicas are in sync than it needs. For acks=all Kafka needs
/// `min.insync.replicas`; fjord needs a raft majority of the replicas in
/// any case, for every acks, as a raft leader takes no write at all once a
/// majority stops answering (its lease runs out). Waiting would only end
/// in a timeout. A follower answers NOT_LEADER_OR_FOLLOWER instead (from
/// the append).
fn enough_replicas(image: &MetadataImage, topic: &TopicImage, partition: &Partition, acks: Acks) -> Result<(), String> {
    let replicas = topic.replicas.get(partition.index as usize).map_or(1, Vec::len);
    let majority = replicas / 2 + 1;
    let required = match acks {
        Acks::All => majority.max(usize::try_from(partition.config().min_insync_replicas).unwrap_or(1)),
        _ => majority,
    };
    let in_sync = Broker::in_sync_count(image, topic, partition.index);
    if in_sync >= required || !partition.is_leader() {
        return Ok(());
    }
    Err(format!(
        "The size of the current ISR ({in_sync}) is insufficient to satisfy the min.isr requirement of {required} for partition {}-{} \
         (a majority of its {replicas} replicas, or min.insync.replicas if more)",
        topic.name, partition.index
    ))
}

/// Checks the records of one partition and proposes the batch.
async fn propose(
    ctx: &RequestContext,
    partition: &Arc<Partition>,
    records: Option<bytes::Bytes>,
    acks: Acks,
    timeout: Duration,
    transactional_id: Option<&str>,
) -> Slot {
    let (header, batch) = match single_batch(&records.unwrap_or_default()) {
        Ok(b) => b,
        Err(e) => return Slot::Done(Err(failure(&e))),
    };
    if header.compression_codec() == ZSTD && ctx.api_version < 7 {
        return Slot::Done(Err((ResponseError::UnsupportedCompressionType, None)));
    }
    if let Err(code) = verify_transaction(ctx, partition, &header, &batch, transactional_id).await {
        let code = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
        return Slot::Done(Err((code, None)));
    }
    match partition.append(batch, acks, timeout).await {
        Ok(wait) => Slot::Waiting(Arc::clone(partition), wait),
        Err(e) => Slot::Done(Err(failure(&e))),
    }
}

/// Kafka's `ProduceRequest.hasTransactionalRecords`: the first batch of
/// any partition carries the transactional attribute.
fn has_transactional_records(req: &ProduceRequest) -> bool {
    const ATTRIBUTES_AT: usize = 21;
    const TRANSACTIONAL: u8 = 0x10;
    req.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref())
        .any(|r| r.get(ATTRIBUTES_AT + 1).is_some_and(|a| a & TRANSACTIONAL != 0))
}

/// KIP-890 part 1: the first transactional batch of a transaction on this
/// partition is written only if the transaction's coordinator has the
/// partition in the producer's open transaction, so a late batch of an
/// ended transaction cannot open a transaction no coordinator will end.
async fn verify_transaction(
    ctx: &RequestContext,
    partition: &Arc<Partition>,
    header: &fjord_storage::batch::BatchHeader,
    batch: &[u8],
    transactional_id: Option<&str>,
) -> Result<(), i16> {
    let Some(id) = transactional_id.filter(|_| header.is_transactional()) else { return Ok(()) };
    let Ok(Some(p)) = fjord_raft::producer_state::ProducerBatch::parse(batch) else { return Ok(()) };
    if partition.in_transaction(p.producer_id) {
        return Ok(());
    }
    crate::txn::verify_partition(&ctx.broker, id, p.producer_id, p.epoch, &partition.topic, partition.index).await
}

fn failure(e: &AppendError) -> (ResponseError, Option<String>) {
    let code = ResponseError::try_from_code(error_code(e)).unwrap_or(ResponseError::UnknownServerError);
    let message = match e {
        AppendError::NotLeader | AppendError::Timeout => None,
        other => Some(other.to_string()),
    };
    (code, message)
}

fn all_failed(req: &ProduceRequest, code: ResponseError) -> ProduceResponse {
    let responses = req
        .topic_data
        .iter()
        .map(|t| {
            let parts = t
                .partition_data
                .iter()
                .map(|p| PartitionProduceResponse::default().with_index(p.index).with_error_code(code.code()).with_base_offset(-1))
                .collect();
            TopicProduceResponse::default().with_name(t.name.clone()).with_topic_id(t.topic_id).with_partition_responses(parts)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
