//! Opening a log: what is trusted, what is scanned, what is cut.
//!
//! Segments below the recovery point were complete, indexed and synced when it
//! was written; they are listed, not read (a log of 10,000 segments opens by
//! reading one directory). From the segment holding the recovery point on,
//! every batch is checked (bounds, CRC-32C, dense offsets, non-decreasing
//! epochs) and the log is cut at the first bad one: a torn write, a
//! zero-filled preallocated tail, a flipped byte. Segments after a cut or a
//! discontinuity are deleted. After a clean close nothing is scanned but the
//! bytes after the active segment's last index entry.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use crate::cache::SegmentCache;
use crate::checkpoint::{self, LOG_START, RECOVERY_POINT};
use crate::config::{Clock, LogConfig};
use crate::error::{IoContext, Result};
use crate::flush::{Durable, FlushState, RecoveryPoint};
use crate::index;
use crate::log::{Log, OpenReport, Slot};
use crate::segment::{EXTENSIONS, LOG_EXT, RAFT_INDEX_EXT, Segment, file_name};

pub(crate) fn open(dir: &Path, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log> {
    fs::create_dir_all(dir).ctx("creating log directory", dir)?;
    let log_start = checkpoint::read(dir, LOG_START)?;
    let recovery_point = checkpoint::read(dir, RECOVERY_POINT)?;
    let mut bases = list_segments(dir)?;
    let mut report = OpenReport { clean: recovery_point == Some(i64::MAX), ..Default::default() };

    // A crash during retention can leave segments wholly below the log start.
    if let Some(start) = log_start {
        while bases.len() > 1 && bases[1] <= start {
            Log::remove_segment_files(dir, bases.remove(0))?;
            report.segments_dropped += 1;
        }
    }
    if bases.is_empty() {
        let base = log_start.unwrap_or(0);
        Segment::create(dir, base, 0, &config)?;
        checkpoint::sync_dir(dir)?;
        bases.push(base);
        report.clean = true;
    }

    let last = bases.len() - 1;
    let first_scanned = match recovery_point {
        _ if report.clean => last,
        Some(point) => bases.partition_point(|b| *b <= point).saturating_sub(1),
        None => 0,
    };
    let mut sealed: Vec<Slot> = bases[..first_scanned]
        .iter()
        .map(|&base| {
            let bytes = fs::metadata(dir.join(file_name(base, LOG_EXT))).map(|m| m.len()).unwrap_or(0);
            Slot { base_offset: base, bytes, base_raft: OnceLock::new() }
        })
        .collect();

    let mut pending = Vec::new();
    let mut active: Option<Segment> = None;
    // The first scanned segment must continue the last trusted one; that one
    // is opened for the check (and closed again: it is not kept open).
    let mut expected = match first_scanned.checked_sub(1) {
        Some(prev) => {
            let base_raft = trusted_base_raft(dir, bases[prev], &sealed[..prev])?;
            Some(Segment::open_sealed(dir, bases[prev], base_raft, config.index_interval_bytes)?.end())
        }
        None => None,
    };
    for (i, &base) in bases.iter().enumerate().skip(first_scanned) {
        if let Some(prev) = &active {
            expected = Some((prev.tail.next_offset, prev.tail.next_raft));
        }
        let base_raft = match (index::read_raft_header(&dir.join(file_name(base, RAFT_INDEX_EXT))), expected) {
            (Some(b), _) => b,
            (None, Some((_, next_raft))) => next_raft,
            (None, None) => base_raft_after_trusted(dir, &sealed)?,
        };
        if let Some((next_offset, next_raft)) = expected
            && (base != next_offset || base_raft != next_raft)
        {
            tracing::warn!(dir = %dir.display(), base, next_offset, base_raft, next_raft, "segment does not continue the log; deleting it and what follows");
            drop_from(dir, &bases[i..], &mut report)?;
            break;
        }
        let (seg, cut) = Segment::open_active(dir, base, base_raft, &config, !report.clean)?;
        report.segments_scanned += usize::from(!report.clean);
        report.truncated_bytes += cut;
        if cut > 0 {
            tracing::warn!(segment = %seg.log_path().display(), cut_bytes = cut, valid_bytes = seg.len(), "cut an invalid tail");
        }
        if let Some(mut prev) = active.replace(seg) {
            prev.seal()?;
            pending.push(prev.flush_parts(0, true));
            sealed.push(Slot { base_offset: prev.base_offset, bytes: prev.len(), base_raft: OnceLock::from(prev.base_raft) });
        }
        if cut > 0 && i < last {
            drop_from(dir, &bases[i + 1..], &mut report)?;
            break;
        }
    }
    let active = match active {
        Some(a) => a,
        // Every scanned segment was dropped: the last trusted one takes over.
        None => {
            let slot = sealed.pop().expect("a dropped first scanned segment has a trusted predecessor");
            let base_raft = trusted_base_raft(dir, slot.base_offset, &sealed)?;
            Segment::open_active(dir, slot.base_offset, base_raft, &config, false)?.0
        }
    };
    let log_start_offset =
        log_start.unwrap_or(i64::MIN).max(sealed.first().map_or(active.base_offset, |s| s.base_offset)).min(active.tail.next_offset);
    report.segments = sealed.len() + 1;

    // The log is live from here on: the recovery point must not claim the
    // active segment is clean.
    let point = if report.clean { active.base_offset } else { recovery_point.unwrap_or(i64::MIN).min(active.base_offset) };
    checkpoint::write(dir, RECOVERY_POINT, point)?;
    let durable = Durable { next_raft_index: active.tail.next_raft, next_offset: active.tail.next_offset };
    let mut flush = FlushState::new(durable);
    for p in pending {
        flush.sealed_since_flush(p);
    }
    let mut log = Log {
        dir: dir.to_path_buf(),
        cache: Mutex::new(SegmentCache::new(config.max_open_segments)),
        config,
        clock: Arc::clone(&clock),
        sealed,
        active,
        active_created_ms: clock.now_ms(),
        log_start_offset,
        recovery: Arc::new(Mutex::new(RecoveryPoint { generation: 0, value: point })),
        flush,
        report: report.clone(),
    };
    if !report.clean {
        // What the scan found good is on disk now, so the next crash need not scan it again.
        log.flush()?;
        tracing::info!(dir = %dir.display(), scanned = report.segments_scanned, truncated_bytes = report.truncated_bytes, dropped = report.segments_dropped, log_end_offset = log.log_end_offset(), "recovered log");
    }
    Ok(log)
}

/// Base offsets of the segments in `dir`, sorted. Removes what a crash can
/// leave behind: temporary files, a cleaning pass's `.cleaned` files (its
/// swap had not begun, or its first step left the old log; see
/// `compact/swap.rs`) and index files without a log.
fn list_segments(dir: &Path) -> Result<Vec<i64>> {
    let mut logs = Vec::new();
    let mut others = Vec::new();
    for entry in fs::read_dir(dir).ctx("listing log directory", dir)? {
        let entry = entry.ctx("listing log directory", dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || crate::compact::is_leftover(&name) {
            fs::remove_file(entry.path()).ctx("removing temporary file", &entry.path())?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else { continue };
        let Ok(base) = stem.parse::<i64>() else { continue };
        if stem.len() != 20 || !EXTENSIONS.contains(&ext) {
            continue;
        }
        if ext == LOG_EXT { logs.push(base) } else { others.push((base, entry.path())) }
    }
    logs.sort_unstable();
    for (base, path) in others {
        if logs.binary_search(&base).is_err() {
            fs::remove_file(&path).ctx("removing orphan index", &path)?;
        }
    }
    Ok(logs)
}

fn drop_from(dir: &Path, bases: &[i64], report: &mut OpenReport) -> Result<()> {
    for &b in bases.iter().rev() {
        Log::remove_segment_files(dir, b)?;
        report.segments_dropped += 1;
    }
    checkpoint::sync_dir(dir)
}

/// First raft index of the trusted segment at `base`: its header, or derived
/// from the trusted segments `before` it when the header is damaged.
fn trusted_base_raft(dir: &Path, base: i64, before: &[Slot]) -> Result<u64> {
    match index::read_raft_header(&dir.join(file_name(base, RAFT_INDEX_EXT))) {
        Some(b) => Ok(b),
        None => base_raft_after_trusted(dir, before),
    }
}

/// The first raft index after the trusted segments, for a scanned segment
/// whose own header is damaged: the last trusted segment's first index plus
/// its batch count.
fn base_raft_after_trusted(dir: &Path, sealed: &[Slot]) -> Result<u64> {
    let Some(last) = sealed.last() else {
        return Err(crate::error::StorageError::Corrupt {
            what: "raft index header",
            path: dir.join(file_name(0, RAFT_INDEX_EXT)),
            detail: "the first segment's header is unreadable and nothing precedes it".into(),
        });
    };
    let path = dir.join(file_name(last.base_offset, RAFT_INDEX_EXT));
    let base = index::read_raft_header(&path).ok_or_else(|| crate::error::StorageError::Corrupt {
        what: "raft index header",
        path: path.clone(),
        detail: "two neighbouring headers are unreadable".into(),
    })?;
    Ok(base + Segment::count_batches(dir, last.base_offset)?)
}

#[cfg(test)]
mod tests;
