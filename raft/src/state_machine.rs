//! The partition's state machine: what applying committed entries means for
//! Kafka. Applying a batch moves the next offset past it, and with it the high
//! watermark readers wait on, and records the batch in its producer's state
//! ([`crate::producer_state`]); membership entries are remembered for
//! openraft. Raft's own entries take no offset and touch no producer.
//!
//! The snapshot is small (no data: the data is the log): versioned JSON of
//! [`SmState`] and the producer states. A state machine opened over a log
//! store ([`StateMachine::open`]) keeps its current snapshot in
//! `raft-snapshot.json` beside the segments, so a restart restores it before
//! re-applying the log after it, and keeps the log consistent with it:
//! installing a snapshot that reaches past the local log resets the log to
//! start at the snapshot's next offset and raft index, so replication
//! continues after it. openraft then purges the log through the snapshot,
//! which finds nothing more to delete (see [`StateMachine::install_snapshot`]).
//!
//! Ownership: openraft's state-machine worker holds the [`StateMachine`];
//! snapshot builders share its current-snapshot slot; fetches hold receivers of
//! the high-watermark watch; the produce path reads the producer states.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use fjord_storage::Log;
use fjord_storage::batch::BatchHeader;
use futures_util::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use tokio::sync::watch;

use crate::entry::{Entry, EntryKind};
use crate::error::{RaftError, Result};
use crate::log_store::{LogStore, Shared, blocking};
use crate::producer_state::{ProducerBatch, ProducerStates, SharedProducerStates};
use crate::tiered::{SharedTieredState, TieredState};
use crate::types::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// The file that holds the current snapshot, beside the segments.
pub const SNAPSHOT_FILE: &str = "raft-snapshot.json";
/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What applying an entry produced, handed to the writer's responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// First offset of the entry's batch; for raft's own entries, the next offset.
    pub base_offset: i64,
    /// The high watermark after this entry: the offset the next record will get.
    pub next_offset: i64,
}

/// The state machine's state besides producers; all of it is in the snapshot.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SmState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// The offset the next record will get: the high watermark.
    pub next_offset: i64,
    /// The raft index after `last_applied` (0 before anything was applied).
    pub next_raft_index: u64,
    /// The log's start offset when the snapshot was taken or installed.
    pub log_start_offset: i64,
}

/// The serialized snapshot. A new field or meaning is a new version.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotData {
    version: u32,
    state: SmState,
    producers: ProducerStates,
    /// Absent in snapshots written before tiered storage: nothing is remote.
    #[serde(default)]
    tiered: TieredState,
}

/// A snapshot: its meta and the serialized state.
pub type SmSnapshot = Snapshot<Vec<u8>>;

