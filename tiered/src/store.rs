//! [`RemoteStore`]: segments in an object store. Uploads a rolled segment's
//! files and then its manifest, reads byte ranges of them back through the
//! chunk cache, lists and deletes them.
//!
//! # Object keys
//!
//! ```text
//! [<key prefix>/]fjord-tiered-v1/<topic id>/<partition>/<base offset>-<upload id>.<extension>
//!
//! fjord-tiered-v1/q6Zc0pTmQwCEjS3yUeJbBg/0/00000000000000004213-3dr2yDGpT0eXW3dT2mY1vQ.log
//! fjord-tiered-v1/q6Zc0pTmQwCEjS3yUeJbBg/0/00000000000000004213-3dr2yDGpT0eXW3dT2mY1vQ.index
//! fjord-tiered-v1/q6Zc0pTmQwCEjS3yUeJbBg/0/00000000000000004213-3dr2yDGpT0eXW3dT2mY1vQ.timeindex
//! fjord-tiered-v1/q6Zc0pTmQwCEjS3yUeJbBg/0/00000000000000004213-3dr2yDGpT0eXW3dT2mY1vQ.manifest
//! ```
//!
//! - `fjord-tiered-v1`: a readable root saying what wrote these objects and
//!   in which layout, so a bucket shared with other tools stays legible.
//! - The topic's id (Kafka's base64 form, as `kafka-topics --describe` shows
//!   it), not its name: a renamed topic keeps its objects, and a topic
//!   deleted and created again under the same name never reads the old one's.
//! - The partition, so one partition's segments are one listing.
//! - The base offset in 20 digits as in Kafka's file names, so keys sort by
//!   offset (S3 lists in key order).
//! - The upload id: every upload attempt writes its own objects, so a new
//!   leader re-uploading a segment its predecessor left half done never
//!   overwrites or deletes the other's objects.
//! - The extension of the local file ([`FileKind::extension`]), or
//!   `manifest`.
//!
//! # Completeness
//!
//! The manifest is written last and deleted first: an upload that stopped
//! anywhere (crash, lost leadership, store down) has no manifest and is not
//! listed by [`RemoteStore::list`]; a deletion that stopped halfway leaves
//! files without a manifest, which [`RemoteStore::list_incomplete`] finds for
//! a later sweep. Both S3 and the local backend (rename after fsync) make an
//! object visible only whole.
//!
//! # Failures
//!
//! Each request is retried within [`RetryBounds`] on transient failures;
//! "not found" and refusals are answered at once. Files up to 8 MiB are one
//! PUT; larger ones a multipart upload of 8 MiB parts, sent one at a time so
//! an upload holds one part in memory, each part retried on its own. An
//! abandoned multipart upload is aborted when possible; buckets should still
//! have S3's rule to abort incomplete multipart uploads after a day.
//!
//! Owned by whoever serves the partitions (one per broker), shared as
//! `Arc<RemoteStore>`; every method takes `&self` and may run on any task.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMultipartOptions, PutPayload};
use tokio::io::AsyncReadExt;

use crate::cache::{CHUNK_BYTES, ChunkCache, ChunkKey};
use crate::config::{RetryBounds, TieredConfig};
use crate::error::{Error, Result};
use crate::layout::{Layout, Object};
use crate::manifest;
use crate::retry::{PartRetry, with_retry};
use crate::segment::{FileKind, RemoteFile, RemoteSegment, SegmentId, TopicId};
use crate::stats::StoreStats;

/// Files up to this size are one PUT; larger ones are uploaded in parts of
/// this size. Above S3's 5 MiB minimum part; small enough that one
/// request's time limit is no limit on a segment's size and a failed part
/// costs little to resend.
pub const PART_BYTES: u64 = 8 << 20;

/// How many chunks one read fetches at once when it spans several.
const READ_CONCURRENCY: usize = 4;

/// See the module doc.
#[derive(Debug)]
pub struct RemoteStore {
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    retry: RetryBounds,
    cache: ChunkCache,
    stats: Arc<StoreStats>,
}

impl RemoteStore {
    /// Builds the backend `config` names (no request is made: a store that
    /// is down now is retried when used).
    pub fn open(config: &TieredConfig) -> Result<RemoteStore> {
        RemoteStore::new(crate::backend::build(&config.backend)?, config)
    }

    /// Over a store built elsewhere; `config.backend` is not used.
    pub fn new(store: Arc<dyn ObjectStore>, config: &TieredConfig) -> Result<RemoteStore> {
        let layout = Layout::new(&config.key_prefix).map_err(|e| Error::Setup(format!("key prefix {:?}: {e}", config.key_prefix)))?;
        Ok(RemoteStore {
            store,
            layout,
            retry: config.retry,
            cache: ChunkCache::new(config.cache_bytes),
            stats: Arc::new(StoreStats::default()),
        })
    }

