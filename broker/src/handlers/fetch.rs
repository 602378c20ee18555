//! Fetch (key 1, v4-17): records for consumers, long-polled, in fetch
//! sessions, answered with the zero-copy encoder of `protocol/fetch_response.rs`.
//!
//! Kafka's `KafkaApis.handleFetchRequest`, `ReplicaManager.fetchMessages` /
//! `readFromLog`, `DelayedFetch` and `Partition.fetchRecords`:
//! - the session context is made when the request is read (in request
//!   order), everything else happens in the returned [`Pending`] future, so the
//!   connection reads on while a fetch waits;
//! - partitions are read in order, each with `min(partition_max_bytes,
//!   what is left of min(max_bytes, fetch.max.bytes))`; until one partition
//!   returns data the first batch comes whole even above both (KIP-74), after
//!   that limits are strict. Where Kafka would then send the first bytes of a
//!   batch that does not fit (which clients drop), this sends none of it;
//! - consumers read up to the high watermark; read_committed up to the last
//!   stable offset, which is the high watermark while there are no
//!   transactions;
//! - the answer waits (at most `max_wait_ms`, capped at [`MAX_WAIT_MS`]) on
//!   the partitions' high watermarks until `min_bytes` could be returned,
//!   unless a partition failed to read;
//! - a consumer may read from a follower from v11 on (KIP-392: Kafka's
//!   `fetchOnlyLeader` is false once the request carries a rack), up to that
//!   replica's high watermark; below v11 only the leader answers;
//! - followers (`replica_id` >= 0) are not served yet: NOT_LEADER_OR_FOLLOWER.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use fjord_storage::StorageError;
use fjord_tiered::RemoteStore;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use super::authz::allowed;
use super::fetch_session::{FetchContext, IncrementalAnswer, PartitionKey, PartitionParams, PartitionSummary, TopicKey};
use super::list_offsets::hosted_partition;
use super::util::str_bytes;
use super::{Pending, Reply, RequestContext, ready};
use crate::Broker;
use crate::metadata::store::now_ms;
use crate::metadata::{MetadataImage, TopicId};
use crate::partition::Partition;
use crate::partition::{epochs, remote_read, tiering};
use crate::protocol::fetch_response::{
    AbortedTransaction, ENCODER_VERSIONS, EpochEndOffset, FetchPartitionParts, FetchResponseParts, FetchTopicParts, LeaderIdAndEpoch,
    NodeEndpoint, encode,
};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 4..=17;
const _: () = assert!(*VERSIONS.start() >= *ENCODER_VERSIONS.start() && *VERSIONS.end() <= *ENCODER_VERSIONS.end());

/// The longest a fetch waits for `min_bytes`. Kafka has no cap; an earlier
/// answer is always a valid one, and this bounds how long a request holds
/// its connection's reply queue.
pub const MAX_WAIT_MS: i32 = 30_000;

const FIRST_TOPIC_ID_VERSION: i16 = 13;
const FIRST_REPLICA_STATE_VERSION: i16 = 15;
const FIRST_CURRENT_LEADER_VERSION: i16 = 16;
/// Below this a client cannot read zstd (`KafkaApis.maybeConvertFetchedData`).
const FIRST_ZSTD_VERSION: i16 = 10;
/// Up to this version KAFKA_STORAGE_ERROR is sent as NOT_LEADER_OR_FOLLOWER,
/// which old clients retry (`maybeDownConvertStorageError`).
const LAST_STORAGE_ERROR_DOWNCONVERT_VERSION: i16 = 5;
const READ_COMMITTED: i8 = 1;

