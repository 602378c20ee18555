//! The metadata group and its image. One task tails the group's committed
//! log and publishes a new [`MetadataImage`] after each batch of records;
//! the controller's writes (topic admin, producer-id blocks) go through
//! [`MetadataStore::controller`], which serialises them so a check against
//! the image and the write that follows it see the same state.
//!
//! Today the group has one voter, this broker (a single node is a cluster
//! of one); `controller.quorum.voters` makes it a real quorum in issue 7.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_raft::registry::{Group, GroupId, NodeError, RaftNode};
use fjord_raft::{KafkaBatch, TypeConfig};
use fjord_storage::LogConfig;
use openraft::async_runtime::watch::WatchReceiver;
use tokio::sync::{Mutex, MutexGuard, watch};

use super::image::MetadataImage;
use super::records::MetadataRecord;
use crate::protocol::records::{batches, build_batch};

/// Why a metadata write or the metadata group failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata group: {0}")]
    Node(#[from] NodeError),
    #[error("this broker is not the active controller")]
    NotController,
    #[error("metadata write: {0}")]
    Write(String),
    #[error("metadata log: {0}")]
    Read(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// Owned by the [`crate::Broker`] for its lifetime; shared by handlers.
pub struct MetadataStore {
    group: Arc<Group>,
    image: watch::Receiver<Arc<MetadataImage>>,
    controller: Mutex<()>,
}

/// Records in the metadata log are small; one read takes this many bytes.
const READ_BYTES: usize = 1 << 20;

impl MetadataStore {
    /// Opens (or recovers) `__cluster_metadata-0`, makes this node its only
    /// voter on first start, replays the log into an image and keeps
    /// tailing it.
    pub async fn open(node: &RaftNode) -> Result<Arc<Self>, MetadataError> {
        let config = LogConfig { retention_ms: None, segment_bytes: 64 << 20, preallocate_step_bytes: 1 << 20, ..LogConfig::default() };
        let group = node.create_group(GroupId::METADATA, config).await?;
        become_single_voter(node, &group).await?;
        let (tx, image) = watch::channel(Arc::new(MetadataImage::default()));
        let store = Arc::new(Self { group: Arc::clone(&group), image, controller: Mutex::new(()) });
        tokio::spawn(tail(group, tx));
        Ok(store)
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.borrow())
    }

    /// Wakes on every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// Waits until the image has caught up with the committed log, e.g. at
    /// startup before serving requests.
    pub async fn caught_up(&self, timeout: Duration) -> Result<Arc<MetadataImage>, MetadataError> {
        let hw = *self.group.high_watermark().borrow();
        let mut rx = self.image.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|i| i.next_offset >= hw)).await;
        match waited {
            Ok(Ok(img)) => Ok(Arc::clone(&img)),
            Ok(Err(_)) => Err(MetadataError::Read("metadata tail stopped".into())),
            Err(_) => Err(MetadataError::Timeout("the metadata image to catch up")),
        }
    }

    /// The controller: one writer at a time.
    pub async fn controller(&self) -> Controller<'_> {
        Controller { store: self, _guard: self.controller.lock().await }
    }
}

/// Exclusive access to metadata writes; see the module doc.
pub struct Controller<'a> {
    store: &'a MetadataStore,
    _guard: MutexGuard<'a, ()>,
}

impl Controller<'_> {
    /// The image every check of this write is made against.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.store.image()
    }

    /// Commits `records` as one batch and returns the image that includes them.
    pub async fn propose(&self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>, MetadataError> {
        assert!(!records.is_empty(), "an empty proposal");
        let values: Vec<Vec<u8>> = records.iter().map(MetadataRecord::encode).collect();
        let bytes = Bytes::from(build_batch(&values, now_ms()));
        let batch = KafkaBatch::new(bytes).map_err(|e| MetadataError::Write(e.to_string()))?;
        let applied = match self.store.group.raft().client_write(batch).await {
            Ok(r) => *r.response(),
            Err(e) if e.forward_to_leader().is_some() => return Err(MetadataError::NotController),
            Err(e) => return Err(MetadataError::Write(e.to_string())),
        };
        let mut rx = self.store.image.clone();
        let img = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|i| i.next_offset >= applied.next_offset))
            .await
            .map_err(|_| MetadataError::Timeout("the metadata image to apply a write"))?
            .map_err(|_| MetadataError::Read("metadata tail stopped".into()))?;
        Ok(Arc::clone(&img))
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
