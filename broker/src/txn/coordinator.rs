//! The transaction coordinator: one shard per `__transaction_state`
//! partition this broker leads. A shard's transactional ids live in memory
//! behind one lock; a record is appended with the shard locked (so records
//! reach the log in the order the state changed), the lock is released
//! while the commit is awaited, and the state is applied once committed
//! (Kafka's `TransactionStateManager.appendTransactionToLog`). A shard is
//! rebuilt from the log whenever this broker becomes its leader (the leader
//! epoch, which is also the coordinator epoch markers carry, changes).
//!
//! Owned by the [`Broker`]; [`TxnCoordinator::run`] is its background task.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use fjord_storage::batch::BatchHeader;
use kafka_protocol::ResponseError as E;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::records::{self, TxnLogValue};
use super::state::{Transit, TxnMetadata, TxnState};
use crate::Broker;
use crate::config::BrokerConfig;
use crate::group::coordinator::write_error_code;
use crate::metadata::MetadataStore;
use crate::metadata::store::now_ms;
use crate::partition::append::{Acks, AppendWait};
use crate::partition::markers::TxnMarker;
use crate::partition::{Partition, PartitionManager};
use crate::protocol::records::{batch_records, build_keyed_batch};

pub const TXN_TOPIC: &str = "__transaction_state";

/// How often newly led partitions are loaded and lost ones dropped.
const TICK: Duration = Duration::from_millis(250);
/// How long loading waits for the previous leader's records to commit.
const LOAD_WAIT: Duration = Duration::from_secs(5);
/// Bounds of the wait for a record's commit (Kafka waits the transaction's timeout).
const WRITE_TIMEOUT_MIN: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// Expiry tombstones per batch, well below `max.message.bytes` for ordinary ids.
const TOMBSTONES_PER_BATCH: usize = 500;

pub struct ShardState {
    /// The leader epoch the shard was loaded at: the coordinator epoch.
    loaded_epoch: Option<i32>,
    pub txns: HashMap<String, TxnMetadata>,
}

pub struct Shard {
    pub index: i32,
    pub partition: Arc<Partition>,
    state: Arc<tokio::sync::Mutex<ShardState>>,
}

/// A shard locked for one operation, loaded at `epoch`.
pub struct Locked {
    pub shard: Arc<Shard>,
    pub state: OwnedMutexGuard<ShardState>,
    pub epoch: i32,
}

pub struct TxnCoordinator {
    pub config: Arc<BrokerConfig>,
    partitions: Arc<PartitionManager>,
    metadata: Arc<MetadataStore>,
    shards: Mutex<HashMap<i32, Arc<Shard>>>,
    /// Set once the broker exists: producer ids and markers need it.
    broker: OnceLock<Weak<Broker>>,
}

impl TxnCoordinator {
    pub fn new(config: Arc<BrokerConfig>, partitions: Arc<PartitionManager>, metadata: Arc<MetadataStore>) -> Arc<Self> {
        Arc::new(Self { config, partitions, metadata, shards: Mutex::new(HashMap::new()), broker: OnceLock::new() })
    }

    /// Called once by [`Broker::start`], before any request is served.
    pub fn attach(&self, broker: &Arc<Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }

