//! Writing one cleaned segment: `<base>.log.cleaned` and its three indexes,
//! synced, beside the live segment, which stays readable throughout. Only a
//! segment that loses something is written; the swap is `swap.rs`'s.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::filter::{Filter, Outcome};
use crate::error::{IoContext, Result, StorageError};
use crate::segment::{Segment, paths_with};

/// Suffix of the files a cleaning pass writes (Kafka's `.cleaned`); any left
/// by a crash are removed when the log opens.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// A sealed segment as the pass found it under the log's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planned {
    pub base_offset: i64,
    /// The next segment's base offset.
    pub next_offset: i64,
    pub base_raft: u64,
    /// (device, inode) of its `.log`: swapped only if that file is still the one there.
    pub file_id: (u64, u64),
}

/// A segment rewritten into `.cleaned` files, ready to swap in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewritten {
    pub planned: Planned,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub batches_rewritten: u64,
}

/// A planned segment as a pass finds it when it comes to read it.
pub(crate) enum Opened {
    Segment(Box<Segment>),
    /// Deleted (retention or a purge came first).
    Gone,
    /// Another file under the same name (a truncation or a reset came first).
    Replaced,
}

pub(crate) fn open(dir: &Path, p: &Planned) -> Result<Opened> {
    let seg = match Segment::open_unindexed(dir, p.base_offset, p.base_raft) {
        Ok(seg) => seg,
        Err(StorageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::Gone),
        Err(e) => return Err(e),
    };
    Ok(if seg.file_id()? == p.file_id { Opened::Segment(Box::new(seg)) } else { Opened::Replaced })
}

/// Cleans `seg` through `filter`. Returns `None` when no batch changed (no
/// file is written then) or the segment cannot be rewritten whole.
pub(crate) fn rewrite(dir: &Path, p: &Planned, seg: &Segment, filter: &Filter<'_>, interval: u64) -> Result<Option<Rewritten>> {
    let mut out: Option<BufWriter<File>> = None;
    let mut end = 0u64;
    let (mut removed, mut rewritten) = (0u64, 0u64);
    let log_path = &paths_with(dir, p.base_offset, CLEANED_SUFFIX)[0];
    for l in seg.batches_from(0, p.base_raft) {
        let bytes = seg.batch_bytes(&l);
        let outcome = filter.clean(bytes, &l.header).unwrap_or_else(|e| {
            // Kafka marks such a log uncleanable; keeping the batch as it is loses nothing.
            tracing::warn!(segment = %seg.log_path().display(), offset = l.header.base_offset, "cleaner keeps a batch it cannot read: {e}");
            Outcome::Unchanged
        });
        match (outcome, out.as_mut()) {
            (Outcome::Unchanged, None) => {}
            (Outcome::Unchanged, Some(w)) => w.write_all(bytes).ctx("writing cleaned segment", log_path)?,
            (Outcome::Rewritten { bytes: new, records_removed }, w) => {
                let w = match w {
                    Some(w) => w,
                    None => out.insert(create(log_path, seg.slice(0, l.position as usize).as_ref())?),
                };
                w.write_all(&new).ctx("writing cleaned segment", log_path)?;
                removed += u64::from(records_removed);
                rewritten += 1;
            }
        }
        end = u64::from(l.position) + l.header.total_bytes() as u64;
    }
    let Some(w) = out else { return Ok(None) };
    if end != seg.len() {
        // A batch that does not parse: the rest cannot be carried over.
        tracing::warn!(segment = %seg.log_path().display(), end, len = seg.len(), "cleaner skips a segment it cannot read to the end");
        discard(dir, p.base_offset)?;
        return Ok(None);
    }
    let file = w.into_inner().map_err(|e| StorageError::Io {
        context: "writing cleaned segment",
        path: log_path.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().ctx("syncing cleaned segment", log_path)?;
    let (valid, len) = Segment::index_rewritten(dir, p.base_offset, p.base_raft, CLEANED_SUFFIX, interval)?;
    if valid != len || len > i32::MAX as u64 {
        discard(dir, p.base_offset)?;
        return Err(StorageError::Corrupt {
            what: "cleaned segment",
            path: log_path.clone(),
            detail: format!("only {valid} of its {len} bytes are valid batches"),
        });
    }
    Ok(Some(Rewritten { planned: *p, bytes_before: seg.len(), bytes_after: len, records_removed: removed, batches_rewritten: rewritten }))
}

/// A new `.cleaned` log holding `prefix` (the batches before the first change).
fn create(path: &Path, prefix: &[u8]) -> Result<BufWriter<File>> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::Io { context: "removing stale cleaned segment", path: path.to_path_buf(), source: e }),
    }
    let file = OpenOptions::new().write(true).create_new(true).open(path).ctx("creating cleaned segment", path)?;
    let mut w = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    w.write_all(prefix).ctx("writing cleaned segment", path)?;
    Ok(w)
}

/// Removes the `.cleaned` files of one segment, if any.
pub(crate) fn discard(dir: &Path, base_offset: i64) -> Result<()> {
    for path in paths_with(dir, base_offset, CLEANED_SUFFIX) {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::Io { context: "removing cleaned segment", path, source: e }),
        }
    }
    Ok(())
}
