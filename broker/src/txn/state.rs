//! One transactional id's state machine, as Kafka's `TransactionMetadata`
//! (Transactions V1): no I/O, no clock (times are arguments).
//!
//! Every change is two steps, as in Kafka: `prepare_*` checks the request
//! against the current state and returns the [`Transit`] to write (setting
//! `pending`, so a second operation meanwhile gets CONCURRENT_TRANSACTIONS);
//! once the record is committed, [`TxnMetadata::complete`] applies it, or
//! [`TxnMetadata::abort_transition`] forgets it if the write failed.
//!
//! ```text
//! Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
//!   ▲                        │  └───EndTxn(abort)───▶ PrepareAbort  ──markers──▶ CompleteAbort
//!   └──InitProducerId────────┼───────────────(from Empty / Complete*)──────────────────┘
//!                            └─InitProducerId / timeout─▶ PrepareEpochFence ─▶ PrepareAbort
//! Empty / Complete* ──expiry──▶ Dead (a tombstone; the id is forgotten)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError as E;

use super::records::TxnLogValue;

/// `RecordBatch.NO_PRODUCER_ID` / `NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Kafka's `TransactionState`, with its wire ids and names (DescribeTransactions
/// and ListTransactions show the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
        Self::PrepareEpochFence,
    ];

    /// The id stored in TransactionLogValue's `TransactionStatus`.
    pub fn id(self) -> i8 {
        match self {
            Self::Empty => 0,
            Self::Ongoing => 1,
            Self::PrepareCommit => 2,
            Self::PrepareAbort => 3,
            Self::CompleteCommit => 4,
            Self::CompleteAbort => 5,
            Self::Dead => 6,
            Self::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The states this one may be entered from (Kafka's `validPreviousStates`).
    fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether an idle id in this state may expire (no transaction open).
    pub fn expiration_allowed(self) -> bool {
        matches!(self, Self::Empty | Self::CompleteCommit | Self::CompleteAbort)
    }
}

/// Why an operation was refused; [`TxnError::code`] is Kafka's error for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// Retriable: another operation of this transaction is being written, or
    /// its markers are being written.
    #[error("a concurrent operation on the transaction is in progress")]
    ConcurrentTransactions,
    /// A newer producer with this transactional id has fenced this one.
    #[error("the producer epoch is fenced")]
    ProducerFenced,
    /// The producer id is not the one assigned to the transactional id.
    #[error("producer id is not the one of the transactional id")]
    InvalidProducerIdMapping,
    /// EndTxn that does not fit the state (commit after abort, nothing to end).
    #[error("cannot {} a transaction in state {}", if *.commit { "commit" } else { "abort" }, .state.name())]
    InvalidTxnState { state: TxnState, commit: bool },
    /// Zero, negative or above `transaction.max.timeout.ms`.
    #[error("transaction timeout {timeout_ms} ms is not within 1..={max_ms}")]
    InvalidTransactionTimeout { timeout_ms: i32, max_ms: i32 },
    /// A transition Kafka treats as a bug (it throws IllegalStateException).
    #[error("illegal transition: {0}")]
    IllegalTransition(String),
}

impl TxnError {
    pub fn code(&self) -> i16 {
        match self {
            Self::ConcurrentTransactions => E::ConcurrentTransactions.code(),
            Self::ProducerFenced => E::ProducerFenced.code(),
            Self::InvalidProducerIdMapping => E::InvalidProducerIdMapping.code(),
            Self::InvalidTxnState { .. } => E::InvalidTxnState.code(),
            Self::InvalidTransactionTimeout { .. } => E::InvalidTransactionTimeout.code(),
            Self::IllegalTransition(_) => E::UnknownServerError.code(),
        }
    }
}

/// InitProducerId's `transactionTimeoutMs` check.
pub fn validate_timeout(timeout_ms: i32, max_ms: i32) -> Result<(), TxnError> {
    if timeout_ms > 0 && timeout_ms <= max_ms { Ok(()) } else { Err(TxnError::InvalidTransactionTimeout { timeout_ms, max_ms }) }
}

/// Kafka keeps `i16::MAX` free so the coordinator can always fence once more.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// The state a write moves a transaction to (Kafka's `TxnTransitMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit {
    pub producer_id: i64,
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl Transit {
    /// The record value Kafka writes for it (value v0 carries no previous or next producer id).
    pub fn to_value(&self) -> TxnLogValue {
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &self.partitions {
            partitions.entry(topic.clone()).or_default().push(*p);
        }
        TxnLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            status: self.state.id(),
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
        }
    }
}

