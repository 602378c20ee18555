//! A consumer of explicitly assigned partitions (no group), like the Java
//! consumer after `assign()` and `seek()`.
//!
//! One fetch task per broker fetches every assigned partition that broker
//! leads, one Fetch request at a time (sessionless: each request names all its
//! partitions), decodes the record batches, skips control batches and hands the
//! records of each partition to the [`RecordsFn`] in offset order. A partition
//! is claimed by one fetch task for the time of a request, so that after a
//! leader move two brokers' tasks never fetch it at once (which would deliver
//! records twice). Errors back the partition off and refresh metadata; the
//! leader's task then picks it up. A supervisor task starts fetch tasks for
//! brokers that appear in the metadata.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, EARLIEST, LATEST, RETRY_BACKOFF};
use crate::error::{ClientError, Result};

/// Fetch v13 names topics by id (KIP-516); 12 is the last by name, and
/// Kafka 4 and fjord serve 4..=17.
const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;

/// How long past fetch_max_wait a Fetch may take before the connection is
/// given up on (the Java consumer's request.timeout.ms).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an idle fetch task looks for partitions its broker leads.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// How often the supervisor looks for new brokers.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);

/// Record batch v2 header: base offset (8), length (4), then from byte 12
/// leader epoch (4), magic (1), crc (4), attributes (2), last offset delta (4).
const BATCH_LENGTH_AT: usize = 8;
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const RECORD_COUNT_AT: usize = 57;
const BATCH_HEADER_BYTES: usize = 61;

/// The decoder reserves room for a batch's claimed record count before it
/// reads any record, so a corrupt count would abort the process; no producer
/// writes batches near this (1 MiB of 7-byte records is 150k).
const MAX_BATCH_RECORDS: i32 = 1 << 20;
const CONTROL_FLAG: i16 = 1 << 5;

/// The Java consumer's settings of the same names.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub client_id: String,
    /// fetch.min.bytes, default 1.
    pub fetch_min_bytes: i32,
    /// fetch.max.wait.ms, default 500 ms.
    pub fetch_max_wait: Duration,
    /// max.partition.fetch.bytes, default 1 MiB.
    pub max_partition_fetch_bytes: i32,
    /// fetch.max.bytes, default 50 MiB.
    pub fetch_max_bytes: i32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            client_id: "fjord-bench".into(),
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1 << 20,
            fetch_max_bytes: 50 << 20,
        }
    }
}

/// Where each assigned partition starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    Earliest,
    Latest,
    Offset(i64),
}

/// Records of one partition from one fetch, in offset order, none before the
/// position they were fetched from.
pub struct Fetched<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub records: &'a [Record],
}

pub type RecordsFn = Arc<dyn Fn(&Fetched<'_>) + Send + Sync>;

/// One assigned partition.
struct Assigned {
    topic: Arc<str>,
    partition: i32,
    /// Next offset to fetch.
    position: AtomicI64,
    /// Held by the fetch task that has a request out for it.
    claimed: AtomicBool,
    /// Not fetched before this, after an error.
    backoff_until: Mutex<Option<Instant>>,
}

impl Assigned {
    fn backing_off(&self, now: Instant) -> bool {
        self.backoff_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|t| t > now)
    }

    fn back_off(&self) {
        *self.backoff_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + RETRY_BACKOFF);
    }
}

