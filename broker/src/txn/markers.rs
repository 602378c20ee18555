//! Completing a transaction (Kafka's `TransactionMarkerChannelManager`):
//! once its PrepareCommit or PrepareAbort record is committed, the marker
//! goes to every partition of the transaction, grouped by leader (this
//! broker's own through [`write_markers_locally`], others' over the control
//! RPC), retried with backoff until each partition has it; then the
//! CompleteCommit or CompleteAbort record is written.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use kafka_protocol::ResponseError as E;

use super::coordinator::{Shard, TxnCoordinator, TxnPartitions};
use super::state::TxnState;
use crate::Broker;
use crate::cluster::control::{ControlRequest, ControlResponse, address_of, call};
use crate::metadata::store::now_ms;
use crate::partition::markers::{TxnMarker, write_markers_locally};

/// Backoff between rounds of markers that failed with a retriable error.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What a partition's answer to a marker means for the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Retry,
    /// The producer or coordinator epoch moved on: this coordinator's
    /// decision is obsolete (Kafka stops sending, as here).
    Cancel,
}

/// Kafka's `TransactionMarkerRequestCompletionHandler`: which errors are
/// retried. Errors Kafka treats as fatal are retried here too (logged),
/// rather than leaving the transaction open for good.
fn outcome(code: i16) -> Outcome {
    match code {
        0 => Outcome::Done,
        // Kafka drops such partitions: the producer could not have written to them.
        c if c == E::UnsupportedForMessageFormat.code() || c == E::UnsupportedVersion.code() => Outcome::Done,
        c if c == E::InvalidProducerEpoch.code() || c == E::TransactionCoordinatorFenced.code() => Outcome::Cancel,
        _ => Outcome::Retry,
    }
}

impl TxnCoordinator {
    /// Sends the transaction's markers and writes its Complete record, in
    /// the background; stops if this broker stops coordinating `shard` at
    /// `epoch` (the next coordinator resumes from the Prepare record).
    pub(super) fn spawn_markers(
        self: &Arc<Self>,
        shard: Arc<Shard>,
        epoch: i32,
        transactional_id: String,
        marker: TxnMarker,
        partitions: TxnPartitions,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            if me.send_markers(&shard, epoch, &transactional_id, &marker, partitions).await {
                me.write_complete(&shard, epoch, &transactional_id, &marker).await;
            }
        });
    }

    /// True once every partition has the marker (or was deleted).
    async fn send_markers(
        &self,
        shard: &Shard,
        epoch: i32,
        transactional_id: &str,
        marker: &TxnMarker,
        mut remaining: TxnPartitions,
    ) -> bool {
        let mut backoff = BACKOFF_MIN;
        while !remaining.is_empty() {
            let Some(broker) = self.broker() else { return false };
            if !self.coordinates(shard, epoch).await {
                tracing::info!(transactional_id, "no longer the coordinator; the next one sends the markers");
                return false;
            }
            let image = broker.metadata.image();
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            remaining.retain(|(topic, index)| {
                let Some(t) = image.topic(topic).filter(|t| *index < t.partition_count()) else {
                    tracing::info!(transactional_id, topic, partition = index, "dropping the marker of a deleted partition");
                    return false;
                };
                let leader = broker.leader_view(&image, t, *index).leader;
                if leader >= 0 {
                    by_leader.entry(leader).or_default().push((topic.clone(), *index));
                }
                true
            });
            let sends = by_leader.into_iter().map(|(leader, partitions)| send_to(&broker, leader, marker, partitions));
            for (tp, code) in join_all(sends).await.into_iter().flatten() {
                match outcome(code) {
                    Outcome::Done => {
                        remaining.remove(&tp);
                    }
                    Outcome::Retry => tracing::debug!(transactional_id, topic = tp.0, partition = tp.1, code, "marker not written yet"),
                    Outcome::Cancel => {
                        tracing::warn!(
                            transactional_id,
                            topic = tp.0,
                            partition = tp.1,
                            code,
                            "marker refused; transaction left to a newer epoch"
                        );
                        return false;
                    }
                }
            }
            if !remaining.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        true
    }

    /// Writes CompleteCommit/CompleteAbort, retrying while the log is not
    /// available (Kafka's `retryOnError` for COORDINATOR_NOT_AVAILABLE).
    async fn write_complete(self: &Arc<Self>, shard: &Arc<Shard>, epoch: i32, transactional_id: &str, marker: &TxnMarker) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let Some(mut locked) = self.relock(shard, epoch).await else { return };
            let Some(meta) = locked.state.txns.get_mut(transactional_id) else { return };
            let prepared = if marker.commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
            if meta.state != prepared || meta.producer_id != marker.producer_id || meta.producer_epoch != marker.producer_epoch {
                // Completed already (a resumed copy of this task got there first).
                return;
            }
            let transit = match meta.prepare_complete(now_ms()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(transactional_id, "cannot complete the transaction yet: {e}");
                    drop(locked);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            match self.write(locked, transactional_id, transit, false).await {
                Ok(()) => {
                    tracing::debug!(transactional_id, commit = marker.commit, "transaction completed");
                    return;
                }
                Err(code) if code == E::CoordinatorNotAvailable.code() => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(code) => {
                    tracing::info!(transactional_id, code, "completion not written; the next coordinator completes it");
                    return;
                }
            }
        }
    }
}

/// Writes `marker` to `partitions` of one leader: here, or over the control
/// RPC. An unreachable broker answers REQUEST_TIMED_OUT for all (retried).
async fn send_to(broker: &Arc<Broker>, leader: i32, marker: &TxnMarker, partitions: Vec<(String, i32)>) -> Vec<((String, i32), i16)> {
    if leader == broker.config.node_id {
        return write_markers_locally(broker, marker, &partitions).await;
    }
    let cluster = &broker.cluster;
    let target = leader as u64;
    let request = ControlRequest::WriteTxnMarkers { marker: *marker, partitions: partitions.clone() };
    match call(cluster, target, address_of(cluster, target).as_deref(), &request).await {
        Ok(ControlResponse::TxnMarkers(codes)) => codes,
        other => {
            tracing::debug!(leader, "markers not sent: {other:?}");
            partitions.into_iter().map(|tp| (tp, E::RequestTimedOut.code())).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_errors_as_kafka_treats_them() {
        assert_eq!(outcome(0), Outcome::Done);
        for retried in [E::NotLeaderOrFollower, E::UnknownTopicOrPartition, E::NotEnoughReplicas, E::RequestTimedOut, E::KafkaStorageError]
        {
            assert_eq!(outcome(retried.code()), Outcome::Retry, "{retried:?}");
        }
        assert_eq!(outcome(E::InvalidProducerEpoch.code()), Outcome::Cancel);
        assert_eq!(outcome(E::TransactionCoordinatorFenced.code()), Outcome::Cancel);
        assert_eq!(outcome(E::UnsupportedForMessageFormat.code()), Outcome::Done);
    }
}
