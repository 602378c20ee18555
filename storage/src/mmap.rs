//! A memory-mapped segment file and the zero-copy `Bytes` handed to readers.
//!
//! Soundness rests on one rule the log keeps: bytes below a segment's published
//! length are never written again while readers may hold them. Appends write
//! only past that length; truncation rewrites only what lies above the high
//! watermark, which readers of committed data never see. The map is a raw
//! pointer (`MmapRaw`), so no `&mut [u8]` ever aliases a reader's `&[u8]`.

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};

/// One mapping of a segment's `.log` file. Shared by the segment and every
/// `Bytes` read from it; unmapped when the last of them drops.
#[derive(Debug)]
pub struct Region {
    map: MmapRaw,
    len: usize,
}

impl Region {
    /// Maps `len` bytes for reading and writing. The file must already be at
    /// least `len` long, or touching the tail raises SIGBUS.
    pub fn writable(file: &File, len: usize) -> io::Result<Self> {
        let map = MmapOptions::new().len(len).map_raw(file)?;
        Ok(Self { map, len })
    }

    pub fn read_only(file: &File, len: usize) -> io::Result<Self> {
        let map = MmapOptions::new().len(len).map_raw_read_only(file)?;
        // Sealed segments are read front to back by fetches and replication.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Self { map, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies `src` into the map at `at`. Callers write only above what any
    /// reader may hold (see the module doc).
    pub fn write(&self, at: usize, src: &[u8]) {
        assert!(at.checked_add(src.len()).is_some_and(|end| end <= self.len), "write past the mapped region");
        // SAFETY: in bounds (asserted); no reference to these bytes exists (module rule).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.map.as_mut_ptr().add(at), src.len()) }
    }

    /// Borrows published bytes, e.g. to parse a header during a scan.
    pub fn bytes(&self, at: usize, len: usize) -> &[u8] {
        assert!(at.checked_add(len).is_some_and(|end| end <= self.len), "read past the mapped region");
        // SAFETY: in bounds; published bytes are never written again (module rule).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(at), len) }
    }

    /// A `Bytes` pointing into the map, keeping the map alive. No copy.
    pub fn slice(self: &Arc<Self>, at: usize, len: usize) -> Bytes {
        assert!(at.checked_add(len).is_some_and(|end| end <= self.len), "slice past the mapped region");
        Bytes::from_owner(MapSlice { region: Arc::clone(self), at, len })
    }

    /// msync of a range; rounds out to page boundaries as the kernel requires.
    pub fn flush_range(&self, at: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(at, len)
    }
}

struct MapSlice {
    region: Arc<Region>,
    at: usize,
    len: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        self.region.bytes(self.at, self.len)
    }
}

/// Reserves disk blocks for `[offset, offset+len)` so that later stores into
/// the map cannot fault for lack of space.
pub fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), offset as libc::off_t, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate: the blocks come on first write, as with write(2).
        libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_outlive_the_segment_handle() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(dir.path().join("s")).unwrap();
        f.set_len(4096).unwrap();
        reserve(&f, 0, 4096).unwrap();
        let r = Arc::new(Region::writable(&f, 4096).unwrap());
        r.write(10, b"hello");
        let s = r.slice(10, 5);
        drop(r);
        drop(f);
        assert_eq!(&s[..], b"hello");
    }
}