/// What InitProducerId does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Write this (Empty, epoch bumped) and answer its producer id and epoch.
    Bump(Transit),
    /// The epoch is spent: allocate a producer id and call [`TxnMetadata::prepare_rotation`].
    NewProducerId,
    /// An open transaction is aborted first, under a bumped epoch (the old
    /// producer is fenced); the client gets CONCURRENT_TRANSACTIONS and retries.
    Fence(Transit),
}

/// What EndTxn does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// A retry of an EndTxn that already completed: success, nothing to write.
    AlreadyDone,
    /// Write PrepareCommit/PrepareAbort; `epoch_fence` when it aborts for a fence.
    Write { transit: Transit, epoch_fence: bool },
}

/// One transactional id, owned by its coordinator shard and changed only
/// with the shard locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, for KIP-360 retries; not stored in the log.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    /// When the open transaction began (its first partition), -1 if none.
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// The state a write in flight will move to.
    pub pending: Option<TxnState>,
    /// An epoch fence whose write failed: the next fence does not bump again
    /// (the bumped epoch was never handed out).
    pub failed_epoch_fence: bool,
}

impl TxnMetadata {
    /// A new transactional id with its first producer id (InitProducerId bumps the epoch to 0).
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        Self {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            pending: None,
            failed_epoch_fence: false,
        }
    }

    /// As loaded from the log (Kafka's `readTxnRecordValue`); None for an
    /// unknown status, which Kafka's loader fails on.
    pub fn from_value(transactional_id: &str, v: &TxnLogValue) -> Option<Self> {
        let state = TxnState::from_id(v.status)?;
        let partitions = if state == TxnState::Empty {
            BTreeSet::new()
        } else {
            v.partitions.iter().flat_map(|(t, ids)| ids.iter().map(move |p| (t.clone(), *p))).collect()
        };
        Some(Self {
            transactional_id: transactional_id.to_string(),
            producer_id: v.producer_id,
            previous_producer_id: v.previous_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: v.timeout_ms,
            state,
            partitions,
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
            pending: None,
            failed_epoch_fence: false,
        })
    }

    /// InitProducerId (Kafka's `prepareInitProducerIdTransit`). `expected` is
    /// the producer id and epoch a v3+ client sends to resume (KIP-360).
    pub fn prepare_init(&mut self, timeout_ms: i32, expected: Option<(i64, i16)>, now_ms: i64) -> Result<InitStep, TxnError> {
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        // A resuming producer is fenced unless this id was just created, the
        // producer id is the current one (the epoch is checked below), or it
        // is a retry after a rotation whose answer was lost.
        let valid = |(pid, epoch): (i64, i16)| {
            self.producer_epoch == NO_PRODUCER_EPOCH
                || pid == self.producer_id
                || (pid == self.previous_producer_id && epoch_exhausted(epoch))
        };
        if !expected.is_none_or(valid) {
            return Err(TxnError::ProducerFenced);
        }
        match self.state {
            TxnState::PrepareAbort | TxnState::PrepareCommit => Err(TxnError::ConcurrentTransactions),
            TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => {
                if epoch_exhausted(self.producer_epoch) && expected.is_none_or(|(_, e)| e == self.producer_epoch) {
                    return Ok(InitStep::NewProducerId);
                }
                self.prepare_increment_epoch(timeout_ms, expected.map(|(_, e)| e), now_ms).map(InitStep::Bump)
            }
            // The fenced epoch is never returned: the client retries and bumps it once more.
            TxnState::Ongoing => self.prepare_fence().map(InitStep::Fence),
            TxnState::Dead | TxnState::PrepareEpochFence => {
                Err(TxnError::IllegalTransition(format!("InitProducerId found the transaction in {}", self.state.name())))
            }
        }
    }

    fn prepare_increment_epoch(&mut self, timeout_ms: i32, expected_epoch: Option<i16>, now_ms: i64) -> Result<Transit, TxnError> {
        if epoch_exhausted(self.producer_epoch) {
            return Err(TxnError::IllegalTransition(format!("producer id {} has no epochs left", self.producer_id)));
        }
        let bumped = self.producer_epoch + 1;
        let (epoch, last_epoch) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => (bumped, self.producer_epoch),
            // A retry of a bump that succeeded: answer the same epoch again.
            Some(e) if e == self.last_producer_epoch => (self.producer_epoch, self.last_producer_epoch),
            Some(_) => return Err(TxnError::ProducerFenced),
        };
        self.transition_to(TxnState::Empty, self.producer_id, epoch, last_epoch, timeout_ms, BTreeSet::new(), -1, now_ms)
    }

    /// A new producer id at epoch 0, for an id whose epochs are spent.
    pub fn prepare_rotation(
        &mut self,
        producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Result<Transit, TxnError> {
        if matches!(self.state, TxnState::Ongoing | TxnState::PrepareAbort | TxnState::PrepareCommit) {
            return Err(TxnError::IllegalTransition("cannot rotate producer ids while a transaction is open".into()));
        }
        let last = if record_last_epoch { self.producer_epoch } else { NO_PRODUCER_EPOCH };
        self.transition_to(TxnState::Empty, producer_id, 0, last, timeout_ms, BTreeSet::new(), -1, now_ms)
    }

    /// Bumps the epoch to fence the current producer before aborting its
    /// transaction (Kafka's `prepareFenceProducerEpoch`): InitProducerId of
    /// a new producer, or the transaction timed out.
    pub fn prepare_fence(&mut self) -> Result<Transit, TxnError> {
        if self.producer_epoch == i16::MAX {
            return Err(TxnError::IllegalTransition("cannot fence a producer at epoch i16::MAX".into()));
        }
        let epoch = if self.failed_epoch_fence { self.producer_epoch } else { self.producer_epoch + 1 };
        let partitions = self.partitions.clone();
        let (pid, timeout, start, updated) = (self.producer_id, self.timeout_ms, self.start_ms, self.last_update_ms);
        self.transition_to(TxnState::PrepareEpochFence, pid, epoch, NO_PRODUCER_EPOCH, timeout, partitions, start, updated)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn. `Ok(None)`: all already in the
    /// ongoing transaction, nothing to write.
    pub fn prepare_add_partitions(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        add: &BTreeSet<(String, i32)>,
        now_ms: i64,
    ) -> Result<Option<Transit>, TxnError> {
        if self.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.pending.is_some() || matches!(self.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(TxnError::ConcurrentTransactions);
        }
        if self.state == TxnState::Ongoing && add.is_subset(&self.partitions) {
            return Ok(None);
        }
        let start =
            if matches!(self.state, TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit) { now_ms } else { self.start_ms };
        let partitions = self.partitions.union(add).cloned().collect();
        let (pid, epoch, last, timeout) = (self.producer_id, self.producer_epoch, self.last_producer_epoch, self.timeout_ms);
        self.transition_to(TxnState::Ongoing, pid, epoch, last, timeout, partitions, start, now_ms).map(Some)
    }

    /// KIP-890 verification: whether each partition is in the ongoing
    /// transaction of this producer (0, else TRANSACTION_ABORTABLE).
    /// Pending writes are not looked at, as in Kafka: partitions join once
    /// their record is committed and leave when the markers are.
    pub fn verify(&self, producer_id: i64, producer_epoch: i16, partitions: &[(String, i32)]) -> Result<Vec<i16>, TxnError> {
        if self.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if matches!(self.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(partitions.iter().map(|p| if self.partitions.contains(p) { 0 } else { E::TransactionAbortable.code() }).collect())
    }

    /// EndTxn (Kafka's `endTransaction`, Transactions V1). `from_client` is
    /// false for the coordinator's own aborts (fence, timeout), which pass
    /// the bumped epoch.
    pub fn prepare_end(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        from_client: bool,
        now_ms: i64,
    ) -> Result<EndStep, TxnError> {
        let valid_epoch = (!from_client || producer_epoch == self.producer_epoch) && producer_epoch >= self.producer_epoch;
        let fencing = self.pending == Some(TxnState::PrepareEpochFence);
        if self.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.pending.is_some() && !fencing {
            return Err(TxnError::ConcurrentTransactions);
        }
        let invalid = || Err(TxnError::InvalidTxnState { state: self.state, commit });
        match self.state {
            TxnState::Ongoing => {
                let next = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                let epoch_fence = !commit && fencing;
                if epoch_fence {
                    // The fence becomes this abort, written under the bumped epoch.
                    self.pending = None;
                    self.producer_epoch = producer_epoch;
                    self.last_producer_epoch = NO_PRODUCER_EPOCH;
                }
                let partitions = self.partitions.clone();
                let (pid, epoch, last, timeout, start) =
                    (self.producer_id, self.producer_epoch, self.last_producer_epoch, self.timeout_ms, self.start_ms);
                let transit = self.transition_to(next, pid, epoch, last, timeout, partitions, start, now_ms)?;
                Ok(EndStep::Write { transit, epoch_fence })
            }
            TxnState::CompleteCommit if commit => Ok(EndStep::AlreadyDone),
            TxnState::CompleteAbort if !commit => Ok(EndStep::AlreadyDone),
            TxnState::PrepareCommit if commit => Err(TxnError::ConcurrentTransactions),
            TxnState::PrepareAbort if !commit => Err(TxnError::ConcurrentTransactions),
            TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::Empty => {
                invalid()
            }
            TxnState::Dead | TxnState::PrepareEpochFence => {
                Err(TxnError::IllegalTransition(format!("EndTxn found the transaction in {}", self.state.name())))
            }
        }
    }

    /// Every marker is written: PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort.
    pub fn prepare_complete(&mut self, now_ms: i64) -> Result<Transit, TxnError> {
        let next = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            other => return Err(TxnError::IllegalTransition(format!("no markers to complete in {}", other.name()))),
        };
        self.failed_epoch_fence = false;
        let (pid, epoch, timeout, start) = (self.producer_id, self.producer_epoch, self.timeout_ms, self.start_ms);
        self.transition_to(next, pid, epoch, epoch, timeout, BTreeSet::new(), start, now_ms)
    }

    /// Expiry of an idle id: a tombstone is written, then the id is forgotten.
    pub fn prepare_dead(&mut self) -> Result<Transit, TxnError> {
        let (pid, epoch, last, timeout, start, updated) =
            (self.producer_id, self.producer_epoch, self.last_producer_epoch, self.timeout_ms, self.start_ms, self.last_update_ms);
        self.transition_to(TxnState::Dead, pid, epoch, last, timeout, BTreeSet::new(), start, updated)
    }

    #[allow(clippy::too_many_arguments)] // Kafka's prepareTransitionTo, field by field
    fn transition_to(
        &mut self,
        state: TxnState,
        producer_id: i64,
        producer_epoch: i16,
        last_producer_epoch: i16,
        timeout_ms: i32,
        partitions: BTreeSet<(String, i32)>,
        start_ms: i64,
        last_update_ms: i64,
    ) -> Result<Transit, TxnError> {
        if let Some(pending) = self.pending {
            return Err(TxnError::IllegalTransition(format!("to {} while {} is pending", state.name(), pending.name())));
        }
        if producer_id < 0 || (state != TxnState::Dead && producer_epoch < 0) {
            return Err(TxnError::IllegalTransition(format!("to producer id {producer_id} epoch {producer_epoch}")));
        }
        if !state.valid_previous().contains(&self.state) {
            return Err(TxnError::IllegalTransition(format!("from {} to {}", self.state.name(), state.name())));
        }
        self.pending = Some(state);
        Ok(Transit {
            producer_id,
            previous_producer_id: self.producer_id,
            producer_epoch,
            last_producer_epoch,
            timeout_ms,
            state,
            partitions,
            start_ms,
            last_update_ms,
        })
    }

    /// Applies a committed transit (Kafka's `completeTransitionTo`, with its
    /// checks that the log and the state agree). Dead is not applied: the
    /// coordinator forgets the id instead.
    pub fn complete(&mut self, t: &Transit) -> Result<(), TxnError> {
        let illegal = |why: &str| Err(TxnError::IllegalTransition(format!("completing {}: {why}", t.state.name())));
        if self.pending != Some(t.state) {
            return illegal("not the pending state");
        }
        let same_epoch = t.producer_epoch == self.producer_epoch && t.producer_id == self.producer_id;
        match t.state {
            TxnState::Empty => {
                let bump =
                    t.producer_epoch == self.producer_epoch.wrapping_add(1) || (t.producer_epoch == 0 && t.producer_id != self.producer_id);
                if (t.producer_epoch != self.producer_epoch && !bump) || !t.partitions.is_empty() || t.start_ms != -1 {
                    return illegal("not an epoch bump of an empty transaction");
                }
                self.timeout_ms = t.timeout_ms;
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.producer_id = t.producer_id;
                self.previous_producer_id = t.previous_producer_id;
            }
            TxnState::Ongoing => {
                if !same_epoch || !self.partitions.is_subset(&t.partitions) || self.timeout_ms != t.timeout_ms {
                    return illegal("producer, partitions or timeout changed");
                }
                self.start_ms = t.start_ms;
                self.partitions = t.partitions.clone();
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                if !same_epoch || self.partitions != t.partitions || self.timeout_ms != t.timeout_ms || self.start_ms != t.start_ms {
                    return illegal("producer, partitions, timeout or start changed");
                }
            }
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                if !same_epoch || self.timeout_ms != t.timeout_ms || t.start_ms == -1 {
                    return illegal("producer or timeout changed");
                }
                self.start_ms = t.start_ms;
                self.partitions.clear();
            }
            TxnState::PrepareEpochFence | TxnState::Dead => return illegal("never completed"),
        }
        self.last_update_ms = t.last_update_ms;
        self.pending = None;
        self.state = t.state;
        Ok(())
    }

    /// The write of a prepared transit failed: nothing changes. A failed
    /// fence is remembered so the next one does not bump the epoch again.
    pub fn abort_transition(&mut self, epoch_fence: bool) {
        self.pending = None;
        if epoch_fence {
            self.failed_epoch_fence = true;
        }
    }

    /// Kafka's `timedOutTransactions`: open for longer than its timeout, and not being changed.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.pending.is_none() && self.state == TxnState::Ongoing && self.start_ms.saturating_add(i64::from(self.timeout_ms)) < now_ms
    }

    /// Kafka's `shouldExpire`: idle for `transactional.id.expiration.ms` with no transaction open.
    pub fn should_expire(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.pending.is_none() && self.state.expiration_allowed() && self.last_update_ms <= now_ms.saturating_sub(expiration_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: i64 = 1000;
    const T: i32 = 60_000;

    fn parts(list: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    /// Applies a prepared transit, as a committed write does.
    fn commit(m: &mut TxnMetadata, t: Transit) {
        m.complete(&t).unwrap();
    }

    /// A transactional id initialized at epoch 0.
    fn initialized() -> TxnMetadata {
        let mut m = TxnMetadata::new("t", PID, T, 10);
        let InitStep::Bump(t) = m.prepare_init(T, None, 20).unwrap() else { panic!("expected a bump") };
        assert_eq!((t.producer_id, t.producer_epoch, t.state), (PID, 0, TxnState::Empty));
        commit(&mut m, t);
        m
    }

    fn ongoing(list: &[(&str, i32)]) -> TxnMetadata {
        let mut m = initialized();
        let t = m.prepare_add_partitions(PID, 0, &parts(list), 100).unwrap().unwrap();
        commit(&mut m, t);
        m
    }

    #[test]
    fn ids_and_names_are_kafkas() {
        let expected = [
            (0, "Empty"),
            (1, "Ongoing"),
            (2, "PrepareCommit"),
            (3, "PrepareAbort"),
            (4, "CompleteCommit"),
            (5, "CompleteAbort"),
            (6, "Dead"),
            (7, "PrepareEpochFence"),
        ];
        for (id, name) in expected {
            let s = TxnState::from_id(id).unwrap();
            assert_eq!((s.id(), s.name(), TxnState::from_name(name)), (id, name, Some(s)));
        }
        assert_eq!(TxnState::from_id(8), None);
    }

    #[test]
    fn timeout_is_bounded() {
        assert!(validate_timeout(60_000, 900_000).is_ok());
        assert!(validate_timeout(900_000, 900_000).is_ok());
        for bad in [0, -1, 900_001] {
            assert_eq!(validate_timeout(bad, 900_000).unwrap_err().code(), E::InvalidTransactionTimeout.code());
        }
    }

    #[test]
    fn full_commit_cycle() {
        let mut m = ongoing(&[("a", 0)]);
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 100));
        // Adding more keeps the start time.
        let t = m.prepare_add_partitions(PID, 0, &parts(&[("b", 1)]), 150).unwrap().unwrap();
        assert_eq!(t.start_ms, 100);
        commit(&mut m, t);
        assert_eq!(m.partitions, parts(&[("a", 0), ("b", 1)]));
        // Already there: nothing to write.
        assert_eq!(m.prepare_add_partitions(PID, 0, &parts(&[("a", 0)]), 160), Ok(None));
        let EndStep::Write { transit, epoch_fence } = m.prepare_end(PID, 0, true, true, 200).unwrap() else { panic!() };
        assert!(!epoch_fence);
        assert_eq!((transit.state, transit.partitions.len()), (TxnState::PrepareCommit, 2));
        commit(&mut m, transit);
        let t = m.prepare_complete(300).unwrap();
        assert_eq!(t.state, TxnState::CompleteCommit);
        commit(&mut m, t);
        assert_eq!((m.state, m.partitions.len(), m.producer_epoch), (TxnState::CompleteCommit, 0, 0));
        // A retried EndTxn(commit) succeeds; an abort now is invalid.
        assert_eq!(m.prepare_end(PID, 0, true, true, 310), Ok(EndStep::AlreadyDone));
        assert_eq!(m.prepare_end(PID, 0, false, true, 310).unwrap_err().code(), E::InvalidTxnState.code());
        // The next transaction starts from CompleteCommit with a new start time.
        let t = m.prepare_add_partitions(PID, 0, &parts(&[("c", 0)]), 400).unwrap().unwrap();
        assert_eq!((t.start_ms, t.partitions), (400, parts(&[("c", 0)])));
    }

    #[test]
    fn abort_cycle_and_invalid_states() {
        let mut m = initialized();
        // Nothing to end in Empty.
        assert_eq!(m.prepare_end(PID, 0, true, true, 1).unwrap_err().code(), E::InvalidTxnState.code());
        let mut m2 = ongoing(&[("a", 0)]);
        let EndStep::Write { transit, .. } = m2.prepare_end(PID, 0, false, true, 200).unwrap() else { panic!() };
        commit(&mut m2, transit);
        // While markers are written: the same result is CONCURRENT_TRANSACTIONS, the other INVALID_TXN_STATE.
        assert_eq!(m2.prepare_end(PID, 0, false, true, 210).unwrap_err(), TxnError::ConcurrentTransactions);
        assert_eq!(m2.prepare_end(PID, 0, true, true, 210).unwrap_err().code(), E::InvalidTxnState.code());
        assert_eq!(m2.prepare_add_partitions(PID, 0, &parts(&[("b", 0)]), 210).unwrap_err(), TxnError::ConcurrentTransactions);
        assert_eq!(m2.prepare_init(T, None, 210).unwrap_err(), TxnError::ConcurrentTransactions);
        let t = m2.prepare_complete(300).unwrap();
        commit(&mut m2, t);
        assert_eq!(m2.state, TxnState::CompleteAbort);
        m.abort_transition(false);
    }

    #[test]
    fn producer_checks() {
        let mut m = ongoing(&[("a", 0)]);
        assert_eq!(m.prepare_add_partitions(PID + 1, 0, &parts(&[("b", 0)]), 1), Err(TxnError::InvalidProducerIdMapping));
        assert_eq!(m.prepare_add_partitions(PID, 1, &parts(&[("b", 0)]), 1), Err(TxnError::ProducerFenced));
        assert_eq!(m.prepare_end(PID + 1, 0, true, true, 1), Err(TxnError::InvalidProducerIdMapping));
        assert_eq!(m.prepare_end(PID, 1, true, true, 1), Err(TxnError::ProducerFenced));
        assert_eq!(TxnError::ProducerFenced.code(), E::ProducerFenced.code());
        assert_eq!(TxnError::InvalidProducerIdMapping.code(), E::InvalidProducerIdMapping.code());
    }

    #[test]
    fn a_pending_write_blocks_other_operations() {
        let mut m = initialized();
        let _t = m.prepare_add_partitions(PID, 0, &parts(&[("a", 0)]), 1).unwrap().unwrap();
        assert_eq!(m.pending, Some(TxnState::Ongoing));
        assert_eq!(m.prepare_add_partitions(PID, 0, &parts(&[("b", 0)]), 1), Err(TxnError::ConcurrentTransactions));
        assert_eq!(m.prepare_end(PID, 0, true, true, 1), Err(TxnError::ConcurrentTransactions));
        assert_eq!(m.prepare_init(T, None, 1), Err(TxnError::ConcurrentTransactions));
        // The write failed: the state is as before and operations go on.
        m.abort_transition(false);
        assert_eq!((m.state, m.pending), (TxnState::Empty, None));
        assert!(m.prepare_add_partitions(PID, 0, &parts(&[("b", 0)]), 1).unwrap().is_some());
    }

    #[test]
    fn init_bumps_the_epoch_each_time() {
        let mut m = initialized();
        for expected in 1..4 {
            let InitStep::Bump(t) = m.prepare_init(30_000, None, 50).unwrap() else { panic!() };
            assert_eq!((t.producer_epoch, t.last_producer_epoch, t.timeout_ms), (expected, NO_PRODUCER_EPOCH, 30_000));
            commit(&mut m, t);
        }
        assert_eq!((m.producer_epoch, m.timeout_ms), (3, 30_000));
    }

    /// KIP-360: a producer resuming with its id and epoch gets the next epoch;
    /// a retry of that gets the same answer; an older epoch is fenced.
    #[test]
    fn init_resume_and_retry() {
        let mut m = initialized();
        let InitStep::Bump(t) = m.prepare_init(T, Some((PID, 0)), 50).unwrap() else { panic!() };
        assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0));
        commit(&mut m, t);
        let InitStep::Bump(t) = m.prepare_init(T, Some((PID, 0)), 60).unwrap() else { panic!() };
        assert_eq!(t.producer_epoch, 1, "a retry gets the epoch it was given");
        commit(&mut m, t);
        // A new producer (no expected epoch) bumps and forgets the last epoch …
        let InitStep::Bump(t) = m.prepare_init(T, None, 70).unwrap() else { panic!() };
        commit(&mut m, t);
        // … so the old one resuming is fenced, as is another producer id.
        assert_eq!(m.prepare_init(T, Some((PID, 0)), 80), Err(TxnError::ProducerFenced));
        assert_eq!(m.prepare_init(T, Some((PID + 7, 2)), 80), Err(TxnError::ProducerFenced));
    }

    #[test]
    fn init_on_an_open_transaction_fences_and_aborts() {
        let mut m = ongoing(&[("a", 0)]);
        let InitStep::Fence(fence) = m.prepare_init(T, None, 500).unwrap() else { panic!("expected a fence") };
        assert_eq!((fence.state, fence.producer_epoch), (TxnState::PrepareEpochFence, 1));
        assert_eq!(m.pending, Some(TxnState::PrepareEpochFence));
        // The coordinator's abort, under the bumped epoch.
        let EndStep::Write { transit, epoch_fence } = m.prepare_end(PID, fence.producer_epoch, false, false, 510).unwrap() else {
            panic!()
        };
        assert!(epoch_fence);
        assert_eq!((transit.state, transit.producer_epoch, transit.partitions.clone()), (TxnState::PrepareAbort, 1, parts(&[("a", 0)])));
        // The old producer is fenced at once.
        assert_eq!(m.producer_epoch, 1);
        commit(&mut m, transit);
        assert_eq!(m.prepare_end(PID, 0, true, true, 520), Err(TxnError::ProducerFenced));
        let t = m.prepare_complete(600).unwrap();
        commit(&mut m, t);
        // The new producer's retry now gets epoch 2.
        let InitStep::Bump(t) = m.prepare_init(T, None, 700).unwrap() else { panic!() };
        assert_eq!(t.producer_epoch, 2);
    }

    /// A fence whose abort was not written does not bump twice.
    #[test]
    fn failed_fence_is_not_bumped_again() {
        let mut m = ongoing(&[("a", 0)]);
        let InitStep::Fence(fence) = m.prepare_init(T, None, 500).unwrap() else { panic!() };
        let EndStep::Write { epoch_fence, .. } = m.prepare_end(PID, fence.producer_epoch, false, false, 510).unwrap() else { panic!() };
        m.abort_transition(epoch_fence);
        assert!(m.failed_epoch_fence);
        assert_eq!((m.state, m.producer_epoch), (TxnState::Ongoing, 1));
        let fence = m.prepare_fence().unwrap();
        assert_eq!(fence.producer_epoch, 1);
    }

    #[test]
    fn exhausted_epoch_rotates_the_producer_id() {
        let mut m = initialized();
        m.producer_epoch = i16::MAX - 1;
        assert_eq!(m.prepare_init(T, None, 1), Ok(InitStep::NewProducerId));
        let t = m.prepare_rotation(PID + 1, T, 2, false).unwrap();
        assert_eq!((t.producer_id, t.producer_epoch, t.previous_producer_id), (PID + 1, 0, PID));
        commit(&mut m, t);
        assert_eq!((m.producer_id, m.producer_epoch, m.previous_producer_id), (PID + 1, 0, PID));
        // A producer resuming at the exhausted epoch (KIP-360) rotates too, and its
        // retry with the old id is answered with the new one, not fenced.
        let mut r = initialized();
        r.producer_epoch = i16::MAX - 1;
        assert_eq!(r.prepare_init(T, Some((PID, i16::MAX - 1)), 1), Ok(InitStep::NewProducerId));
        let t = r.prepare_rotation(PID + 1, T, 2, true).unwrap();
        commit(&mut r, t);
        let InitStep::Bump(t) = r.prepare_init(T, Some((PID, i16::MAX - 1)), 3).unwrap() else { panic!() };
        assert_eq!((t.producer_id, t.producer_epoch), (PID + 1, 0));
        r.abort_transition(false);
        // Any other epoch of the old id is fenced.
        assert_eq!(r.prepare_init(T, Some((PID, 5)), 3), Err(TxnError::ProducerFenced));
    }

    #[test]
    fn verify_partitions() {
        let m = ongoing(&[("a", 0)]);
        assert_eq!(m.verify(PID, 0, &[("a".into(), 0), ("a".into(), 1)]), Ok(vec![0, E::TransactionAbortable.code()]));
        assert_eq!(m.verify(PID, 1, &[("a".into(), 0)]), Err(TxnError::ProducerFenced));
        assert_eq!(m.verify(PID + 1, 0, &[("a".into(), 0)]), Err(TxnError::InvalidProducerIdMapping));
        let mut p = m.clone();
        let EndStep::Write { transit, .. } = p.prepare_end(PID, 0, true, true, 1).unwrap() else { panic!() };
        commit(&mut p, transit);
        assert_eq!(p.verify(PID, 0, &[("a".into(), 0)]), Err(TxnError::ConcurrentTransactions));
    }

    #[test]
    fn timeouts_and_expiry() {
        let m = ongoing(&[("a", 0)]);
        assert!(!m.timed_out(100 + i64::from(T)));
        assert!(m.timed_out(101 + i64::from(T)));
        assert!(!m.should_expire(i64::MAX, 1), "an open transaction never expires");
        let idle = initialized();
        assert!(!idle.should_expire(20 + 999, 1000));
        assert!(idle.should_expire(20 + 1000, 1000));
        let mut dead = idle.clone();
        let t = dead.prepare_dead().unwrap();
        assert_eq!(t.state, TxnState::Dead);
        assert!(dead.complete(&t).is_err(), "Dead is forgotten, never applied");
    }

    #[test]
    fn illegal_transitions_are_errors() {
        let mut m = initialized();
        assert!(matches!(m.prepare_complete(1), Err(TxnError::IllegalTransition(_))));
        assert!(matches!(m.prepare_fence(), Err(TxnError::IllegalTransition(_))));
        let mut o = ongoing(&[("a", 0)]);
        assert!(matches!(o.prepare_dead(), Err(TxnError::IllegalTransition(_))));
        assert!(matches!(o.prepare_rotation(5, T, 1, false), Err(TxnError::IllegalTransition(_))));
        // A transit that does not match the pending state is refused.
        let t = o.prepare_add_partitions(PID, 0, &parts(&[("b", 0)]), 1).unwrap().unwrap();
        let wrong = Transit { state: TxnState::PrepareCommit, ..t };
        assert!(o.complete(&wrong).is_err());
    }

    #[test]
    fn stored_values_round_trip() {
        let m = ongoing(&[("a", 0), ("a", 2), ("b", 1)]);
        let mut copy = m.clone();
        let EndStep::Write { transit, .. } = copy.prepare_end(PID, 0, true, true, 5).unwrap() else { panic!() };
        let v = transit.to_value();
        assert_eq!(v.partitions, BTreeMap::from([("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])]));
        let loaded = TxnMetadata::from_value("t", &v).unwrap();
        assert_eq!((loaded.state, loaded.partitions, loaded.producer_epoch), (TxnState::PrepareCommit, m.partitions, 0));
        assert_eq!(TxnMetadata::from_value("t", &TxnLogValue { status: 9, ..v }), None);
    }
}
