//! What the client knows about a cluster: its brokers, who leads each
//! partition, and one shared connection per broker.
//!
//! A [`Cluster`] is created once per bench run (`Cluster::connect`) and shared
//! (`Arc`) by the producer, the consumer and the driver. Its metadata is a
//! cache: it changes only when someone calls [`Cluster::refresh_metadata`]
//! (the producer and consumer do after a NOT_LEADER_OR_FOLLOWER or a lost
//! connection), and concurrent refreshes are merged into one request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::conn::Connection;
use crate::error::{ClientError, Result};

/// Versions this client speaks. Metadata stops at 12 because 13 only adds a
/// top-level error; ListOffsets up to 10 (all differ in fields we leave at
/// their defaults).
const METADATA_VERSIONS: std::ops::RangeInclusive<i16> = 1..=12;
const CREATE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 2..=7;
const DELETE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=6;
const LIST_OFFSETS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=10;

/// How long the broker may take to create or delete a topic (the Java admin
/// client's default.api.timeout.ms is 60 s; its request timeout 30 s).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts and pause for the cluster's own retries (ListOffsets after a
/// leader move), like the Java client's retry.backoff.ms.
const RETRIES: u32 = 20;
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// ListOffsets timestamps with a special meaning.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

#[derive(Default)]
struct Meta {
    brokers: HashMap<i32, String>,
    topics: HashMap<String, TopicMeta>,
}

struct TopicMeta {
    /// Leader broker id by partition index; -1 while there is none.
    leaders: Vec<i32>,
}

