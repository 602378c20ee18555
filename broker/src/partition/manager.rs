//! The partitions this broker hosts, kept in step with the metadata image:
//! a partition assigned to this broker gets its raft group, a deleted topic
//! (or a replica reassigned away) loses its group and directory, a config
//! change reaches the logs.
//!
//! A new partition's group is initialised by each of its replicas with all
//! of them as voters (raft accepts the same initial membership from every
//! member), but only while the metadata has never seen a leader for it: a
//! replica joining later (reassignment) or coming back with an empty disk
//! waits for the leader to bring it in instead.
//!
//! Directories are Kafka's: `<topic>-<partition>` under the first of
//! `log.dirs`, with a `partition.metadata` file holding the topic id (as
//! Kafka writes it), so a directory left by a deleted topic of the same name
//! is never mistaken for the new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fjord_raft::registry::{Group, GroupId, RaftNode};
use openraft::BasicNode;
use tokio::sync::watch;

use super::Partition;
use crate::config::{BrokerConfig, TopicConfig};
use crate::metadata::store::{become_single_voter, initialize_once};
use crate::metadata::{MetadataImage, TopicId, TopicImage};

/// Owned by the [`crate::Broker`]. The reconcile task is the only writer.
pub struct PartitionManager {
    node: Arc<RaftNode>,
    config: Arc<BrokerConfig>,
    data_dir: PathBuf,
    partitions: RwLock<HashMap<(String, i32), Arc<Partition>>>,
    /// Bumped after each reconcile pass, for requests that wait for one.
    generation: watch::Sender<u64>,
    reconcile_lock: tokio::sync::Mutex<()>,
    /// Raft addresses last taken from registrations: only a change is passed
    /// on, so an older registration never overrides a fresher dial-back.
    addresses: std::sync::Mutex<HashMap<i32, String>>,
    /// Tiered storage's object store: a deleted topic's uploads go with it.
    remote: Option<Arc<fjord_tiered::RemoteStore>>,
}

const PARTITION_METADATA: &str = "partition.metadata";

impl PartitionManager {
    pub fn new(
        node: Arc<RaftNode>,
        config: Arc<BrokerConfig>,
        data_dir: PathBuf,
        remote: Option<Arc<fjord_tiered::RemoteStore>>,
    ) -> Arc<Self> {
        remove_deleted_dirs(&data_dir);
        Arc::new(Self {
            node,
            config,
            data_dir,
            partitions: RwLock::new(HashMap::new()),
            generation: watch::channel(0).0,
            reconcile_lock: tokio::sync::Mutex::new(()),
            addresses: std::sync::Mutex::default(),
            remote,
        })
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions.read().expect("partitions lock").get(&(topic.to_string(), partition)).cloned()
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().expect("partitions lock").values().cloned().collect()
    }

    /// Waits until the metadata names a leader for every partition of
    /// `topic` (leaders report themselves through their heartbeats), or
    /// `timeout` passes; returns whether it does.
    pub async fn wait_ready(images: &mut watch::Receiver<std::sync::Arc<MetadataImage>>, topic: &str, timeout: Duration) -> bool {
        let ready = |image: &std::sync::Arc<MetadataImage>| image.topic(topic).is_some_and(|t| t.partitions.iter().all(|s| s.leader >= 0));
        tokio::time::timeout(timeout, images.wait_for(ready)).await.is_ok_and(|r| r.is_ok())
    }

    /// Follows the metadata image for as long as the broker runs.
    pub async fn run(self: Arc<Self>, mut images: watch::Receiver<Arc<MetadataImage>>) {
        loop {
            let image = Arc::clone(&images.borrow_and_update());
            self.reconcile(&image).await;
            if images.changed().await.is_err() {
                return;
            }
        }
    }

    /// Brings the hosted partitions in line with `image`.
    pub async fn reconcile(&self, image: &MetadataImage) {
        let _one_at_a_time = self.reconcile_lock.lock().await;
        let me = self.config.node_id;
        {
            let mut known = self.addresses.lock().expect("addresses lock");
            for b in image.brokers.values() {
                if known.get(&b.id) != Some(&b.raft_addr) {
                    known.insert(b.id, b.raft_addr.clone());
                    self.node.set_peer_address(b.id as u64, &b.raft_addr);
                }
            }
        }
        // Gone: topics deleted, re-created with a new id, or this replica reassigned away.
        let stale: Vec<Arc<Partition>> = self
            .all()
            .into_iter()
            .filter(|p| {
                image
                    .topic(&p.topic)
                    .is_none_or(|t| t.id != p.topic_id || t.replicas.get(p.index as usize).is_none_or(|r| !r.contains(&me)))
            })
            .collect();
        for p in stale {
            self.remove(&p).await;
            // Kafka deletes a deleted topic's remote data too; every replica
            // tries (deleting is idempotent), a reassigned replica does not.
            let deleted = image.topic(&p.topic).is_none_or(|t| t.id != p.topic_id);
            if let Some(store) = self.remote.as_ref().filter(|_| deleted) {
                tokio::spawn(super::tiering::delete_partition(Arc::clone(store), p.topic_id.0, p.index));
            }
        }
        for topic in image.topics.values() {
            let config = TopicConfig::resolve(&self.config, &topic.configs);
            for (index, replicas) in topic.replicas.iter().enumerate() {
                let index = index as i32;
                if !replicas.contains(&me) {
                    continue;
                }
                match self.get(&topic.name, index) {
                    Some(p) => {
                        if *p.config() != config {
                            p.set_config(config.clone());
                        }
                        if p.leader_id().is_none()
                            && let Err(e) = self.initialize(image, topic, index, p.group()).await
                        {
                            tracing::warn!(topic = %topic.name, partition = index, "cannot start the partition's raft group: {e}");
                        }
                    }
                    None => {
                        if let Err(e) = self.open(image, topic, index, config.clone()).await {
                            tracing::error!(topic = %topic.name, partition = index, "cannot open partition: {e}");
                        }
                    }
                }
            }
        }
        self.generation.send_modify(|g| *g += 1);
    }

