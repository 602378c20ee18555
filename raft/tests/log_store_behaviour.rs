//! The log store with real Kafka batches: dense offsets across raft's own
//! entries, group-commit acks, durability of raft metadata across reopen,
//! purge deleting whole segments, and refusals.

use bytes::Bytes;
use fjord_raft::{Entry, KafkaBatch, LogStore, StateMachine, TypeConfig};
use fjord_storage::LogConfig;
use fjord_storage::batch::{BatchHeader, uncompressed_batch};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::{LogId, Membership};

type Lid = LogId<openraft::vote::leader_id_std::CommittedLeaderId<u64>>;

fn lid(term: u64, index: u64) -> Lid {
    LogId::new(openraft::vote::leader_id_std::CommittedLeaderId::new(term), index)
}

fn config() -> LogConfig {
    LogConfig { segment_bytes: 2048, index_interval_bytes: 256, preallocate_step_bytes: 2048, retention_ms: None, ..Default::default() }
}

fn data(term: u64, index: u64, records: usize) -> Entry {
    let ts: Vec<i64> = (0..records as i64).collect();
    let batch = KafkaBatch::new(Bytes::from(uncompressed_batch(&ts, 100))).unwrap();
    Entry::new_normal(lid(term, index), batch)
}

/// Appends and waits for the flush that covers the entries.
async fn append(store: &mut LogStore, entries: Vec<Entry>) -> std::io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.map_err(std::io::Error::other)?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_dense_across_raft_entries_and_acks_follow_the_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), config()).unwrap();
    let m = Membership::new_with_defaults(vec![[1u64, 2, 3].into()], []);
    let mut entries = vec![Entry::new_blank(lid(1, 1)), Entry::new_membership(lid(1, 2), m.clone())];
    entries.extend((3..30).map(|i| data(1, i, 3)));
    append(&mut store, entries).await.unwrap();
    store.with_log(|log| {
        assert_eq!(log.log_end_offset(), 27 * 3, "raft's own entries take no offset");
        assert_eq!(log.durable().next_raft_index, 30, "the ack came after the flush");
        assert!(log.segment_count() > 1);
    });

    let read = store.reader().try_get_log_entries(1..30).await.unwrap();
    assert_eq!(read.len(), 29);
    assert_eq!(read[1].get_membership(), Some(m));
    for (i, e) in read.iter().skip(2).enumerate() {
        let h = BatchHeader::parse(e.batch()).unwrap();
        assert_eq!((h.base_offset, h.leader_epoch, e.log_id()), (i as i64 * 3, 1, lid(1, i as u64 + 3)));
    }

    // The state machine's high watermark follows the applied batches.
    let mut sm = StateMachine::new();
    let hw = sm.high_watermark();
    sm.apply(futures_util::stream::iter(read.into_iter().map(|e| Ok((e, None))))).await.unwrap();
    assert_eq!(*hw.borrow(), 81);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_metadata_and_purge_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = LogStore::open(dir.path(), config()).unwrap();
        append(&mut store, (1..40).map(|i| data(2, i, 2)).collect()).await.unwrap();
        store.save_vote(&openraft::impls::Vote::new_committed(2, 7)).await.unwrap();
        store.save_committed(Some(lid(2, 30))).await.unwrap();
        let segments = store.with_log(|l| l.segment_count());
        store.purge(lid(2, 20)).await.unwrap();
        store.with_log(|l| assert!(l.segment_count() < segments, "whole segments went"));
        store.truncate_after(Some(lid(2, 35))).await.unwrap();
    }
    let mut store = LogStore::open(dir.path(), config()).unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(lid(2, 20)), Some(lid(2, 35))));
    assert_eq!(store.read_committed().await.unwrap(), Some(lid(2, 30)));
    assert_eq!(store.reader().read_vote().await.unwrap(), Some(openraft::impls::Vote::new_committed(2, 7)));
    let read = store.reader().try_get_log_entries(0..100).await.unwrap();
    assert_eq!(read.first().map(|e| e.index()), Some(21), "purged entries stay hidden even if their segment remains");
    assert_eq!(read.len(), 15);
    // Appends continue after the truncation with the offsets it implies.
    append(&mut store, vec![data(3, 36, 1)]).await.unwrap();
    store.with_log(|l| assert_eq!(l.log_end_offset(), 35 * 2 + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_beyond_the_log_restarts_it_after_the_purge_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), config()).unwrap();
    append(&mut store, (1..5).map(|i| data(1, i, 1)).collect()).await.unwrap();
    // As after installing a snapshot that reaches past the local log.
    store.purge(lid(4, 100)).await.unwrap();
    append(&mut store, vec![data(4, 101, 2)]).await.unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(lid(4, 101)));
    store.with_log(|l| assert_eq!((l.log_end_offset(), l.first_raft_index().unwrap()), (6, 101)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_beyond_the_leader_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), config()).unwrap();
    let err = append(&mut store, vec![data(i32::MAX as u64 + 1, 1, 1)]).await.unwrap_err();
    assert!(err.to_string().contains("partitionLeaderEpoch"), "{err}");
    store.with_log(|l| assert!(l.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_cache_acknowledges_from_the_page_cache_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let cached = LogConfig { write_cache: true, segment_bytes: 1 << 20, preallocate_step_bytes: 1 << 20, ..config() };
    let mut store = LogStore::open(dir.path(), cached).unwrap();
    // The callback fires inside `append`: no flush task is involved.
    let (tx, mut rx) = TypeConfig::oneshot();
    store.append((1..=5).map(|i| data(1, i, 2)).collect::<Vec<_>>(), IOFlushed::signal(tx)).await.unwrap();
    assert!(matches!(rx.try_recv(), Ok(Ok(()))), "acknowledged before append returned");
    store.with_log(|log| {
        assert_eq!(log.log_end_offset(), 10);
        assert!(log.durable().next_raft_index <= 1, "nothing was synced");
    });
    drop(store);
    // The page cache outlives the store: a reopen (as after a killed process) recovers every entry.
    let store = LogStore::open(dir.path(), config()).unwrap();
    store.with_log(|log| assert_eq!((log.log_end_offset(), log.next_raft_index()), (10, 6)));
}
