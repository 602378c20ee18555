//! The producer, modelled on the Java one (`KafkaProducer` + `RecordAccumulator`
//! + `Sender`), minus idempotence and transactions.
//!
//! `send` appends a record to its partition's open batch under that
//! partition's lock; a batch is sealed (encoded as a v2 record batch, and
//! compressed) when the next record would overflow `batch_size`, by the task
//! that filled it, or when it has lingered `linger`, by the sender task. The
//! sender task drains sealed batches into one Produce request per leader
//! (one batch per partition per request, at most 1 MiB, like
//! `max.request.size`), with at most `max_in_flight` requests outstanding per
//! broker; each request runs in its own task, which reports every batch's fate
//! to the [`AckFn`] or puts a batch that failed retriably back in its queue
//! for another try after a metadata refresh. `buffer_memory` bounds the bytes
//! of records handed to `send` and not yet acknowledged.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, RETRY_BACKOFF};
use crate::conn::{Connection, InFlight};
use crate::error::{ClientError, Result};

/// Produce v13 names topics by id (KIP-516); 12 is the last by name, and
/// Kafka 4 and fjord serve 3..=13.
const PRODUCE_VERSIONS: std::ops::RangeInclusive<i16> = 3..=12;

/// The Java producer's max.request.size default.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// A v2 record's framing around key and value (length, attributes, deltas,
/// key/value lengths, header count) is 7 to 15 bytes; this is what we count
/// per record for batch_size and buffer_memory.
const RECORD_OVERHEAD_BYTES: usize = 12;

/// The record batch v2 header.
const BATCH_HEADER_BYTES: usize = 61;

/// Highest partition index accepted by `send`, so a typo cannot allocate a huge table.
const MAX_PARTITION: i32 = 1 << 20;

/// The Java producer's settings of the same names; see the field docs.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub client_id: String,
    /// 0, 1 or -1 (all).
    pub acks: i16,
    pub compression: Compression,
    /// batch.size, default 16384.
    pub batch_size: usize,
    /// linger.ms, default 5 ms (Kafka 4's).
    pub linger: Duration,
    /// max.in.flight.requests.per.connection, default 5, per broker.
    pub max_in_flight: usize,
    /// buffer.memory, default 32 MiB.
    pub buffer_memory: usize,
    /// request.timeout.ms, default 30 s.
    pub request_timeout: Duration,
    /// delivery.timeout.ms, default 120 s.
    pub delivery_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            client_id: "fjord-bench".into(),
            acks: -1,
            compression: Compression::None,
            batch_size: 16384,
            linger: Duration::from_millis(5),
            max_in_flight: 5,
            buffer_memory: 32 << 20,
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(120),
        }
    }
}

/// What happened to one batch; the producer calls the AckFn once per batch, from its I/O tasks, so keep it cheap.
pub struct BatchOutcome<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// When each record was handed to `send`, in order.
    pub sent_at: &'a [Instant],
    /// Key + value bytes of the records (not the encoded batch size).
    pub bytes: usize,
    /// Base offset on success (-1 with acks=0).
    pub result: std::result::Result<i64, &'a ClientError>,
}