    async fn open(&self, image: &MetadataImage, t: &TopicImage, index: i32, config: TopicConfig) -> Result<(), String> {
        let (topic, id) = (t.name.as_str(), t.id);
        let dir_name = format!("{topic}-{index}");
        let dir = self.data_dir.join(&dir_name);
        claim_dir(&dir, id).map_err(|e| format!("{}: {e}", dir.display()))?;
        let group =
            self.node.create_group_in(GroupId::new(id.0, index), &dir_name, config.log_config()).await.map_err(|e| e.to_string())?;
        self.initialize(image, t, index, &group).await?;
        let p = Arc::new(Partition::new(topic.to_string(), id, index, self.node.id(), group, config));
        self.partitions.write().expect("partitions lock").insert((topic.to_string(), index), p);
        tracing::info!(topic, partition = index, topic_id = %id, "partition online");
        Ok(())
    }

    /// Starts a new partition's group with its replicas as voters (see the
    /// module doc); a single-voter group is elected at once.
    async fn initialize(&self, image: &MetadataImage, t: &TopicImage, index: i32, group: &Group) -> Result<(), String> {
        let me = self.node.id();
        let target = t.target(index);
        if target == [me as i32] {
            return become_single_voter(&self.node, group).await.map_err(|e| e.to_string());
        }
        let state = t.state(index).ok_or("no such partition")?;
        if state.leader_epoch >= 0 || state.adding.contains(&(me as i32)) {
            return Ok(());
        }
        let Some(members) = target
            .iter()
            .map(|b| image.brokers.get(b).map(|r| (*b as u64, BasicNode::new(&r.raft_addr))))
            .collect::<Option<std::collections::BTreeMap<u64, BasicNode>>>()
        else {
            return Err(format!("replicas {target:?} are not all registered yet"));
        };
        initialize_once(group, members).await.map_err(|e| e.to_string())?;
        // The preferred replica stands at once, so a new partition starts
        // with its preferred leader (as Kafka's does) instead of whoever's
        // election timeout fires first.
        if target.first() == Some(&(me as i32)) {
            let _ = group.raft().trigger().elect(false).await;
        }
        Ok(())
    }

    /// Stops the partition's group and deletes its directory the way Kafka
    /// does: renamed aside at once, removed in the background.
    async fn remove(&self, p: &Partition) {
        self.partitions.write().expect("partitions lock").remove(&(p.topic.clone(), p.index));
        self.node.remove_group(p.group().id()).await;
        let dir = p.group().dir().to_path_buf();
        let hex: String = p.topic_id.0.iter().map(|b| format!("{b:02x}")).collect();
        let aside = dir.with_file_name(format!("{}-{}.{hex}-delete", p.topic, p.index));
        match std::fs::rename(&dir, &aside) {
            Ok(()) => {
                tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&aside));
            }
            Err(e) => tracing::warn!(dir = %dir.display(), "could not move a deleted partition aside: {e}"),
        }
        tracing::info!(topic = %p.topic, partition = p.index, "partition deleted");
    }
}

/// Makes `dir` belong to topic `id`: a directory of another topic of the same
/// name (deleted while this broker was down) is moved aside first.
fn claim_dir(dir: &Path, id: TopicId) -> std::io::Result<()> {
    let meta = dir.join(PARTITION_METADATA);
    let line = format!("version: 0\ntopic_id: {}\n", id.to_base64());
    match std::fs::read_to_string(&meta) {
        Ok(found) if found == line => return Ok(()),
        Ok(_) => {
            let aside = dir.with_file_name(format!(
                "{}.stale-{}-delete",
                dir.file_name().unwrap_or_default().to_string_lossy(),
                rand::random::<u32>()
            ));
            tracing::warn!(dir = %dir.display(), "directory belongs to an older topic of the same name; deleting it");
            std::fs::rename(dir, &aside)?;
            let _ = std::fs::remove_dir_all(&aside);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&meta, line)?;
    Ok(())
}

/// Finishes deletions a crash interrupted.
fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with("-delete") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
