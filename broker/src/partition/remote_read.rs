//! Reading a tiered segment back: Fetch and ListOffsets for offsets that live
//! only in the object store (what KIP-405's `RemoteLogManager.read` and
//! `findOffsetByTimestamp` do on a remote segment).
//!
//! The objects are byte-for-byte copies of a sealed fjord-storage segment's
//! `.log`, `.index` and `.timeindex` (`docs/architecture.md`, "On disk"), so
//! this follows the local log's read path (`storage/src/read.rs` and
//! `segment.rs`) step for step, with ranged reads through the store's chunk
//! cache in place of a map:
//!
//! - the `.index` object is read whole (8 bytes per `index.interval.bytes`
//!   of log: 2 MiB for a 1 GiB segment at Kafka's 4096) and its floor entry
//!   says where to start scanning;
//! - the `.log` is read from there in windows of `max_bytes` (at least 64
//!   KiB, at most 4 MiB), which stop at the end of a 1 MiB chunk when
//!   `max_bytes` fits in one, so that the batches returned are slices of
//!   the cached chunks, not copies; a batch that a window cuts is read
//!   again. Every batch header is checked before it is used (these bytes
//!   crossed a network and sat in a bucket), so a damaged object is
//!   [`RemoteReadError::Corrupt`], never a panic or a scan that does not
//!   end;
//! - raft's private batches (`lastOffsetDelta = -1`, no Kafka offset) are
//!   stepped over and never returned: a consumer must not see them.
//!
//! Stateless: each call reads what it needs, and repeated calls on one
//! segment are cheap because the store keeps 1 MiB chunks. Which segment
//! holds an offset is the caller's business (the partition's record of its
//! remote segments), and so is moving on to the next one.

use std::ops::Range;

use bytes::Bytes;
use fjord_storage::batch::{BatchHeader, HEADER_BYTES, LOG_OVERHEAD, MAGIC_V2};
use fjord_storage::{ReadResult, TimestampOffset, records};
use fjord_tiered::{CHUNK_BYTES, FileKind, RemoteSegment, RemoteStore};

/// The least read of the `.log`: the batches between an index entry and the
/// one wanted (about `index.interval.bytes`) cost no second request.
const MIN_READ_BYTES: u64 = 64 << 10;

/// The most read of the `.log` at once: the store fetches the chunks of one
/// read four at a time, and a fetch that stops early (at `upto`, or at the
/// end of what the client wants) wastes at most this much.
const MAX_READ_BYTES: u64 = 4 * CHUNK_BYTES;

/// Decompression bound for the record-level lookup, the local log's: far
/// above Kafka's 1 MiB default message size, far below what a bomb asks for.
const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// `.index` entry: relative offset u32, file position u32 (Kafka's `OffsetIndex`).
const OFFSET_ENTRY_BYTES: usize = 8;
/// `.timeindex` entry: timestamp i64, relative offset u32 (Kafka's `TimeIndex`).
const TIME_ENTRY_BYTES: usize = 12;

/// What a remote read returned: whole batches, as [`fjord_storage::ReadResult`]
/// (`into()` makes one). The slices are slices of what the store returned,
/// mostly of its cached chunks (no copy); there are several when offsetless
/// batches or chunk boundaries lie between the returned batches. Owned by
/// the fetch that asked; holding it keeps those chunks in memory.
#[derive(Debug, Clone, Default)]
pub struct RemoteRead {
    pub slices: Vec<Bytes>,
    pub bytes: usize,
    /// Offset after the last returned batch; the requested offset if none.
    pub next_offset: i64,
}

impl RemoteRead {
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }
}

impl From<RemoteRead> for ReadResult {
    fn from(r: RemoteRead) -> Self {
        ReadResult { slices: r.slices, bytes: r.bytes, next_offset: r.next_offset }
    }
}

/// Why a remote read failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteReadError {
    /// The object store failed (see [`fjord_tiered::Error`] for which
    /// failures may pass), or the request does not fit the segment
    /// (`InvalidInput`: an offset outside it).
    #[error(transparent)]
    Store(#[from] fjord_tiered::Error),
    /// The objects are not what a sealed segment holds: a batch header that
    /// is cut short, not v2 or runs past the file, offsets that go back, an
    /// index entry that points elsewhere, records that do not decode.
    #[error("remote segment {segment}: {detail}")]
    Corrupt { segment: String, detail: String },
}

fn corrupt(segment: &RemoteSegment, detail: impl Into<String>) -> RemoteReadError {
    RemoteReadError::Corrupt { segment: segment.id.to_string(), detail: detail.into() }
}

