//! What the bench counts while it runs: record and byte counters, and HDR
//! histograms of publish and end-to-end latency per reporting interval.
//!
//! The producers' and consumers' I/O tasks record into [`Stats`] once per
//! batch (one lock per batch, never per record); the driver takes an
//! [`IntervalSnapshot`] every interval, which resets the interval histograms,
//! and folds the snapshots of the measured window into a [`Totals`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::{Percentiles, Throughput};

/// Latencies are kept in microseconds, from 1 µs to an hour, at 3
/// significant digits: enough for a p99.9 of a fraction of a millisecond
/// and for a stalled broker alike.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 3_600_000_000;
const SIGFIG: u8 = 3;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("constant bounds are valid")
}

#[derive(Default)]
struct Counter {
    records: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (self.records.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// Shared by every producer and consumer of one bench run.
pub struct Stats {
    published: Counter,
    consumed: Counter,
    publish_errors: AtomicU64,
    publish_latency: Mutex<Histogram<u64>>,
    end_to_end_latency: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            published: Counter::default(),
            consumed: Counter::default(),
            publish_errors: AtomicU64::new(0),
            publish_latency: Mutex::new(histogram()),
            end_to_end_latency: Mutex::new(histogram()),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(LOWEST_US, HIGHEST_US)
}

impl Stats {
    /// A batch the broker acknowledged: its records' latencies from send to now.
    pub fn published(&self, bytes: usize, latencies: impl Iterator<Item = Duration>) {
        let mut n = 0;
        {
            let mut h = self.publish_latency.lock().unwrap_or_else(|e| e.into_inner());
            for l in latencies {
                // Clamped into the bounds, so recording cannot fail.
                let _ = h.record(micros(l));
                n += 1;
            }
        }
        self.published.add(n, bytes as u64);
    }

    pub fn publish_failed(&self, records: usize) {
        self.publish_errors.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Records a consumer received; `latencies` are send-to-receive for the
    /// records that carry the bench's send time (none when reading data some
    /// other producer wrote).
    pub fn consumed(&self, records: usize, bytes: usize, latencies: impl Iterator<Item = Duration>) {
        {
            let mut h = self.end_to_end_latency.lock().unwrap_or_else(|e| e.into_inner());
            for l in latencies {
                let _ = h.record(micros(l));
            }
        }
        self.consumed.add(records as u64, bytes as u64);
    }

    pub fn published_records(&self) -> u64 {
        self.published.get().0
    }

    pub fn consumed_records(&self) -> u64 {
        self.consumed.get().0
    }

    pub fn publish_errors(&self) -> u64 {
        self.publish_errors.load(Ordering::Relaxed)
    }

    /// Everything since the previous snapshot; resets the interval histograms.
    pub fn snapshot(&self, previous: &Cumulative) -> (IntervalSnapshot, Cumulative) {
        let take = |m: &Mutex<Histogram<u64>>| {
            let mut h = m.lock().unwrap_or_else(|e| e.into_inner());
            let out = h.clone();
            h.reset();
            out
        };
        let publish_latency = take(&self.publish_latency);
        let end_to_end_latency = take(&self.end_to_end_latency);
        let now = Cumulative { published: self.published.get(), consumed: self.consumed.get(), publish_errors: self.publish_errors() };
        let snap = IntervalSnapshot {
            published: (now.published.0 - previous.published.0, now.published.1 - previous.published.1),
            consumed: (now.consumed.0 - previous.consumed.0, now.consumed.1 - previous.consumed.1),
            publish_errors: now.publish_errors - previous.publish_errors,
            publish_latency,
            end_to_end_latency,
        };
        (snap, now)
    }
}

/// Counter values at one snapshot, to difference the next one against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cumulative {
    published: (u64, u64),
    consumed: (u64, u64),
    publish_errors: u64,
}

/// One interval's counts and latency histograms.
pub struct IntervalSnapshot {
    /// (records, bytes)
    pub published: (u64, u64),
    pub consumed: (u64, u64),
    pub publish_errors: u64,
    pub publish_latency: Histogram<u64>,
    pub end_to_end_latency: Histogram<u64>,
}

/// The measured window: the sum of its intervals.
pub struct Totals {
    pub published: (u64, u64),
    pub consumed: (u64, u64),
    pub publish_errors: u64,
    pub publish_latency: Histogram<u64>,
    pub end_to_end_latency: Histogram<u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals { published: (0, 0), consumed: (0, 0), publish_errors: 0, publish_latency: histogram(), end_to_end_latency: histogram() }
    }
}

impl Totals {
    pub fn add(&mut self, s: &IntervalSnapshot) {
        self.published.0 += s.published.0;
        self.published.1 += s.published.1;
        self.consumed.0 += s.consumed.0;
        self.consumed.1 += s.consumed.1;
        self.publish_errors += s.publish_errors;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.publish_latency.add(&s.publish_latency);
        let _ = self.end_to_end_latency.add(&s.end_to_end_latency);
    }
}

pub fn throughput((records, bytes): (u64, u64), seconds: f64) -> Throughput {
    let rate = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    Throughput { records, bytes, records_per_s: rate(records), mb_per_s: rate(bytes) / (1024.0 * 1024.0) }
}

/// Percentiles in milliseconds from a histogram in microseconds.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.50)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        p99_9: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_reset_and_totals_add_up() {
        let stats = Stats::default();
        let mut totals = Totals::default();
        let mut prev = Cumulative::default();
        stats.published(3000, (1..=3).map(Duration::from_millis));
        stats.consumed(3, 3000, [Duration::from_millis(10)].into_iter());
        let (a, now) = stats.snapshot(&prev);
        prev = now;
        assert_eq!(a.published, (3, 3000));
        assert_eq!(a.consumed, (3, 3000));
        assert_eq!(a.publish_latency.len(), 3);
        assert_eq!(a.end_to_end_latency.len(), 1);
        totals.add(&a);

        stats.published(1000, [Duration::from_millis(100)].into_iter());
        stats.publish_failed(2);
        let (b, _) = stats.snapshot(&prev);
        assert_eq!(b.published, (1, 1000), "the second interval counts only its own records");
        assert_eq!(b.publish_latency.len(), 1, "the interval histogram was reset");
        assert_eq!(b.publish_errors, 2);
        totals.add(&b);

        assert_eq!(totals.published, (4, 4000));
        let p = percentiles(&totals.publish_latency);
        assert_eq!(p.count, 4);
        assert!((p.p50 - 2.0).abs() < 0.01, "p50 {}", p.p50);
        assert!((p.max - 100.0).abs() < 0.1, "max {}", p.max);
        assert_eq!(percentiles(&totals.end_to_end_latency).count, 1);
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let stats = Stats::default();
        stats.published(2, [Duration::ZERO, Duration::from_secs(10 * 3600)].into_iter());
        let (s, _) = stats.snapshot(&Cumulative::default());
        assert_eq!(s.publish_latency.len(), 2);
    }

    #[test]
    fn throughput_is_per_second_in_mebibytes() {
        let t = throughput((2000, 4 * 1024 * 1024), 2.0);
        assert_eq!(t.records_per_s, 1000.0);
        assert_eq!(t.mb_per_s, 2.0);
        assert_eq!(throughput((5, 5), 0.0).records_per_s, 0.0);
    }
}
