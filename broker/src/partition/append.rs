//! The produce path of one partition: validate, check producer sequences,
//! propose to raft, and wait as the request's acks ask.
//!
//! acks=all answers when raft has committed and applied the batch (the high
//! watermark covers it); acks=1 when the leader's log has it on disk (the
//! log store's receipt, see fjord-raft `receipt.rs`); acks=0 never waits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_raft::producer_state::Outcome;
use fjord_raft::{AppendReceipt, KafkaBatch, TypeConfig};
use openraft::errors::ClientWriteError;
use openraft::impls::ProgressResponder;
use tokio::sync::watch;

use super::Partition;
use super::sequencer::{BatchOutcome, Verdict};
use crate::config::TimestampType;
use crate::metadata::store::now_ms;

/// Kafka's `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    pub fn from_wire(acks: i16) -> Option<Self> {
        match acks {
            0 => Some(Self::None),
            1 => Some(Self::Leader),
            -1 => Some(Self::All),
            _ => None,
        }
    }
}

/// Where an acknowledged batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    /// The broker's time for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
}

/// Why a batch was not appended; mapped to Kafka error codes by the produce handler.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("this broker does not lead the partition")]
    NotLeader,
    #[error("corrupt batch: {0}")]
    Corrupt(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: i32 },
    #[error("batch of {size} bytes exceeds segment.bytes {segment_bytes}")]
    RecordListTooLarge { size: usize, segment_bytes: i32 },
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    #[error("timed out waiting for replication")]
    Timeout,
    #[error("append failed: {0}")]
    Failed(String),
    /// A batch of the same producer ahead of this one failed with this code.
    #[error("an earlier batch of the producer failed with error {0}")]
    Earlier(i16),
}

/// What a produce request waits on after its batch is proposed.
pub type AppendWait = Pin<Box<dyn Future<Output = Result<Appended, AppendError>> + Send>>;

fn ready(r: Result<Appended, AppendError>) -> AppendWait {
    Box::pin(std::future::ready(r))
}

fn write_outcome(
    r: Result<openraft::raft::ClientWriteResult<TypeConfig>, tokio::sync::oneshot::error::RecvError>,
) -> Result<i64, AppendError> {
    match r {
        Ok(Ok(resp)) => Ok(resp.response().base_offset),
        Ok(Err(ClientWriteError::ForwardToLeader(_))) => Err(AppendError::NotLeader),
        Ok(Err(e)) => Err(AppendError::Failed(e.to_string())),
        Err(_) => Err(AppendError::NotLeader),
    }
}

/// How long a produce waits for a new leader to take over its log.
const LEAD_WAIT: Duration = Duration::from_secs(5);

impl Partition {
    /// Whether this replica leads and has applied everything its log held
    /// when it took the lead: then the producer states the sequence check
    /// reads hold every batch earlier leaders (or this node before a restart:
    /// raft restores a leader of a committed term at once) left in the log.
    /// Before that, a retried batch already in the log would look new (a
    /// duplicate) or a later one out of order. Checked once per term, and
    /// again after a proposal of an idempotent batch failed with an unknown
    /// outcome; waits up to `wait` for a leader that is just taking over.
    pub(crate) async fn ready_to_lead(&self, wait: Duration) -> bool {
        let me = self.node_id;
        let (leader, term) = self.with_metrics(|m| (m.current_leader == Some(me), m.current_term));
        if !leader {
            return false;
        }
        if self.ready_term.load(std::sync::atomic::Ordering::Acquire) == term {
            return true;
        }
        // Read from the log itself: right after a restart raft's metrics may
        // not describe the log yet.
        let log_end = self.log_end_offset();
        let mut hw = self.watch_high_watermark();
        let applied = tokio::time::timeout(wait, hw.wait_for(|hw| *hw >= log_end)).await.is_ok_and(|r| r.is_ok());
        let still = self.with_metrics(|m| m.current_leader == Some(me) && m.current_term == term);
        let ready = applied && still;
        if ready {
            self.ready_term.store(term, std::sync::atomic::Ordering::Release);
        }
        ready
    }

