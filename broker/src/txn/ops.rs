//! The coordinator's operations, one per request the handlers pass on
//! (Kafka's `TransactionCoordinator.handle*`). Each locks the shard of its
//! transactional id, asks the [`state`](super::state) machine, and writes
//! what it decided. Errors are Kafka error codes, as the handlers answer them.

use std::sync::Arc;

use kafka_protocol::ResponseError as E;

use super::coordinator::{Locked, TxnCoordinator, TxnPartitions};
use super::state::{EndStep, InitStep, TxnMetadata, TxnState, validate_timeout};
use crate::Broker;
use crate::metadata::store::now_ms;
use crate::partition::markers::TxnMarker;

/// One row of ListTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: TxnState,
}

/// ListTransactions' filters (empty: no filter; `min_duration_ms` < 0: none).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<TxnState>,
    pub producer_ids: Vec<i64>,
    /// v1: only transactions running for longer than this.
    pub min_duration_ms: i64,
}

impl TxnCoordinator {
    /// InitProducerId with a transactional id: the producer id and epoch to use.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), i16> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest.code());
        }
        validate_timeout(timeout_ms, self.config.transactions.max_timeout_ms).map_err(|e| e.code())?;
        let mut locked = self.lock(transactional_id).await?;
        if !locked.state.txns.contains_key(transactional_id) {
            let producer_id = new_producer_id(broker).await?;
            let meta = TxnMetadata::new(transactional_id, producer_id, timeout_ms, now_ms());
            locked.state.txns.insert(transactional_id.to_string(), meta);
        }
        let meta = locked.state.txns.get_mut(transactional_id).expect("inserted above");
        let step = meta.prepare_init(timeout_ms, expected, now_ms()).map_err(|e| e.code())?;
        let transit = match step {
            InitStep::Bump(transit) => transit,
            InitStep::NewProducerId => {
                let producer_id = new_producer_id(broker).await?;
                let meta = locked.state.txns.get_mut(transactional_id).expect("present above");
                meta.prepare_rotation(producer_id, timeout_ms, now_ms(), expected.is_some()).map_err(|e| e.code())?
            }
            InitStep::Fence(fence) => {
                // Abort the open transaction first; the client retries and then gets the next epoch.
                self.end_locked(locked, transactional_id, fence.producer_id, fence.producer_epoch, false, false).await?;
                return Err(E::ConcurrentTransactions.code());
            }
        };
        let answer = (transit.producer_id, transit.producer_epoch);
        self.write(locked, transactional_id, transit, false).await?;
        tracing::info!(transactional_id, producer_id = answer.0, epoch = answer.1, "initialized transactional id");
        Ok(answer)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds `partitions` to the
    /// producer's transaction, starting one if none is open.
    pub async fn add_partitions(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &TxnPartitions,
    ) -> Result<(), i16> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest.code());
        }
        let mut locked = self.lock(transactional_id).await?;
        let meta = locked.state.txns.get_mut(transactional_id).ok_or(E::InvalidProducerIdMapping.code())?;
        match meta.prepare_add_partitions(producer_id, producer_epoch, partitions, now_ms()).map_err(|e| e.code())? {
            None => Ok(()),
            Some(transit) => self.write(locked, transactional_id, transit, false).await,
        }
    }

    /// AddPartitionsToTxn with VerifyOnly (KIP-890): a code per partition
    /// (0 or TRANSACTION_ABORTABLE), or one error for all.
    pub async fn verify(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, i16> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest.code());
        }
        let locked = self.lock(transactional_id).await?;
        let meta = locked.state.txns.get(transactional_id).ok_or(E::InvalidProducerIdMapping.code())?;
        meta.verify(producer_id, producer_epoch, partitions).map_err(|e| e.code())
    }

    /// EndTxn from a client: once the Prepare record is committed the
    /// answer is success; the markers and the Complete record follow.
    pub async fn end_txn(self: &Arc<Self>, transactional_id: &str, producer_id: i64, producer_epoch: i16, commit: bool) -> Result<(), i16> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest.code());
        }
        let locked = self.lock(transactional_id).await?;
        if !locked.state.txns.contains_key(transactional_id) {
            return Err(E::InvalidProducerIdMapping.code());
        }
        self.end_locked(locked, transactional_id, producer_id, producer_epoch, commit, true).await
    }

    /// Kafka's `endTransaction` from the point the metadata is found: the
    /// client's EndTxn, or the coordinator's own abort after a fence
    /// (`from_client` false, with the fenced epoch).
    pub(super) async fn end_locked(
        self: &Arc<Self>,
        mut locked: Locked,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        from_client: bool,
    ) -> Result<(), i16> {
        let meta = locked.state.txns.get_mut(transactional_id).ok_or(E::InvalidProducerIdMapping.code())?;
        let step = match meta.prepare_end(producer_id, producer_epoch, commit, from_client, now_ms()) {
            Ok(step) => step,
            Err(e) => {
                if meta.pending == Some(TxnState::PrepareEpochFence) {
                    // A fence that cannot become an abort must not block the id.
                    meta.abort_transition(false);
                }
                return Err(e.code());
            }
        };
        let EndStep::Write { transit, epoch_fence } = step else { return Ok(()) };
        let marker = TxnMarker {
            producer_id: transit.producer_id,
            producer_epoch: transit.producer_epoch,
            commit: transit.state == TxnState::PrepareCommit,
            coordinator_epoch: locked.epoch,
        };
        let (shard, epoch, partitions) = (Arc::clone(&locked.shard), locked.epoch, transit.partitions.clone());
        self.write(locked, transactional_id, transit, epoch_fence).await?;
        self.spawn_markers(shard, epoch, transactional_id.to_string(), marker, partitions);
        Ok(())
    }

    /// DescribeTransactions: the id's metadata as it stands.
    pub async fn describe(self: &Arc<Self>, transactional_id: &str) -> Result<TxnMetadata, i16> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest.code());
        }
        let locked = self.lock(transactional_id).await?;
        match locked.state.txns.get(transactional_id) {
            Some(meta) if meta.state != TxnState::Dead => Ok(meta.clone()),
            _ => Err(E::TransactionalIdNotFound.code()),
        }
    }

    /// ListTransactions over every partition this broker coordinates.
    /// COORDINATOR_LOAD_IN_PROGRESS while one of them is still loading.
    pub async fn list(self: &Arc<Self>, filter: &ListFilter) -> Result<Vec<TxnListing>, i16> {
        let now = now_ms();
        let mut out = Vec::new();
        for index in self.led_partitions() {
            let locked = match self.lock_shard(index).await {
                Ok(locked) => locked,
                Err(code) if code == E::CoordinatorLoadInProgress.code() => return Err(code),
                // Lost the lead in between: the new coordinator lists these.
                Err(_) => continue,
            };
            for meta in locked.state.txns.values() {
                let listed = meta.state != TxnState::Dead
                    && (filter.producer_ids.is_empty() || filter.producer_ids.contains(&meta.producer_id))
                    && (filter.states.is_empty() || filter.states.contains(&meta.state))
                    && (filter.min_duration_ms < 0 || now - meta.start_ms > filter.min_duration_ms);
                if listed {
                    out.push(TxnListing {
                        transactional_id: meta.transactional_id.clone(),
                        producer_id: meta.producer_id,
                        state: meta.state,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }
}

/// A producer id from the broker's block (allocated by the controller).
async fn new_producer_id(broker: &Broker) -> Result<i64, i16> {
    broker.producer_ids.next(&broker.metadata).await.map_err(|e| {
        tracing::warn!("no producer id: {e}");
        E::CoordinatorNotAvailable.code()
    })
}
