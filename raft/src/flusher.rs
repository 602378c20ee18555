//! Group commit for a log store: one task per log that makes appended
//! entries durable and tells openraft so.
//!
//! `append` copies entries into the segment map (readable at once, as
//! replication needs), queues its `IOFlushed` callback and kicks this task.
//! The task takes every queued callback together with one
//! [`Log::begin_flush`](fjord_storage::Log::begin_flush) under the write lock
//! (both cheap), runs the fsync on the blocking pool with no lock held, so
//! readers and appends go on, then publishes the durable point and completes
//! the callbacks. Appends that arrive during an fsync queue up and share the
//! next one: the cost is per flush, not per batch.

use std::io;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use crate::error::RaftError;
use crate::log_store::Shared;

/// Runs until the log store and all its readers are gone (the kick channel closes).
pub(crate) async fn run(shared: Weak<Shared>, mut kick: mpsc::Receiver<()>) {
    while kick.recv().await.is_some() {
        let Some(shared) = shared.upgrade() else { return };
        flush_waiting(&shared).await;
    }
}

/// One group commit covering every append queued so far.
async fn flush_waiting(shared: &Arc<Shared>) {
    let (job, callbacks) = {
        let mut log = shared.write_log();
        // Taken under the log lock: every callback taken belongs to an append
        // that is in the log now, so the flush begun here covers it.
        let callbacks = std::mem::take(&mut *shared.waiting.lock().expect("waiting lock"));
        if callbacks.is_empty() {
            return;
        }
        (log.begin_flush(), callbacks)
    };
    let result = match job {
        Ok(job) => match tokio::task::spawn_blocking(move || job.run()).await {
            Ok(done) => done.map_err(|e| io::Error::from(RaftError::from(e))),
            Err(join) => Err(io::Error::other(format!("flush task failed: {join}"))),
        },
        Err(e) => Err(io::Error::from(RaftError::from(e))),
    };
    match result {
        Ok(done) => {
            let durable = {
                let mut log = shared.write_log();
                log.complete_flush(done);
                log.durable().next_raft_index
            };
            // Never backwards: write-cached appends may have published more.
            shared.durable.send_if_modified(|d| {
                let later = durable > *d;
                *d = (*d).max(durable);
                later
            });
            for cb in callbacks {
                cb.io_completed(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(dir = %shared.dir.display(), error = %e, "flushing the raft log failed");
            for cb in callbacks {
                cb.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
            }
        }
    }
}
