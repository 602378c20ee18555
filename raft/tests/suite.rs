//! openraft's own storage test suite, run on the log store over a real
//! fjord-storage log in a fresh temporary directory per build.
//!
//! The suite only builds blank and membership entries (it cannot build
//! `C::D`), so it exercises raft's private control batches; normal entries
//! are covered by `log_store_behaviour.rs`.

use fjord_raft::{LogStore, StateMachine, TypeConfig};
use fjord_storage::LogConfig;
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = LogConfig { segment_bytes: 4096, preallocate_step_bytes: 4096, retention_ms: None, ..Default::default() };
        let store = LogStore::open(dir.path(), config).expect("open log store");
        Ok((dir, store, StateMachine::new()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    Suite::test_all(Builder).await.expect("openraft storage suite");
}