pub async fn handle(ctx: Arc<RequestContext>, req: FetchRequest) -> Pending {
    let version = ctx.api_version;
    let replica_id = if version >= FIRST_REPLICA_STATE_VERSION { req.replica_state.replica_id.0 } else { req.replica_id.0 };
    let from_follower = replica_id >= 0;
    let wanted = requested_partitions(&req, version);
    let uses_topic_ids = version >= FIRST_TOPIC_ID_VERSION;
    let context = if from_follower {
        FetchContext::Full { partitions: wanted, create_session: false, uses_topic_ids }
    } else {
        let forgotten = forgotten_partitions(&req, version);
        ctx.broker.fetch_sessions.new_context(version, req.session_id, req.session_epoch, wanted, &forgotten, now_ms())
    };
    let (session, keyed) = match context {
        FetchContext::Error(code) => {
            crate::metrics::metrics().request_error("Fetch", code);
            let parts = FetchResponseParts { error_code: code, ..FetchResponseParts::default() };
            return ready(Reply::Frame(encode(ctx.correlation_id, version, &parts)));
        }
        FetchContext::Full { partitions, create_session, uses_topic_ids } => (Session::Full { create_session, uses_topic_ids }, partitions),
        FetchContext::Incremental { session_id, epoch, partitions } => (Session::Incremental { session_id, epoch }, partitions),
    };
    let image = ctx.broker.metadata.image();
    let targets: Vec<Target> = keyed
        .into_iter()
        .map(|(key, params)| {
            let mut target = resolve(&ctx.broker, &image, key, params, !from_follower);
            // Kafka answers an unauthorized topic before looking it up.
            if !target.name.is_empty() && !allowed(&ctx, &image, AclOperation::Read, ResourceType::Topic, &target.name) {
                target.source = Source::Unknown(ResponseError::TopicAuthorizationFailed.code());
            }
            target
        })
        .collect();
    let limits = Limits::new(&req, version, ctx.broker.config.fetch_max_bytes);
    Box::pin(async move {
        let outcomes = poll(&targets, &limits, ctx.broker.remote.as_deref()).await;
        let parts = respond(&ctx, &limits, session, &targets, outcomes);
        Reply::Frame(encode(ctx.correlation_id, limits.version, &parts))
    })
}

/// The request's partitions in order. A partition named twice keeps its
/// first place and its last parameters (Kafka collects them in a `LinkedHashMap`).
fn requested_partitions(req: &FetchRequest, version: i16) -> Vec<(PartitionKey, PartitionParams)> {
    let mut out: Vec<(PartitionKey, PartitionParams)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for t in &req.topics {
        let topic = topic_key(version, &t.topic.0, t.topic_id.as_bytes());
        for p in &t.partitions {
            let key = PartitionKey { topic: topic.clone(), partition: p.partition };
            let params = PartitionParams {
                fetch_offset: p.fetch_offset,
                log_start_offset: p.log_start_offset,
                max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
            };
            match index.get(&key) {
                Some(&i) => out[i] = (key, params),
                None => {
                    index.insert(key.clone(), out.len());
                    out.push((key, params));
                }
            }
        }
    }
    debug_assert_eq!(index.len(), out.len());
    out
}

fn forgotten_partitions(req: &FetchRequest, version: i16) -> Vec<PartitionKey> {
    req.forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let topic = topic_key(version, &t.topic.0, t.topic_id.as_bytes());
            t.partitions.iter().map(move |&partition| PartitionKey { topic: topic.clone(), partition })
        })
        .collect()
}

fn topic_key(version: i16, name: &StrBytes, id: &[u8; 16]) -> TopicKey {
    if version >= FIRST_TOPIC_ID_VERSION { TopicKey::Id(*id) } else { TopicKey::Name(name.clone()) }
}

/// What the answer does with the session once the partitions are read.
enum Session {
    Full { create_session: bool, uses_topic_ids: bool },
    Incremental { session_id: i32, epoch: i32 },
}

/// What every partition of one request shares.
struct Limits {
    version: i16,
    max_wait_ms: i32,
    /// Kafka's `fetchMinBytes`: at most `max_bytes`.
    min_bytes: usize,
    /// Kafka's `fetchMaxBytes`: the request's, at most `fetch.max.bytes`.
    max_bytes: usize,
    read_committed: bool,
    /// `FetchParams.fetchOnlyLeader` for a consumer: below v11 a consumer
    /// sends no rack (no client metadata) and only the leader may answer it;
    /// from v11 (KIP-392) a follower may, up to its own high watermark.
    only_leader: bool,
}

