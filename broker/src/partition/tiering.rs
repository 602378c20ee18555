//! KIP-405's remote log manager: what a partition leader does every
//! `remote.log.manager.task.interval.ms` for a topic with
//! `remote.storage.enable=true`.
//!
//! 1. Once per term, after it has applied the log it inherited: deletes
//!    uploads the log does not record (a predecessor's upload whose record
//!    never committed, or a half-finished one). Nothing reads them, and no
//!    later record can name them: an earlier leader can no longer commit.
//! 2. Finishes deletions retention started (objects of `DeleteStarted`
//!    uploads, then `DeleteFinished`).
//! 3. Uploads each rolled segment below the high watermark that starts at
//!    or before the end of what is uploaded, oldest first: the files, then
//!    the manifest (`fjord-tiered`), then a `Copied` record in the
//!    partition's raft log. Once that commits every replica may delete its
//!    local copy when local retention allows (`maintenance.rs` bounds local
//!    retention by the upload end).
//! 4. Total retention (`retention.ms`, `retention.bytes` over remote plus
//!    local-only data) on the remote segments: a `DeleteStarted` record
//!    moves the log start, then the objects go.
//!
//! Every broker also checks local retention of the tiered partitions it
//! hosts at this pace, leader or not.
//!
//! A failure stops the partition's pass and is logged; the next pass starts
//! over from what the log records, so an upload is retried with a new
//! upload id and nothing is recorded twice. Local data is never deleted
//! before its upload is recorded, so an unreachable store only costs disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fjord_raft::KafkaBatch;
use fjord_raft::tiered::{RemoteFileMeta, RemoteSegmentMeta, SegmentRef, TieredOp};
use fjord_storage::StorageError;
use fjord_tiered::{FileKind, RemoteFile, RemoteSegment, RemoteStore, SegmentId, UploadId};
use futures_util::StreamExt;

use super::Partition;
use crate::Broker;
use crate::metadata::store::now_ms;

