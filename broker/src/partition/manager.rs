//! The partitions this broker hosts, kept in step with the metadata image:
//! a partition assigned to this broker gets its raft group, a deleted topic
//! loses its groups and directories, a config change reaches the logs.
//!
//! Directories are Kafka's: `<topic>-<partition>` under the first of
//! `log.dirs`, with a `partition.metadata` file holding the topic id (as
//! Kafka writes it), so a directory left by a deleted topic of the same name
//! is never mistaken for the new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fjord_raft::registry::{GroupId, RaftNode};
use tokio::sync::watch;

use super::Partition;
use crate::config::{BrokerConfig, TopicConfig};
use crate::metadata::store::become_single_voter;
use crate::metadata::{MetadataImage, TopicId};

/// Owned by the [`crate::Broker`]. The reconcile task is the only writer.
pub struct PartitionManager {
    node: Arc<RaftNode>,
    config: Arc<BrokerConfig>,
    data_dir: PathBuf,
    partitions: RwLock<HashMap<(String, i32), Arc<Partition>>>,
    /// Bumped after each reconcile pass, for requests that wait for one.
    generation: watch::Sender<u64>,
    reconcile_lock: tokio::sync::Mutex<()>,
}

const PARTITION_METADATA: &str = "partition.metadata";

impl PartitionManager {
    pub fn new(node: Arc<RaftNode>, config: Arc<BrokerConfig>, data_dir: PathBuf) -> Arc<Self> {
        remove_deleted_dirs(&data_dir);
        Arc::new(Self {
            node,
            config,
            data_dir,
            partitions: RwLock::new(HashMap::new()),
            generation: watch::channel(0).0,
            reconcile_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions.read().expect("partitions lock").get(&(topic.to_string(), partition)).cloned()
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().expect("partitions lock").values().cloned().collect()
    }

    /// Waits until every partition of `topic` in `image` is hosted here with a
    /// leader, or `timeout` passes; returns whether they are.
    pub async fn wait_ready(&self, image: &MetadataImage, topic: &str, timeout: Duration) -> bool {
        let mut gen_rx = self.generation.subscribe();
        let ready = || {
            image.topic(topic).is_some_and(|t| {
                (0..t.partition_count()).all(|p| self.get(topic, p).is_some_and(|p| p.topic_id == t.id && p.leader_id().is_some()))
            })
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, gen_rx.changed()).await.is_err() {
                return ready();
            }
        }
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
        // Gone: topics deleted, or re-created with a new id.
        let stale: Vec<Arc<Partition>> = self
            .all()
            .into_iter()
            .filter(|p| image.topic(&p.topic).is_none_or(|t| t.id != p.topic_id || p.index >= t.partition_count()))
            .collect();
        for p in stale {
            self.remove(&p).await;
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
                    }
                    None => {
                        if let Err(e) = self.open(&topic.name, topic.id, index, config.clone()).await {
                            tracing::error!(topic = %topic.name, partition = index, "cannot open partition: {e}");
                        }
                    }
                }
            }
        }
        self.generation.send_modify(|g| *g += 1);
    }

    async fn open(&self, topic: &str, id: TopicId, index: i32, config: TopicConfig) -> Result<(), String> {
        let dir_name = format!("{topic}-{index}");
        let dir = self.data_dir.join(&dir_name);
        claim_dir(&dir, id).map_err(|e| format!("{}: {e}", dir.display()))?;
        let group =
            self.node.create_group_in(GroupId::new(id.0, index), &dir_name, config.log_config()).await.map_err(|e| e.to_string())?;
        become_single_voter(&self.node, &group).await.map_err(|e| e.to_string())?;
        let p = Arc::new(Partition::new(topic.to_string(), id, index, self.node.id(), group, config));
        self.partitions.write().expect("partitions lock").insert((topic.to_string(), index), p);
        tracing::info!(topic, partition = index, topic_id = %id, "partition online");
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
