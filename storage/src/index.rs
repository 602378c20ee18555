//! Sparse index files beside each segment, in Kafka's own entry formats so that
//! `kafka-dump-log` reads a Fjord segment:
//!
//! - `.index`: 8-byte entries (relative offset u32, file position u32). The
//!   offset is the *last* offset of the batch at that position, as Kafka's
//!   `LogSegment.append` indexes it.
//! - `.timeindex`: 12-byte entries (max timestamp so far i64, relative offset u32),
//!   appended only when the timestamp grows.
//! - `.raftindex` (ours): a 16-byte header holding the segment's first raft
//!   index, then 8-byte entries (relative raft index u32, position u32).
//!
//! Entries are kept in memory and written to the file on flush, roll and close;
//! the active segment's index is rebuilt from the log after a crash, so a lost
//! tail of index entries costs a scan, never data.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, StorageError};

/// One fixed-size entry of an index file.
pub trait Entry: Copy + std::fmt::Debug {
    const BYTES: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Self;
    /// The key the index is sorted by.
    fn key(&self) -> i64;
}

/// Offset (or raft) index entry: a relative key and a byte position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PosEntry {
    pub relative: u32,
    pub position: u32,
}

impl Entry for PosEntry {
    const BYTES: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Self { relative: u32::from_be_bytes(b[0..4].try_into().expect("4")), position: u32::from_be_bytes(b[4..8].try_into().expect("4")) }
    }
    fn key(&self) -> i64 {
        i64::from(self.relative)
    }
}

/// Time index entry: the largest timestamp seen so far and the relative offset
/// of the batch that first reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative: u32,
}

impl Entry for TimeEntry {
    const BYTES: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Self {
            timestamp: i64::from_be_bytes(b[0..8].try_into().expect("8")),
            relative: u32::from_be_bytes(b[8..12].try_into().expect("4")),
        }
    }
    fn key(&self) -> i64 {
        self.timestamp
    }
}

/// An index held in memory, backed by one file. Owned by its segment; the
/// log's writer is the only one that appends.
#[derive(Debug)]
pub struct Index<E: Entry> {
    path: PathBuf,
    header: Vec<u8>,
    entries: Vec<E>,
    /// Entries already written to the file.
    persisted: usize,
}

impl<E: Entry> Index<E> {
    /// A new, empty index; the file is created on the first [`Index::persist`].
    pub fn new(path: PathBuf, header: Vec<u8>) -> Self {
        Self { path, header, entries: Vec::new(), persisted: usize::MAX }
    }

    /// Loads an index file and checks that its keys and positions only grow.
    /// `header_bytes` of header are returned to the caller unparsed.
    pub fn load(path: PathBuf, header_bytes: usize, max_position: u32, position_of: impl Fn(&E) -> Option<u32>) -> Result<Self> {
        let mut bytes = Vec::new();
        File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).ctx("reading index", &path)?;
        let corrupt = |detail: String| StorageError::Corrupt { what: "index", path: path.clone(), detail };
        if bytes.len() < header_bytes || !(bytes.len() - header_bytes).is_multiple_of(E::BYTES) {
            return Err(corrupt(format!("length {} is not a header plus whole {}-byte entries", bytes.len(), E::BYTES)));
        }
        let entries: Vec<E> = bytes[header_bytes..].chunks_exact(E::BYTES).map(E::decode).collect();
        for pair in entries.windows(2) {
            if pair[1].key() <= pair[0].key() || position_of(&pair[1]) < position_of(&pair[0]) {
                return Err(corrupt(format!("entries out of order: {:?} then {:?}", pair[0], pair[1])));
            }
        }
        if let Some(p) = entries.last().and_then(&position_of)
            && p >= max_position
        {
            return Err(corrupt(format!("position {p} lies beyond the segment's {max_position} bytes")));
        }
        let persisted = entries.len();
        Ok(Self { path, header: bytes[..header_bytes].to_vec(), entries, persisted })
    }

    pub fn header(&self) -> &[u8] {
        &self.header
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub fn push(&mut self, e: E) {
        debug_assert!(self.entries.last().is_none_or(|l| l.key() < e.key()), "index keys must grow: {:?} then {e:?}", self.entries.last());
        self.entries.push(e);
    }

    /// The last entry whose key is at most `key`.
    pub fn floor(&self, key: i64) -> Option<&E> {
        let n = self.entries.partition_point(|e| e.key() <= key);
        n.checked_sub(1).map(|i| &self.entries[i])
    }

    /// Drops entries for which `keep` is false from the end.
    pub fn truncate_while(&mut self, drop: impl Fn(&E) -> bool) {
        while self.entries.last().is_some_and(&drop) {
            self.entries.pop();
        }
        if self.persisted > self.entries.len() {
            // The file holds entries we no longer want: rewrite it whole next time.
            self.persisted = usize::MAX;
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.persisted = usize::MAX;
    }

    pub fn set_header(&mut self, header: Vec<u8>) {
        self.header = header;
        self.persisted = usize::MAX;
    }

    /// Writes what the file lacks. A whole rewrite (first write, or after a
    /// truncation) goes through a temporary file and a rename, so a crash
    /// never leaves a torn header; a file with a header (the raft index) is
    /// also fsynced, since its header cannot be rebuilt. Appended entries are
    /// made durable by the caller's flush.
    pub fn persist(&mut self) -> Result<()> {
        let rewrite = self.persisted > self.entries.len();
        if !rewrite && self.persisted == self.entries.len() {
            return Ok(());
        }
        let from = if rewrite { 0 } else { self.persisted };
        let mut buf = Vec::with_capacity(self.header.len() + (self.entries.len() - from) * E::BYTES);
        if rewrite {
            buf.extend_from_slice(&self.header);
        }
        for e in &self.entries[from..] {
            e.encode(&mut buf);
        }
        if rewrite {
            self.rewrite(&buf)?;
        } else {
            let mut f = OpenOptions::new().append(true).open(&self.path).ctx("opening index", &self.path)?;
            f.write_all(&buf).ctx("writing index", &self.path)?;
        }
        self.persisted = self.entries.len();
        Ok(())
    }

    fn rewrite(&self, bytes: &[u8]) -> Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp).ctx("creating index", &tmp)?;
        f.write_all(bytes).ctx("writing index", &tmp)?;
        let durable = !self.header.is_empty();
        if durable {
            f.sync_all().ctx("syncing index", &tmp)?;
        }
        std::fs::rename(&tmp, &self.path).ctx("renaming index", &self.path)?;
        if durable && let Some(dir) = self.path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).ctx("syncing directory", dir)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The `.raftindex` header: the segment's first raft index and its CRC, so a
