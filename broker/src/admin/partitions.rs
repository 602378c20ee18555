//! Adding partitions to topics (CreatePartitions), with the checks of
//! Kafka's `ReplicationControlManager.createPartitions`: counts only grow,
//! manual assignments must name the right number of registered brokers, and
//! new partitions keep the topic's replication factor. All topics of a
//! request that pass go into one proposal (Kafka's `atomicOf`).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use super::AdminError;
use crate::Broker;
use crate::metadata::{MetadataImage, MetadataRecord};

/// One topic to grow.
#[derive(Debug, Clone)]
pub struct NewPartitions {
    pub name: String,
    /// The total partition count wanted.
    pub count: i32,
    /// Replica ids of each added partition, or `None` to place them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// Adds the partitions (or only checks, `validate_only`); one result per
/// entry of `topics`, in order. Then waits, up to `wait`, for the new
/// partitions to have a leader here, so a describe right after sees them.
pub async fn create_partitions(
    broker: &Arc<Broker>,
    topics: &[NewPartitions],
    validate_only: bool,
    wait: Duration,
) -> Vec<Result<(), AdminError>> {
    let written = broker
        .metadata
        .write(|image| {
            let live = crate::admin::create::brokers(broker, image);
            let planned: Vec<Result<MetadataRecord, AdminError>> = topics.iter().map(|t| plan(image, &live, t)).collect();
            let records: Vec<MetadataRecord> =
                if validate_only { vec![] } else { planned.iter().filter_map(|r| r.as_ref().ok().cloned()).collect() };
            Ok::<_, crate::metadata::MetadataError>((records, planned))
        })
        .await;
    let planned = match written {
        Ok((_, planned)) => planned,
        Err(e) => {
            let e = AdminError::from(e);
            return topics.iter().map(|_| Err(e.clone())).collect();
        }
    };
    if validate_only {
        return planned.into_iter().map(|r| r.map(|_| ())).collect();
    }
    // One deadline for the whole request, not `wait` per topic.
    let deadline = tokio::time::Instant::now() + wait;
    let mut images = broker.metadata.subscribe();
    for (t, r) in topics.iter().zip(&planned) {
        if r.is_ok() {
            tracing::info!(topic = %t.name, partitions = t.count, "partitions added");
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            crate::partition::PartitionManager::wait_ready(&mut images, &t.name, left).await;
        }
    }
    planned.into_iter().map(|r| r.map(|_| ())).collect()
}

/// Checks one topic against `image`; returns the record that adds its partitions.
fn plan(image: &MetadataImage, brokers: &[(i32, Option<String>)], new: &NewPartitions) -> Result<MetadataRecord, AdminError> {
    let live: Vec<i32> = brokers.iter().map(|b| b.0).collect();
    let invalid_partitions = |m: String| AdminError::new(ResponseError::InvalidPartitions, m);
    let Some(topic) = image.topic(&new.name) else {
        return Err(AdminError::new(ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition."));
    };
    let current = topic.partition_count();
    if new.count == current {
        return Err(invalid_partitions(format!("Topic already has {current} partition(s).")));
    }
    if new.count < current {
        return Err(invalid_partitions(format!(
            "The topic {} currently has {current} partition(s); {} would not be an increase.",
            new.name, new.count
        )));
    }
    let additional = new.count - current;
    let rf = topic.replication_factor();
    let replicas = match &new.assignments {
        Some(assignments) => {
            if assignments.len() as i64 != i64::from(additional) {
                return Err(AdminError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            for replicas in assignments {
                check_assignment(replicas, &live, rf)?;
            }
            assignments.clone()
        }
        None => place(brokers, current, additional, rf)?,
    };
    debug_assert_eq!(replicas.len() as i32, additional);
    Ok(MetadataRecord::Partitions { id: topic.id, replicas })
}

/// Kafka's `validateManualPartitionAssignment`, with the topic's replication factor.
fn check_assignment(replicas: &[i32], live: &[i32], rf: i16) -> Result<(), AdminError> {
    let refuse = |m: String| Err(AdminError::new(ResponseError::InvalidReplicaAssignment, m));
    if replicas.is_empty() {
        return refuse("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        if !live.contains(id) {
            return refuse(format!("The manual partition assignment includes broker {id}, but no such broker is registered."));
        }
        if i > 0 && sorted[i - 1] == *id {
            return refuse(format!("The manual partition assignment includes the broker {id} more than once."));
        }
    }
    if sorted.len() != rf as usize {
        return refuse(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
            sorted.len()
        ));
    }
    Ok(())
}

/// Rack-aware placement as `create.rs` does it, continuing from partition `first`.
fn place(live: &[(i32, Option<String>)], first: i32, count: i32, rf: i16) -> Result<Vec<Vec<i32>>, AdminError> {
    if rf as usize > live.len() || rf <= 0 {
        return Err(AdminError::new(
            ResponseError::InvalidReplicationFactor,
            format!("The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.", live.len()),
        ));
    }
    Ok(crate::cluster::placement::place(live, count as usize, rf as usize, first as usize))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::TopicId;

    fn ids(ids: &[i32]) -> Vec<(i32, Option<String>)> {
        ids.iter().map(|i| (*i, None)).collect()
    }

    fn image() -> MetadataImage {
        let mut img = MetadataImage::default();
        img.apply(&MetadataRecord::Topic { name: "t".into(), id: TopicId::random(), replicas: vec![vec![1]; 3], configs: BTreeMap::new() });
        img
    }

    fn grow(count: i32, assignments: Option<Vec<Vec<i32>>>) -> NewPartitions {
        NewPartitions { name: "t".into(), count, assignments }
    }

    fn error(r: Result<MetadataRecord, AdminError>) -> (ResponseError, String) {
        let e = r.expect_err("refused");
        (e.code, e.message)
    }

    #[test]
    fn counts_only_grow() {
        let img = image();
        let (code, msg) = error(plan(&img, &ids(&[1]), &grow(3, None)));
        assert_eq!((code, msg.as_str()), (ResponseError::InvalidPartitions, "Topic already has 3 partition(s)."));
        let (code, msg) = error(plan(&img, &ids(&[1]), &grow(2, None)));
        assert_eq!(code, ResponseError::InvalidPartitions);
        assert_eq!(msg, "The topic t currently has 3 partition(s); 2 would not be an increase.");
        let (code, _) = error(plan(&img, &ids(&[1]), &NewPartitions { name: "nope".into(), count: 5, assignments: None }));
        assert_eq!(code, ResponseError::UnknownTopicOrPartition);
        match plan(&img, &ids(&[1]), &grow(5, None)).unwrap() {
            MetadataRecord::Partitions { replicas, .. } => assert_eq!(replicas, [vec![1], vec![1]]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn assignments_are_checked() {
        let img = image();
        let cases: &[(Vec<Vec<i32>>, &str)] = &[
            (vec![vec![1]], "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."),
            (vec![vec![1], vec![]], "The manual partition assignment includes an empty replica list."),
            (vec![vec![1], vec![2]], "The manual partition assignment includes broker 2, but no such broker is registered."),
            (vec![vec![1], vec![1, 1]], "The manual partition assignment includes the broker 1 more than once."),
        ];
        for (assignments, message) in cases {
            let (code, msg) = error(plan(&img, &ids(&[1]), &grow(5, Some(assignments.clone()))));
            assert_eq!(code, ResponseError::InvalidReplicaAssignment);
            assert_eq!(&msg, message);
        }
        let (_, msg) = error(plan(&img, &ids(&[1, 2]), &grow(4, Some(vec![vec![1, 2]]))));
        assert!(msg.contains("includes a partition with 2 replica(s)"), "{msg}");
        assert!(plan(&img, &ids(&[1]), &grow(4, Some(vec![vec![1]]))).is_ok());
    }

    #[test]
    fn placement_continues_round_robin() {
        assert_eq!(place(&ids(&[1, 2, 3]), 3, 2, 2).unwrap(), [vec![1, 2], vec![2, 3]]);
        assert_eq!(place(&ids(&[1]), 0, 1, 2).unwrap_err().code, ResponseError::InvalidReplicationFactor);
    }
}