pub type AckFn = Arc<dyn Fn(&BatchOutcome<'_>) + Send + Sync>;

/// A sealed batch, from its sealing until its outcome is reported.
struct Batch {
    /// Increasing in sealing order, across partitions; `flush` waits on these.
    id: u64,
    topic: Arc<str>,
    partition: i32,
    /// The encoded record batch, or why it could not be encoded.
    payload: std::result::Result<Bytes, String>,
    sent_at: Vec<Instant>,
    bytes: usize,
    /// buffer_memory permits to give back when done.
    permits: usize,
    created: Instant,
    retry_at: Option<Instant>,
}

/// One partition's open batch and its sealed batches waiting to be sent.
struct PartState {
    records: Vec<Record>,
    sent_at: Vec<Instant>,
    bytes: usize,
    /// Uncompressed estimate of the encoded records.
    raw_bytes: usize,
    permits: usize,
    created: Instant,
    ready: VecDeque<Batch>,
    /// Encoded/uncompressed size of recent batches (the Java producer's
    /// CompressionRatioEstimator), so that batch_size bounds what is sent.
    ratio: f32,
}

struct PartQueue {
    topic: Arc<str>,
    partition: i32,
    state: Mutex<PartState>,
}

impl PartQueue {
    fn lock(&self) -> MutexGuard<'_, PartState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A topic's queues by partition index; `None` for partitions never sent to.
type PartitionTable = Vec<Option<Arc<PartQueue>>>;

struct Inner {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    on_ack: AckFn,
    /// Topic -> partition index -> queue; grows on first `send` to a partition.
    topics: RwLock<HashMap<Arc<str>, PartitionTable>>,
    /// Every queue, for the sender to scan.
    queues: RwLock<Vec<Arc<PartQueue>>>,
    memory: Semaphore,
    /// `send`s waiting for `memory`; while there are any, nothing lingers.
    memory_waiters: AtomicUsize,
    /// Wakes the sender: a batch was sealed or retried, a request finished, metadata changed.
    wake: Notify,
    in_flight: Mutex<HashMap<i32, usize>>,
    next_batch_id: AtomicU64,
    incomplete: Mutex<BTreeSet<u64>>,
    /// Signalled whenever a batch completes, for `flush`.
    completed: Notify,
    closed: AtomicBool,
    refreshing: AtomicBool,
}

/// See the module doc. Share it by reference (or `Arc`) among the tasks that send.
pub struct Producer {
    inner: Arc<Inner>,
    sender: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn record_cost(key: &Option<Bytes>, value: &Bytes) -> usize {
    key.as_ref().map_or(0, |k| k.len()) + value.len() + RECORD_OVERHEAD_BYTES
}

impl Producer {
    pub async fn new(cluster: Arc<Cluster>, config: ProducerConfig, on_ack: AckFn) -> Result<Producer> {
        if ![0, 1, -1].contains(&config.acks) {
            return Err(ClientError::Other(format!("acks must be 0, 1 or -1, not {}", config.acks)));
        }
        if config.batch_size == 0 || config.max_in_flight == 0 || config.buffer_memory == 0 {
            return Err(ClientError::Other("batch_size, max_in_flight and buffer_memory must be positive".into()));
        }
        let permits = config.buffer_memory.min(u32::MAX as usize);
        let inner = Arc::new(Inner {
            cluster,
            config,
            on_ack,
            topics: RwLock::default(),
            queues: RwLock::default(),
            memory: Semaphore::new(permits),
            memory_waiters: AtomicUsize::new(0),
            wake: Notify::new(),
            in_flight: Mutex::default(),
            next_batch_id: AtomicU64::new(0),
            incomplete: Mutex::default(),
            completed: Notify::new(),
            closed: AtomicBool::new(false),
            refreshing: AtomicBool::new(false),
        });
        let sender = tokio::spawn(run_sender(inner.clone()));
        Ok(Producer { inner, sender })
    }

    /// Appends a record to its partition's batch; waits only while buffer_memory is used up. Errors only if the producer is closed.
    pub async fn send(&self, topic: &str, partition: i32, key: Option<Bytes>, value: Bytes, timestamp_ms: i64) -> Result<()> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(ClientError::Other("the producer is closed".into()));
        }
        if !(0..MAX_PARTITION).contains(&partition) {
            return Err(ClientError::Other(format!("partition {partition} of {topic} is out of range")));
        }
        let cost = record_cost(&key, &value);
        // A record larger than all of buffer_memory still goes, alone.
        let permits = cost.min(inner.config.buffer_memory).min(u32::MAX as usize);
        match inner.memory.try_acquire_many(permits as u32) {
            Ok(p) => p.forget(),
            Err(_) => {
                // Like the Java producer, send lingering batches at once while
                // someone waits for memory: they may be what holds it.
                inner.memory_waiters.fetch_add(1, Ordering::AcqRel);
                inner.wake.notify_one();
                let acquired = inner.memory.acquire_many(permits as u32).await;
                inner.memory_waiters.fetch_sub(1, Ordering::AcqRel);
                acquired.map_err(|_| ClientError::Other("the producer is closed".into()))?.forget();
            }
        }
        let sealed = inner.with_queue(topic, partition, |q| {
            let mut st = q.lock();
            st.append(inner, q, key, value, timestamp_ms, cost, permits)
        });
        if sealed {
            inner.wake.notify_one();
        }
        Ok(())
    }

    /// Sends what lingers now and waits until every record handed to send so far is acknowledged or failed.
    pub async fn flush(&self) {
        let inner = &self.inner;
        {
            let queues = inner.queues.read().unwrap_or_else(|e| e.into_inner());
            for q in queues.iter() {
                let mut st = q.lock();
                if !st.records.is_empty() {
                    st.seal(inner, q);
                }
            }
        }
        // Every record sent before this call is now in a sealed batch with a smaller id.
        let horizon = inner.next_batch_id.load(Ordering::Acquire);
        inner.wake.notify_one();
        loop {
            let notified = inner.completed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&inner.incomplete).first().is_none_or(|&id| id >= horizon) {
                return;
            }
            notified.await;
        }
    }

    /// Flushes, then stops the sender; `send` fails from then on.
    pub async fn close(mut self) {
        self.flush().await;
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.memory.close();
        self.sender.abort();
        // Err(cancelled) is the expected end.
        let _ = (&mut self.sender).await;
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.memory.close();
        self.sender.abort();
    }
}

