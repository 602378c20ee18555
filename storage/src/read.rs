//! Reads: by Kafka offset for fetches, by raft index for replication, and the
//! ListOffsets lookups (earliest, latest, by timestamp, max timestamp).

use bytes::Bytes;

use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::records;
use crate::segment::{Located, Segment};

/// What a fetch gets: whole batches, as slices of the segment maps. Batches
/// that take no offset are left out, so one read may be several slices.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub slices: Vec<Bytes>,
    pub bytes: usize,
    /// Offset after the last returned batch; the requested offset if none.
    pub next_offset: i64,
}

impl ReadResult {
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    /// The slices joined; a copy, for tests and tools.
    pub fn to_vec(&self) -> Vec<u8> {
        self.slices.iter().flat_map(|s| s.iter().copied()).collect()
    }
}

/// One raft entry: the batch bytes, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub raft_index: u64,
    pub bytes: Bytes,
}

/// A ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: i32,
}

/// Decompression bound for record-level lookups: far above Kafka's 1 MiB
/// default message size, far below what a bomb would ask for.
const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

impl Log {
    /// Batches from the one holding `offset`, up to `max_bytes` (the first is
    /// returned whole even if larger, as Kafka's KIP-74 does) and never a batch
    /// that reaches `upto_offset` (the high watermark for consumers).
    pub fn read(&self, offset: i64, max_bytes: usize, upto_offset: i64) -> Result<ReadResult> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(StorageError::OffsetOutOfRange { offset, log_start: self.log_start_offset, log_end: end });
        }
        let mut out = ReadResult { next_offset: offset, ..Default::default() };
        let upto = upto_offset.min(end);
        let mut i = self.segment_for_offset(offset);
        // Checked before opening the next segment, so a full read never maps one it will not use.
        while out.next_offset < upto && out.bytes < max_bytes.max(1) && i <= self.sealed.len() {
            let full = self.with_segment(i, |seg| read_segment(seg, &mut out, max_bytes, upto))?;
            if full {
                break;
            }
            i += 1;
        }
        Ok(out)
    }

    /// Raft entries `[from, to)`, at least one if any, up to `max_bytes`.
    pub fn entries(&self, from: u64, to: u64, max_bytes: usize) -> Result<Vec<Entry>> {
        let (first, next) = (self.first_raft_index()?, self.next_raft_index());
        let to = to.min(next);
        if from < first || from > next {
            return Err(StorageError::RaftIndexOutOfRange { index: from, first, next });
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut want = from;
        let mut i = self.segment_for_raft(from)?;
        while want < to && i <= self.sealed.len() {
            let done = self.with_segment(i, |seg| {
                let Some(start) = seg.locate_raft(want) else { return false };
                for l in seg.batches_from(start.position, start.raft_index) {
                    let size = l.header.total_bytes();
                    if l.raft_index >= to || (!out.is_empty() && bytes + size > max_bytes) {
                        return true;
                    }
                    out.push(Entry { raft_index: l.raft_index, bytes: seg.slice(l.position, size) });
                    bytes += size;
                    want = l.raft_index + 1;
                }
                false
            })?;
            if done {
                break;
            }
            i += 1;
        }
        debug_assert!(out.windows(2).all(|w| w[1].raft_index == w[0].raft_index + 1));
        Ok(out)
    }

    /// The header of raft entry `raft`: its term is the leader epoch, its
    /// offsets tell where it sits in Kafka terms.
    pub fn entry_header(&self, raft: u64) -> Result<crate::batch::BatchHeader> {
        let e = self.entries(raft, raft + 1, 0)?;
        let e = e.first().ok_or(StorageError::RaftIndexOutOfRange {
            index: raft,
            first: self.first_raft_index()?,
            next: self.next_raft_index(),
        })?;
        Ok(crate::batch::BatchHeader::parse(&e.bytes)?)
    }

    /// ListOffsets by timestamp: the first record at or after the log start
    /// whose timestamp is at least `timestamp`; `None` if there is none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let first = self.segment_for_offset(self.log_start_offset);
        for i in first..=self.sealed.len() {
            let found = self.with_segment(i, |seg| -> Result<Option<TimestampOffset>> {
                if seg.largest_timestamp().0 < timestamp {
                    return Ok(None);
                }
                let Some(start) = seg.time_lookup_start(timestamp) else { return Ok(None) };
                for l in seg.batches_from(start.position, start.raft_index) {
                    if l.header.offset_count() == 0 || l.header.max_timestamp < timestamp || l.header.last_offset() < self.log_start_offset
                    {
                        continue;
                    }
                    if let Some(found) = first_record(seg, &l, timestamp, self.log_start_offset)? {
                        return Ok(Some(found));
                    }
                }
                Ok(None)
            })??;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (KIP-734): the first record carrying the
    /// largest timestamp in the log; `None` for a log without timestamps.
    pub fn max_timestamp(&self) -> Result<Option<TimestampOffset>> {
        let first = self.segment_for_offset(self.log_start_offset);
        let mut best: Option<(usize, i64, i64)> = None;
        for i in first..=self.sealed.len() {
            let (ts, off) = self.with_segment(i, Segment::largest_timestamp)?;
            if ts >= 0 && best.is_none_or(|(_, b, _)| ts > b) {
                best = Some((i, ts, off));
            }
        }
        let Some((i, ts, off)) = best else { return Ok(None) };
        self.with_segment(i, |seg| -> Result<Option<TimestampOffset>> {
            let Some(start) = seg.locate_offset(off) else { return Ok(None) };
            let Some(l) =
                seg.batches_from(start.position, start.raft_index).find(|l| l.header.offset_count() > 0 && l.header.max_timestamp == ts)
            else {
                return Ok(None);
            };
            let offset = records::offset_of_max_timestamp(seg.batch_bytes(&l), MAX_DECOMPRESSED_BYTES)
                .map_err(|e| corrupt(seg, e))?
                .unwrap_or(l.header.last_offset());
            Ok(Some(TimestampOffset { timestamp: ts, offset, leader_epoch: l.header.leader_epoch }))
        })?
    }
}

/// Appends the batches of `seg` from the one holding `out.next_offset` to
/// `out`. Returns true when `max_bytes` or `upto` stopped the read.
fn read_segment(seg: &Segment, out: &mut ReadResult, max_bytes: usize, upto: i64) -> bool {
    let Some(start) = seg.locate_offset(out.next_offset) else { return false };
    let mut run: Option<(u32, usize)> = None;
    let mut stopped = false;
    for l in seg.batches_from(start.position, start.raft_index) {
        let h = &l.header;
        if h.offset_count() == 0 {
            flush_run(seg, out, &mut run);
            continue;
        }
        let size = h.total_bytes();
        if h.last_offset() >= upto || (out.bytes > 0 && out.bytes + size > max_bytes) {
            stopped = true;
            break;
        }
        match &mut run {
            Some((_, len)) => *len += size,
            None => run = Some((l.position, size)),
        }
        out.bytes += size;
        out.next_offset = h.last_offset() + 1;
    }
    flush_run(seg, out, &mut run);
    stopped
}

fn flush_run(seg: &Segment, out: &mut ReadResult, run: &mut Option<(u32, usize)>) {
    if let Some((position, len)) = run.take() {
        out.slices.push(seg.slice(position, len));
    }
}

fn first_record(seg: &Segment, l: &Located, timestamp: i64, log_start: i64) -> Result<Option<TimestampOffset>> {
    let mut found = None;
    records::for_each_record(seg.batch_bytes(l), MAX_DECOMPRESSED_BYTES, |r| {
        if r.timestamp >= timestamp && r.offset >= log_start {
            found = Some(TimestampOffset { timestamp: r.timestamp, offset: r.offset, leader_epoch: l.header.leader_epoch });
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    })
    .map_err(|e| corrupt(seg, e))?;
    Ok(found)
}

fn corrupt(seg: &Segment, e: records::RecordsError) -> StorageError {
    StorageError::Corrupt { what: "record batch", path: seg.log_path().to_path_buf(), detail: e.to_string() }
}