/// Batches of `segment` (whose first offset is `base_offset` and whose
/// records end before `next_offset`) from the one holding `fetch_offset`, up
/// to `max_bytes` (the first batch whole even if larger, KIP-74, when
/// `min_one_batch`; otherwise nothing if the first batch exceeds
/// `max_bytes`), never a batch reaching `upto`. Offsetless batches are
/// skipped. One segment only: the caller moves to the next segment.
///
/// `fetch_offset == next_offset` (or at or above `upto`) reads nothing; an
/// offset outside `base_offset..=next_offset` is `Store(InvalidInput)`.
// The local log's read plus the segment's bounds and KIP-74's choice.
#[allow(clippy::too_many_arguments)]
pub async fn read(
    store: &RemoteStore,
    segment: &RemoteSegment,
    base_offset: i64,
    next_offset: i64,
    fetch_offset: i64,
    max_bytes: usize,
    min_one_batch: bool,
    upto: i64,
) -> Result<RemoteRead, RemoteReadError> {
    if !(base_offset..=next_offset).contains(&fetch_offset) {
        let detail = format!("{}: offset {fetch_offset} is outside the segment's offsets {base_offset}..{next_offset}", segment.id);
        return Err(fjord_tiered::Error::InvalidInput(detail).into());
    }
    let mut out = RemoteRead { next_offset: fetch_offset, ..Default::default() };
    // The segment's end bounds the read as the high watermark does.
    let upto = upto.min(next_offset);
    if fetch_offset >= upto {
        return Ok(out);
    }
    let want_bytes = u64::try_from(max_bytes).unwrap_or(u64::MAX).clamp(MIN_READ_BYTES, MAX_READ_BYTES);
    let mut log = LogWindow::new(store, segment, want_bytes)?;
    let index = OffsetIndex::fetch(store, segment).await?;
    let Some(start) = locate(&mut log, index.as_ref(), base_offset, fetch_offset).await? else {
        return Err(corrupt(segment, format!("the log ends before offset {fetch_offset}, but the segment's offsets end at {next_offset}")));
    };
    read_batches(&mut log, start, &mut out, max_bytes, min_one_batch, upto).await?;
    debug_assert_eq!(out.bytes, out.slices.iter().map(Bytes::len).sum::<usize>());
    debug_assert!(out.is_empty() || (out.next_offset > fetch_offset && out.next_offset <= upto));
    Ok(out)
}

/// Appends to `out` the batches from the offset-bearing one at `cursor`, as
/// the local log's `read_segment` does; contiguous batches become one slice.
async fn read_batches(
    log: &mut LogWindow<'_>,
    mut cursor: Cursor,
    out: &mut RemoteRead,
    max_bytes: usize,
    min_one_batch: bool,
    upto: i64,
) -> Result<(), RemoteReadError> {
    let fits = |bytes: usize, size: usize| (bytes == 0 && min_one_batch) || bytes.saturating_add(size) <= max_bytes;
    // File range of the batches taken but not yet sliced; always inside the
    // window, so it is sliced before the window moves.
    let mut run: Option<Range<u64>> = None;
    // Every batch has a whole header: once none fits, nothing more is read.
    while fits(out.bytes, HEADER_BYTES) {
        if !log.holds(cursor.position, HEADER_BYTES) {
            log.flush(&mut run, out);
        }
        let Some((position, h)) = log.next_batch(&mut cursor).await? else { break };
        let size = h.total_bytes();
        if h.offset_count() == 0 {
            log.flush(&mut run, out);
            continue;
        }
        if h.last_offset() >= upto || !fits(out.bytes, size) {
            break;
        }
        if !log.holds(position, size) {
            log.flush(&mut run, out);
            log.ensure(position, size).await?;
        }
        let end = position + size as u64;
        run = Some(match run {
            Some(r) => {
                debug_assert_eq!(r.end, position, "a run holds adjacent batches");
                r.start..end
            }
            None => position..end,
        });
        out.bytes += size;
        out.next_offset = h.last_offset() + 1;
    }
    log.flush(&mut run, out);
    Ok(())
}

/// Kafka's findOffsetByTimestamp on a remote segment: the first record with
/// timestamp >= `timestamp` (via the time index, then the offset index and a
/// scan of batch headers, then the records of one batch, decompressed if
/// need be), with the leader epoch of its batch. `None` if no record in the
/// segment qualifies. As the local log's `offset_for_timestamp` for one
/// segment; a segment uploaded without its time index is scanned from its
/// start.
pub async fn offset_for_timestamp(
    store: &RemoteStore,
    segment: &RemoteSegment,
    base_offset: i64,
    timestamp: i64,
) -> Result<Option<TimestampOffset>, RemoteReadError> {
    let from_offset = match TimeIndex::fetch(store, segment).await? {
        // The last entry holds the segment's largest timestamp (written on seal).
        Some(times) if times.largest_timestamp() < timestamp => return Ok(None),
        Some(times) => times.floor(timestamp).map_or(base_offset, |relative| base_offset + i64::from(relative)),
        None => base_offset,
    };
    let index = OffsetIndex::fetch(store, segment).await?;
    let mut log = LogWindow::new(store, segment, MIN_READ_BYTES)?;
    let Some(mut cursor) = locate(&mut log, index.as_ref(), base_offset, from_offset).await? else { return Ok(None) };
    while let Some((position, h)) = log.next_batch(&mut cursor).await? {
        if h.offset_count() == 0 || h.max_timestamp < timestamp {
            continue;
        }
        let batch = log.batch(position, &h).await?;
        let found = records::first_record_at_or_after(&batch, timestamp, MAX_DECOMPRESSED_BYTES)
            .map_err(|e| corrupt(segment, format!("batch at position {position}: {e}")))?;
        if let Some((offset, record_timestamp)) = found {
            debug_assert!(record_timestamp >= timestamp && offset >= h.base_offset);
            return Ok(Some(TimestampOffset { timestamp: record_timestamp, offset, leader_epoch: h.leader_epoch }));
        }
    }
    Ok(None)
}

