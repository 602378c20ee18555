//! Which of a partition's segments live in the object store (KIP-405's
//! remote log metadata), kept by the partition's own raft log.
//!
//! The leader uploads a rolled segment and then proposes [`TieredOp::Copied`];
//! retention proposes [`TieredOp::DeleteStarted`] before it deletes objects
//! and [`TieredOp::DeleteFinished`] after. Every replica applies the same
//! entries, so every replica knows what is remote, a new leader neither
//! uploads a recorded segment again nor loses one, and a follower may delete
//! its local copy of what the log says is uploaded. The entries are
//! raft-private control batches (no Kafka offset, skipped by Fetch), as
//! blank and membership entries are. The state is part of the snapshot, so
//! it outlives the purge of the entries that built it.
//!
//! Kafka keeps this in `__remote_log_metadata` with the same three states
//! (COPY_SEGMENT_FINISHED, DELETE_SEGMENT_STARTED, DELETE_SEGMENT_FINISHED);
//! an upload that never reached COPY_SEGMENT_FINISHED is simply never
//! proposed here.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// One file of an uploaded segment: its extension (`log`, `index`,
/// `timeindex`) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFileMeta {
    pub ext: String,
    pub bytes: u64,
}

/// One complete upload of one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegmentMeta {
    /// The offset of the segment's first record (its `.log` name).
    pub base_offset: i64,
    /// The offset after its last record.
    pub next_offset: i64,
    /// The upload attempt, which names its objects.
    pub upload_id: [u8; 16],
    pub files: Vec<RemoteFileMeta>,
    /// The largest batch timestamp, -1 if none has one (time retention).
    pub max_timestamp: i64,
    /// The raft term of the leader that uploaded it.
    pub term: u64,
}

impl RemoteSegmentMeta {
    /// Size of the segment's records (what `retention.bytes` counts).
    pub fn log_bytes(&self) -> u64 {
        self.files.iter().find(|f| f.ext == "log").map_or(0, |f| f.bytes)
    }

    pub fn key(&self) -> SegmentRef {
        SegmentRef { base_offset: self.base_offset, upload_id: self.upload_id }
    }

    pub fn contains(&self, offset: i64) -> bool {
        (self.base_offset..self.next_offset).contains(&offset)
    }
}

/// Names one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub base_offset: i64,
    pub upload_id: [u8; 16],
}

/// What a tiered entry says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TieredOp {
    /// The upload is complete (its manifest is written): readers may use it.
    Copied(RemoteSegmentMeta),
    /// Retention removes these uploads from the log, whose start moves to
    /// `log_start_offset`; their objects are deleted after this commits.
    DeleteStarted { segments: Vec<SegmentRef>, log_start_offset: i64 },
    /// Their objects are gone.
    DeleteFinished { segments: Vec<SegmentRef> },
}

/// The remote part of a partition's log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TieredState {
    /// Readable uploads, ordered by base offset, then end.
    segments: Vec<RemoteSegmentMeta>,
    /// Uploads retention removed whose objects may still exist.
    deleting: Vec<RemoteSegmentMeta>,
    /// No offset below this is readable, remote or local (moved by remote retention).
    log_start_floor: i64,
}

/// The tiered state, shared between the state machine (the writer) and the
/// broker's readers (Fetch, ListOffsets, the uploader, local retention).
pub type SharedTieredState = Arc<RwLock<TieredState>>;

