//! Incremental fetch sessions (KIP-227), as Kafka's `FetchSession.scala`
//! keeps them and the Java consumer's `FetchSessionHandler` expects them.
//!
//! A full fetch (`epoch` 0) may create a session: the broker remembers the
//! partitions and what it last told the client about each. Later requests
//! (`epoch` 1, 2, …) name only partitions that were added or changed, and
//! `forgotten_topics_data` for those dropped; the response carries only the
//! partitions with something new (records, a moved high watermark or log
//! start, an error). `epoch` -1 is sessionless.
//!
//! Ownership: the broker owns one [`FetchSessions`]; the Fetch handler calls
//! it twice per request, both times briefly under one lock: when the request
//! is read ([`FetchSessions::new_context`], in request order per connection)
//! and when its answer is built ([`FetchSessions::create_session`] or
//! [`FetchSessions::finish_incremental`]).
//!
//! The cache is bounded by `max.incremental.fetch.session.cache.slots`
//! (Kafka's default 1000) and evicts as Kafka's `FetchSessionCacheShard`
//! does: a session unused for two minutes goes first; else a session at least
//! two minutes old whose partition count is smaller than the new one's.
//! Kafka splits the slots over 8 shards to spread lock contention; here they
//! are one table (the same total, evictions chosen among all sessions).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kafka_protocol::ResponseError;
use kafka_protocol::protocol::StrBytes;
use rand::Rng;

/// `max.incremental.fetch.session.cache.slots` default.
pub const DEFAULT_CACHE_SLOTS: usize = 1000;
/// Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`.
const EVICTION_MS: i64 = 120_000;
/// `FetchMetadata.INVALID_SESSION_ID`: no session.
pub const NO_SESSION_ID: i32 = 0;
/// `FetchMetadata.INITIAL_EPOCH`: a full fetch that asks for a session.
pub const INITIAL_EPOCH: i32 = 0;
/// `FetchMetadata.FINAL_EPOCH`: a full fetch without a session.
pub const FINAL_EPOCH: i32 = -1;
/// The first Fetch version that names topics by id; a session keeps the kind it began with.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

/// Which topic a fetch names: by name below v13, by id from v13 (KIP-516).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    Name(StrBytes),
    Id([u8; 16]),
}

/// One partition of a fetch, as sessions and responses key it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: TopicKey,
    pub partition: i32,
}

/// What a fetch asks of one partition; a session remembers it between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionParams {
    pub fetch_offset: i64,
    /// The fetcher's log start offset (followers only).
    pub log_start_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// What one response said about a partition, as far as a session cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSummary {
    pub records_bytes: usize,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub error_code: i16,
    pub diverging: bool,
}

/// How one Fetch request uses the session cache: Kafka's `FetchContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchContext {
    /// A top-level error: no partitions, session id 0.
    Error(i16),
    /// A full fetch: the request's partitions, in request order. With
    /// `create_session`, the response tries to create a session of them.
    Full { partitions: Vec<(PartitionKey, PartitionParams)>, create_session: bool, uses_topic_ids: bool },
    /// An incremental fetch: all the session's partitions, in session order;
    /// `epoch` is the one the session expects next, which the answer checks again.
    Incremental { session_id: i32, epoch: i32, partitions: Vec<(PartitionKey, PartitionParams)> },
}

/// What [`FetchSessions::finish_incremental`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncrementalAnswer {
    /// For each partition read, whether the response carries it.
    Respond(Vec<bool>),
    /// Another request moved the session on meanwhile: INVALID_FETCH_SESSION_EPOCH.
    EpochMoved,
}

/// `FetchMetadata.nextEpoch`.
pub fn next_epoch(epoch: i32) -> i32 {
    match epoch {
        e if e < 0 => FINAL_EPOCH,
        i32::MAX => 1,
        e => e + 1,
    }
}

/// The broker's fetch session cache. See the module doc.
pub struct FetchSessions {
    cache: Mutex<Cache>,
}

impl Default for FetchSessions {
    fn default() -> Self {
        Self::with_slots(DEFAULT_CACHE_SLOTS)
    }
}

impl FetchSessions {
    /// A cache of at most `slots` sessions; 0 declines every session.
    pub fn with_slots(slots: usize) -> Self {
        Self { cache: Mutex::new(Cache { sessions: HashMap::new(), max_entries: slots }) }
    }