struct Shared {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    on_records: RecordsFn,
    parts: Vec<Assigned>,
    /// Wakes the supervisor and idle fetch tasks after a metadata refresh.
    metadata_changed: Notify,
    refreshing: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// See the module doc. Fetches in background tasks from `start` until `stop`
/// (or drop).
pub struct Consumer {
    shared: Arc<Shared>,
}

impl Consumer {
    /// Resolves StartAt for every assignment (ListOffsets) before it returns, so records produced after `start` returns are seen; then fetches in background tasks until `stop`.
    pub async fn start(
        cluster: Arc<Cluster>,
        config: ConsumerConfig,
        assignments: Vec<(String, i32)>,
        start: StartAt,
        on_records: RecordsFn,
    ) -> Result<Consumer> {
        let positions = futures_util::future::try_join_all(assignments.iter().map(|(topic, partition)| {
            let cluster = &cluster;
            async move {
                match start {
                    StartAt::Earliest => cluster.list_offset(topic, *partition, EARLIEST).await,
                    StartAt::Latest => cluster.list_offset(topic, *partition, LATEST).await,
                    StartAt::Offset(o) => Ok(o),
                }
            }
        }))
        .await?;
        let mut topics: HashMap<String, Arc<str>> = HashMap::new();
        let parts = assignments
            .into_iter()
            .zip(positions)
            .map(|((topic, partition), position)| Assigned {
                topic: topics.entry(topic).or_insert_with_key(|t| Arc::from(t.as_str())).clone(),
                partition,
                position: AtomicI64::new(position),
                claimed: AtomicBool::new(false),
                backoff_until: Mutex::new(None),
            })
            .collect();
        let shared = Arc::new(Shared {
            cluster,
            config,
            on_records,
            parts,
            metadata_changed: Notify::new(),
            refreshing: AtomicBool::new(false),
            tasks: Mutex::default(),
        });
        let supervisor = tokio::spawn(supervise(shared.clone()));
        shared.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(supervisor);
        Ok(Consumer { shared })
    }

    /// Next offset to fetch per assignment.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        self.shared.parts.iter().map(|p| (p.topic.to_string(), p.partition, p.position.load(Ordering::Acquire))).collect()
    }

    /// Stops fetching; returns when no callback runs any more.
    pub async fn stop(self) {
        let tasks = std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        for t in self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.abort();
        }
    }
}

impl Shared {
    /// Refreshes metadata in the background, one refresh at a time, then wakes the fetch tasks.
    fn request_refresh(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.cluster.refresh_metadata().await {
                tracing::debug!(error = %e, "metadata refresh failed");
            }
            shared.refreshing.store(false, Ordering::Release);
            shared.metadata_changed.notify_waiters();
        });
    }
}

/// Starts a fetch task for every broker in the metadata, now and as brokers
/// appear, and refreshes metadata while some partition has no leader.
async fn supervise(shared: Arc<Shared>) {
    let mut started: Vec<i32> = Vec::new();
    loop {
        let changed = shared.metadata_changed.notified();
        for id in shared.cluster.broker_ids() {
            if !started.contains(&id) {
                started.push(id);
                let task = tokio::spawn(fetch_loop(shared.clone(), id));
                shared.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
            }
        }
        // A partition without a leader is fetched by no task, so no fetch error
        // would ever ask for the metadata that names its new leader.
        if shared.parts.iter().any(|p| shared.cluster.leader(&p.topic, p.partition).is_none()) {
            shared.request_refresh();
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
        }
    }
}

