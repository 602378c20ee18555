//! The group coordinator: one shard per `__consumer_offsets` partition this
//! broker leads. A shard's groups and offsets live in memory behind one
//! lock (Kafka's coordinator runtime likewise runs one partition's
//! operations one at a time); its records are appended to that partition,
//! and a shard is rebuilt from the log whenever this broker becomes its
//! leader (the leader epoch changes).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fjord_storage::batch::BatchHeader;
use kafka_protocol::ResponseError as E;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::classic::{After, ClassicGroup, GroupLimits, State, Write};
use super::offsets::{Offsets, TopicPartition};
use super::records::{GroupRecord, GroupValue};
use super::txn_commit::TxnWrites;
use crate::config::BrokerConfig;
use crate::metadata::store::now_ms;
use crate::metadata::{MetadataImage, MetadataStore};
use crate::partition::append::{Acks, AppendError, AppendWait};
use crate::partition::{Partition, PartitionManager};
use crate::protocol::records::{batch_records, build_keyed_batch};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How often deadlines (sessions, join and sync phases) are checked.
const TICK: Duration = Duration::from_millis(100);
/// How long loading waits for the previous leader's records to commit.
const LOAD_WAIT: Duration = Duration::from_secs(5);

/// Kafka's `partitionFor`: `Utils.abs(groupId.hashCode()) % partitions`,
/// with Java's `String.hashCode` over UTF-16 code units, so a group has
/// the same coordinator partition as in Kafka.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

pub struct ShardState {
    loaded_epoch: Option<i32>,
    pub groups: HashMap<String, ClassicGroup>,
    pub offsets: Offsets,
    /// TxnOffsetCommit writes on their way to the log.
    pub(super) txn_writes: TxnWrites,
}

impl ShardState {
    /// Whether a transaction holds an offset for the partition of the group
    /// that is not committed or aborted yet (written, or being written):
    /// OffsetFetch's UNSTABLE_OFFSET_COMMIT.
    pub fn unstable(&self, group: &str, tp: &TopicPartition) -> bool {
        self.offsets.has_pending(group, tp) || self.txn_writes.touches(group, tp)
    }
}

pub struct Shard {
    pub index: i32,
    pub partition: Arc<Partition>,
    pub(super) state: Arc<tokio::sync::Mutex<ShardState>>,
}

/// A shard locked for one operation.
pub struct Locked {
    pub shard: Arc<Shard>,
    pub state: OwnedMutexGuard<ShardState>,
}

pub struct GroupCoordinator {
    pub config: Arc<BrokerConfig>,
    partitions: Arc<PartitionManager>,
    metadata: Arc<MetadataStore>,
    shards: Mutex<HashMap<i32, Arc<Shard>>>,
    pub limits: GroupLimits,
}

/// The coordinator error for a failed `__consumer_offsets` write (Kafka's
/// `CoordinatorOperationExceptionHelper`): clients retry these.
pub fn write_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::NotLeader | AppendError::Failed(_) => E::NotCoordinator.code(),
        AppendError::Timeout => E::CoordinatorNotAvailable.code(),
        // MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE among them, as Kafka maps them.
        _ => E::UnknownServerError.code(),
    }
}

impl GroupCoordinator {
    pub fn new(config: Arc<BrokerConfig>, partitions: Arc<PartitionManager>, metadata: Arc<MetadataStore>) -> Arc<Self> {
        let g = &config.groups;
        let limits = GroupLimits {
            initial_rebalance_delay: Duration::from_millis(g.initial_rebalance_delay_ms.max(0) as u64),
            max_size: usize::try_from(g.max_size).unwrap_or(usize::MAX),
        };
        Arc::new(Self { config, partitions, metadata, shards: Mutex::new(HashMap::new()), limits })
    }

    /// The number of `__consumer_offsets` partitions, if the topic exists.
    pub fn partition_count(&self) -> Option<i32> {
        self.metadata.image().topic(OFFSETS_TOPIC).map(|t| t.partition_count())
    }

