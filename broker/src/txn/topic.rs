//! `__transaction_state`, created the first time a client looks for a
//! transaction coordinator, as Kafka creates it: compacted, uncompressed,
//! `transaction.state.log.num.partitions` partitions, with
//! `transaction.state.log.replication.factor` replicas (or as many as there
//! are brokers) and `transaction.state.log.min.isr` (at most that).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use super::coordinator::TXN_TOPIC;
use crate::Broker;
use crate::admin::create::{NewTopic, brokers, create_topic};

/// How long FindCoordinator waits for a new `__transaction_state` to come
/// online before answering COORDINATOR_NOT_AVAILABLE (clients retry that).
const CREATE_WAIT: Duration = Duration::from_secs(10);

/// Makes sure the topic exists (a new one with a leader for every
/// partition); false if it cannot be had now.
pub async fn ensure_txn_topic(broker: &Arc<Broker>) -> bool {
    let image = broker.metadata.image();
    if image.topic(TXN_TOPIC).is_some() {
        return true;
    }
    let t = &broker.config.transactions;
    let live = i16::try_from(brokers(broker, &image).len().max(1)).unwrap_or(i16::MAX);
    let replication_factor = t.topic_replication_factor.min(live);
    let new = NewTopic {
        name: TXN_TOPIC.to_string(),
        num_partitions: t.topic_num_partitions,
        replication_factor,
        assignments: Vec::new(),
        configs: topic_configs(t.topic_min_isr, replication_factor, t.topic_segment_bytes),
    };
    match create_topic(broker, &new, false, CREATE_WAIT).await {
        Ok(_) => {}
        Err(e) if e.code == ResponseError::TopicAlreadyExists => {}
        Err(e) => {
            tracing::warn!("creating {TXN_TOPIC}: {}", e.message);
            return false;
        }
    }
    crate::partition::PartitionManager::wait_ready(&mut broker.metadata.subscribe(), TXN_TOPIC, CREATE_WAIT).await
}

/// Kafka's `TransactionStateManager.transactionTopicConfigs`.
fn topic_configs(min_isr: i32, replication_factor: i16, segment_bytes: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("compression.type".to_string(), "uncompressed".to_string()),
        ("min.insync.replicas".to_string(), min_isr.min(i32::from(replication_factor)).to_string()),
        ("segment.bytes".to_string(), segment_bytes.to_string()),
        ("unclean.leader.election.enable".to_string(), "false".to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_isr_is_capped_by_the_replicas() {
        assert_eq!(topic_configs(2, 1, 1 << 20)["min.insync.replicas"], "1");
        assert_eq!(topic_configs(2, 3, 1 << 20)["min.insync.replicas"], "2");
        assert_eq!(topic_configs(2, 3, 104_857_600)["segment.bytes"], "104857600");
        assert_eq!(topic_configs(2, 3, 1)["cleanup.policy"], "compact");
    }
}
