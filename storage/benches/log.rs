//! Append and read throughput of the partition log against the plain-file
//! baseline it must stay close to (goal: append >= 70% of `write_all`).
//!
//! - `append/log/{1KiB,16KiB}`: `Log::append` of pre-built, valid v2 batches
//!   (CRC check, offset patch, memcpy into the mmap, index bookkeeping).
//! - `append/raw/{1KiB,16KiB}`: `write_all` of the same bytes, one call per
//!   batch, into a `std::fs::File` preallocated with `set_len` + `posix_fallocate`.
//! - `read/log/segment`: a sealed ~64 MiB segment read back with `Log::read`
//!   in 1 MiB fetches; `read/raw/segment`: `pread` of the same file into a
//!   reused 1 MiB buffer. Both run crc32c over every byte so the pages are
//!   really read.
//!
//! Fairness: every side writes into fresh, preallocated space in the same
//! directory, `target/bench-tmp` (ext4 on the same disk as real data, not
//! tmpfs; override with `FJORD_BENCH_DIR`). Nothing is fsynced: Kafka's default
//! flush policy is never, so both sides measure the page cache. The log pays
//! its own rolls and block reservations inside the timed part, as it would in
//! service; the raw file is preallocated whole and replaced untimed. Full logs
//! and files are deleted between timed runs, so the disk holds < 1 GiB.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime};
use fjord_storage::{Log, LogConfig, batch};

/// `segment.bytes` for the append benches: big enough that a reset (a fresh
/// log, outside the timed part) is rare, small enough to bound disk use.
const APPEND_SEGMENT_BYTES: u64 = 256 << 20;
/// Size of the sealed segment the read benches read.
const READ_SEGMENT_BYTES: u64 = 64 << 20;
/// `max_bytes` of one fetch in the read benches.
const FETCH_BYTES: usize = 1 << 20;
/// Distinct batches cycled through, so no single batch stays hot in L1.
const DISTINCT_BATCHES: usize = 8;
const LEADER_EPOCH: i32 = 1;
/// Timestamps near "now", all within a second: `segment.ms` never rolls.
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// Kafka's defaults except `segment.bytes`, and retention off.
fn log_config(segment_bytes: u64) -> LogConfig {
    LogConfig { segment_bytes, retention_ms: None, retention_bytes: None, ..LogConfig::default() }
}

fn bench_root() -> PathBuf {
    let root = std::env::var_os("FJORD_BENCH_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tmp"), PathBuf::from);
    std::fs::create_dir_all(&root).expect("creating the bench directory");
    root
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("log-bench-").tempdir_in(bench_root()).expect("creating a temp dir")
}

/// `DISTINCT_BATCHES` valid batches of `records` records each, as close to
/// `target_bytes` as the record encoding allows without going over.
fn batches(target_bytes: usize, records: usize) -> Vec<Vec<u8>> {
    (0..DISTINCT_BATCHES)
        .map(|i| {
            let timestamps: Vec<i64> = (0..records as i64).map(|r| BASE_TIMESTAMP_MS + (i as i64) * 10 + r).collect();
            let fits = |value_len: usize| batch::uncompressed_batch(&timestamps, value_len).len() <= target_bytes;
            // Each record adds a few bytes of varints and key to its value.
            let mut value_len = (target_bytes - batch::HEADER_BYTES) / records;
            while !fits(value_len) {
                value_len -= 1;
            }
            let b = batch::uncompressed_batch(&timestamps, value_len);
            assert!(b.len() > target_bytes - 16 && b.len() <= target_bytes, "batch of {} bytes for {target_bytes}", b.len());
            b
        })
        .collect()
}

/// A file of `bytes` whose blocks are all reserved, as fresh as a new segment.
fn preallocated_file(path: &Path, bytes: u64) -> File {
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).expect("creating the raw file");
    file.set_len(bytes).expect("sizing the raw file");
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) };
    assert!(rc == 0 || rc == libc::EOPNOTSUPP || rc == libc::EINVAL, "posix_fallocate failed: {rc}");
    file
}