    /// Validates `bytes` (one batch), checks its producer sequence and
    /// proposes it. Batches of one partition are proposed in the order of
    /// the calls. The returned future resolves as `acks` asks.
    pub async fn append(self: &Arc<Self>, bytes: Bytes, acks: Acks, timeout: Duration) -> Result<AppendWait, AppendError> {
        let config = self.config();
        let now = now_ms();
        let super::validate::Validated { producer, bytes, .. } = super::validate::validate(bytes, &config, now)?;
        let log_append_time_ms = if config.message_timestamp_type == TimestampType::LogAppendTime { now } else { -1 };
        if !self.ready_to_lead(timeout.min(LEAD_WAIT)).await {
            return Err(AppendError::NotLeader);
        }
        let mut sequencer = self.sequencer.lock().await;
        if let Some(p) = producer.filter(|p| !p.is_transactional)
            && self.in_transaction(p.producer_id)
        {
            // Kafka's `ProducerAppendInfo.appendDataBatch`.
            return Err(AppendError::InvalidTxnState(format!(
                "a non-transactional batch from producer {} while its transaction is open",
                p.producer_id
            )));
        }
        let tracked = match producer {
            None => None,
            Some(p) => {
                let verdict = sequencer.check(&p, &self.group.producer_states().read().expect("producer states"));
                match verdict {
                    Verdict::Propose { token, outcome } => Some((p.producer_id, token, outcome)),
                    Verdict::Wait(rx) => return Ok(wait_for_original(rx, log_append_time_ms)),
                    Verdict::Applied(Outcome::Duplicate(meta)) => {
                        let ts = if log_append_time_ms >= 0 { meta.timestamp_ms } else { -1 };
                        return Ok(ready(Ok(Appended { base_offset: meta.first_offset, log_append_time_ms: ts })));
                    }
                    Verdict::Applied(Outcome::InvalidProducerEpoch { epoch, stored_epoch }) => {
                        return Err(AppendError::InvalidProducerEpoch(format!("epoch {epoch} is older than {stored_epoch}")));
                    }
                    Verdict::Applied(Outcome::OutOfOrderSequence { epoch, first_seq, stored_epoch, stored_last_seq }) => {
                        tracing::info!(topic = %self.topic, partition = self.index, producer = p.producer_id, epoch, first_seq, stored_epoch, stored_last_seq, "out of order sequence");
                        return Err(AppendError::OutOfOrderSequence(format!(
                            "sequence {first_seq} (epoch {epoch}) does not follow {stored_last_seq} (epoch {stored_epoch})"
                        )));
                    }
                    Verdict::Applied(Outcome::Accept) => unreachable!("an accepted batch is proposed"),
                }
            }
        };
        let receipt = (acks == Acks::Leader).then(AppendReceipt::new);
        let mut batch = KafkaBatch::new(bytes).map_err(|e| AppendError::Corrupt(e.to_string()))?;
        if let Some(r) = &receipt {
            batch = batch.with_receipt(Arc::clone(r));
        }
        let (responder, rx) = ProgressResponder::complete_only();
        let (batch_bytes, batch_records) = (batch.bytes().len() as u64, crate::metrics::batch_records(batch.bytes()));
        let proposed = std::time::Instant::now();
        let submitted = self.group.raft().client_write_ff(batch, Some(responder)).await;
        if let Err(e) = submitted {
            if let Some((pid, token, outcome)) = tracked {
                outcome.send_replace(Some(Err(kafka_protocol::ResponseError::NotLeaderOrFollower.code())));
                sequencer.finish(pid, token);
            }
            return Err(AppendError::Failed(e.to_string()));
        }
        drop(sequencer);
        // Kafka's BytesInPerSec and MessagesInPerSec count at the leader's append.
        self.counters.bytes_in.inc_by(batch_bytes);
        self.counters.messages_in.inc_by(batch_records);
        let committed = move |r: Result<i64, AppendError>| {
            if r.is_ok() {
                crate::metrics::metrics().raft_commit_latency.observe(proposed.elapsed().as_secs_f64());
            }
            r
        };
        let done: Pin<Box<dyn Future<Output = Result<i64, AppendError>> + Send>> = match tracked {
            None => Box::pin(async move { committed(write_outcome(rx.await)) }),
            Some((pid, token, outcome)) => {
                let me = Arc::clone(self);
                let mut watch_rx = outcome.subscribe();
                tokio::spawn(async move {
                    let r = committed(write_outcome(rx.await));
                    if r.is_err() {
                        // The batch may be in the log all the same (raft did
                        // not say it is not): the producer's retry must wait
                        // until the log is applied, where it shows as a duplicate.
                        me.ready_term.store(0, std::sync::atomic::Ordering::Release);
                    }
                    outcome.send_replace(Some(r.clone().map_err(|e| error_code(&e))));
                    me.sequencer.lock().await.finish(pid, token);
                });
                Box::pin(async move {
                    let r = watch_rx.wait_for(Option::is_some).await.map_err(|_| AppendError::NotLeader)?;
                    r.expect("waited for Some").map_err(AppendError::Earlier)
                })
            }
        };
        Ok(match acks {
            Acks::None => {
                tokio::spawn(done);
                ready(Ok(Appended { base_offset: -1, log_append_time_ms }))
            }
            Acks::All => Box::pin(async move {
                let base_offset = tokio::time::timeout(timeout, done).await.map_err(|_| AppendError::Timeout)??;
                Ok(Appended { base_offset, log_append_time_ms })
            }),
            Acks::Leader => {
                let receipt = receipt.expect("acks=1 carries a receipt");
                Box::pin(async move {
                    let on_disk = async { receipt.durable().await.map(|a| a.base_offset).map_err(|_| AppendError::NotLeader) };
                    let waited = tokio::time::timeout(timeout, async {
                        tokio::select! {
                            r = on_disk => r,
                            // Fails first if the batch never reaches the log (leadership lost).
                            r = done => r,
                        }
                    });
                    let base_offset = waited.await.map_err(|_| AppendError::Timeout)??;
                    Ok(Appended { base_offset, log_append_time_ms })
                })
            }
        })
    }
}

