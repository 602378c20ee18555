//! DescribeGroups (key 15): state, protocol and members of groups. Member
//! metadata is shown only for a Stable group, as Kafka does; an unknown
//! group is "Dead" (v6+: with GROUP_ID_NOT_FOUND, KIP-1043).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};

use super::RequestContext;
use super::authz::{authorized_operations, group_allowed};
use super::util::str_bytes;
use crate::group::classic::State;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=6;

pub async fn handle(ctx: &RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    // v3+ may ask; Kafka fills them in only for groups answered without an
    // error (so a v5 unknown group, "Dead" with no error, gets them too).
    let operations = ctx.api_version >= 3 && req.include_authorized_operations;
    // Kafka answers the groups that may not be described first.
    let (refused, permitted): (Vec<&GroupId>, Vec<&GroupId>) =
        req.groups.iter().partition(|id| !group_allowed(ctx, AclOperation::Describe, id));
    let mut groups: Vec<DescribedGroup> = refused
        .into_iter()
        .map(|id| base(id).with_error_code(E::GroupAuthorizationFailed.code()).with_group_state(str_bytes("")))
        .collect();
    for id in permitted {
        let mut group = describe(ctx, id).await;
        if operations && group.error_code == 0 {
            group.authorized_operations = authorized_operations(ctx, &ctx.broker.metadata.image(), ResourceType::Group, id);
        }
        groups.push(group);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

fn base(id: &GroupId) -> DescribedGroup {
    DescribedGroup::default().with_group_id(id.clone()).with_protocol_type(str_bytes("")).with_protocol_data(str_bytes(""))
}

async fn describe(ctx: &RequestContext, id: &GroupId) -> DescribedGroup {
    let base = base(id);
    let locked = match ctx.broker.groups.lock(id).await {
        Ok(l) => l,
        Err(code) => return base.with_error_code(code).with_group_state(str_bytes("")),
    };
    let Some(g) = locked.state.groups.get(id.as_str()) else {
        let dead = base.with_group_state(str_bytes(State::Dead.as_str()));
        return if ctx.api_version >= 6 {
            dead.with_error_code(E::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(&format!("Group {} not found.", id.as_str()))))
        } else {
            dead
        };
    };
    let stable = g.state == State::Stable;
    let members = g
        .members()
        .map(|m| {
            DescribedGroupMember::default()
                .with_member_id(str_bytes(&m.id))
                .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_member_metadata(if stable { m.metadata(g.protocol.as_deref()) } else { Default::default() })
                .with_member_assignment(m.assignment.clone())
        })
        .collect();
    base.with_group_state(str_bytes(g.state.as_str()))
        .with_protocol_type(str_bytes(g.protocol_type.as_deref().unwrap_or("")))
        .with_protocol_data(str_bytes(if stable { g.protocol.as_deref().unwrap_or("") } else { "" }))
        .with_members(members)
}