    pub(super) fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.get().and_then(Weak::upgrade)
    }

    /// The number of `__transaction_state` partitions, if the topic exists.
    pub fn partition_count(&self) -> Option<i32> {
        self.metadata.image().topic(TXN_TOPIC).map(|t| t.partition_count())
    }

    /// The `__transaction_state` partition of `transactional_id` (Kafka's
    /// `partitionFor`, the same Java string hash as groups).
    pub fn partition_of(&self, transactional_id: &str) -> Option<i32> {
        self.partition_count().map(|n| crate::group::coordinator::partition_for(transactional_id, n))
    }

    /// Locks the shard of `transactional_id`, loading it first if this
    /// broker has just become its leader. NOT_COORDINATOR when it does not
    /// lead that partition, COORDINATOR_LOAD_IN_PROGRESS while loading lasts.
    pub async fn lock(self: &Arc<Self>, transactional_id: &str) -> Result<Locked, i16> {
        let index = self.partition_of(transactional_id).ok_or(E::NotCoordinator.code())?;
        self.lock_shard(index).await
    }

    pub async fn lock_shard(self: &Arc<Self>, index: i32) -> Result<Locked, i16> {
        let partition = self.partitions.get(TXN_TOPIC, index).ok_or(E::NotCoordinator.code())?;
        if !partition.is_leader() {
            return Err(E::NotCoordinator.code());
        }
        let shard = {
            let mut shards = self.shards.lock().expect("shards lock");
            let current = shards.get(&index).filter(|s| Arc::ptr_eq(&s.partition, &partition)).cloned();
            current.unwrap_or_else(|| {
                let state = ShardState { loaded_epoch: None, txns: HashMap::new() };
                let shard = Arc::new(Shard { index, partition: Arc::clone(&partition), state: Arc::new(tokio::sync::Mutex::new(state)) });
                shards.insert(index, Arc::clone(&shard));
                shard
            })
        };
        let mut state = Arc::clone(&shard.state).lock_owned().await;
        let epoch = shard.partition.leader_epoch();
        if state.loaded_epoch != Some(epoch) {
            state.loaded_epoch = None;
            load(&shard.partition, &mut state).await?;
            state.loaded_epoch = Some(epoch);
            self.resume_markers(&shard, &state, epoch);
        }
        Ok(Locked { shard, state, epoch })
    }

    /// Kafka's loader completes every transaction it finds between its
    /// Prepare record and its Complete record: the markers are sent again
    /// (a partition that has one already takes a second harmlessly).
    fn resume_markers(self: &Arc<Self>, shard: &Arc<Shard>, state: &ShardState, epoch: i32) {
        for meta in state.txns.values() {
            let commit = match meta.state {
                TxnState::PrepareCommit => true,
                TxnState::PrepareAbort => false,
                _ => continue,
            };
            tracing::info!(transactional_id = meta.transactional_id, commit, "resuming the transaction's markers after loading");
            let marker = TxnMarker { producer_id: meta.producer_id, producer_epoch: meta.producer_epoch, commit, coordinator_epoch: epoch };
            self.spawn_markers(Arc::clone(shard), epoch, meta.transactional_id.clone(), marker, meta.partitions.clone());
        }
    }

    /// The `__transaction_state` partitions this broker leads now.
    pub fn led_partitions(&self) -> Vec<i32> {
        let Some(n) = self.partition_count() else { return Vec::new() };
        (0..n).filter(|&i| self.partitions.get(TXN_TOPIC, i).is_some_and(|p| p.is_leader())).collect()
    }

    /// Appends the record of one transactional id; call with the shard
    /// locked. The returned future waits for the commit.
    async fn propose(&self, shard: &Shard, records: &[(String, Option<TxnLogValue>)], timeout_ms: i32) -> Result<AppendWait, i16> {
        if !records.iter().all(|(id, v)| records::fits(id, v.as_ref())) {
            return Err(E::InvalidRequest.code());
        }
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = records.iter().map(|(id, v)| records::encode(id, v.as_ref())).collect();
        let batch = build_keyed_batch(&encoded, now_ms());
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64).clamp(WRITE_TIMEOUT_MIN, WRITE_TIMEOUT_MAX);
        shard.partition.append(Bytes::from(batch), Acks::All, timeout).await.map_err(|e| write_error_code(&e))
    }

    /// Writes `transit` (prepared on `transactional_id`'s metadata in
    /// `locked`) and applies it once committed. The lock is released while
    /// the commit is awaited. A failed write leaves the state as it was
    /// (`epoch_fence`: remembered as a failed fence). NOT_COORDINATOR if the
    /// shard was reloaded meanwhile.
    pub async fn write(&self, locked: Locked, transactional_id: &str, transit: Transit, epoch_fence: bool) -> Result<(), i16> {
        let Locked { shard, mut state, epoch } = locked;
        debug_assert!(state.txns.get(transactional_id).is_some_and(|m| m.pending == Some(transit.state)));
        // Dead is written as a tombstone by `expire`, never through here.
        debug_assert!(transit.state != TxnState::Dead);
        let value = Some(transit.to_value());
        let proposed = self.propose(&shard, &[(transactional_id.to_string(), value)], transit.timeout_ms).await;
        let wait = match proposed {
            Ok(wait) => wait,
            Err(code) => {
                if let Some(meta) = state.txns.get_mut(transactional_id) {
                    meta.abort_transition(epoch_fence);
                }
                return Err(code);
            }
        };
        drop(state);
        let committed = wait.await.map(|_| ()).map_err(|e| write_error_code(&e));
        let mut state = shard.state.lock().await;
        if state.loaded_epoch != Some(epoch) {
            return Err(E::NotCoordinator.code());
        }
        let Some(meta) = state.txns.get_mut(transactional_id) else { return Err(E::NotCoordinator.code()) };
        match committed {
            Ok(()) => meta.complete(&transit).map_err(|e| {
                tracing::error!(transactional_id, "the transaction log and its state disagree: {e}");
                e.code()
            }),
            Err(code) => {
                tracing::info!(transactional_id, code, to = transit.state.name(), "transaction state not written");
                meta.abort_transition(epoch_fence);
                Err(code)
            }
        }
    }

    /// Tombstones for idle ids (Kafka's `removeExpiredTransactionalIds`):
    /// written in batches; an id is forgotten once its tombstone is committed
    /// and nothing touched it meanwhile.
    async fn expire(self: &Arc<Self>, index: i32, now_ms: i64) {
        let expiration_ms = self.config.transactions.id_expiration_ms;
        let Ok(mut locked) = self.lock_shard(index).await else { return };
        let mut expired: Vec<(String, i16)> = Vec::new();
        for meta in locked.state.txns.values_mut() {
            if expired.len() < TOMBSTONES_PER_BATCH && meta.should_expire(now_ms, expiration_ms) && meta.prepare_dead().is_ok() {
                expired.push((meta.transactional_id.clone(), meta.producer_epoch));
            }
        }
        if expired.is_empty() {
            return;
        }
        let records: Vec<(String, Option<TxnLogValue>)> = expired.iter().map(|(id, _)| (id.clone(), None)).collect();
        let proposed = self.propose(&locked.shard, &records, 0).await;
        let Locked { shard, state, epoch } = locked;
        drop(state);
        let committed = match proposed {
            Ok(wait) => wait.await.is_ok(),
            Err(_) => false,
        };
        let mut state = shard.state.lock().await;
        if state.loaded_epoch != Some(epoch) {
            return;
        }
        for (id, epoch) in &expired {
            let Some(meta) = state.txns.get_mut(id) else { continue };
            if committed && meta.pending == Some(TxnState::Dead) && meta.producer_epoch == *epoch {
                state.txns.remove(id);
            } else {
                meta.abort_transition(false);
            }
        }
        tracing::info!(partition = index, ids = expired.len(), committed, "expired idle transactional ids");
    }

    /// Loads what this broker has come to lead (resuming markers), aborts
    /// timed-out transactions every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, expires
    /// idle ids every `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub async fn run(self: Arc<Self>) {
        let cfg = &self.config.transactions;
        let abort_every = Duration::from_millis(cfg.abort_timed_out_interval_ms.max(1) as u64);
        let expire_every = Duration::from_millis(cfg.remove_expired_interval_ms.max(1) as u64);
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut next_abort, mut next_expire) = (Instant::now() + abort_every, Instant::now() + expire_every);
        loop {
            ticker.tick().await;
            let now = Instant::now();
            let abort = now >= next_abort;
            if abort {
                next_abort = now + abort_every;
            }
            let expire = now >= next_expire;
            if expire {
                next_expire = now + expire_every;
            }
            for index in self.led_partitions() {
                if self.lock_shard(index).await.is_err() {
                    continue;
                }
                if abort {
                    self.abort_timed_out(index, now_ms()).await;
                }
                if expire {
                    self.expire(index, now_ms()).await;
                }
            }
            self.unload_lost().await;
        }
    }

    /// Kafka's `abortTimedOutTransactions`: each transaction open longer
    /// than its timeout is aborted under a bumped epoch, so its producer is
    /// fenced (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH from then on).
    async fn abort_timed_out(self: &Arc<Self>, index: i32, now_ms: i64) {
        let timed_out: Vec<String> = match self.lock_shard(index).await {
            Ok(locked) => locked.state.txns.values().filter(|m| m.timed_out(now_ms)).map(|m| m.transactional_id.clone()).collect(),
            Err(_) => return,
        };
        for id in timed_out {
            let Ok(mut locked) = self.lock_shard(index).await else { return };
            let Some(meta) = locked.state.txns.get_mut(&id).filter(|m| m.timed_out(now_ms)) else { continue };
            let fence = match meta.prepare_fence() {
                Ok(fence) => fence,
                Err(e) => {
                    tracing::warn!(transactional_id = id, "cannot abort the timed-out transaction: {e}");
                    continue;
                }
            };
            tracing::info!(
                transactional_id = id,
                producer_id = fence.producer_id,
                epoch = fence.producer_epoch,
                "aborting a timed-out transaction"
            );
            if let Err(code) = self.end_locked(locked, &id, fence.producer_id, fence.producer_epoch, false, false).await {
                tracing::info!(transactional_id = id, code, "timed-out transaction not aborted; tried again later");
            }
        }
    }

    /// Drops the state of shards whose partition this broker no longer
    /// leads; their marker tasks stop and the new coordinator resumes them.
    async fn unload_lost(&self) {
        let lost: Vec<Arc<Shard>> = {
            let mut shards = self.shards.lock().expect("shards lock");
            let lost: Vec<i32> = shards.iter().filter(|(_, s)| !s.partition.is_leader()).map(|(i, _)| *i).collect();
            lost.into_iter().filter_map(|i| shards.remove(&i)).collect()
        };
        for shard in lost {
            let mut state = shard.state.lock().await;
            if state.loaded_epoch.take().is_some() {
                tracing::info!(partition = shard.index, ids = state.txns.len(), "no longer the coordinator of {TXN_TOPIC} partition");
            }
            state.txns.clear();
        }
    }

    /// Whether `shard` is still loaded at `epoch` (markers of an older
    /// coordinator epoch stop sending).
    pub(super) async fn coordinates(&self, shard: &Shard, epoch: i32) -> bool {
        shard.partition.is_leader() && shard.state.lock().await.loaded_epoch == Some(epoch)
    }

    /// Locks `shard` if it is still loaded at `epoch`.
    pub(super) async fn relock(&self, shard: &Arc<Shard>, epoch: i32) -> Option<Locked> {
        let state = Arc::clone(&shard.state).lock_owned().await;
        (state.loaded_epoch == Some(epoch)).then(|| Locked { shard: Arc::clone(shard), state, epoch })
    }
}

