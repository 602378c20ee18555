//! Reading a partition back from its start: what a coordinator does when
//! it takes over one of its internal partitions (`__consumer_offsets`,
//! `__transaction_state`).

use std::time::Duration;

use fjord_storage::StorageError;
use fjord_storage::batch::BatchHeader;

use super::Partition;
use crate::protocol::records::batches;

/// How much one read of a replay takes.
const READ_BYTES: usize = 1 << 20;

impl Partition {
    /// Waits up to `wait` for the high watermark to reach the log end, so
    /// that a new leader's inherited records are committed before they are
    /// read; false if it did not get there in time.
    pub async fn caught_up(&self, wait: Duration) -> bool {
        let mut hw = self.watch_high_watermark();
        let caught_up = tokio::time::timeout(wait, async {
            loop {
                if *hw.borrow_and_update() >= self.log_end_offset() {
                    return;
                }
                if hw.changed().await.is_err() {
                    return;
                }
            }
        });
        caught_up.await.is_ok()
    }

    /// Calls `visit` with every batch from the log start to the high
    /// watermark, in log order (control batches included).
    pub fn replay(&self, mut visit: impl FnMut(&BatchHeader, &[u8])) -> Result<(), StorageError> {
        let end = self.high_watermark();
        let mut at = self.log_start_offset();
        while at < end {
            let read = self.read(at, READ_BYTES, end)?;
            if read.is_empty() || read.next_offset <= at {
                break;
            }
            for slice in &read.slices {
                for (header, bytes) in batches(slice) {
                    // A read starts with the batch holding `at`, which may begin before it.
                    if header.last_offset() >= at {
                        visit(&header, bytes);
                    }
                }
            }
            at = read.next_offset;
        }
        Ok(())
    }
}