impl Limits {
    fn new(req: &FetchRequest, version: i16, fetch_max_bytes: i32) -> Self {
        let max_bytes = req.max_bytes.min(fetch_max_bytes).max(0) as usize;
        Self {
            version,
            max_wait_ms: req.max_wait_ms.min(MAX_WAIT_MS),
            min_bytes: (req.min_bytes.max(0) as usize).min(max_bytes),
            max_bytes,
            read_committed: req.isolation_level == READ_COMMITTED,
            only_leader: version < 11,
        }
    }
}

/// One partition to answer, resolved against the metadata image when the
/// request was read.
struct Target {
    key: PartitionKey,
    params: PartitionParams,
    /// The topic's name (what versions below 13 answer with) and id (from 13).
    name: StrBytes,
    topic_id: [u8; 16],
    source: Source,
}

enum Source {
    /// Answered without a read and without ending a wait (Kafka's
    /// `erroneous`): a topic id or partition the cluster does not know.
    Unknown(i16),
    /// Read (Kafka's `interesting`): the replica here, or why there is none
    /// to read (the cluster has the partition, this broker does not).
    Read(Result<Arc<Partition>, i16>),
}

impl Target {
    fn is_read(&self) -> bool {
        matches!(self.source, Source::Read(_))
    }

    fn hosted(&self) -> Option<&Arc<Partition>> {
        match &self.source {
            Source::Read(Ok(p)) => Some(p),
            _ => None,
        }
    }

    /// `FetchRequest.optionalEpoch`: a negative epoch is none.
    fn current_leader_epoch(&self) -> Option<i32> {
        (self.params.current_leader_epoch >= 0).then_some(self.params.current_leader_epoch)
    }
}

fn resolve(broker: &Broker, image: &MetadataImage, key: PartitionKey, params: PartitionParams, serve: bool) -> Target {
    let topic = match &key.topic {
        TopicKey::Id(id) => image.topic_by_id(&TopicId(*id)),
        TopicKey::Name(name) => image.topic(name.as_str()),
    };
    let (name, topic_id) = match &key.topic {
        TopicKey::Name(name) => (name.clone(), topic.map_or([0; 16], |t| t.id.0)),
        TopicKey::Id(id) => (topic.map_or_else(StrBytes::new, |t| str_bytes(&t.name)), *id),
    };
    let source = match (&key.topic, topic) {
        (TopicKey::Id(_), None) => Source::Unknown(ResponseError::UnknownTopicId.code()),
        _ => match hosted_partition(broker, topic.map(Arc::as_ref), key.partition) {
            Err(ResponseError::UnknownTopicOrPartition) => Source::Unknown(ResponseError::UnknownTopicOrPartition.code()),
            Err(e) => Source::Read(Err(e.code())),
            Ok(_) if !serve => Source::Read(Err(ResponseError::NotLeaderOrFollower.code())),
            Ok(p) => Source::Read(Ok(p)),
        },
    };
    Target { key, params, name, topic_id, source }
}

/// What one partition's read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    error_code: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    records: Vec<Bytes>,
    records_bytes: usize,
    diverging_epoch: Option<EpochEndOffset>,
    aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// The offset lies below the local log start, in the object store:
    /// nothing read yet (see [`poll`]).
    remote: bool,
}

impl Outcome {
    /// Kafka's `partitionResponse(tp, error)` / `createLogReadResult(e)`.
    fn error(error_code: i16) -> Self {
        debug_assert_ne!(error_code, 0);
        Self {
            error_code,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Vec::new(),
            records_bytes: 0,
            diverging_epoch: None,
            aborted_transactions: None,
            remote: false,
        }
    }

    fn summary(&self) -> PartitionSummary {
        PartitionSummary {
            records_bytes: self.records_bytes,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            error_code: self.error_code,
            diverging: self.diverging_epoch.is_some(),
        }
    }
}

