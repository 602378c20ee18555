//! Idempotent producers between check and apply. The state machine's
//! producer states know only applied batches; with up to five requests in
//! flight per producer, a batch is checked while earlier ones are still on
//! their way through raft. The sequencer remembers those, so a batch is
//! checked against the producer's last *proposed* batch, and a retry of a
//! batch still in flight waits for that batch's outcome instead of being
//! written twice.

use std::collections::{HashMap, VecDeque};

use fjord_raft::producer_state::{Outcome, ProducerBatch, ProducerStates, in_sequence};
use tokio::sync::watch;

/// What became of a proposed batch: its base offset, or the error code.
pub type BatchOutcome = Option<Result<i64, i16>>;

/// A proposed, not yet applied batch of an idempotent producer.
struct InFlight {
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    /// Becomes `Some` when the batch is applied or fails.
    outcome: watch::Receiver<BatchOutcome>,
    token: u64,
}

/// What to do with an incoming idempotent batch.
pub enum Verdict {
    /// Propose it, then report its outcome through the sender.
    Propose { token: u64, outcome: watch::Sender<BatchOutcome> },
    /// A retry of a batch still in flight: wait for the original.
    Wait(watch::Receiver<BatchOutcome>),
    /// Decided by the applied state (duplicate of an applied batch, or an error).
    Applied(Outcome),
}

/// Owned by one partition, behind its sequencer lock.
#[derive(Default)]
pub struct Sequencer {
    in_flight: HashMap<i64, VecDeque<InFlight>>,
    next_token: u64,
}

impl Sequencer {
    /// Kafka's checks for `b`, against in-flight batches first, then the
    /// applied producer state.
    pub fn check(&mut self, b: &ProducerBatch, applied: &ProducerStates) -> Verdict {
        let queue = self.in_flight.entry(b.producer_id).or_default();
        if let Some(dup) = queue.iter().find(|f| f.epoch == b.epoch && f.first_seq == b.first_seq && f.last_seq == b.last_seq) {
            return Verdict::Wait(dup.outcome.clone());
        }
        let committed = applied.check(b.producer_id, b.epoch, b.first_seq, b.last_seq);
        if let Outcome::Duplicate(_) = committed {
            return Verdict::Applied(committed);
        }
        if let Some(last) = queue.back() {
            if b.epoch < last.epoch {
                return Verdict::Applied(Outcome::InvalidProducerEpoch { epoch: b.epoch, stored_epoch: last.epoch });
            }
            let ok = if b.epoch > last.epoch { b.first_seq == 0 } else { in_sequence(last.last_seq, b.first_seq) };
            if !ok {
                return Verdict::Applied(Outcome::OutOfOrderSequence {
                    epoch: b.epoch,
                    first_seq: b.first_seq,
                    stored_epoch: last.epoch,
                    stored_last_seq: last.last_seq,
                });
            }
        } else if committed != Outcome::Accept {
            return Verdict::Applied(committed);
        }
        let (tx, rx) = watch::channel(None);
        self.next_token += 1;
        let token = self.next_token;
        queue.push_back(InFlight { epoch: b.epoch, first_seq: b.first_seq, last_seq: b.last_seq, outcome: rx, token });
        Verdict::Propose { token, outcome: tx }
    }

    /// Forgets a batch once it is applied or failed.
    pub fn finish(&mut self, producer_id: i64, token: u64) {
        if let Some(q) = self.in_flight.get_mut(&producer_id) {
            q.retain(|f| f.token != token);
            if q.is_empty() {
                self.in_flight.remove(&producer_id);
            }
        }
    }

    /// Batches in flight, for tests and metrics.
    pub fn len(&self) -> usize {
        self.in_flight.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, first: i32, n: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: 7,
            epoch,
            first_seq: first,
            last_seq: first + n - 1,
            last_offset_delta: n - 1,
            max_timestamp_ms: 0,
            is_control: false,
            is_transactional: false,
            marker: None,
        }
    }

    #[test]
    fn pipelined_batches_are_checked_against_those_in_flight() {
        let applied = ProducerStates::default();
        let mut s = Sequencer::default();
        let Verdict::Propose { token: t1, .. } = s.check(&batch(0, 0, 5), &applied) else { panic!("first") };
        assert!(matches!(s.check(&batch(0, 5, 5), &applied), Verdict::Propose { .. }));
        // A retry of the first waits for it rather than being written twice.
        assert!(matches!(s.check(&batch(0, 0, 5), &applied), Verdict::Wait(_)));
        // A gap after the last in-flight batch.
        assert!(matches!(s.check(&batch(0, 20, 1), &applied), Verdict::Applied(Outcome::OutOfOrderSequence { .. })));
        // An older epoch.
        assert!(matches!(s.check(&batch(-1, 10, 1), &applied), Verdict::Applied(Outcome::InvalidProducerEpoch { .. })));
        // A bumped epoch restarts at 0.
        assert!(matches!(s.check(&batch(1, 3, 1), &applied), Verdict::Applied(Outcome::OutOfOrderSequence { .. })));
        assert!(matches!(s.check(&batch(1, 0, 1), &applied), Verdict::Propose { .. }));
        assert_eq!(s.len(), 3);
        s.finish(7, t1);
        assert_eq!(s.len(), 2);
    }
}