/// Something that takes batches, with untimed upkeep between timed runs that
/// keeps its disk use bounded.
trait Sink {
    /// Bytes that may be appended before `maintain` must run.
    fn budget_bytes(&self) -> u64;
    fn append(&mut self, batch: &[u8]);
    fn maintain(&mut self);
}

/// A log appended to the way a partition is, rolls included (timed). After
/// its first roll the whole log is replaced, untimed, by a fresh one.
///
/// Why not retention instead: segments sealed since the last flush stay open
/// (`FlushState::pending` holds their `File`s) until a flush, which Kafka's
/// default policy never makes, so deleted segments would keep their page
/// cache and blocks, and the dirty pages would pile up to the writeback
/// threshold and throttle appends to disk speed.
struct LogSink {
    dir: tempfile::TempDir,
    log: Option<Log>,
    since_maintain_bytes: u64,
}

/// How many bytes a log sink takes between two checks for a roll.
const LOG_MAINTAIN_BYTES: u64 = 64 << 20;

impl LogSink {
    fn new() -> Self {
        let dir = temp_dir();
        let log = Log::open(dir.path().join("p-0"), log_config(APPEND_SEGMENT_BYTES)).expect("opening the log");
        Self { dir, log: Some(log), since_maintain_bytes: 0 }
    }
}

impl Sink for LogSink {
    fn budget_bytes(&self) -> u64 {
        LOG_MAINTAIN_BYTES - self.since_maintain_bytes
    }

    fn append(&mut self, batch: &[u8]) {
        let log = self.log.as_mut().expect("log is open");
        // A new raft log starts at index 1.
        let raft = if log.is_empty() { 1 } else { log.next_raft_index() };
        black_box(log.append(black_box(batch), LEADER_EPOCH, raft).expect("append"));
        self.since_maintain_bytes += batch.len() as u64;
    }

    fn maintain(&mut self) {
        self.since_maintain_bytes = 0;
        if self.log.as_ref().is_some_and(|log| log.segment_count() > 1) {
            // Dropped without `close`, which would fsync.
            drop(self.log.take());
            let path = self.dir.path().join("p-0");
            std::fs::remove_dir_all(&path).expect("removing the log");
            self.log = Some(Log::open(&path, log_config(APPEND_SEGMENT_BYTES)).expect("reopening the log"));
        }
    }
}

/// Plain `write_all` into a preallocated file of `APPEND_SEGMENT_BYTES`,
/// replaced (untimed) by a fresh one when full.
struct RawSink {
    dir: tempfile::TempDir,
    file: File,
    written_bytes: u64,
}

impl RawSink {
    fn new() -> Self {
        let dir = temp_dir();
        let file = preallocated_file(&dir.path().join("raw.log"), APPEND_SEGMENT_BYTES);
        Self { dir, file, written_bytes: 0 }
    }
}

impl Sink for RawSink {
    fn budget_bytes(&self) -> u64 {
        APPEND_SEGMENT_BYTES - self.written_bytes
    }

    fn append(&mut self, batch: &[u8]) {
        self.file.write_all(black_box(batch)).expect("write_all");
        self.written_bytes += batch.len() as u64;
    }

    fn maintain(&mut self) {
        let path = self.dir.path().join("raw.log");
        std::fs::remove_file(&path).expect("removing the raw file");
        self.file = preallocated_file(&path, APPEND_SEGMENT_BYTES);
        self.written_bytes = 0;
    }
}

/// Appends `iters` batches, cycling through `batches`, timing only the
/// appends: the sink's upkeep runs between timed runs.
fn timed_appends(sink: &mut impl Sink, batches: &[Vec<u8>], iters: u64) -> Duration {
    let batch_bytes = batches[0].len() as u64;
    let mut elapsed = Duration::ZERO;
    let (mut done, mut next) = (0u64, 0usize);
    while done < iters {
        if sink.budget_bytes() < batch_bytes {
            sink.maintain();
            assert!(sink.budget_bytes() >= batch_bytes, "upkeep made no room");
        }
        let run = (sink.budget_bytes() / batch_bytes).min(iters - done);
        let start = Instant::now();
        for _ in 0..run {
            sink.append(&batches[next]);
            next = (next + 1) % batches.len();
        }
        elapsed += start.elapsed();
        done += run;
    }
    elapsed
}