/// Where the first offset-bearing batch whose last offset is at least
/// `offset` starts, as the local `Segment::locate_offset`: index entries
/// hold last offsets, so the floor entry of `offset - 1` is a batch that
/// ends before `offset`, and the scan starts there. `None` if the log ends
/// first.
async fn locate(
    log: &mut LogWindow<'_>,
    index: Option<&OffsetIndex>,
    base_offset: i64,
    offset: i64,
) -> Result<Option<Cursor>, RemoteReadError> {
    let entry = index.and_then(|i| i.floor(offset - 1 - base_offset));
    let mut cursor = Cursor { position: entry.map_or(0, |(_, position)| u64::from(position)), last_offset: base_offset - 1 };
    if let Some((relative, position)) = entry {
        // Cheap, and it turns a damaged index into an error instead of batches read from mid-batch.
        let expected = base_offset + i64::from(relative);
        let h = log.header_at(cursor.position).await?;
        if !h.is_some_and(|h| h.offset_count() > 0 && h.last_offset() == expected) {
            let detail = format!("offset index entry ({relative}, {position}) does not point at the batch ending at offset {expected}");
            return Err(corrupt(log.segment, detail));
        }
    }
    loop {
        let here = cursor;
        let Some((_, h)) = log.next_batch(&mut cursor).await? else { return Ok(None) };
        if h.offset_count() > 0 && h.last_offset() >= offset {
            return Ok(Some(here));
        }
    }
}

/// How far a scan of the `.log` got: the next batch's position, and the last
/// offset seen, so that offsets going back are caught.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    position: u64,
    last_offset: i64,
}

/// The bytes of one remote `.log` last read, and where they start. Lives for
/// one call.
struct LogWindow<'a> {
    store: &'a RemoteStore,
    segment: &'a RemoteSegment,
    size_bytes: u64,
    /// How much to read at once (at least what is needed).
    want_bytes: u64,
    start: u64,
    bytes: Bytes,
}

impl<'a> LogWindow<'a> {
    fn new(store: &'a RemoteStore, segment: &'a RemoteSegment, want_bytes: u64) -> Result<Self, RemoteReadError> {
        let log = segment.file(FileKind::Log).ok_or_else(|| corrupt(segment, "the upload has no log file"))?;
        Ok(LogWindow { store, segment, size_bytes: log.size_bytes, want_bytes, start: 0, bytes: Bytes::new() })
    }

    fn holds(&self, position: u64, len: usize) -> bool {
        position >= self.start && position.saturating_add(len as u64) <= self.start + self.bytes.len() as u64
    }

    /// Makes `len` bytes at `position` readable, reading from `position` if
    /// the window does not hold them. The caller checked they lie in the file.
    async fn ensure(&mut self, position: u64, len: usize) -> Result<(), RemoteReadError> {
        if self.holds(position, len) {
            return Ok(());
        }
        let range = window(position, len as u64, self.want_bytes, self.size_bytes);
        debug_assert!(range.end - range.start >= len as u64, "{range:?} holds {len} bytes");
        let bytes = self.store.read_range(self.segment, FileKind::Log, range.clone()).await?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(corrupt(self.segment, format!("read {} bytes of the log at {range:?}", bytes.len())));
        }
        (self.start, self.bytes) = (range.start, bytes);
        Ok(())
    }

    /// Bytes the window holds (checked by `holds` or `ensure`).
    fn slice(&self, range: Range<u64>) -> Bytes {
        debug_assert!(self.holds(range.start, (range.end - range.start) as usize));
        self.bytes.slice((range.start - self.start) as usize..(range.end - self.start) as usize)
    }

    /// Moves the batches taken so far into `out`, before the window moves.
    fn flush(&self, run: &mut Option<Range<u64>>, out: &mut RemoteRead) {
        if let Some(range) = run.take() {
            out.slices.push(self.slice(range));
        }
    }

    /// The checked header of the batch at `position`; `None` exactly at the
    /// end of the log.
    async fn header_at(&mut self, position: u64) -> Result<Option<BatchHeader>, RemoteReadError> {
        if position == self.size_bytes {
            return Ok(None);
        }
        if position.saturating_add(HEADER_BYTES as u64) > self.size_bytes {
            return Err(corrupt(self.segment, format!("no batch header fits at position {position} of a {}-byte log", self.size_bytes)));
        }
        self.ensure(position, HEADER_BYTES).await?;
        let at = (position - self.start) as usize;
        let h = BatchHeader::parse(&self.bytes[at..at + HEADER_BYTES])
            .map_err(|e| corrupt(self.segment, format!("batch at position {position}: {e}")))?;
        let fits = position.saturating_add(h.total_bytes() as u64) <= self.size_bytes;
        if h.magic != MAGIC_V2 || h.batch_length < (HEADER_BYTES - LOG_OVERHEAD) as i32 || h.last_offset_delta < -1 || !fits {
            let detail = format!(
                "batch at position {position} is not a v2 batch within the {}-byte log (magic {}, batchLength {}, lastOffsetDelta {})",
                self.size_bytes, h.magic, h.batch_length, h.last_offset_delta
            );
            return Err(corrupt(self.segment, detail));
        }
        Ok(Some(h))
    }

    /// The batch at the cursor and its position, the cursor moved past it;
    /// `None` at the end of the log. Each step moves at least a header's
    /// length, so a scan ends.
    async fn next_batch(&mut self, cursor: &mut Cursor) -> Result<Option<(u64, BatchHeader)>, RemoteReadError> {
        let position = cursor.position;
        let Some(h) = self.header_at(position).await? else { return Ok(None) };
        if h.offset_count() > 0 {
            if h.base_offset <= cursor.last_offset {
                let detail = format!("batch at position {position} starts at offset {} after offset {}", h.base_offset, cursor.last_offset);
                return Err(corrupt(self.segment, detail));
            }
            cursor.last_offset = h.last_offset();
        }
        cursor.position = position + h.total_bytes() as u64;
        Ok(Some((position, h)))
    }

    /// The whole batch at `position`, whose header is `h`.
    async fn batch(&mut self, position: u64, h: &BatchHeader) -> Result<Bytes, RemoteReadError> {
        let size = h.total_bytes();
        self.ensure(position, size).await?;
        Ok(self.slice(position..position + size as u64))
    }
}

