//! The nouns of a remote segment: which upload of which segment
//! ([`SegmentId`]), the files it is made of ([`FileKind`]) and what a
//! complete upload recorded ([`RemoteSegment`]).
//!
//! Plain values, created by the uploader (the partition leader) and copied
//! freely; the partition's raft log is expected to carry them.

use std::fmt;

/// A topic's id as Kafka's `Uuid`: 16 bytes, shown as 22 characters of
/// URL-safe base64 without padding (what `kafka-topics --describe` prints).
pub type TopicId = [u8; 16];

/// One attempt at uploading a segment. A leader that retries an upload, or a
/// new leader that uploads a segment its predecessor was uploading, takes a
/// new id, so two uploads of the same segment never write the same objects
/// (KIP-405's `RemoteLogSegmentId` has a random `Uuid` for the same reason).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(pub [u8; 16]);

impl UploadId {
    /// A random version-4 UUID, as Kafka's `Uuid.randomUuid`.
    pub fn random() -> Self {
        let mut b: [u8; 16] = rand::random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        UploadId(b)
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&uuid_to_base64(&self.0))
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadId({self})")
    }
}

/// Names one upload of one segment: the partition, the segment's base
/// offset and the upload.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId {
    pub topic_id: TopicId,
    pub partition: i32,
    /// The offset the segment's first record has (its `.log` file's name).
    pub base_offset: i64,
    pub upload_id: UploadId,
}

impl SegmentId {
    /// A fresh upload of the segment at `base_offset`.
    pub fn new_upload(topic_id: TopicId, partition: i32, base_offset: i64) -> Self {
        SegmentId { topic_id, partition, base_offset, upload_id: UploadId::random() }
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{} (upload {})", uuid_to_base64(&self.topic_id), self.partition, self.base_offset, self.upload_id)
    }
}

impl fmt::Debug for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SegmentId({self})")
    }
}

/// The files of a segment that can be uploaded, each stored as one object
/// named with the file's usual extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// `.log`: the record batches.
    Log,
    /// `.index`: offset index.
    OffsetIndex,
    /// `.timeindex`: timestamp index.
    TimeIndex,
    /// `.raftindex`: Fjord's raft index.
    RaftIndex,
    /// `.snapshot`: the producer state snapshot at the segment's end.
    ProducerSnapshot,
    /// `.txnindex`: aborted transactions.
    TransactionIndex,
    /// `.leader-epoch-checkpoint`: leader epochs up to the segment's end (KIP-405 uploads it).
    LeaderEpochCheckpoint,
}

impl FileKind {
    pub const ALL: [FileKind; 7] = [
        FileKind::Log,
        FileKind::OffsetIndex,
        FileKind::TimeIndex,
        FileKind::RaftIndex,
        FileKind::ProducerSnapshot,
        FileKind::TransactionIndex,
        FileKind::LeaderEpochCheckpoint,
    ];

    /// The extension (without the dot) of the file and of its object.
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Log => "log",
            FileKind::OffsetIndex => "index",
            FileKind::TimeIndex => "timeindex",
            FileKind::RaftIndex => "raftindex",
            FileKind::ProducerSnapshot => "snapshot",
            FileKind::TransactionIndex => "txnindex",
            FileKind::LeaderEpochCheckpoint => "leader-epoch-checkpoint",
        }
    }

    pub fn from_extension(ext: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.extension() == ext)
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// One uploaded file of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    pub kind: FileKind,
    pub size_bytes: u64,
}

/// A complete upload: what its manifest records. Returned by
/// [`crate::RemoteStore::upload_segment`] and
/// [`crate::RemoteStore::read_manifest`]; [`crate::RemoteStore::read_range`]
/// takes it to know the files' sizes without asking the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSegment {
    pub id: SegmentId,
    /// In the order the caller passed them; each kind at most once.
    pub files: Vec<RemoteFile>,
}

impl RemoteSegment {
    pub fn file(&self, kind: FileKind) -> Option<&RemoteFile> {
        self.files.iter().find(|f| f.kind == kind)
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size_bytes).sum()
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's `Uuid.toString`: URL-safe base64, no padding, 22 characters.
pub fn uuid_to_base64(id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    let (mut bits, mut nbits) = (0u32, 0u32);
    for &byte in id {
        bits = (bits << 8) | u32::from(byte);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(char::from(BASE64URL[((bits >> nbits) & 63) as usize]));
        }
    }
    out.push(char::from(BASE64URL[((bits << (6 - nbits)) & 63) as usize]));
    debug_assert_eq!(out.len(), 22);
    out
}

/// The inverse of [`uuid_to_base64`]; `None` for anything that is not
/// exactly 22 such characters encoding 16 bytes.
pub fn uuid_from_base64(text: &str) -> Option<[u8; 16]> {
    if text.len() != 22 {
        return None;
    }
    let mut out = [0u8; 16];
    let (mut bits, mut nbits, mut n) = (0u32, 0u32, 0usize);
    for c in text.bytes() {
        let v = BASE64URL.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            *out.get_mut(n)? = (bits >> nbits) as u8;
            n += 1;
        }
    }
    // 22 characters carry 132 bits: the 4 left over must be zero, or two
    // texts would name the same id.
    (n == 16 && bits & ((1 << nbits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_junk() {
        for _ in 0..200 {
            let id: [u8; 16] = rand::random();
            let text = uuid_to_base64(&id);
            assert_eq!(uuid_from_base64(&text), Some(id), "{text}");
        }
        // Kafka's Uuid.ZERO_UUID prints as 22 A's; the metadata topic's id is 1.
        assert_eq!(uuid_to_base64(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        let mut one = [0; 16];
        one[15] = 1;
        assert_eq!(uuid_to_base64(&one), "AAAAAAAAAAAAAAAAAAAAAQ");
        for bad in ["", "AAAA", "AAAAAAAAAAAAAAAAAAAAA!", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAAAA"] {
            assert_eq!(uuid_from_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn upload_ids_differ_and_kinds_round_trip() {
        let a = SegmentId::new_upload([7; 16], 3, 100);
        let b = SegmentId::new_upload([7; 16], 3, 100);
        assert_ne!(a, b, "a retried upload must not collide with the first");
        for k in FileKind::ALL {
            assert_eq!(FileKind::from_extension(k.extension()), Some(k));
        }
        assert_eq!(FileKind::from_extension("manifest"), None);
    }
}