fn bench_append_case<S: Sink>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, batches: &[Vec<u8>], new_sink: fn() -> S) {
    // Created on first use, so a filtered-out bench creates no files.
    let mut sink: Option<S> = None;
    group.bench_function(id, |b| {
        let sink = sink.get_or_insert_with(new_sink);
        b.iter_custom(|iters| timed_appends(sink, batches, iters));
    });
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(20).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(8));
    // ~1 KiB batches of 4 records, ~16 KiB batches of 16 records.
    for (name, target_bytes, records) in [("1KiB", 1 << 10, 4), ("16KiB", 16 << 10, 16)] {
        let batches = batches(target_bytes, records);
        group.throughput(Throughput::Bytes(batches[0].len() as u64));
        bench_append_case(&mut group, &format!("log/{name}"), &batches, LogSink::new);
        bench_append_case(&mut group, &format!("raw/{name}"), &batches, RawSink::new);
    }
    group.finish();
}

/// A log whose first segment is sealed at ~`READ_SEGMENT_BYTES`, and that
/// segment's file and extent.
struct ReadSetup {
    _dir: tempfile::TempDir,
    log: Log,
    /// First offset of the second segment: where a read of the first stops.
    end_offset: i64,
    segment: File,
    segment_bytes: u64,
}

impl ReadSetup {
    fn new() -> Self {
        let dir = temp_dir();
        let path = dir.path().join("p-0");
        let mut log = Log::open(&path, log_config(READ_SEGMENT_BYTES)).expect("opening the log");
        let batches = batches(16 << 10, 16);
        let mut raft = 1;
        for b in batches.iter().cycle() {
            log.append(b, LEADER_EPOCH, raft).expect("append");
            raft = log.next_raft_index();
            if log.segment_count() == 2 {
                break;
            }
        }
        let end_offset = log.segment_base_offsets()[1];
        let segment_path = path.join(format!("{:020}.log", 0));
        let segment = File::open(&segment_path).expect("opening the sealed segment");
        let segment_bytes = segment.metadata().expect("segment size").len();
        assert!(segment_bytes > READ_SEGMENT_BYTES - (32 << 10) && segment_bytes <= READ_SEGMENT_BYTES, "segment of {segment_bytes} bytes");
        Self { _dir: dir, log, end_offset, segment, segment_bytes }
    }

    /// One pass over the sealed segment through the log: 1 MiB fetches.
    fn read_log(&self) -> u32 {
        let (mut offset, mut crc, mut bytes) = (self.log.log_start_offset(), 0u32, 0u64);
        while offset < self.end_offset {
            let r = self.log.read(offset, FETCH_BYTES, self.end_offset).expect("read");
            for s in &r.slices {
                crc = crc32c::crc32c_append(crc, s);
            }
            bytes += r.bytes as u64;
            offset = r.next_offset;
        }
        debug_assert_eq!(bytes, self.segment_bytes);
        crc
    }

    /// One pass over the same file with `pread` into a reused buffer.
    fn read_raw(&self, buf: &mut [u8]) -> u32 {
        let (mut at, mut crc) = (0u64, 0u32);
        while at < self.segment_bytes {
            let want = buf.len().min((self.segment_bytes - at) as usize);
            let n = self.segment.read_at(&mut buf[..want], at).expect("pread");
            assert!(n > 0, "segment shorter than its metadata");
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            at += n as u64;
        }
        crc
    }
}

fn bench_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    let setup = ReadSetup::new();
    group.throughput(Throughput::Bytes(setup.segment_bytes));
    group.bench_function("log/segment", |b| b.iter(|| black_box(setup.read_log())));
    let mut buf = vec![0u8; FETCH_BYTES];
    group.bench_function("raw/segment", |b| b.iter(|| black_box(setup.read_raw(&mut buf))));
    group.finish();
}

criterion_group!(benches, bench_append, bench_read);
criterion_main!(benches);
