//! Creating topics (CreateTopics and Metadata's auto-create).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use super::AdminError;
use crate::Broker;
use crate::config::topic;
use crate::handlers::util::{collides, validate_topic_name};
use crate::metadata::{MetadataImage, MetadataRecord, TopicId, TopicImage};

/// What to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: `num.partitions`.
    pub num_partitions: i32,
    /// -1: `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignment: replica ids per partition (then both counts are -1).
    pub assignments: Vec<Vec<i32>>,
    pub configs: BTreeMap<String, String>,
}

/// The brokers placement may use: the registered, unfenced ones (id, rack).
/// Before this broker's own registration is in the image (a single node's
/// first moments), this broker alone.
pub(crate) fn brokers(broker: &Broker, image: &MetadataImage) -> Vec<(i32, Option<String>)> {
    let live: Vec<(i32, Option<String>)> = image.live_brokers().map(|b| (b.id, b.rack.clone())).collect();
    if live.is_empty() { vec![(broker.config.node_id, broker.config.broker_rack.clone())] } else { live }
}

/// Checks `new` against the image and the broker's limits; returns the
/// record that would create it.
fn plan(broker: &Broker, image: &MetadataImage, new: &NewTopic) -> Result<MetadataRecord, AdminError> {
    let invalid_topic = |m: String| AdminError::new(ResponseError::InvalidTopicException, m);
    validate_topic_name(&new.name).map_err(invalid_topic)?;
    if new.name == "__cluster_metadata" {
        return Err(AdminError::new(ResponseError::InvalidRequest, "Creation of internal topic __cluster_metadata is prohibited."));
    }
    if image.topic(&new.name).is_some() {
        return Err(AdminError::new(ResponseError::TopicAlreadyExists, format!("Topic '{}' already exists.", new.name)));
    }
    if let Some(other) = image.topics.keys().find(|t| collides(t, &new.name)) {
        return Err(invalid_topic(format!("Topic '{}' collides with existing topic: {other}", new.name)));
    }
    let placeable = brokers(broker, image);
    let live: Vec<i32> = placeable.iter().map(|b| b.0).collect();
    let replicas = if !new.assignments.is_empty() {
        if new.num_partitions != -1 || new.replication_factor != -1 {
            return Err(AdminError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        for (p, r) in new.assignments.iter().enumerate() {
            if r.is_empty() || r.iter().any(|b| !live.contains(b)) {
                return Err(AdminError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "The manual partition assignment includes a partition with an unknown or empty replica set: partition {p} {r:?}"
                    ),
                ));
            }
        }
        new.assignments.clone()
    } else {
        let partitions = if new.num_partitions == -1 { broker.config.num_partitions } else { new.num_partitions };
        let rf = if new.replication_factor == -1 { broker.config.default_replication_factor } else { new.replication_factor };
        if partitions <= 0 {
            return Err(AdminError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        }
        if rf <= 0 {
            return Err(AdminError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        if rf as usize > live.len() {
            return Err(AdminError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                    live.len()
                ),
            ));
        }
        let start = rand::random::<u32>() as usize % live.len();
        crate::cluster::placement::place(&placeable, partitions as usize, rf as usize, start)
    };
    topic::validate_for(&broker.config, &new.configs).map_err(|e| AdminError::new(ResponseError::InvalidConfig, e.to_string()))?;
    Ok(MetadataRecord::Topic { name: new.name.clone(), id: TopicId::random(), replicas, configs: new.configs.clone() })
}

/// Creates the topic (or only checks it, `validate_only`) and waits, up to
/// `wait`, for its partitions to come online here. Returns the topic as
/// created (for validate_only, as it would be).
pub async fn create_topic(broker: &Arc<Broker>, new: &NewTopic, validate_only: bool, wait: Duration) -> Result<TopicImage, AdminError> {
    let (image, planned) = broker
        .metadata
        .write(|image| {
            let record = plan(broker, image, new)?;
            let MetadataRecord::Topic { name, id, replicas, configs } = record.clone() else { unreachable!("plan makes a topic") };
            let planned = TopicImage::new(name, id, replicas, configs);
            Ok::<_, AdminError>((if validate_only { vec![] } else { vec![record] }, planned))
        })
        .await?;
    if validate_only {
        return Ok(planned);
    }
    tracing::info!(topic = %new.name, partitions = planned.partition_count(), "topic created");
    crate::partition::PartitionManager::wait_ready(&mut broker.metadata.subscribe(), &new.name, wait).await;
    let image = broker.metadata.image().topic(&new.name).cloned().or_else(|| image.topic(&new.name).cloned());
    Ok(image.map_or(planned, |t| (*t).clone()))
}
