//! DeleteGroups (key 42): removes empty groups and their offsets
//! (tombstones in `__consumer_offsets`); a group with members is refused
//! with NON_EMPTY_GROUP.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::RequestContext;
use super::authz::group_allowed;
use crate::group::classic::State;
use crate::group::coordinator::is_active;
use crate::group::records::GroupRecord;
use crate::metadata::store::now_ms;
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

pub async fn handle(ctx: &RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in &req.groups_names {
        let code = delete(ctx, id).await.err().unwrap_or(0);
        results.push(DeletableGroupResult::default().with_group_id(id.clone()).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}

async fn delete(ctx: &RequestContext, id: &str) -> Result<(), i16> {
    if !group_allowed(ctx, AclOperation::Delete, id) {
        return Err(E::GroupAuthorizationFailed.code());
    }
    let coordinator = &ctx.broker.groups;
    let mut locked = coordinator.lock(id).await?;
    let group = locked.state.groups.get(id).filter(|g| g.state != State::Dead).ok_or(E::GroupIdNotFound.code())?;
    if is_active(group.state) {
        return Err(E::NonEmptyGroup.code());
    }
    let mut records: Vec<GroupRecord> = locked
        .state
        .offsets
        // Pending transactional offsets too: a later COMMIT must not bring them back.
        .all_partitions(id)
        .into_iter()
        .map(|(topic, p)| GroupRecord::Offset { group: id.to_string(), topic, partition: p, value: None })
        .collect();
    records.push(GroupRecord::Group { group: id.to_string(), value: None });
    // Gone at once, as in Kafka: the group is Dead while its tombstones commit.
    if let Some(mut g) = locked.state.groups.remove(id) {
        g.kill(now_ms());
    }
    coordinator.write_offsets(locked, records).await?;
    Ok(())
}