    /// How many sessions are cached.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Kafka's `FetchManager.newContext`: what a request with this session id
    /// and epoch reads, updating an incremental session with the request's
    /// partitions (`wanted`, added or changed) and `forgotten` ones.
    pub fn new_context(
        &self,
        version: i16,
        session_id: i32,
        epoch: i32,
        wanted: Vec<(PartitionKey, PartitionParams)>,
        forgotten: &[PartitionKey],
        now_ms: i64,
    ) -> FetchContext {
        let uses_topic_ids = version >= FIRST_TOPIC_ID_VERSION;
        let mut cache = self.lock();
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            // A full fetch closes the session it names.
            if session_id != NO_SESSION_ID {
                cache.sessions.remove(&session_id);
            }
            return FetchContext::Full { partitions: wanted, create_session: epoch == INITIAL_EPOCH, uses_topic_ids };
        }
        let Some(session) = cache.sessions.get_mut(&session_id) else {
            tracing::debug!(session_id, "fetch session not found");
            return FetchContext::Error(ResponseError::FetchSessionIdNotFound.code());
        };
        if session.epoch != epoch {
            tracing::debug!(session_id, expected = session.epoch, got = epoch, "fetch session epoch mismatch");
            return FetchContext::Error(ResponseError::InvalidFetchSessionEpoch.code());
        }
        if session.uses_topic_ids != uses_topic_ids {
            return FetchContext::Error(ResponseError::FetchSessionTopicIdError.code());
        }
        for (key, params) in &wanted {
            match session.partitions.get_mut(key) {
                Some(cached) => cached.params = *params,
                None => session.partitions.push_back(CachedPartition::new(key.clone(), *params)),
            }
        }
        for key in forgotten {
            session.partitions.remove(key);
        }
        if session.partitions.is_empty() {
            // Nothing left to follow: the session ends, this fetch is sessionless.
            cache.sessions.remove(&session_id);
            return FetchContext::Full { partitions: wanted, create_session: false, uses_topic_ids };
        }
        session.touch(now_ms);
        session.epoch = next_epoch(session.epoch);
        tracing::trace!(session_id, epoch = session.epoch, wanted = wanted.len(), forgotten = forgotten.len(), "incremental fetch");
        let partitions = session.partitions.iter().map(|c| (c.key.clone(), c.params)).collect();
        FetchContext::Incremental { session_id, epoch: session.epoch, partitions }
    }

    /// Kafka's `FetchSessionCacheShard.maybeCreateSession`, after a full
    /// fetch: a session of the response's partitions, or 0 when the cache is
    /// full and nothing may be evicted (or it has no slots).
    pub fn create_session(
        &self,
        now_ms: i64,
        uses_topic_ids: bool,
        partitions: &[(PartitionKey, PartitionParams, PartitionSummary)],
    ) -> i32 {
        let mut cache = self.lock();
        if cache.sessions.len() >= cache.max_entries && !cache.try_evict(partitions.len(), now_ms) {
            return NO_SESSION_ID;
        }
        let mut ordered = OrderedPartitions::default();
        for (key, params, summary) in partitions {
            let mut cached = CachedPartition::new(key.clone(), *params);
            cached.high_watermark = summary.high_watermark;
            cached.log_start_offset = summary.log_start_offset;
            match ordered.get_mut(key) {
                Some(existing) => *existing = cached,
                None => ordered.push_back(cached),
            }
        }
        let id = cache.new_session_id();
        let mut session = Session {
            id,
            partitions: ordered,
            uses_topic_ids,
            creation_ms: now_ms,
            last_used_ms: now_ms,
            epoch: next_epoch(INITIAL_EPOCH),
            cached_size: 0,
            evictable: false,
        };
        session.touch(now_ms);
        tracing::debug!(session_id = id, partitions = partitions.len(), sessions = cache.sessions.len() + 1, "created fetch session");
        cache.sessions.insert(id, session);
        debug_assert!(cache.sessions.len() <= cache.max_entries);
        id
    }

    /// Kafka's `IncrementalFetchContext.updateAndGenerateResponseData`: which
    /// of the partitions read the response carries, remembering what it tells
    /// the client. Partitions that returned records move to the end of the
    /// session, so the next fetch reads the others first.
    pub fn finish_incremental(&self, session_id: i32, epoch: i32, read: &[(PartitionKey, PartitionSummary)]) -> IncrementalAnswer {
        let mut cache = self.lock();
        let Some(session) = cache.sessions.get_mut(&session_id) else {
            // Evicted or closed meanwhile: nothing to compare with, all are news.
            return IncrementalAnswer::Respond(vec![true; read.len()]);
        };
        if session.epoch != epoch {
            return IncrementalAnswer::EpochMoved;
        }
        let respond = read
            .iter()
            .map(|(key, summary)| {
                let Some(cached) = session.partitions.get_mut(key) else { return true };
                let must = cached.update(summary);
                if must && summary.records_bytes > 0 {
                    session.partitions.move_to_back(key);
                }
                must
            })
            .collect();
        IncrementalAnswer::Respond(respond)
    }
}