impl PartState {
    fn new() -> PartState {
        PartState {
            records: Vec::new(),
            sent_at: Vec::new(),
            bytes: 0,
            raw_bytes: 0,
            permits: 0,
            created: Instant::now(),
            ready: VecDeque::new(),
            ratio: 1.0,
        }
    }

    fn estimated_bytes(&self, raw: usize) -> usize {
        // The Java producer's COMPRESSION_RATE_ESTIMATION_FACTOR of 1.05 on top of the ratio.
        let factor = if self.ratio < 1.0 { self.ratio * 1.05 } else { 1.0 };
        BATCH_HEADER_BYTES + (raw as f32 * factor) as usize
    }

    /// Adds one record; returns whether a batch was sealed.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        inner: &Inner,
        q: &PartQueue,
        key: Option<Bytes>,
        value: Bytes,
        timestamp: i64,
        cost: usize,
        permits: usize,
    ) -> bool {
        let batch_size = inner.config.batch_size;
        let mut sealed = false;
        if !self.records.is_empty() && self.estimated_bytes(self.raw_bytes + cost) > batch_size {
            self.seal(inner, q);
            sealed = true;
        }
        self.push(key, value, timestamp, cost, permits);
        if self.estimated_bytes(self.raw_bytes) >= batch_size {
            self.seal(inner, q);
            sealed = true;
        }
        sealed
    }

    fn push(&mut self, key: Option<Bytes>, value: Bytes, timestamp: i64, cost: usize, permits: usize) {
        if self.records.is_empty() {
            self.created = Instant::now();
        }
        let i = self.records.len() as i64;
        self.records.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // The encoder puts records with a constant offset - sequence in one
            // batch, and takes the first one's as base sequence: -1, no sequence.
            sequence: (i as i32).wrapping_sub(1),
            timestamp,
            key,
            value: Some(value),
            headers: Default::default(),
        });
        self.sent_at.push(Instant::now());
        self.bytes += cost - RECORD_OVERHEAD_BYTES;
        self.raw_bytes += cost;
        self.permits += permits;
    }

    /// The open batch as a v2 record batch (base offset 0, no producer id),
    /// compressed; learns the compression ratio from it.
    fn encode(&mut self, compression: Compression) -> std::result::Result<Bytes, String> {
        let mut buf = BytesMut::with_capacity(self.estimated_bytes(self.raw_bytes) + 64);
        let options = RecordEncodeOptions { version: 2, compression };
        RecordBatchEncoder::encode(&mut buf, &self.records, &options).map_err(|e| e.to_string())?;
        if compression != Compression::None {
            self.update_ratio(buf.len() as f32 / self.raw_bytes.max(1) as f32);
        }
        Ok(buf.freeze())
    }

    /// Encodes the open batch into `ready`. The records' Vec is kept, emptied, for the next batch.
    fn seal(&mut self, inner: &Inner, q: &PartQueue) {
        debug_assert!(!self.records.is_empty(), "sealing an empty batch");
        let payload = self.encode(inner.config.compression).map_err(|e| format!("encoding a batch for {}-{}: {e}", q.topic, q.partition));
        let n = self.records.len();
        self.records.clear();
        let id = inner.next_batch_id.fetch_add(1, Ordering::AcqRel);
        // Inserted under the partition lock, so that `flush` (which takes it) cannot miss it.
        lock(&inner.incomplete).insert(id);
        self.ready.push_back(Batch {
            id,
            topic: q.topic.clone(),
            partition: q.partition,
            payload,
            sent_at: std::mem::replace(&mut self.sent_at, Vec::with_capacity(n)),
            bytes: std::mem::take(&mut self.bytes),
            permits: std::mem::take(&mut self.permits),
            created: self.created,
            retry_at: None,
        });
        self.raw_bytes = 0;
    }

    /// The Java producer's steps: quick to believe worse compression, slow to believe better.
    fn update_ratio(&mut self, observed: f32) {
        if observed > self.ratio {
            self.ratio = (self.ratio + 0.05).max(observed);
        } else if observed < self.ratio {
            self.ratio = (self.ratio - 0.005).max(observed);
        }
    }
}