    /// The object store underneath, for tools and tests.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key of one object of an upload.
    pub fn object_path(&self, id: &SegmentId, object: Object) -> Path {
        self.layout.object(id, object)
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    pub fn cache(&self) -> &ChunkCache {
        &self.cache
    }

    /// Uploads `files` (each kind at most once, sealed files that do not
    /// change meanwhile) as upload `id`, then its manifest. On success the
    /// segment is listed and readable; on failure it is not, and whatever
    /// was written is left for [`RemoteStore::delete_segment`] or a sweep of
    /// [`RemoteStore::list_incomplete`]. Retry with a new [`SegmentId`].
    pub async fn upload_segment<P: AsRef<FsPath>>(&self, id: &SegmentId, files: &[(FileKind, P)]) -> Result<RemoteSegment> {
        check_id(id)?;
        if files.is_empty() {
            return Err(Error::InvalidInput(format!("{id}: no files to upload")));
        }
        for (i, (kind, _)) in files.iter().enumerate() {
            if files[..i].iter().any(|(k, _)| k == kind) {
                return Err(Error::InvalidInput(format!("{id}: {kind} file given twice")));
            }
        }
        let result = self.upload_files(id, files).await;
        match &result {
            Ok(_) => StoreStats::add(&self.stats.segments_uploaded, 1),
            Err(e) => {
                StoreStats::add(&self.stats.upload_failures, 1);
                tracing::warn!(segment = %id, error = %e, "segment upload failed");
            }
        }
        result
    }

    async fn upload_files<P: AsRef<FsPath>>(&self, id: &SegmentId, files: &[(FileKind, P)]) -> Result<RemoteSegment> {
        let mut uploaded = Vec::with_capacity(files.len());
        for (kind, path) in files {
            let size_bytes = self.upload_file(&self.layout.object(id, Object::File(*kind)), path.as_ref()).await?;
            uploaded.push(RemoteFile { kind: *kind, size_bytes });
        }
        let segment = RemoteSegment { id: *id, files: uploaded };
        self.put(&self.layout.object(id, Object::Manifest), Bytes::from(manifest::encode(&segment))).await?;
        tracing::debug!(segment = %id, bytes = segment.total_bytes(), "segment uploaded");
        Ok(segment)
    }

    /// Uploads one file; returns its size.
    async fn upload_file(&self, key: &Path, path: &FsPath) -> Result<u64> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let size = tokio::fs::metadata(path).await.map_err(io)?.len();
        if size > PART_BYTES {
            return with_retry(&self.retry, &self.stats, || self.put_multipart(key, path, size)).await;
        }
        let bytes = tokio::fs::read(path).await.map_err(io)?;
        let len = bytes.len() as u64;
        self.put(key, Bytes::from(bytes)).await?;
        Ok(len)
    }

    /// One PUT, retried.
    async fn put(&self, key: &Path, bytes: Bytes) -> Result<()> {
        let len = bytes.len() as u64;
        with_retry(&self.retry, &self.stats, || {
            let payload = PutPayload::from(bytes.clone());
            async move { self.store.put(key, payload).await.map(drop).map_err(|e| Error::store("put", key.as_ref(), e)) }
        })
        .await?;
        StoreStats::add(&self.stats.bytes_uploaded, len);
        Ok(())
    }

