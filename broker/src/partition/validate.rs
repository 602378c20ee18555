//! Kafka's checks on a batch a client sends, made before the batch is
//! proposed (`UnifiedLog.analyzeAndValidateRecords`, `LogValidator`). Each
//! failure names its Kafka error through [`AppendError`]; nothing is
//! written for a batch that fails.

use std::ops::ControlFlow;

use bytes::{Bytes, BytesMut};
use fjord_raft::producer_state::ProducerBatch;
use fjord_storage::BatchError;
use fjord_storage::batch::{self, BatchHeader};

use super::append::AppendError;
use crate::config::{TimestampType, TopicConfig};
use crate::protocol::records::split_batches;

/// A compressed batch may not inflate past this while its records are checked.
const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// A batch that passed [`validate`].
#[derive(Debug)]
pub struct Validated {
    pub header: BatchHeader,
    /// Its producer fields, if it has a producer id (idempotent).
    pub producer: Option<ProducerBatch>,
    /// The bytes to propose (rewritten only for LogAppendTime topics).
    pub bytes: Bytes,
}

/// Kafka's `ProduceRequest.validateRecords`: a partition's `records` must
/// be exactly one whole batch. Records that do not even frame as batches are
/// INVALID_RECORD there (a bad CRC, found later, is CORRUPT_MESSAGE).
pub fn single_batch(records: &Bytes) -> Result<(BatchHeader, Bytes), AppendError> {
    let mut batches = split_batches(records).map_err(|at| AppendError::InvalidRecord(format!("malformed record batch at byte {at}")))?;
    if batches.len() != 1 {
        return Err(AppendError::InvalidRecord(format!("expected exactly one record batch, got {}", batches.len())));
    }
    Ok(batches.remove(0))
}

/// Validates one client batch for a topic with `config`.
pub fn validate(bytes: Bytes, config: &TopicConfig, now_ms: i64) -> Result<Validated, AppendError> {
    let header = batch::validate(&bytes).map_err(|e| match e {
        BatchError::UnsupportedMagic { .. } => AppendError::InvalidRecord(e.to_string()),
        _ => AppendError::Corrupt(e.to_string()),
    })?;
    if bytes.len() > config.max_message_bytes.max(0) as usize {
        return Err(AppendError::MessageTooLarge { size: bytes.len(), max: config.max_message_bytes });
    }
    if bytes.len() > config.segment_bytes.max(0) as usize {
        return Err(AppendError::RecordListTooLarge { size: bytes.len(), segment_bytes: config.segment_bytes });
    }
    if header.base_offset != 0 {
        return Err(AppendError::InvalidRecord(format!("base offset {} of a client batch must be 0", header.base_offset)));
    }
    if header.is_control() {
        return Err(AppendError::InvalidRecord("clients may not send control batches".into()));
    }
    // Kafka's `LogValidator.validateBatch` for client appends only: the log
    // takes batches with fewer records than offsets (what its cleaner
    // leaves, replicated to followers), a producer may not send one.
    if header.record_count <= 0 || i64::from(header.record_count) != header.offset_count() {
        return Err(AppendError::InvalidRecord(format!(
            "Inconsistent batch offset range [0, {}] and count of records {}",
            header.last_offset_delta, header.record_count
        )));
    }
    let producer = producer_of(&bytes)?;
    if producer.is_some_and(|p| p.first_seq < 0) {
        return Err(AppendError::InvalidRecord("an idempotent batch needs a base sequence".into()));
    }
    if header.is_log_append_time() {
        return Err(AppendError::InvalidTimestamp("a client batch may not carry LogAppendTime".into()));
    }
    check_records(&bytes, &header, config, now_ms)?;
    Ok(match config.message_timestamp_type {
        TimestampType::LogAppendTime => {
            let bytes = stamp_log_append_time(&bytes, now_ms);
            // The stamp moved maxTimestamp, which the producer fields carry.
            Validated { header, producer: producer_of(&bytes)?, bytes }
        }
        TimestampType::CreateTime => Validated { header, producer, bytes },
    })
}

fn producer_of(bytes: &[u8]) -> Result<Option<ProducerBatch>, AppendError> {
    ProducerBatch::parse(bytes).map_err(|e| AppendError::Corrupt(e.to_string()))
}

