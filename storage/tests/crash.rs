//! Crash and damage tests of the partition log, with real processes and real
//! files: DESIGN.md invariant 4 ("after a crash at any instant, restart
//! recovers a CRC-valid prefix of each log") and what recovery promises for
//! torn tails, flipped bytes, damaged or missing indexes and stray files.
//!
//! Every batch written here is a pure function of its raft index and base
//! offset ([`batch_for`]), so a checker rebuilds the exact bytes of any batch
//! it reads back without keeping a copy of the log.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fjord_storage::batch::{self, BatchHeader, HEADER_BYTES};
use fjord_storage::{Log, LogConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Set by the crash test on the child it starts: the log directory to write.
const CHILD_DIR_ENV: &str = "FJORD_CRASH_CHILD_DIR";
/// The child's leader epoch (the round), how many batches it appends at most
/// and after how many appends it flushes.
const CHILD_EPOCH_ENV: &str = "FJORD_CRASH_CHILD_EPOCH";
const CHILD_BATCHES_ENV: &str = "FJORD_CRASH_CHILD_BATCHES";
const CHILD_FLUSH_EVERY_ENV: &str = "FJORD_CRASH_CHILD_FLUSH_EVERY";
/// Reruns the crash test with a given seed.
const SEED_ENV: &str = "FJORD_CRASH_SEED";
const CHILD_TEST: &str = "crash_writer_child";
/// Prefix of the line the child prints after each flush returned.
const DURABLE_LINE: &str = "FJORD_DURABLE";
/// Lines the child prints once its log is open and once it has written all it will.
const OPENED_LINE: &str = "FJORD_OPENED";
const DONE_LINE: &str = "FJORD_DONE";

const ROUNDS: u32 = 100;
/// First timestamp of the log; record `k` of the batch at base offset `b`
/// carries `T0 + 10 b + k`, so timestamps grow strictly with offsets.
const T0: i64 = 1_700_000_000_000;

fn crash_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        preallocate_step_bytes: 16 << 10,
        retention_ms: None,
        ..Default::default()
    }
}

fn damage_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        preallocate_step_bytes: 4 << 10,
        retention_ms: None,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Batches and the checker