    /// One attempt at a multipart upload of the file at `path` (`size`
    /// bytes). Parts are retried by object_store under [`PartRetry`]; a part
    /// that still fails ends the upload as [`Error::Unavailable`], so the
    /// caller's retry only repeats the start and the completion.
    async fn put_multipart(&self, key: &Path, path: &FsPath, size: u64) -> Result<u64> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let policy = Arc::new(PartRetry { bounds: self.retry, stats: Arc::clone(&self.stats) });
        let opts = PutMultipartOptions::default().with_retry_policy(policy);
        let mut upload =
            self.store.put_multipart_opts(key, opts).await.map_err(|e| Error::store("start multipart upload", key.as_ref(), e))?;
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let mut sent = 0u64;
        while sent < size {
            let len = (size - sent).min(PART_BYTES) as usize;
            let mut part = BytesMut::zeroed(len);
            let step = match file.read_exact(&mut part).await {
                Ok(_) => upload
                    .put_part(PutPayload::from(part.freeze()))
                    .await
                    .map_err(|e| Error::store("upload part of", key.as_ref(), e).exhausted(self.retry.max_attempts)),
                Err(e) => Err(io(e)),
            };
            if let Err(e) = step {
                if let Err(abort) = upload.abort().await {
                    tracing::debug!(key = %key, error = %abort, "cannot abort multipart upload");
                }
                return Err(e);
            }
            sent += len as u64;
            StoreStats::add(&self.stats.bytes_uploaded, len as u64);
        }
        upload.complete().await.map_err(|e| Error::store("complete multipart upload", key.as_ref(), e))?;
        Ok(size)
    }

    /// The manifest of upload `id`: [`Error::NotFound`] if the upload is
    /// not complete (or was deleted).
    pub async fn read_manifest(&self, id: &SegmentId) -> Result<RemoteSegment> {
        check_id(id)?;
        let key = self.layout.object(id, Object::Manifest);
        let result = async {
            let bytes = with_retry(&self.retry, &self.stats, || async {
                let get = self.store.get(&key).await.map_err(|e| Error::store("get", key.as_ref(), e))?;
                get.bytes().await.map_err(|e| Error::store("get", key.as_ref(), e))
            })
            .await?;
            StoreStats::add(&self.stats.bytes_downloaded, bytes.len() as u64);
            manifest::decode(&bytes, id).map_err(|reason| Error::Manifest { key: key.to_string(), reason })
        }
        .await;
        self.count_download(&result);
        result
    }

    /// Bytes `range` of the segment's `kind` file, through the chunk cache.
    /// A range within one chunk is a slice of the cached chunk (no copy).
    pub async fn read_range(&self, segment: &RemoteSegment, kind: FileKind, range: Range<u64>) -> Result<Bytes> {
        check_id(&segment.id)?;
        let file = segment.file(kind).ok_or_else(|| Error::InvalidInput(format!("{}: no {kind} file", segment.id)))?;
        if range.start > range.end || range.end > file.size_bytes {
            return Err(Error::InvalidInput(format!(
                "{}: range {}..{} is outside the {kind} file's {} bytes",
                segment.id, range.start, range.end, file.size_bytes
            )));
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let (first, last) = (range.start / CHUNK_BYTES, (range.end - 1) / CHUNK_BYTES);
        let size = file.size_bytes;
        let slice = |index: u64, chunk: &Bytes| {
            let start = index * CHUNK_BYTES;
            let from = range.start.max(start) - start;
            let to = range.end.min(start + chunk.len() as u64) - start;
            chunk.slice(from as usize..to as usize)
        };
        if first == last {
            return Ok(slice(first, &self.chunk(&segment.id, kind, first, size).await?));
        }
        let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
        let mut chunks = futures_util::stream::iter(first..=last)
            .map(|i| async move { (i, self.chunk(&segment.id, kind, i, size).await) })
            .buffered(READ_CONCURRENCY);
        while let Some((index, chunk)) = chunks.next().await {
            out.extend_from_slice(&slice(index, &chunk?));
        }
        debug_assert_eq!(out.len() as u64, range.end - range.start);
        Ok(out.freeze())
    }

    /// Chunk `index` of a file of `size` bytes, from the cache or the store.
    async fn chunk(&self, id: &SegmentId, kind: FileKind, index: u64, size: u64) -> Result<Bytes> {
        let key = ChunkKey { segment: *id, kind, index };
        if let Some(bytes) = self.cache.get(&key) {
            StoreStats::add(&self.stats.cache_hits, 1);
            return Ok(bytes);
        }
        StoreStats::add(&self.stats.cache_misses, 1);
        let path = self.layout.object(id, Object::File(kind));
        let range = index * CHUNK_BYTES..((index + 1) * CHUNK_BYTES).min(size);
        let result = with_retry(&self.retry, &self.stats, || async {
            self.store.get_range(&path, range.clone()).await.map_err(|e| Error::store("get", path.as_ref(), e))
        })
        .await
        .and_then(|bytes| {
            // The manifest promised this many bytes; fewer means the object
            // is not the one it describes.
            if bytes.len() as u64 == range.end - range.start {
                Ok(bytes)
            } else {
                Err(Error::Manifest { key: path.to_string(), reason: format!("object has {} bytes at {range:?}", bytes.len()) })
            }
        });
        self.count_download(&result);
        let bytes = result?;
        StoreStats::add(&self.stats.bytes_downloaded, bytes.len() as u64);
        self.cache.insert(key, bytes.clone());
        Ok(bytes)
    }

    fn count_download<T>(&self, result: &Result<T>) {
        if let Err(e) = result {
            StoreStats::add(&self.stats.download_failures, 1);
            tracing::debug!(error = %e, "remote read failed");
        }
    }

    /// Deletes upload `id`: its manifest first, so it stops being listed
    /// before any of its files goes, then every file it may have. Objects
    /// already gone are no error, so a deletion that stopped halfway, or an
    /// upload that never completed, can be deleted again.
    pub async fn delete_segment(&self, id: &SegmentId) -> Result<()> {
        check_id(id)?;
        let result = self.delete_objects(id).await;
        self.cache.remove_segment(id);
        if let Err(e) = &result {
            StoreStats::add(&self.stats.delete_failures, 1);
            tracing::warn!(segment = %id, error = %e, "segment deletion failed");
        }
        result
    }

    async fn delete_objects(&self, id: &SegmentId) -> Result<()> {
        let manifest = self.layout.object(id, Object::Manifest);
        with_retry(&self.retry, &self.stats, || async {
            match self.store.delete(&manifest).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(Error::store("delete", manifest.as_ref(), e)),
            }
        })
        .await?;
        let files: Vec<Path> = FileKind::ALL.iter().map(|k| self.layout.object(id, Object::File(*k))).collect();
        let all = format!("{}.*", manifest.as_ref().trim_end_matches(crate::layout::MANIFEST_EXTENSION).trim_end_matches('.'));
        with_retry(&self.retry, &self.stats, || async {
            // One request for all on S3 (DeleteObjects).
            let paths = futures_util::stream::iter(files.clone().into_iter().map(Ok)).boxed();
            let mut results = self.store.delete_stream(paths);
            while let Some(r) = results.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::store("delete", &all, e)),
                }
            }
            Ok(())
        })
        .await
    }

    /// The complete uploads of a partition (those with a manifest), by base
    /// offset. Several uploads of one base offset can be listed: the
    /// partition's log says which one counts.
    pub async fn list(&self, topic_id: &TopicId, partition: i32) -> Result<Vec<SegmentId>> {
        Ok(self.list_uploads(topic_id, partition).await?.into_iter().filter(|(_, complete)| *complete).map(|(id, _)| id).collect())
    }

    /// Uploads with files but no manifest: in progress, abandoned, or
    /// partly deleted. Only the caller knows which are still in progress.
    pub async fn list_incomplete(&self, topic_id: &TopicId, partition: i32) -> Result<Vec<SegmentId>> {
        Ok(self.list_uploads(topic_id, partition).await?.into_iter().filter(|(_, complete)| !*complete).map(|(id, _)| id).collect())
    }

    /// Every upload of a partition, complete or not, from one listing (what
    /// a cleanup deletes: [`RemoteStore::list`] and
    /// [`RemoteStore::list_incomplete`] together).
    pub async fn list_all(&self, topic_id: &TopicId, partition: i32) -> Result<Vec<SegmentId>> {
        Ok(self.list_uploads(topic_id, partition).await?.into_iter().map(|(id, _)| id).collect())
    }

    /// Every upload under the partition, sorted, with whether it has a manifest.
    async fn list_uploads(&self, topic_id: &TopicId, partition: i32) -> Result<Vec<(SegmentId, bool)>> {
        if partition < 0 {
            return Err(Error::InvalidInput(format!("partition {partition}")));
        }
        let dir = self.layout.partition_dir(topic_id, partition);
        let result = with_retry(&self.retry, &self.stats, || async {
            self.store
                .list(Some(&dir))
                .map_ok(|meta| meta.location)
                .try_collect::<Vec<Path>>()
                .await
                .map_err(|e| Error::store("list", dir.as_ref(), e))
        })
        .await;
        self.count_download(&result);
        // Ids of one partition order by base offset, then upload id.
        let mut uploads: BTreeMap<SegmentId, bool> = BTreeMap::new();
        for path in result? {
            let Some((id, object)) = self.layout.parse(topic_id, partition, &path) else { continue };
            *uploads.entry(id).or_default() |= object == Object::Manifest;
        }
        Ok(uploads.into_iter().collect())
    }
}

/// Offsets and partitions are never negative in Kafka; a negative one would
/// print as a key that sorts wrongly and parses back to nothing.
fn check_id(id: &SegmentId) -> Result<()> {
    if id.partition < 0 || id.base_offset < 0 {
        return Err(Error::InvalidInput(format!("{id}: partition and base offset must not be negative")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partitions run uploads and reads on spawned tasks.
    #[allow(dead_code)]
    fn futures_are_send(store: &RemoteStore, id: &SegmentId, segment: &RemoteSegment) {
        fn send<T: Send>(_: T) {}
        send(store.upload_segment(id, &[(FileKind::Log, std::path::PathBuf::new())]));
        send(store.read_range(segment, FileKind::Log, 0..1));
        send(store.read_manifest(id));
        send(store.delete_segment(id));
        send(store.list(&id.topic_id, 0));
    }

    #[test]
    fn store_is_shareable() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<RemoteStore>();
    }
}