/// torn header is told apart from a real one.
pub fn raft_header(base_raft_index: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(RAFT_HEADER_BYTES);
    h.extend_from_slice(&base_raft_index.to_be_bytes());
    h.extend_from_slice(&crc32c::crc32c(&base_raft_index.to_be_bytes()).to_be_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

pub const RAFT_HEADER_BYTES: usize = 16;

pub fn parse_raft_header(h: &[u8]) -> Option<u64> {
    if h.len() < RAFT_HEADER_BYTES {
        return None;
    }
    let base: [u8; 8] = h[0..8].try_into().ok()?;
    let crc = u32::from_be_bytes(h[8..12].try_into().ok()?);
    (crc32c::crc32c(&base) == crc).then(|| u64::from_be_bytes(base))
}

/// Reads only the header of a `.raftindex` file: what a cold segment needs to
/// be found by raft index without loading its entries.
pub fn read_raft_header(path: &Path) -> Option<u64> {
    let mut h = [0u8; RAFT_HEADER_BYTES];
    File::open(path).and_then(|mut f| f.read_exact(&mut h)).ok()?;
    parse_raft_header(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_persist_and_reload_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.raftindex");
        let mut idx: Index<PosEntry> = Index::new(path.clone(), raft_header(77));
        for i in 0..10u32 {
            idx.push(PosEntry { relative: i * 3, position: i * 100 });
        }
        assert_eq!(idx.floor(7).unwrap().relative, 6);
        assert_eq!(idx.floor(-1), None);
        idx.persist().unwrap();
        idx.push(PosEntry { relative: 30, position: 1000 });
        idx.persist().unwrap();
        let back: Index<PosEntry> = Index::load(path.clone(), RAFT_HEADER_BYTES, 2000, |e: &PosEntry| Some(e.position)).unwrap();
        assert_eq!(back.entries(), idx.entries());
        assert_eq!(parse_raft_header(back.header()), Some(77));
        assert_eq!(read_raft_header(&path), Some(77));

        idx.truncate_while(|e| e.relative > 10);
        idx.persist().unwrap();
        let back: Index<PosEntry> = Index::load(path, RAFT_HEADER_BYTES, 2000, |e: &PosEntry| Some(e.position)).unwrap();
        assert_eq!(back.entries().len(), 4);
    }

    #[test]
    fn damaged_files_are_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.index");
        std::fs::write(&path, [0u8; 13]).unwrap();
        assert!(Index::<PosEntry>::load(path.clone(), 0, 100, |e: &PosEntry| Some(e.position)).is_err());
        let mut b = Vec::new();
        PosEntry { relative: 5, position: 10 }.encode(&mut b);
        PosEntry { relative: 4, position: 20 }.encode(&mut b);
        std::fs::write(&path, &b).unwrap();
        assert!(Index::<PosEntry>::load(path.clone(), 0, 100, |e: &PosEntry| Some(e.position)).is_err());
        let mut b = Vec::new();
        PosEntry { relative: 5, position: 500 }.encode(&mut b);
        std::fs::write(&path, &b).unwrap();
        assert!(Index::<PosEntry>::load(path, 0, 100, |e: &PosEntry| Some(e.position)).is_err());
        let mut h = raft_header(9);
        h[3] ^= 1;
        assert_eq!(parse_raft_header(&h), None);
    }
}