// ---------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// The batch appended as raft entry `raft` when the log ends at `offset`
/// (leader epoch 0 and base offset 0, as a producer sends it): about one in
/// twelve an offsetless control batch, otherwise 1–8 records with random
/// values, now and then large ones.
fn batch_for(raft: u64, offset: i64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(raft.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (offset as u64).rotate_left(32));
    let base_ts = T0 + offset * 10;
    if rng.random_ratio(1, 12) {
        let mut payload = vec![0u8; rng.random_range(0..200)];
        rng.fill(&mut payload[..]);
        return batch::build_offsetless_control(0, base_ts, &payload);
    }
    let count = rng.random_range(1..=8i32);
    let max_value_bytes = if rng.random_ratio(1, 20) { 1800 } else { 400 };
    let mut records = Vec::new();
    for delta in 0..count {
        let mut value = vec![0u8; rng.random_range(0..max_value_bytes)];
        rng.fill(&mut value[..]);
        let mut body = vec![0u8]; // attributes
        put_varint(&mut body, i64::from(delta)); // timestamp delta
        put_varint(&mut body, i64::from(delta)); // offset delta
        put_varint(&mut body, -1); // null key
        put_varint(&mut body, value.len() as i64);
        body.extend_from_slice(&value);
        put_varint(&mut body, 0); // no headers
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    batch::build(0, 0, 0, count - 1, base_ts, base_ts + i64::from(count) - 1, -1, count, &records)
}

/// Appends `n` batches with leader epoch `epoch`; raft indexes follow the log.
fn append_batches(log: &mut Log, n: usize, epoch: i32) {
    for _ in 0..n {
        let raft = if log.is_empty() { 1 } else { log.next_raft_index() };
        let end = log.log_end_offset();
        let info = log.append(&batch_for(raft, end), epoch, raft).expect("append");
        assert_eq!((info.base_offset, info.raft_index), (end, raft));
    }
}

/// What the checker found: the log's end and every record's (offset, timestamp).
#[derive(Debug, Default)]
struct Checked {
    end_offset: i64,
    next_raft: u64,
    records: Vec<(i64, i64)>,
}

/// Checks the whole log: raft indexes contiguous from 1, every entry CRC-valid
/// and byte-for-byte the batch written at its raft index and offset, offsets
/// dense from 0, epochs non-decreasing and at most `max_epoch`, and reads by
/// offset (in one piece and in chunks) giving exactly the offset-bearing entries.
fn check_log(log: &Log, max_epoch: i32) -> Checked {
    let (end, next) = (log.log_end_offset(), log.next_raft_index());
    assert_eq!(log.log_start_offset(), 0);
    let mut out = Checked { end_offset: end, next_raft: next, records: Vec::new() };
    if log.is_empty() {
        assert_eq!(end, 0, "an empty log ends at 0");
        return out;
    }
    assert_eq!(log.first_raft_index().expect("first raft index"), 1);
    let (mut raft, mut offset, mut epoch) = (1u64, 0i64, 0i32);
    let mut by_raft = Vec::new();
    while raft < next {
        let entries = log.entries(raft, next, 48 << 10).unwrap_or_else(|e| panic!("entries from raft index {raft}: {e}"));
        assert!(!entries.is_empty(), "entries({raft}, {next}) returned nothing");
        for e in entries {
            assert_eq!(e.raft_index, raft, "raft indexes are contiguous");
            let h = batch::validate(&e.bytes).unwrap_or_else(|err| panic!("raft entry {raft} is not a valid batch: {err}"));
            assert_eq!(h.base_offset, offset, "raft entry {raft}: offsets are dense");
            assert!((epoch..=max_epoch).contains(&h.leader_epoch), "raft entry {raft}: epoch {} after {epoch}", h.leader_epoch);
            let mut expected = batch_for(raft, offset);
            batch::patch(&mut expected, offset, h.leader_epoch);
            assert!(e.bytes[..] == expected[..], "raft entry {raft} at offset {offset} is not what was written");
            for k in 0..h.offset_count() {
                out.records.push((offset + k, T0 + offset * 10 + k));
            }
            if h.offset_count() > 0 {
                by_raft.extend_from_slice(&e.bytes);
            }
            (raft, offset, epoch) = (raft + 1, h.last_offset() + 1, h.leader_epoch);
        }
    }
    assert_eq!(offset, end, "the log end offset follows the last batch");

    let whole = log.read(0, 1 << 40, i64::MAX).expect("read all");
    assert_eq!(whole.next_offset, end);
    assert!(whole.to_vec() == by_raft, "a read by offset differs from the entries by raft index");
    let mut chunked = Vec::new();
    let mut at = 0;
    while at < end {
        let r = log.read(at, 20 << 10, i64::MAX).unwrap_or_else(|e| panic!("read at {at}: {e}"));
        assert!(r.next_offset > at, "a read at {at} made no progress");
        chunked.extend_from_slice(&r.to_vec());
        at = r.next_offset;
    }
    assert!(chunked == by_raft, "chunked reads differ from the entries by raft index");
    out
}

/// ListOffsets by timestamp answers with the record itself for every record's
/// timestamp (they grow strictly), and the max timestamp is the last record's.
fn check_timestamp_lookups(log: &Log, records: &[(i64, i64)]) {
    for &(offset, ts) in records {
        let found = log.offset_for_timestamp(ts).unwrap_or_else(|e| panic!("lookup of {ts}: {e}"));
        let found = found.map(|f| (f.offset, f.timestamp));
        assert_eq!(found, Some((offset, ts)), "offset_for_timestamp({ts}) should find offset {offset}");
    }
    let after = records.last().map_or(T0, |r| r.1 + 1);
    assert_eq!(log.offset_for_timestamp(after).expect("lookup past the end"), None);
    let max = log.max_timestamp().expect("max timestamp").map(|m| (m.offset, m.timestamp));
    assert_eq!(max, records.last().copied(), "max_timestamp is the last record");
}

// ---------------------------------------------------------------------------
// SIGKILL at random moments
// ---------------------------------------------------------------------------

fn env_parse<T: std::str::FromStr>(name: &str) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} missing or malformed"))
}

