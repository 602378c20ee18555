//! InitProducerId (key 22) for idempotent producers: a fresh producer id
//! with epoch 0 from the broker's block. Transactional ids need the
//! transaction coordinator (issue 12) and are refused until then.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use super::authz::idempotent_write_allowed;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: &RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !idempotent_write_allowed(ctx, &ctx.broker.metadata.image()) {
        return resp.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    // Only one of id and epoch set is malformed (KafkaApis.handleInitProducerIdRequest).
    if (req.producer_id.0 == -1) != (req.producer_epoch == -1) {
        return resp.with_error_code(ResponseError::InvalidRequest.code());
    }
    match ctx.broker.producer_ids.next(&ctx.broker.metadata).await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!("no producer id: {e}");
            resp.with_error_code(ResponseError::CoordinatorLoadInProgress.code())
        }
    }
}