/// Reads, and if that is not enough yet, waits for more and reads again.
/// As Kafka's `ReplicaManager.fetchMessages` with tiered storage: the first
/// partition whose offset lies in the object store is read from there, the
/// others that need it answer empty this time, and the answer goes at once.
async fn poll(targets: &[Target], limits: &Limits, remote: Option<&RemoteStore>) -> Vec<Outcome> {
    let mut first = read_all(targets, limits);
    if let Some(i) = first.iter().position(|o| o.remote) {
        if let Source::Read(Ok(partition)) = &targets[i].source {
            let template = std::mem::replace(&mut first[i], Outcome::error(ResponseError::UnknownServerError.code()));
            first[i] = read_remote(remote, partition, &targets[i], limits, template).await;
        }
        return first;
    }
    let bytes: usize = first.iter().map(|o| o.records_bytes).sum();
    let read_failed = targets.iter().zip(&first).any(|(t, o)| t.is_read() && (o.error_code != 0 || o.diverging_epoch.is_some()));
    // Kafka's `fetchMessages`: answer now unless waiting could help.
    if limits.max_wait_ms <= 0 || !targets.iter().any(Target::is_read) || bytes >= limits.min_bytes || read_failed {
        return first;
    }
    let deadline = Instant::now() + Duration::from_millis(limits.max_wait_ms as u64);
    wait_for_data(targets, limits, deadline).await;
    read_all(targets, limits)
}

/// Kafka's `readFromLog`: every target in order, within the byte budget.
fn read_all(targets: &[Target], limits: &Limits) -> Vec<Outcome> {
    let partition_max_bytes = targets.iter().map(|t| t.params.max_bytes);
    walk_budget(limits.max_bytes, partition_max_bytes, |i, budget, min_one_batch| {
        let t = &targets[i];
        let outcome = match &t.source {
            Source::Unknown(code) | Source::Read(Err(code)) => Outcome::error(*code),
            Source::Read(Ok(partition)) => read_partition(partition, t, budget, min_one_batch, limits),
        };
        let bytes = outcome.records_bytes;
        (outcome, bytes)
    })
}

/// The byte budget of `readFromLog`: partition `i` may read `min(its
/// partition_max_bytes, what is left of max_bytes)`; `read(i, budget,
/// min_one_batch)` returns its result and the record bytes it took. Until one
/// partition takes bytes, `min_one_batch` lets its first batch exceed the
/// budget (KIP-74); after that limits are strict.
fn walk_budget<T>(
    max_bytes: usize,
    partition_max_bytes: impl Iterator<Item = i32>,
    mut read: impl FnMut(usize, usize, bool) -> (T, usize),
) -> Vec<T> {
    let mut left_bytes = max_bytes;
    let mut min_one_batch = true;
    partition_max_bytes
        .enumerate()
        .map(|(i, partition_max)| {
            let budget = (partition_max.max(0) as usize).min(left_bytes);
            let (result, bytes) = read(i, budget, min_one_batch);
            debug_assert!(min_one_batch || bytes <= budget, "strict limits broken: {bytes} > {budget}");
            if bytes > 0 {
                min_one_batch = false;
            }
            left_bytes = left_bytes.saturating_sub(bytes);
            result
        })
        .collect()
}

/// Whether a read of `read_bytes` may be returned: the storage read returns a
/// first batch above the budget whole, which only the first partition with
/// data may send; otherwise the batch is left for a later fetch.
fn within_budget(read_bytes: usize, budget: usize, min_one_batch: bool) -> bool {
    min_one_batch || read_bytes <= budget
}

