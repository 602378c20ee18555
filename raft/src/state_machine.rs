//! The partition's state machine: what applying committed entries means for
//! Kafka. Applying a batch moves the next offset past it, and with it the high
//! watermark readers wait on; membership entries are remembered for openraft.
//! The snapshot is small (no data: the data is the log), serde_json of
//! [`SmState`].
//!
//! Ownership: openraft's state-machine worker holds the [`StateMachine`];
//! snapshot builders share its current-snapshot slot; fetches hold receivers of
//! the high-watermark watch.

use std::io;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use tokio::sync::watch;

use crate::entry::{Entry, EntryKind};
use crate::error::RaftError;
use crate::types::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// What applying an entry produced, handed to the writer's responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// First offset of the entry's batch; for raft's own entries, the next offset.
    pub base_offset: i64,
    /// The high watermark after this entry: the offset the next record will get.
    pub next_offset: i64,
}

/// Everything a snapshot holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SmState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub next_offset: i64,
    pub log_start_offset: i64,
}

/// A snapshot: its meta and the serialized [`SmState`].
pub type SmSnapshot = Snapshot<Vec<u8>>;

/// The state machine of one partition. See the module doc.
pub struct StateMachine {
    state: SmState,
    current: Arc<Mutex<Option<SmSnapshot>>>,
    high_watermark: watch::Sender<i64>,
}

impl Default for StateMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl StateMachine {
    pub fn new() -> Self {
        Self { state: SmState::default(), current: Arc::default(), high_watermark: watch::Sender::new(0) }
    }

    /// The high watermark: the offset after the last applied batch. Fetches
    /// wait on it (long poll) and never read at or above it.
    pub fn high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    pub fn state(&self) -> &SmState {
        &self.state
    }

    fn apply_one(&mut self, entry: &Entry) -> Applied {
        let base_offset = self.state.next_offset;
        match entry.kind() {
            EntryKind::Normal => self.state.next_offset += entry.offset_count(),
            EntryKind::Blank => {}
            EntryKind::Membership => {
                if let Some(m) = entry.get_membership() {
                    self.state.membership = StoredMembership::new(Some(entry.log_id()), m);
                }
            }
        }
        debug_assert!(self.state.last_applied.is_none_or(|l| l.index() < entry.index()), "entries apply in order");
        self.state.last_applied = Some(entry.log_id());
        Applied { base_offset, next_offset: self.state.next_offset }
    }
}

/// Builds a snapshot of the state as it was when the builder was made.
pub struct SnapshotBuilder {
    state: SmState,
    current: Arc<Mutex<Option<SmSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> io::Result<SmSnapshot> {
        let data = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        let meta = SnapshotMeta { last_log_id: self.state.last_applied, last_membership: self.state.membership.clone() };
        let snapshot = SmSnapshot { meta, snapshot: data };
        let mut current = self.current.lock().expect("snapshot lock");
        // A builder made earlier may finish later; keep the newest.
        if current.as_ref().is_none_or(|c| c.meta.last_log_id <= snapshot.meta.last_log_id) {
            *current = Some(snapshot.clone());
        }
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + Send,
    {
        // Every responder gets its answer, or its client_write never returns.
        while let Some((entry, responder)) = entries.try_next().await? {
            let applied = self.apply_one(&entry);
            if let Some(r) = responder {
                r.send(applied);
            }
            self.high_watermark.send_replace(self.state.next_offset);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder { state: self.state.clone(), current: Arc::clone(&self.current) }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Vec<u8>) -> io::Result<()> {
        let state: SmState = serde_json::from_slice(&snapshot).map_err(|e| RaftError::Snapshot(e.to_string()))?;
        if state.last_applied != meta.last_log_id || state.membership != meta.last_membership {
            return Err(RaftError::Snapshot("state does not match the snapshot's meta".into()).into());
        }
        self.state = state;
        self.high_watermark.send_replace(self.state.next_offset);
        *self.current.lock().expect("snapshot lock") = Some(SmSnapshot { meta: meta.clone(), snapshot });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<SmSnapshot>> {
        Ok(self.current.lock().expect("snapshot lock").clone())
    }
}
