//! JoinGroup (key 11): enter the group's next generation. The reply waits
//! until the join phase completes (every member rejoined, or the rebalance
//! timeout), so it is a [`Pending`].

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use tokio::time::Instant;

use super::authz::group_allowed;
use super::util::str_bytes;
use super::{Pending, RequestContext, ready, respond};
use crate::group::classic::{Answer, ClassicGroup, JoinReply, JoinRequest, State};
use crate::metadata::store::now_ms;
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=9;

pub async fn handle(ctx: Arc<RequestContext>, req: JoinGroupRequest) -> Pending {
    let answer = join(&ctx, req).await;
    match answer {
        Answer::Now(reply) => ready(respond(&ctx, &response(reply))),
        Answer::Later(rx) => Box::pin(async move {
            // A dropped sender: the shard was unloaded (leadership moved).
            let reply = rx.await.unwrap_or_else(|_| JoinReply::error(E::NotCoordinator.code(), ""));
            respond(&ctx, &response(reply))
        }),
    }
}

async fn join(ctx: &RequestContext, req: JoinGroupRequest) -> Answer<JoinReply> {
    let member_id = req.member_id.to_string();
    let fail = |code: E| Answer::Now(JoinReply::error(code.code(), &member_id));
    if !group_allowed(ctx, AclOperation::Read, &req.group_id) {
        return fail(E::GroupAuthorizationFailed);
    }
    let group_id = req.group_id.to_string();
    if group_id.is_empty() {
        return fail(E::InvalidGroupId);
    }
    // Strings Kafka's int16 lengths cannot hold (its parser refuses them);
    // a member id is the client or instance id plus 37 characters.
    let too_long = |s: &str, extra: usize| s.len() + extra > i16::MAX as usize;
    let instance = req.group_instance_id.as_deref().unwrap_or("");
    if too_long(&group_id, 0)
        || too_long(&ctx.client_id, 37)
        || too_long(instance, 37)
        || too_long(&req.protocol_type, 0)
        || req.protocols.iter().any(|p| too_long(&p.name, 0))
    {
        return fail(E::InvalidRequest);
    }
    let limits = &ctx.broker.config.groups;
    if req.session_timeout_ms < limits.min_session_timeout_ms || req.session_timeout_ms > limits.max_session_timeout_ms {
        return fail(E::InvalidSessionTimeout);
    }
    let coordinator = &ctx.broker.groups;
    let mut locked = match coordinator.lock(&group_id).await {
        Ok(l) => l,
        Err(code) => return Answer::Now(JoinReply::error(code, &member_id)),
    };
    if !locked.state.groups.contains_key(&group_id) {
        if !member_id.is_empty() {
            return fail(E::UnknownMemberId);
        }
        locked.state.groups.insert(group_id.clone(), ClassicGroup::new(&group_id, now_ms()));
    }
    let request = JoinRequest {
        member_id: member_id.clone(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout stands in.
        rebalance_timeout_ms: if ctx.api_version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        version: ctx.api_version,
    };
    let group = locked.state.groups.get_mut(&group_id).expect("inserted above");
    let (answer, writes) = group.join(request, &coordinator.limits, Instant::now(), now_ms());
    let unused = group.state == State::Empty && group.is_empty() && !locked.state.offsets.has_group(&group_id);
    if unused && writes.is_empty() {
        // A refused first join leaves nothing behind.
        locked.state.groups.remove(&group_id);
    }
    coordinator.write_group(&locked, &group_id, writes).await;
    answer
}

fn response(r: JoinReply) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_type(r.protocol_type.as_deref().map(str_bytes))
        .with_protocol_name(r.protocol_name.as_deref().map(str_bytes))
        .with_leader(str_bytes(&r.leader))
        .with_skip_assignment(r.skip_assignment)
        .with_member_id(str_bytes(&r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&id))
                        .with_group_instance_id(instance.as_deref().map(str_bytes))
                        .with_metadata(metadata)
                })
                .collect(),
        )
}