impl Inner {
    /// Runs `f` on the queue of `topic`/`partition`, creating it on first use.
    fn with_queue<R>(&self, topic: &str, partition: i32, f: impl FnOnce(&PartQueue) -> R) -> R {
        let index = partition as usize;
        {
            let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
            if let Some(Some(q)) = topics.get(topic).and_then(|parts| parts.get(index)) {
                return f(q);
            }
        }
        let q = {
            let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
            let name = match topics.get_key_value(topic) {
                Some((name, _)) => name.clone(),
                None => Arc::from(topic),
            };
            let parts = topics.entry(name.clone()).or_default();
            if parts.len() <= index {
                parts.resize(index + 1, None);
            }
            match &parts[index] {
                Some(q) => q.clone(),
                None => {
                    let q = Arc::new(PartQueue { topic: name, partition, state: Mutex::new(PartState::new()) });
                    parts[index] = Some(q.clone());
                    self.queues.write().unwrap_or_else(|e| e.into_inner()).push(q.clone());
                    q
                }
            }
        };
        f(&q)
    }

    /// Reports a batch's outcome and gives back its memory.
    fn complete(&self, batch: Batch, result: std::result::Result<i64, &ClientError>) {
        (self.on_ack)(&BatchOutcome {
            topic: &batch.topic,
            partition: batch.partition,
            sent_at: &batch.sent_at,
            bytes: batch.bytes,
            result,
        });
        self.memory.add_permits(batch.permits);
        lock(&self.incomplete).remove(&batch.id);
        self.completed.notify_waiters();
    }

    /// Puts a batch that failed retriably back in its queue, in id order, or
    /// fails it if the delivery timeout would pass before the retry.
    fn retry_or_fail(self: &Arc<Self>, mut batch: Batch, error: &ClientError) {
        let now = Instant::now();
        if !error.is_retriable() || now + RETRY_BACKOFF >= batch.created + self.config.delivery_timeout {
            self.complete(batch, Err(error));
            return;
        }
        tracing::debug!(topic = %batch.topic, partition = batch.partition, %error, "retrying a batch");
        batch.retry_at = Some(now + RETRY_BACKOFF);
        self.with_queue(&batch.topic.clone(), batch.partition, |q| {
            let mut st = q.lock();
            let at = st.ready.partition_point(|b| b.id < batch.id);
            st.ready.insert(at, batch);
        });
        self.request_refresh();
        self.wake.notify_one();
    }

    /// Refreshes metadata in the background, one refresh at a time.
    fn request_refresh(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.cluster.refresh_metadata().await {
                tracing::debug!(error = %e, "metadata refresh failed");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            inner.refreshing.store(false, Ordering::Release);
            inner.wake.notify_one();
        });
    }
}