/// The writer process of `sigkill_at_random_moments_keeps_every_flushed_batch`;
/// does nothing unless that test started it. Prints a line after each flush
/// returned, then waits to be killed.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else { return };
    let epoch: i32 = env_parse(CHILD_EPOCH_ENV);
    let batches: usize = env_parse(CHILD_BATCHES_ENV);
    let flush_every: usize = env_parse(CHILD_FLUSH_EVERY_ENV);
    let mut log = Log::open(&dir, crash_config()).expect("child: open");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{OPENED_LINE}").and_then(|()| out.flush()).expect("child: stdout");
    for i in 1..=batches {
        append_batches(&mut log, 1, epoch);
        if i % flush_every == 0 {
            let durable = log.flush().expect("child: flush");
            writeln!(out, "{DURABLE_LINE} {} {}", durable.next_offset, durable.next_raft_index).expect("child: stdout");
            out.flush().expect("child: stdout");
        }
    }
    writeln!(out, "{DONE_LINE}").and_then(|()| out.flush()).expect("child: stdout");
    // The parent kills us; never close the log, and never outlive a lost parent by long.
    std::thread::sleep(Duration::from_secs(20));
}

/// Where a writer was when it was killed, from the lines it printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KilledWhile {
    Opening,
    Writing,
    Idle,
}

/// Runs one writer for a random while and kills it with SIGKILL. Returns where
/// it was and the last durable point (offset, raft index) it reported, if any.
fn run_and_kill_writer(dir: &Path, epoch: i32, rng: &mut StdRng) -> (KilledWhile, Option<(i64, u64)>) {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_EPOCH_ENV, epoch.to_string())
        .env(CHILD_BATCHES_ENV, rng.random_range(20..800usize).to_string())
        .env(CHILD_FLUSH_EVERY_ENV, rng.random_range(1..=6usize).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the writer");
    // Mostly while it writes; one time in four within its first milliseconds,
    // which is while it recovers the log.
    let delay_us = if rng.random_ratio(1, 4) { rng.random_range(0..8_000) } else { rng.random_range(5_000..150_000) };
    std::thread::sleep(Duration::from_micros(delay_us));
    // SIGKILL on Unix. An error means it already exited, which the status shows.
    let _ = child.kill();
    let output = child.wait_with_output().expect("waiting for the writer");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGKILL),
        "the writer must die by SIGKILL, not {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The first line shares libtest's "test crash_writer_child ... ".
    let line = |word: &str| stdout.lines().any(|l| l.ends_with(word));
    let phase = match (line(OPENED_LINE), line(DONE_LINE)) {
        (false, _) => KilledWhile::Opening,
        (true, false) => KilledWhile::Writing,
        (true, true) => KilledWhile::Idle,
    };
    let durable = stdout.lines().filter_map(|l| l.split_once(DURABLE_LINE)).next_back().map(|(_, rest)| {
        let mut it = rest.split_whitespace().map(|s| s.parse::<u64>().expect("durable line"));
        let (offset, raft) = (it.next().expect("offset"), it.next().expect("raft index"));
        (offset as i64, raft)
    });
    (phase, durable)
}

