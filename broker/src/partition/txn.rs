//! What a partition knows of transactions: its last stable offset and its
//! aborted transactions (both from the producer states raft applies, see
//! fjord-raft `txn.rs`), and the checks produce makes on transactional batches.

use fjord_raft::txn::AbortedTxn;

use super::Partition;

impl Partition {
    /// Kafka's last stable offset: the first offset of the earliest open
    /// transaction, or the high watermark when none is open below it.
    /// read_committed consumers read up to here.
    pub fn last_stable_offset(&self) -> i64 {
        // Producer states first: a transaction applied after this read is
        // above the high watermark read next, so the answer is never too high.
        let unstable = self.group.producer_states().read().expect("producer states").first_unstable_offset();
        let hw = self.high_watermark();
        unstable.map_or(hw, |u| u.min(hw))
    }

    /// Aborted transactions overlapping `[from, upto)`, for a read_committed fetch.
    pub fn aborted_transactions(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        self.group.producer_states().read().expect("producer states").aborted_between(from, upto)
    }

    /// Whether `producer_id` has a transaction open on this partition (as
    /// far as applied entries tell).
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        let states = self.group.producer_states();
        let states = states.read().expect("producer states");
        states.get(producer_id).is_some_and(|e| e.current_txn_first_offset().is_some())
    }
}
