//! Kafka's checks on a batch a client sends, made before the batch is
//! proposed (`UnifiedLog.analyzeAndValidateRecords`, `LogValidator`). Each
//! failure names its Kafka error through [`AppendError`]; nothing is
//! written for a batch that fails.

use std::ops::ControlFlow;

use bytes::{Bytes, BytesMut};
use fjord_storage::BatchError;
use fjord_storage::batch::{self, BatchHeader};

use super::append::AppendError;
use crate::config::{TimestampType, TopicConfig};

/// Offset of the attributes and maxTimestamp fields in a v2 batch header.
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;
const CRC_AT: usize = 17;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// A compressed batch may not inflate past this while its records are checked.
const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// Validates one client batch for a topic with `config`; returns the bytes to
/// propose (rewritten only for LogAppendTime topics).
pub fn validate(bytes: Bytes, config: &TopicConfig, now_ms: i64) -> Result<(BatchHeader, Bytes), AppendError> {
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
    if header.producer_id >= 0 && i32::from_be_bytes(bytes[53..57].try_into().expect("4 bytes")) < 0 {
        return Err(AppendError::InvalidRecord("an idempotent batch needs a base sequence".into()));
    }
    if header.is_log_append_time() {
        return Err(AppendError::InvalidTimestamp("a client batch may not carry LogAppendTime".into()));
    }
    check_records(&bytes, &header, config, now_ms)?;
    let bytes = match config.message_timestamp_type {
        TimestampType::LogAppendTime => stamp_log_append_time(&bytes, now_ms),
        TimestampType::CreateTime => bytes,
    };
    Ok((header, bytes))
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

/// LogAppendTime topics: the broker's clock becomes the batch maxTimestamp
/// and the timestamp-type bit is set (records keep their deltas, as in
/// Kafka's in-place path); both lie under the CRC, so it is recomputed.
fn stamp_log_append_time(bytes: &Bytes, now_ms: i64) -> Bytes {
    let mut b = BytesMut::from(&bytes[..]);
    let attrs = i16::from_be_bytes([b[ATTRIBUTES_AT], b[ATTRIBUTES_AT + 1]]) | ATTR_LOG_APPEND_TIME;
    b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
    b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
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

    #[test]
    fn log_append_time_rewrites_a_valid_batch() {
        let good = Bytes::from(build_batch(&[b"v".to_vec()], 5));
        let mut c = cfg();
        c.message_timestamp_type = TimestampType::LogAppendTime;
        let (_, out) = validate(good, &c, 99).unwrap();
        let h = batch::validate(&out).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99);
    }
}
