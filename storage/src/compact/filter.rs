//! One batch through the cleaner (Kafka's `MemoryRecords.filterTo` with the
//! cleaner's `RecordFilter`), with one difference that raft imposes: a batch
//! is never dropped. Its records are filtered; its header keeps baseOffset,
//! lastOffsetDelta, partitionLeaderEpoch, maxTimestamp and the producer
//! fields, so offsets, raft indexes and producer state read the same after.

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::map::OffsetMap;
use super::{AbortedRange, codec, varint};
use crate::batch::{self, BatchHeader};
use crate::records::{self, Compression, RecordsError};

/// Aborted transactions by producer id, for the batch-by-batch check.
#[derive(Debug, Default)]
pub(crate) struct AbortedSet(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedSet {
    pub fn new(ranges: &[AbortedRange]) -> Self {
        let mut by_producer: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for r in ranges {
            by_producer.entry(r.producer_id).or_default().push((r.first_offset, r.last_offset));
        }
        Self(by_producer)
    }

    /// Whether `h` is a transactional data batch of an aborted transaction:
    /// its records count for nothing (Kafka's `CleanedTransactionMetadata.onBatchRead`).
    pub fn aborts(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self
                .0
                .get(&h.producer_id)
                .is_some_and(|rs| rs.iter().any(|&(first, last)| first <= h.base_offset && h.last_offset() <= last))
    }

    /// Whether a batch's keys go into the offset map: Kafka maps data
    /// batches only, and none of an aborted transaction.
    pub fn maps(&self, h: &BatchHeader) -> bool {
        !h.is_control() && h.offset_count() > 0 && !self.aborts(h)
    }
}

/// What the filter needs to know about the pass.
pub(crate) struct Filter<'a> {
    pub map: &'a OffsetMap,
    /// Records at or after this offset lie beyond the map and all stay.
    pub map_end: i64,
    pub aborted: &'a AbortedSet,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
    pub max_decompressed_bytes: usize,
}

/// What became of one batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every record stays and no horizon is due: the bytes are copied as they are.
    Unchanged,
    Rewritten {
        bytes: Vec<u8>,
        records_removed: u32,
    },
}

impl Filter<'_> {
    /// Cleans one batch. Control batches (transaction markers, raft's own
    /// entries) stay as they are.
    pub fn clean(&self, bytes: &[u8], h: &BatchHeader) -> Result<Outcome, RecordsError> {
        if h.is_control() || h.offset_count() == 0 {
            return Ok(Outcome::Unchanged);
        }
        let discard_all = self.aborted.aborts(h);
        // KIP-534: a tombstone stays until the horizon the first cleaning set.
        let retain_deletes = h.delete_horizon_ms().is_none_or(|horizon| self.now_ms < horizon);
        let mut kept = Vec::new();
        let (mut total, mut retained, mut tombstones) = (0u32, 0i32, false);
        records::for_each_raw_record(bytes, self.max_decompressed_bytes, |r, raw| {
            total += 1;
            let keep = !discard_all
                && (r.offset >= self.map_end
                    // Keyless records cannot be written to a compacted topic; one met here stays.
                    || r.key.is_none_or(|k| {
                        let latest = self.map.get(k).is_none_or(|o| r.offset >= o);
                        latest && (r.value.is_some() || retain_deletes)
                    }));
            if keep {
                kept.extend_from_slice(raw);
                retained += 1;
                tombstones |= r.value.is_none();
            }
            ControlFlow::Continue(())
        })?;
        let set_horizon = tombstones && h.delete_horizon_ms().is_none();
        if retained as u32 == total && !set_horizon {
            return Ok(Outcome::Unchanged);
        }
        let removed = total - retained as u32;
        if retained == 0 {
            // Kafka's `writeEmptyHeader`: no records, no codec, both timestamps the max.
            let attributes = h.attributes & !(batch::COMPRESSION_MASK | batch::DELETE_HORIZON_FLAG);
            return Ok(Outcome::Rewritten { bytes: batch::rebuild(bytes, attributes, h.max_timestamp, 0, &[]), records_removed: removed });
        }
        let (attributes, base_timestamp) = if set_horizon {
            let horizon = self.now_ms.saturating_add(self.delete_retention_ms);
            kept = rebase_timestamps(&kept, h.base_timestamp, horizon).ok_or(RecordsError::Truncated { at_byte: 0 })?;
            (h.attributes | batch::DELETE_HORIZON_FLAG, horizon)
        } else {
            (h.attributes, h.base_timestamp)
        };
        let codec = Compression::from_attributes(h.attributes)?;
        let payload = codec::compress(codec, &kept).map_err(|source| RecordsError::Decompress { codec, source })?;
        Ok(Outcome::Rewritten { bytes: batch::rebuild(bytes, attributes, base_timestamp, retained, &payload), records_removed: removed })
    }
}

/// Re-encodes each record's timestampDelta against a new base timestamp
/// (the delete horizon takes the baseTimestamp field, as Kafka's
/// `MemoryRecordsBuilder` does), so every record keeps its timestamp.
fn rebase_timestamps(records: &[u8], old_base: i64, new_base: i64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(records.len() + records.len() / 8);
    let mut rest = records;
    while !rest.is_empty() {
        let (length, n) = varint::read_varlong(rest)?;
        let body = rest.get(n..n + usize::try_from(length).ok()?)?;
        rest = &rest[n + body.len()..];
        let (&attributes, after) = body.split_first()?;
        let (delta, m) = varint::read_varlong(after)?;
        // Java's long arithmetic wraps; so does the reader's.
        let timestamp = old_base.wrapping_add(delta);
        let mut new_body = vec![attributes];
        varint::put_varlong(&mut new_body, timestamp.wrapping_sub(new_base));
        new_body.extend_from_slice(&after[m..]);
        varint::put_varlong(&mut out, new_body.len() as i64);
        out.extend_from_slice(&new_body);
    }
    Some(out)
}