/// Kafka's `Partition.fetchRecords` + `readRecords` for a consumer.
fn read_partition(partition: &Partition, t: &Target, budget: usize, min_one_batch: bool, limits: &Limits) -> Outcome {
    if let Err(e) = partition.check_leader(t.current_leader_epoch(), limits.only_leader) {
        return Outcome::error(epochs::error_code(e));
    }
    // The last stable offset first: read after the high watermark it could
    // pass an entry the high watermark read does not cover yet.
    let last_stable_offset = partition.last_stable_offset();
    let high_watermark = partition.high_watermark().max(last_stable_offset);
    // read_committed stops at the last stable offset (Kafka's `FetchIsolation.TXN_COMMITTED`).
    let upto = if limits.read_committed { last_stable_offset } else { high_watermark };
    let log_start_offset = partition.log_start_offset();
    let fetch_offset = t.params.fetch_offset;
    let ok = |records: Vec<Bytes>, records_bytes: usize, next_offset: i64, diverging_epoch: Option<EpochEndOffset>| Outcome {
        error_code: 0,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        records,
        records_bytes,
        aborted_transactions: (limits.read_committed && diverging_epoch.is_none()).then(|| aborted(partition, fetch_offset, next_offset)),
        diverging_epoch,
        remote: false,
    };
    if t.params.last_fetched_epoch >= 0 {
        match partition.end_offset_for_epoch(t.params.last_fetched_epoch) {
            Err(e) => return storage_failure(partition, &e),
            Ok(None) => return Outcome::error(ResponseError::OffsetOutOfRange.code()),
            Ok(Some(_)) if fetch_offset < log_start_offset => return Outcome::error(ResponseError::OffsetOutOfRange.code()),
            Ok(Some(end)) if end.epoch < t.params.last_fetched_epoch || end.end_offset < fetch_offset => {
                return ok(Vec::new(), 0, fetch_offset, Some(EpochEndOffset { epoch: end.epoch, end_offset: end.end_offset }));
            }
            Ok(Some(_)) => {}
        }
    }
    if fetch_offset >= log_start_offset && fetch_offset < partition.local_log_start_offset() {
        return Outcome { remote: true, ..ok(Vec::new(), 0, fetch_offset, None) };
    }
    match partition.read(fetch_offset, budget, upto) {
        Ok(read) if within_budget(read.bytes, budget, min_one_batch) => ok(read.slices, read.bytes, read.next_offset, None),
        Ok(_) => ok(Vec::new(), 0, fetch_offset, None),
        Err(StorageError::OffsetOutOfRange { .. }) => Outcome::error(ResponseError::OffsetOutOfRange.code()),
        Err(e) => storage_failure(partition, &e),
    }
}

/// The aborted transactions a read_committed consumer needs for the
/// records of `[from, upto)`: with them and the ABORT markers it drops
/// aborted batches (Kafka's `collectAbortedTransactions`).
fn aborted(partition: &Partition, from: i64, upto: i64) -> Vec<AbortedTransaction> {
    partition
        .aborted_transactions(from, upto)
        .into_iter()
        .map(|t| AbortedTransaction { producer_id: t.producer_id, first_offset: t.first_offset })
        .collect()
}

/// Reads `t`'s offset from the object store: one segment's batches, up to
/// the partition's budget (the first batch whole). A store that fails
/// answers KAFKA_STORAGE_ERROR, which consumers retry.
async fn read_remote(remote: Option<&RemoteStore>, partition: &Partition, t: &Target, limits: &Limits, template: Outcome) -> Outcome {
    let offset = t.params.fetch_offset;
    let Some(store) = remote else {
        tracing::warn!(topic = %partition.topic, partition = partition.index, offset, "fetch: the offset is in tiered storage, which this broker has not enabled");
        return Outcome::error(ResponseError::KafkaStorageError.code());
    };
    let Some(segment) = partition.group().tiered().read().expect("tiered state lock").segment_for(offset).cloned() else {
        return Outcome::error(ResponseError::OffsetOutOfRange.code());
    };
    let budget = (t.params.max_bytes.max(0) as usize).min(limits.max_bytes);
    let remote_segment = tiering::remote_segment(partition, &segment);
    let upto = if limits.read_committed { template.last_stable_offset } else { template.high_watermark };
    let read = remote_read::read(store, &remote_segment, segment.base_offset, segment.next_offset, offset, budget, true, upto).await;
    match read {
        Ok(r) => {
            let aborted_transactions = template.aborted_transactions.is_some().then(|| aborted(partition, offset, r.next_offset));
            Outcome { records: r.slices, records_bytes: r.bytes, remote: false, aborted_transactions, ..template }
        }
        Err(e) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, offset, "fetch from tiered storage failed: {e}");
            Outcome::error(ResponseError::KafkaStorageError.code())
        }
    }
}

fn storage_failure(partition: &Partition, e: &StorageError) -> Outcome {
    tracing::warn!(topic = %partition.topic, partition = partition.index, "fetch: {e}");
    Outcome::error(ResponseError::KafkaStorageError.code())
}

