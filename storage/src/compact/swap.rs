//! Putting cleaned segments in place, crash-safe, under the log's lock.
//!
//! One rule makes every crash point recoverable: **a segment's `.index`
//! exists only while all its index files match its `.log`.** A missing
//! `.index` makes the next open of the segment rebuild all three from the
//! `.log` (`Segment::open_sealed`, or the recovery scan), and the
//! `.raftindex` header, the one thing that cannot be rebuilt, is the same
//! before and after (cleaning keeps every batch, so the first raft index
//! does not move). So, for every segment of the pass at once, each step
//! ending with a directory fsync:
//!
//! 1. unlink `<base>.index`;
//! 2. rename `<base>.log.cleaned` over `<base>.log` (the commit point);
//! 3. rename `.raftindex.cleaned`, `.timeindex.cleaned`, then `.index.cleaned`
//!    over theirs.
//!
//! A crash before 2 leaves the old log, after it the new one, each with its
//! indexes or with a rebuild pending; `.cleaned` leftovers are removed when
//! the log opens. Readers holding `Bytes` of the old file keep its map, and
//! with it the unlinked inode, alive.

use std::fs;
use std::path::Path;

use super::rewrite::{CLEANED_SUFFIX, Rewritten, discard};
use crate::checkpoint::sync_dir;
use crate::error::{IoContext, Result};
use crate::log::Log;
use crate::segment::{INDEX_EXT, LOG_EXT, RAFT_INDEX_EXT, TIME_INDEX_EXT, file_name};

/// Index files in the order step 3 renames them: `.index` last.
const INDEX_ORDER: [&str; 3] = [RAFT_INDEX_EXT, TIME_INDEX_EXT, INDEX_EXT];

impl Log {
    /// Swaps in the rewritten segments whose `.log` is still the file the
    /// pass read; the others' `.cleaned` files are removed. Returns how many
    /// were swapped and how many were stale.
    pub(crate) fn swap_cleaned(&mut self, rewritten: &[Rewritten]) -> Result<(usize, usize)> {
        let mut live = Vec::new();
        for r in rewritten {
            let base = r.planned.base_offset;
            let held = self.sealed.iter().position(|s| s.base_offset == base);
            if held.is_some() && file_id(&self.dir, base) == Some(r.planned.file_id) {
                live.push(base);
            } else {
                discard(&self.dir, base)?;
            }
        }
        let stale = rewritten.len() - live.len();
        if live.is_empty() {
            return Ok((0, stale));
        }
        let result = swap_files(&self.dir, &live);
        // Whatever happened on disk, nothing cached may describe the old files.
        let mut cache = self.cache.lock().expect("cache lock");
        for &base in &live {
            cache.remove(base);
            if let Some(slot) = self.sealed.iter_mut().find(|s| s.base_offset == base) {
                slot.bytes = fs::metadata(self.dir.join(file_name(base, LOG_EXT))).map_or(slot.bytes, |m| m.len());
            }
        }
        drop(cache);
        result.map(|()| (live.len(), stale))
    }
}

fn swap_files(dir: &Path, bases: &[i64]) -> Result<()> {
    for &base in bases {
        remove_if_present(&dir.join(file_name(base, INDEX_EXT)))?;
    }
    sync_dir(dir)?;
    for &base in bases {
        rename_cleaned(dir, base, LOG_EXT)?;
    }
    sync_dir(dir)?;
    for &base in bases {
        for ext in INDEX_ORDER {
            rename_cleaned(dir, base, ext)?;
        }
    }
    sync_dir(dir)
}

fn rename_cleaned(dir: &Path, base: i64, ext: &str) -> Result<()> {
    let to = dir.join(file_name(base, ext));
    let from = dir.join(format!("{}{CLEANED_SUFFIX}", file_name(base, ext)));
    fs::rename(&from, &to).ctx("swapping in a cleaned segment file", &from)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::error::StorageError::Io {
            context: "removing the index of a segment being swapped",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// (device, inode) of `<base>.log`, if it exists.
pub(crate) fn file_id(dir: &Path, base: i64) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir.join(file_name(base, LOG_EXT))).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `name` is a file a cleaning pass writes; the log removes any it
/// finds on open (a crash came before the swap, or in its first step).
pub(crate) fn is_leftover(name: &str) -> bool {
    name.ends_with(CLEANED_SUFFIX)
}