#[test]
fn sigkill_at_random_moments_keeps_every_flushed_batch() {
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    eprintln!("sigkill test seed {seed} (rerun with {SEED_ENV}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    // Must survive every later crash: what a writer reported durable, and what
    // a checker's own open recovered (that open flushes it).
    let mut must_hold = (0i64, 0u64);
    let mut phases = Vec::new();
    let (mut checks, mut recoveries) = (0, 0);
    for round in 1..=ROUNDS {
        let epoch = round as i32;
        let (phase, reported) = run_and_kill_writer(dir.path(), epoch, &mut rng);
        phases.push(phase);
        if let Some(reported) = reported {
            must_hold = must_hold.max(reported);
        }
        // Now and then let the next writer find the crash instead of the checker,
        // so that recovery itself gets killed half-way.
        if round != ROUNDS && rng.random_ratio(1, 4) {
            continue;
        }
        let log = Log::open(dir.path(), crash_config()).unwrap_or_else(|e| panic!("seed {seed} round {round}: open failed: {e}"));
        recoveries += usize::from(!log.open_report().clean);
        let (end, next) = (log.log_end_offset(), log.next_raft_index());
        assert!(
            end >= must_hold.0 && next >= must_hold.1,
            "seed {seed} round {round}: lost flushed data: log ends at offset {end} raft {next}, {must_hold:?} was durable ({:?})",
            log.open_report()
        );
        let checked = check_log(&log, epoch);
        must_hold = (checked.end_offset, checked.next_raft);
        checks += 1;
        if rng.random_bool(0.5) {
            log.close().expect("close");
        }
    }
    let log = Log::open(dir.path(), crash_config()).expect("final open");
    let count = |p: KilledWhile| phases.iter().filter(|&&q| q == p).count();
    let writing = count(KilledWhile::Writing);
    eprintln!(
        "sigkill test: {ROUNDS} kills ({} opening, {writing} writing, {} idle), {checks} checks ({recoveries} recovered), \
         {} offsets, {} raft entries, {} segments, {:?}",
        count(KilledWhile::Opening),
        count(KilledWhile::Idle),
        log.log_end_offset(),
        log.next_raft_index(),
        log.segment_count(),
        started.elapsed()
    );
    assert!(writing >= ROUNDS as usize / 10, "too few kills landed while the writer was writing: {writing}");
    assert!(log.segment_count() > 3, "the writers should have rolled segments");
}

// ---------------------------------------------------------------------------
// Damaged files
// ---------------------------------------------------------------------------

fn seg_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// Batches at the start of a segment file, read without the library: (position, header).
fn file_batches(path: &Path) -> Vec<(usize, BatchHeader)> {
    let bytes = fs::read(path).expect("reading segment");
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER_BYTES <= bytes.len() {
        let Ok(h) = BatchHeader::parse(&bytes[at..]) else { break };
        if h.batch_length <= 0 || at + h.total_bytes() > bytes.len() || batch::validate(&bytes[at..at + h.total_bytes()]).is_err() {
            break;
        }
        out.push((at, h));
        at += h.total_bytes();
    }
    out
}

/// The first raft index of a segment, from its `.raftindex` header.
fn base_raft_of(dir: &Path, base: i64) -> u64 {
    let bytes = fs::read(seg_path(dir, base, "raftindex")).expect("reading raft index");
    u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
}

fn overwrite(path: &Path, at: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).expect("opening for damage");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(bytes).expect("write");
}

/// A log of at least `min_segments` segments whose active one holds at least
/// `min_active_batches` batches.
fn build_log(dir: &Path, min_segments: usize, min_active_batches: usize) -> Log {
    let mut log = Log::open(dir, damage_config()).expect("open");
    let mut n = 0;
    loop {
        append_batches(&mut log, 1, 1 + n / 25);
        n += 1;
        let active = *log.segment_base_offsets().last().expect("a segment");
        if log.segment_count() >= min_segments && file_batches(&seg_path(dir, active, "log")).len() >= min_active_batches {
            return log;
        }
    }
}

/// After damage and reopen: the log is valid, new batches continue it, and it
/// survives a clean close and a reopen.
fn check_and_continue(dir: &Path, log: Log, end_offset: i64, next_raft: u64) {
    let checked = check_log(&log, i32::MAX);
    assert_eq!((checked.end_offset, checked.next_raft), (end_offset, next_raft));
    check_timestamp_lookups(&log, &checked.records);
    let mut log = log;
    append_batches(&mut log, 30, i32::MAX);
    let checked = check_log(&log, i32::MAX);
    assert!(checked.end_offset > end_offset && checked.next_raft == next_raft + 30);
    log.close().expect("close");
    let log = Log::open(dir, damage_config()).expect("reopen");
    assert!(log.open_report().clean);
    let again = check_log(&log, i32::MAX);
    assert_eq!((again.end_offset, again.next_raft), (checked.end_offset, checked.next_raft));
    check_timestamp_lookups(&log, &again.records);
}

