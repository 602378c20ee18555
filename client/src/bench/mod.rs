//! `fjord bench`: an OpenMessaging-Benchmark-shaped load generator for any
//! Kafka-compatible broker.
//!
//! A run: create the topics, start the consumers at the log end, start the
//! producers, report every interval, let the warm-up pass, measure for a
//! duration or a number of records, then flush, let the consumers drain, and
//! check that they received every acknowledged record. Publish latency is
//! send to acknowledgement per record (the producer's own queueing
//! included, as the Java producer's callback sees it); end-to-end latency is
//! send to receipt, read from a stamp in the value.

mod args;
mod load;
mod summary;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use args::{BenchArgs, Codec};

use crate::cluster::Cluster;
use crate::consumer::{Consumer, ConsumerConfig, StartAt};
use crate::error::ClientError;
use crate::producer::{Producer, ProducerConfig};
use crate::report::{BenchResult, Interval, Summary, Workload};
use crate::stats::{self, Cumulative, IntervalSnapshot, Stats, Totals};
use load::{FirstError, ProducerLoop, Window};

const CLIENT_ID: &str = "fjord-bench";
/// How long the consumers get, after the last acknowledgement, to receive
/// what was acknowledged before the run counts records as missing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `fjord bench` to completion: 0 on success, 1 on a failed run.
pub fn run(args: BenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("fjord-bench").build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fjord bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("{records} records failed to publish; the first: {first}")]
    PublishFailed { records: u64, first: String },
    #[error("the consumers received {received} of {acknowledged} acknowledged records within {DRAIN_TIMEOUT:?}")]
    Missing { received: u64, acknowledged: u64 },
    #[error("cannot write {path}: {detail}")]
    Output { path: String, detail: String },
}

async fn bench(args: BenchArgs) -> Result<(), BenchError> {
    let bootstrap: Vec<String> = args.bootstrap_server.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if bootstrap.is_empty() {
        return Err(BenchError::Usage("--bootstrap-server names no broker".into()));
    }
    if args.producers == 0 && args.topic.is_none() {
        return Err(BenchError::Usage("--producers 0 reads an existing --topic".into()));
    }
    if args.producers == 0 && args.consumers == 0 {
        return Err(BenchError::Usage("nothing to do: --producers 0 and --consumers 0".into()));
    }
    let consume_only = args.producers == 0;
    let warmup = if consume_only { Duration::ZERO } else { args.warmup };
    let interval = args.interval.max(Duration::from_millis(100));

    let admin = Cluster::connect(&bootstrap, CLIENT_ID).await?;
    let (topics, created) = topics(&admin, &args).await?;
    let targets: Vec<(String, i32)> = topics.iter().flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p))).collect();

    let stats = Arc::new(Stats::default());
    let outcome = drive(&args, &bootstrap, &targets, warmup, interval, stats.clone()).await;

    if !args.keep_topics {
        for t in &created {
            if let Err(e) = admin.delete_topic(t).await {
                eprintln!("fjord bench: could not delete topic {t}: {e}");
            }
        }
    }
    let Driven { intervals, totals, measured, started_at_unix_s } = outcome?;

    let summary = Summary {
        duration_s: measured.as_secs_f64(),
        publish: stats::throughput(totals.published, measured.as_secs_f64()),
        consume: stats::throughput(totals.consumed, measured.as_secs_f64()),
        publish_latency_ms: stats::percentiles(&totals.publish_latency),
        end_to_end_latency_ms: stats::percentiles(&totals.end_to_end_latency),
        publish_errors: stats.publish_errors(),
    };
    let result = BenchResult {
        tool: format!("fjord bench {}", env!("CARGO_PKG_VERSION")),
        workload: workload(&args, &topics, warmup),
        started_at_unix_s,
        summary,
        intervals,
    };
    print!("{}", summary::text(&result));
    if let Some(path) = &args.output {
        let json = serde_json::to_vec_pretty(&result).map_err(|e| output_error(path, e))?;
        std::fs::write(path, json).map_err(|e| output_error(path, e))?;
    }
    if let Some(dir) = &args.plots {
        crate::plot::write_plots(&result, dir).map_err(|e| output_error(dir, e))?;
    }
    Ok(())
}

fn output_error(path: &std::path::Path, e: impl std::fmt::Display) -> BenchError {
    BenchError::Output { path: path.display().to_string(), detail: e.to_string() }
}

