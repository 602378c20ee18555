//! Compaction on real logs: what stays, what goes, and that offsets, raft
//! indexes and batches are the same after a pass, after a crash in its swap,
//! and on a follower that takes the cleaned entries.

use std::ops::ControlFlow;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression as KafkaCompression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::*;
use crate::batch::{BatchHeader, build, build_offsetless_control};
use crate::config::LogConfig;
use crate::segment::{INDEX_EXT, LOG_EXT, file_name};

const T0: i64 = 1_700_000_000_000;
const DAY_MS: i64 = 86_400_000;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

type Rec<'a> = (&'a str, Option<&'a str>);

fn config() -> LogConfig {
    LogConfig { segment_bytes: 1 << 20, index_interval_bytes: 64, preallocate_step_bytes: 4096, retention_ms: None, ..Default::default() }
}

fn params(upto_offset: i64, now_ms: i64) -> CleanParams {
    CleanParams {
        upto_offset,
        now_ms,
        delete_retention_ms: DAY_MS,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        max_map_bytes: 1 << 20,
    }
}

fn encode(recs: &[Rec<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (k, v)) in recs.iter().enumerate() {
        let mut body = vec![0u8];
        varint::put_varlong(&mut body, i as i64); // timestamp delta: record i is at base + i
        varint::put_varlong(&mut body, i as i64);
        varint::put_varlong(&mut body, k.len() as i64);
        body.extend_from_slice(k.as_bytes());
        match v {
            Some(v) => {
                varint::put_varlong(&mut body, v.len() as i64);
                body.extend_from_slice(v.as_bytes());
            }
            None => varint::put_varlong(&mut body, -1),
        }
        varint::put_varlong(&mut body, 0);
        varint::put_varlong(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    out
}

/// One batch of `recs`, the first at `ts`, the next ones a millisecond apart.
fn batch_with(attributes: i16, producer_id: i64, recs: &[Rec<'_>], ts: i64) -> Vec<u8> {
    let n = recs.len() as i32;
    build(0, 0, attributes, n - 1, ts, ts + i64::from(n) - 1, producer_id, n, &encode(recs))
}

fn data(recs: &[Rec<'_>], ts: i64) -> Vec<u8> {
    batch_with(0, -1, recs, ts)
}

/// A transaction marker as Kafka writes it: key (version 0, type), value (version 0, coordinator epoch).
fn marker(producer_id: i64, commit: bool, ts: i64) -> Vec<u8> {
    let mut body = vec![0u8];
    varint::put_varlong(&mut body, 0);
    varint::put_varlong(&mut body, 0);
    varint::put_varlong(&mut body, 4);
    body.extend_from_slice(&[0, 0, 0, u8::from(commit)]);
    varint::put_varlong(&mut body, 6);
    body.extend_from_slice(&[0, 0, 0, 0, 0, 5]);
    varint::put_varlong(&mut body, 0);
    let mut rec = Vec::new();
    varint::put_varlong(&mut rec, body.len() as i64);
    rec.extend_from_slice(&body);
    build(0, 0, ATTR_CONTROL | ATTR_TRANSACTIONAL, 0, ts, ts, producer_id, 1, &rec)
}

/// Appends batches as consecutive raft entries.
struct Writer {
    log: Log,
    next_raft: u64,
}

impl Writer {
    fn open(dir: &std::path::Path) -> Self {
        let log = Log::open(dir, config()).unwrap();
        let next_raft = log.next_raft_index().max(1);
        Self { log, next_raft }
    }

    fn append(&mut self, batch: &[u8]) -> (i64, i64) {
        let info = self.log.append(batch, 3, self.next_raft).unwrap();
        self.next_raft += 1;
        (info.base_offset, info.last_offset)
    }

    fn put(&mut self, recs: &[Rec<'_>], ts: i64) -> (i64, i64) {
        self.append(&data(recs, ts))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: i64,
    key: String,
    value: Option<String>,
    timestamp: i64,
}

fn seen(offset: i64, key: &str, value: Option<&str>, timestamp: i64) -> Seen {
    Seen { offset, key: key.into(), value: value.map(Into::into), timestamp }
}

/// Every record a consumer reading from the log start would get.
fn consume(log: &Log) -> Vec<Seen> {
    let read = log.read(log.log_start_offset(), usize::MAX, log.log_end_offset()).unwrap();
    let bytes = read.to_vec();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = BatchHeader::parse(&bytes[at..]).unwrap();
        let b = &bytes[at..at + h.total_bytes()];
        crate::batch::validate(b).unwrap();
        if !h.is_control() {
            records::for_each_record(b, 1 << 24, |r| {
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                out.push(Seen { offset: r.offset, key: text(r.key.unwrap()), value: r.value.map(text), timestamp: r.timestamp });
                ControlFlow::Continue(())
            })
            .unwrap();
        }
        at += h.total_bytes();
    }
    out
}

/// Every raft entry's index and header.
fn entries(log: &Log) -> Vec<(u64, BatchHeader)> {
    let (first, next) = (log.first_raft_index().unwrap(), log.next_raft_index());
    let es = log.entries(first, next, usize::MAX).unwrap();
    assert_eq!(es.len() as u64, next - first, "every raft entry is read back");
    es.iter().map(|e| (e.raft_index, BatchHeader::parse(&e.bytes).unwrap())).collect()
}

/// What a pass must never change: raft index, offsets, epoch, producer, max timestamp.
fn identity(es: &[(u64, BatchHeader)]) -> Vec<(u64, i64, i32, i32, i64, i64, bool)> {
    es.iter()
        .map(|(r, h)| (*r, h.base_offset, h.last_offset_delta, h.leader_epoch, h.producer_id, h.max_timestamp, h.is_control()))
        .collect()
}

#[test]
fn keeps_the_latest_value_per_key_and_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::open(dir.path());
    w.put(&[("a", Some("1")), ("b", Some("1"))], T0);
    w.put(&[("a", Some("2")), ("c", Some("1"))], T0 + 10);
    w.append(&build_offsetless_control(3, -1, b"FJRF\x01\x00"));
    w.log.roll().unwrap();
    w.put(&[("b", Some("2"))], T0 + 20);
    w.put(&[("a", Some("3"))], T0 + 30);
    w.log.roll().unwrap();
    w.put(&[("a", Some("4"))], T0 + 40);
    let before = entries(&w.log);
    let bytes_before = w.log.size_bytes();

    let d = w.log.dirtiness(&params(i64::MAX, T0)).unwrap().unwrap();
    assert_eq!((d.first_dirty_offset, d.first_uncleanable_offset, d.clean_bytes), (0, 6, 0));
    assert!(d.ratio > 0.5 && d.should_clean(0.5), "{d:?}");
    let stats = w.log.clean(&params(i64::MAX, T0), Vec::new()).unwrap().unwrap();
    assert_eq!((stats.end_offset, stats.records_removed, stats.keys_mapped), (6, 3, 3));

    assert_eq!(
        consume(&w.log),
        [
            seen(3, "c", Some("1"), T0 + 11),
            seen(4, "b", Some("2"), T0 + 20),
            seen(5, "a", Some("3"), T0 + 30),
            seen(6, "a", Some("4"), T0 + 40)
        ]
    );
    let after = entries(&w.log);
    assert_eq!(identity(&after), identity(&before), "offsets, raft indexes, terms and producers are unchanged");
    let counts: Vec<i32> = after.iter().map(|(_, h)| h.record_count).collect();
    assert_eq!(counts, [0, 1, 0, 1, 1, 1], "the emptied batch stays, with its offsets");
    assert!(w.log.size_bytes() < bytes_before);
    assert_eq!(w.log.cleaner_checkpoint().unwrap(), Some(6));
    // Nothing is dirty until more is written and rolled.
    assert!(w.log.clean(&params(i64::MAX, T0), Vec::new()).unwrap().is_none());
    assert_eq!(w.log.dirtiness(&params(i64::MAX, T0)).unwrap().unwrap().ratio, 0.0);
    // Each offset is still found where it was (the rebuilt offset index).
    for offset in 0..w.log.log_end_offset() {
        let r = w.log.read(offset, 1, i64::MAX).unwrap();
        let h = BatchHeader::parse(&r.slices[0]).unwrap();
        assert!(h.base_offset <= offset && offset <= h.last_offset(), "offset {offset} read from {h:?}");
    }
}

#[test]
fn tombstones_stay_until_their_delete_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::open(dir.path());
    w.put(&[("k", Some("v")), ("j", Some("v"))], T0);
    w.put(&[("k", None)], T0 + 5);
    w.log.roll().unwrap();
    w.put(&[("x", Some("1"))], T0 + 6);

    w.log.clean(&params(i64::MAX, T0 + 100), Vec::new()).unwrap().unwrap();
    assert_eq!(consume(&w.log), [seen(1, "j", Some("v"), T0 + 1), seen(2, "k", None, T0 + 5), seen(3, "x", Some("1"), T0 + 6)]);
    let tombstone_batch = entries(&w.log)[1].1;
    assert_eq!(tombstone_batch.delete_horizon_ms(), Some(T0 + 100 + DAY_MS), "KIP-534: the first cleaning sets the horizon");

    // Later passes before the horizon keep it; the horizon does not move.
    w.log.roll().unwrap();
    w.put(&[("y", Some("1"))], T0 + 7);
    w.log.clean(&params(i64::MAX, T0 + 100 + DAY_MS - 1), Vec::new()).unwrap().unwrap();
    assert!(consume(&w.log).iter().any(|s| s.key == "k"));
    assert_eq!(entries(&w.log)[1].1.delete_horizon_ms(), Some(T0 + 100 + DAY_MS));

    w.log.roll().unwrap();
    w.put(&[("z", Some("1"))], T0 + 8);
    w.log.clean(&params(i64::MAX, T0 + 100 + DAY_MS), Vec::new()).unwrap().unwrap();
    let keys: Vec<String> = consume(&w.log).into_iter().map(|s| s.key).collect();
    assert_eq!(keys, ["j", "x", "y", "z"], "the tombstone is gone after the horizon");
    let h = entries(&w.log)[1].1;
    assert_eq!((h.base_offset, h.last_offset_delta, h.record_count, h.delete_horizon_ms()), (2, 0, 0, None));
}

/// A batch as the Java producer would send it, built by kafka-protocol's encoder.
fn kafka_batch(recs: &[Rec<'_>], ts: i64, codec: KafkaCompression) -> Vec<u8> {
    let records: Vec<KafkaRecord> = recs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: ts + 10 * i as i64,
            key: Some(Bytes::copy_from_slice(k.as_bytes())),
            value: v.map(|v| Bytes::from(v.repeat(40))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records.iter(), &RecordEncodeOptions { version: 2, compression: codec }).unwrap();
    buf.to_vec()
}

#[test]
fn compressed_batches_are_rewritten_with_their_codec() {
    for codec in [KafkaCompression::None, KafkaCompression::Gzip, KafkaCompression::Snappy, KafkaCompression::Lz4, KafkaCompression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path());
        w.append(&kafka_batch(
            &[("a", Some("1")), ("b", Some("1")), ("a", Some("2")), ("t", Some("1")), ("t", None), ("c", Some("1"))],
            T0,
            codec,
        ));
        w.log.roll().unwrap();
        w.put(&[("b", Some("2"))], T0 + 100);
        w.log.clean(&params(i64::MAX, T0 + 1000), Vec::new()).unwrap().unwrap();

        let e = &w.log.entries(1, 2, usize::MAX).unwrap()[0];
        let h = BatchHeader::parse(&e.bytes).unwrap();
        assert_eq!((h.compression_codec(), h.record_count, h.last_offset_delta), (codec as i16, 4, 5), "{codec:?}");
        assert_eq!(h.delete_horizon_ms(), Some(T0 + 1000 + DAY_MS), "{codec:?}: a tombstone sets the horizon");
        // An independent decoder (kafka-protocol's) reads what a Java consumer would.
        let set = RecordBatchDecoder::decode(&mut e.bytes.clone()).unwrap();
        let got: Vec<(i64, i64, String, Option<usize>)> = set
            .records
            .iter()
            .map(|r| {
                (r.offset, r.timestamp, String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(), r.value.as_ref().map(|v| v.len()))
            })
            .collect();
        let want = [(2, T0 + 20, "a".to_string(), Some(40)), (4, T0 + 40, "t".to_string(), None), (5, T0 + 50, "c".to_string(), Some(40))];
        assert_eq!(got[1..], want[..], "{codec:?}");
        assert_eq!(got[0].2, "b", "{codec:?}: b@1 stays, the newer b is in the active segment");
    }
}

#[test]
fn aborted_transactions_never_win_over_committed_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::open(dir.path());
    w.put(&[("k", Some("committed"))], T0);
    w.append(&batch_with(ATTR_TRANSACTIONAL, 7, &[("k", Some("aborted")), ("m", Some("aborted"))], T0 + 1));
    let (marker_offset, _) = w.append(&marker(7, false, T0 + 3));
    w.log.roll().unwrap();
    w.put(&[("z", Some("1"))], T0 + 4);
    let before = entries(&w.log);

    let aborted = vec![AbortedRange { producer_id: 7, first_offset: 1, last_offset: marker_offset }];
    w.log.clean(&params(i64::MAX, T0), aborted).unwrap().unwrap();
    assert_eq!(consume(&w.log), [seen(0, "k", Some("committed"), T0), seen(4, "z", Some("1"), T0 + 4)]);
    let after = entries(&w.log);
    assert_eq!(identity(&after), identity(&before));
    assert_eq!(after[1].1.record_count, 0, "the aborted batch is emptied, not dropped");
    assert!(after[1].1.is_transactional());
    assert_eq!(after[2].1, before[2].1, "the marker is kept byte for byte");
}

#[test]
fn nothing_at_or_above_the_bound_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::open(dir.path());
    w.put(&[("a", Some("1"))], T0);
    w.log.roll().unwrap();
    w.put(&[("a", Some("2"))], T0 + 1);
    w.log.roll().unwrap();
    w.put(&[("a", Some("3"))], T0 + 2);
    // Only the first segment lies below offset 1: its `a` is the latest it knows.
    assert_eq!(w.log.clean(&params(1, T0), Vec::new()).unwrap().unwrap().records_removed, 0);
    assert_eq!(consume(&w.log).len(), 3);
    assert_eq!(w.log.cleaner_checkpoint().unwrap(), Some(1));
    // With the bound at the log end, the active segment still stays out.
    let stats = w.log.clean(&params(i64::MAX, T0), Vec::new()).unwrap().unwrap();
    assert_eq!((stats.first_dirty_offset, stats.end_offset), (1, 2));
    assert_eq!(consume(&w.log), [seen(1, "a", Some("2"), T0 + 1), seen(2, "a", Some("3"), T0 + 2)]);
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::open(dir.path());
    w.put(&[("a", Some("1"))], T0);
    w.log.roll().unwrap();
    w.put(&[("a", Some("2"))], T0 + 1000);
    w.log.roll().unwrap();
    w.put(&[("b", Some("1"))], T0 + 2000);
    let p = CleanParams { min_compaction_lag_ms: 1500, ..params(i64::MAX, T0 + 2000) };
    // The second segment is younger than the lag: only the first may be cleaned.
    assert_eq!(w.log.dirtiness(&p).unwrap().unwrap().first_uncleanable_offset, 1);
    w.log.clean(&p, Vec::new()).unwrap().unwrap();
    assert_eq!(consume(&w.log).len(), 3);
    let overdue = CleanParams { max_compaction_lag_ms: 500, ..params(i64::MAX, T0 + 2000) };
    let d = w.log.dirtiness(&overdue).unwrap().unwrap();
    assert!(d.overdue && d.should_clean(0.99), "{d:?}");
}

#[test]
fn a_small_key_map_cleans_over_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::open(dir.path());
    for round in 0..4 {
        for key in ["a", "b", "c"] {
            w.put(&[(key, Some(&format!("{round}")))], T0 + round);
        }
        w.log.roll().unwrap();
    }
    w.put(&[("z", Some("z"))], T0 + 10);
    let p = CleanParams { max_map_bytes: 1, ..params(i64::MAX, T0) };
    let mut passes = 0;
    while w.log.clean(&p, Vec::new()).unwrap().is_some() {
        passes += 1;
        assert!(passes < 100);
    }
    assert!(passes > 3, "{passes} passes");
    let left: Vec<(String, Option<String>)> = consume(&w.log).into_iter().map(|s| (s.key, s.value)).collect();
    let want: Vec<(String, Option<String>)> =
        [("a", "3"), ("b", "3"), ("c", "3"), ("z", "z")].iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect();
    assert_eq!(left, want);
}

