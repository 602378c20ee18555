//! The state machine over real logs: producer state from applied idempotent
//! batches (interleaved with raft's own entries and plain batches), Kafka's
//! dedupe and sequence outcomes against it, snapshots that round-trip into a
//! fresh, a lagging and an up-to-date follower (the log continues at the
//! snapshot's offset and raft index and takes the next append), restart and
//! crash recovery of an installed snapshot, expiry, and openraft's storage
//! suite on the log store with this state machine attached.

use std::path::Path;

use bytes::Bytes;
use fjord_raft::producer_state::{BatchMetadata, Outcome, PRODUCER_ID_EXPIRATION_MS_DEFAULT, ProducerStates};
use fjord_raft::state_machine::{SNAPSHOT_FILE, SmSnapshot};
use fjord_raft::types::{Membership, log_id};
use fjord_raft::{Entry, KafkaBatch, LogStore, StateMachine, TypeConfig};
use fjord_storage::LogConfig;
use fjord_storage::batch::{BatchHeader, uncompressed_batch};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::TypeConfigExt;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 2048, index_interval_bytes: 256, preallocate_step_bytes: 2048, retention_ms: None, ..Default::default() }
}

/// CRC-32C (Castagnoli), bit by bit: enough for a test to re-seal a batch
/// after patching producer fields (the CRC covers them).
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// A batch of `records` records from producer `pid` at `epoch`, sequences
/// from `first_seq`, timestamps from `ts`. `pid` -1 is a plain batch.
fn batch(pid: i64, epoch: i16, first_seq: i32, records: i64, ts: i64) -> KafkaBatch {
    let timestamps: Vec<i64> = (0..records).map(|i| ts + i).collect();
    let mut b = uncompressed_batch(&timestamps, 10);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&first_seq.to_be_bytes());
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    KafkaBatch::new(Bytes::from(b)).expect("a CRC-valid batch")
}

fn data(term: u64, index: u64, b: KafkaBatch) -> Entry {
    Entry::new_normal(log_id(term, index), b)
}

/// The history every test replicates (raft indexes 1..=16, terms 1 and 2):
/// a blank and a membership entry, producer 7 at epoch 0 (seq 0..=11 in four
/// batches of 3), a plain batch, producer 9, a new leader's blank entry,
/// producer 7 bumped to epoch 1 (KIP-360, seq from 0), more of producer 9.
fn history() -> Vec<Entry> {
    let m = Membership::new_with_defaults(vec![[1u64, 2, 3].into()], []);
    let mut h = vec![Entry::new_blank(log_id(1, 1)), Entry::new_membership(log_id(1, 2), m)];
    h.extend((0..4).map(|i| data(1, 3 + i, batch(7, 0, 3 * i as i32, 3, 1_000 + i as i64))));
    h.push(data(1, 7, batch(-1, -1, -1, 2, 2_000)));
    h.push(data(1, 8, batch(9, 4, 100, 1, 3_000)));
    h.push(Entry::new_blank(log_id(2, 9)));
    h.push(data(2, 10, batch(7, 1, 0, 2, 4_000)));
    h.extend((0..6).map(|i| data(2, 11 + i, batch(9, 4, 101 + i as i32, 1, 5_000 + i as i64))));
    assert_eq!(h.last().map(|e| e.index()), Some(16));
    h
}

/// One replica: a log store and the state machine over it.
struct Replica {
    store: LogStore,
    sm: StateMachine,
}

impl Replica {
    fn open(dir: &Path) -> Self {
        let store = LogStore::open(dir, config()).expect("open log store");
        let sm = StateMachine::open(&store).expect("open state machine");
        Self { store, sm }
    }

    /// Appends and waits for the flush that covers the entries.
    async fn append(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let (tx, rx) = TypeConfig::oneshot();
        self.store.append(entries, IOFlushed::signal(tx)).await.expect("append");
        rx.await.expect("flush callback").expect("flush");
    }

    /// Applies the stored entries after the last applied one through `index`,
    /// read back from the log as openraft does.
    async fn apply_through(&mut self, index: u64) {
        let from = self.sm.state().next_raft_index;
        let entries = self.store.reader().try_get_log_entries(from..=index).await.expect("read entries");
        assert_eq!(entries.last().map(|e| e.index()), Some(index));
        self.sm.apply(futures_util::stream::iter(entries.into_iter().map(|e| Ok((e, None))))).await.expect("apply");
    }

    fn producers(&self) -> ProducerStates {
        self.sm.producer_states().read().unwrap().clone()
    }

    async fn snapshot(&mut self) -> SmSnapshot {
        self.sm.get_snapshot_builder().await.build_snapshot().await.expect("build snapshot")
    }