/// The range of the log to read for `need` bytes at `position`, within the
/// file. A range inside one chunk is a slice of the cached chunk, one across
/// two is a copy, so reads of up to a chunk stop at the end of
/// `position`'s chunk, and only what straddles a boundary (a batch, a
/// header) is read across it, alone. Larger reads (`want` above a chunk)
/// span chunks on purpose: the store fetches those in parallel.
fn window(position: u64, need: u64, want: u64, size_bytes: u64) -> Range<u64> {
    let chunk_end = (position / CHUNK_BYTES + 1) * CHUNK_BYTES;
    let end = if want > CHUNK_BYTES {
        position.saturating_add(need.max(want))
    } else if position + need <= chunk_end {
        position.saturating_add(need.max(want)).min(chunk_end)
    } else {
        position + need
    };
    position..end.min(size_bytes)
}

/// An index object, read whole, in fixed-size big-endian entries.
async fn fetch_index(
    store: &RemoteStore,
    segment: &RemoteSegment,
    kind: FileKind,
    entry_bytes: usize,
) -> Result<Option<Bytes>, RemoteReadError> {
    // An upload without an index is read by scanning; the index only saves reads.
    let Some(file) = segment.file(kind) else { return Ok(None) };
    let bytes = store.read_range(segment, kind, 0..file.size_bytes).await?;
    if !bytes.len().is_multiple_of(entry_bytes) {
        return Err(corrupt(segment, format!("{kind} of {} bytes is not whole {entry_bytes}-byte entries", bytes.len())));
    }
    Ok(Some(bytes))
}

/// The `.index` object: (relative last offset, position) per entry.
struct OffsetIndex(Bytes);

impl OffsetIndex {
    async fn fetch(store: &RemoteStore, segment: &RemoteSegment) -> Result<Option<Self>, RemoteReadError> {
        Ok(fetch_index(store, segment, FileKind::OffsetIndex, OFFSET_ENTRY_BYTES).await?.map(OffsetIndex))
    }

    /// The last entry whose relative offset is at most `relative`.
    fn floor(&self, relative: i64) -> Option<(u32, u32)> {
        let (entries, _) = self.0.as_chunks::<OFFSET_ENTRY_BYTES>();
        let decode = |e: &[u8; OFFSET_ENTRY_BYTES]| {
            let [relative @ .., p0, p1, p2, p3] = *e;
            (u32::from_be_bytes(relative), u32::from_be_bytes([p0, p1, p2, p3]))
        };
        let n = entries.partition_point(|e| i64::from(decode(e).0) <= relative);
        n.checked_sub(1).map(|i| decode(&entries[i]))
    }
}

/// The `.timeindex` object: (largest timestamp so far, its relative offset)
/// per entry, the last one the segment's largest timestamp.
struct TimeIndex(Bytes);

impl TimeIndex {
    async fn fetch(store: &RemoteStore, segment: &RemoteSegment) -> Result<Option<Self>, RemoteReadError> {
        Ok(fetch_index(store, segment, FileKind::TimeIndex, TIME_ENTRY_BYTES).await?.map(TimeIndex))
    }

    fn entries(&self) -> &[[u8; TIME_ENTRY_BYTES]] {
        self.0.as_chunks::<TIME_ENTRY_BYTES>().0
    }

    fn decode(e: &[u8; TIME_ENTRY_BYTES]) -> (i64, u32) {
        let [timestamp @ .., r0, r1, r2, r3] = *e;
        (i64::from_be_bytes(timestamp), u32::from_be_bytes([r0, r1, r2, r3]))
    }

    /// -1 when no batch carries a timestamp, as the local segment says.
    fn largest_timestamp(&self) -> i64 {
        self.entries().last().map_or(-1, |e| Self::decode(e).0)
    }

