//! The metadata image: what the committed metadata records add up to. It is
//! immutable once published; a change makes a new image (topics are shared
//! between images through `Arc`), so readers hold one without locks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::records::{BrokerEndpoint, MetadataRecord, TopicId};
use crate::security::acl::AclBinding;
use crate::security::sasl::{ScramCredential, ScramMechanism};

/// A registered broker.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerImage {
    pub id: i32,
    /// Changes with every start of the broker process.
    pub incarnation: String,
    pub rack: Option<String>,
    pub endpoints: Vec<BrokerEndpoint>,
    /// Where peers reach its raft transport.
    pub raft_addr: String,
    /// A voter of the metadata quorum.
    pub controller: bool,
    /// Not heard from within `broker.session.timeout.ms`: left out of
    /// Metadata and of placement (Kafka's fenced brokers).
    pub fenced: bool,
}

impl BrokerImage {
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.name == listener)
    }
}

/// A partition's leadership and reassignment state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartitionState {
    /// The raft leader last reported; -1 before the first report.
    pub leader: i32,
    /// Its raft term (Kafka's leader epoch); -1 before the first report.
    pub leader_epoch: i32,
    /// Replicas caught up with the leader, as it last reported them.
    pub isr: Vec<i32>,
    /// During a reassignment: replicas joining, and replicas leaving.
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl PartitionState {
    fn new() -> Self {
        Self { leader: -1, leader_epoch: -1, ..Self::default() }
    }

    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }
}

