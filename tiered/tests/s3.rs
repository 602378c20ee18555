//! The remote store against a real S3 server, moto's (`python -m
//! moto.server`, from the venv `scripts/install-test-deps.sh` makes), on
//! 127.0.0.1, and against the local-directory backend.
//!
//! Each moto test starts its own server on a free port and kills it when
//! done (also if the test binary dies: the child gets SIGKILL with its
//! parent). Real files of random content go up; every byte read back is
//! compared with them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fjord_tiered::{
    Backend, CHUNK_BYTES, Error, FileKind, Object, PART_BYTES, RemoteSegment, RemoteStore, RetryBounds, S3Config, SegmentId,
    StaticCredentials, TieredConfig,
};
use object_store::{ObjectStoreExt, PutPayload};

const BUCKET: &str = "fjord-tiered-test";
const TOPIC: [u8; 16] = *b"0123456789abcdef";

/// A moto server; killed on drop.
struct Moto {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Moto {
    fn start(port: u16, log: PathBuf) -> Moto {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".cache/venv/bin/python");
        assert!(python.exists(), "{} not found: run `bash scripts/install-test-deps.sh` (it installs moto)", python.display());
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(python);
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut moto = Moto { child: Some(cmd.spawn().expect("start moto")), port, log };
        moto.wait_ready();
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(self.port, "GET", "/").is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("moto exited with {status}: {}", std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "moto did not answer within 30 s: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// object_store cannot create buckets; moto takes an unsigned path-style PUT.
    fn create_bucket(&self) {
        let status = http(self.port, "PUT", &format!("/{BUCKET}")).expect("create bucket");
        assert_eq!(status, 200);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP/1.1 request without a body; the response's status code.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok());
    status.ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.80}")))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn s3_config(endpoint: String, retry: RetryBounds) -> TieredConfig {
    TieredConfig {
        backend: Backend::S3(S3Config {
            bucket: BUCKET.into(),
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint),
            path_style_access: None,
            // moto accepts any; static ones also keep object_store from
            // asking the EC2 metadata address for some.
            credentials: Some(StaticCredentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
                session_token: None,
            }),
            request_timeout_ms: Some(10_000),
        }),
        key_prefix: "it/cluster-a".into(),
        retry,
        cache_bytes: 3 * CHUNK_BYTES,
    }
}

const FAST_RETRY: RetryBounds = RetryBounds { max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 200 };

/// A segment's files with random content: a log large enough for a
/// multipart upload and several chunks, and small indexes.
fn segment_files(dir: &Path, base_offset: i64) -> Vec<(FileKind, PathBuf)> {
    let sizes = [
        (FileKind::Log, PART_BYTES as usize + 2 * CHUNK_BYTES as usize + 12_345),
        (FileKind::OffsetIndex, 100 << 10),
        (FileKind::TimeIndex, 3 * (50 << 10)),
        (FileKind::ProducerSnapshot, 1_000),
    ];
    sizes
        .into_iter()
        .map(|(kind, len)| {
            let path = dir.join(format!("{base_offset:020}.{}", kind.extension()));
            let mut data = vec![0u8; len];
            rand::fill(&mut data[..]);
            std::fs::write(&path, &data).unwrap();
            (kind, path)
        })
        .collect()
}

/// Byte ranges worth reading from a file of `len` bytes: inside one chunk,
/// across chunk boundaries, the last bytes, the whole file, nothing.
fn ranges(len: u64) -> Vec<std::ops::Range<u64>> {
    let c = CHUNK_BYTES;
    let mut r = vec![0..1, 0..len.min(100), 5..len.min(4096), 0..len, len - 1..len, len.saturating_sub(7)..len, len..len];
    if len > 3 * c {
        r.extend([c - 5..c + 5, c..2 * c, 10..2 * c + 10, c - 1..3 * c + 1, 2 * c + 17..len]);
    }
    r
}

