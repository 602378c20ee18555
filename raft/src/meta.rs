//! Raft's own state beside the partition log.
//!
//! - The vote and the last purged log id must survive any crash: one small
//!   JSON file (`raft-meta.json`) written as the storage checkpoints are:
//!   temporary file, fsync, rename, fsync of the directory, so a crash leaves
//!   the old or the new value, never a torn one.
//! - The committed log id is only a hint for restart (openraft applies up to
//!   it without waiting for a leader; a lost or stale one just means waiting).
//!   Like Kafka's high-watermark checkpoint (written every
//!   `replica.high.watermark.checkpoint.interval.ms`, never fsynced per
//!   commit) it lives in its own file, `raft-committed.json`, written at most
//!   once per [`COMMITTED_CHECKPOINT_INTERVAL`] without fsync; an unreadable
//!   one reads as none. It is kept apart so that its cheap writes can never
//!   tear the vote.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{RaftError, Result};
use crate::types::{LogId, Vote};

pub(crate) const META_FILE: &str = "raft-meta.json";
pub(crate) const COMMITTED_FILE: &str = "raft-committed.json";
/// How stale the committed checkpoint may get (Kafka's default is 5 s).
pub(crate) const COMMITTED_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything in the file. Owned by the log store (the only writer); readers
/// see a copy under its mutex.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    pub vote: Option<Vote>,
    /// Not stored in `raft-meta.json`; see [`read_committed`] and [`write_committed`].
    #[serde(skip)]
    pub committed: Option<LogId>,
    pub last_purged: Option<LogId>,
}

impl Meta {
    /// Reads the files in `dir`; a missing file is a new group.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self { committed: read_committed(dir), ..Self::default() }),
            Err(source) => return Err(RaftError::Io { context: "reading", path, source }),
        };
        let meta: Self = serde_json::from_slice(&bytes).map_err(|e| RaftError::CorruptMeta { path, detail: e.to_string() })?;
        Ok(Self { committed: read_committed(dir), ..meta })
    }

    /// Replaces the file in `dir` durably. Blocking: call it off the runtime.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).expect("votes and log ids always serialize");
        let path = dir.join(META_FILE);
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        fn io<'a>(context: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RaftError + 'a {
            move |source| RaftError::Io { context, path: path.to_path_buf(), source }
        }
        let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(&json).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io("renaming to", &path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing directory", dir))?;
        Ok(())
    }
}

/// The committed checkpoint; `None` when missing or unreadable (a torn
/// write after a crash), which only makes a restart wait for its leader.
pub(crate) fn read_committed(dir: &Path) -> Option<LogId> {
    let bytes = std::fs::read(dir.join(COMMITTED_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes the committed checkpoint: tmp + rename, no fsync (see the module doc).
pub(crate) fn write_committed(dir: &Path, committed: Option<LogId>) -> Result<()> {
    let json = serde_json::to_vec(&committed).expect("log ids always serialize");
    let path = dir.join(COMMITTED_FILE);
    let tmp = dir.join(format!("{COMMITTED_FILE}.tmp"));
    std::fs::write(&tmp, json).map_err(|source| RaftError::Io { context: "writing", path: tmp.clone(), source })?;
    std::fs::rename(&tmp, &path).map_err(|source| RaftError::Io { context: "renaming to", path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::log_id;

    #[test]
    fn writes_survive_reopen_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Meta::read(dir.path()).unwrap(), Meta::default());
        let m = Meta { vote: Some(Vote::new(3, 1)), committed: Some(log_id(3, 10)), last_purged: Some(log_id(2, 4)) };
        m.write(dir.path()).unwrap();
        assert_eq!(Meta::read(dir.path()).unwrap(), Meta { committed: None, ..m.clone() }, "committed is not in the durable file");
        write_committed(dir.path(), m.committed).unwrap();
        assert_eq!(Meta::read(dir.path()).unwrap(), m);
        std::fs::write(dir.path().join(COMMITTED_FILE), b"{torn").unwrap();
        assert_eq!(Meta::read(dir.path()).unwrap().committed, None, "a torn checkpoint reads as none");
        std::fs::write(dir.path().join(META_FILE), b"{not json").unwrap();
        assert!(matches!(Meta::read(dir.path()), Err(RaftError::CorruptMeta { .. })));
    }
}
