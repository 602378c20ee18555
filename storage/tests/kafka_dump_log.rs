//! Kafka's own `kafka-dump-log` (`org.apache.kafka.tools.DumpLogSegments`, from Maven
//! Central) reads what Fjord writes: every batch CRC-valid, every record, and
//! our `.index` and `.timeindex` entries consistent with the log by Kafka's
//! own checks. The jars come from `scripts/fetch-kafka.sh` (run by
//! `scripts/test.sh`); `FJORD_KAFKA_LIBS` points elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use fjord_storage::batch::{build_offsetless_control, uncompressed_batch};
use fjord_storage::{Log, LogConfig};

fn kafka_libs() -> PathBuf {
    let dir = std::env::var_os("FJORD_KAFKA_LIBS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/kafka-libs"), PathBuf::from);
    assert!(dir.join(".version").exists(), "Kafka's jars are missing from {}: run scripts/fetch-kafka.sh", dir.display());
    dir
}

/// Runs DumpLogSegments on `file` and returns its output; fails on a non-zero exit.
fn dump(file: &Path, extra: &[&str]) -> String {
    let text = dump_unchecked(file, extra);
    for bad in ["Exception", "isvalid: false", "Mismatches in", "mismatch", "not found", "out of order"] {
        assert!(!text.contains(bad), "DumpLogSegments reports {bad:?} for {}:\n{text}", file.display());
    }
    text
}

/// DumpLogSegments' output, whatever its checks found.
fn dump_unchecked(file: &Path, extra: &[&str]) -> String {
    let cp = format!("{}/*", kafka_libs().display());
    let out = Command::new("java")
        .args(["-cp", &cp, "org.apache.kafka.tools.DumpLogSegments", "--files"])
        .arg(file)
        .args(extra)
        .output()
        .expect("running java");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "DumpLogSegments failed on {}:\n{text}", file.display());
    text
}

fn write_log(dir: &Path, with_raft_entries: bool) -> Vec<i64> {
    let cfg = LogConfig { segment_bytes: 8 << 10, index_interval_bytes: 512, ..LogConfig::default() };
    let mut log = Log::open(dir, cfg).unwrap();
    let now = 1_700_000_000_000i64;
    for i in 0..120u64 {
        if with_raft_entries && i % 10 == 0 {
            let raft = if log.is_empty() { 1 } else { log.next_raft_index() };
            log.append(&build_offsetless_control(1, now, b"membership"), 1, raft).unwrap();
        }
        let t = now + i as i64 * 10;
        let raft = if log.is_empty() { 1 } else { log.next_raft_index() };
        log.append(&uncompressed_batch(&[t, t + 7, t + 3], 40), 1, raft).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3, "the test wants sealed segments: {bases:?}");
    log.close().unwrap();
    bases
}

#[test]
fn kafka_dump_log_reads_every_batch_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let bases = write_log(dir.path(), false);
    let mut batches = 0;
    let mut records = 0;
    for base in &bases {
        let text = dump(&dir.path().join(format!("{base:020}.log")), &["--print-data-log"]);
        batches += text.matches("isvalid: true").count();
        records += text.matches("| offset: ").count();
        assert!(text.contains(&format!("baseOffset: {base} lastOffset: {} count: 3", base + 2)), "{text}");
        assert!(text.contains("key: k0 payload: "), "{text}");
    }
    assert_eq!((batches, records), (120, 360));
}

#[test]
fn kafka_dump_log_finds_our_indexes_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let bases = write_log(dir.path(), true);
    let mut index_entries = 0;
    for base in &bases {
        let index = dump(&dir.path().join(format!("{base:020}.index")), &["--index-sanity-check"]);
        assert!(index.contains("passed sanity check"), "{index}");
        index_entries += dump(&dir.path().join(format!("{base:020}.index")), &[]).matches("offset: ").count();
        let time = dump(&dir.path().join(format!("{base:020}.timeindex")), &[]);
        assert!(time.contains("timestamp: "), "every segment has at least its final time entry:\n{time}");
    }
    assert!(index_entries > bases.len(), "sparse entries every index.interval.bytes, {index_entries} in all");
}

#[test]
fn kafka_dump_log_reads_raft_entries_as_empty_control_batches() {
    let dir = tempfile::tempdir().unwrap();
    let bases = write_log(dir.path(), true);
    let text = dump(&dir.path().join(format!("{:020}.log", bases[0])), &["--print-data-log"]);
    assert!(text.contains("lastOffset: -1 count: 0"), "{text}");
    assert!(text.contains("isControl: true"), "{text}");
    assert!(text.contains("baseOffset: 0 lastOffset: 2 count: 3"), "{text}");
}

/// A compacted log is still one Kafka reads: every batch kept (the emptied
/// ones as `count: 0`), each CRC-valid, and the rebuilt indexes pass Kafka's
/// own checks.
#[test]
fn kafka_dump_log_reads_a_compacted_log() {
    let dir = tempfile::tempdir().unwrap();
    let bases = write_log(dir.path(), true);
    let cfg = LogConfig { segment_bytes: 8 << 10, index_interval_bytes: 512, ..LogConfig::default() };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let params = fjord_storage::CleanParams {
        upto_offset: i64::MAX,
        now_ms: 1_700_000_000_000,
        delete_retention_ms: 86_400_000,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        max_map_bytes: 1 << 20,
    };
    let stats = log.clean(&params, Vec::new()).unwrap().unwrap();
    assert!(stats.records_removed > 300, "{stats:?}");
    log.close().unwrap();
    let (mut batches, mut empty) = (0, 0);
    for base in &bases {
        let text = dump(&dir.path().join(format!("{base:020}.log")), &["--print-data-log"]);
        batches += text.matches("isvalid: true").count();
        empty += text.matches(" count: 0 ").count();
        let index = dump(&dir.path().join(format!("{base:020}.index")), &["--index-sanity-check"]);
        assert!(index.contains("passed sanity check"), "{index}");
        // DumpLogSegments compares each time index entry with the largest
        // record timestamp of the batch it names; an emptied batch keeps its
        // maxTimestamp (as Kafka's cleaner keeps it for the empty batches it
        // retains) but has no record, which the tool reports as -1. Nothing else may differ.
        let time = dump_unchecked(&dir.path().join(format!("{base:020}.timeindex")), &[]);
        for line in time.lines().filter(|l| l.contains("log timestamp:")) {
            assert!(line.ends_with("log timestamp: -1"), "{line}\n{time}");
        }
        assert!(!time.contains("Exception") && !time.contains("not found"), "{time}");
    }
    assert_eq!(batches, 120 + 12, "every batch and raft entry is still there");
    assert!(empty > 100, "{empty} emptied batches and raft entries");
}