    /// The `__consumer_offsets` partition of `group`, if the topic exists.
    pub fn partition_of(&self, group: &str) -> Option<i32> {
        self.partition_count().map(|n| partition_for(group, n))
    }

    /// Locks the shard coordinating `group`, loading it first if this
    /// broker has just become its leader. NOT_COORDINATOR when this broker
    /// does not lead the group's partition.
    pub async fn lock(&self, group: &str) -> Result<Locked, i16> {
        let index = self.partition_of(group).ok_or(E::CoordinatorNotAvailable.code())?;
        self.lock_shard(index).await
    }

    pub async fn lock_shard(&self, index: i32) -> Result<Locked, i16> {
        let partition = self.partitions.get(OFFSETS_TOPIC, index).ok_or(E::NotCoordinator.code())?;
        if !partition.is_leader() {
            return Err(E::NotCoordinator.code());
        }
        let shard = {
            let mut shards = self.shards.lock().expect("shards lock");
            let current = shards.get(&index).filter(|s| Arc::ptr_eq(&s.partition, &partition)).cloned();
            current.unwrap_or_else(|| {
                let shard = Arc::new(Shard {
                    index,
                    partition: Arc::clone(&partition),
                    state: Arc::new(tokio::sync::Mutex::new(ShardState {
                        loaded_epoch: None,
                        groups: HashMap::new(),
                        offsets: Offsets::default(),
                        txn_writes: TxnWrites::default(),
                    })),
                });
                shards.insert(index, Arc::clone(&shard));
                shard
            })
        };
        let mut state = Arc::clone(&shard.state).lock_owned().await;
        let epoch = shard.partition.leader_epoch();
        if state.loaded_epoch != Some(epoch) {
            load(&shard.partition, &mut state).await?;
            state.loaded_epoch = Some(epoch);
        }
        Ok(Locked { shard, state })
    }

    /// The `__consumer_offsets` partitions this broker leads now.
    pub fn led_partitions(&self) -> Vec<i32> {
        let Some(n) = self.partition_count() else { return Vec::new() };
        (0..n).filter(|&i| self.partitions.get(OFFSETS_TOPIC, i).is_some_and(|p| p.is_leader())).collect()
    }

    /// Appends `records` to the shard's partition; call with the shard
    /// locked so records reach the log in the order state changed. The
    /// returned future waits for the commit and yields the first record's offset.
    pub async fn propose(&self, shard: &Shard, records: &[GroupRecord]) -> Result<AppendWait, i16> {
        if !records.iter().all(GroupRecord::fits) {
            // Kafka refuses such strings when it parses the request.
            return Err(E::InvalidRequest.code());
        }
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = records.iter().map(GroupRecord::encode).collect();
        let batch = build_keyed_batch(&encoded, now_ms());
        let timeout = Duration::from_millis(self.config.groups.offsets_commit_timeout_ms.max(1) as u64);
        shard.partition.append(bytes::Bytes::from(batch), Acks::All, timeout).await.map_err(|e| write_error_code(&e))
    }

    /// Writes offset records (commits or tombstones) and applies them once
    /// committed. The lock is released while the commit is awaited, so the
    /// shard keeps serving; the shard's state is locked again and returned.
    pub async fn write_offsets(&self, locked: Locked, records: Vec<GroupRecord>) -> Result<OwnedMutexGuard<ShardState>, i16> {
        let wait = self.propose(&locked.shard, &records).await?;
        let Locked { shard, state } = locked;
        drop(state);
        let appended = wait.await.map_err(|e| write_error_code(&e))?;
        let mut state = Arc::clone(&shard.state).lock_owned().await;
        state.offsets.apply_written(records, appended.base_offset);
        Ok(state)
    }

