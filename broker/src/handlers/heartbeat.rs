//! Heartbeat (key 12): keeps a member's session; REBALANCE_IN_PROGRESS tells
//! it to rejoin.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use tokio::time::Instant;

use super::RequestContext;
use super::authz::group_allowed;
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=4;

pub async fn handle(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = req.group_id.to_string();
    let code = if !group_allowed(ctx, AclOperation::Read, &group_id) {
        E::GroupAuthorizationFailed.code()
    } else if group_id.is_empty() {
        E::InvalidGroupId.code()
    } else {
        match ctx.broker.groups.lock(&group_id).await {
            Err(code) => code,
            Ok(mut locked) => match locked.state.groups.get_mut(&group_id) {
                None => E::UnknownMemberId.code(),
                Some(g) => {
                    let instance = req.group_instance_id.as_ref().map(|i| i.to_string());
                    g.heartbeat(&req.member_id, instance.as_deref(), req.generation_id, Instant::now())
                }
            },
        }
    };
    HeartbeatResponse::default().with_error_code(code)
}
