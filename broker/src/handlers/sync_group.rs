//! SyncGroup (key 14): members fetch their assignment; the leader's request
//! carries everyone's. Replies wait until the leader's assignment is
//! written to `__consumer_offsets`.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::authz::group_allowed;
use super::util::str_bytes;
use super::{Pending, RequestContext, ready, respond};
use crate::group::classic::{Answer, SyncReply};
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: Arc<RequestContext>, req: SyncGroupRequest) -> Pending {
    match sync(&ctx, req).await {
        Answer::Now(reply) => ready(respond(&ctx, &response(reply))),
        Answer::Later(rx) => Box::pin(async move {
            let reply = rx.await.unwrap_or_else(|_| SyncReply::error(E::NotCoordinator.code()));
            respond(&ctx, &response(reply))
        }),
    }
}

async fn sync(ctx: &RequestContext, req: SyncGroupRequest) -> Answer<SyncReply> {
    let group_id = req.group_id.to_string();
    if !group_allowed(ctx, AclOperation::Read, &group_id) {
        return Answer::Now(SyncReply::error(E::GroupAuthorizationFailed.code()));
    }
    if group_id.is_empty() {
        return Answer::Now(SyncReply::error(E::InvalidGroupId.code()));
    }
    // v5 made both mandatory (KafkaApis: areMandatoryProtocolTypeAndNamePresent).
    if ctx.api_version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        return Answer::Now(SyncReply::error(E::InconsistentGroupProtocol.code()));
    }
    let coordinator = &ctx.broker.groups;
    let mut locked = match coordinator.lock(&group_id).await {
        Ok(l) => l,
        Err(code) => return Answer::Now(SyncReply::error(code)),
    };
    let Some(group) = locked.state.groups.get_mut(&group_id) else {
        return Answer::Now(SyncReply::error(E::UnknownMemberId.code()));
    };
    let instance = req.group_instance_id.as_ref().map(|i| i.to_string());
    let assignments = req.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect();
    let (answer, writes) = group.sync(
        &req.member_id,
        instance.as_deref(),
        req.generation_id,
        req.protocol_type.as_deref(),
        req.protocol_name.as_deref(),
        assignments,
    );
    coordinator.write_group(&locked, &group_id, writes).await;
    answer
}

fn response(r: SyncReply) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_protocol_type(r.protocol_type.as_deref().map(str_bytes))
        .with_protocol_name(r.protocol_name.as_deref().map(str_bytes))
        .with_assignment(r.assignment)
}