impl TieredState {
    pub fn apply(&mut self, op: &TieredOp) {
        match op {
            TieredOp::Copied(s) => {
                if self.segments.iter().any(|x| x.key() == s.key()) {
                    return;
                }
                let at = self.segments.partition_point(|x| (x.base_offset, x.next_offset) <= (s.base_offset, s.next_offset));
                self.segments.insert(at, s.clone());
            }
            TieredOp::DeleteStarted { segments, log_start_offset } => {
                let (gone, kept): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut self.segments).into_iter().partition(|s| segments.contains(&s.key()));
                self.segments = kept;
                self.deleting.extend(gone);
                self.log_start_floor = self.log_start_floor.max(*log_start_offset);
            }
            TieredOp::DeleteFinished { segments } => self.deleting.retain(|s| !segments.contains(&s.key())),
        }
    }

    /// Readable uploads, by base offset.
    pub fn segments(&self) -> &[RemoteSegmentMeta] {
        &self.segments
    }

    /// Uploads whose objects retention has yet to delete.
    pub fn deleting(&self) -> &[RemoteSegmentMeta] {
        &self.deleting
    }

    /// The offset after the last uploaded record: local data below it is
    /// safe to delete. `None` before the first upload.
    pub fn upload_end(&self) -> Option<i64> {
        self.segments.iter().map(|s| s.next_offset).max()
    }

    /// The first offset the remote part holds for readers.
    pub fn remote_log_start(&self) -> Option<i64> {
        self.segments.first().map(|s| s.base_offset.max(self.log_start_floor))
    }

    /// What remote retention has moved the log start to (0 if never).
    pub fn log_start_floor(&self) -> i64 {
        self.log_start_floor
    }

    /// The upload holding `offset` (of overlapping uploads, after a leader
    /// whose segments rolled at other offsets, the one starting latest).
    pub fn segment_for(&self, offset: i64) -> Option<&RemoteSegmentMeta> {
        if offset < self.log_start_floor {
            return None;
        }
        self.segments.iter().rev().find(|s| s.contains(offset))
    }

    /// Bytes of records held remotely.
    pub fn log_bytes(&self) -> u64 {
        self.segments.iter().map(RemoteSegmentMeta::log_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, next: i64, id: u8) -> RemoteSegmentMeta {
        RemoteSegmentMeta {
            base_offset: base,
            next_offset: next,
            upload_id: [id; 16],
            files: vec![RemoteFileMeta { ext: "log".into(), bytes: (next - base) as u64 * 10 }],
            max_timestamp: base,
            term: 1,
        }
    }

    #[test]
    fn copies_deletes_and_lookups() {
        let mut t = TieredState::default();
        assert_eq!((t.upload_end(), t.remote_log_start()), (None, None));
        t.apply(&TieredOp::Copied(seg(100, 200, 2)));
        t.apply(&TieredOp::Copied(seg(0, 100, 1)));
        t.apply(&TieredOp::Copied(seg(0, 100, 1)));
        // A later leader's segment that overlaps the last one.
        t.apply(&TieredOp::Copied(seg(150, 260, 3)));
        assert_eq!(t.segments().len(), 3, "a replayed copy is not added twice");
        assert_eq!((t.upload_end(), t.remote_log_start(), t.log_bytes()), (Some(260), Some(0), 3100));
        assert_eq!(t.segment_for(99).unwrap().upload_id, [1; 16]);
        assert_eq!(t.segment_for(120).unwrap().upload_id, [2; 16]);
        assert_eq!(t.segment_for(170).unwrap().upload_id, [3; 16]);
        assert!(t.segment_for(260).is_none());

        t.apply(&TieredOp::DeleteStarted { segments: vec![seg(0, 100, 1).key()], log_start_offset: 100 });
        assert_eq!((t.remote_log_start(), t.deleting().len()), (Some(100), 1));
        assert!(t.segment_for(50).is_none());
        t.apply(&TieredOp::DeleteFinished { segments: vec![seg(0, 100, 1).key()] });
        assert!(t.deleting().is_empty());
        // A floor inside a segment hides the offsets below it.
        t.apply(&TieredOp::DeleteStarted { segments: vec![], log_start_offset: 120 });
        assert_eq!(t.remote_log_start(), Some(120));
        assert!(t.segment_for(110).is_none());
        assert!(t.segment_for(120).is_some());
    }
}