/// Kafka's `DelayedFetch`: returns once `min_bytes` could be answered, a
/// partition can no longer be read as it was, or at `deadline`. Woken by
/// the partitions' high watermarks.
async fn wait_for_data(targets: &[Target], limits: &Limits, deadline: Instant) {
    let mut watches: Vec<watch::Receiver<i64>> = targets.iter().filter_map(Target::hosted).map(|p| p.watch_high_watermark()).collect();
    loop {
        // Seen before looking, so that a move while we look wakes us.
        for w in &mut watches {
            w.borrow_and_update();
        }
        if can_complete(targets, limits) {
            return;
        }
        if watches.is_empty() {
            tokio::time::sleep_until(deadline).await;
            return;
        }
        let moved = futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        match tokio::time::timeout_at(deadline, moved).await {
            Ok((Ok(()), _, _)) => {}
            // A partition went away (its sender dropped), or time is up.
            Ok((Err(_), _, _)) | Err(_) => return,
        }
    }
}

/// Kafka's `DelayedFetch.tryComplete`: each partition counts what it could
/// return up to the high watermark, at most its `partition_max_bytes`.
fn can_complete(targets: &[Target], limits: &Limits) -> bool {
    let mut accumulated = 0usize;
    for t in targets {
        let partition = match &t.source {
            Source::Unknown(_) => continue,
            Source::Read(Err(_)) => return true,
            Source::Read(Ok(p)) => p,
        };
        if partition.check_leader(t.current_leader_epoch(), limits.only_leader).is_err() {
            return true;
        }
        let high_watermark = if limits.read_committed { partition.last_stable_offset() } else { partition.high_watermark() };
        let partition_max = t.params.max_bytes.max(0) as usize;
        match partition.read(t.params.fetch_offset, partition_max, high_watermark) {
            Err(_) => return true,
            // Stopped short of the high watermark: more than the partition may return.
            Ok(read) if read.next_offset < high_watermark => accumulated += partition_max,
            Ok(read) => accumulated += read.bytes.min(partition_max),
        }
        if accumulated >= limits.min_bytes {
            return true;
        }
    }
    false
}

/// The response: what was read (Kafka's `interesting`) in order, then the
/// unknown partitions, filtered and remembered by the session.
fn respond(ctx: &RequestContext, limits: &Limits, session: Session, targets: &[Target], outcomes: Vec<Outcome>) -> FetchResponseParts {
    let order: Vec<usize> =
        (0..targets.len()).filter(|&i| targets[i].is_read()).chain((0..targets.len()).filter(|&i| !targets[i].is_read())).collect();
    debug_assert_eq!(order.len(), outcomes.len());
    let (session_id, keep) = match session {
        Session::Full { create_session: false, .. } => (0, vec![true; order.len()]),
        Session::Full { create_session: true, uses_topic_ids } => {
            let read: Vec<_> = order.iter().map(|&i| (targets[i].key.clone(), targets[i].params, outcomes[i].summary())).collect();
            (ctx.broker.fetch_sessions.create_session(now_ms(), uses_topic_ids, &read), vec![true; order.len()])
        }
        Session::Incremental { session_id, epoch } => {
            let read: Vec<_> = order.iter().map(|&i| (targets[i].key.clone(), outcomes[i].summary())).collect();
            match ctx.broker.fetch_sessions.finish_incremental(session_id, epoch, &read) {
                IncrementalAnswer::Respond(keep) => (session_id, keep),
                IncrementalAnswer::EpochMoved => {
                    let error_code = ResponseError::InvalidFetchSessionEpoch.code();
                    crate::metrics::metrics().request_error("Fetch", error_code);
                    return FetchResponseParts { error_code, session_id, ..FetchResponseParts::default() };
                }
            }
        }
    };
    let mut outcomes: Vec<Option<Outcome>> = outcomes.into_iter().map(Some).collect();
    let mut parts = FetchResponseParts { session_id, ..FetchResponseParts::default() };
    for (&i, _) in order.iter().zip(keep).filter(|(_, keep)| *keep) {
        let t = &targets[i];
        let outcome = outcomes[i].take().expect("each partition is answered once");
        let partition = partition_parts(ctx, limits, t, outcome, &mut parts.node_endpoints);
        // Consecutive partitions of one topic share a topic entry (`FetchResponse.of`).
        match parts.topics.last_mut() {
            Some(last) if last.name == t.name && last.topic_id == t.topic_id => last.partitions.push(partition),
            _ => parts.topics.push(FetchTopicParts { name: t.name.clone(), topic_id: t.topic_id, partitions: vec![partition] }),
        }
    }
    parts
}

