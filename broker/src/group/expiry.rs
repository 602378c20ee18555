//! Offset retention (`offsets.retention.minutes`), Kafka's
//! `cleanupExpiredOffsets`: an empty group's offsets expire that long after
//! it became empty; a group that only commits, that long after each
//! commit; a consuming group keeps the offsets of topics it subscribes to.
//! A group left with no offsets and no members is deleted. An offset an
//! open transaction is about to replace does not expire, nor does a group
//! with an open transaction holding offsets.

use std::collections::HashSet;
use std::sync::Arc;

use super::classic::State;
use super::coordinator::{GroupCoordinator, Locked, write_error_code};
use super::records::GroupRecord;

/// Deletes the offsets of deleted topics, committed or in open
/// transactions, as Kafka's coordinator does (`onPartitionsDeleted`): a
/// topic created again under the same name starts with no offsets, so its
/// groups do not skip its first records.
pub async fn forget_topics(coordinator: &Arc<GroupCoordinator>, locked: &mut Locked, topics: &HashSet<String>) {
    let offsets = &locked.state.offsets;
    let records: Vec<GroupRecord> = locked
        .state
        .groups
        .keys()
        .flat_map(|id| {
            let all = offsets.all_partitions(id);
            all.into_iter().filter(|(t, _)| topics.contains(t)).map(|(topic, partition)| GroupRecord::Offset {
                group: id.clone(),
                topic,
                partition,
                value: None,
            })
        })
        .collect();
    write_tombstones(coordinator, locked, records, "offsets of deleted topics").await;
}

pub async fn expire(coordinator: &Arc<GroupCoordinator>, locked: &mut Locked, now_ms: i64) {
    let retention = coordinator.config.groups.offsets_retention_ms;
    let state = &mut *locked.state;
    let mut records = Vec::new();
    let mut emptied = Vec::new();
    for (id, g) in &state.groups {
        let subscribed = match g.state {
            State::Empty => Some(Default::default()),
            _ if g.protocol_type.as_deref() == Some("consumer") => g.subscribed_topics(),
            _ => None,
        };
        let Some(subscribed) = subscribed else { continue };
        let mut kept = 0usize;
        for ((topic, p), c) in state.offsets.of_group(id) {
            let base = if g.state == State::Empty && g.protocol_type.is_some() { g.state_timestamp } else { c.value.commit_timestamp };
            let expired = match c.value.expire_timestamp {
                Some(at) => now_ms >= at,
                None => !subscribed.contains(topic) && now_ms.saturating_sub(base) >= retention,
            } && !state.offsets.has_pending(id, &(topic.clone(), *p));
            if expired {
                records.push(GroupRecord::Offset { group: id.clone(), topic: topic.clone(), partition: *p, value: None });
            } else {
                kept += 1;
            }
        }
        if kept == 0 && g.state == State::Empty && g.is_empty() && !state.offsets.has_pending_group(id) {
            emptied.push(id.clone());
            records.push(GroupRecord::Group { group: id.clone(), value: None });
        }
    }
    if !write_tombstones(coordinator, locked, records, "expired offsets").await {
        return;
    }
    for id in emptied {
        if !locked.state.offsets.has_group(&id) && locked.state.groups.get(&id).is_some_and(|g| g.state == State::Empty && g.is_empty()) {
            locked.state.groups.remove(&id);
        }
    }
}

/// Writes tombstones and applies them once committed; whether they were.
async fn write_tombstones(coordinator: &Arc<GroupCoordinator>, locked: &mut Locked, records: Vec<GroupRecord>, what: &str) -> bool {
    if records.is_empty() {
        return true;
    }
    let appended = match coordinator.propose(&locked.shard, &records).await {
        Ok(wait) => wait.await.map_err(|e| write_error_code(&e)),
        Err(code) => Err(code),
    };
    let Ok(appended) = appended else {
        tracing::warn!(partition = locked.shard.index, "{what} not deleted: the write failed");
        return false;
    };
    tracing::info!(partition = locked.shard.index, records = records.len(), "{what} deleted");
    locked.state.offsets.apply_written(records, appended.base_offset);
    true
}
