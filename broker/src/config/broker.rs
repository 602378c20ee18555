//! [`BrokerConfig`]: the broker's settings, read from a Kafka-style
//! `server.properties` plus command-line overrides, under Kafka's names.
//!
//! Loaded once by `main` before anything starts; immutable afterwards and
//! shared as `Arc<BrokerConfig>`. It keeps the settings that were given
//! explicitly, so that DescribeConfigs can tell STATIC_BROKER_CONFIG from
//! DEFAULT_CONFIG and topics inherit the right synonyms.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use fjord_raft::config::{ConfigError as RaftConfigError, RaftConfig};

use super::broker_defs::{BROKER_DEFS, broker_def, broker_synonyms, is_dynamic, is_known_unused};
use super::def::Value;
use super::describe::{ConfigEntry, ConfigSource, ConfigType, source_of, synonym_chain};
use super::kraft::{ProcessRole, QuorumVoter, quorum_voters};
use super::listener::{Listener, SecurityProtocol, parse_listeners, parse_protocol_map};
use super::properties::{self, PropertiesError};
use super::topic::{self, TimestampType, TopicConfig, TopicOverrides};

/// Why the broker config was refused; each message is one line naming the
/// key and the value at fault. `main` prints it and exits.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file given on the command line does not exist.
    #[error("config file {} does not exist", path.display())]
    NotFound { path: PathBuf },
    /// The config file exists but cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The config file is not valid `.properties` text.
    #[error("config file {}: {source}", path.display())]
    Syntax { path: PathBuf, source: PropertiesError },
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    /// A security protocol Kafka does not have, in `listener.security.protocol.map`.
    #[error("invalid value {value:?} for {key}: unknown security protocol {protocol}")]
    UnknownSecurityProtocol { key: String, value: String, protocol: String },
    /// Settings that are valid one by one but not together.
    #[error("{0}")]
    Inconsistent(String),
}

pub(super) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue { key: key.to_string(), value: value.to_string(), reason: reason.into() }
}

/// The broker-level defaults of topic configs (Kafka's names in the field
/// docs), with synonyms already resolved: `retention_ms` is
/// `log.retention.ms`, else `.minutes`, else `.hours`, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDefaults {
    /// `log.segment.bytes`.
    pub segment_bytes: i32,
    /// `log.roll.ms`, else `log.roll.hours`.
    pub roll_ms: i64,
    /// `log.roll.jitter.ms`, else `log.roll.jitter.hours`.
    pub roll_jitter_ms: i64,
    /// `log.retention.ms`, else `.minutes`, else `.hours`; -1 keeps data forever.
    pub retention_ms: i64,
    /// `log.retention.bytes`; -1 is no limit.
    pub retention_bytes: i64,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub retention_check_interval_ms: i64,
    /// `log.local.retention.ms` / `.bytes` (tiered storage; -2 = the full retention).
    pub local_retention_ms: i64,
    pub local_retention_bytes: i64,
    /// `log.flush.interval.messages`; `i64::MAX` never forces an fsync.
    pub flush_interval_messages: i64,
    /// `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms`; `i64::MAX` never.
    pub flush_interval_ms: i64,
    /// `log.index.interval.bytes`.
    pub index_interval_bytes: i32,
    /// `log.index.size.max.bytes`.
    pub index_size_max_bytes: i32,
    /// `log.cleanup.policy`.
    pub cleanup_policy: Vec<String>,
    /// `log.message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `log.message.timestamp.before.max.ms` / `.after.max.ms`.
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    /// `compression.type` and the `compression.*.level`s.
    pub compression_type: String,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `log.segment.delete.delay.ms`.
    pub segment_delete_delay_ms: i64,
    /// `log.preallocate`.
    pub preallocate: bool,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `message.max.bytes` (the topic config `max.message.bytes`).
    pub message_max_bytes: i32,
    /// `log.cleaner.delete.retention.ms`, `.min.compaction.lag.ms`,
    /// `.max.compaction.lag.ms`, `.min.cleanable.ratio`.
    pub cleaner_delete_retention_ms: i64,
    pub cleaner_min_compaction_lag_ms: i64,
    pub cleaner_max_compaction_lag_ms: i64,
    pub cleaner_min_cleanable_ratio: f64,
}

impl LogDefaults {
    fn new(topic: TopicConfig, retention_check_interval_ms: i64) -> Self {
        LogDefaults {
            segment_bytes: topic.segment_bytes,
            roll_ms: topic.segment_ms,
            roll_jitter_ms: topic.segment_jitter_ms,
            retention_ms: topic.retention_ms,
            retention_bytes: topic.retention_bytes,
            retention_check_interval_ms,
            local_retention_ms: topic.local_retention_ms,
            local_retention_bytes: topic.local_retention_bytes,
            flush_interval_messages: topic.flush_messages,
            flush_interval_ms: topic.flush_ms,
            index_interval_bytes: topic.index_interval_bytes,
            index_size_max_bytes: topic.segment_index_bytes,
            cleanup_policy: topic.cleanup_policy,
            message_timestamp_type: topic.message_timestamp_type,
            message_timestamp_before_max_ms: topic.message_timestamp_before_max_ms,
            message_timestamp_after_max_ms: topic.message_timestamp_after_max_ms,
            compression_type: topic.compression_type,
            compression_gzip_level: topic.compression_gzip_level,
            compression_lz4_level: topic.compression_lz4_level,
            compression_zstd_level: topic.compression_zstd_level,
            min_insync_replicas: topic.min_insync_replicas,
            segment_delete_delay_ms: topic.file_delete_delay_ms,
            preallocate: topic.preallocate,
            unclean_leader_election_enable: topic.unclean_leader_election_enable,
            message_max_bytes: topic.max_message_bytes,
            cleaner_delete_retention_ms: topic.delete_retention_ms,
            cleaner_min_compaction_lag_ms: topic.min_compaction_lag_ms,
            cleaner_max_compaction_lag_ms: topic.max_compaction_lag_ms,
            cleaner_min_cleanable_ratio: topic.min_cleanable_dirty_ratio,
        }
    }
}