/// The batches bound for one broker in one Produce request.
#[derive(Default)]
struct Outgoing {
    batches: Vec<Batch>,
    bytes: usize,
}

/// What one pass over the queues found.
struct Drained {
    requests: HashMap<i32, Outgoing>,
    failed: Vec<(Batch, ClientError)>,
    /// When the next batch lingers out or may be retried.
    next_due: Option<Instant>,
    /// Brokers with more ready batches than this pass took.
    leftover: HashSet<i32>,
    unknown_leader: bool,
}

async fn run_sender(inner: Arc<Inner>) {
    let mut rotation = 0usize;
    // Requests to one broker go through its dispatch task, in drain order, so
    // that a partition's batches are written in the order they were sealed.
    let mut dispatchers: HashMap<i32, mpsc::Sender<Vec<Batch>>> = HashMap::new();
    loop {
        let in_flight = lock(&inner.in_flight).clone();
        let drained = drain(&inner, &in_flight, rotation);
        rotation = rotation.wrapping_add(1);
        for (batch, error) in drained.failed {
            inner.complete(batch, Err(&error));
        }
        if drained.unknown_leader {
            inner.request_refresh();
        }
        let mut again = false;
        let mut requests = Vec::with_capacity(drained.requests.len());
        {
            let mut counts = lock(&inner.in_flight);
            for (broker, out) in drained.requests {
                let n = counts.entry(broker).or_default();
                *n += 1;
                again |= drained.leftover.contains(&broker) && *n < inner.config.max_in_flight;
                requests.push((broker, out.batches));
            }
        }
        for (broker, batches) in requests {
            let tx = dispatchers.entry(broker).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(inner.config.max_in_flight);
                tokio::spawn(dispatch(inner.clone(), broker, rx));
                tx
            });
            // Never full: a broker has at most max_in_flight requests between here and their answers.
            if let Err(e) = tx.send(batches).await {
                let error = ClientError::Other(format!("the dispatch task of broker {broker} is gone"));
                for batch in e.0 {
                    inner.complete(batch, Err(&error));
                }
            }
        }
        if again {
            continue;
        }
        match drained.next_due {
            Some(due) => {
                tokio::select! {
                    _ = inner.wake.notified() => {}
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
            }
            None => inner.wake.notified().await,
        }
    }
}

/// One pass over every partition queue: seals batches that lingered long
/// enough, fails expired ones, and takes the first ready batch of each
/// partition whose leader has room for another request. Starts at a rotating
/// queue so no partition always comes last for the 1 MiB limit.
fn drain(inner: &Inner, in_flight: &HashMap<i32, usize>, rotation: usize) -> Drained {
    let now = Instant::now();
    let exhausted = inner.memory_waiters.load(Ordering::Acquire) > 0;
    let mut d = Drained { requests: HashMap::new(), failed: Vec::new(), next_due: None, leftover: HashSet::new(), unknown_leader: false };
    let due = |d: &mut Drained, t: Instant| d.next_due = Some(d.next_due.map_or(t, |n| n.min(t)));
    let queues = inner.queues.read().unwrap_or_else(|e| e.into_inner());
    let n = queues.len();
    for i in 0..n {
        let q = &queues[(rotation + i) % n];
        let mut st = q.lock();
        if !st.records.is_empty() {
            let linger_end = st.created + inner.config.linger;
            if linger_end <= now || exhausted {
                st.seal(inner, q);
            } else {
                due(&mut d, linger_end);
            }
        }
        while let Some(front) = st.ready.front() {
            let expired = front.created + inner.config.delivery_timeout <= now;
            if front.payload.is_err() || expired {
                let Some(batch) = st.ready.pop_front() else { break };
                let error = match &batch.payload {
                    Err(e) => ClientError::Other(e.clone()),
                    Ok(_) => {
                        ClientError::Timeout(format!("batch for {}-{} not acknowledged within delivery timeout", q.topic, q.partition))
                    }
                };
                d.failed.push((batch, error));
            } else {
                break;
            }
        }
        let Some(front) = st.ready.front() else { continue };
        if let Some(at) = front.retry_at.filter(|&at| at > now) {
            due(&mut d, at);
            continue;
        }
        let Some(leader) = inner.cluster.leader(&q.topic, q.partition) else {
            d.unknown_leader = true;
            due(&mut d, now + RETRY_BACKOFF);
            continue;
        };
        if in_flight.get(&leader).copied().unwrap_or(0) >= inner.config.max_in_flight {
            continue;
        }
        let out = d.requests.entry(leader).or_default();
        let size = front.payload.as_ref().map_or(0, |p| p.len());
        if !out.batches.is_empty() && out.bytes + size > MAX_REQUEST_BYTES {
            d.leftover.insert(leader);
            continue;
        }
        let Some(batch) = st.ready.pop_front() else { continue };
        out.bytes += size;
        out.batches.push(batch);
        if !st.ready.is_empty() {
            d.leftover.insert(leader);
        }
    }
    d
}