#[test]
fn flipped_byte_in_the_active_segment_cuts_the_log_at_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = build_log(dir.path(), 3, 8);
    log.flush().expect("flush");
    let active = *log.segment_base_offsets().last().expect("a segment");
    drop(log); // unclean: no close
    let path = seg_path(dir.path(), active, "log");
    let batches = file_batches(&path);
    let k = batches.len() / 2;
    let (position, h) = batches[k];
    // A byte under the CRC (attributes to the end), in the middle of the batch.
    let at = position + 21 + (h.total_bytes() - 21) / 2;
    let mut byte = [0u8];
    fs::File::open(&path).and_then(|mut f| f.seek(SeekFrom::Start(at as u64)).and_then(|_| f.read_exact(&mut byte))).expect("read byte");
    overwrite(&path, at as u64, &[byte[0] ^ 0x5a]);
    // The report counts real data cut, not the preallocated zeros after it.
    let data_end = fs::read(&path).expect("read segment").iter().rposition(|&b| b != 0).expect("data") + 1;

    let log = Log::open(dir.path(), damage_config()).expect("reopen");
    let report = log.open_report().clone();
    assert!(!report.clean);
    assert!(report.truncated_bytes > 0);
    assert_eq!(report.truncated_bytes, (data_end - position) as u64, "everything from the damaged batch on is cut: {report:?}");
    assert_eq!(report.segments_dropped, 0);
    check_and_continue(dir.path(), log, h.base_offset, base_raft_of(dir.path(), active) + k as u64);
}

/// Damages one index file of the second segment after a clean close; reads,
/// timestamp lookups and raft entries must not notice.
fn damaged_sealed_index_is_rebuilt(ext: &str, damage: impl Fn(&Path)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build_log(dir.path(), 4, 1);
    let bases = log.segment_base_offsets();
    let (end, next) = (log.log_end_offset(), log.next_raft_index());
    log.close().expect("close");
    let path = seg_path(dir.path(), bases[1], ext);
    let original = fs::read(&path).unwrap_or_default();
    damage(&path);

    let log = Log::open(dir.path(), damage_config()).expect("reopen");
    assert!(log.open_report().clean);
    let checked = check_log(&log, i32::MAX);
    assert_eq!((checked.end_offset, checked.next_raft), (end, next));
    check_timestamp_lookups(&log, &checked.records);
    assert_eq!(fs::read(&path).unwrap_or_default(), original, "{ext} of segment {} is rebuilt as it was", bases[1]);
    check_and_continue(dir.path(), log, end, next);
}

#[test]
fn truncated_offset_index_of_a_sealed_segment_is_rebuilt() {
    damaged_sealed_index_is_rebuilt("index", |p| {
        let len = fs::metadata(p).expect("stat").len();
        assert!(len >= 16, "the segment should have index entries");
        OpenOptions::new().write(true).open(p).and_then(|f| f.set_len(len - 3)).expect("truncate");
    });
}

#[test]
fn truncated_time_index_of_a_sealed_segment_is_rebuilt() {
    damaged_sealed_index_is_rebuilt("timeindex", |p| {
        let len = fs::metadata(p).expect("stat").len();
        assert!(len >= 24, "the segment should have time index entries");
        OpenOptions::new().write(true).open(p).and_then(|f| f.set_len(len - 5)).expect("truncate");
    });
}

#[test]
fn garbage_raft_index_entries_of_a_sealed_segment_are_rebuilt() {
    damaged_sealed_index_is_rebuilt("raftindex", |p| {
        let len = fs::metadata(p).expect("stat").len();
        assert!(len >= 16 + 16, "the segment should have raft index entries");
        // Keys that go down and positions far beyond the segment, header intact.
        let garbage: Vec<u8> = (16..len).map(|i| if (i / 8) % 2 == 0 { 0xff } else { 0x01 }).collect();
        overwrite(p, 16, &garbage);
    });
}

#[test]
fn deleted_offset_index_of_a_sealed_segment_is_rebuilt() {
    damaged_sealed_index_is_rebuilt("index", |p| fs::remove_file(p).expect("delete"));
}