/// A log whose first segment has something to lose, and a planned, run pass.
fn written_but_not_swapped(dir: &std::path::Path) -> (Writer, CleanDone, Vec<Seen>, Vec<Seen>) {
    let mut w = Writer::open(dir);
    for i in 0..20 {
        w.put(&[("a", Some(&format!("{i}"))), ("b", Some("x"))], T0 + i);
    }
    w.log.roll().unwrap();
    w.put(&[("a", Some("last"))], T0 + 100);
    let uncleaned = consume(&w.log);
    let job = w.log.begin_clean(&params(i64::MAX, T0), Vec::new()).unwrap().unwrap();
    let done = job.run().unwrap();
    assert_eq!(done.rewritten.len(), 1);
    let cleaned = vec![seen(38, "a", Some("19"), T0 + 19), seen(39, "b", Some("x"), T0 + 20), seen(40, "a", Some("last"), T0 + 100)];
    (w, done, uncleaned, cleaned)
}

fn reopened_reads(dir: &std::path::Path, want: &[Seen], raft_entries: usize) {
    let log = Log::open(dir, config()).unwrap();
    assert_eq!(consume(&log), want);
    assert_eq!(entries(&log).len(), raft_entries);
    let leftovers: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.contains("cleaned")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for offset in 0..log.log_end_offset() {
        let h = BatchHeader::parse(&log.read(offset, 1, i64::MAX).unwrap().slices[0]).unwrap();
        assert!(h.base_offset <= offset && offset <= h.last_offset());
    }
}