impl Partition {
    /// Proposes a batch the broker built itself (a transaction marker, a
    /// transactional offset commit) as it is: no client checks and no
    /// sequence check, but in order with client batches, and refused if its
    /// producer epoch is older than the partition's (fenced). The future
    /// resolves once the batch is committed, with its first offset.
    pub async fn append_trusted(self: &Arc<Self>, bytes: Bytes, timeout: Duration) -> Result<AppendWait, AppendError> {
        if !self.ready_to_lead(timeout.min(LEAD_WAIT)).await {
            return Err(AppendError::NotLeader);
        }
        let producer = fjord_raft::producer_state::ProducerBatch::parse(&bytes).map_err(|e| AppendError::Corrupt(e.to_string()))?;
        let batch = KafkaBatch::new(bytes).map_err(|e| AppendError::Corrupt(e.to_string()))?;
        let (responder, rx) = ProgressResponder::complete_only();
        let sequencer = self.sequencer.lock().await;
        // Checked under the lock, so no marker fencing the epoch slips in between.
        if let Some(p) = producer {
            let stored = self.group.producer_states().read().expect("producer states").get(p.producer_id).map(|e| e.epoch());
            if let Some(stored) = stored.filter(|s| p.epoch < *s) {
                return Err(AppendError::InvalidProducerEpoch(format!("epoch {} is older than the producer's {stored}", p.epoch)));
            }
        }
        let submitted = self.group.raft().client_write_ff(batch, Some(responder)).await;
        drop(sequencer);
        submitted.map_err(|e| AppendError::Failed(e.to_string()))?;
        Ok(Box::pin(async move {
            let base_offset = tokio::time::timeout(timeout, rx).await.map_err(|_| AppendError::Timeout)?;
            Ok(Appended { base_offset: write_outcome(base_offset)?, log_append_time_ms: -1 })
        }))
    }
}

fn wait_for_original(mut rx: watch::Receiver<BatchOutcome>, log_append_time_ms: i64) -> AppendWait {
    Box::pin(async move {
        let r = rx.wait_for(Option::is_some).await.map_err(|_| AppendError::NotLeader)?;
        let base_offset = r.expect("waited for Some").map_err(AppendError::Earlier)?;
        Ok(Appended { base_offset, log_append_time_ms })
    })
}

/// The Kafka error code for an append error (the produce handler's mapping).
pub fn error_code(e: &AppendError) -> i16 {
    use kafka_protocol::ResponseError as E;
    match e {
        AppendError::NotLeader => E::NotLeaderOrFollower.code(),
        AppendError::Corrupt(_) => E::CorruptMessage.code(),
        AppendError::InvalidRecord(_) => E::InvalidRecord.code(),
        AppendError::MessageTooLarge { .. } => E::MessageTooLarge.code(),
        AppendError::RecordListTooLarge { .. } => E::RecordListTooLarge.code(),
        AppendError::InvalidTimestamp(_) => E::InvalidTimestamp.code(),
        AppendError::OutOfOrderSequence(_) => E::OutOfOrderSequenceNumber.code(),
        AppendError::InvalidProducerEpoch(_) => E::InvalidProducerEpoch.code(),
        AppendError::InvalidTxnState(_) => E::InvalidTxnState.code(),
        AppendError::Timeout => E::RequestTimedOut.code(),
        AppendError::Failed(_) => E::KafkaStorageError.code(),
        AppendError::Earlier(code) => *code,
    }
}