async fn check_reads(store: &RemoteStore, segment: &RemoteSegment, files: &[(FileKind, PathBuf)]) {
    for (kind, path) in files {
        let data = std::fs::read(path).unwrap();
        for range in ranges(data.len() as u64) {
            let got = store.read_range(segment, *kind, range.clone()).await.unwrap();
            assert!(got[..] == data[range.start as usize..range.end as usize], "{kind} {range:?} differs");
        }
        let past = data.len() as u64 + 1;
        assert!(matches!(store.read_range(segment, *kind, 0..past).await, Err(Error::InvalidInput(_))));
    }
    assert!(store.cache().used_bytes() <= store.cache().capacity_bytes());
}

/// Upload, list, read, half-finished upload, delete: what every backend must do.
async fn basics(store: &RemoteStore, dir: &Path) {
    let files = segment_files(dir, 4213);
    let id = SegmentId::new_upload(TOPIC, 3, 4213);
    let segment = store.upload_segment(&id, &files).await.unwrap();
    assert_eq!(segment.id, id);
    for (kind, path) in &files {
        assert_eq!(segment.file(*kind).unwrap().size_bytes, std::fs::metadata(path).unwrap().len());
    }
    assert_eq!(store.list(&TOPIC, 3).await.unwrap(), [id]);
    assert!(store.list(&TOPIC, 4).await.unwrap().is_empty());
    assert_eq!(store.read_manifest(&id).await.unwrap(), segment);
    check_reads(store, &segment, &files).await;
    let data = std::fs::read(&files[0].1).unwrap();
    assert_eq!(store.read_range(&segment, FileKind::Log, 7..9).await.unwrap()[..], data[7..9]);
    let before = store.stats().snapshot();
    assert_eq!(store.read_range(&segment, FileKind::Log, 9..4000).await.unwrap()[..], data[9..4000]);
    let after = store.stats().snapshot();
    assert_eq!((after.cache_hits - before.cache_hits, after.bytes_downloaded), (1, before.bytes_downloaded), "served by the cache");

    // Stopped before its manifest: files are there, the segment is not.
    let half = SegmentId::new_upload(TOPIC, 3, 9000);
    for (kind, path) in &files[..2] {
        let bytes = std::fs::read(path).unwrap();
        store.object_store().put(&store.object_path(&half, Object::File(*kind)), PutPayload::from(bytes)).await.unwrap();
    }
    assert_eq!(store.list(&TOPIC, 3).await.unwrap(), [id]);
    assert_eq!(store.list_incomplete(&TOPIC, 3).await.unwrap(), [half]);
    assert!(matches!(store.read_manifest(&half).await, Err(Error::NotFound { .. })));

    // A second upload of the same segment (a new leader) lists beside the first.
    let again = SegmentId::new_upload(TOPIC, 3, 4213);
    store.upload_segment(&again, &files[1..]).await.unwrap();
    let mut both = vec![id, again];
    both.sort();
    assert_eq!(store.list(&TOPIC, 3).await.unwrap(), both);
    let mut every = vec![id, half, again];
    every.sort();
    assert_eq!(store.list_all(&TOPIC, 3).await.unwrap(), every, "complete and half-finished uploads, one listing");

    store.delete_segment(&id).await.unwrap();
    assert_eq!(store.list(&TOPIC, 3).await.unwrap(), [again]);
    assert!(matches!(store.read_range(&segment, FileKind::Log, 0..10).await, Err(Error::NotFound { .. })), "its objects are gone");
    store.delete_segment(&id).await.unwrap();
    store.delete_segment(&half).await.unwrap();
    store.delete_segment(&again).await.unwrap();
    assert!(store.list(&TOPIC, 3).await.unwrap().is_empty());
    assert!(store.list_incomplete(&TOPIC, 3).await.unwrap().is_empty());
    assert!(store.list_all(&TOPIC, 3).await.unwrap().is_empty());

    let s = store.stats().snapshot();
    let total: u64 = files.iter().map(|(_, p)| std::fs::metadata(p).unwrap().len()).sum();
    assert!(s.bytes_uploaded > total && s.bytes_downloaded >= data.len() as u64, "{s:?}");
    assert_eq!((s.segments_uploaded, s.upload_failures, s.delete_failures, s.retries), (2, 0, 0, 0), "{s:?}");

    let bad = SegmentId { base_offset: -1, ..id };
    assert!(matches!(store.upload_segment(&bad, &files).await, Err(Error::InvalidInput(_))));
    let twice = [files[0].clone(), files[0].clone()];
    assert!(matches!(store.upload_segment(&SegmentId::new_upload(TOPIC, 3, 1), &twice).await, Err(Error::InvalidInput(_))));
}