fn encode(state: &SmState, producers: &ProducerStates, tiered: &TieredState) -> Result<Vec<u8>> {
    let data = SnapshotData { version: SNAPSHOT_VERSION, state: state.clone(), producers: producers.clone(), tiered: tiered.clone() };
    serde_json::to_vec(&data).map_err(|e| RaftError::Snapshot(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<(SmState, ProducerStates, TieredState)> {
    #[derive(serde::Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version = serde_json::from_slice(bytes).map_err(|e| RaftError::Snapshot(e.to_string()))?;
    if v.version != SNAPSHOT_VERSION {
        return Err(RaftError::Snapshot(format!("snapshot version {}, this build reads {SNAPSHOT_VERSION}", v.version)));
    }
    let d: SnapshotData = serde_json::from_slice(bytes).map_err(|e| RaftError::Snapshot(e.to_string()))?;
    if d.state.next_raft_index != d.state.last_applied.map_or(0, |l| l.index() + 1) {
        return Err(RaftError::Snapshot(format!("next raft index {} does not follow the last applied entry", d.state.next_raft_index)));
    }
    Ok((d.state, d.producers, d.tiered))
}

fn meta_of(state: &SmState) -> SnapshotMeta {
    SnapshotMeta { last_log_id: state.last_applied, last_membership: state.membership.clone() }
}

/// Where a state machine over a log keeps its snapshot, and the log itself.
#[derive(Clone)]
struct Persistence {
    shared: Arc<Shared>,
    /// Serializes snapshot file writes (builders run in their own tasks).
    write_lock: Arc<Mutex<()>>,
}

/// The state machine of one partition. See the module doc.
pub struct StateMachine {
    state: SmState,
    producers: SharedProducerStates,
    tiered: SharedTieredState,
    /// `None` for a detached state machine ([`StateMachine::new`]).
    persistence: Option<Persistence>,
    current: Arc<Mutex<Option<SmSnapshot>>>,
    high_watermark: watch::Sender<i64>,
}

impl Default for StateMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl StateMachine {
    /// A detached state machine: in memory only, with no log to keep
    /// consistent with an installed snapshot. For tests and tools; a
    /// partition uses [`StateMachine::open`].
    pub fn new() -> Self {
        Self {
            state: SmState::default(),
            producers: SharedProducerStates::default(),
            tiered: SharedTieredState::default(),
            persistence: None,
            current: Arc::default(),
            high_watermark: watch::Sender::new(0),
        }
    }

    /// The state machine of `store`'s partition: restores the snapshot kept
    /// beside the log, if any, and makes the log consistent with it (a crash
    /// may have come between writing an installed snapshot and resetting the
    /// log). openraft then re-applies the log after the snapshot. Blocking
    /// I/O: an async caller wraps it in `spawn_blocking`, as `LogStore::open`.
    pub fn open(store: &LogStore) -> Result<Self> {
        let persistence = Persistence { shared: Arc::clone(store.shared()), write_lock: Arc::default() };
        let mut sm = Self { persistence: Some(persistence.clone()), ..Self::new() };
        if let Some(bytes) = read_snapshot_file(&persistence.shared.dir)? {
            let (mut state, producers, tiered) = decode(&bytes)?;
            state.log_start_offset = align_log(&mut persistence.shared.write_log(), &state)?;
            let snapshot = SmSnapshot { meta: meta_of(&state), snapshot: bytes };
            tracing::info!(dir = %persistence.shared.dir.display(), last_applied = ?state.last_applied, next_offset = state.next_offset, "restored the partition snapshot");
            sm.replace(state, producers, tiered, snapshot);
        }
        Ok(sm)
    }

    /// The high watermark: the offset after the last applied batch. Fetches
    /// wait on it (long poll) and never read at or above it.
    pub fn high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    pub fn state(&self) -> &SmState {
        &self.state
    }

    /// The producer states, shared: the produce path checks batches against
    /// them (read lock) and its expiry timer calls `remove_expired` (write
    /// lock). Applying and installing snapshots write them.
    pub fn producer_states(&self) -> SharedProducerStates {
        Arc::clone(&self.producers)
    }

    /// Which segments are in the object store, as applied entries say.
    pub fn tiered_state(&self) -> SharedTieredState {
        Arc::clone(&self.tiered)
    }

    fn apply_one(&mut self, entry: &Entry) -> Result<Applied> {
        let base_offset = self.state.next_offset;
        match entry.kind() {
            EntryKind::Normal => self.apply_batch(entry)?,
            EntryKind::Blank => {}
            EntryKind::Tiered => {
                if let Some(op) = entry.tiered() {
                    self.tiered.write().expect("tiered state lock").apply(op);
                }
            }
            EntryKind::Membership => {
                if let Some(m) = entry.get_membership() {
                    self.state.membership = StoredMembership::new(Some(entry.log_id()), m);
                }
            }
        }
        debug_assert!(self.state.last_applied.is_none_or(|l| l.index() < entry.index()), "entries apply in order");
        self.state.last_applied = Some(entry.log_id());
        self.state.next_raft_index = entry.index() + 1;
        Ok(Applied { base_offset, next_offset: self.state.next_offset })
    }

    /// A Kafka batch: moves the next offset and records its producer.
    fn apply_batch(&mut self, entry: &Entry) -> Result<()> {
        let h = BatchHeader::parse(entry.batch())?;
        // openraft applies entries as the log stored them, so the baseOffset
        // is the one the log assigned; it must be the one we expect, or the
        // high watermark would lie about what readers may see.
        if h.base_offset != self.state.next_offset {
            let detail = format!("applied batch has baseOffset {}, the state machine expects {}", h.base_offset, self.state.next_offset);
            return Err(RaftError::CorruptEntry { index: entry.index(), detail });
        }
        if let Some(p) = ProducerBatch::parse(entry.batch())? {
            self.producers.write().expect("producer states lock").apply(&p, h.base_offset);
        }
        self.state.next_offset += h.offset_count();
        Ok(())
    }

    /// Replaces the whole state with an installed or restored snapshot.
    fn replace(&mut self, state: SmState, producers: ProducerStates, tiered: TieredState, snapshot: SmSnapshot) {
        debug_assert_eq!(snapshot.meta.last_log_id, state.last_applied);
        self.state = state;
        *self.producers.write().expect("producer states lock") = producers;
        *self.tiered.write().expect("tiered state lock") = tiered;
        self.high_watermark.send_replace(self.state.next_offset);
        *self.current.lock().expect("snapshot lock") = Some(snapshot);
    }
}

/// Makes `log` continue where the snapshot `state` ends, and returns the
/// log's start offset afterwards.
///
/// The log is consistent when it holds the snapshot's last entry (same term,
/// ending at the snapshot's next offset) or starts right after it at that
/// offset; then it stays, and openraft's purge removes what the snapshot
/// covers. A log that ends before the snapshot (a follower behind the
/// leader's purge point, or a fresh one) is reset to start at the snapshot's
/// next offset and raft index. A log that reaches the snapshot but disagrees
/// with it is an error: replicas disagree about committed history.
fn align_log(log: &mut Log, state: &SmState) -> Result<i64> {
    let Some(last) = state.last_applied else { return Ok(log.log_start_offset()) };
    let next_raft = last.index() + 1;
    debug_assert_eq!(next_raft, state.next_raft_index);
    let reaches = !log.is_empty() && log.first_raft_index()? <= next_raft && next_raft <= log.next_raft_index();
    if !reaches {
        let empty_at = log.is_empty() && log.next_raft_index() == next_raft && log.log_end_offset() == state.next_offset;
        if !empty_at {
            tracing::info!(dir = %log.dir().display(), next_offset = state.next_offset, next_raft_index = next_raft, "resetting the log to continue after an installed snapshot");
            log.reset(state.next_offset, next_raft)?;
        }
        return Ok(log.log_start_offset());
    }
    let (offset_after, term_ok) = if log.first_raft_index()? <= last.index() {
        let h = log.entry_header(last.index())?;
        (h.base_offset + h.offset_count(), i64::from(h.leader_epoch) == last.committed_leader_id().term as i64)
    } else {
        // The log starts right after the snapshot (its prefix was purged).
        (log.entry_header(next_raft)?.base_offset, true)
    };
    if !term_ok || offset_after != state.next_offset {
        return Err(RaftError::Snapshot(format!(
            "the log disagrees with the snapshot at raft index {}: next offset {offset_after} (snapshot: {}), same term: {term_ok}",
            last.index(),
            state.next_offset
        )));
    }
    Ok(log.log_start_offset())
}

fn read_snapshot_file(dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = dir.join(SNAPSHOT_FILE);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RaftError::Io { context: "reading", path, source }),
    }
}

/// Replaces the snapshot file durably (temporary file, fsync, rename, fsync
/// of the directory), as `raft-meta.json` is written. Blocking.
fn write_snapshot_file(dir: &Path, bytes: &[u8]) -> Result<()> {
    let path = dir.join(SNAPSHOT_FILE);
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    fn io<'a>(context: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RaftError + 'a {
        move |source| RaftError::Io { context, path: path.to_path_buf(), source }
    }
    let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(bytes).map_err(io("writing", &tmp))?;
    f.sync_all().map_err(io("syncing", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io("renaming to", &path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing directory", dir))?;
    Ok(())
}

/// Builds a snapshot of the state as it was when the builder was made.
pub struct SnapshotBuilder {
    state: SmState,
    producers: ProducerStates,
    tiered: TieredState,
    persistence: Option<Persistence>,
    current: Arc<Mutex<Option<SmSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> io::Result<SmSnapshot> {
        let snapshot = SmSnapshot { meta: meta_of(&self.state), snapshot: encode(&self.state, &self.producers, &self.tiered)? };
        let (persistence, current, built) = (self.persistence.clone(), Arc::clone(&self.current), snapshot.clone());
        blocking(move || {
            let _writing = persistence.as_ref().map(|p| p.write_lock.lock().expect("snapshot write lock"));
            // A builder made earlier may finish later; keep the newest.
            let newer = current.lock().expect("snapshot lock").as_ref().is_none_or(|c| c.meta.last_log_id <= built.meta.last_log_id);
            if newer {
                if let Some(p) = &persistence {
                    write_snapshot_file(&p.shared.dir, &built.snapshot)?;
                }
                *current.lock().expect("snapshot lock") = Some(built);
            }
            Ok(())
        })
        .await?;
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
            let applied = self.apply_one(&entry)?;
            if let Some(r) = responder {
                r.send(applied);
            }
            self.high_watermark.send_replace(self.state.next_offset);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let mut state = self.state.clone();
        if let Some(p) = &self.persistence {
            state.log_start_offset = p.shared.read_log().log_start_offset();
        }
        let producers = self.producers.read().expect("producer states lock").clone();
        let tiered = self.tiered.read().expect("tiered state lock").clone();
        SnapshotBuilder { state, producers, tiered, persistence: self.persistence.clone(), current: Arc::clone(&self.current) }
    }

    /// Installs a snapshot from the leader (or, on restart, the current one).
    ///
    /// openraft's order on a follower (`install_full_snapshot` in its
    /// following handler): it truncates a conflicting uncommitted log tail,
    /// calls this, and only then purges the log through the snapshot's last
    /// log id. So this writes the snapshot file first (a crash after it is
    /// finished by [`StateMachine::open`]), then aligns the log: a log that
    /// ends before the snapshot is reset to start at its next offset and raft
    /// index. The purge that follows finds an empty log (nothing to do) or
    /// one that holds the snapshot's last entry (it deletes whole segments
    /// through it); the log store takes the next offset from the reset log.
    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Vec<u8>) -> io::Result<()> {
        let (mut state, producers, tiered) = decode(&snapshot)?;
        if state.last_applied != meta.last_log_id || state.membership != meta.last_membership {
            return Err(RaftError::Snapshot("state does not match the snapshot's meta".into()).into());
        }
        if let Some(p) = self.persistence.clone() {
            let (bytes, aligned) = (snapshot.clone(), state.clone());
            state.log_start_offset = blocking(move || {
                {
                    let _writing = p.write_lock.lock().expect("snapshot write lock");
                    write_snapshot_file(&p.shared.dir, &bytes)?;
                }
                align_log(&mut p.shared.write_log(), &aligned)
            })
            .await?;
        }
        tracing::info!(last_applied = ?state.last_applied, next_offset = state.next_offset, producers = producers.len(), "installed a snapshot");
        self.replace(state, producers, tiered, SmSnapshot { meta: meta.clone(), snapshot });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<SmSnapshot>> {
        Ok(self.current.lock().expect("snapshot lock").clone())
    }
}
