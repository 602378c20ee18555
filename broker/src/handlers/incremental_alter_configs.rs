//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT per
//! key (`kafka-configs --alter --add-config/--delete-config`).
//! [`crate::admin::configs`] does the work.

use std::ops::RangeInclusive;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::RequestContext;
use super::util::str_bytes;
use crate::admin::configs::{AlterOp, AlterResource, Mode, alter_configs};

pub const VERSIONS: RangeInclusive<i16> = 0..=1;

pub async fn handle(ctx: &RequestContext, req: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let resources: Vec<AlterResource> = req
        .resources
        .iter()
        .map(|r| AlterResource {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: r
                .configs
                .iter()
                .map(|c| AlterOp { name: c.name.to_string(), op: c.config_operation, value: c.value.as_ref().map(|v| v.to_string()) })
                .collect(),
        })
        .collect();
    let refused = super::authz::alter_configs_refusals(ctx, &resources);
    let outcomes = alter_configs(&ctx.broker, &resources, refused, Mode::Incremental, req.validate_only).await;
    let responses = req
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, outcome)| {
            let base =
                AlterConfigsResourceResponse::default().with_resource_type(r.resource_type).with_resource_name(r.resource_name.clone());
            match outcome {
                Ok(()) => base.with_error_message(None),
                Err(e) => base.with_error_code(e.code.code()).with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
