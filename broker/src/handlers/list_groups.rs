//! ListGroups (key 16): the groups this broker coordinates, filtered by
//! state (v4+, case-insensitive) and type (v5+; every group here is classic).
//! DESCRIBE on the cluster lists them all; without it only the groups the
//! principal may describe are listed, and nothing is an error (Kafka's
//! `KafkaApis.handleListGroupsRequest`).

use std::ops::RangeInclusive;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::RequestContext;
use super::authz::{allowed, cluster_allowed};
use super::util::str_bytes;
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types_ok = req.types_filter.is_empty() || req.types_filter.iter().any(|t| t.eq_ignore_ascii_case("classic"));
    let image = ctx.broker.metadata.image();
    let every_group = cluster_allowed(ctx, &image, AclOperation::Describe);
    let mut listed = Vec::new();
    if types_ok {
        let coordinator = &ctx.broker.groups;
        for index in coordinator.led_partitions() {
            let Ok(locked) = coordinator.lock_shard(index).await else { continue };
            for (id, g) in &locked.state.groups {
                let state = g.state.as_str();
                if !states.is_empty() && !states.contains(&state.to_lowercase()) {
                    continue;
                }
                if !every_group && !allowed(ctx, &image, AclOperation::Describe, ResourceType::Group, id) {
                    continue;
                }
                listed.push(
                    ListedGroup::default()
                        .with_group_id(GroupId(str_bytes(id)))
                        .with_protocol_type(str_bytes(g.protocol_type.as_deref().unwrap_or("")))
                        .with_group_state(str_bytes(state))
                        .with_group_type(str_bytes("classic")),
                );
            }
        }
    }
    listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse::default().with_groups(listed)
}
