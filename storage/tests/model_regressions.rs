//! Regressions the model test (`tests/model.rs`) found, shrunk and kept as
//! plain tests.

use fjord_storage::batch::uncompressed_batch;
use fjord_storage::{Log, LogConfig, StorageError};
use tempfile::TempDir;

fn small_log(dir: &TempDir) -> Log {
    let config = LogConfig { segment_bytes: 512, index_interval_bytes: 64, retention_ms: None, ..LogConfig::default() };
    Log::open(dir.path(), config).expect("open")
}

/// `Log::append` compared the epoch with the active segment's last batch
/// only, so right after a roll (or a truncation back to a segment start) an
/// older leader epoch was accepted and raft terms went back in the log.
#[test]
fn regression_stale_epoch_is_refused_after_a_roll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = small_log(&dir);
    log.append(&uncompressed_batch(&[1], 0), 1, 1).expect("append");
    log.roll().expect("roll");
    let stale = log.append(&uncompressed_batch(&[2], 0), 0, 2);
    assert!(matches!(stale, Err(StorageError::BadLeaderEpoch { epoch: 0, .. })), "epoch 0 after epoch 1: {stale:?}");
}

/// A segment that was active when the log start reached the log end was
/// sealed wholly below the log start and kept; reopening (clean or not)
/// dropped it as a crash leftover, so the first raft index and the segments
/// changed across a restart that lost nothing.
#[test]
fn regression_reopen_keeps_what_the_live_log_holds() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = small_log(&dir);
        log.append(&uncompressed_batch(&[1], 0), 0, 1).expect("append");
        log.delete_before(1).expect("delete_before");
        log.roll().expect("roll");
        let live = (log.first_raft_index().expect("first"), log.segment_base_offsets(), log.size_bytes());
        if clean {
            log.close().expect("close");
        } else {
            drop(log);
        }
        let log = small_log(&dir);
        let reopened = (log.first_raft_index().expect("first"), log.segment_base_offsets(), log.size_bytes());
        assert_eq!(reopened, live, "clean {clean}: dropped {}", log.open_report().segments_dropped);
    }
}