#[test]
fn deleted_indexes_and_leftover_temporary_files_are_cleaned_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build_log(dir.path(), 4, 1);
    let bases = log.segment_base_offsets();
    let (end, next) = (log.log_end_offset(), log.next_raft_index());
    log.close().expect("close");
    let d = dir.path();
    fs::remove_file(seg_path(d, bases[1], "index")).expect("delete index");
    fs::remove_file(seg_path(d, bases[2], "raftindex")).expect("delete raft index");
    let strays = [
        d.join("recovery-point.checkpoint.tmp"),
        d.join("log-start-offset.checkpoint.tmp"),
        seg_path(d, 999_999, "index"),
        seg_path(d, 999_999, "timeindex"),
    ];
    for p in &strays {
        fs::write(p, b"half a checkpoint").expect("write stray");
    }

    let log = Log::open(d, damage_config()).expect("reopen");
    for p in &strays {
        assert!(!p.exists(), "{} should be removed on open", p.display());
    }
    let checked = check_log(&log, i32::MAX);
    assert_eq!((checked.end_offset, checked.next_raft), (end, next));
    check_timestamp_lookups(&log, &checked.records);
    assert!(seg_path(d, bases[1], "index").exists() && seg_path(d, bases[2], "raftindex").exists(), "indexes are rebuilt");
    assert_eq!(base_raft_of(d, bases[2]), base_raft_of(d, bases[3]) - file_batches(&seg_path(d, bases[2], "log")).len() as u64);
    check_and_continue(d, log, end, next);
}

#[test]
fn zero_filled_preallocated_tail_cuts_nothing_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build_log(dir.path(), 2, 3);
    let (end, next) = (log.log_end_offset(), log.next_raft_index());
    let active = *log.segment_base_offsets().last().expect("a segment");
    // Not flushed: a dropped process keeps the page cache, so nothing is lost.
    drop(log); // unclean: the active file keeps its preallocated zeros
    let path = seg_path(dir.path(), active, "log");
    let valid: u64 = file_batches(&path).iter().map(|(_, h)| h.total_bytes() as u64).sum();
    // More zeros past the preallocation, as a file system may leave after a crash.
    let f = OpenOptions::new().write(true).open(&path).expect("open segment");
    let grown = f.metadata().expect("stat").len() + (40 << 10);
    f.set_len(grown).expect("extend");
    drop(f);

    let log = Log::open(dir.path(), damage_config()).expect("reopen");
    let report = log.open_report().clone();
    assert!(!report.clean && report.segments_dropped == 0);
    assert_eq!(report.truncated_bytes, 0, "zeros are not data: {report:?}");
    assert!(grown > valid);
    check_and_continue(dir.path(), log, end, next);
}

/// Copies the second segment (log and raft index) to a base offset above the
/// log's end: a segment that does not continue the log.
fn plant_stray_segment(dir: &Path, bases: &[i64], end: i64) -> i64 {
    let stray = end + 1000;
    for ext in ["log", "raftindex"] {
        fs::copy(seg_path(dir, bases[1], ext), seg_path(dir, stray, ext)).expect("copy segment");
    }
    stray
}

#[test]
fn segment_that_does_not_continue_the_log_is_dropped_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = build_log(dir.path(), 3, 2);
    log.flush().expect("flush");
    let bases = log.segment_base_offsets();
    let (end, next) = (log.log_end_offset(), log.next_raft_index());
    drop(log); // unclean
    let stray = plant_stray_segment(dir.path(), &bases, end);

    let log = Log::open(dir.path(), damage_config()).expect("reopen");
    assert!(!log.open_report().clean);
    assert_eq!(log.open_report().segments_dropped, 1, "{:?}", log.open_report());
    assert!(!seg_path(dir.path(), stray, "log").exists() && !seg_path(dir.path(), stray, "raftindex").exists());
    assert_eq!(log.segment_base_offsets(), bases);
    check_and_continue(dir.path(), log, end, next);
}

#[test]
fn segment_that_does_not_continue_the_log_is_dropped_after_a_clean_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build_log(dir.path(), 3, 2);
    let bases = log.segment_base_offsets();
    let (end, next) = (log.log_end_offset(), log.next_raft_index());
    log.close().expect("close");
    let stray = plant_stray_segment(dir.path(), &bases, end);

    let log = Log::open(dir.path(), damage_config()).expect("reopen");
    assert_eq!(log.log_end_offset(), end, "a stray segment must not move the log end (offsets stay dense): {:?}", log.open_report());
    assert_eq!(log.open_report().segments_dropped, 1, "{:?}", log.open_report());
    assert!(!seg_path(dir.path(), stray, "log").exists());
    check_and_continue(dir.path(), log, end, next);
}