/// One partition's response entry, with Kafka's last conversions: zstd for
/// clients before v10, storage errors for clients up to v5, and (v16+) where
/// the leader is for NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH.
fn partition_parts(
    ctx: &RequestContext,
    limits: &Limits,
    t: &Target,
    outcome: Outcome,
    endpoints: &mut Vec<NodeEndpoint>,
) -> FetchPartitionParts {
    let zstd = limits.version < FIRST_ZSTD_VERSION && t.hosted().is_some_and(|p| p.config().compression_type == "zstd");
    let mut outcome = if zstd { Outcome::error(ResponseError::UnsupportedCompressionType.code()) } else { outcome };
    if outcome.error_code == ResponseError::KafkaStorageError.code() && limits.version <= LAST_STORAGE_ERROR_DOWNCONVERT_VERSION {
        outcome.error_code = ResponseError::NotLeaderOrFollower.code();
    }
    if outcome.error_code != 0 {
        crate::metrics::metrics().request_error("Fetch", outcome.error_code);
    } else if let Some(p) = t.hosted()
        && !outcome.records.is_empty()
    {
        p.counters.fetched(&outcome.records);
    }
    let redirect = [ResponseError::NotLeaderOrFollower.code(), ResponseError::FencedLeaderEpoch.code()].contains(&outcome.error_code);
    let current_leader = if limits.version >= FIRST_CURRENT_LEADER_VERSION && redirect { current_leader(ctx, t, endpoints) } else { None };
    FetchPartitionParts {
        partition_index: t.key.partition,
        error_code: outcome.error_code,
        high_watermark: outcome.high_watermark,
        last_stable_offset: outcome.last_stable_offset,
        log_start_offset: outcome.log_start_offset,
        aborted_transactions: outcome.aborted_transactions,
        preferred_read_replica: -1,
        diverging_epoch: outcome.diverging_epoch,
        current_leader,
        snapshot_id: None,
        records: outcome.records,
    }
}