#[test]
fn a_crash_before_the_log_is_renamed_keeps_the_old_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _done, uncleaned, _) = written_but_not_swapped(dir.path());
    // Step 1 done, then the crash.
    std::fs::remove_file(dir.path().join(file_name(0, INDEX_EXT))).unwrap();
    drop(w);
    reopened_reads(dir.path(), &uncleaned, 21);
}

#[test]
fn a_crash_after_the_log_is_renamed_keeps_the_cleaned_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _done, _, cleaned) = written_but_not_swapped(dir.path());
    // Steps 1 and 2 done, then the crash: the old indexes must not be trusted.
    std::fs::remove_file(dir.path().join(file_name(0, INDEX_EXT))).unwrap();
    let log_name = file_name(0, LOG_EXT);
    std::fs::rename(dir.path().join(format!("{log_name}.cleaned")), dir.path().join(&log_name)).unwrap();
    drop(w);
    reopened_reads(dir.path(), &cleaned, 21);
}

#[test]
fn a_completed_swap_survives_a_restart_and_a_full_recovery_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, done, _, cleaned) = written_but_not_swapped(dir.path());
    w.log.complete_clean(done).unwrap();
    assert_eq!(consume(&w.log), cleaned);
    drop(w);
    reopened_reads(dir.path(), &cleaned, 21);
    // No recovery point: every batch is scanned and checked, and none is cut.
    std::fs::remove_file(dir.path().join(crate::checkpoint::RECOVERY_POINT)).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!((log.open_report().truncated_bytes, log.open_report().segments_dropped), (0, 0));
    assert_eq!(consume(&log), cleaned);
    assert_eq!(log.cleaner_checkpoint().unwrap(), Some(40));
}

