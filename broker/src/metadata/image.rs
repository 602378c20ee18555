//! The metadata image: what the committed metadata records add up to. It is
//! immutable once published; a change makes a new image (topics are shared
//! between images through `Arc`), so readers hold one without locks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::records::{MetadataRecord, TopicId};

/// One topic as the cluster knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    pub name: String,
    pub id: TopicId,
    /// Replica broker ids of each partition, by partition index; the first is
    /// the preferred leader.
    pub replicas: Vec<Vec<i32>>,
    /// Explicitly set topic configs (not defaults).
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    pub fn partition_count(&self) -> i32 {
        self.replicas.len() as i32
    }

    pub fn replication_factor(&self) -> i16 {
        self.replicas.first().map_or(0, |r| r.len() as i16)
    }

    /// Kafka's internal topics are flagged `is_internal` in Metadata.
    pub fn is_internal(&self) -> bool {
        matches!(self.name.as_str(), "__consumer_offsets" | "__transaction_state" | "__share_group_state")
    }
}

/// The cluster metadata at one point of the metadata log.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_names: HashMap<TopicId, String>,
    /// Producer ids below this are handed out.
    pub next_producer_id: i64,
    /// Offset after the last metadata record applied.
    pub next_offset: i64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&Arc<TopicImage>> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// Applies one committed record. A record that names a topic the image
    /// does not know is skipped (the controller never writes one; a log from
    /// a newer or damaged build must not stop the broker).
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::ClusterId { id } => self.cluster_id = Some(id.clone()),
            MetadataRecord::Topic { name, id, replicas, configs } => {
                let topic = TopicImage { name: name.clone(), id: *id, replicas: replicas.clone(), configs: configs.clone() };
                if let Some(old) = self.topics.insert(name.clone(), Arc::new(topic)) {
                    self.topic_names.remove(&old.id);
                }
                self.topic_names.insert(*id, name.clone());
            }
            MetadataRecord::Partitions { id, replicas } => self.update(id, |t| t.replicas.extend(replicas.iter().cloned())),
            MetadataRecord::TopicConfigs { id, configs } => self.update(id, |t| t.configs = configs.clone()),
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.topic_names.remove(id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::ProducerIds { next, .. } => self.next_producer_id = self.next_producer_id.max(*next),
        }
    }

    fn update(&mut self, id: &TopicId, f: impl FnOnce(&mut TopicImage)) {
        let Some(name) = self.topic_names.get(id) else {
            tracing::warn!(topic_id = %id, "metadata record for an unknown topic skipped");
            return;
        };
        if let Some(t) = self.topics.get_mut(name) {
            f(Arc::make_mut(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_add_up() {
        let mut img = MetadataImage::default();
        let id = TopicId::random();
        img.apply(&MetadataRecord::Topic { name: "a".into(), id, replicas: vec![vec![1]; 2], configs: BTreeMap::new() });
        img.apply(&MetadataRecord::Partitions { id, replicas: vec![vec![1]] });
        assert_eq!(img.topic("a").unwrap().partition_count(), 3);
        let cfg = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        img.apply(&MetadataRecord::TopicConfigs { id, configs: cfg.clone() });
        assert_eq!(img.topic_by_id(&id).unwrap().configs, cfg);
        img.apply(&MetadataRecord::ProducerIds { broker: 1, first: 0, next: 1000 });
        img.apply(&MetadataRecord::ProducerIds { broker: 1, first: 0, next: 10 });
        assert_eq!(img.next_producer_id, 1000);
        img.apply(&MetadataRecord::RemoveTopic { id });
        assert!(img.topic("a").is_none() && img.topic_names.is_empty());
        // Unknown ids are skipped, not fatal.
        img.apply(&MetadataRecord::Partitions { id, replicas: vec![vec![1]] });
    }
}
