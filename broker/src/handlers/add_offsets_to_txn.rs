//! AddOffsetsToTxn (key 25): adds the group's `__consumer_offsets`
//! partition to the producer's transaction, so the coordinator sends that
//! partition a marker too and the group's TxnOffsetCommit becomes visible
//! (or is dropped) with the transaction.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::RequestContext;
use super::authz::{allowed, group_allowed};
use crate::group::OFFSETS_TOPIC;
use crate::group::topic::ensure_offsets_topic;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=4;

pub async fn handle(ctx: &RequestContext, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let resp = AddOffsetsToTxnResponse::default();
    let image = ctx.broker.metadata.image();
    if !allowed(ctx, &image, AclOperation::Write, ResourceType::TransactionalId, &req.transactional_id) {
        return resp.with_error_code(E::TransactionalIdAuthorizationFailed.code());
    }
    if !group_allowed(ctx, AclOperation::Read, &req.group_id) {
        return resp.with_error_code(E::GroupAuthorizationFailed.code());
    }
    if !ensure_offsets_topic(&ctx.broker).await {
        return resp.with_error_code(E::CoordinatorNotAvailable.code());
    }
    let Some(index) = ctx.broker.groups.partition_of(&req.group_id) else {
        return resp.with_error_code(E::CoordinatorNotAvailable.code());
    };
    let partitions = BTreeSet::from([(OFFSETS_TOPIC.to_string(), index)]);
    match ctx.broker.txn.add_partitions(&req.transactional_id, req.producer_id.0, req.producer_epoch, &partitions).await {
        Ok(()) => resp,
        // Clients before v2 know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
        Err(code) if code == E::ProducerFenced.code() && ctx.api_version < 2 => resp.with_error_code(E::InvalidProducerEpoch.code()),
        Err(code) => resp.with_error_code(code),
    }
}