/// Writes one broker's requests in the order the sender drained them; each
/// answer is awaited in a task of its own, so requests pipeline.
async fn dispatch(inner: Arc<Inner>, broker: i32, mut rx: mpsc::Receiver<Vec<Batch>>) {
    while let Some(batches) = rx.recv().await {
        match write_request(&inner, broker, &batches).await {
            Ok(None) => finish(&inner, broker, batches, Ok(None)),
            Ok(Some((conn, answer))) => {
                let inner = inner.clone();
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(inner.config.request_timeout, answer.response()).await {
                        Ok(Ok(resp)) => Ok(Some(resp)),
                        Ok(Err(e)) => Err(connection_failed(&inner, &conn, e)),
                        Err(_) => {
                            let e = ClientError::Timeout(format!(
                                "no Produce answer from {} within {:?}",
                                conn.addr(),
                                inner.config.request_timeout
                            ));
                            Err(connection_failed(&inner, &conn, e))
                        }
                    };
                    finish(&inner, broker, batches, result);
                });
            }
            Err(e) => finish(&inner, broker, batches, Err(e)),
        }
    }
}

/// Queues the request on the broker's connection; `None` for acks=0, which has no answer.
async fn write_request(inner: &Arc<Inner>, broker: i32, batches: &[Batch]) -> Result<Option<(Arc<Connection>, InFlight<ProduceRequest>)>> {
    let conn = inner.cluster.connection(broker).await.inspect_err(|_| inner.request_refresh())?;
    let version = conn.version(ApiKey::Produce, PRODUCE_VERSIONS)?;
    let req = build_request(&inner.config, batches);
    if inner.config.acks == 0 {
        conn.send_no_response(req, version).await.map_err(|e| connection_failed(inner, &conn, e))?;
        return Ok(None);
    }
    let answer = conn.send(req, version).await.map_err(|e| connection_failed(inner, &conn, e))?;
    Ok(Some((conn, answer)))
}

/// Frees the request's in-flight slot and settles each of its batches.
fn finish(inner: &Arc<Inner>, broker: i32, batches: Vec<Batch>, result: Result<Option<ProduceResponse>>) {
    if let Some(n) = lock(&inner.in_flight).get_mut(&broker) {
        *n = n.saturating_sub(1);
    }
    inner.wake.notify_one();
    match result {
        Err(error) => {
            for batch in batches {
                inner.retry_or_fail(batch, &error);
            }
        }
        Ok(None) => {
            for batch in batches {
                inner.complete(batch, Ok(-1));
            }
        }
        Ok(Some(resp)) => settle(inner, broker, batches, &resp),
    }
}

/// After a request failed on `conn`, the connection is in doubt (a late answer
/// may yet come): drop it, as the Java client does, and relearn the leaders.
fn connection_failed(inner: &Arc<Inner>, conn: &Arc<Connection>, error: ClientError) -> ClientError {
    inner.cluster.forget(conn);
    inner.request_refresh();
    error
}

