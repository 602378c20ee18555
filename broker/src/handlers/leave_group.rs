//! LeaveGroup (key 13): members leave (v3+ several at once, and by
//! instance id alone for the admin's removeMembersFromConsumerGroup).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use tokio::time::Instant;

use super::RequestContext;
use super::authz::group_allowed;
use crate::metadata::store::now_ms;
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let leaving: Vec<(String, Option<String>)> = if ctx.api_version >= 3 {
        req.members.iter().map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string()))).collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let group_id = req.group_id.to_string();
    if !group_allowed(ctx, AclOperation::Read, &group_id) {
        return LeaveGroupResponse::default().with_error_code(E::GroupAuthorizationFailed.code());
    }
    let codes = match leave(ctx, &group_id, &leaving).await {
        Ok(codes) => codes,
        Err(code) => return LeaveGroupResponse::default().with_error_code(code),
    };
    if ctx.api_version < 3 {
        // One member: its error is the request's.
        return LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0));
    }
    let members = leaving
        .into_iter()
        .zip(codes)
        .map(|((id, instance), code)| {
            MemberResponse::default()
                .with_member_id(super::util::str_bytes(&id))
                .with_group_instance_id(instance.as_deref().map(super::util::str_bytes))
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

async fn leave(ctx: &RequestContext, group_id: &str, leaving: &[(String, Option<String>)]) -> Result<Vec<i16>, i16> {
    if group_id.is_empty() {
        return Err(E::InvalidGroupId.code());
    }
    let coordinator = &ctx.broker.groups;
    let mut locked = coordinator.lock(group_id).await?;
    let Some(group) = locked.state.groups.get_mut(group_id) else {
        return Ok(vec![E::UnknownMemberId.code(); leaving.len()]);
    };
    let (codes, writes) = group.leave(leaving, &coordinator.limits, Instant::now(), now_ms());
    coordinator.write_group(&locked, group_id, writes).await;
    Ok(codes)
}