/// See the module doc. All methods take `&self`; share it by `Arc`.
pub struct Cluster {
    client_id: String,
    bootstrap: Vec<String>,
    meta: RwLock<Meta>,
    conns: Mutex<HashMap<i32, Arc<Connection>>>,
    /// A connection for cluster-wide requests before any broker id is known.
    bootstrap_conn: Mutex<Option<Arc<Connection>>>,
    /// Held while opening a connection, so that many tasks finding none open one.
    connecting: tokio::sync::Mutex<()>,
    /// Held during a metadata refresh; `refreshes` counts finished ones, so a
    /// caller that waited for the lock during another's refresh can skip its own.
    refreshing: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

impl Cluster {
    /// Connects to the first bootstrap address that answers and loads the
    /// metadata of every topic.
    pub async fn connect(bootstrap: &[String], client_id: &str) -> Result<Arc<Cluster>> {
        if bootstrap.is_empty() {
            return Err(ClientError::Other("no bootstrap servers given".into()));
        }
        let cluster = Arc::new(Cluster {
            client_id: client_id.to_string(),
            bootstrap: bootstrap.to_vec(),
            meta: RwLock::default(),
            conns: Mutex::default(),
            bootstrap_conn: Mutex::default(),
            connecting: tokio::sync::Mutex::new(()),
            refreshing: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
        });
        cluster.refresh_metadata().await?;
        Ok(cluster)
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn meta(&self) -> std::sync::RwLockReadGuard<'_, Meta> {
        self.meta.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reloads brokers and leaders of every topic. Callers that arrive while a
    /// refresh is running wait for it and take its result instead of sending another.
    pub async fn refresh_metadata(&self) -> Result<()> {
        let seen = self.refreshes.load(Ordering::Acquire);
        let _guard = self.refreshing.lock().await;
        if self.refreshes.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        let result = self.load_metadata(None).await;
        self.refreshes.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Sends Metadata for `topics` (all when `None`) and merges the answer.
    async fn load_metadata(&self, topics: Option<&[&str]>) -> Result<()> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata, METADATA_VERSIONS)?;
        let mut req = MetadataRequest::default()
            .with_topics(topics.map(|ts| ts.iter().map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t)))).collect()));
        if version >= 4 {
            req = req.with_allow_auto_topic_creation(false);
        }
        let resp = match conn.call(req, version).await {
            Ok(r) => r,
            Err(e) => {
                self.forget(&conn);
                return Err(e);
            }
        };
        let mut meta = self.meta.write().unwrap_or_else(|e| e.into_inner());
        meta.brokers = resp.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect();
        if topics.is_none() {
            meta.topics.clear();
        }
        for t in &resp.topics {
            let Some(name) = &t.name else { continue };
            if t.error_code == ResponseError::UnknownTopicOrPartition.code() {
                meta.topics.remove(name.0.as_str());
                continue;
            }
            // A partition index past 1 << 20 is corrupt data, not a topic: skip it rather than allocate.
            let count = t.partitions.iter().map(|p| p.partition_index + 1).filter(|&n| n <= 1 << 20).max().unwrap_or(0);
            let mut leaders = vec![-1; usize::try_from(count).unwrap_or(0)];
            for p in &t.partitions {
                if let Some(slot) = usize::try_from(p.partition_index).ok().and_then(|i| leaders.get_mut(i)) {
                    *slot = p.leader_id.0.max(-1);
                }
            }
            meta.topics.insert(name.0.to_string(), TopicMeta { leaders });
        }
        Ok(())
    }

    /// The broker leading `partition` of `topic`, as last seen in metadata.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let meta = self.meta();
        let leader = *meta.topics.get(topic)?.leaders.get(usize::try_from(partition).ok()?)?;
        (leader >= 0).then_some(leader)
    }

    /// Number of partitions of `topic`, as last seen in metadata.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.meta().topics.get(topic).map(|t| t.leaders.len() as i32)
    }

    /// Ids of the brokers in the last metadata.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.meta().brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The shared connection to `broker_id`, opened on first use and reopened
    /// after it failed or the broker's address changed.
    pub async fn connection(&self, broker_id: i32) -> Result<Arc<Connection>> {
        let addr = self.meta().brokers.get(&broker_id).cloned();
        let Some(addr) = addr else {
            // Retriable, like any failure to connect: the next metadata may list it.
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "not in the cluster metadata");
            return Err(ClientError::Connect { addr: format!("broker {broker_id}"), source });
        };
        if let Some(conn) = self.open_connection(broker_id, &addr) {
            return Ok(conn);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.open_connection(broker_id, &addr) {
            return Ok(conn);
        }
        let conn = Connection::connect(&addr, &self.client_id).await?;
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(broker_id, conn.clone());
        Ok(conn)
    }

    fn open_connection(&self, broker_id: i32, addr: &str) -> Option<Arc<Connection>> {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.get(&broker_id).filter(|c| !c.is_closed() && c.addr() == addr).cloned()
    }

    /// Drops `conn` from the pool after a failure, so the next use reconnects.
    pub fn forget(&self, conn: &Arc<Connection>) {
        conn.close();
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, c| !Arc::ptr_eq(c, conn));
        let mut boot = self.bootstrap_conn.lock().unwrap_or_else(|e| e.into_inner());
        if boot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *boot = None;
        }
    }

    /// A connection to any broker, for requests any broker answers (Metadata,
    /// and CreateTopics/DeleteTopics, which KRaft brokers forward to the controller).
    async fn any_connection(&self) -> Result<Arc<Connection>> {
        let open = self.conns.lock().unwrap_or_else(|e| e.into_inner()).values().find(|c| !c.is_closed()).cloned();
        if let Some(conn) = open {
            return Ok(conn);
        }
        for id in self.broker_ids() {
            if let Ok(conn) = self.connection(id).await {
                return Ok(conn);
            }
        }
        let boot = self.bootstrap_conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(conn) = boot.filter(|c| !c.is_closed()) {
            return Ok(conn);
        }
        let mut last_err = None;
        for addr in &self.bootstrap {
            match Connection::connect(addr, &self.client_id).await {
                Ok(conn) => {
                    *self.bootstrap_conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| ClientError::Other("no broker reachable".into())))
    }

    /// Creates a topic. TOPIC_ALREADY_EXISTS comes back as
    /// `ClientError::Broker { error: ResponseError::TopicAlreadyExists, .. }`.
    pub async fn create_topic(&self, name: &str, partitions: i32, replication_factor: i16, configs: &[(String, String)]) -> Result<()> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::CreateTopics, CREATE_TOPICS_VERSIONS)?;
        let configs = configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .collect();
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(configs);
        let req = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(ADMIN_TIMEOUT.as_millis() as i32);
        let resp = conn.call(req, version).await?;
        let result = resp.topics.iter().find(|t| t.name.0.as_str() == name);
        let Some(result) = result else {
            return Err(ClientError::Protocol { addr: conn.addr().into(), detail: format!("CreateTopics answer lacks topic {name}") });
        };
        check_code(result.error_code, result.error_message.as_ref(), || format!("creating topic {name}"))
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::DeleteTopics, DELETE_TOPICS_VERSIONS)?;
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT.as_millis() as i32);
        // v6 (KIP-516) names topics in `topics`, by name or id; before, in `topic_names`.
        if version >= 6 {
            req.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(name)))];
        } else {
            req.topic_names = vec![topic_name(name)];
        }
        let resp = conn.call(req, version).await?;
        let result = resp.responses.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name));
        let Some(result) = result else {
            return Err(ClientError::Protocol { addr: conn.addr().into(), detail: format!("DeleteTopics answer lacks topic {name}") });
        };
        check_code(result.error_code, result.error_message.as_ref(), || format!("deleting topic {name}"))?;
        self.meta.write().unwrap_or_else(|e| e.into_inner()).topics.remove(name);
        Ok(())
    }

    /// Polls metadata until `topic` exists and every partition has a leader,
    /// and each leader answers ListOffsets for its partitions without error;
    /// returns the partition count. Kafka lists a leader in metadata before
    /// the leader is ready, and closes an acks=0 producer's connection on the
    /// NOT_LEADER_OR_FOLLOWER it would get then.
    pub async fn wait_for_leaders(&self, topic: &str, timeout: Duration) -> Result<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            let outcome = match self.load_metadata(Some(&[topic])).await {
                Ok(()) => self.leaders_ready(topic).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(Some(count)) => return Ok(count),
                Ok(None) if Instant::now() >= deadline => {
                    return Err(ClientError::Timeout(format!("partitions of {topic} without a ready leader after {timeout:?}")));
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(ClientError::Timeout(format!("partitions of {topic} without a ready leader after {timeout:?}: {e}")));
                }
                _ => tokio::time::sleep(RETRY_BACKOFF).await,
            }
        }
    }

    /// The partition count if every partition of `topic` has a leader in the
    /// metadata that answers ListOffsets for it.
    async fn leaders_ready(&self, topic: &str) -> Result<Option<i32>> {
        let by_leader = {
            let meta = self.meta();
            let Some(t) = meta.topics.get(topic).filter(|t| !t.leaders.is_empty()) else { return Ok(None) };
            let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
            for (partition, &leader) in t.leaders.iter().enumerate() {
                if leader < 0 || !meta.brokers.contains_key(&leader) {
                    return Ok(None);
                }
                by_leader.entry(leader).or_default().push(partition as i32);
            }
            by_leader
        };
        let mut count = 0;
        for (leader, partitions) in by_leader {
            let answers = self.list_offsets_on(leader, topic, &partitions, LATEST).await?;
            if answers.len() != partitions.len() || answers.iter().any(|a| a.1 != 0) {
                return Ok(None);
            }
            count += partitions.len() as i32;
        }
        Ok(Some(count))
    }

    /// The offset ListOffsets answers for `timestamp` ([`LATEST`], [`EARLIEST`]
    /// or a time in ms), asked of the partition's leader; retries leader moves.
    pub async fn list_offset(&self, topic: &str, partition: i32, timestamp: i64) -> Result<i64> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.list_offset_once(topic, partition, timestamp).await {
                Err(e) if e.is_retriable() && attempt < RETRIES => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    // The error may be the refresh's too; the next attempt reports it.
                    let _ = self.refresh_metadata().await;
                }
                other => return other,
            }
        }
    }

    async fn list_offset_once(&self, topic: &str, partition: i32, timestamp: i64) -> Result<i64> {
        let leader = self.leader(topic, partition).ok_or_else(|| {
            ClientError::from_code(ResponseError::LeaderNotAvailable.code(), format!("no leader for {topic}-{partition}"))
        })?;
        let answers = self.list_offsets_on(leader, topic, &[partition], timestamp).await?;
        let Some(&(_, code, offset)) = answers.first() else {
            return Err(ClientError::Other(format!("ListOffsets answer lacks {topic}-{partition}")));
        };
        check_code(code, None, || format!("ListOffsets {topic}-{partition}"))?;
        Ok(offset)
    }

    /// ListOffsets for `partitions` of `topic` to broker `leader`: (partition,
    /// error code, offset) for each partition the answer has.
    async fn list_offsets_on(&self, leader: i32, topic: &str, partitions: &[i32], timestamp: i64) -> Result<Vec<(i32, i16, i64)>> {
        let conn = self.connection(leader).await?;
        let version = conn.version(ApiKey::ListOffsets, LIST_OFFSETS_VERSIONS)?;
        let parts = partitions.iter().map(|&p| ListOffsetsPartition::default().with_partition_index(p).with_timestamp(timestamp)).collect();
        // replica_id -1: a consumer, which sees offsets up to the high watermark only.
        let mut req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(parts)]);
        if version >= 10 {
            req.timeout_ms = ADMIN_TIMEOUT.as_millis() as i32;
        }
        let resp = match conn.call(req, version).await {
            Ok(r) => r,
            Err(e) => {
                self.forget(&conn);
                return Err(e);
            }
        };
        let answers = resp.topics.iter().filter(|t| t.name.0.as_str() == topic).flat_map(|t| &t.partitions);
        Ok(answers.filter(|p| partitions.contains(&p.partition_index)).map(|p| (p.partition_index, p.error_code, p.offset)).collect())
    }
}

/// `Ok` for code 0, else the error with the broker's message in its context.
fn check_code(code: i16, message: Option<&StrBytes>, context: impl FnOnce() -> String) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    let mut context = context();
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        context.push_str(": ");
        context.push_str(m.as_str());
    }
    Err(ClientError::from_code(code, context))
}