/// Rebuilds a shard from its partition: the last record of each
/// transactional id wins, a tombstone removes it.
async fn load(partition: &Partition, state: &mut ShardState) -> Result<(), i16> {
    let started = Instant::now();
    if !partition.caught_up(LOAD_WAIT).await {
        return Err(E::CoordinatorLoadInProgress.code());
    }
    state.txns.clear();
    let mut records = 0usize;
    partition
        .replay(|header, bytes| {
            if !header.is_control() {
                records += apply_batch(partition, header, bytes, state);
            }
        })
        .map_err(|e| {
            tracing::warn!(partition = partition.index, "loading {TXN_TOPIC}: {e}");
            E::CoordinatorLoadInProgress.code()
        })?;
    tracing::info!(
        partition = partition.index,
        ids = state.txns.len(),
        records,
        ms = started.elapsed().as_millis() as u64,
        "loaded {TXN_TOPIC} partition"
    );
    Ok(())
}

fn apply_batch(partition: &Partition, header: &BatchHeader, bytes: &[u8], state: &mut ShardState) -> usize {
    let records = match batch_records(bytes) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(partition = partition.index, base_offset = header.base_offset, "skipping unreadable batch: {e}");
            return 0;
        }
    };
    let mut applied = 0;
    for (offset, key, value) in records {
        let Some(key) = key else { continue };
        match records::decode(&key, value.as_deref()) {
            Ok(Some((id, None))) => {
                state.txns.remove(&id);
            }
            Ok(Some((id, Some(v)))) => match TxnMetadata::from_value(&id, &v) {
                Some(meta) => {
                    state.txns.insert(id, meta);
                }
                None => tracing::warn!(partition = partition.index, offset, status = v.status, "skipping a record of unknown status"),
            },
            Ok(None) => tracing::warn!(partition = partition.index, offset, "skipping a record of unknown key version"),
            Err(e) => tracing::warn!(partition = partition.index, offset, "skipping unreadable record: {e}"),
        }
        applied += 1;
    }
    applied
}

/// The partitions of a transaction, as the Prepare record lists them.
pub(super) type TxnPartitions = BTreeSet<(String, i32)>;