/// The group coordinator's settings, under Kafka's names.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: i32,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: i32,
    /// `offsets.commit.timeout.ms`.
    pub offsets_commit_timeout_ms: i32,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i32,
}

/// Cluster membership and leadership settings, under Kafka's names.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`, in ms.
    pub imbalance_check_interval_ms: u64,
    /// `leader.imbalance.per.broker.percentage`.
    pub imbalance_percentage: u32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: u64,
    /// `controlled.shutdown.enable`.
    pub controlled_shutdown: bool,
}

/// See the module doc. Each field names its Kafka key.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id` (alias `broker.id`).
    pub node_id: i32,
    /// `listeners`, without the controller listeners: what the broker serves.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`, else `listeners`, without controller
    /// listeners; an empty host is replaced by this machine's hostname.
    pub advertised_listeners: Vec<Listener>,
    /// `listener.security.protocol.map`, names upper case.
    pub listener_security_protocol_map: BTreeMap<String, SecurityProtocol>,
    /// `controller.listener.names`, upper case.
    pub controller_listener_names: Vec<String>,
    /// The entries of `listeners` named in `controller.listener.names`: a
    /// controller's raft transport binds the first (Kafka's controller listener).
    pub controller_listeners: Vec<Listener>,
    /// `process.roles`.
    pub process_roles: Vec<ProcessRole>,
    /// `controller.quorum.voters`: the metadata group's voters, by raft address.
    pub controller_quorum_voters: Vec<QuorumVoter>,
    /// `controller.quorum.bootstrap.servers`, as given. Not used yet.
    pub controller_quorum_bootstrap_servers: Vec<String>,
    /// `log.dirs`, else `log.dir`.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `message.max.bytes` (also in [`LogDefaults`]).
    pub message_max_bytes: i32,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: i32,
    /// `queued.max.requests`.
    pub queued_max_requests: usize,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: i32,
    /// `broker.rack`.
    pub broker_rack: Option<String>,
    /// `cluster.id`: the id to record if the metadata log has none yet.
    pub cluster_id: Option<String>,
    /// Every `raft.*` key, through [`RaftConfig::set`]; validated.
    pub raft: RaftConfig,
    /// `raft.listener` (`host:port`): where the raft transport binds. `None`
    /// picks an ephemeral port on the first listener's host, see
    /// [`BrokerConfig::raft_listen_addr`].
    pub raft_listener: Option<SocketAddr>,
    /// `raft.advertised.listener` (`host:port`): how peers reach the raft
    /// transport, if not at the bound address.
    pub raft_advertised_listener: Option<String>,
    /// The broker-level defaults of topic configs.
    pub log: LogDefaults,
    /// The group coordinator's settings.
    pub groups: GroupConfig,
    /// The transaction coordinator's settings.
    pub transactions: super::TransactionConfig,
    /// Heartbeats, liveness and leader balance.
    pub cluster: ClusterConfig,
    /// SASL listeners' mechanisms and PLAIN users, `connections.max.reauth.ms`.
    pub sasl: super::sasl::SaslConfig,
    /// `ssl.*` and `listener.name.<name>.ssl.*`: the TLS side of each SSL
    /// and SASL_SSL listener, by listener name (upper case); files read and checked.
    pub tls: BTreeMap<String, super::ssl::TlsSettings>,
    /// TLS between nodes, when the controller or inter-broker listener is
    /// SSL ([`super::ssl::read_between_nodes`]).
    pub tls_between_nodes: Option<super::ssl::TlsSettings>,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`;
    /// `None`: ACLs are not enforced.
    pub authorizer: Option<crate::security::authorizer::AuthorizerConfig>,
    /// `remote.log.storage.system.enable` and the object store under
    /// `remote.log.storage.manager.impl.prefix` ([`super::remote`]); `None`:
    /// tiered storage is off.
    pub remote_log_storage: Option<fjord_tiered::TieredConfig>,
    /// `remote.log.manager.task.interval.ms`: how often leaders tier.
    pub remote_log_manager_task_interval_ms: i64,
    /// `metrics.listener`, `tracing.format`, `tracing.level`.
    pub observability: super::observability::Observability,
    /// Every setting given, normalized; see [`BrokerConfig::explicit`].
    explicit: Explicit,
}

impl BrokerConfig {
    /// Reads `path` (if any), applies `overrides` in order (later wins) and
    /// validates. Returns the config and warnings (unknown keys).
    pub fn load(path: Option<&Path>, overrides: &[(String, String)]) -> Result<(Self, Vec<String>), ConfigError> {
        let mut pairs = match path {
            Some(path) => read_file(path)?,
            None => Vec::new(),
        };
        pairs.extend_from_slice(overrides);
        Self::from_pairs(&pairs)
    }

    /// Builds the config from `(key, value)` pairs (later pairs win) and validates it.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<(Self, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let mut raft = RaftConfig::default();
        let explicit = read_pairs(pairs, &mut raft, &mut warnings)?;
        raft.validate().map_err(|e| ConfigError::Inconsistent(e.to_string()))?;
        topic::check_inherited(&explicit)?;
        let s = Settings(&explicit);
        // A controller-only node has no broker listener by design.
        let controller_only = s.list("process.roles") == ["controller"];
        let net = Network::read(&s, controller_only)?;
        let log_dirs = log_dirs(&s)?;
        let sasl = super::sasl::SaslConfig::read(&explicit, &net.listeners, &mut warnings)?;
        let log =
            LogDefaults::new(TopicConfig::resolve_explicit(&explicit, &TopicOverrides::new()), s.long("log.retention.check.interval.ms"));
        let tls = super::ssl::read(&explicit, &net.listeners)?;
        let tls_between_nodes = super::ssl::read_between_nodes(&explicit, &net.protocols, &net.controller_names)?;
        let authorizer = super::authorizer::read(&explicit, &mut warnings)?;
        let remote_log_storage = super::remote::read(&explicit, &log_dirs, &mut warnings)?;
        let config = BrokerConfig {
            node_id: s.int("node.id"),
            listeners: net.listeners,
            advertised_listeners: net.advertised,
            listener_security_protocol_map: net.protocols,
            controller_listener_names: net.controller_names,
            controller_listeners: net.controller_listeners,
            process_roles: s
                .list("process.roles")
                .iter()
                .map(|r| if r == "controller" { ProcessRole::Controller } else { ProcessRole::Broker })
                .collect(),
            controller_quorum_voters: quorum_voters(&s)?,
            controller_quorum_bootstrap_servers: s.list("controller.quorum.bootstrap.servers"),
            log_dirs,
            num_partitions: s.int("num.partitions"),
            default_replication_factor: i16::try_from(s.long("default.replication.factor")).unwrap_or(1),
            auto_create_topics_enable: s.bool("auto.create.topics.enable"),
            delete_topic_enable: s.bool("delete.topic.enable"),
            message_max_bytes: s.int("message.max.bytes"),
            socket_request_max_bytes: s.int("socket.request.max.bytes"),
            queued_max_requests: usize::try_from(s.long("queued.max.requests")).unwrap_or(1),
            fetch_max_bytes: s.int("fetch.max.bytes"),
            broker_rack: s.text("broker.rack").filter(|r| !r.is_empty()),
            cluster_id: s.text("cluster.id").filter(|c| !c.is_empty()),
            raft,
            raft_listener: s.text("raft.listener").map(|v| socket_addr("raft.listener", &v)).transpose()?,
            raft_advertised_listener: s.text("raft.advertised.listener").map(|v| host_port("raft.advertised.listener", &v)).transpose()?,
            log,
            groups: GroupConfig {
                initial_rebalance_delay_ms: s.int("group.initial.rebalance.delay.ms"),
                min_session_timeout_ms: s.int("group.min.session.timeout.ms"),
                max_session_timeout_ms: s.int("group.max.session.timeout.ms"),
                max_size: s.int("group.max.size"),
                offset_metadata_max_bytes: s.int("offset.metadata.max.bytes"),
                offsets_commit_timeout_ms: s.int("offsets.commit.timeout.ms"),
                offsets_retention_ms: i64::from(s.int("offsets.retention.minutes")) * 60_000,
                offsets_retention_check_interval_ms: s.long("offsets.retention.check.interval.ms"),
                offsets_topic_num_partitions: s.int("offsets.topic.num.partitions"),
                offsets_topic_replication_factor: i16::try_from(s.int("offsets.topic.replication.factor")).unwrap_or(3),
                offsets_topic_segment_bytes: s.int("offsets.topic.segment.bytes"),
            },
            transactions: super::TransactionConfig::read(|k| s.int(k), |k| s.bool(k)),
            cluster: ClusterConfig {
                heartbeat_interval_ms: s.int("broker.heartbeat.interval.ms").max(1) as u64,
                session_timeout_ms: s.int("broker.session.timeout.ms").max(1) as u64,
                auto_leader_rebalance: s.bool("auto.leader.rebalance.enable"),
                imbalance_check_interval_ms: (s.long("leader.imbalance.check.interval.seconds").max(1) as u64).saturating_mul(1000),
                imbalance_percentage: s.int("leader.imbalance.per.broker.percentage").clamp(0, 100) as u32,
                replica_lag_time_max_ms: s.long("replica.lag.time.max.ms").max(1) as u64,
                controlled_shutdown: s.bool("controlled.shutdown.enable"),
            },
            sasl,
            tls,
            tls_between_nodes,
            authorizer,
            remote_log_storage,
            remote_log_manager_task_interval_ms: s.long("remote.log.manager.task.interval.ms"),
            observability: observability(&s)?,
            explicit: Explicit(explicit),
        };
        config.check_quorum()?;
        debug_assert!((!config.listeners.is_empty() || !config.is_broker()) && !config.log_dirs.is_empty());
        Ok((config, warnings))
    }

    /// The settings given explicitly (file, then overrides), with known
    /// values normalized as DescribeConfigs shows them (`" 24 "` → `"24"`).
    /// Unknown keys are kept as given. `node.id` and `broker.id` appear
    /// together if either was given, as in Kafka.
    pub fn explicit(&self) -> &BTreeMap<String, String> {
        &self.explicit
    }

    /// Whether `name` was given explicitly.
    pub fn is_set(&self, name: &str) -> bool {
        self.explicit.contains_key(name)
    }

    /// Every broker config as DescribeConfigs(BROKER) for this broker's id
    /// shows it (`ConfigHelper.createBrokerConfigEntry`): the configs Fjord
    /// reads, then any other key given. Synonyms and documentation are
    /// always filled in; the handler drops them if not asked for.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        let others = self.explicit.keys().map(String::as_str).filter(|k| broker_def(k).is_none());
        BROKER_DEFS.iter().map(|d| d.name).chain(others).map(|name| self.describe_one(name)).collect()
    }

    fn describe_one(&self, name: &str) -> ConfigEntry {
        let def = broker_def(name);
        let config_type = match def {
            Some(d) => d.ty,
            // Raft settings are Fjord's own and all integers.
            None if !matches!(RaftConfig::default().set(name, "1"), Err(RaftConfigError::Unknown(_))) => ConfigType::Long,
            None => ConfigType::Unknown,
        };
        let sensitive = config_type.is_sensitive() || is_secret(name);
        let default = |n: &str| broker_def(n).and_then(|d| d.default).map(str::to_string);
        let value = self.explicit.get(name).cloned().or_else(|| default(name)).filter(|_| !sensitive);
        let own = [name];
        let group = broker_synonyms(name).unwrap_or(&own);
        let synonyms = synonym_chain(name, group, |g| self.explicit.get(g).cloned(), default, sensitive);
        let source = source_of(&synonyms);
        ConfigEntry {
            name: name.to_string(),
            value,
            source,
            read_only: !is_dynamic(name),
            is_default: source == ConfigSource::DefaultConfig,
            sensitive,
            config_type,
            documentation: def.map(|d| d.doc.to_string()),
            synonyms,
        }
    }
}

/// The settings as given; `Debug` (and so any log of the config) shows
/// secrets as `[hidden]`.
#[derive(Clone, PartialEq)]
struct Explicit(BTreeMap<String, String>);

impl std::ops::Deref for Explicit {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for Explicit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |k: &String, v: &String| {
            if is_secret(k) || broker_def(k).is_some_and(|d| d.ty.is_sensitive()) { "[hidden]".to_string() } else { v.clone() }
        };
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, shown(k, v)))).finish()
    }
}

/// Keys that hold secrets though Fjord has no definition for them (TLS and
/// SASL settings, also under `listener.name.<l>.`, and the object store's
/// AWS keys under the remote storage prefix): Kafka (and Aiven's plugin)
/// type them PASSWORD, so DescribeConfigs never shows their values.
fn is_secret(name: &str) -> bool {
    name.contains("password")
        || name.ends_with("ssl.keystore.key")
        || name.ends_with("sasl.jaas.config")
        || name.ends_with("secret.access.key")
        || name.ends_with("access.key.id")
        || name.ends_with("session.token")
}

/// Reads a properties file. Java reads these files as ISO-8859-1; UTF-8 is
/// taken as such, anything else byte by byte as Latin-1.
fn read_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound { path: path.to_path_buf() },
        _ => ConfigError::Read { path: path.to_path_buf(), source },
    })?;
    let text = String::from_utf8(bytes).unwrap_or_else(|e| e.into_bytes().iter().map(|&b| char::from(b)).collect());
    properties::parse(&text).map_err(|source| ConfigError::Syntax { path: path.to_path_buf(), source })
}

/// Merges the pairs (later wins), checks every known value, hands `raft.*`
/// to `raft` and warns about unknown keys. Returns every key given, known
/// values normalized.
fn read_pairs(
    pairs: &[(String, String)],
    raft: &mut RaftConfig,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut merged = BTreeMap::new();
    for (k, v) in pairs {
        merged.insert(k.trim().to_string(), v.trim().to_string());
    }
    alias_node_id(&mut merged)?;
    let mut explicit = BTreeMap::new();
    for (key, value) in merged {
        if let Some(def) = broker_def(&key) {
            let parsed = def.parse(&value).map_err(|r| invalid(&key, &value, r.reason.short()))?;
            explicit.insert(key, parsed.to_kafka_string());
            continue;
        }
        if key.starts_with("raft.") {
            match raft.set(&key, &value) {
                Ok(()) => {}
                Err(RaftConfigError::Unknown(_)) => warnings.push(format!("unknown config key {key}, ignored")),
                Err(RaftConfigError::NotANumber { .. }) => return Err(invalid(&key, &value, "not a non-negative integer")),
                Err(RaftConfigError::Invalid(reason)) => return Err(invalid(&key, &value, reason)),
            }
        } else if key.is_empty() {
            warnings.push(format!("config entry without a key (value {value:?}), ignored"));
            continue;
        } else if is_known_unused(&key) {
            tracing::debug!(config = %key, "Kafka config not used by Fjord, ignored");
        } else {
            warnings.push(format!("unknown config key {key}, ignored"));
        }
        explicit.insert(key, value);
    }
    Ok(explicit)
}

/// `node.id` and `broker.id` name one setting (`KafkaConfig.populateSynonyms`).
fn alias_node_id(merged: &mut BTreeMap<String, String>) -> Result<(), ConfigError> {
    match (merged.get("node.id").cloned(), merged.get("broker.id").cloned()) {
        (Some(node), Some(broker)) if node != broker => {
            Err(ConfigError::Inconsistent(format!("node.id ({node}) and broker.id ({broker}) must be equal; set one of them")))
        }
        (Some(id), None) => {
            merged.insert("broker.id".into(), id);
            Ok(())
        }
        (None, Some(id)) => {
            merged.insert("node.id".into(), id);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Typed reads of checked settings: the value given, else the default.
pub(super) struct Settings<'a>(&'a BTreeMap<String, String>);

impl Settings<'_> {
    fn value(&self, name: &str) -> Option<Value> {
        let def = broker_def(name);
        debug_assert!(def.is_some(), "{name} is not in BROKER_DEFS");
        let def = def?;
        // Values given were checked by `read_pairs`; a failure here is a bad default.
        match self.0.get(name) {
            Some(v) => def.parse(v).ok(),
            None => def.default_value(),
        }
    }

    fn is_set(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn long(&self, name: &str) -> i64 {
        self.value(name).and_then(|v| v.as_i64()).unwrap_or_default()
    }

    fn int(&self, name: &str) -> i32 {
        i32::try_from(self.long(name)).unwrap_or_default()
    }

    fn bool(&self, name: &str) -> bool {
        matches!(self.value(name), Some(Value::Bool(true)))
    }

    fn text(&self, name: &str) -> Option<String> {
        self.value(name).map(|v| v.to_kafka_string())
    }

    pub(super) fn list(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(Value::List(items)) => items,
            _ => Vec::new(),
        }
    }
}

/// The listener settings, checked together.
struct Network {
    protocols: BTreeMap<String, SecurityProtocol>,
    controller_names: Vec<String>,
    listeners: Vec<Listener>,
    controller_listeners: Vec<Listener>,
    advertised: Vec<Listener>,
}

impl Network {
    fn read(s: &Settings<'_>, controller_only: bool) -> Result<Network, ConfigError> {
        let controller_names: Vec<String> = s
            .text("controller.listener.names")
            .unwrap_or_default()
            .split(',')
            .map(|n| n.trim().to_ascii_uppercase())
            .filter(|n| !n.is_empty())
            .collect();
        let listeners_text = s.text("listeners").unwrap_or_default();
        let protocols = protocol_map(s, &controller_names, &listeners_text)?;
        let all = parse_listeners("listeners", &listeners_text, &protocols, true)?;
        let (controller_listeners, listeners): (Vec<_>, Vec<_>) = all.into_iter().partition(|l| controller_names.contains(&l.name));
        if controller_only {
            if let Some(l) = listeners.first() {
                return Err(invalid(
                    "listeners",
                    &listeners_text,
                    format!("process.roles=controller serves only controller.listener.names, not {}", l.name),
                ));
            }
            if controller_listeners.is_empty() {
                return Err(invalid("listeners", &listeners_text, "a controller needs a listener named in controller.listener.names"));
            }
            return Ok(Network { protocols, controller_names, listeners, controller_listeners, advertised: Vec::new() });
        }
        if listeners.is_empty() {
            return Err(invalid(
                "listeners",
                &listeners_text,
                "no broker listener (every listener is a controller listener or none is given)",
            ));
        }
        let advertised = advertised(s, &protocols, &listeners, &controller_names)?;
        Ok(Network { protocols, controller_names, listeners, controller_listeners, advertised })
    }
}

/// `listener.security.protocol.map`. When it is not set, Kafka maps the
/// controller listener names to PLAINTEXT unless SSL or SASL is in use
/// (`KafkaConfig.effectiveListenerSecurityProtocolMap`).
fn protocol_map(s: &Settings<'_>, controller_names: &[String], listeners: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let key = "listener.security.protocol.map";
    let mut map = parse_protocol_map(key, &s.text(key).unwrap_or_default())?;
    if !s.is_set(key) {
        let listener_names = listeners.split(',').filter_map(|l| l.split_once("://")).map(|(n, _)| n.trim().to_ascii_uppercase());
        let mut names = controller_names.iter().cloned().chain(listener_names);
        let secure = names.any(|n| matches!(n.as_str(), "SSL" | "SASL_SSL" | "SASL_PLAINTEXT"));
        if !secure {
            for name in controller_names {
                map.entry(name.clone()).or_insert(SecurityProtocol::Plaintext);
            }
        }
    }
    Ok(map)
}

/// `advertised.listeners`, else `listeners`, as Kafka checks and resolves them.
fn advertised(
    s: &Settings<'_>,
    protocols: &BTreeMap<String, SecurityProtocol>,
    listeners: &[Listener],
    controller_names: &[String],
) -> Result<Vec<Listener>, ConfigError> {
    let (key, text, given) = match s.text("advertised.listeners") {
        Some(text) => ("advertised.listeners", text.clone(), parse_listeners("advertised.listeners", &text, protocols, false)?),
        None => ("listeners", s.text("listeners").unwrap_or_default(), listeners.to_vec()),
    };
    let mut out: Vec<Listener> = given.into_iter().filter(|l| !controller_names.contains(&l.name)).collect();
    if out.iter().any(|l| l.host == "0.0.0.0") {
        return Err(invalid(key, &text, "0.0.0.0 cannot be advertised to clients; set advertised.listeners to a routable address"));
    }
    if let Some(l) = out.iter().find(|a| !listeners.iter().any(|l| l.name == a.name)) {
        return Err(invalid(key, &text, format!("listener {} is not one of listeners", l.name)));
    }
    if out.iter().any(|l| l.host.is_empty()) {
        // Kafka's `ListenerInfo.withWildcardHostnamesResolved`.
        let host = local_hostname();
        out.iter_mut().filter(|l| l.host.is_empty()).for_each(|l| l.host = host.clone());
    }
    Ok(out)
}

/// This machine's name, for advertising a listener bound to every interface
/// (Kafka: `InetAddress.getLocalHost().getCanonicalHostName()`; Fjord takes
/// the kernel's hostname without a DNS round trip).
fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_string())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `log.dirs`, else `log.dir`; comma-separated, at least one.
fn log_dirs(s: &Settings<'_>) -> Result<Vec<PathBuf>, ConfigError> {
    let (key, text) = match s.text("log.dirs") {
        Some(dirs) => ("log.dirs", dirs),
        None => ("log.dir", s.text("log.dir").unwrap_or_default()),
    };
    let dirs: Vec<PathBuf> = text.split(',').map(str::trim).filter(|d| !d.is_empty()).map(PathBuf::from).collect();
    if dirs.is_empty() {
        return Err(invalid(key, &text, "at least one log directory is needed"));
    }
    Ok(dirs)
}

/// `host:port` or `[v6]:port`.
pub(super) fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest.split_once("]:")?;
            (host, port)
        }
        None => text.rsplit_once(':')?,
    };
    let port = port.parse::<u16>().ok()?;
    (!host.is_empty()).then_some((host, port))
}

fn host_port(key: &str, text: &str) -> Result<String, ConfigError> {
    split_host_port(text).map(|_| text.to_string()).ok_or_else(|| invalid(key, text, "expected host:port"))
}

/// A bind address: an IP and port, or a host name that resolves.
fn observability(s: &Settings) -> Result<super::observability::Observability, ConfigError> {
    use super::observability::{LogFormat, Observability};
    const KEY: &str = "metrics.listener";
    let metrics_listener = match s.text(KEY).filter(|v| !v.trim().is_empty()) {
        // An empty host binds every interface, as a listener's does.
        Some(v) if v.trim().starts_with(':') => Some(socket_addr(KEY, &format!("0.0.0.0{}", v.trim()))?),
        Some(v) => Some(socket_addr(KEY, v.trim())?),
        None => None,
    };
    let log_format = if s.text("tracing.format").as_deref() == Some("json") { LogFormat::Json } else { LogFormat::Text };
    let log_level = s.text("tracing.level").filter(|v| !v.trim().is_empty());
    if let Some(level) = &log_level {
        tracing_subscriber::EnvFilter::try_new(level).map_err(|e| invalid("tracing.level", level, e.to_string()))?;
    }
    Ok(Observability { metrics_listener, log_format, log_level })
}

fn socket_addr(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = split_host_port(text).ok_or_else(|| invalid(key, text, "expected host:port"))?;
    let resolved = (host, port).to_socket_addrs().map_err(|e| invalid(key, text, format!("cannot resolve {host}: {e}")))?;
    let mut resolved: Vec<SocketAddr> = resolved.collect();
    // Prefer IPv4, as `localhost` usually means 127.0.0.1 to Kafka users.
    resolved.sort_by_key(|a| !a.is_ipv4());
    resolved.into_iter().next().ok_or_else(|| invalid(key, text, format!("{host} resolves to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load(p: &[(&str, &str)]) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        BrokerConfig::from_pairs(&pairs(p))
    }

    fn ok(p: &[(&str, &str)]) -> BrokerConfig {
        let (config, warnings) = load(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        assert!(warnings.is_empty(), "{p:?}: {warnings:?}");
        config
    }

    #[test]
    fn defaults() {
        let c = ok(&[]);
        let plain = |host: &str, port| Listener {
            name: "PLAINTEXT".into(),
            host: host.into(),
            port,
            security_protocol: SecurityProtocol::Plaintext,
        };
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listeners, [plain("127.0.0.1", 9092)]);
        assert_eq!(c.advertised_listeners, c.listeners);
        let map: Vec<_> = c.listener_security_protocol_map.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        assert_eq!(map, ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT", "SASL_PLAINTEXT:SASL_PLAINTEXT", "SASL_SSL:SASL_SSL", "SSL:SSL"]);
        assert_eq!(c.log_dirs, [PathBuf::from("./data")]);
        assert_eq!((c.num_partitions, c.default_replication_factor), (1, 1));
        assert!(c.auto_create_topics_enable && c.delete_topic_enable);
        assert_eq!(
            (c.message_max_bytes, c.socket_request_max_bytes, c.queued_max_requests, c.fetch_max_bytes),
            (1048588, 104857600, 500, 57671680)
        );
        assert_eq!((c.broker_rack.as_deref(), c.cluster_id.as_deref()), (None, None));
        assert_eq!((c.raft.clone(), c.raft_listener, c.raft_advertised_listener.as_deref()), (RaftConfig::default(), None, None));
        assert!(c.process_roles.is_empty() && c.controller_quorum_voters.is_empty() && c.controller_listeners.is_empty());
        let l = &c.log;
        assert_eq!((l.segment_bytes, l.roll_ms, l.roll_jitter_ms), (1 << 30, 604_800_000, 0));
        assert_eq!((l.retention_ms, l.retention_bytes, l.retention_check_interval_ms), (604_800_000, -1, 300_000));
        assert_eq!((l.flush_interval_messages, l.flush_interval_ms), (i64::MAX, i64::MAX));
        assert_eq!((l.index_interval_bytes, l.index_size_max_bytes), (4096, 10 << 20));
        assert_eq!(l.cleanup_policy, ["delete"]);
        assert_eq!(l.message_timestamp_type, TimestampType::CreateTime);
        assert_eq!((l.message_timestamp_before_max_ms, l.message_timestamp_after_max_ms), (i64::MAX, 3_600_000));
        assert_eq!((l.compression_type.as_str(), l.min_insync_replicas, l.segment_delete_delay_ms), ("producer", 1, 60_000));
        assert_eq!((l.message_max_bytes, l.cleaner_min_cleanable_ratio, l.local_retention_ms), (1048588, 0.5, -2));
        assert!(c.explicit().is_empty());
    }

    #[test]
    fn values_are_read_and_normalized() {
        let c = ok(&[
            ("broker.id", "3"),
            ("num.partitions", " 6 "),
            ("auto.create.topics.enable", "FALSE"),
            ("log.dirs", "/a, /b,"),
            ("log.cleanup.policy", "compact , delete"),
            ("broker.rack", "r1"),
            ("cluster.id", "abc"),
            ("queued.max.requests", "7"),
            ("default.replication.factor", "3"),
        ]);
        assert_eq!((c.node_id, c.num_partitions, c.auto_create_topics_enable), (3, 6, false));
        assert_eq!(c.log_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(c.log.cleanup_policy, ["compact", "delete"]);
        assert_eq!((c.broker_rack.as_deref(), c.cluster_id.as_deref()), (Some("r1"), Some("abc")));
        assert_eq!((c.queued_max_requests, c.default_replication_factor), (7, 3));
        assert_eq!(c.explicit().get("node.id").map(String::as_str), Some("3"), "broker.id is node.id's alias");
        assert_eq!(c.explicit().get("num.partitions").map(String::as_str), Some("6"));
        assert_eq!(c.explicit().get("log.cleanup.policy").map(String::as_str), Some("compact,delete"));
        assert_eq!(ok(&[("log.dir", "/x")]).log_dirs, [PathBuf::from("/x")]);
        assert_eq!(ok(&[("log.dir", "/x"), ("log.dirs", "/y")]).log_dirs, [PathBuf::from("/y")]);
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            (&[("log.segment.bytes", "abc")][..], r#"invalid value "abc" for log.segment.bytes: not a number"#),
            (&[("log.segment.bytes", "1000")], r#"invalid value "1000" for log.segment.bytes: must be at least 1048576"#),
            (
                &[("log.segment.bytes", "3000000000")],
                r#"invalid value "3000000000" for log.segment.bytes: out of range for a 32-bit integer"#,
            ),
            (&[("num.partitions", "0")], r#"invalid value "0" for num.partitions: must be at least 1"#),
            (&[("delete.topic.enable", "yes")], r#"invalid value "yes" for delete.topic.enable: expected true or false"#),
            (
                &[("log.message.timestamp.type", "Create")],
                r#"invalid value "Create" for log.message.timestamp.type: must be one of: CreateTime, LogAppendTime"#,
            ),
            (
                &[("compression.type", "brotli")],
                r#"invalid value "brotli" for compression.type: must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"#,
            ),
            (&[("default.replication.factor", "40000")], r#"invalid value "40000" for default.replication.factor: must be at most 32767"#),
            (
                &[("log.retention.hours", "0")],
                r#"invalid value "0" for log.retention.hours: retention must be -1 (unlimited) or at least 1 ms"#,
            ),
            (
                &[("log.retention.ms", "0"), ("log.retention.hours", "5")],
                r#"invalid value "0" for log.retention.ms: retention must be -1 (unlimited) or at least 1 ms"#,
            ),
            (&[("log.roll.ms", "0")], r#"invalid value "0" for log.roll.ms: must be at least 1 (as topic config segment.ms)"#),
            (
                &[("log.flush.interval.ms", "-1")],
                r#"invalid value "-1" for log.flush.interval.ms: must be at least 0 (as topic config flush.ms)"#,
            ),
            (
                &[("listeners", "PLAINTEXT:/localhost:9092")],
                r#"invalid value "PLAINTEXT:/localhost:9092" for listeners: "PLAINTEXT:/localhost:9092" is not NAME://host:port"#,
            ),
            (
                &[("listeners", "FOO://:9092")],
                r#"invalid value "FOO://:9092" for listeners: no security protocol defined for listener FOO in listener.security.protocol.map"#,
            ),
            (
                &[("listener.security.protocol.map", "PLAINTEXT:TLS")],
                r#"invalid value "PLAINTEXT:TLS" for listener.security.protocol.map: unknown security protocol TLS"#,
            ),
            (&[("process.roles", "broker,voter")], r#"invalid value "broker,voter" for process.roles: must be one of: broker, controller"#),
            (
                &[("controller.quorum.voters", "1@h:9093,2-h:9093")],
                r#"invalid value "2-h:9093" for controller.quorum.voters: expected id@host:port"#,
            ),
            (
                &[("raft.heartbeat.interval.ms", "fast")],
                r#"invalid value "fast" for raft.heartbeat.interval.ms: not a non-negative integer"#,
            ),
            (&[("raft.listener", "nowhere")], r#"invalid value "nowhere" for raft.listener: expected host:port"#),
            (&[("log.dirs", " , ")], r#"invalid value "," for log.dirs: at least one log directory is needed"#),
            (&[("node.id", "1"), ("broker.id", "2")], "node.id (1) and broker.id (2) must be equal; set one of them"),
            (
                &[("raft.heartbeat.interval.ms", "2000")],
                "invalid raft settings: raft.election.timeout.ms must be at least 3 x raft.heartbeat.interval.ms",
            ),
            (
                &[("log.cleaner.min.compaction.lag.ms", "10"), ("log.cleaner.max.compaction.lag.ms", "5")],
                "log.cleaner.min.compaction.lag.ms (10) must not exceed log.cleaner.max.compaction.lag.ms (5)",
            ),
        ];
        for (p, want) in cases {
            let err = load(p).map(|_| ()).unwrap_err();
            assert_eq!(err.to_string(), want, "{p:?}");
        }
    }

    #[test]
    fn unknown_keys_warn_and_kafkas_unused_keys_do_not() {
        let (c, warnings) =
            load(&[("foo.bar", "1"), ("num.network.threads", "3"), ("zookeeper.connect", "zk:2181"), ("raft.nope", "1")]).unwrap();
        assert_eq!(warnings, ["unknown config key foo.bar, ignored", "unknown config key raft.nope, ignored"]);
        assert!(c.is_set("foo.bar") && c.is_set("num.network.threads"));
    }

    #[test]
    fn secrets_are_hidden_from_debug_and_describe() {
        let jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"s3cret\" user_a=\"s3cret\";";
        let c = ok(&[("listener.name.plaintext.plain.sasl.jaas.config", jaas), ("ssl.truststore.password", "s3cret")]);
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        for e in c.describe().iter().filter(|e| e.name.contains("jaas") || e.name.contains("password")) {
            assert!(e.sensitive && e.value.is_none(), "{e:?}");
        }
    }

    #[test]
    fn listeners_and_advertised_listeners() {
        let [key, chain] = super::super::ssl::TEST_KEYSTORE;
        let c = ok(&[("listeners", "PLAINTEXT://127.0.0.1:9092,SSL://:9093"), key, chain]);
        let got: Vec<_> = c.listeners.iter().map(|l| (l.name.as_str(), l.host.as_str(), l.port, l.security_protocol)).collect();
        assert_eq!(got, [("PLAINTEXT", "127.0.0.1", 9092, SecurityProtocol::Plaintext), ("SSL", "", 9093, SecurityProtocol::Ssl)]);
        assert_eq!(c.advertised_listeners[0].host, "127.0.0.1");
        assert!(!c.advertised_listeners[1].host.is_empty(), "an empty host advertises the hostname");
        assert_eq!(c.advertised_listeners[1].port, 9093);

        let c = ok(&[("listeners", "PLAINTEXT://0.0.0.0:9092"), ("advertised.listeners", "PLAINTEXT://broker1.example:19092")]);
        assert_eq!(c.advertised_listeners[0].host_port(), "broker1.example:19092");

        let c = ok(&[
            ("listeners", "INTERNAL://:9092,EXTERNAL://:9093"),
            ("listener.security.protocol.map", "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            key,
            chain,
        ]);
        assert_eq!(c.listeners[1].security_protocol, SecurityProtocol::SaslSsl);
        assert!(!c.listener_security_protocol_map.contains_key("SSL"), "an explicit map replaces the default");

        let bad = [
            (&[("listeners", "PLAINTEXT://0.0.0.0:9092")][..], "for listeners: 0.0.0.0 cannot be advertised"),
            (&[("advertised.listeners", "PLAINTEXT://0.0.0.0:9092")], "for advertised.listeners: 0.0.0.0 cannot be advertised"),
            (&[("advertised.listeners", "SSL://h:9093")], "for advertised.listeners: listener SSL is not one of listeners"),
            (&[("listeners", "PLAINTEXT://:9092,SSL://:9092")], "different port"),
            (&[("listeners", "CONTROLLER://:9093"), ("controller.listener.names", "CONTROLLER")], "no broker listener"),
        ];
        for (p, want) in bad {
            let err = load(p).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(want), "{p:?}: {err}");
        }
    }

    #[test]
    fn kafkas_stock_server_properties_load_quietly() {
        // Kafka 4.0's config/server.properties, comments dropped.
        let text = "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.bootstrap.servers=localhost:9093\n\
            listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=PLAINTEXT\n\
            advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\ncontroller.listener.names=CONTROLLER\n\
            listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
            num.network.threads=3\nnum.io.threads=8\nsocket.send.buffer.bytes=102400\nsocket.receive.buffer.bytes=102400\n\
            socket.request.max.bytes=104857600\nlog.dirs=/tmp/kraft-combined-logs\nnum.partitions=1\n\
            num.recovery.threads.per.data.dir=1\noffsets.topic.replication.factor=1\n\
            share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n\
            transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\nlog.retention.hours=168\n\
            log.segment.bytes=1073741824\nlog.retention.check.interval.ms=300000\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(&path, text).unwrap();
        let (c, warnings) = BrokerConfig::load(Some(&path), &pairs(&[("log.retention.hours", "24")])).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.listeners.iter().map(|l| l.to_string()).collect::<Vec<_>>(), ["PLAINTEXT://:9092"]);
        assert_eq!(c.controller_listeners.iter().map(|l| l.to_string()).collect::<Vec<_>>(), ["CONTROLLER://:9093"]);
        assert_eq!(c.advertised_listeners.iter().map(|l| l.to_string()).collect::<Vec<_>>(), ["PLAINTEXT://localhost:9092"]);
        assert_eq!(c.process_roles, [ProcessRole::Broker, ProcessRole::Controller]);
        assert_eq!(c.controller_quorum_bootstrap_servers, ["localhost:9093"]);
        assert_eq!(c.log.retention_ms, 24 * 3_600_000, "overrides win over the file");
        assert_eq!(c.log_dirs, [PathBuf::from("/tmp/kraft-combined-logs")]);
    }

    #[test]
    fn a_controller_only_node_has_no_client_listener() {
        // Kafka 4.0's config/controller.properties, with a static quorum.
        let base = [
            ("process.roles", "controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@localhost:9093,2@localhost:9193"),
            ("listeners", "CONTROLLER://:9093"),
            ("advertised.listeners", "CONTROLLER://localhost:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL"),
            ("log.dirs", "/tmp/kraft-controller-logs"),
        ];
        let c = ok(&base);
        assert!(!c.is_broker() && c.is_controller());
        assert!(c.listeners.is_empty() && c.advertised_listeners.is_empty(), "{:?}", c.listeners);
        assert_eq!(c.controller_listeners.iter().map(|l| l.to_string()).collect::<Vec<_>>(), ["CONTROLLER://:9093"]);
        assert_eq!(c.raft_listen_addr().port(), 9093);

        let with = |extra: &[(&'static str, &'static str)]| {
            let mut p = base.to_vec();
            p.extend_from_slice(extra);
            load(&p).map(|_| ()).unwrap_err().to_string()
        };
        let err = with(&[("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093")]);
        assert!(err.contains("process.roles=controller serves only controller.listener.names, not PLAINTEXT"), "{err}");
        let err = with(&[("node.id", "3")]);
        assert!(err.contains("node.id 3 must be one of controller.quorum.voters"), "{err}");
        let err = with(&[("controller.quorum.voters", "")]);
        assert!(err.contains("process.roles=controller needs controller.quorum.voters"), "{err}");
        let err = with(&[("controller.listener.names", "")]);
        assert!(err.contains("listeners"), "{err}");
    }

    #[test]
    fn load_reports_missing_and_malformed_files() {
        let err = BrokerConfig::load(Some(Path::new("/nonexistent/server.properties")), &[]).unwrap_err();
        assert_eq!(err.to_string(), "config file /nonexistent/server.properties does not exist");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.properties");
        std::fs::write(&path, "a=1\nb=\\u00zz\n").unwrap();
        let err = BrokerConfig::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(err.ends_with("bad.properties: line 2: malformed \\uxxxx encoding: \\u00zz"), "{err}");
    }

    #[test]
    fn raft_settings() {
        let c = ok(&[
            ("raft.heartbeat.interval.ms", "100"),
            ("raft.election.timeout.ms", "1000"),
            ("raft.transport.linger.ms", "5"),
            ("raft.listener", "127.0.0.1:19092"),
            ("raft.advertised.listener", "node1.example:19092"),
        ]);
        assert_eq!((c.raft.heartbeat_interval_ms, c.raft.election_timeout_ms, c.raft.linger_ms), (100, 1000, 5));
        assert_eq!(c.raft_listener, Some("127.0.0.1:19092".parse().unwrap()));
        assert_eq!(c.raft_listen_addr(), "127.0.0.1:19092".parse().unwrap());
        assert_eq!(c.raft_advertised_listener.as_deref(), Some("node1.example:19092"));
        assert_eq!(ok(&[]).raft_listen_addr(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(ok(&[("listeners", "PLAINTEXT://[::1]:9092")]).raft_listen_addr(), "[::1]:0".parse().unwrap());
        assert_eq!(ok(&[("raft.listener", "[::1]:7000")]).raft_listener, Some("[::1]:7000".parse().unwrap()));
    }

    fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn describe_reports_static_and_default_sources() {
        let (c, _) = load(&[
            ("log.retention.hours", "24"),
            ("num.partitions", "3"),
            ("ssl.keystore.password", "secret"),
            ("raft.transport.linger.ms", "10"),
        ])
        .unwrap();
        let all = c.describe();
        assert_eq!(all.len(), BROKER_DEFS.len() + 2);

        let e = entry(&all, "num.partitions");
        assert_eq!((e.value.as_deref(), e.source, e.is_default, e.read_only), (Some("3"), ConfigSource::StaticBrokerConfig, false, true));
        assert_eq!(e.config_type, ConfigType::Int);
        assert!(e.documentation.is_some());

        let e = entry(&all, "log.segment.bytes");
        assert_eq!(
            (e.value.as_deref(), e.source, e.is_default, e.read_only),
            (Some("1073741824"), ConfigSource::DefaultConfig, true, false)
        );

        let e = entry(&all, "log.retention.hours");
        let chain: Vec<_> = e.synonyms.iter().map(|s| (s.name.as_str(), s.value.as_deref(), s.source)).collect();
        assert_eq!(
            chain,
            [
                ("log.retention.hours", Some("24"), ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", Some("168"), ConfigSource::DefaultConfig)
            ]
        );
        let e = entry(&all, "log.retention.ms");
        assert_eq!((e.value.as_deref(), e.source, e.synonyms.len()), (None, ConfigSource::DefaultConfig, 0));

        let e = entry(&all, "ssl.keystore.password");
        assert_eq!(
            (e.value.as_deref(), e.sensitive, e.config_type, e.source),
            (None, true, ConfigType::Unknown, ConfigSource::StaticBrokerConfig)
        );
        assert!(e.synonyms.iter().all(|s| s.value.is_none()));

        let e = entry(&all, "raft.transport.linger.ms");
        assert_eq!((e.value.as_deref(), e.config_type, e.sensitive), (Some("10"), ConfigType::Long, false));

        let e = entry(&all, "advertised.listeners");
        assert_eq!((e.value.as_deref(), e.source), (None, ConfigSource::DefaultConfig));
    }
}
