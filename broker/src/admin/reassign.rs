//! Partition reassignment (AlterPartitionReassignments), with the checks of
//! Kafka's `ReplicationControlManager.alterPartitionReassignment`. A
//! reassignment is one `Reassign` record per partition; the partition's
//! leader then moves the raft voters (`cluster::leadership`) and the
//! controller records the end when the leader reports the new voters.

use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::AdminError;
use crate::Broker;
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord};

/// One partition of a request: its new replicas, or `None` to cancel.
#[derive(Debug, Clone)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<i32>>,
}

/// Starts (or cancels) the reassignments; one result per move, in order.
pub async fn reassign(broker: &Arc<Broker>, moves: &[Move], allow_rf_change: bool) -> Vec<Result<(), AdminError>> {
    let written = broker
        .metadata
        .write(|image| {
            let planned: Vec<Result<MetadataRecord, AdminError>> = moves.iter().map(|m| plan(image, m, allow_rf_change)).collect();
            let records = planned.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
            Ok::<_, MetadataError>((records, planned))
        })
        .await;
    match written {
        Ok((_, planned)) => planned
            .into_iter()
            .zip(moves)
            .map(|(r, m)| {
                r.map(|_| {
                    tracing::info!(topic = %m.topic, partition = m.partition, replicas = ?m.replicas, "reassignment requested");
                })
            })
            .collect(),
        Err(e) => {
            let e = AdminError::from(e);
            moves.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

fn plan(image: &MetadataImage, m: &Move, allow_rf_change: bool) -> Result<MetadataRecord, AdminError> {
    let unknown = || AdminError::new(ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition.");
    let topic = image.topic(&m.topic).ok_or_else(unknown)?;
    let state = topic.state(m.partition).ok_or_else(unknown)?;
    let replicas = &topic.replicas[m.partition as usize];
    let original: Vec<i32> = replicas.iter().copied().filter(|r| !state.adding.contains(r)).collect();
    let Some(target) = &m.replicas else {
        if !state.reassigning() {
            return Err(AdminError::new(ResponseError::NoReassignmentInProgress, "No ongoing reassignment for this partition."));
        }
        return Ok(MetadataRecord::Reassign { id: topic.id, partition: m.partition, target: original });
    };
    let invalid = |m: String| Err(AdminError::new(ResponseError::InvalidReplicaAssignment, m));
    if target.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = target.clone();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        if i > 0 && sorted[i - 1] == *id {
            return invalid(format!("The manual partition assignment includes the broker {id} more than once."));
        }
        if !image.brokers.contains_key(id) {
            return invalid(format!("The manual partition assignment includes broker {id}, but no such broker is registered."));
        }
    }
    if !allow_rf_change && target.len() != original.len() {
        return Err(AdminError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "The replication factor is changed from {} to {} but allowReplicationFactorChange is false",
                original.len(),
                target.len()
            ),
        ));
    }
    Ok(MetadataRecord::Reassign { id: topic.id, partition: m.partition, target: target.clone() })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::TopicId;
    use crate::metadata::records::BrokerEndpoint;

    fn image() -> MetadataImage {
        let mut img = MetadataImage::default();
        for id in 1..=4 {
            img.apply(&MetadataRecord::RegisterBroker {
                id,
                incarnation: "x".into(),
                rack: None,
                endpoints: Vec::<BrokerEndpoint>::new(),
                raft_addr: "a:1".into(),
                controller: false,
            });
        }
        img.apply(&MetadataRecord::Topic {
            name: "t".into(),
            id: TopicId::random(),
            replicas: vec![vec![1, 2, 3]],
            configs: BTreeMap::new(),
        });
        img
    }

    fn code(r: Result<MetadataRecord, AdminError>) -> ResponseError {
        r.unwrap_err().code
    }

    #[test]
    fn kafkas_checks() {
        let img = image();
        let mv = |topic: &str, partition: i32, replicas: Option<Vec<i32>>| Move { topic: topic.into(), partition, replicas };
        assert_eq!(code(plan(&img, &mv("nope", 0, Some(vec![1])), true)), ResponseError::UnknownTopicOrPartition);
        assert_eq!(code(plan(&img, &mv("t", 1, Some(vec![1])), true)), ResponseError::UnknownTopicOrPartition);
        assert_eq!(code(plan(&img, &mv("t", 0, None), true)), ResponseError::NoReassignmentInProgress);
        assert_eq!(code(plan(&img, &mv("t", 0, Some(vec![])), true)), ResponseError::InvalidReplicaAssignment);
        assert_eq!(code(plan(&img, &mv("t", 0, Some(vec![1, 1, 2])), true)), ResponseError::InvalidReplicaAssignment);
        assert_eq!(code(plan(&img, &mv("t", 0, Some(vec![1, 2, 9])), true)), ResponseError::InvalidReplicaAssignment);
        assert_eq!(code(plan(&img, &mv("t", 0, Some(vec![1, 2])), false)), ResponseError::InvalidReplicationFactor);
        assert!(plan(&img, &mv("t", 0, Some(vec![4, 2, 3])), false).is_ok());
    }
}
