//! The metadata group and its image. One task tails the group's committed
//! log and publishes a new [`MetadataImage`] after each batch of records.
//!
//! Writes are compare-and-set on the log ([`MetadataStore::write`]): a writer
//! plans its records against an image, and the active controller (the
//! group's raft leader) commits them only if its image is still that one
//! (same next offset), else answers `Conflict` and the writer plans again on
//! a newer image. So any broker can run Kafka's controller checks (topic
//! exists, placement, producer-id blocks) on its own image, and two brokers
//! racing to create one topic cannot both succeed. A writer that is not the
//! controller forwards its proposal over the raft transport
//! (`cluster::control`).
//!
//! The group's voters are `controller.quorum.voters` (each voter initialises
//! the group with all of them on its first start, which raft allows when all
//! agree), or, with none configured, this node alone. Brokers that are not
//! voters follow the log as raft learners, added by the controller when
//! they register.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_raft::registry::{Group, GroupId, NodeError, RaftNode};
use fjord_raft::{KafkaBatch, TypeConfig};
use fjord_storage::LogConfig;
use openraft::BasicNode;
use openraft::async_runtime::watch::WatchReceiver;
use tokio::sync::{Mutex, watch};

use super::image::MetadataImage;
use super::records::MetadataRecord;
use crate::config::QuorumVoter;
use crate::protocol::records::{batches, build_batch};