fn build_request(config: &ProducerConfig, batches: &[Batch]) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for b in batches {
        let data = PartitionProduceData::default().with_index(b.partition).with_records(b.payload.as_ref().ok().cloned());
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*b.topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(b.topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    ProduceRequest::default()
        .with_acks(config.acks)
        .with_timeout_ms(config.request_timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_topic_data(topics)
}

/// Matches each batch to its partition's answer.
fn settle(inner: &Arc<Inner>, broker: i32, batches: Vec<Batch>, resp: &ProduceResponse) {
    let mut codes: HashMap<(&str, i32), (i16, i64)> = HashMap::new();
    for t in &resp.responses {
        for p in &t.partition_responses {
            codes.insert((t.name.0.as_str(), p.index), (p.error_code, p.base_offset));
        }
    }
    for batch in batches {
        let answer = codes.get(&(&*batch.topic, batch.partition)).copied();
        match answer {
            Some((0, base_offset)) => inner.complete(batch, Ok(base_offset)),
            Some((code, _)) => {
                let error = ClientError::from_code(code, format!("producing to {}-{}", batch.topic, batch.partition));
                inner.retry_or_fail(batch, &error);
            }
            None => {
                let detail = format!("Produce answer lacks {}-{}", batch.topic, batch.partition);
                inner.complete(batch, Err(&ClientError::Protocol { addr: format!("broker {broker}"), detail }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;

    fn batch_of(n: usize, compression: Compression) -> (PartState, Bytes) {
        let mut st = PartState::new();
        for i in 0..n {
            let key = (i % 3 != 0).then(|| Bytes::from(format!("k{i}")));
            let value = Bytes::from(format!("value {i} {}", "x".repeat(i % 40)));
            let cost = record_cost(&key, &value);
            st.push(key, value, 1_000 + i as i64, cost, cost);
        }
        let payload = st.encode(compression).expect("encode");
        (st, payload)
    }

    #[test]
    fn a_sealed_batch_is_one_v2_batch_of_the_records_sent() {
        for compression in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let (_, payload) = batch_of(100, compression);
            let infos = RecordBatchDecoder::decode_batch_info(&mut payload.clone()).expect("batch header");
            assert_eq!(infos.len(), 1, "{compression:?}: one batch");
            let info = &infos[0];
            assert_eq!((info.record_count, info.min_offset, info.compression), (100, 0, compression));
            // Not idempotent: no producer id, epoch or sequence.
            assert_eq!((info.producer_id, info.producer_epoch, info.base_sequence), (-1, -1, -1), "{compression:?}");
            let set = RecordBatchDecoder::decode(&mut payload.clone()).expect("decode");
            for (i, r) in set.records.iter().enumerate() {
                assert_eq!(r.offset, i as i64);
                assert_eq!(r.timestamp, 1_000 + i as i64);
                assert_eq!(r.timestamp_type, TimestampType::Creation);
                assert_eq!(r.key, (i % 3 != 0).then(|| Bytes::from(format!("k{i}"))));
                assert_eq!(r.value.as_deref(), Some(format!("value {i} {}", "x".repeat(i % 40)).as_bytes()));
            }
        }
    }

    #[test]
    fn the_size_estimate_counts_what_is_encoded() {
        let (st, payload) = batch_of(200, Compression::None);
        // The estimate may exceed the encoding (it is a bound for batch_size) but not by much.
        let estimate = st.estimated_bytes(st.raw_bytes);
        assert!(estimate >= payload.len() && estimate < payload.len() * 5 / 4, "estimate {estimate}, encoded {}", payload.len());
    }

    #[test]
    fn compression_ratio_follows_the_java_producer_steps() {
        // (start, observed, expected)
        let cases = [(1.0, 0.5, 0.995), (0.5, 0.9, 0.9), (0.5, 0.52, 0.55), (0.5, 0.499, 0.499), (0.5, 0.5, 0.5)];
        for (start, observed, expected) in cases {
            let mut st = PartState::new();
            st.ratio = start;
            st.update_ratio(observed);
            assert!((st.ratio - expected).abs() < 1e-6, "{start} after {observed}: {} not {expected}", st.ratio);
        }
    }
}