    /// Writes what a group operation asked for, and carries out what follows
    /// each write once it is committed. Call with the shard locked.
    pub async fn write_group(self: &Arc<Self>, locked: &Locked, group: &str, writes: Vec<Write>) {
        for Write { value, then } in writes {
            let record = GroupRecord::Group { group: group.to_string(), value };
            let proposed = self.propose(&locked.shard, &[record]).await;
            let me = Arc::clone(self);
            let shard = Arc::clone(&locked.shard);
            let group = group.to_string();
            tokio::spawn(async move {
                let result = match proposed {
                    Ok(wait) => wait.await.map(|_| ()).map_err(|e| write_error_code(&e)),
                    Err(code) => Err(code),
                };
                if let Err(code) = result {
                    tracing::warn!(group, code, "group record not written");
                }
                if let After::CompleteSync(generation) = then {
                    let mut state = shard.state.lock().await;
                    if let Some(g) = state.groups.get_mut(&group) {
                        g.complete_sync(generation, result, &me.limits, Instant::now(), now_ms());
                    }
                }
            });
        }
    }

    /// Runs group deadlines every [`TICK`] and offset expiry every
    /// `offsets.retention.check.interval.ms`, for as long as the broker runs.
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let expiry_every = Duration::from_millis(self.config.groups.offsets_retention_check_interval_ms.max(1) as u64);
        let mut next_expiry = Instant::now() + expiry_every;
        let mut image = self.metadata.image();
        loop {
            ticker.tick().await;
            let now = Instant::now();
            let expire = now >= next_expiry;
            if expire {
                next_expiry = now + expiry_every;
            }
            let latest = self.metadata.image();
            if !Arc::ptr_eq(&latest, &image) {
                let deleted = deleted_topics(&image, &latest);
                image = latest;
                if !deleted.is_empty() {
                    for index in self.led_partitions() {
                        let Ok(mut locked) = self.lock_shard(index).await else { continue };
                        super::expiry::forget_topics(&self, &mut locked, &deleted).await;
                    }
                }
            }
            // Every led partition, so a new leader loads its groups at once
            // (ListGroups and sessions restored from the log need them).
            for index in self.led_partitions() {
                let Ok(locked) = self.lock_shard(index).await else { continue };
                self.tick_shard(locked, expire).await;
            }
            self.unload_lost().await;
        }
    }

    /// Drops the state of shards whose partition this broker no longer
    /// leads: parked joins and syncs learn NOT_COORDINATOR and find the new one.
    async fn unload_lost(&self) {
        let lost: Vec<Arc<Shard>> = {
            let mut shards = self.shards.lock().expect("shards lock");
            let lost: Vec<i32> = shards.iter().filter(|(_, s)| !s.partition.is_leader()).map(|(i, _)| *i).collect();
            lost.into_iter().filter_map(|i| shards.remove(&i)).collect()
        };
        for shard in lost {
            let mut state = shard.state.lock().await;
            if state.loaded_epoch.take().is_some() {
                tracing::info!(
                    partition = shard.index,
                    groups = state.groups.len(),
                    "no longer the coordinator of {OFFSETS_TOPIC} partition"
                );
            }
            state.groups.clear();
            state.offsets = Offsets::default();
        }
    }

    async fn tick_shard(self: &Arc<Self>, mut locked: Locked, expire_offsets: bool) {
        let now = Instant::now();
        let now_ms = now_ms();
        let mut all = Vec::new();
        for (id, g) in locked.state.groups.iter_mut() {
            let writes = g.tick(&self.limits, now, now_ms);
            if !writes.is_empty() {
                all.push((id.clone(), writes));
            }
        }
        for (id, writes) in all {
            self.write_group(&locked, &id, writes).await;
        }
        if expire_offsets {
            super::expiry::expire(self, &mut locked, now_ms).await;
        }
    }
}

/// Topics of `old` that `new` no longer has, or has under another id (deleted and created again).
fn deleted_topics(old: &MetadataImage, new: &MetadataImage) -> HashSet<String> {
    old.topics.values().filter(|t| new.topic(&t.name).is_none_or(|n| n.id != t.id)).map(|t| t.name.clone()).collect()
}