/// The topics of the run with their partition counts, and those it created.
async fn topics(admin: &Cluster, args: &BenchArgs) -> Result<(Vec<(String, i32)>, Vec<String>), BenchError> {
    let wait = Duration::from_secs(60);
    if let Some(t) = &args.topic {
        let n = admin.wait_for_leaders(t, wait).await?;
        return Ok((vec![(t.clone(), n)], Vec::new()));
    }
    let tag: u32 = rand::random::<u32>() & 0xff_ffff;
    let mut topics = Vec::new();
    let mut created = Vec::new();
    for i in 0..args.topics {
        let name = format!("{}-{tag:06x}-{i}", args.topic_prefix);
        admin.create_topic(&name, args.partitions, args.replication_factor, &args.topic_config).await?;
        created.push(name.clone());
        let n = admin.wait_for_leaders(&name, wait).await?;
        topics.push((name, n));
    }
    Ok((topics, created))
}

struct Driven {
    intervals: Vec<Interval>,
    totals: Totals,
    measured: Duration,
    started_at_unix_s: f64,
}

/// Starts the clients, reports every interval, and stops them when the window closes.
async fn drive(
    args: &BenchArgs,
    bootstrap: &[String],
    targets: &[(String, i32)],
    warmup: Duration,
    interval: Duration,
    stats: Arc<Stats>,
) -> Result<Driven, BenchError> {
    let consume_only = args.producers == 0;
    let mut consumers = Vec::new();
    let consumer_count = (args.consumers as usize).min(targets.len());
    for hand in load::deal(targets, consumer_count).into_iter().filter(|h| !h.is_empty()) {
        let cluster = Cluster::connect(bootstrap, CLIENT_ID).await?;
        let start = if consume_only { StartAt::Earliest } else { StartAt::Latest };
        let config = ConsumerConfig { client_id: CLIENT_ID.into(), ..ConsumerConfig::default() };
        consumers.push(Consumer::start(cluster, config, hand, start, load::on_records(stats.clone())).await?);
    }

    let window = Arc::new(Window {
        stop: AtomicBool::new(false),
        measuring: AtomicBool::new(warmup.is_zero()),
        budget: if consume_only { None } else { args.records.map(AtomicU64::new) },
    });
    let first_error: FirstError = Arc::new(Mutex::new(None));
    let targets = Arc::new(targets.to_vec());
    let body = load::payload(args.record_size as usize);
    let mut producers = Vec::new();
    let mut loops = Vec::new();
    for i in 0..args.producers as usize {
        let cluster = Cluster::connect(bootstrap, CLIENT_ID).await?;
        let config = ProducerConfig {
            client_id: CLIENT_ID.into(),
            acks: args.acks,
            compression: args.compression.compression(),
            batch_size: args.batch_size as usize,
            linger: Duration::from_millis(args.linger_ms),
            max_in_flight: args.max_in_flight as usize,
            ..ProducerConfig::default()
        };
        let producer = Arc::new(Producer::new(cluster, config, load::on_ack(stats.clone(), first_error.clone())).await?);
        producers.push(producer.clone());
        loops.push(tokio::spawn(
            ProducerLoop {
                producer,
                targets: targets.clone(),
                first_target: i * targets.len() / args.producers as usize,
                sticky_records: (args.batch_size / args.record_size).max(1),
                body: body.clone(),
                rate: args.rate as f64 / args.producers as f64,
                window: window.clone(),
            }
            .run(),
        ));
    }

    let started = Instant::now();
    let mut reporter = Reporter { started, last: started, previous: Cumulative::default(), intervals: Vec::new() };
    let mut totals = Totals::default();
    let mut ticker = tokio::time::interval_at((started + interval).into(), interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // Warm-up: reported, not counted.
    let warm_end = started + warmup;
    while Instant::now() < warm_end {
        tokio::select! {
            _ = ticker.tick() => { reporter.take(&stats, true); }
            _ = tokio::time::sleep_until(warm_end.into()) => {}
        }
    }
    // The warm-up's last partial interval, unless a tick just took it.
    if !warmup.is_zero() && reporter.last.elapsed() > interval / 10 {
        reporter.take(&stats, true);
    }
    window.measuring.store(true, Ordering::Relaxed);
    let measure_start = Instant::now();
    let measure_start_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);

    // The measured window ends at the duration, or when the record budget is
    // spent (and flushed), or for a consume-only run when enough arrived.
    let deadline = args.duration.map(|d| measure_start + d);
    let wanted = if args.records.is_none() && args.duration.is_none() {
        // Neither bound: a minute, as OMB's default test duration.
        Some(measure_start + Duration::from_secs(60))
    } else {
        deadline
    };
    loop {
        let producers_done = !consume_only && loops.iter().all(|l| l.is_finished());
        let consumed_enough = consume_only && args.records.is_some_and(|n| stats.consumed_records() >= n);
        if producers_done || consumed_enough || wanted.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let next_check = Instant::now() + Duration::from_millis(20);
        tokio::select! {
            _ = ticker.tick() => { totals.add(&reporter.take(&stats, false)); }
            _ = tokio::time::sleep_until(wanted.unwrap_or(next_check).min(next_check).into()) => {}
        }
    }
    window.stop.store(true, Ordering::Relaxed);
    for l in loops {
        match l.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => return Err(BenchError::Usage(format!("a producer task failed: {e}"))),
        }
    }
    // With a record budget the window closes at the last acknowledgement;
    // with a duration, what is still in flight at the deadline is not counted.
    let counted = if args.records.is_some() && !consume_only {
        for p in &producers {
            p.flush().await;
        }
        true
    } else {
        false
    };
    let measured = measure_start.elapsed();
    totals.add(&reporter.take(&stats, false));
    if !counted {
        for p in &producers {
            p.flush().await;
        }
    }
    for p in producers {
        if let Ok(p) = Arc::try_unwrap(p) {
            p.close().await;
        }
    }

    // Drain: every acknowledged record must reach a consumer. Their
    // end-to-end latencies still count; their throughput does not.
    if !consume_only && !consumers.is_empty() {
        let acknowledged = stats.published_records();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while stats.consumed_records() < acknowledged && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tail = reporter.drain(&stats);
        let _ = totals.end_to_end_latency.add(&tail.end_to_end_latency);
        for c in consumers {
            c.stop().await;
        }
        let received = stats.consumed_records();
        if received < acknowledged {
            return Err(BenchError::Missing { received, acknowledged });
        }
    } else {
        for c in consumers {
            c.stop().await;
        }
    }
    let errors = stats.publish_errors();
    if errors > 0 {
        let first = first_error.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
        return Err(BenchError::PublishFailed { records: errors, first });
    }
    Ok(Driven { intervals: reporter.intervals, totals, measured, started_at_unix_s: measure_start_unix })
}

