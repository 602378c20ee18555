//! [`Layout`]: the object key of every file and manifest, and the way back
//! from a key to what it names. The layout itself is described in the
//! [`crate::store`] module doc.

use object_store::path::Path;

use crate::segment::{FileKind, SegmentId, UploadId, uuid_from_base64, uuid_to_base64};

/// The readable first segment of every key (after the configured prefix):
/// says what wrote the objects and in which layout version, so a shared
/// bucket stays legible and a future layout can live beside this one.
pub const ROOT: &str = "fjord-tiered-v1";

/// The extension of a segment's manifest.
pub const MANIFEST_EXTENSION: &str = "manifest";

/// What one object of a segment upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    File(FileKind),
    Manifest,
}

impl Object {
    fn extension(self) -> &'static str {
        match self {
            Object::File(kind) => kind.extension(),
            Object::Manifest => MANIFEST_EXTENSION,
        }
    }
}

/// The keys under one configured prefix. Immutable, owned by the store.
#[derive(Debug, Clone)]
pub struct Layout {
    root: Path,
}

impl Layout {
    /// `key_prefix` as checked by [`check_key_prefix`].
    pub fn new(key_prefix: &str) -> Result<Layout, String> {
        check_key_prefix(key_prefix)?;
        let parts = key_prefix.split('/').filter(|p| !p.is_empty()).chain([ROOT]);
        Ok(Layout { root: Path::from_iter(parts) })
    }

    /// Where every object of a partition lives: `<root>/<topic id>/<partition>`.
    pub fn partition_dir(&self, topic_id: &[u8; 16], partition: i32) -> Path {
        self.root.clone().join(uuid_to_base64(topic_id)).join(partition.to_string())
    }

    /// `<partition dir>/<base offset, 20 digits>-<upload id>.<extension>`.
    pub fn object(&self, id: &SegmentId, object: Object) -> Path {
        debug_assert!(id.partition >= 0 && id.base_offset >= 0, "checked by the store: {id}");
        let name = format!("{:020}-{}.{}", id.base_offset, id.upload_id, object.extension());
        self.partition_dir(&id.topic_id, id.partition).join(name)
    }

    /// The segment and object a key under `partition_dir` names; `None` for
    /// anything else found there (a stray file, a temporary object).
    pub fn parse(&self, topic_id: &[u8; 16], partition: i32, path: &Path) -> Option<(SegmentId, Object)> {
        let name = path.filename()?;
        let (offset, rest) = name.split_at_checked(20)?;
        let (upload, ext) = rest.strip_prefix('-')?.split_at_checked(22)?;
        let ext = ext.strip_prefix('.')?;
        let object = match ext {
            MANIFEST_EXTENSION => Object::Manifest,
            _ => Object::File(FileKind::from_extension(ext)?),
        };
        if !offset.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id =
            SegmentId { topic_id: *topic_id, partition, base_offset: offset.parse().ok()?, upload_id: UploadId(uuid_from_base64(upload)?) };
        // Only our own spelling, so a key and its id map one to one.
        (self.object(&id, object) == *path).then_some((id, object))
    }
}

/// A key prefix is path segments separated by `/` (leading and trailing
/// slashes ignored), each made of the characters S3 documents as safe in
/// keys, and none `.` or `..`, which the local backend would resolve.
pub fn check_key_prefix(prefix: &str) -> Result<(), String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    for part in trimmed.split('/') {
        if part.is_empty() {
            return Err("empty path segment (//)".into());
        }
        if part == "." || part == ".." {
            return Err(format!("path segment {part} is not allowed"));
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c))) {
            return Err(format!("character {c:?} is not allowed; use letters, digits and !-_.*'()"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_strays_are_ignored() {
        let layout = Layout::new("/team/kafka/").unwrap();
        let id = SegmentId::new_upload([9; 16], 12, 4213);
        let log = layout.object(&id, Object::File(FileKind::Log));
        let text = log.to_string();
        assert!(text.starts_with("team/kafka/fjord-tiered-v1/CQkJCQkJCQkJCQkJCQkJCQ/12/00000000000000004213-"), "{text}");
        assert!(text.ends_with(".log"));
        assert_eq!(layout.parse(&[9; 16], 12, &log), Some((id, Object::File(FileKind::Log))));
        let manifest = layout.object(&id, Object::Manifest);
        assert_eq!(layout.parse(&[9; 16], 12, &manifest), Some((id, Object::Manifest)));

        let dir = layout.partition_dir(&[9; 16], 12);
        for stray in ["x.log", "00000000000000004213-short.log", "0000000000000000421x-AAAAAAAAAAAAAAAAAAAAAA.log"] {
            assert_eq!(layout.parse(&[9; 16], 12, &dir.clone().join(stray)), None, "{stray}");
        }
        let unknown_kind = format!("{:020}-{}.bak", 1, id.upload_id);
        assert_eq!(layout.parse(&[9; 16], 12, &dir.clone().join(unknown_kind)), None);
        assert_eq!(Layout::new("").unwrap().partition_dir(&[0; 16], 0).to_string(), "fjord-tiered-v1/AAAAAAAAAAAAAAAAAAAAAA/0");
    }

    #[test]
    fn key_prefixes() {
        for ok in ["", "/", "a", "a/b", "/a/b/", "tiered-storage-demo/", "x.y_z(1)"] {
            assert_eq!(check_key_prefix(ok), Ok(()), "{ok}");
        }
        for bad in ["a//b", "a/../b", ".", "a b", "ü", "a?b"] {
            assert!(check_key_prefix(bad).is_err(), "{bad}");
        }
    }
}
