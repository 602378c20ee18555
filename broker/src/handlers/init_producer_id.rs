//! InitProducerId (key 22). Without a transactional id: an idempotent
//! producer, a fresh producer id with epoch 0 from the broker's block. With
//! one: the transaction coordinator's answer (epoch bump, fencing, a new
//! producer id once the epochs are spent), as Kafka's
//! `KafkaApis.handleInitProducerIdRequest`.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use super::authz::{allowed, idempotent_write_allowed};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: &RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    let image = ctx.broker.metadata.image();
    match req.transactional_id.as_deref() {
        Some(id) if !allowed(ctx, &image, AclOperation::Write, ResourceType::TransactionalId, id) => {
            return resp.with_error_code(E::TransactionalIdAuthorizationFailed.code());
        }
        Some(_) => {}
        None if !idempotent_write_allowed(ctx, &image) => return resp.with_error_code(E::ClusterAuthorizationFailed.code()),
        None => {}
    }
    // Only one of id and epoch set is malformed (KafkaApis.handleInitProducerIdRequest).
    let expected = match (req.producer_id.0, req.producer_epoch) {
        (-1, -1) => None,
        (-1, _) | (_, -1) => return resp.with_error_code(E::InvalidRequest.code()),
        (id, epoch) => Some((id, epoch)),
    };
    let Some(transactional_id) = req.transactional_id.as_deref() else {
        return match ctx.broker.producer_ids.next(&ctx.broker.metadata).await {
            Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(e) => {
                tracing::warn!("no producer id: {e}");
                resp.with_error_code(E::CoordinatorLoadInProgress.code())
            }
        };
    };
    match ctx.broker.txn.init_producer_id(&ctx.broker, transactional_id, req.transaction_timeout_ms, expected).await {
        Ok((id, epoch)) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(epoch),
        // Clients before v4 know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
        Err(code) if code == E::ProducerFenced.code() && ctx.api_version < 4 => resp.with_error_code(E::InvalidProducerEpoch.code()),
        Err(code) => resp.with_error_code(code),
    }
}