#[tokio::test]
async fn s3_upload_list_read_delete() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(free_port(), dir.path().join("moto.log"));
    moto.create_bucket();
    let store = RemoteStore::open(&s3_config(moto.endpoint(), FAST_RETRY)).unwrap();
    basics(&store, dir.path()).await;
    // The server saw what the module doc promises: the log in parts, the
    // files of a segment deleted in one request.
    let log = std::fs::read_to_string(&moto.log).unwrap();
    for request in ["PUT /fjord-tiered-test/it/cluster-a/fjord-tiered-v1/", "partNumber=2&uploadId=", "POST /fjord-tiered-test?delete"] {
        assert!(log.contains(request), "{request} not in moto's log:\n{log}");
    }
}

#[tokio::test]
async fn s3_outage_fails_within_bounds_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut moto = Moto::start(port, dir.path().join("moto.log"));
    moto.create_bucket();
    let store = RemoteStore::open(&s3_config(moto.endpoint(), FAST_RETRY)).unwrap();
    let files = segment_files(dir.path(), 0);
    moto.stop();

    let started = Instant::now();
    let id = SegmentId::new_upload(TOPIC, 0, 0);
    let err = store.upload_segment(&id, &files).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { attempts: 3, .. }), "{err:?}");
    assert!(err.to_string().starts_with("object store unavailable: "), "{err}");
    // Two waits of at most 50 and 100 ms, refused connections are instant.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let s = store.stats().snapshot();
    assert_eq!((s.upload_failures, s.retries, s.segments_uploaded), (1, 2, 0), "{s:?}");
    assert!(matches!(store.list(&TOPIC, 0).await, Err(Error::Unavailable { .. })));

    // moto keeps everything in memory: the restarted server has no bucket.
    let moto = Moto::start(port, dir.path().join("moto2.log"));
    moto.create_bucket();
    let again = SegmentId::new_upload(TOPIC, 0, 0);
    let segment = store.upload_segment(&again, &files).await.unwrap();
    assert_eq!(store.list(&TOPIC, 0).await.unwrap(), [again]);
    check_reads(&store, &segment, &files).await;

    // Not found is an answer, not an outage: no retries.
    let retries = store.stats().snapshot().retries;
    assert!(matches!(store.read_manifest(&id).await, Err(Error::NotFound { .. })));
    assert_eq!(store.stats().snapshot().retries, retries);
}

#[tokio::test]
async fn local_directory_upload_list_read_delete() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("remote");
    let mut config = TieredConfig::local(&root);
    config.cache_bytes = 3 * CHUNK_BYTES;
    let store = RemoteStore::open(&config).unwrap();
    let files_dir = dir.path().join("segment");
    std::fs::create_dir(&files_dir).unwrap();
    basics(&store, &files_dir).await;
    // Every object of every upload is gone.
    let left: Vec<_> = walk(&root);
    assert!(left.is_empty(), "{left:?}");

    let mut bad = TieredConfig::local(&root);
    bad.key_prefix = "a/../b".into();
    assert!(matches!(RemoteStore::open(&bad), Err(Error::Setup(_))));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
