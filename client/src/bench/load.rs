//! The load itself: records stamped with their send time, producer loops that
//! pace and spread them, and the callbacks that feed [`Stats`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use rand::Rng;

use crate::consumer::{Fetched, RecordsFn};
use crate::producer::{AckFn, BatchOutcome, Producer};
use crate::stats::Stats;

/// A value starting with these bytes carries its send time in the next 8
/// (microseconds since the Unix epoch, big-endian), so a consumer in another
/// process on the same host can measure end-to-end latency.
const MAGIC: &[u8; 8] = b"FJBENCH1";
const STAMP_LEN: usize = 16;

/// The body every record copies: random capital letters, as
/// kafka-producer-perf-test writes, so compressors see the same data in both.
pub fn payload(size: usize) -> Bytes {
    let mut rng = rand::rng();
    (0..size).map(|_| rng.random_range(b'A'..=b'Z')).collect::<Vec<u8>>().into()
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn stamped(body: &Bytes) -> Bytes {
    if body.len() < STAMP_LEN {
        return body.clone();
    }
    let mut v = BytesMut::with_capacity(body.len());
    v.put_slice(MAGIC);
    v.put_u64(unix_micros());
    v.put_slice(&body[STAMP_LEN..]);
    v.freeze()
}

/// The send-to-now latency of a stamped value, if it is one.
fn stamp_age(value: &[u8], now_us: u64) -> Option<Duration> {
    if value.len() < STAMP_LEN || &value[..8] != MAGIC {
        return None;
    }
    let sent = u64::from_be_bytes(value[8..16].try_into().ok()?);
    Some(Duration::from_micros(now_us.saturating_sub(sent)))
}

/// The first publish error, kept to explain a failed run.
pub type FirstError = Arc<Mutex<Option<String>>>;

pub fn on_ack(stats: Arc<Stats>, first_error: FirstError) -> AckFn {
    Arc::new(move |o: &BatchOutcome<'_>| match o.result {
        Ok(_) => {
            let now = Instant::now();
            stats.published(o.bytes, o.sent_at.iter().map(|t| now.saturating_duration_since(*t)));
        }
        Err(e) => {
            stats.publish_failed(o.sent_at.len());
            let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(format!("{}-{}: {e}", o.topic, o.partition));
            }
        }
    })
}

pub fn on_records(stats: Arc<Stats>) -> RecordsFn {
    Arc::new(move |f: &Fetched<'_>| {
        let now = unix_micros();
        let bytes: usize = f.records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) + r.key.as_ref().map_or(0, |k| k.len())).sum();
        stats.consumed(f.records.len(), bytes, f.records.iter().filter_map(|r| r.value.as_deref().and_then(|v| stamp_age(v, now))));
    })
}

/// When the producers stop: at a flag the driver raises (a duration), or
/// after a number of records sent once the measured window has begun.
pub struct Window {
    pub stop: AtomicBool,
    pub measuring: AtomicBool,
    /// Records left to send in the measured window, when bounded by records.
    pub budget: Option<AtomicU64>,
}

impl Window {
    /// Takes one record from the budget; false once the window is over.
    fn take(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match &self.budget {
            Some(left) if self.measuring.load(Ordering::Relaxed) => {
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
            }
            _ => true,
        }
    }
}

pub struct ProducerLoop {
    pub producer: Arc<Producer>,
    /// Every (topic, partition) of the run.
    pub targets: Arc<Vec<(String, i32)>>,
    /// Where this producer starts in `targets`, so producers spread out.
    pub first_target: usize,
    /// Records per partition before moving to the next: a batch's worth, as
    /// the Java producer's sticky partitioner does for records without keys.
    pub sticky_records: u64,
    pub body: Bytes,
    /// Records per second for this producer; 0 is unthrottled.
    pub rate: f64,
    pub window: Arc<Window>,
}

impl ProducerLoop {
    /// Sends until the window closes; returns the records sent, or the error
    /// that stopped it (the producer was closed under it).
    pub async fn run(self) -> Result<u64, crate::error::ClientError> {
        let start = Instant::now();
        let gap = (self.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.rate));
        let mut sent: u64 = 0;
        let mut target = self.first_target % self.targets.len();
        let mut on_target = 0;
        while self.window.take() {
            if let Some(gap) = gap {
                // Sleeping per record would cost more than the gap at high
                // rates; catch up in bursts of at most a millisecond instead.
                let due = start + gap.mul_f64(sent as f64);
                if due > Instant::now() + Duration::from_millis(1) {
                    tokio::time::sleep_until(due.into()).await;
                }
            }
            let (topic, partition) = &self.targets[target];
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
            self.producer.send(topic, *partition, None, stamped(&self.body), now_ms).await?;
            sent += 1;
            on_target += 1;
            if on_target >= self.sticky_records {
                on_target = 0;
                target = (target + 1) % self.targets.len();
            }
        }
        Ok(sent)
    }
}

/// Deals (topic, partition) pairs to `n` clients round robin.
pub fn deal(targets: &[(String, i32)], n: usize) -> Vec<Vec<(String, i32)>> {
    if n == 0 {
        return Vec::new();
    }
    let mut hands = vec![Vec::new(); n];
    for (i, t) in targets.iter().enumerate() {
        hands[i % n].push(t.clone());
    }
    hands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_foreign_values_are_ignored() {
        let body = payload(1024);
        assert!(body.iter().all(|b| b.is_ascii_uppercase()));
        let v = stamped(&body);
        assert_eq!(v.len(), 1024);
        assert_eq!(&v[16..], &body[16..]);
        let age = stamp_age(&v, unix_micros() + 2_000).expect("a stamped value");
        assert!(age >= Duration::from_millis(2), "{age:?}");
        assert_eq!(stamp_age(&body, unix_micros()), None, "a plain payload has no stamp");
        assert_eq!(stamped(&payload(8)).len(), 8, "too small to stamp, sent as is");
    }

    #[test]
    fn a_record_budget_ends_the_window_only_while_measuring() {
        let w = Window { stop: AtomicBool::new(false), measuring: AtomicBool::new(false), budget: Some(AtomicU64::new(2)) };
        assert!((0..10).all(|_| w.take()), "warm-up is not counted");
        w.measuring.store(true, Ordering::Relaxed);
        assert!(w.take() && w.take());
        assert!(!w.take());
        let w = Window { stop: AtomicBool::new(false), measuring: AtomicBool::new(true), budget: None };
        assert!(w.take());
        w.stop.store(true, Ordering::Relaxed);
        assert!(!w.take());
    }

    #[test]
    fn dealing_covers_every_partition_once() {
        let t: Vec<_> = (0..5).map(|p| ("t".to_string(), p)).collect();
        let hands = deal(&t, 2);
        assert_eq!(hands[0].iter().map(|x| x.1).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(hands[1].iter().map(|x| x.1).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(deal(&t, 7).iter().filter(|h| h.is_empty()).count(), 2);
        assert!(deal(&t, 0).is_empty(), "no consumers, no hands");
    }
}