/// The leader as this replica knows it, and its endpoint on the request's
/// listener (KIP-951), so the client can go there without a Metadata round.
fn current_leader(ctx: &RequestContext, t: &Target, endpoints: &mut Vec<NodeEndpoint>) -> Option<LeaderIdAndEpoch> {
    let partition = t.hosted()?;
    let leader_id = partition.leader_id()?;
    if !endpoints.iter().any(|e| e.node_id == leader_id)
        && let Some((host, port, rack)) = ctx.broker.endpoint_of(leader_id, &ctx.listener)
    {
        endpoints.push(NodeEndpoint { node_id: leader_id, host, port: i32::from(port), rack });
    }
    Some(LeaderIdAndEpoch { leader_id, leader_epoch: partition.leader_epoch() })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::{BrokerId, TopicName};

    use super::*;

    fn fetch_partition(partition: i32, fetch_offset: i64) -> FetchPartition {
        FetchPartition::default().with_partition(partition).with_fetch_offset(fetch_offset).with_partition_max_bytes(1000)
    }

    fn named(name: &'static str) -> TopicName {
        TopicName(StrBytes::from_static_str(name))
    }

    #[test]
    fn duplicates_keep_their_first_place_and_last_parameters() {
        let req = FetchRequest::default().with_topics(vec![
            FetchTopic::default().with_topic(named("a")).with_partitions(vec![fetch_partition(0, 1), fetch_partition(1, 2)]),
            FetchTopic::default().with_topic(named("b")).with_partitions(vec![fetch_partition(0, 3)]),
            FetchTopic::default().with_topic(named("a")).with_partitions(vec![fetch_partition(0, 9)]),
        ]);
        let got = requested_partitions(&req, 12);
        let summary: Vec<_> = got
            .iter()
            .map(|(k, p)| {
                let TopicKey::Name(n) = &k.topic else { panic!("named below v13") };
                (n.to_string(), k.partition, p.fetch_offset)
            })
            .collect();
        assert_eq!(summary, vec![("a".into(), 0, 9), ("a".into(), 1, 2), ("b".into(), 0, 3)]);
    }

    #[test]
    fn topic_ids_from_v13() {
        let id = uuid::Uuid::from_bytes([7; 16]);
        let req = FetchRequest::default()
            .with_topics(vec![
                FetchTopic::default().with_topic(named("ignored")).with_topic_id(id).with_partitions(vec![fetch_partition(2, 0)]),
            ])
            .with_forgotten_topics_data(vec![ForgottenTopic::default().with_topic_id(id).with_partitions(vec![4, 5])]);
        let got = requested_partitions(&req, 13);
        assert_eq!(got[0].0, PartitionKey { topic: TopicKey::Id([7; 16]), partition: 2 });
        let forgotten = forgotten_partitions(&req, 13);
        assert_eq!(forgotten.iter().map(|k| k.partition).collect::<Vec<_>>(), vec![4, 5]);
        assert!(forgotten.iter().all(|k| k.topic == TopicKey::Id([7; 16])));
    }

    /// What a storage read of whole batches returns from the start of
    /// `batches`: the first whole, then while they fit.
    fn storage_read(batches: &[usize], max_bytes: usize) -> usize {
        let mut taken = 0;
        for &b in batches {
            if taken > 0 && taken + b > max_bytes {
                break;
            }
            taken += b;
        }
        taken
    }

    /// A partition of a budget case: `(partition_max_bytes, batch sizes)`.
    type Fetched<'a> = (i32, &'a [usize]);

    /// Bytes each partition returns.
    fn budget_table(max_bytes: usize, partitions: &[Fetched]) -> Vec<usize> {
        walk_budget(max_bytes, partitions.iter().map(|p| p.0), |i, budget, min_one| {
            let bytes = storage_read(partitions[i].1, budget);
            let bytes = if within_budget(bytes, budget, min_one) { bytes } else { 0 };
            (bytes, bytes)
        })
    }

    #[test]
    fn byte_budget_follows_kip_74() {
        let b300: &[usize] = &[300, 300, 300];
        let table: &[(usize, &[Fetched], &[usize])] = &[
            // Each partition up to its 400, the total up to 1000: the last gets 100, too
            // little for a 300-byte batch once limits are strict.
            (1000, &[(400, b300), (400, b300), (400, b300), (400, b300)], &[300, 300, 300, 0]),
            // The first partition with data gets its first batch whole, above both limits.
            (2000, &[(1000, &[]), (1000, &[5000, 10]), (1000, b300)], &[0, 5000, 0]),
            // Even with partition_max_bytes 0.
            (2000, &[(0, &[700, 10]), (1000, b300)], &[700, 900]),
            // Strict from the second partition on, whatever the first returned.
            (10_000, &[(100, &[50, 50, 50]), (100, &[150])], &[100, 0]),
            (0, &[(100, &[])], &[0]),
        ];
        for (max_bytes, partitions, expected) in table {
            assert_eq!(&budget_table(*max_bytes, partitions), expected, "max_bytes {max_bytes}: {partitions:?}");
        }
    }

    #[test]
    fn limits_follow_kafka() {
        let req =
            FetchRequest::default().with_max_bytes(100 << 20).with_min_bytes(80 << 20).with_max_wait_ms(500).with_replica_id(BrokerId(-1));
        let l = Limits::new(&req, 12, 55 << 20);
        assert_eq!((l.max_bytes, l.min_bytes, l.max_wait_ms), (55 << 20, 55 << 20, 500));
        assert!(!l.only_leader && !l.read_committed);
        let req = FetchRequest::default().with_max_bytes(-5).with_min_bytes(-1).with_max_wait_ms(i32::MAX).with_isolation_level(1);
        let l = Limits::new(&req, 10, 1 << 20);
        assert_eq!((l.max_bytes, l.min_bytes, l.max_wait_ms), (0, 0, MAX_WAIT_MS));
        assert!(l.only_leader && l.read_committed);
    }
}
