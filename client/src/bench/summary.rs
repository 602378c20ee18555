//! What a person reads: the progress line per interval and the closing summary.

use std::fmt::Write;

use crate::report::{BenchResult, Interval, Percentiles};

fn latency(p: &Percentiles) -> String {
    if p.count == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (mean {:.2}, {} samples)",
        p.p50, p.p95, p.p99, p.p99_9, p.max, p.mean, p.count
    )
}

pub fn progress(row: &Interval) -> String {
    let mut s = format!(
        "[{:7.1}s] publish {:>9.0} rec/s {:>8.2} MB/s p99 {:>7.2} ms | consume {:>9.0} rec/s {:>8.2} MB/s e2e p99 {:>7.2} ms",
        row.t_s,
        row.publish_records_per_s,
        row.publish_mb_per_s,
        row.publish_latency_ms.p99,
        row.consume_records_per_s,
        row.consume_mb_per_s,
        row.end_to_end_latency_ms.p99,
    );
    if row.publish_errors > 0 {
        let _ = write!(s, " | {} errors", row.publish_errors);
    }
    if row.warmup {
        s.push_str(" (warm-up)");
    }
    s
}

pub fn text(r: &BenchResult) -> String {
    let w = &r.workload;
    let s = &r.summary;
    let rate = if w.target_rate == 0 { "unthrottled".to_string() } else { format!("{} records/s", w.target_rate) };
    let acks = match w.acks {
        -1 => "all".to_string(),
        n => n.to_string(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} topic(s) x {} partition(s), RF {}, {}-byte records, {} producer(s), {} consumer(s), acks={}, compression {}, {}",
        r.tool,
        w.topics.len(),
        w.partitions_per_topic,
        w.replication_factor,
        w.record_size,
        w.producers,
        w.consumers,
        acks,
        w.compression,
        rate
    );
    let _ = writeln!(out, "measured {:.1} s after {:.1} s of warm-up", s.duration_s, w.warmup_s);
    let _ = writeln!(
        out,
        "publish   {:>12} records {:>10.2} MB/s {:>12.0} records/s   errors {}",
        s.publish.records, s.publish.mb_per_s, s.publish.records_per_s, s.publish_errors
    );
    let _ = writeln!(out, "  publish latency ms     {}", latency(&s.publish_latency_ms));
    let _ = writeln!(
        out,
        "consume   {:>12} records {:>10.2} MB/s {:>12.0} records/s",
        s.consume.records, s.consume.mb_per_s, s.consume.records_per_s
    );
    let _ = writeln!(out, "  end-to-end latency ms  {}", latency(&s.end_to_end_latency_ms));
    out
}