/// Fetches, one request at a time, every assigned partition `broker` leads.
async fn fetch_loop(shared: Arc<Shared>, broker: i32) {
    let mut records: Vec<Record> = Vec::new();
    loop {
        let changed = shared.metadata_changed.notified();
        let claimed = claim(&shared, broker);
        if claimed.is_empty() {
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let outcome = fetch_once(&shared, broker, &claimed, &mut records).await;
        for &i in &claimed {
            shared.parts[i].claimed.store(false, Ordering::Release);
        }
        if let Err(e) = outcome {
            tracing::debug!(broker, error = %e, "fetch failed");
            for &i in &claimed {
                shared.parts[i].back_off();
            }
            shared.request_refresh();
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }
}

/// Indexes of the partitions `broker` leads that are not backing off and not
/// being fetched by another task; marks them claimed.
fn claim(shared: &Shared, broker: i32) -> Vec<usize> {
    let now = Instant::now();
    let mut claimed = Vec::new();
    for (i, p) in shared.parts.iter().enumerate() {
        if shared.cluster.leader(&p.topic, p.partition) == Some(broker)
            && !p.backing_off(now)
            && p.claimed.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            claimed.push(i);
        }
    }
    claimed
}

/// One Fetch to `broker` for the `claimed` partitions, and its records handed on.
async fn fetch_once(shared: &Arc<Shared>, broker: i32, claimed: &[usize], records: &mut Vec<Record>) -> Result<()> {
    let conn = shared.cluster.connection(broker).await?;
    let version = conn.version(ApiKey::Fetch, FETCH_VERSIONS)?;
    let config = &shared.config;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for &i in claimed {
        let p = &shared.parts[i];
        let fp = FetchPartition::default()
            .with_partition(p.partition)
            .with_fetch_offset(p.position.load(Ordering::Acquire))
            .with_partition_max_bytes(config.max_partition_fetch_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == &*p.topic) {
            Some(t) => t.partitions.push(fp),
            None => topics
                .push(FetchTopic::default().with_topic(TopicName(StrBytes::from_string(p.topic.to_string()))).with_partitions(vec![fp])),
        }
    }
    // Sessionless (session id 0, epoch -1): the broker keeps no state for us.
    let req = FetchRequest::default()
        .with_max_wait_ms(config.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(config.fetch_max_bytes)
        .with_isolation_level(0)
        .with_topics(topics);
    let resp: FetchResponse = match tokio::time::timeout(config.fetch_max_wait + REQUEST_TIMEOUT, conn.call(req, version)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            shared.cluster.forget(&conn);
            return Err(e);
        }
        Err(_) => {
            shared.cluster.forget(&conn);
            return Err(ClientError::Timeout(format!("no Fetch answer from {}", conn.addr())));
        }
    };
    if resp.error_code != 0 {
        return Err(ClientError::from_code(resp.error_code, format!("Fetch from broker {broker}")));
    }
    let mut by_partition: HashMap<(&str, i32), &PartitionData> = HashMap::new();
    for t in &resp.responses {
        for p in &t.partitions {
            by_partition.insert((t.topic.0.as_str(), p.partition_index), p);
        }
    }
    for &i in claimed {
        let part = &shared.parts[i];
        // A partition left out of the answer (fetch.max.bytes reached) is simply fetched again.
        if let Some(data) = by_partition.get(&(&*part.topic, part.partition)) {
            take_partition(shared, part, data, records).await;
        }
    }
    Ok(())
}

/// Applies one partition's part of a Fetch answer.
async fn take_partition(shared: &Arc<Shared>, part: &Assigned, data: &PartitionData, records: &mut Vec<Record>) {
    match data.error_code {
        0 => {
            let position = part.position.load(Ordering::Acquire);
            let bytes = data.records.clone().unwrap_or_default();
            match decode_batches(bytes, position, records) {
                Ok(next) => {
                    if !records.is_empty() {
                        (shared.on_records)(&Fetched { topic: &part.topic, partition: part.partition, records });
                        records.clear();
                    }
                    part.position.store(next, Ordering::Release);
                }
                Err(detail) => {
                    records.clear();
                    tracing::warn!(topic = %part.topic, partition = part.partition, position, %detail, "undecodable records; fetching again");
                    part.back_off();
                }
            }
        }
        code if code == ResponseError::OffsetOutOfRange.code() => {
            // auto.offset.reset=earliest.
            match shared.cluster.list_offset(&part.topic, part.partition, EARLIEST).await {
                Ok(earliest) => part.position.store(earliest, Ordering::Release),
                Err(e) => {
                    tracing::debug!(topic = %part.topic, partition = part.partition, error = %e, "offset reset failed");
                    part.back_off();
                }
            }
        }
        code => {
            let error = ClientError::from_code(code, format!("fetching {}-{}", part.topic, part.partition));
            if error.is_retriable() {
                tracing::debug!(%error, "fetch error; refreshing metadata");
            } else {
                tracing::warn!(%error, "fetch error");
            }
            part.back_off();
            shared.request_refresh();
        }
    }
}

/// Decodes the whole batches in `bytes` (a fetch may end in a partial one),
/// appending to `out` the records at or after `position`, control batches
/// skipped; returns the offset after the last whole batch.
fn decode_batches(mut bytes: Bytes, position: i64, out: &mut Vec<Record>) -> std::result::Result<i64, String> {
    let mut next = position;
    while bytes.len() >= BATCH_HEADER_BYTES {
        let base_offset = (&bytes[..8]).get_i64();
        let length = (&bytes[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4]).get_i32();
        let total = usize::try_from(length).ok().and_then(|l| l.checked_add(12)).filter(|&t| t >= BATCH_HEADER_BYTES);
        let Some(total) = total else {
            return Err(format!("batch at offset {base_offset} claims length {length}"));
        };
        if total > bytes.len() {
            break;
        }
        if bytes[MAGIC_AT] != 2 {
            return Err(format!("batch at offset {base_offset} has magic {}, not 2", bytes[MAGIC_AT]));
        }
        let attributes = (&bytes[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]).get_i16();
        let last_offset_delta = (&bytes[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]).get_i32();
        let record_count = (&bytes[RECORD_COUNT_AT..RECORD_COUNT_AT + 4]).get_i32();
        if !(0..=MAX_BATCH_RECORDS).contains(&record_count) || i64::from(record_count) > i64::from(last_offset_delta) + 1 {
            return Err(format!("batch at offset {base_offset} claims {record_count} records, last offset delta {last_offset_delta}"));
        }
        let mut batch = bytes.split_to(total);
        let batch_end = base_offset + i64::from(last_offset_delta) + 1;
        if batch_end <= next {
            continue;
        }
        if attributes & CONTROL_FLAG == 0 {
            let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| format!("batch at offset {base_offset}: {e}"))?;
            out.extend(set.records.into_iter().filter(|r| r.offset >= next));
        }
        next = batch_end;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use super::*;

    fn batch(offsets: std::ops::Range<i64>, control: bool, compression: Compression) -> Bytes {
        let records: Vec<Record> = offsets
            .clone()
            .map(|o| Record {
                transactional: control,
                control,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: if control { 7 } else { -1 },
                producer_epoch: if control { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: o,
                sequence: (o - offsets.start) as i32 - 1,
                timestamp: o,
                key: None,
                value: Some(Bytes::from(o.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
        buf.freeze()
    }

    fn concat(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    fn decoded(bytes: Bytes, position: i64) -> (std::result::Result<i64, String>, Vec<i64>) {
        let mut out = Vec::new();
        let next = decode_batches(bytes, position, &mut out);
        (next, out.iter().map(|r| r.offset).collect())
    }

    #[test]
    fn decoding_skips_control_batches_records_before_the_position_and_a_partial_tail() {
        let first = batch(0..5, false, Compression::Lz4);
        let marker = batch(5..6, true, Compression::None);
        let second = batch(6..10, false, Compression::None);
        let third = batch(10..20, false, Compression::Zstd);
        let fetched = concat(&[&first, &marker, &second, &third[..third.len() - 3]]);
        // (position, next position, offsets handed on)
        let cases: [(i64, i64, Vec<i64>); 4] =
            [(0, 10, vec![0, 1, 2, 3, 4, 6, 7, 8, 9]), (3, 10, vec![3, 4, 6, 7, 8, 9]), (6, 10, vec![6, 7, 8, 9]), (10, 10, vec![])];
        for (position, next, offsets) in cases {
            assert_eq!(decoded(fetched.clone(), position), (Ok(next), offsets), "from {position}");
        }
        assert_eq!(decoded(Bytes::new(), 42), (Ok(42), vec![]));
    }

    #[test]
    fn corrupt_batches_are_errors_not_panics() {
        let good = batch(0..3, false, Compression::None);
        let mut negative = good.to_vec();
        negative[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&(-5i32).to_be_bytes());
        let mut magic = good.to_vec();
        magic[MAGIC_AT] = 1;
        let mut crc = good.to_vec();
        let last = crc.len() - 1;
        crc[last] ^= 0xff;
        let mut count = good.to_vec();
        count[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        for bad in [negative, magic, crc, count] {
            assert!(decoded(Bytes::from(bad), 0).0.is_err());
        }
    }
}