/// Every session, by id.
struct Cache {
    sessions: HashMap<i32, Session>,
    max_entries: usize,
}

impl Cache {
    /// Kafka's `newSessionId`: random in `[1, i32::MAX)`, unused.
    fn new_session_id(&self) -> i32 {
        let mut rng = rand::rng();
        loop {
            let id = rng.random_range(1..i32::MAX);
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Kafka's `tryEvict` for a client (never privileged): the least recently
    /// used session if it is stale; else, among sessions older than the
    /// eviction time, the one with the fewest partitions (then the lowest id),
    /// if the new session is larger.
    fn try_evict(&mut self, new_size: usize, now_ms: i64) -> bool {
        let Some(lru) = self.sessions.values().min_by_key(|s| (s.last_used_ms, s.id)) else { return false };
        if now_ms - lru.last_used_ms > EVICTION_MS {
            let id = lru.id;
            self.sessions.remove(&id);
            return true;
        }
        let Some(smallest) = self.sessions.values().filter(|s| s.evictable).min_by_key(|s| (s.cached_size, s.id)) else {
            return false;
        };
        // The new session's key is (size, id 0): it wins only by being larger.
        if new_size <= smallest.cached_size {
            return false;
        }
        let id = smallest.id;
        self.sessions.remove(&id);
        true
    }
}

/// Kafka's `FetchSession`.
struct Session {
    id: i32,
    partitions: OrderedPartitions,
    uses_topic_ids: bool,
    creation_ms: i64,
    last_used_ms: i64,
    /// The epoch the next request must carry.
    epoch: i32,
    /// The partition count at the last touch: what eviction compares.
    cached_size: usize,
    /// Whether, at the last touch, the session was old enough to evict for a larger one.
    evictable: bool,
}

impl Session {
    /// Kafka's `FetchSessionCacheShard.touch`.
    fn touch(&mut self, now_ms: i64) {
        self.last_used_ms = now_ms;
        self.cached_size = self.partitions.len();
        self.evictable = now_ms - self.creation_ms > EVICTION_MS;
    }
}

/// Kafka's `CachedPartition`: the last request parameters and what the
/// client was last told.
#[derive(Debug, Clone)]
struct CachedPartition {
    key: PartitionKey,
    params: PartitionParams,
    high_watermark: i64,
    log_start_offset: i64,
}

impl CachedPartition {
    fn new(key: PartitionKey, params: PartitionParams) -> Self {
        Self { key, params, high_watermark: -1, log_start_offset: -1 }
    }

    /// Kafka's `maybeUpdateResponseData(respData, updateResponseData = true)`:
    /// whether the client must hear about the partition.
    fn update(&mut self, summary: &PartitionSummary) -> bool {
        let mut must = summary.records_bytes > 0 || summary.diverging;
        if self.high_watermark != summary.high_watermark {
            must = true;
            self.high_watermark = summary.high_watermark;
        }
        if self.log_start_offset != summary.log_start_offset {
            must = true;
            self.log_start_offset = summary.log_start_offset;
        }
        if summary.error_code != 0 {
            must = true;
            self.high_watermark = -1;
        }
        must
    }
}

/// A session's partitions in order, found by key; moving one to the back is
/// O(log n). Kafka's `ImplicitLinkedHashCollection`.
#[derive(Default)]
struct OrderedPartitions {
    next_seq: u64,
    seq_of: HashMap<PartitionKey, u64>,
    by_seq: BTreeMap<u64, CachedPartition>,
}

impl OrderedPartitions {
    fn len(&self) -> usize {
        debug_assert_eq!(self.seq_of.len(), self.by_seq.len());
        self.by_seq.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_mut(&mut self, key: &PartitionKey) -> Option<&mut CachedPartition> {
        let seq = self.seq_of.get(key)?;
        self.by_seq.get_mut(seq)
    }

    fn push_back(&mut self, partition: CachedPartition) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let old = self.seq_of.insert(partition.key.clone(), seq);
        debug_assert!(old.is_none(), "partition added twice");
        self.by_seq.insert(seq, partition);
    }

    fn remove(&mut self, key: &PartitionKey) -> Option<CachedPartition> {
        let seq = self.seq_of.remove(key)?;
        self.by_seq.remove(&seq)
    }

    fn move_to_back(&mut self, key: &PartitionKey) {
        if let Some(partition) = self.remove(key) {
            self.push_back(partition);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &CachedPartition> {
        self.by_seq.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &'static str, partition: i32) -> PartitionKey {
        PartitionKey { topic: TopicKey::Name(StrBytes::from_static_str(topic)), partition }
    }

    fn params(fetch_offset: i64) -> PartitionParams {
        PartitionParams { fetch_offset, log_start_offset: -1, max_bytes: 1 << 20, current_leader_epoch: -1, last_fetched_epoch: -1 }
    }

    fn summary(records_bytes: usize, high_watermark: i64) -> PartitionSummary {
        PartitionSummary { records_bytes, high_watermark, log_start_offset: 0, error_code: 0, diverging: false }
    }

    /// A full fetch of `keys` that creates a session; returns its id.
    fn open(sessions: &FetchSessions, keys: &[PartitionKey], now_ms: i64) -> i32 {
        let wanted: Vec<_> = keys.iter().map(|k| (k.clone(), params(0))).collect();
        let FetchContext::Full { partitions, create_session: true, uses_topic_ids: false } =
            sessions.new_context(12, 0, 0, wanted, &[], now_ms)
        else {
            panic!("not a full fetch");
        };
        let read: Vec<_> = partitions.into_iter().map(|(k, p)| (k, p, summary(0, 10))).collect();
        sessions.create_session(now_ms, false, &read)
    }

    fn incremental(
        sessions: &FetchSessions,
        id: i32,
        epoch: i32,
        wanted: &[(PartitionKey, i64)],
        forgotten: &[PartitionKey],
    ) -> FetchContext {
        let wanted = wanted.iter().map(|(k, o)| (k.clone(), params(*o))).collect();
        sessions.new_context(12, id, epoch, wanted, forgotten, 1_000)
    }

    fn keys_of(context: &FetchContext) -> Vec<PartitionKey> {
        match context {
            FetchContext::Incremental { partitions, .. } | FetchContext::Full { partitions, .. } => {
                partitions.iter().map(|(k, _)| k.clone()).collect()
            }
            FetchContext::Error(code) => panic!("error {code}"),
        }
    }

    #[test]
    fn incremental_fetches_add_update_and_forget() {
        let sessions = FetchSessions::default();
        let (a0, a1, b0) = (key("a", 0), key("a", 1), key("b", 0));
        let id = open(&sessions, &[a0.clone(), a1.clone()], 0);
        assert_ne!(id, NO_SESSION_ID);
        // Epoch 1: add b-0, move a-1 on; a-0 is read with what the session remembers.
        let ctx = incremental(&sessions, id, 1, &[(b0.clone(), 7), (a1.clone(), 5)], &[]);
        assert_eq!(keys_of(&ctx), vec![a0.clone(), a1.clone(), b0.clone()]);
        let FetchContext::Incremental { epoch: 2, partitions, .. } = &ctx else { panic!("{ctx:?}") };
        assert_eq!(partitions.iter().map(|(_, p)| p.fetch_offset).collect::<Vec<_>>(), vec![0, 5, 7]);
        // Epoch 2: forget a-0 and a topic the session never had.
        let ctx = incremental(&sessions, id, 2, &[], &[a0.clone(), key("zzz", 3)]);
        assert_eq!(keys_of(&ctx), vec![a1.clone(), b0.clone()]);
        // Forgetting the rest ends the session: that fetch is sessionless.
        let ctx = incremental(&sessions, id, 3, &[], &[a1, b0]);
        assert!(matches!(ctx, FetchContext::Full { create_session: false, ref partitions, .. } if partitions.is_empty()));
        assert!(sessions.is_empty());
    }

    #[test]
    fn session_errors() {
        let sessions = FetchSessions::default();
        let id = open(&sessions, &[key("a", 0)], 0);
        let code = |c: FetchContext| match c {
            FetchContext::Error(code) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(incremental(&sessions, id + 1, 1, &[], &[])), ResponseError::FetchSessionIdNotFound.code());
        assert_eq!(code(incremental(&sessions, id, 5, &[], &[])), ResponseError::InvalidFetchSessionEpoch.code());
        let ctx = sessions.new_context(13, id, 1, Vec::new(), &[], 0);
        assert_eq!(code(ctx), ResponseError::FetchSessionTopicIdError.code());
        // Errors leave the session as it was.
        assert!(matches!(incremental(&sessions, id, 1, &[], &[]), FetchContext::Incremental { epoch: 2, .. }));
        // A full fetch naming the session closes it; epoch -1 makes no new one.
        let ctx = sessions.new_context(12, id, FINAL_EPOCH, vec![(key("a", 0), params(0))], &[], 0);
        assert!(matches!(ctx, FetchContext::Full { create_session: false, .. }));
        assert!(sessions.is_empty());
    }

    #[test]
    fn incremental_answers_carry_only_news_and_rotate_what_returned_data() {
        let sessions = FetchSessions::default();
        let (a, b, c) = (key("a", 0), key("b", 0), key("c", 0));
        let id = open(&sessions, &[a.clone(), b.clone(), c.clone()], 0);
        let ctx = incremental(&sessions, id, 1, &[], &[]);
        assert_eq!(keys_of(&ctx), vec![a.clone(), b.clone(), c.clone()]);
        let mut errored = summary(0, -1);
        errored.error_code = ResponseError::NotLeaderOrFollower.code();
        // a: records; b: nothing new (hw 10, log start 0 as in the full answer); c: an error.
        let read = [(a.clone(), summary(100, 10)), (b.clone(), summary(0, 10)), (c.clone(), errored)];
        assert_eq!(sessions.finish_incremental(id, 2, &read), IncrementalAnswer::Respond(vec![true, false, true]));
        // a returned records: it goes last.
        let ctx = incremental(&sessions, id, 2, &[], &[]);
        assert_eq!(keys_of(&ctx), vec![b.clone(), c.clone(), a.clone()]);
        // b's high watermark moved; c's error is repeated; a has nothing.
        let read = [(b.clone(), summary(0, 11)), (c.clone(), errored), (a.clone(), summary(0, 10))];
        assert_eq!(sessions.finish_incremental(id, 3, &read), IncrementalAnswer::Respond(vec![true, true, false]));
        // An answer for an epoch the session has left is refused.
        assert_eq!(sessions.finish_incremental(id, 2, &read), IncrementalAnswer::EpochMoved);
    }

    #[test]
    fn eviction_follows_kafka() {
        let sessions = FetchSessions::with_slots(2);
        let small = open(&sessions, &[key("a", 0)], 0);
        let big = open(&sessions, &[key("a", 0), key("a", 1)], 0);
        assert!(small != NO_SESSION_ID && big != NO_SESSION_ID);
        // Full, nothing stale or old enough: declined.
        assert_eq!(open(&sessions, &[key("x", 0), key("x", 1), key("x", 2)], 1_000), NO_SESSION_ID);
        // After the eviction time, touched sessions become evictable for larger ones.
        let later = EVICTION_MS + 10;
        incremental_at(&sessions, small, 1, later);
        incremental_at(&sessions, big, 1, later);
        // Same size as the smallest: no.
        assert_eq!(open(&sessions, &[key("y", 0)], later), NO_SESSION_ID);
        // Larger than the smallest: it goes.
        let third = open(&sessions, &[key("y", 0), key("y", 1)], later);
        assert_ne!(third, NO_SESSION_ID);
        assert_eq!(sessions.len(), 2);
        assert!(matches!(incremental_at(&sessions, small, 2, later), FetchContext::Error(_)));
        // Unused for longer than the eviction time: the least recently used goes, whatever its size.
        let much_later = later + EVICTION_MS + 1;
        incremental_at(&sessions, third, 1, much_later - 1);
        let fourth = open(&sessions, &[key("z", 0)], much_later);
        assert_ne!(fourth, NO_SESSION_ID);
        assert!(matches!(incremental_at(&sessions, big, 2, much_later), FetchContext::Error(_)));
        assert!(matches!(incremental_at(&sessions, third, 2, much_later), FetchContext::Incremental { .. }));
    }

    fn incremental_at(sessions: &FetchSessions, id: i32, epoch: i32, now_ms: i64) -> FetchContext {
        sessions.new_context(12, id, epoch, Vec::new(), &[], now_ms)
    }

    #[test]
    fn no_slots_declines_every_session() {
        let sessions = FetchSessions::with_slots(0);
        assert_eq!(open(&sessions, &[key("a", 0)], 0), NO_SESSION_ID);
        assert!(sessions.is_empty());
    }

    #[test]
    fn epochs_wrap_as_kafkas() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
        assert_eq!(next_epoch(-7), -1);
    }
}