/// One topic as the cluster knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    pub name: String,
    pub id: TopicId,
    /// Replica broker ids of each partition, by partition index; the first is
    /// the preferred leader. During a reassignment: the target replicas,
    /// then those being removed (Kafka's order).
    pub replicas: Vec<Vec<i32>>,
    /// Leadership and reassignment of each partition, by index.
    pub partitions: Vec<PartitionState>,
    /// Explicitly set topic configs (not defaults).
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    pub fn new(name: String, id: TopicId, replicas: Vec<Vec<i32>>, configs: BTreeMap<String, String>) -> Self {
        let partitions = vec![PartitionState::new(); replicas.len()];
        Self { name, id, replicas, partitions, configs }
    }

    pub fn state(&self, partition: i32) -> Option<&PartitionState> {
        usize::try_from(partition).ok().and_then(|p| self.partitions.get(p))
    }

    /// The replicas a partition's raft voters should be: the target of a
    /// reassignment in progress, else its replicas.
    pub fn target(&self, partition: i32) -> Vec<i32> {
        let (Some(replicas), Some(state)) = (usize::try_from(partition).ok().and_then(|p| self.replicas.get(p)), self.state(partition))
        else {
            return Vec::new();
        };
        replicas.iter().copied().filter(|r| !state.removing.contains(r)).collect()
    }

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
    /// Registered brokers by id, fenced ones included.
    pub brokers: BTreeMap<i32, BrokerImage>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_names: HashMap<TopicId, String>,
    /// Producer ids below this are handed out.
    pub next_producer_id: i64,
    /// Offset after the last metadata record applied.
    pub next_offset: i64,
    /// SCRAM credentials by user, then mechanism (AlterUserScramCredentials).
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Every ACL binding (CreateAcls, DeleteAcls).
    pub acls: BTreeSet<AclBinding>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&Arc<TopicImage>> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// Unfenced brokers, by id: those placement and Metadata use.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    pub fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// `user`'s SCRAM credential for `mechanism`, if one is stored.
    pub fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.scram_credentials.get(user)?.get(&mechanism)
    }

    /// Applies one committed record. A record that names a topic the image
    /// does not know is skipped (the controller never writes one; a log from
    /// a newer or damaged build must not stop the broker).
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::ClusterId { id } => self.cluster_id = Some(id.clone()),
            MetadataRecord::Topic { name, id, replicas, configs } => {
                let topic = TopicImage::new(name.clone(), *id, replicas.clone(), configs.clone());
                if let Some(old) = self.topics.insert(name.clone(), Arc::new(topic)) {
                    self.topic_names.remove(&old.id);
                }
                self.topic_names.insert(*id, name.clone());
            }
            MetadataRecord::Partitions { id, replicas } => self.update(id, |t| {
                t.replicas.extend(replicas.iter().cloned());
                t.partitions.resize(t.replicas.len(), PartitionState::new());
            }),
            MetadataRecord::TopicConfigs { id, configs } => self.update(id, |t| t.configs = configs.clone()),
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.topic_names.remove(id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::ProducerIds { next, .. } => self.next_producer_id = self.next_producer_id.max(*next),
            MetadataRecord::RegisterBroker { id, incarnation, rack, endpoints, raft_addr, controller } => {
                let b = BrokerImage {
                    id: *id,
                    incarnation: incarnation.clone(),
                    rack: rack.clone(),
                    endpoints: endpoints.clone(),
                    raft_addr: raft_addr.clone(),
                    controller: *controller,
                    fenced: false,
                };
                self.brokers.insert(*id, b);
            }
            MetadataRecord::BrokerFenced { id, fenced } => {
                if let Some(b) = self.brokers.get_mut(id) {
                    b.fenced = *fenced;
                }
            }
            MetadataRecord::PartitionLeader { id, partition, leader, epoch, isr } => self.update_partition(id, *partition, |_, s| {
                // A report from an older term arriving late changes nothing.
                if *epoch >= s.leader_epoch {
                    s.leader = *leader;
                    s.leader_epoch = *epoch;
                    s.isr = isr.clone();
                }
            }),
            MetadataRecord::Reassign { id, partition, target } => self.update_partition(id, *partition, |replicas, s| {
                let original: Vec<i32> = replicas.iter().copied().filter(|r| !s.adding.contains(r)).collect();
                if *target == original || target.is_empty() {
                    *replicas = original;
                    s.adding.clear();
                    s.removing.clear();
                } else {
                    s.adding = target.iter().copied().filter(|r| !original.contains(r)).collect();
                    s.removing = original.iter().copied().filter(|r| !target.contains(r)).collect();
                    *replicas = target.iter().copied().chain(s.removing.iter().copied()).collect();
                }
            }),
            MetadataRecord::ReassignDone { id, partition } => self.update_partition(id, *partition, |replicas, s| {
                replicas.retain(|r| !s.removing.contains(r));
                s.isr.retain(|r| replicas.contains(r));
                s.adding.clear();
                s.removing.clear();
            }),
            MetadataRecord::ScramCredential { user, mechanism, salt, stored_key, server_key, iterations } => {
                let credential = ScramCredential {
                    salt: salt.0.clone(),
                    stored_key: stored_key.0.clone(),
                    server_key: server_key.0.clone(),
                    iterations: *iterations,
                };
                self.scram_credentials.entry(user.clone()).or_default().insert(*mechanism, credential);
            }
            MetadataRecord::AclsCreated { acls } => self.acls.extend(acls.iter().cloned()),
            MetadataRecord::AclsDeleted { acls } => {
                for a in acls {
                    self.acls.remove(a);
                }
            }
            MetadataRecord::RemoveScramCredential { user, mechanism } => {
                if let Some(by_mechanism) = self.scram_credentials.get_mut(user) {
                    by_mechanism.remove(mechanism);
                    if by_mechanism.is_empty() {
                        self.scram_credentials.remove(user);
                    }
                }
            }
        }
    }

    fn update_partition(&mut self, id: &TopicId, partition: i32, f: impl FnOnce(&mut Vec<i32>, &mut PartitionState)) {
        self.update(id, |t| {
            let Ok(p) = usize::try_from(partition) else { return };
            if let (Some(replicas), Some(state)) = (t.replicas.get_mut(p), t.partitions.get_mut(p)) {
                f(replicas, state);
            } else {
                tracing::warn!(topic = %t.name, partition, "metadata record for an unknown partition skipped");
            }
        })
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

    #[test]
    fn reassignment_follows_kafkas_replica_order() {
        let mut img = MetadataImage::default();
        let id = TopicId::random();
        img.apply(&MetadataRecord::Topic { name: "a".into(), id, replicas: vec![vec![1, 2, 3]], configs: BTreeMap::new() });
        let t = |img: &MetadataImage| Arc::clone(img.topic("a").unwrap());
        assert_eq!(t(&img).partitions[0].leader, -1);
        img.apply(&MetadataRecord::PartitionLeader { id, partition: 0, leader: 2, epoch: 4, isr: vec![1, 2, 3] });
        img.apply(&MetadataRecord::PartitionLeader { id, partition: 0, leader: 1, epoch: 3, isr: vec![1] });
        assert_eq!((t(&img).partitions[0].leader, t(&img).partitions[0].leader_epoch), (2, 4), "older terms are ignored");
        img.apply(&MetadataRecord::Reassign { id, partition: 0, target: vec![4, 2, 3] });
        let topic = t(&img);
        assert_eq!(topic.replicas[0], vec![4, 2, 3, 1]);
        assert_eq!((topic.partitions[0].adding.clone(), topic.partitions[0].removing.clone()), (vec![4], vec![1]));
        assert_eq!(topic.target(0), vec![4, 2, 3]);
        // A new target replaces the old one; the original replicas stay the base.
        img.apply(&MetadataRecord::Reassign { id, partition: 0, target: vec![5, 2, 3] });
        assert_eq!(t(&img).replicas[0], vec![5, 2, 3, 1]);
        // Cancel: back to the original.
        img.apply(&MetadataRecord::Reassign { id, partition: 0, target: vec![1, 2, 3] });
        assert_eq!(t(&img).replicas[0], vec![1, 2, 3]);
        assert!(!t(&img).partitions[0].reassigning());
        img.apply(&MetadataRecord::Reassign { id, partition: 0, target: vec![4, 2, 3] });
        img.apply(&MetadataRecord::ReassignDone { id, partition: 0 });
        assert_eq!(t(&img).replicas[0], vec![4, 2, 3]);
        assert_eq!(t(&img).partitions[0].isr, vec![2, 3]);
        assert!(!t(&img).partitions[0].reassigning());
    }

    #[test]
    fn scram_credentials_add_replace_and_remove() {
        use crate::metadata::records::ScramBytes;
        let mut img = MetadataImage::default();
        let record = |iterations| MetadataRecord::ScramCredential {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            salt: ScramBytes(vec![1]),
            stored_key: ScramBytes(vec![2]),
            server_key: ScramBytes(vec![3]),
            iterations,
        };
        img.apply(&record(4096));
        img.apply(&record(8192));
        assert_eq!(img.scram_credential("alice", ScramMechanism::Sha512).map(|c| c.iterations), Some(8192));
        assert!(img.scram_credential("alice", ScramMechanism::Sha256).is_none());
        img.apply(&MetadataRecord::RemoveScramCredential { user: "alice".into(), mechanism: ScramMechanism::Sha512 });
        assert!(img.scram_credentials.is_empty(), "a user without credentials leaves the map");
    }
}
