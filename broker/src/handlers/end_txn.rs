//! EndTxn (key 26): commit or abort the producer's transaction. The answer
//! comes once the PrepareCommit/PrepareAbort record is committed; the
//! markers and the Complete record follow in the background.
//!
//! v5 is Transactions V2 (an epoch bump per transaction), which needs the
//! `transaction.version` feature Fjord does not advertise; v0-4 are served.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use super::RequestContext;
use super::authz::allowed;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=4;

pub async fn handle(ctx: &RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    let resp = EndTxnResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    let image = ctx.broker.metadata.image();
    if !allowed(ctx, &image, AclOperation::Write, ResourceType::TransactionalId, &req.transactional_id) {
        return resp.with_error_code(E::TransactionalIdAuthorizationFailed.code());
    }
    let result = ctx.broker.txn.end_txn(&req.transactional_id, req.producer_id.0, req.producer_epoch, req.committed).await;
    match result {
        Ok(()) => resp.with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch),
        // Clients before v2 know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
        Err(code) if code == E::ProducerFenced.code() && ctx.api_version < 2 => resp.with_error_code(E::InvalidProducerEpoch.code()),
        Err(code) => resp.with_error_code(code),
    }
}