/// Rebuilds a shard from its partition: the last record of each key wins.
async fn load(partition: &Partition, state: &mut ShardState) -> Result<(), i16> {
    let started = Instant::now();
    if !partition.caught_up(LOAD_WAIT).await {
        return Err(E::CoordinatorLoadInProgress.code());
    }
    state.groups.clear();
    state.offsets = Offsets::default();
    let mut replay = Replay::default();
    partition.replay(|header, bytes| replay.batch(partition.index, header, bytes, &mut state.offsets)).map_err(|e| {
        tracing::warn!(partition = partition.index, "loading {OFFSETS_TOPIC}: {e}");
        E::CoordinatorLoadInProgress.code()
    })?;
    let records = replay.records;
    replay.finish(state, Instant::now(), now_ms());
    tracing::info!(
        partition = partition.index,
        groups = state.groups.len(),
        records,
        ms = started.elapsed().as_millis() as u64,
        "loaded {OFFSETS_TOPIC} partition"
    );
    Ok(())
}

/// Replaying `__consumer_offsets` in log order: offsets go straight into the
/// shard's [`Offsets`] (those of a transaction wait there for its marker,
/// which may come later in the log, or after the load through
/// [`GroupCoordinator::complete_txn`]); the last record of each group is kept
/// here until the end.
#[derive(Default)]
pub struct Replay {
    groups: HashMap<String, Option<GroupValue>>,
    /// Records replayed, for the log line.
    pub records: usize,
}

impl Replay {
    /// Replays one batch (`index` names the partition in warnings).
    pub fn batch(&mut self, index: i32, header: &BatchHeader, bytes: &[u8], offsets: &mut Offsets) {
        if header.is_control() {
            // Raft's own control batches are not markers; a marker ends its producer's transaction.
            if let Some(marker) = fjord_raft::txn::marker_of(bytes) {
                offsets.complete_txn(header.producer_id, marker == fjord_raft::txn::MarkerType::Commit);
            }
            return;
        }
        let records = match batch_records(bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(partition = index, base_offset = header.base_offset, "skipping unreadable batch: {e}");
                return;
            }
        };
        for (offset, key, value) in records {
            let Some(key) = key else { continue };
            self.records += 1;
            match GroupRecord::decode(&key, value.as_deref()) {
                Ok(Some(GroupRecord::Offset { group, topic, partition: p, value })) if header.is_transactional() => {
                    offsets.apply_txn(header.producer_id, &group, (topic, p), value, offset)
                }
                Ok(Some(GroupRecord::Offset { group, topic, partition: p, value })) => offsets.apply(&group, (topic, p), value, offset),
                Ok(Some(GroupRecord::Group { group, value })) => {
                    self.groups.insert(group, value);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(partition = index, offset, "skipping unreadable record: {e}"),
            }
        }
    }

    /// Builds the shard's groups once the log is replayed.
    pub fn finish(self, state: &mut ShardState, now: Instant, now_ms: i64) {
        for (id, value) in self.groups {
            if let Some(v) = value {
                state.groups.insert(id.clone(), ClassicGroup::from_value(&id, &v, now));
            }
        }
        // Offsets without a group record (committed, or in an open transaction): a
        // group only committing (assign(), admin, a transactional producer), Empty.
        let offsets = &state.offsets;
        let simple: Vec<String> =
            offsets.groups().chain(offsets.pending_groups()).filter(|g| !state.groups.contains_key(*g)).cloned().collect();
        for id in simple {
            state.groups.entry(id.clone()).or_insert_with(|| ClassicGroup::new(&id, now_ms));
        }
    }
}

/// Whether a group in this state has members (DeleteGroups refuses those).
pub fn is_active(state: State) -> bool {
    matches!(state, State::Stable | State::PreparingRebalance | State::CompletingRebalance)
}

#[cfg(test)]
mod tests {
    use fjord_raft::txn::{MarkerType, build_marker};
    use fjord_storage::batch;

    use super::*;
    use crate::group::records::OffsetValue;
    use crate::protocol::records::{batches, build_txn_keyed_batch};