/// Turns snapshots into interval rows and progress lines.
struct Reporter {
    started: Instant,
    last: Instant,
    previous: Cumulative,
    intervals: Vec<Interval>,
}

impl Reporter {
    /// What arrived after the window closed: not a row of its own, its
    /// rates would be over a partial interval of draining.
    fn drain(&mut self, stats: &Stats) -> IntervalSnapshot {
        let (snap, cumulative) = stats.snapshot(&self.previous);
        self.previous = cumulative;
        snap
    }

    fn take(&mut self, stats: &Stats, warmup: bool) -> IntervalSnapshot {
        let now = Instant::now();
        let seconds = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let (snap, cumulative) = stats.snapshot(&self.previous);
        self.previous = cumulative;
        let publish = stats::throughput(snap.published, seconds);
        let consume = stats::throughput(snap.consumed, seconds);
        let row = Interval {
            t_s: now.duration_since(self.started).as_secs_f64(),
            warmup,
            publish_records_per_s: publish.records_per_s,
            publish_mb_per_s: publish.mb_per_s,
            consume_records_per_s: consume.records_per_s,
            consume_mb_per_s: consume.mb_per_s,
            publish_latency_ms: stats::percentiles(&snap.publish_latency),
            end_to_end_latency_ms: stats::percentiles(&snap.end_to_end_latency),
            publish_errors: snap.publish_errors,
        };
        eprintln!("{}", summary::progress(&row));
        self.intervals.push(row);
        snap
    }
}

fn workload(args: &BenchArgs, topics: &[(String, i32)], warmup: Duration) -> Workload {
    Workload {
        bootstrap_servers: args.bootstrap_server.clone(),
        topics: topics.iter().map(|(t, _)| t.clone()).collect(),
        partitions_per_topic: topics.first().map_or(0, |(_, n)| *n),
        replication_factor: args.replication_factor,
        record_size: args.record_size as usize,
        producers: args.producers as usize,
        consumers: args.consumers as usize,
        target_rate: args.rate,
        acks: args.acks,
        compression: args.compression.name().to_string(),
        batch_size: args.batch_size as usize,
        linger_ms: args.linger_ms,
        warmup_s: warmup.as_secs_f64(),
        duration_s: args.duration.map(|d| d.as_secs_f64()),
        records: args.records,
    }
}