#[test]
fn a_segment_replaced_under_the_pass_is_not_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, done, _, _) = written_but_not_swapped(dir.path());
    // A snapshot install resets the log while the pass ran.
    w.log.reset(41, 100).unwrap();
    let stats = w.log.complete_clean(done).unwrap();
    assert_eq!(stats.segments_rewritten, 0);
    assert_eq!(w.log.cleaner_checkpoint().unwrap(), None, "the checkpoint does not move");
    assert!(!dir.path().join(format!("{}.cleaned", file_name(0, LOG_EXT))).exists());
}

#[test]
fn a_follower_takes_the_cleaned_entries() {
    let leader_dir = tempfile::tempdir().unwrap();
    let (mut w, done, _, cleaned) = written_but_not_swapped(leader_dir.path());
    w.log.complete_clean(done).unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut follower = Log::open(follower_dir.path(), config()).unwrap();
    for e in w.log.entries(1, w.log.next_raft_index(), usize::MAX).unwrap() {
        let h = BatchHeader::parse(&e.bytes).unwrap();
        let info = follower.append(&e.bytes, h.leader_epoch, e.raft_index).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (h.base_offset, h.last_offset()));
    }
    assert_eq!(consume(&follower), cleaned);
    assert_eq!(identity(&entries(&follower)), identity(&entries(&w.log)));
}