    /// The relative offset of the last entry whose timestamp is at most `timestamp`.
    fn floor(&self, timestamp: i64) -> Option<u32> {
        let entries = self.entries();
        let n = entries.partition_point(|e| Self::decode(e).0 <= timestamp);
        n.checked_sub(1).map(|i| Self::decode(&entries[i]).1)
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;
    use std::path::{Path, PathBuf};

    use fjord_storage::batch::{self, build_offsetless_control, uncompressed_batch};
    use fjord_storage::{Log, LogConfig};
    use fjord_tiered::{Object, RetryBounds, SegmentId, TieredConfig};
    use tempfile::TempDir;

    use super::*;

    const SNAPPY: i16 = 2;
    const TOPIC_ID: [u8; 16] = [7; 16];

    /// A local log with every sealed segment uploaded: the local log is the
    /// reference the remote reads must agree with.
    struct Fixture {
        log: Log,
        log_dir: TempDir,
        remote_dir: TempDir,
        store: RemoteStore,
        segments: Vec<Uploaded>,
    }

    struct Uploaded {
        base_offset: i64,
        next_offset: i64,
        remote: RemoteSegment,
    }

    /// Appends with consecutive raft indexes and a leader epoch that moves now and then.
    struct Writer {
        log: Log,
        raft: u64,
    }

    impl Writer {
        fn append(&mut self, batch: &[u8]) {
            let epoch = 1 + (self.raft / 50) as i32;
            self.log.append(batch, epoch, self.raft).unwrap();
            self.raft += 1;
        }

        fn offsetless(&mut self, payload_bytes: usize) {
            self.append(&build_offsetless_control(0, -1, &vec![0x5a; payload_bytes]));
        }
    }

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 64 << 10,
            index_interval_bytes: 512,
            preallocate_step_bytes: 64 << 10,
            retention_ms: None,
            ..Default::default()
        }
    }

    fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
        dir.join(format!("{base_offset:020}.{ext}"))
    }

    /// Timestamps of batch `i`'s records: about `i` seconds in, out of order
    /// within the batch, and every 13th batch older than the ones before, so
    /// the time index's "largest so far" and the record-level search matter.
    fn timestamps(i: usize, records: usize) -> Vec<i64> {
        let base = 1_700_000_000_000 + i as i64 * 1000 - if i % 13 == 5 { 20_000 } else { 0 };
        (0..records).map(|j| base + ((j * 7 + i) % 5) as i64 * 100).collect()
    }

    /// `uncompressed_batch`'s records as one raw snappy block of literals
    /// (what older librdkafka writes; no compressor needed), so the time
    /// lookup has to decompress.
    fn snappy_batch(timestamps: &[i64], value_len: usize) -> Vec<u8> {
        let plain = uncompressed_batch(timestamps, value_len);
        let h = BatchHeader::parse(&plain).unwrap();
        let records = &plain[HEADER_BYTES..];
        let mut block = Vec::new();
        let mut len = records.len();
        while len >= 0x80 {
            block.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        block.push(len as u8);
        for literal in records.chunks(60) {
            block.push(((literal.len() - 1) << 2) as u8);
            block.extend_from_slice(literal);
        }
        batch::build(0, 0, SNAPPY, h.last_offset_delta, h.base_timestamp, h.max_timestamp, -1, h.record_count, &block)
    }

    /// Batch `i` of the mix: offsetless control batches (one in ten, some in
    /// pairs, some large), snappy batches, now and then a batch of
    /// `big_value_bytes`, else one to four records of up to 420 bytes.
    fn append_mixed(w: &mut Writer, i: usize, big_value_bytes: usize) {
        match i % 10 {
            3 => w.offsetless((i * 37) % 700),
            4 if i % 20 == 4 => w.offsetless(if i % 40 == 4 { big_value_bytes } else { 10 }),
            7 => w.append(&snappy_batch(&timestamps(i, 3), 50 + i % 90)),
            _ if i.is_multiple_of(23) => w.append(&uncompressed_batch(&timestamps(i, 2), big_value_bytes)),
            _ => w.append(&uncompressed_batch(&timestamps(i, 1 + i % 4), 20 + (i * 53) % 400)),
        }
        // A segment that ends with offsetless batches and one that starts with them.
        if i == 100 {
            w.offsetless(30);
            w.log.roll().unwrap();
            w.offsetless(30);
            w.offsetless(3000);
        }
    }

    async fn fixture(config: LogConfig, batches: usize, big_value_bytes: usize) -> Fixture {
        let (log_dir, remote_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut w = Writer { log: Log::open(log_dir.path(), config).unwrap(), raft: 1 };
        for i in 0..batches {
            append_mixed(&mut w, i, big_value_bytes);
        }
        let store = RemoteStore::open(&TieredConfig::local(remote_dir.path())).unwrap();
        let bases = w.log.segment_base_offsets();
        let mut segments = Vec::new();
        for pair in bases.windows(2) {
            let remote = upload(&store, log_dir.path(), pair[0], &[FileKind::Log, FileKind::OffsetIndex, FileKind::TimeIndex]).await;
            segments.push(Uploaded { base_offset: pair[0], next_offset: pair[1], remote });
        }
        Fixture { log: w.log, log_dir, remote_dir, store, segments }
    }

    async fn upload(store: &RemoteStore, dir: &Path, base_offset: i64, kinds: &[FileKind]) -> RemoteSegment {
        let files: Vec<_> = kinds.iter().map(|k| (*k, segment_path(dir, base_offset, k.extension()))).collect();
        store.upload_segment(&SegmentId::new_upload(TOPIC_ID, 0, base_offset), &files).await.unwrap()
    }

    /// The headers of the batches in `bytes`, which must be whole batches.
    fn headers(bytes: &[u8]) -> Vec<(usize, BatchHeader)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let h = BatchHeader::parse(&bytes[at..]).unwrap();
            out.push((at, h));
            at += h.total_bytes();
        }
        assert_eq!(at, bytes.len(), "whole batches");
        out
    }

    /// The slices of a read, joined (`ReadResult::to_vec` goes byte by byte,
    /// slow for megabytes in a debug build).
    fn joined(slices: &[Bytes]) -> Vec<u8> {
        let mut out = Vec::with_capacity(slices.iter().map(Bytes::len).sum());
        slices.iter().for_each(|s| out.extend_from_slice(s));
        out
    }

    /// One remote read checked against the local log's read of the same
    /// segment; returns how many slices it gave.
    async fn check_read(f: &Fixture, seg: &Uploaded, offset: i64, max_bytes: usize, min_one_batch: bool, upto: i64) -> usize {
        let ctx = format!("segment {} offset {offset} max_bytes {max_bytes} min_one_batch {min_one_batch} upto {upto}", seg.base_offset);
        let got = read(&f.store, &seg.remote, seg.base_offset, seg.next_offset, offset, max_bytes, min_one_batch, upto)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let local = f.log.read(offset, max_bytes, upto.min(seg.next_offset)).unwrap();
        // The local log always gives the first batch whole (KIP-74).
        let first_too_big = local.slices.first().is_some_and(|s| BatchHeader::parse(s).unwrap().total_bytes() > max_bytes);
        let want = if first_too_big && !min_one_batch { ReadResult { next_offset: offset, ..Default::default() } } else { local };
        let got_bytes = joined(&got.slices);
        assert!(got_bytes == joined(&want.slices), "{ctx}: {} bytes, the local log {}", got_bytes.len(), want.bytes);
        assert_eq!((got.bytes, got.next_offset), (want.bytes, want.next_offset), "{ctx}");
        assert!(got.slices.iter().all(|s| !s.is_empty()), "{ctx}");
        for (_, h) in headers(&got_bytes) {
            assert!(h.offset_count() > 0, "{ctx}: an offsetless batch was returned");
            assert!(h.last_offset() < seg.next_offset.min(upto), "{ctx}");
        }
        got.slices.len()
    }

    #[tokio::test]
    async fn reads_match_the_local_log() {
        let f = fixture(small_config(), 400, 3000).await;
        assert!(f.segments.len() >= 4, "{} sealed segments", f.segments.len());
        // The mix really puts offsetless batches inside, at the start and at the end of segments.
        let mut offsetless = 0;
        let (mut starts_offsetless, mut ends_offsetless) = (false, false);
        for seg in &f.segments {
            let bytes = std::fs::read(segment_path(f.log_dir.path(), seg.base_offset, "log")).unwrap();
            let hs = headers(&bytes);
            offsetless += hs.iter().filter(|(_, h)| h.offset_count() == 0).count();
            starts_offsetless |= hs.first().unwrap().1.offset_count() == 0;
            ends_offsetless |= hs.last().unwrap().1.offset_count() == 0;
        }
        assert!(offsetless >= 20 && starts_offsetless && ends_offsetless, "{offsetless} {starts_offsetless} {ends_offsetless}");

        let mut most_slices = 0;
        for seg in &f.segments {
            for offset in seg.base_offset..=seg.next_offset {
                for max_bytes in [0, 61, 700, 3000, 100_000, usize::MAX] {
                    for upto in [seg.next_offset, offset + 3, offset, i64::MAX] {
                        for min_one_batch in [true, false] {
                            most_slices = most_slices.max(check_read(&f, seg, offset, max_bytes, min_one_batch, upto).await);
                        }
                    }
                }
            }
        }
        assert!(most_slices >= 3, "reads stepped over offsetless batches: {most_slices} slices");
    }

    #[tokio::test]
    async fn reads_across_chunk_boundaries_match_the_local_log() {
        // Segments of several 1 MiB chunks, batches and offsetless batches
        // larger than a read window, some cut by a chunk boundary.
        let config = LogConfig { segment_bytes: 3 << 20, ..small_config() };
        let f = fixture(config, 500, 150_000).await;
        let mut cut = false;
        for seg in &f.segments {
            let bytes = std::fs::read(segment_path(f.log_dir.path(), seg.base_offset, "log")).unwrap();
            let chunk = |at: usize| at as u64 / CHUNK_BYTES;
            cut |= headers(&bytes).iter().any(|(at, h)| chunk(*at) != chunk(at + h.total_bytes() - 1));
            for offset in seg.base_offset..=seg.next_offset {
                for max_bytes in [0, 100_000, 1 << 20, 3 << 20] {
                    for min_one_batch in [true, false] {
                        check_read(&f, seg, offset, max_bytes, min_one_batch, i64::MAX).await;
                    }
                }
            }
        }
        let largest = f.segments.iter().map(|s| s.remote.file(FileKind::Log).unwrap().size_bytes).max().unwrap();
        assert!(cut && largest > 2 * CHUNK_BYTES, "some batch spans two chunks ({cut}), a segment spans three ({largest} bytes)");
    }

    #[tokio::test]
    async fn a_consumer_downloads_each_chunk_once_and_gets_slices_of_them() {
        let config = LogConfig { segment_bytes: 3 << 20, ..small_config() };
        let f = fixture(config, 500, 150_000).await;
        let seg = f.segments.iter().max_by_key(|s| s.remote.total_bytes()).unwrap();
        let size = |kind| seg.remote.file(kind).unwrap().size_bytes;
        let chunks = size(FileKind::Log).div_ceil(CHUNK_BYTES);
        let store = RemoteStore::open(&TieredConfig::local(f.remote_dir.path())).unwrap();
        let (mut offset, mut got, mut fetches) = (seg.base_offset, Vec::new(), 0);
        let (mut zero_copy, mut copied) = (0, 0);
        while offset < seg.next_offset {
            let r = read(&store, &seg.remote, seg.base_offset, seg.next_offset, offset, 1 << 20, true, i64::MAX).await.unwrap();
            assert!(r.next_offset > offset, "a fetch moves on");
            for slice in &r.slices {
                let within = |chunk: &Bytes| chunk.as_ptr_range().contains(&slice.as_ptr()) && slice.len() <= chunk.len();
                let in_a_chunk = (0..chunks).any(|index| {
                    let key = fjord_tiered::cache::ChunkKey { segment: seg.remote.id, kind: FileKind::Log, index };
                    store.cache().get(&key).is_some_and(|c| within(&c))
                });
                if in_a_chunk { zero_copy += 1 } else { copied += 1 }
            }
            got.extend(joined(&r.slices));
            (offset, fetches) = (r.next_offset, fetches + 1);
        }
        let all = joined(&f.log.read(seg.base_offset, usize::MAX, seg.next_offset).unwrap().slices);
        assert!(got == all, "a consumer reads the segment's batches, {} bytes of {}", got.len(), all.len());
        // Each chunk of the log and the index fetched once, nothing else.
        let downloaded = store.stats().snapshot().bytes_downloaded;
        assert_eq!(downloaded, size(FileKind::Log) + size(FileKind::OffsetIndex), "{fetches} fetches");
        // Slices of the cached chunks, but for batches that straddle two.
        assert!(zero_copy > 0 && copied < chunks, "{zero_copy} slices of chunks, {copied} copies, {chunks} chunks");
    }

    /// Every record of a segment in offset order, from the local log:
    /// (offset, timestamp, leader epoch, codec).
    fn records_of(log: &Log, seg: &Uploaded) -> Vec<(i64, i64, i32, i16)> {
        let bytes = joined(&log.read(seg.base_offset, usize::MAX, seg.next_offset).unwrap().slices);
        let mut out = Vec::new();
        for (at, h) in headers(&bytes) {
            records::for_each_record(&bytes[at..at + h.total_bytes()], MAX_DECOMPRESSED_BYTES, |r| {
                out.push((r.offset, r.timestamp, h.leader_epoch, h.compression_codec()));
                ControlFlow::Continue(())
            })
            .unwrap();
        }
        out
    }

    #[tokio::test]
    async fn offsets_for_timestamps_match_the_local_log() {
        let f = fixture(small_config(), 400, 3000).await;
        let mut answered_from_snappy = 0;
        for seg in &f.segments {
            let records = records_of(&f.log, seg);
            let (min, max) = records.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| (lo.min(r.1), hi.max(r.1)));
            let mut targets = vec![i64::MIN, -1, 0, min - 1, min, max, max + 1, i64::MAX];
            targets.extend(records.iter().flat_map(|r| [r.1 - 1, r.1, r.1 + 1]));
            for t in targets {
                let got = offset_for_timestamp(&f.store, &seg.remote, seg.base_offset, t).await.unwrap();
                // The first record in offset order with a timestamp at least t.
                let first = records.iter().find(|r| r.1 >= t);
                let oracle = first.map(|r| TimestampOffset { timestamp: r.1, offset: r.0, leader_epoch: r.2 });
                assert_eq!(got, oracle, "segment {} timestamp {t}", seg.base_offset);
                answered_from_snappy += usize::from(first.is_some_and(|r| r.3 == SNAPPY));
                // The local log answers from the first segment that has such a record.
                match f.log.offset_for_timestamp(t).unwrap() {
                    Some(local) if (seg.base_offset..seg.next_offset).contains(&local.offset) => assert_eq!(got, Some(local), "{t}"),
                    Some(local) if local.offset >= seg.next_offset => assert_eq!(got, None, "{t}"),
                    None => assert_eq!(got, None, "{t}"),
                    Some(_) => {}
                }
            }
        }
        assert!(answered_from_snappy > 0, "some answers came from a compressed batch");
    }

    #[tokio::test]
    async fn a_segment_uploaded_without_indexes_is_scanned() {
        let f = fixture(small_config(), 200, 3000).await;
        let seg = &f.segments[1];
        let bare = upload(&f.store, f.log_dir.path(), seg.base_offset, &[FileKind::Log]).await;
        let bare = Uploaded { remote: bare, ..*seg };
        for offset in [bare.base_offset, bare.base_offset + 5, bare.next_offset - 1] {
            check_read(&f, &bare, offset, 1000, true, i64::MAX).await;
        }
        for r in records_of(&f.log, seg).iter().step_by(7) {
            let with = offset_for_timestamp(&f.store, &seg.remote, seg.base_offset, r.1).await.unwrap();
            let without = offset_for_timestamp(&f.store, &bare.remote, bare.base_offset, r.1).await.unwrap();
            assert_eq!(with, without, "{}", r.1);
        }
    }

    #[tokio::test]
    async fn offsets_outside_the_segment() {
        let f = fixture(small_config(), 200, 3000).await;
        let seg = &f.segments[1];
        let at = |offset| read(&f.store, &seg.remote, seg.base_offset, seg.next_offset, offset, 1000, true, i64::MAX);
        for offset in [seg.base_offset - 1, seg.next_offset + 1] {
            let err = at(offset).await.unwrap_err();
            assert!(matches!(err, RemoteReadError::Store(fjord_tiered::Error::InvalidInput(_))), "{offset}: {err}");
        }
        let end = at(seg.next_offset).await.unwrap();
        assert!(end.is_empty() && end.next_offset == seg.next_offset && end.bytes == 0);
    }

    type Damage = fn(&mut Vec<u8>, &Uploaded);

    /// Sets the baseOffset of the `n`th offset-bearing batch of a `.log`.
    fn set_base_offset(log: &mut [u8], n: usize, base_offset: i64) {
        let (at, _) = headers(log).into_iter().filter(|(_, h)| h.offset_count() > 0).nth(n).unwrap();
        log[at..at + 8].copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Where the local backend keeps the object of `kind` of `seg`.
    fn object_file(f: &Fixture, seg: &Uploaded, kind: FileKind) -> PathBuf {
        f.remote_dir.path().join(f.store.object_path(&seg.remote.id, Object::File(kind)).as_ref())
    }

    /// A store of its own over the fixture's objects, so that no chunk of an
    /// intact object is cached, trying each request once.
    fn uncached_store(f: &Fixture) -> RemoteStore {
        let retry = RetryBounds { max_attempts: 1, ..RetryBounds::default() };
        RemoteStore::open(&TieredConfig { retry, ..TieredConfig::local(f.remote_dir.path()) }).unwrap()
    }

    /// Everything from `offset` to the end of the segment.
    async fn read_rest(store: &RemoteStore, seg: &Uploaded, offset: i64) -> Result<RemoteRead, RemoteReadError> {
        read(store, &seg.remote, seg.base_offset, seg.next_offset, offset, usize::MAX, true, i64::MAX).await
    }

    fn is_corrupt<T>(r: &Result<T, RemoteReadError>) -> bool {
        matches!(r, Err(RemoteReadError::Corrupt { .. }))
    }

    #[tokio::test]
    async fn damaged_objects_are_errors_not_panics() {
        let f = fixture(small_config(), 200, 3000).await;
        let seg = &f.segments[1];
        let cases: [(&str, FileKind, Damage); 7] = [
            ("garbage log", FileKind::Log, |b, _| b.fill(0xab)),
            ("zeroed second half", FileKind::Log, |b, _| {
                let half = b.len() / 2;
                b[half..].fill(0)
            }),
            ("offsets going back", FileKind::Log, |b, s| set_base_offset(b, 3, s.base_offset)),
            ("last batch past the end", FileKind::Log, |b, _| {
                let (at, _) = *headers(b).last().unwrap();
                b[at + 8..at + 12].copy_from_slice(&i32::MAX.to_be_bytes());
            }),
            ("index positions past the log", FileKind::OffsetIndex, |b, _| {
                b.chunks_exact_mut(OFFSET_ENTRY_BYTES).for_each(|e| e[4..].copy_from_slice(&u32::MAX.to_be_bytes()))
            }),
            ("index positions mid-batch", FileKind::OffsetIndex, |b, _| {
                b.chunks_exact_mut(OFFSET_ENTRY_BYTES).for_each(|e| e[7] = e[7].wrapping_add(1))
            }),
            ("garbage time index", FileKind::TimeIndex, |b, _| b.fill(0x7c)),
        ];
        for (name, kind, damage) in cases {
            let path = object_file(&f, seg, kind);
            let original = std::fs::read(&path).unwrap();
            let mut damaged = original.clone();
            damage(&mut damaged, seg);
            assert_eq!(damaged.len(), original.len(), "{name}: the size the manifest says");
            std::fs::write(&path, &damaged).unwrap();
            let store = uncached_store(&f);
            let whole = read_rest(&store, seg, seg.base_offset).await;
            let last = read_rest(&store, seg, seg.next_offset - 1).await;
            match kind {
                FileKind::Log => assert!(is_corrupt(&whole), "{name}: {whole:?}"),
                // The last offset's index entry is the last one.
                FileKind::OffsetIndex => assert!(is_corrupt(&last), "{name}: {last:?}"),
                // A damaged time index may only send the scan elsewhere; it must still end.
                _ => {}
            }
            for t in [i64::MIN, 1_700_000_000_000 + 150_000, i64::MAX] {
                let found = offset_for_timestamp(&store, &seg.remote, seg.base_offset, t).await;
                // Nothing rules the segment out before its first batch, so the log is read.
                if name == "garbage log" && t == i64::MIN {
                    assert!(is_corrupt(&found), "{name}: {found:?}");
                }
            }
            std::fs::write(&path, &original).unwrap();
        }

        // An object that is not the size its manifest says is the store's error.
        let path = object_file(&f, seg, FileKind::Log);
        let original = std::fs::read(&path).unwrap();
        std::fs::write(&path, &original[..original.len() - 100]).unwrap();
        let short = read_rest(&uncached_store(&f), seg, seg.base_offset).await;
        assert!(matches!(short, Err(RemoteReadError::Store(_))), "{short:?}");
    }
}
