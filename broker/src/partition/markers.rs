//! Transaction markers: the control batch a transaction's coordinator has
//! written to each of its partitions once the outcome is decided (Kafka's
//! WriteTxnMarkers, served for the coordinator of this broker or another,
//! and for `kafka-transactions abort`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_raft::txn::{MarkerType, build_marker};
use futures_util::future::join_all;
use kafka_protocol::ResponseError as E;

use super::Partition;
use super::append::{AppendError, AppendWait, error_code};
use crate::Broker;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::metadata::store::now_ms;

/// How long one marker may take to commit.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// One transaction's outcome, as WriteTxnMarkers carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl Partition {
    /// Appends `m`'s control batch; resolves once it is committed. A marker
    /// from an older producer epoch than the partition has seen is refused
    /// (`append_trusted`): a newer epoch has fenced that decision.
    pub async fn write_txn_marker(self: &Arc<Self>, m: TxnMarker, timeout: Duration) -> Result<AppendWait, AppendError> {
        let kind = if m.commit { MarkerType::Commit } else { MarkerType::Abort };
        let batch = build_marker(m.producer_id, m.producer_epoch, kind, m.coordinator_epoch, now_ms());
        self.append_trusted(Bytes::from(batch), timeout).await
    }
}

/// Writes `m` to each of `partitions` this broker leads and waits for the
/// commits; a Kafka error code per partition (0: written). A marker on a
/// `__consumer_offsets` partition then completes the transaction's offset
/// commits there.
pub async fn write_markers_locally(broker: &Arc<Broker>, m: &TxnMarker, partitions: &[(String, i32)]) -> Vec<((String, i32), i16)> {
    let image = broker.metadata.image();
    let writes = partitions.iter().map(|(topic, index)| {
        let image = Arc::clone(&image);
        async move {
            let Some(t) = image.topic(topic) else { return E::UnknownTopicOrPartition.code() };
            if *index < 0 || *index >= t.partition_count() {
                return E::UnknownTopicOrPartition.code();
            }
            let Some(partition) = broker.partitions.get(topic, *index).filter(|p| p.topic_id == t.id) else {
                return E::NotLeaderOrFollower.code();
            };
            let written = match partition.write_txn_marker(*m, MARKER_TIMEOUT).await {
                Ok(wait) => wait.await,
                Err(e) => Err(e),
            };
            match written {
                Ok(_) => {
                    if topic == OFFSETS_TOPIC {
                        broker.groups.complete_txn(*index, m.producer_id, m.commit).await;
                    }
                    0
                }
                Err(e) => {
                    tracing::debug!(topic, partition = index, producer_id = m.producer_id, "marker not written: {e}");
                    error_code(&e)
                }
            }
        }
    });
    let codes = join_all(writes).await;
    partitions.iter().cloned().zip(codes).collect()
}
