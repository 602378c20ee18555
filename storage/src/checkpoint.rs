//! Small state files of a partition directory, written so that a crash leaves
//! either the old or the new value: write a temporary file, fsync it, rename
//! it over the old one, fsync the directory. Text, like Kafka's checkpoints,
//! so an operator can read them.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result, StorageError};

const VERSION: &str = "0";

/// `log-start-offset.checkpoint`: the first offset readers may see.
pub const LOG_START: &str = "log-start-offset.checkpoint";
/// `recovery-point.checkpoint`: segments whose base offset is below this value
/// are complete, indexed and on disk; recovery scans from the segment at it.
/// `i64::MAX` after a clean close.
pub const RECOVERY_POINT: &str = "recovery-point.checkpoint";
/// `cleaner-offset.checkpoint`: the log cleaner's first dirty offset (Kafka
/// keeps one `cleaner-offset-checkpoint` per log directory; a file per
/// partition keeps partitions independent).
pub const CLEANER_OFFSET: &str = "cleaner-offset.checkpoint";

pub fn write(dir: &Path, name: &str, value: i64) -> Result<()> {
    let path = dir.join(name);
    // A name of its own per write: a background flush and the owner may
    // write the same checkpoint at once, and must not rename each other's file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{name}.{}.{n}.tmp", std::process::id()));
    let mut f = File::create(&tmp).ctx("creating checkpoint", &tmp)?;
    f.write_all(format!("{VERSION}\n{value}\n").as_bytes()).ctx("writing checkpoint", &tmp)?;
    f.sync_all().ctx("syncing checkpoint", &tmp)?;
    fs::rename(&tmp, &path).ctx("renaming checkpoint", &path)?;
    sync_dir(dir)
}

/// `None` when the file does not exist; an error when it exists but is not ours.
pub fn read(dir: &Path, name: &str) -> Result<Option<i64>> {
    let path = dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::Io { context: "reading checkpoint", path, source: e }),
    };
    let mut lines = text.lines();
    match (lines.next(), lines.next().map(str::parse::<i64>)) {
        (Some(VERSION), Some(Ok(v))) => Ok(Some(v)),
        _ => Err(StorageError::Corrupt { what: "checkpoint", path, detail: format!("unexpected contents {text:?}") }),
    }
}

/// Makes creates, renames and unlinks in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx("syncing directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path(), LOG_START).unwrap(), None);
        write(d.path(), LOG_START, 42).unwrap();
        write(d.path(), LOG_START, 43).unwrap();
        assert_eq!(read(d.path(), LOG_START).unwrap(), Some(43));
        fs::write(d.path().join(LOG_START), "junk").unwrap();
        assert!(read(d.path(), LOG_START).is_err());
    }
}
