//! Raft's own durable state beside the partition log: the vote, the
//! committed log id and the last purged log id, in one small JSON file
//! (`raft-meta.json`). Written as the storage checkpoints are: temporary file,
//! fsync, rename, fsync of the directory, so a crash leaves the old or the new
//! value, never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{RaftError, Result};
use crate::types::{LogId, Vote};

pub(crate) const META_FILE: &str = "raft-meta.json";

/// Everything in the file. Owned by the log store (the only writer); readers
/// see a copy under its mutex.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    pub last_purged: Option<LogId>,
}

impl Meta {
    /// Reads the file in `dir`; a missing file is a new group.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(RaftError::Io { context: "reading", path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|e| RaftError::CorruptMeta { path, detail: e.to_string() })
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
        assert_eq!(Meta::read(dir.path()).unwrap(), m);
        std::fs::write(dir.path().join(META_FILE), b"{not json").unwrap();
        assert!(matches!(Meta::read(dir.path()), Err(RaftError::CorruptMeta { .. })));
    }
}