/// Why a metadata write or the metadata group failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata group: {0}")]
    Node(#[from] NodeError),
    #[error("this broker is not the active controller")]
    NotController,
    /// The image the write was planned on is no longer the latest.
    #[error("the metadata changed while the write was planned")]
    Conflict,
    #[error("no controller is available: {0}")]
    NoController(String),
    #[error("metadata write: {0}")]
    Write(String),
    #[error("metadata log: {0}")]
    Read(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// Sends a proposal to the active controller when this node is not it;
/// installed by the cluster layer, which owns the transport's control RPCs.
pub trait Forward: Send + Sync {
    fn propose(&self, based_on: i64, records: Vec<MetadataRecord>) -> futures_util::future::BoxFuture<'static, Result<i64, MetadataError>>;
}

/// Owned by the [`crate::Broker`] for its lifetime; shared by handlers.
pub struct MetadataStore {
    group: Arc<Group>,
    node_id: u64,
    image: watch::Receiver<Arc<MetadataImage>>,
    /// Serialises this node's own writes (fewer conflicts) and, on the
    /// controller, the check-and-commit step of every write.
    local_writes: Mutex<()>,
    commit: Mutex<()>,
    forward: std::sync::RwLock<Option<Arc<dyn Forward>>>,
}

/// Records in the metadata log are small; one read takes this many bytes.
const READ_BYTES: usize = 1 << 20;
/// How many times a write is planned again after conflicts before it fails.
const MAX_CONFLICTS: usize = 50;

impl MetadataStore {
    /// Opens (or recovers) `__cluster_metadata-0` and keeps tailing it into
    /// the image. With `voters`, a voter initialises the group on its first
    /// start; a non-voter waits to be added as a learner. Without voters this
    /// node is the group's only voter and is elected at once.
    pub async fn open(node: &RaftNode, voters: &[QuorumVoter]) -> Result<Arc<Self>, MetadataError> {
        let config = LogConfig { retention_ms: None, segment_bytes: 64 << 20, preallocate_step_bytes: 1 << 20, ..LogConfig::default() };
        let group = node.create_group(GroupId::METADATA, config).await?;
        if voters.is_empty() {
            become_single_voter(node, &group).await?;
        } else if voters.iter().any(|v| v.id as u64 == node.id()) {
            let members: BTreeMap<u64, BasicNode> = voters.iter().map(|v| (v.id as u64, BasicNode::new(v.host_port()))).collect();
            initialize_once(&group, members).await?;
        }
        let (tx, image) = watch::channel(Arc::new(MetadataImage::default()));
        let store = Arc::new(Self {
            group: Arc::clone(&group),
            node_id: node.id(),
            image,
            local_writes: Mutex::new(()),
            commit: Mutex::new(()),
            forward: std::sync::RwLock::new(None),
        });
        tokio::spawn(tail(group, tx));
        Ok(store)
    }

    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// Installs the way proposals reach the controller from other nodes.
    pub fn set_forward(&self, forward: Arc<dyn Forward>) {
        *self.forward.write().expect("forward lock") = Some(forward);
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.borrow())
    }

    /// Wakes on every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// Whether this node is the active controller (the metadata group's leader).
    pub fn is_controller(&self) -> bool {
        self.group.raft().metrics().borrow_watched().current_leader == Some(self.node_id)
    }

    /// The active controller's node id and where its raft transport listens, if known.
    pub fn controller_node(&self) -> Option<(u64, String)> {
        let m = self.group.raft().metrics().borrow_watched().clone();
        let leader = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&leader).map(|n| n.addr.clone())?;
        Some((leader, addr))
    }

    /// Waits until the image has caught up with the committed log, e.g. at
    /// startup before serving requests.
    pub async fn caught_up(&self, timeout: Duration) -> Result<Arc<MetadataImage>, MetadataError> {
        let hw = *self.group.high_watermark().borrow();
        self.wait_for_offset(hw, timeout).await
    }

    /// Waits until the image includes the log up to `offset`.
    pub async fn wait_for_offset(&self, offset: i64, timeout: Duration) -> Result<Arc<MetadataImage>, MetadataError> {
        let mut rx = self.image.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|i| i.next_offset >= offset)).await;
        match waited {
            Ok(Ok(img)) => Ok(Arc::clone(&img)),
            Ok(Err(_)) => Err(MetadataError::Read("metadata tail stopped".into())),
            Err(_) => Err(MetadataError::Timeout("the metadata image to catch up")),
        }
    }

    /// Plans records on the latest image with `plan` and commits them,
    /// planning again on a newer image after a conflict. `plan` returning no
    /// records ends the write without a proposal. Returns the image that
    /// includes the write (or the one planned on) and what `plan` returned.
    pub async fn write<T, E: From<MetadataError>>(
        &self,
        mut plan: impl FnMut(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), E>,
    ) -> Result<(Arc<MetadataImage>, T), E> {
        let _one_at_a_time = self.local_writes.lock().await;
        for _ in 0..MAX_CONFLICTS {
            let image = self.image();
            let (records, out) = plan(&image)?;
            if records.is_empty() {
                return Ok((image, out));
            }
            match self.propose_at(image.next_offset, records).await {
                Ok(img) => return Ok((img, out)),
                Err(MetadataError::Conflict) => {
                    // Let the newer records arrive here before planning again.
                    let _ = self.wait_for_offset(image.next_offset + 1, Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(MetadataError::Write("the metadata kept changing; gave up".into()).into())
    }

    /// Commits `records` if the log's next offset is still `based_on`, here
    /// or on the active controller; returns the local image that includes them.
    pub async fn propose_at(&self, based_on: i64, records: Vec<MetadataRecord>) -> Result<Arc<MetadataImage>, MetadataError> {
        let next = match self.commit_if(based_on, &records).await {
            Err(MetadataError::NotController) => {
                let forward = self.forward.read().expect("forward lock").clone();
                let Some(forward) = forward else { return Err(MetadataError::NotController) };
                forward.propose(based_on, records).await?
            }
            other => other?,
        };
        self.wait_for_offset(next, Duration::from_secs(30)).await
    }

    /// The controller's side of [`MetadataStore::propose_at`]: returns the
    /// offset after the committed records.
    pub async fn commit_if(&self, based_on: i64, records: &[MetadataRecord]) -> Result<i64, MetadataError> {
        assert!(!records.is_empty(), "an empty proposal");
        if !self.is_controller() {
            return Err(MetadataError::NotController);
        }
        let _commit = self.commit.lock().await;
        // Everything committed before now (earlier terms included) must be in
        // the image the proposal is compared with.
        let raft = self.group.raft();
        match raft.ensure_linearizable(openraft::raft::ReadPolicy::ReadIndex).await {
            Ok(_) => {}
            Err(e) if e.forward_to_leader().is_some() => return Err(MetadataError::NotController),
            Err(e) => return Err(MetadataError::Write(e.to_string())),
        }
        let applied = self.caught_up(Duration::from_secs(30)).await?;
        if applied.next_offset != based_on {
            return Err(MetadataError::Conflict);
        }
        let values: Vec<Vec<u8>> = records.iter().map(MetadataRecord::encode).collect();
        let bytes = Bytes::from(build_batch(&values, now_ms()));
        let batch = KafkaBatch::new(bytes).map_err(|e| MetadataError::Write(e.to_string()))?;
        let applied = match raft.client_write(batch).await {
            Ok(r) => *r.response(),
            Err(e) if e.forward_to_leader().is_some() => return Err(MetadataError::NotController),
            Err(e) => return Err(MetadataError::Write(e.to_string())),
        };
        self.wait_for_offset(applied.next_offset, Duration::from_secs(30)).await?;
        Ok(applied.next_offset)
    }
}

/// Initialises a group with `members` unless it already is. Every member may
/// do this with the same members; raft accepts that (the entries agree).
pub(crate) async fn initialize_once(group: &Group, members: BTreeMap<u64, BasicNode>) -> Result<(), MetadataError> {
    let raft = group.raft();
    let fail = |e: String| MetadataError::Write(format!("group {}: {e}", group.id()));
    if raft.is_initialized().await.map_err(|e| fail(e.to_string()))? {
        return Ok(());
    }
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        // Someone's entries arrived first: the group is initialised.
        Err(openraft::error::RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(fail(e.to_string())),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A group whose only voter is this node: initialised on first start, and
/// elected at once rather than after an election timeout on restart.
pub(crate) async fn become_single_voter(node: &RaftNode, group: &Group) -> Result<(), MetadataError> {
    let raft = group.raft();
    let fail = |e: String| MetadataError::Write(format!("group {}: {e}", group.id()));
    if !raft.is_initialized().await.map_err(|e| fail(e.to_string()))? {
        let members = BTreeMap::from([(node.id(), node.node())]);
        raft.initialize(members).await.map_err(|e| fail(e.to_string()))?;
    } else {
        let m = raft.metrics().borrow_watched().clone();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        if voters == [node.id()] && m.current_leader != Some(node.id()) {
            raft.trigger().elect(false).await.map_err(|e| fail(e.to_string()))?;
        }
    }
    raft.wait(Some(Duration::from_secs(30)))
        .metrics(|m: &openraft::RaftMetrics<TypeConfig>| m.current_leader.is_some(), "a leader")
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Applies committed metadata batches to the image as the high watermark
/// moves. Runs until the group's high watermark channel closes.
async fn tail(group: Arc<Group>, tx: watch::Sender<Arc<MetadataImage>>) {
    let mut hw = group.high_watermark();
    let mut image = MetadataImage::default();
    loop {
        let upto = *hw.borrow_and_update();
        while image.next_offset < upto {
            match read_records(&group, image.next_offset, upto) {
                Ok((records, next)) => {
                    for r in &records {
                        image.apply(r);
                    }
                    image.next_offset = next;
                }
                Err(e) => {
                    // Nothing after a record we cannot read can be applied in order.
                    tracing::error!("metadata log unreadable at offset {}: {e}", image.next_offset);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        tx.send_replace(Arc::new(image.clone()));
        if hw.changed().await.is_err() {
            return;
        }
    }
}

/// Decodes the records in `[from, upto)`; returns them and the next offset.
fn read_records(group: &Group, from: i64, upto: i64) -> Result<(Vec<MetadataRecord>, i64), MetadataError> {
    let read = group.with_log(|log| log.read(from, READ_BYTES, upto)).map_err(|e| MetadataError::Read(e.to_string()))?;
    let mut out = Vec::new();
    let mut next = from;
    for slice in &read.slices {
        for (header, batch) in batches(slice) {
            if header.last_offset() < from {
                continue;
            }
            let mut failed = None;
            fjord_storage::records::for_each_record(batch, 16 << 20, |r| {
                match r.value.map(MetadataRecord::decode) {
                    Some(Ok(rec)) => out.push(rec),
                    Some(Err(e)) => failed = Some(e.to_string()),
                    None => failed = Some("record without a value".into()),
                }
                ControlFlow::Continue(())
            })
            .map_err(|e| MetadataError::Read(e.to_string()))?;
            if let Some(e) = failed {
                return Err(MetadataError::Read(format!("batch at offset {}: {e}", header.base_offset)));
            }
            next = header.last_offset() + 1;
        }
    }
    if next == from && read.next_offset > from {
        next = read.next_offset;
    }
    Ok((out, next))
}