/// Partitions tiered at once, as Kafka's `remote.log.manager.copier.thread.pool.size` would.
const CONCURRENT_PARTITIONS: usize = 4;
/// How long a pass waits for a new leader to apply its inherited log.
const LEAD_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TieringError {
    #[error("upload of segment {base_offset} failed: {source}")]
    Upload { base_offset: i64, source: fjord_tiered::Error },
    #[error("deleting remote segment {base_offset} failed: {source}")]
    Delete { base_offset: i64, source: fjord_tiered::Error },
    #[error("listing remote segments failed: {0}")]
    List(fjord_tiered::Error),
    #[error("recording {what} in the partition log failed: {detail}")]
    Record { what: &'static str, detail: String },
    #[error("local log: {0}")]
    Storage(#[from] StorageError),
}

/// Runs the remote log manager for as long as the broker runs.
pub async fn run(broker: Arc<Broker>, store: Arc<RemoteStore>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The term in which each partition's orphans were last cleaned up.
    let cleaned: std::sync::Mutex<HashMap<(String, i32), i32>> = Default::default();
    loop {
        tick.tick().await;
        let leading: Vec<Arc<Partition>> =
            broker.partitions.all().into_iter().filter(|p| p.config().remote_storage_enable && p.is_leader()).collect();
        futures_util::stream::iter(leading)
            .for_each_concurrent(CONCURRENT_PARTITIONS, |p| {
                let (store, cleaned) = (&store, &cleaned);
                async move {
                    if let Err(e) = pass(&p, store, cleaned).await {
                        tracing::warn!(topic = %p.topic, partition = p.index, "tiered storage: {e}");
                    }
                }
            })
            .await;
        // Local copies of what was just uploaded need not wait for the next
        // `log.retention.check.interval.ms` (five minutes by default): every
        // replica of a tiered topic checks local retention at this pace too.
        for p in broker.partitions.all().into_iter().filter(|p| p.config().remote_storage_enable) {
            crate::maintenance::apply_retention(&p).await;
        }
    }
}

async fn pass(p: &Partition, store: &RemoteStore, cleaned: &std::sync::Mutex<HashMap<(String, i32), i32>>) -> Result<(), TieringError> {
    // The tiered state must include everything earlier leaders recorded.
    if !p.ready_to_lead(LEAD_WAIT).await {
        return Ok(());
    }
    let term = p.leader_epoch();
    let key = (p.topic.clone(), p.index);
    if cleaned.lock().expect("cleaned lock").get(&key) != Some(&term) {
        delete_orphans(p, store).await?;
        cleaned.lock().expect("cleaned lock").insert(key, term);
    }
    finish_deletions(p, store).await?;
    if !p.config().remote_log_copy_disable {
        upload_rolled(p, store).await?;
    }
    apply_total_retention(p, store).await
}

/// The object store's view of a recorded upload.
pub fn remote_segment(p: &Partition, s: &RemoteSegmentMeta) -> RemoteSegment {
    let files =
        s.files.iter().filter_map(|f| FileKind::from_extension(&f.ext).map(|kind| RemoteFile { kind, size_bytes: f.bytes })).collect();
    RemoteSegment { id: segment_id(p, s.key()), files }
}

fn segment_id(p: &Partition, s: SegmentRef) -> SegmentId {
    SegmentId { topic_id: p.topic_id.0, partition: p.index, base_offset: s.base_offset, upload_id: UploadId(s.upload_id) }
}

/// Proposes `op` and waits until it is applied here.
async fn record(p: &Partition, what: &'static str, op: TieredOp) -> Result<(), TieringError> {
    let fail = |detail: String| TieringError::Record { what, detail };
    let written = tokio::time::timeout(LEAD_WAIT * 6, p.group().raft().client_write(KafkaBatch::tiered(&op))).await;
    match written {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail("no answer in 30 s".into())),
    }
}

async fn delete_orphans(p: &Partition, store: &RemoteStore) -> Result<(), TieringError> {
    let found = store.list_all(&p.topic_id.0, p.index).await.map_err(TieringError::List)?;
    let known: Vec<SegmentRef> = {
        let t = p.group().tiered().read().expect("tiered state lock");
        t.segments().iter().chain(t.deleting()).map(RemoteSegmentMeta::key).collect()
    };
    for id in found {
        let r = SegmentRef { base_offset: id.base_offset, upload_id: id.upload_id.0 };
        if known.contains(&r) {
            continue;
        }
        store.delete_segment(&id).await.map_err(|source| TieringError::Delete { base_offset: id.base_offset, source })?;
        tracing::info!(topic = %p.topic, partition = p.index, base_offset = id.base_offset, upload = %id.upload_id, "tiered storage: deleted an unrecorded upload");
    }
    Ok(())
}

async fn finish_deletions(p: &Partition, store: &RemoteStore) -> Result<(), TieringError> {
    let deleting: Vec<SegmentRef> = p.group().tiered().read().expect("tiered state lock").deleting().iter().map(|s| s.key()).collect();
    if deleting.is_empty() {
        return Ok(());
    }
    for s in &deleting {
        store.delete_segment(&segment_id(p, *s)).await.map_err(|source| TieringError::Delete { base_offset: s.base_offset, source })?;
    }
    record(p, "a finished deletion", TieredOp::DeleteFinished { segments: deleting }).await
}

async fn upload_rolled(p: &Partition, store: &RemoteStore) -> Result<(), TieringError> {
    while p.is_leader() {
        let from = p.group().tiered().read().expect("tiered state lock").upload_end().unwrap_or(i64::MIN);
        let hw = p.high_watermark();
        let Some(seg) = p.group().with_log(|l| l.sealed_segment_from(from, hw))? else { return Ok(()) };
        let id = SegmentId::new_upload(p.topic_id.0, p.index, seg.base_offset);
        let files = [(FileKind::Log, &seg.log), (FileKind::OffsetIndex, &seg.index), (FileKind::TimeIndex, &seg.time_index)];
        let uploaded =
            store.upload_segment(&id, &files).await.map_err(|source| TieringError::Upload { base_offset: seg.base_offset, source })?;
        let meta = RemoteSegmentMeta {
            base_offset: seg.base_offset,
            next_offset: seg.next_offset,
            upload_id: id.upload_id.0,
            files: uploaded.files.iter().map(|f| RemoteFileMeta { ext: f.kind.extension().into(), bytes: f.size_bytes }).collect(),
            max_timestamp: seg.max_timestamp,
            term: p.leader_epoch().max(0) as u64,
        };
        // If this fails the upload is an orphan: the next leader's (or this
        // one's next term's) cleanup deletes it. Deleting it now could
        // remove objects a record that did commit names.
        record(p, "an upload", TieredOp::Copied(meta)).await?;
        tracing::info!(topic = %p.topic, partition = p.index, base_offset = seg.base_offset, next_offset = seg.next_offset, bytes = seg.bytes, "tiered storage: segment uploaded");
    }
    Ok(())
}

/// The oldest remote segments `retention.ms` and `retention.bytes` delete.
/// `upload_end`: the tiered state's, where local-only data begins.
fn expired(p: &Partition, segments: &[RemoteSegmentMeta], upload_end: i64, now_ms: i64) -> usize {
    let config = p.config();
    let mut n = 0;
    if config.retention_ms >= 0 {
        // Kafka's RLM compares the segment's largest timestamp, as local retention does.
        while n < segments.len() && segments[n].max_timestamp < now_ms - config.retention_ms {
            n += 1;
        }
    }
    if config.retention_bytes >= 0 {
        let local_only = p.group().with_log(|l| l.bytes_from(upload_end));
        let mut total = (segments.iter().map(RemoteSegmentMeta::log_bytes).sum::<u64>() + local_only) as i64;
        let mut by_size = 0;
        // Kafka's rule: delete the oldest while what remains is still at least retention.bytes.
        while by_size < segments.len() && total - segments[by_size].log_bytes() as i64 >= config.retention_bytes {
            total -= segments[by_size].log_bytes() as i64;
            by_size += 1;
        }
        n = n.max(by_size);
    }
    n
}

async fn apply_total_retention(p: &Partition, store: &RemoteStore) -> Result<(), TieringError> {
    let (segments, upload_end) = {
        let t = p.group().tiered().read().expect("tiered state lock");
        (t.segments().to_vec(), t.upload_end().unwrap_or(i64::MIN))
    };
    let n = expired(p, &segments, upload_end, now_ms());
    if n == 0 {
        return Ok(());
    }
    let gone = &segments[..n];
    let log_start_offset = gone.iter().map(|s| s.next_offset).max().expect("n > 0");
    let keys: Vec<SegmentRef> = gone.iter().map(RemoteSegmentMeta::key).collect();
    record(p, "a deletion", TieredOp::DeleteStarted { segments: keys, log_start_offset }).await?;
    tracing::info!(topic = %p.topic, partition = p.index, segments = n, log_start_offset, "tiered storage: retention deletes remote segments");
    finish_deletions(p, store).await
}

/// Deletes every upload of a deleted topic's partition, complete or not.
pub async fn delete_partition(store: Arc<RemoteStore>, topic_id: [u8; 16], partition: i32) {
    let listed = match store.list_all(&topic_id, partition).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(partition, "tiered storage: listing a deleted topic's uploads failed, they stay: {e}");
            return;
        }
    };
    let n = listed.len();
    for id in listed {
        if let Err(e) = store.delete_segment(&id).await {
            tracing::warn!(segment = %id, "tiered storage: deleting a deleted topic's upload failed, it stays: {e}");
            return;
        }
    }
    if n > 0 {
        tracing::info!(partition, segments = n, "tiered storage: deleted a deleted topic's uploads");
    }
}
