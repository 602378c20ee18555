//! KIP-890 part 1: before the first transactional batch of a transaction is
//! written to a partition, its leader asks the transaction's coordinator
//! whether the partition is in that producer's ongoing transaction
//! (Kafka's `AddPartitionsToTxnManager`, AddPartitionsToTxn v4+ VerifyOnly;
//! here the coordinator's [`TxnCoordinator::verify`](super::TxnCoordinator::verify),
//! locally or over the control RPC).

use std::sync::Arc;

use kafka_protocol::ResponseError as E;

use super::coordinator::TXN_TOPIC;
use crate::Broker;
use crate::cluster::control::{ControlRequest, ControlResponse, address_of, call};

/// Whether `topic`-`partition` is in the ongoing transaction of
/// `transactional_id` under this producer id and epoch. The error is the
/// one Produce answers with, as Kafka maps the coordinator's.
pub async fn verify_partition(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topic: &str,
    partition: i32,
) -> Result<(), i16> {
    if !broker.config.transactions.partition_verification_enable {
        return Ok(());
    }
    let partitions = [(topic.to_string(), partition)];
    let answer = ask_coordinator(broker, transactional_id, producer_id, producer_epoch, &partitions).await;
    let code = match answer {
        Ok(codes) => codes.first().copied().unwrap_or(E::UnknownServerError.code()),
        Err(code) => code,
    };
    match produce_error(code) {
        0 => Ok(()),
        code => Err(code),
    }
}

/// The coordinator's verdict, from wherever it is.
async fn ask_coordinator(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> Result<Vec<i16>, i16> {
    let image = broker.metadata.image();
    let (Some(topic), Some(index)) = (image.topic(TXN_TOPIC), broker.txn.partition_of(transactional_id)) else {
        return Err(E::CoordinatorNotAvailable.code());
    };
    let leader = broker.leader_view(&image, topic, index).leader;
    if leader < 0 {
        return Err(E::CoordinatorNotAvailable.code());
    }
    if leader == broker.config.node_id {
        return broker.txn.verify(transactional_id, producer_id, producer_epoch, partitions).await;
    }
    let request = ControlRequest::VerifyTxn {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        partitions: partitions.to_vec(),
    };
    let target = leader as u64;
    match call(&broker.cluster, target, address_of(&broker.cluster, target).as_deref(), &request).await {
        Ok(ControlResponse::TxnVerified(answer)) => answer,
        other => {
            tracing::debug!(leader, "transaction verification not answered: {other:?}");
            Err(E::NetworkException.code())
        }
    }
}

/// Kafka's mapping of a verification error to the produce response
/// (`ReplicaManager` and `AddPartitionsToTxnManager`): not in the
/// transaction is INVALID_TXN_STATE, a fenced epoch INVALID_PRODUCER_EPOCH,
/// and the coordinator's retriable errors NOT_ENOUGH_REPLICAS, which every
/// client retries without a metadata refresh.
fn produce_error(code: i16) -> i16 {
    match code {
        c if c == E::TransactionAbortable.code() => E::InvalidTxnState.code(),
        c if c == E::ProducerFenced.code() => E::InvalidProducerEpoch.code(),
        c if [
            E::ConcurrentTransactions,
            E::NetworkException,
            E::CoordinatorLoadInProgress,
            E::CoordinatorNotAvailable,
            E::NotCoordinator,
        ]
        .iter()
        .any(|e| e.code() == c) =>
        {
            E::NotEnoughReplicas.code()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_as_kafkas_produce_path() {
        assert_eq!(produce_error(0), 0);
        assert_eq!(produce_error(E::TransactionAbortable.code()), E::InvalidTxnState.code());
        assert_eq!(produce_error(E::ProducerFenced.code()), E::InvalidProducerEpoch.code());
        for retriable in
            [E::NotCoordinator, E::CoordinatorNotAvailable, E::CoordinatorLoadInProgress, E::ConcurrentTransactions, E::NetworkException]
        {
            assert_eq!(produce_error(retriable.code()), E::NotEnoughReplicas.code(), "{retriable:?}");
        }
        assert_eq!(produce_error(E::InvalidProducerIdMapping.code()), E::InvalidProducerIdMapping.code());
    }
}
