//! `__consumer_offsets`, created the first time a client looks for a
//! coordinator, as Kafka creates it: `offsets.topic.num.partitions`
//! partitions, compacted, with `offsets.topic.replication.factor` replicas
//! or as many as there are brokers, so one node works with the defaults.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use super::coordinator::OFFSETS_TOPIC;
use crate::Broker;
use crate::admin::create::{NewTopic, brokers, create_topic};

/// How long FindCoordinator waits for a new `__consumer_offsets` to come
/// online before answering COORDINATOR_NOT_AVAILABLE (clients retry that).
const CREATE_WAIT: Duration = Duration::from_secs(10);

/// Makes sure the topic exists (a new one with a leader for every
/// partition); false if it cannot be had now.
pub async fn ensure_offsets_topic(broker: &Arc<Broker>) -> bool {
    let image = broker.metadata.image();
    if image.topic(OFFSETS_TOPIC).is_some() {
        // Each partition's leader is looked up by whoever needs it.
        return true;
    }
    let g = &broker.config.groups;
    let live = brokers(broker, &image).len().max(1);
    let new = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: g.offsets_topic_num_partitions,
        replication_factor: g.offsets_topic_replication_factor.min(i16::try_from(live).unwrap_or(i16::MAX)),
        assignments: Vec::new(),
        configs: BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "producer".to_string()),
            ("segment.bytes".to_string(), g.offsets_topic_segment_bytes.to_string()),
        ]),
    };
    match create_topic(broker, &new, false, CREATE_WAIT).await {
        Ok(_) => {}
        Err(e) if e.code == ResponseError::TopicAlreadyExists => {}
        Err(e) => {
            tracing::warn!("creating {OFFSETS_TOPIC}: {}", e.message);
            return false;
        }
    }
    crate::partition::PartitionManager::wait_ready(&mut broker.metadata.subscribe(), OFFSETS_TOPIC, CREATE_WAIT).await
}
