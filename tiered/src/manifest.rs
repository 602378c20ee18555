//! The manifest: the small JSON object written after all of a segment's
//! files, whose presence is what makes an upload complete. It repeats the
//! segment's id (checked against its key on read, so a manifest copied to
//! another key is refused) and lists each file with its size, which is what
//! range reads need and what a listing cannot be trusted to report while
//! uploads are in flight.
//!
//! JSON rather than a binary format: it is read once per segment, and an
//! operator can `cat` it.

use serde::{Deserialize, Serialize};

use crate::segment::{FileKind, RemoteFile, RemoteSegment, SegmentId, UploadId, uuid_from_base64, uuid_to_base64};

/// Bumped when a reader of the old format would misread the new one.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    topic_id: String,
    partition: i32,
    base_offset: i64,
    upload_id: String,
    files: Vec<ManifestFile>,
}

#[derive(Serialize, Deserialize)]
struct ManifestFile {
    kind: String,
    size_bytes: u64,
}

pub(crate) fn encode(segment: &RemoteSegment) -> Vec<u8> {
    let m = Manifest {
        format: FORMAT,
        topic_id: uuid_to_base64(&segment.id.topic_id),
        partition: segment.id.partition,
        base_offset: segment.id.base_offset,
        upload_id: segment.id.upload_id.to_string(),
        files: segment.files.iter().map(|f| ManifestFile { kind: f.kind.extension().into(), size_bytes: f.size_bytes }).collect(),
    };
    let mut out = serde_json::to_vec_pretty(&m).unwrap_or_default();
    out.push(b'\n');
    debug_assert!(out.len() > 1, "a manifest of plain fields always serializes");
    out
}

/// The segment a manifest describes, which must be `expected` (the id its
/// key names).
pub(crate) fn decode(bytes: &[u8], expected: &SegmentId) -> Result<RemoteSegment, String> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if m.format != FORMAT {
        return Err(format!("format {} is not {FORMAT}", m.format));
    }
    let id = SegmentId {
        topic_id: uuid_from_base64(&m.topic_id).ok_or_else(|| format!("bad topic id {:?}", m.topic_id))?,
        partition: m.partition,
        base_offset: m.base_offset,
        upload_id: UploadId(uuid_from_base64(&m.upload_id).ok_or_else(|| format!("bad upload id {:?}", m.upload_id))?),
    };
    if id != *expected {
        return Err(format!("it describes {id}, its key names {expected}"));
    }
    let mut files = Vec::with_capacity(m.files.len());
    for f in m.files {
        let kind = FileKind::from_extension(&f.kind).ok_or_else(|| format!("unknown file kind {:?}", f.kind))?;
        if files.iter().any(|x: &RemoteFile| x.kind == kind) {
            return Err(format!("file kind {kind} listed twice"));
        }
        files.push(RemoteFile { kind, size_bytes: f.size_bytes });
    }
    Ok(RemoteSegment { id, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mismatch() {
        let id = SegmentId::new_upload([3; 16], 1, 77);
        let seg = RemoteSegment {
            id,
            files: vec![
                RemoteFile { kind: FileKind::Log, size_bytes: 5 << 20 },
                RemoteFile { kind: FileKind::OffsetIndex, size_bytes: 80 },
            ],
        };
        let bytes = encode(&seg);
        assert_eq!(decode(&bytes, &id), Ok(seg));
        let other = SegmentId::new_upload([3; 16], 1, 77);
        assert!(decode(&bytes, &other).unwrap_err().contains("its key names"));
        assert!(decode(b"{", &id).is_err());
        let text = String::from_utf8(bytes).unwrap().replace("\"index\"", "\"log\"");
        assert!(decode(text.as_bytes(), &id).unwrap_err().contains("twice"));
    }
}