    fn commit(group: &str, partition: i32, offset: Option<i64>) -> (Vec<u8>, Option<Vec<u8>>) {
        let value = offset.map(|offset| OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
            expire_timestamp: None,
        });
        GroupRecord::Offset { group: group.into(), topic: "t".into(), partition, value }.encode()
    }

    /// Batches placed one after the other in a log starting at offset 0.
    fn log(batches: Vec<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next = 0;
        for mut b in batches {
            batch::patch(&mut b, next, 1);
            next += BatchHeader::parse(&b).unwrap().offset_count();
            out.extend_from_slice(&b);
        }
        out
    }

    fn replayed(log: &[u8]) -> ShardState {
        let mut state =
            ShardState { loaded_epoch: None, groups: HashMap::new(), offsets: Offsets::default(), txn_writes: TxnWrites::default() };
        let mut replay = Replay::default();
        for (header, bytes) in batches(log) {
            replay.batch(0, &header, bytes, &mut state.offsets);
        }
        replay.finish(&mut state, Instant::now(), 1);
        state
    }

    #[test]
    fn loading_holds_transactional_offsets_until_their_marker() {
        let txn = |pid: i64, records: &[(Vec<u8>, Option<Vec<u8>>)]| build_txn_keyed_batch(records, 1, pid, 0);
        let marker = |pid: i64, m: MarkerType| build_marker(pid, 0, m, 0, 1);
        let log = log(vec![
            build_keyed_batch(&[commit("g", 0, Some(5))], 1),
            txn(7, &[commit("g", 0, Some(10)), commit("g", 1, Some(11))]),
            txn(8, &[commit("h", 0, Some(20))]),
            batch::build_offsetless_control(1, 1, b"raft's own"),
            marker(7, MarkerType::Commit),
            txn(9, &[commit("g", 1, Some(30))]),
            marker(9, MarkerType::Abort),
            txn(10, &[commit("g", 2, Some(40))]),
            build_keyed_batch(&[commit("g", 2, Some(41))], 1),
            marker(10, MarkerType::Commit),
            txn(11, &[commit("g", 3, Some(50))]),
            build_keyed_batch(&[commit("g", 3, None)], 1),
            marker(11, MarkerType::Commit),
            marker(12, MarkerType::Commit),
        ]);
        let mut state = replayed(&log);
        let at = |s: &ShardState, g: &str, p: i32| s.offsets.get(g, &("t".to_string(), p)).map(|c| c.value.offset);
        assert_eq!(at(&state, "g", 0), Some(10), "committed by its marker");
        assert_eq!(at(&state, "g", 1), Some(11), "the aborted transaction left it");
        assert_eq!(at(&state, "g", 2), Some(41), "the plain commit written after the transactional one wins");
        assert_eq!(at(&state, "g", 3), None, "the tombstone dropped the pending offset");
        assert!(!state.offsets.has_pending_group("g"));
        assert_eq!(at(&state, "h", 0), None, "producer 8's transaction is still open");
        assert!(state.unstable("h", &("t".to_string(), 0)));
        assert!(state.groups.get("h").is_some_and(|g| g.state == State::Empty), "a group with only pending offsets exists");
        assert!(state.groups.contains_key("g"));
        assert_eq!(state.offsets.complete_txn(8, true), 1, "completed after the load, by the marker writer");
        assert_eq!(at(&state, "h", 0), Some(20));
        assert!(!state.unstable("h", &("t".to_string(), 0)));
    }

    #[test]
    fn partition_matches_kafkas_string_hash() {
        // Java: "console-consumer-1".hashCode() etc., computed with the JDK.
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "ab".hashCode() = 97*31+98 = 3105.
        assert_eq!(partition_for("ab", 50), 3105 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs makes it 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Non-BMP characters hash as two UTF-16 units: "😀" is \ud83d\ude00 = 55357*31+56832.
        assert_eq!(partition_for("😀", 1000), (55357 * 31 + 56832) % 1000);
        // A negative hash: "my-group".hashCode() is -1906497762; abs % 50 = 12.
        assert_eq!(partition_for("my-group", 50), 12);
    }
}