    /// (log start offset, log end offset, first raft index, next raft index, is empty).
    fn log_shape(&self) -> (i64, i64, u64, u64, bool) {
        self.store
            .with_log(|l| (l.log_start_offset(), l.log_end_offset(), l.first_raft_index().unwrap(), l.next_raft_index(), l.is_empty()))
    }
}

/// A leader that appended and applied the whole history.
async fn leader(dir: &Path) -> Replica {
    let mut r = Replica::open(dir);
    r.append(history()).await;
    r.apply_through(16).await;
    r
}

/// The offsets the log gave the batch at raft index `index`.
fn stored_offsets(r: &Replica, index: u64) -> (i64, i64) {
    let h: BatchHeader = r.store.with_log(|l| l.entry_header(index)).unwrap();
    (h.base_offset, h.last_offset())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_batches_build_producer_state_and_kafkas_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Replica::open(dir.path());
    r.append(history()).await;
    let hw = r.sm.high_watermark();

    r.apply_through(8).await;
    assert_eq!((r.sm.state().next_offset, *hw.borrow()), (12 + 2 + 1, 15));
    let p = r.producers();
    assert_eq!(p.len(), 2, "the plain batch (producerId -1) is not tracked");
    let seven = p.get(7).unwrap();
    assert_eq!((seven.epoch(), seven.last_seq(), seven.batches().len()), (0, 11, 4));
    // Each remembered batch has the offsets the log gave it.
    for (i, b) in seven.batches().enumerate() {
        assert_eq!((b.first_offset, b.last_offset), stored_offsets(&r, 3 + i as u64));
        assert_eq!((b.first_seq, b.last_seq, b.timestamp_ms), (3 * i as i32, 3 * i as i32 + 2, 1_002 + i as i64));
    }
    let (first, last) = stored_offsets(&r, 4);
    let original = BatchMetadata { first_seq: 3, last_seq: 5, first_offset: first, last_offset: last, timestamp_ms: 1_003 };
    assert_eq!(p.check(7, 0, 3, 5), Outcome::Duplicate(original), "a retry gets the original offsets");
    assert_eq!(p.check(7, 0, 12, 14), Outcome::Accept);
    assert!(matches!(p.check(7, 0, 13, 14), Outcome::OutOfOrderSequence { stored_last_seq: 11, .. }));
    assert_eq!(p.check(9, 4, 101, 101), Outcome::Accept);
    assert_eq!(p.check(9, 3, 101, 101), Outcome::InvalidProducerEpoch { epoch: 3, stored_epoch: 4 });

    r.apply_through(16).await;
    let p = r.producers();
    let seven = p.get(7).unwrap();
    assert_eq!(
        (seven.epoch(), seven.batches().len(), seven.last_offset()),
        (1, 1, Some(stored_offsets(&r, 10).1)),
        "the new epoch forgot the old batches"
    );
    assert_eq!(p.check(7, 0, 12, 14), Outcome::InvalidProducerEpoch { epoch: 0, stored_epoch: 1 });
    assert_eq!(p.check(7, 1, 2, 2), Outcome::Accept);
    let nine = p.get(9).unwrap();
    assert_eq!(nine.batches().map(|b| b.first_seq).collect::<Vec<_>>(), [102, 103, 104, 105, 106], "only the last five");
    assert!(matches!(p.check(9, 4, 101, 101), Outcome::OutOfOrderSequence { .. }), "too old to be known as a duplicate");
    assert_eq!(*hw.borrow(), 15 + 2 + 6);
    assert_eq!(r.sm.state().next_raft_index, 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_installs_into_fresh_and_lagging_followers_and_the_log_continues_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = leader(dir.path()).await;
    let snap = l.snapshot().await;
    assert_eq!(snap.meta.last_log_id, Some(log_id(2, 16)));
    let next = data(2, 17, batch(7, 1, 2, 4, 6_000));
    l.append(vec![next.clone()]).await;
    l.apply_through(17).await;

    for behind in [0, 5] {
        let fdir = tempfile::tempdir().unwrap();
        let mut f = Replica::open(fdir.path());
        f.append(history().into_iter().take(behind).collect()).await;
        f.sm.install_snapshot(&snap.meta, snap.snapshot.clone()).await.unwrap();
        // What openraft does next: purge through the snapshot.
        f.store.purge(log_id(2, 16)).await.unwrap();

        let s = f.sm.state().clone();
        assert_eq!(
            (s.last_applied, &s.membership, s.next_offset, s.next_raft_index),
            (Some(log_id(2, 16)), &l.sm.state().membership, 23, 17)
        );
        assert_eq!(f.producers(), snapshot_producers(&snap).await, "behind {behind}");
        assert_eq!(*f.sm.high_watermark().borrow(), 23);
        assert_eq!(f.log_shape(), (23, 23, 17, 17, true), "the log starts after the snapshot");
        assert_eq!(s.log_start_offset, 23);
        assert!(fdir.path().join(SNAPSHOT_FILE).exists());
        assert_eq!(f.sm.get_current_snapshot().await.unwrap().map(|c| c.meta), Some(snap.meta.clone()));

        // Replication continues: the next entry gets the leader's offsets and state.
        f.append(vec![next.clone()]).await;
        assert_eq!(stored_offsets(&f, 17), stored_offsets(&l, 17));
        assert_eq!(f.store.get_log_state().await.unwrap().last_log_id, Some(log_id(2, 17)));
        f.apply_through(17).await;
        assert_eq!(f.producers(), l.producers());
        assert_eq!(*f.sm.high_watermark().borrow(), *l.sm.high_watermark().borrow());

        // A restart restores the snapshot and the log after it.
        drop(f);
        let mut f = Replica::open(fdir.path());
        assert_eq!((f.sm.state().last_applied, f.sm.state().next_offset), (Some(log_id(2, 16)), 23));
        assert_eq!(f.producers(), snapshot_producers(&snap).await);
        f.apply_through(17).await;
        assert_eq!(f.producers(), l.producers());
    }
}

/// The producer states a snapshot holds, through a detached state machine.
async fn snapshot_producers(snap: &SmSnapshot) -> ProducerStates {
    let mut sm = StateMachine::new();
    sm.install_snapshot(&snap.meta, snap.snapshot.clone()).await.unwrap();
    sm.producer_states().read().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_holds_the_snapshot_entries_keeps_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = leader(dir.path()).await;
    let snap = l.snapshot().await;
    let fdir = tempfile::tempdir().unwrap();
    let mut f = Replica::open(fdir.path());
    // Replicated (and beyond the snapshot) but not applied yet.
    f.append(history()).await;
    f.append(vec![data(2, 17, batch(-1, -1, -1, 1, 7_000))]).await;
    let before = f.log_shape();
    f.sm.install_snapshot(&snap.meta, snap.snapshot.clone()).await.unwrap();
    assert_eq!(f.log_shape(), before, "nothing to reset");
    assert_eq!(f.sm.state().log_start_offset, 0);
    f.store.purge(log_id(2, 16)).await.unwrap();
    f.apply_through(17).await;
    assert_eq!(f.sm.state().next_offset, 24);
    assert_eq!(f.producers(), l.producers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_written_before_a_crash_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = leader(dir.path()).await;
    l.snapshot().await;
    let fdir = tempfile::tempdir().unwrap();
    {
        let mut f = Replica::open(fdir.path());
        f.append(history().into_iter().take(4).collect()).await;
    }
    // The crash came after the snapshot file was written and before the log was reset.
    std::fs::copy(dir.path().join(SNAPSHOT_FILE), fdir.path().join(SNAPSHOT_FILE)).unwrap();
    let mut f = Replica::open(fdir.path());
    assert_eq!(f.log_shape(), (23, 23, 17, 17, true));
    assert_eq!((f.sm.state().last_applied, *f.sm.high_watermark().borrow()), (Some(log_id(2, 16)), 23));
    assert_eq!(f.producers(), l.producers());
    f.append(vec![data(2, 17, batch(-1, -1, -1, 1, 7_000))]).await;
    f.apply_through(17).await;
    assert_eq!(f.sm.state().next_offset, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_that_disagree_with_the_log_or_this_build_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = leader(dir.path()).await;
    let snap = l.snapshot().await;

    // A log holding the snapshot's last entry at other offsets: committed history forked.
    let fdir = tempfile::tempdir().unwrap();
    let mut f = Replica::open(fdir.path());
    let mut forked = history();
    forked[3] = data(1, 4, batch(7, 0, 3, 2, 1_001));
    f.append(forked).await;
    let err = f.sm.install_snapshot(&snap.meta, snap.snapshot.clone()).await.unwrap_err();
    assert!(err.to_string().contains("disagrees"), "{err}");

    let newer = String::from_utf8(snap.snapshot.clone()).unwrap().replacen("\"version\":1", "\"version\":2", 1);
    let err = StateMachine::new().install_snapshot(&snap.meta, newer.into_bytes()).await.unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
    let mut other_meta = snap.meta.clone();
    other_meta.last_log_id = Some(log_id(2, 15));
    assert!(StateMachine::new().install_snapshot(&other_meta, snap.snapshot.clone()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_producers_leave_the_state_and_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = leader(dir.path()).await;
    // Producer 7 was last seen at 4_001, producer 9 at 5_005.
    let removed =
        l.sm.producer_states()
            .write()
            .unwrap()
            .remove_expired(4_001 + PRODUCER_ID_EXPIRATION_MS_DEFAULT, PRODUCER_ID_EXPIRATION_MS_DEFAULT);
    assert_eq!(removed, 1);
    let p = l.producers();
    assert!(p.get(7).is_none() && p.get(9).is_some());
    assert_eq!(p.check(7, 1, 40, 41), Outcome::Accept, "an expired producer continues at any sequence");
    let snap = l.snapshot().await;
    assert_eq!(snapshot_producers(&snap).await, p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_batch_at_an_unexpected_offset_is_an_error() {
    // An entry that never went through the log still has the producer's baseOffset (0).
    let mut sm = StateMachine::new();
    sm.apply(futures_util::stream::iter([Ok((data(1, 1, batch(-1, -1, -1, 1, 0)), None))])).await.unwrap();
    let err = sm.apply(futures_util::stream::iter([Ok((data(1, 2, batch(-1, -1, -1, 1, 0)), None))])).await.unwrap_err();
    assert!(err.to_string().contains("baseOffset 0"), "{err}");
    assert_eq!(sm.state().last_applied, Some(log_id(1, 1)));
}

mod suite {
    use fjord_raft::{LogStore, StateMachine, TypeConfig};
    use openraft::StorageError;
    use openraft::testing::log::{StoreBuilder, Suite};

    /// openraft's storage suite with the state machine attached to the log,
    /// so its snapshot transfer resets a real log.
    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = LogStore::open(dir.path(), super::config()).expect("open log store");
            let sm = StateMachine::open(&store).expect("open state machine");
            Ok((dir, store, sm))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openraft_storage_suite_with_an_attached_state_machine() {
        Suite::test_all(Builder).await.expect("openraft storage suite");
    }
}

/// Tiered entries apply to the tiered state, take no offset, and the state
/// lives on in snapshots: a follower that installs one knows what is
/// remote, and a restart restores it before replaying the log after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_entries_build_the_tiered_state_and_outlive_the_log_in_snapshots() {
    use fjord_raft::tiered::{RemoteFileMeta, RemoteSegmentMeta, TieredOp};
    let segment = |base: i64, next: i64, id: u8| RemoteSegmentMeta {
        base_offset: base,
        next_offset: next,
        upload_id: [id; 16],
        files: vec![RemoteFileMeta { ext: "log".into(), bytes: 100 }],
        max_timestamp: 1_000,
        term: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut l = leader(dir.path()).await;
    let hw = *l.sm.high_watermark().borrow();
    l.append(vec![data(2, 17, KafkaBatch::tiered(&TieredOp::Copied(segment(0, 10, 1))))]).await;
    l.apply_through(17).await;
    assert_eq!(*l.sm.high_watermark().borrow(), hw, "a tiered entry takes no offset");
    let snap = l.snapshot().await;
    let tiered = |r: &Replica| r.sm.tiered_state().read().unwrap().clone();
    assert_eq!(tiered(&l).segments(), &[segment(0, 10, 1)]);

    let op = TieredOp::DeleteStarted { segments: vec![segment(0, 10, 1).key()], log_start_offset: 10 };
    l.append(vec![data(2, 18, KafkaBatch::tiered(&TieredOp::Copied(segment(10, 20, 2)))), data(2, 19, KafkaBatch::tiered(&op))]).await;
    l.apply_through(19).await;
    assert_eq!((tiered(&l).upload_end(), tiered(&l).remote_log_start(), tiered(&l).deleting().len()), (Some(20), Some(10), 1));

    let fdir = tempfile::tempdir().unwrap();
    let mut f = Replica::open(fdir.path());
    f.sm.install_snapshot(&snap.meta, snap.snapshot.clone()).await.unwrap();
    f.store.purge(log_id(2, 17)).await.unwrap();
    assert_eq!(tiered(&f).segments(), &[segment(0, 10, 1)], "the installed snapshot says what is remote");
    let after: Vec<Entry> = l.store.reader().try_get_log_entries(18..=19).await.unwrap();
    f.append(after).await;
    drop(f);
    let mut f = Replica::open(fdir.path());
    assert_eq!(tiered(&f).segments(), &[segment(0, 10, 1)], "restored from the snapshot file");
    f.apply_through(19).await;
    assert_eq!(tiered(&f), tiered(&l));
}