/// Walks every record (decompressing if need be): counts, offset deltas and
/// lengths must hold together, compacted topics need keys, and CreateTime
/// timestamps must lie within the topic's window.
fn check_records(bytes: &[u8], header: &BatchHeader, config: &TopicConfig, now_ms: i64) -> Result<(), AppendError> {
    let compacted = config.cleanup_policy.iter().any(|p| p == "compact");
    let check_time = config.message_timestamp_type == TimestampType::CreateTime;
    let (before, after) = (config.message_timestamp_before_max_ms, config.message_timestamp_after_max_ms);
    let mut problem: Option<AppendError> = None;
    fjord_storage::records::for_each_record(bytes, MAX_DECOMPRESSED_BYTES, |r| {
        if compacted && r.key.is_none() {
            problem = Some(AppendError::InvalidRecord(format!(
                "compacted topic cannot accept message without key in topic partition (record {})",
                r.offset_delta
            )));
            return ControlFlow::Break(());
        }
        if check_time && r.timestamp >= 0 && (now_ms.saturating_sub(r.timestamp) > before || r.timestamp.saturating_sub(now_ms) > after) {
            problem = Some(AppendError::InvalidTimestamp(format!(
                "timestamp {} of record {} is out of range (now {now_ms}, before.max.ms {before}, after.max.ms {after})",
                r.timestamp, r.offset_delta
            )));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| AppendError::Corrupt(format!("batch with {} records: {e}", header.record_count)))?;
    problem.map_or(Ok(()), Err)
}

/// LogAppendTime topics: the broker's clock becomes the batch maxTimestamp.
fn stamp_log_append_time(bytes: &Bytes, now_ms: i64) -> Bytes {
    let mut b = BytesMut::from(&bytes[..]);
    batch::stamp_log_append_time(&mut b, now_ms);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::build_batch;

    fn cfg() -> TopicConfig {
        TopicConfig::resolve(&crate::config::BrokerConfig::from_pairs(&[]).unwrap().0, &Default::default())
    }

    #[test]
    fn good_batch_passes_and_bad_ones_name_their_error() {
        let now = 1_700_000_000_000;
        let good = Bytes::from(build_batch(&[b"v".to_vec()], now));
        assert!(validate(good.clone(), &cfg(), now).is_ok());

        let mut crc = good.to_vec();
        let last = crc.len() - 1;
        crc[last] ^= 1;
        assert!(matches!(validate(Bytes::from(crc), &cfg(), now), Err(AppendError::Corrupt(_))));

        let mut big = cfg();
        big.max_message_bytes = 10;
        assert!(matches!(validate(good.clone(), &big, now), Err(AppendError::MessageTooLarge { .. })));

        let future = Bytes::from(build_batch(&[b"v".to_vec()], now + 2 * 3_600_000));
        assert!(matches!(validate(future, &cfg(), now), Err(AppendError::InvalidTimestamp(_))));

        let mut offset = good.to_vec();
        offset[..8].copy_from_slice(&5i64.to_be_bytes());
        assert!(matches!(validate(Bytes::from(offset), &cfg(), now), Err(AppendError::InvalidRecord(_))));

        let mut compact = cfg();
        compact.cleanup_policy = vec!["compact".into()];
        assert!(matches!(validate(good, &compact, now), Err(AppendError::InvalidRecord(_))));
    }

    /// What the log cleaner writes (fewer records than offsets, or none) is
    /// valid in the log but never from a client.
    #[test]
    fn a_batch_with_fewer_records_than_offsets_is_refused() {
        let now = 1_700_000_000_000;
        let good = build_batch(&[b"a".to_vec(), b"b".to_vec()], now);
        for (delta, count) in [(2, 2), (1, 0), (5, 2)] {
            let mut b = good.clone();
            b[23..27].copy_from_slice(&i32::to_be_bytes(delta));
            b[57..61].copy_from_slice(&i32::to_be_bytes(count));
            if count == 0 {
                b.truncate(batch::HEADER_BYTES);
                let len = (b.len() - 12) as i32;
                b[8..12].copy_from_slice(&len.to_be_bytes());
            }
            let crc = crc32c::crc32c(&b[21..]);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
            assert!(batch::validate(&b).is_ok(), "the log would take delta {delta} count {count}");
            let err = validate(Bytes::from(b), &cfg(), now).unwrap_err();
            assert!(matches!(err, AppendError::InvalidRecord(_)), "delta {delta} count {count}: {err:?}");
        }
    }

    #[test]
    fn log_append_time_rewrites_a_valid_batch() {
        let good = Bytes::from(build_batch(&[b"v".to_vec()], 5));
        let mut c = cfg();
        c.message_timestamp_type = TimestampType::LogAppendTime;
        let out = validate(good, &c, 99).unwrap().bytes;
        let h = batch::validate(&out).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99);
    }
}
