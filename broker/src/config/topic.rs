//! Per-topic configs: Kafka 4.x's table (`LogConfig`), checked as its
//! controller checks them, resolved as its brokers resolve them (topic
//! override, else the broker synonym, else the default;
//! `ServerTopicConfigSynonyms`), and described as `ConfigHelper` describes them.
//!
//! A topic's overrides live in the cluster metadata; the partition manager
//! resolves a [`TopicConfig`] whenever they or the broker config change, and
//! hands each partition log [`TopicConfig::log_config`].

use std::collections::BTreeMap;

use super::broker::{BrokerConfig, ConfigError};
use super::broker_defs::{CLEANUP_POLICIES, COMPRESSION_TYPES, TIMESTAMP_TYPES, broker_def};
use super::def::{Check, Def, Value};
use super::describe::{ConfigEntry, ConfigSource, ConfigSynonym, ConfigType, source_of, synonym_chain};

/// What a topic sets explicitly: Kafka name to value as given.
pub type TopicOverrides = BTreeMap<String, String>;

/// How a broker synonym's value becomes the topic config's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Same,
    Minutes,
    Hours,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Synonym {
    pub name: &'static str,
    pub unit: Unit,
}

/// One topic config and its broker synonyms, highest priority first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicDef {
    pub def: Def,
    pub synonyms: &'static [Synonym],
}

const fn same(name: &'static str) -> Synonym {
    Synonym { name, unit: Unit::Same }
}

const fn topic(
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    check: Check,
    synonyms: &'static [Synonym],
    doc: &'static str,
) -> TopicDef {
    TopicDef { def: Def { name, ty, default: Some(default), check, doc }, synonyms }
}

const LONG_MAX: &str = "9223372036854775807";
const ANY: Check = Check::None;
use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// Kafka 4.x's topic configs (`LogConfig.CONFIG`), sorted by name.
pub(crate) const TOPIC_DEFS: &[TopicDef] = &[
    topic(
        "cleanup.policy",
        List,
        "delete",
        Check::ListOf(CLEANUP_POLICIES),
        &[same("log.cleanup.policy")],
        "Retention policy for old segments: delete (by time and size), compact (keep the latest value per key), or both, comma-separated.",
    ),
    topic(
        "compression.gzip.level",
        Int,
        "-1",
        Check::GzipLevel,
        &[same("compression.gzip.level")],
        "Compression level used when compression.type is gzip.",
    ),
    topic(
        "compression.lz4.level",
        Int,
        "9",
        Check::Between(1, 17),
        &[same("compression.lz4.level")],
        "Compression level used when compression.type is lz4.",
    ),
    topic(
        "compression.type",
        Str,
        "producer",
        Check::OneOf(COMPRESSION_TYPES),
        &[same("compression.type")],
        "Final compression of the topic's batches: gzip, snappy, lz4, zstd, uncompressed, or producer to keep what the producer used.",
    ),
    topic(
        "compression.zstd.level",
        Int,
        "3",
        Check::Between(-131072, 22),
        &[same("compression.zstd.level")],
        "Compression level used when compression.type is zstd.",
    ),
    topic(
        "delete.retention.ms",
        Long,
        "86400000",
        Check::AtLeast(0),
        &[same("log.cleaner.delete.retention.ms")],
        "How long delete tombstones are kept in a compacted topic.",
    ),
    topic(
        "file.delete.delay.ms",
        Long,
        "60000",
        Check::AtLeast(0),
        &[same("log.segment.delete.delay.ms")],
        "How long to wait before deleting a file from the filesystem.",
    ),
    topic(
        "flush.messages",
        Long,
        LONG_MAX,
        Check::AtLeast(1),
        &[same("log.flush.interval.messages")],
        "Force an fsync after this many records; the default never forces one and relies on replication.",
    ),
    topic(
        "flush.ms",
        Long,
        LONG_MAX,
        Check::AtLeast(0),
        &[same("log.flush.interval.ms"), same("log.flush.scheduler.interval.ms")],
        "Force an fsync when unflushed data is this old; the default never forces one.",
    ),
    topic(
        "follower.replication.throttled.replicas",
        List,
        "",
        Check::ThrottledReplicas,
        &[],
        "Replicas whose follower fetches are throttled: partitionId:brokerId,... or *.",
    ),
    topic(
        "index.interval.bytes",
        Int,
        "4096",
        Check::AtLeast(0),
        &[same("log.index.interval.bytes")],
        "How many log bytes between two offset index entries.",
    ),
    topic(
        "leader.replication.throttled.replicas",
        List,
        "",
        Check::ThrottledReplicas,
        &[],
        "Replicas whose leader side is throttled: partitionId:brokerId,... or *.",
    ),
    topic(
        "local.retention.bytes",
        Long,
        "-2",
        Check::AtLeast(-2),
        &[same("log.local.retention.bytes")],
        "Local size limit with tiered storage; -2 means retention.bytes.",
    ),
    topic(
        "local.retention.ms",
        Long,
        "-2",
        Check::AtLeast(-2),
        &[same("log.local.retention.ms")],
        "Local time limit with tiered storage; -2 means retention.ms.",
    ),
    topic(
        "max.compaction.lag.ms",
        Long,
        LONG_MAX,
        Check::AtLeast(1),
        &[same("log.cleaner.max.compaction.lag.ms")],
        "The longest a record may stay uncompacted in a compacted topic.",
    ),
    topic(
        "max.message.bytes",
        Int,
        "1048588",
        Check::AtLeast(0),
        &[same("message.max.bytes")],
        "The largest record batch accepted, after compression.",
    ),
    topic(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        Check::AtLeast(0),
        &[same("log.message.timestamp.after.max.ms")],
        "With CreateTime, how far ahead of the broker's clock a record timestamp may be.",
    ),
    topic(
        "message.timestamp.before.max.ms",
        Long,
        LONG_MAX,
        Check::AtLeast(0),
        &[same("log.message.timestamp.before.max.ms")],
        "With CreateTime, how far behind the broker's clock a record timestamp may be.",
    ),
    topic(
        "message.timestamp.type",
        Str,
        "CreateTime",
        Check::OneOf(TIMESTAMP_TYPES),
        &[same("log.message.timestamp.type")],
        "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
    ),
    topic(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Check::Between(0, 1),
        &[same("log.cleaner.min.cleanable.ratio")],
        "Share of uncompacted log at which compaction starts.",
    ),
    topic(
        "min.compaction.lag.ms",
        Long,
        "0",
        Check::AtLeast(0),
        &[same("log.cleaner.min.compaction.lag.ms")],
        "The least time a record stays uncompacted in a compacted topic.",
    ),
    topic(
        "min.insync.replicas",
        Int,
        "1",
        Check::AtLeast(1),
        &[same("min.insync.replicas")],
        "With acks=all, how many in-sync replicas must have a write for it to succeed.",
    ),
    topic("preallocate", Boolean, "false", ANY, &[same("log.preallocate")], "Preallocate the file of a new segment."),
    topic("remote.log.copy.disable", Boolean, "false", ANY, &[], "Stop copying this topic to tiered storage."),
    topic(
        "remote.log.delete.on.disable",
        Boolean,
        "false",
        ANY,
        &[],
        "Delete tiered data when tiered storage is turned off for this topic.",
    ),
    topic("remote.storage.enable", Boolean, "false", ANY, &[], "Tiered storage for this topic: rolled segments go to the object store."),
    topic(
        "retention.bytes",
        Long,
        "-1",
        ANY,
        &[same("log.retention.bytes")],
        "The most bytes a partition keeps before old segments are deleted; -1 is no limit.",
    ),
    topic(
        "retention.ms",
        Long,
        "604800000",
        Check::AtLeast(-1),
        &[
            same("log.retention.ms"),
            Synonym { name: "log.retention.minutes", unit: Unit::Minutes },
            Synonym { name: "log.retention.hours", unit: Unit::Hours },
        ],
        "How long data is kept before old segments are deleted; -1 keeps it forever.",
    ),
    topic(
        "segment.bytes",
        Int,
        "1073741824",
        Check::AtLeast(1 << 20),
        &[same("log.segment.bytes")],
        "Size at which a segment file is rolled.",
    ),
    topic(
        "segment.index.bytes",
        Int,
        "10485760",
        Check::AtLeast(4),
        &[same("log.index.size.max.bytes")],
        "Size of a segment's offset index.",
    ),
    topic(
        "segment.jitter.ms",
        Long,
        "0",
        Check::AtLeast(0),
        &[same("log.roll.jitter.ms"), Synonym { name: "log.roll.jitter.hours", unit: Unit::Hours }],
        "Largest random jitter subtracted from segment.ms.",
    ),
    topic(
        "segment.ms",
        Long,
        "604800000",
        Check::AtLeast(1),
        &[same("log.roll.ms"), Synonym { name: "log.roll.hours", unit: Unit::Hours }],
        "Age at which a segment is rolled even if not full.",
    ),
    topic(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        ANY,
        &[same("unclean.leader.election.enable")],
        "Allow a replica outside the ISR to become leader, losing data.",
    ),
];

fn topic_def(name: &str) -> Option<&'static TopicDef> {
    TOPIC_DEFS.binary_search_by(|d| d.def.name.cmp(name)).ok().map(|i| &TOPIC_DEFS[i])
}

/// Every topic config name Kafka 4.x knows, sorted.
pub fn topic_config_names() -> impl Iterator<Item = &'static str> {
    TOPIC_DEFS.iter().map(|d| d.def.name)
}

/// The type of topic config `name`, `None` if Kafka does not define it.
pub fn topic_config_type(name: &str) -> Option<ConfigType> {
    topic_def(name).map(|d| d.def.ty)
}

/// Kafka's default of topic config `name` as text (before any broker
/// synonym), `None` if Kafka does not define it.
pub fn topic_config_default(name: &str) -> Option<&'static str> {
    topic_def(name).and_then(|d| d.def.default)
}

/// Why a topic's configs were refused. Both map to INVALID_CONFIG (40) with
/// this text as the error message, as Kafka's controller answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    /// A name Kafka's `LogConfig` does not define.
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    /// A value that does not parse, fails its validator, or conflicts with another.
    #[error("{message}")]
    Invalid { name: String, message: String },
}

impl TopicConfigError {
    /// The config at fault.
    pub fn name(&self) -> &str {
        match self {
            TopicConfigError::Unknown(name) | TopicConfigError::Invalid { name, .. } => name,
        }
    }
}

/// Checks names and values as Kafka's controller does for CreateTopics and
/// (Incremental)AlterConfigs; settings the topic does not make take Kafka's
/// defaults for the cross-checks. See [`validate_for`] to use this broker's.
pub fn validate(overrides: &TopicOverrides) -> Result<(), TopicConfigError> {
    validate_with(overrides, false, |d| d.def.default.map(str::to_string))
}

/// [`validate`], with settings the topic does not make taken from `broker`
/// (as Kafka merges `KafkaConfig.extractLogConfigMap` in).
pub fn validate_for(broker: &BrokerConfig, overrides: &TopicOverrides) -> Result<(), TopicConfigError> {
    let tiered = broker.remote_log_storage.is_some();
    validate_with(overrides, tiered, |d| inherited(broker.explicit(), d).or_else(|| d.def.default.map(str::to_string)))
}

fn validate_with(
    overrides: &TopicOverrides,
    tiered_storage: bool,
    fallback: impl Fn(&TopicDef) -> Option<String>,
) -> Result<(), TopicConfigError> {
    // Kafka checks every name before any value (`LogConfig.validateNames`).
    if let Some(name) = overrides.keys().find(|n| topic_def(n).is_none()) {
        return Err(TopicConfigError::Unknown(name.clone()));
    }
    let mut parsed: BTreeMap<&str, Value> = BTreeMap::new();
    for (name, raw) in overrides {
        let d = topic_def(name).ok_or_else(|| TopicConfigError::Unknown(name.clone()))?;
        let value = d.def.parse(raw).map_err(|r| TopicConfigError::Invalid {
            name: name.clone(),
            message: format!("Invalid value {} for configuration {}: {}", r.shown, name, r.reason.kafka()),
        })?;
        parsed.insert(d.def.name, value);
    }
    let effective = |name: &str| -> Option<Value> {
        let d = topic_def(name)?;
        parsed.get(name).cloned().or_else(|| fallback(d).and_then(|raw| d.def.parse(&raw).ok()))
    };
    check_combination(&effective, tiered_storage)
}

/// Kafka's `LogConfig.validateValues` and, for topics in tiered storage,
/// `validateRemoteStorageOnlyIfSystemEnabled`,
/// `validateNoRemoteStorageForCompactedTopic` and
/// `validateRemoteStorageRetentionSize`/`Time`. `tiered_storage`:
/// `remote.log.storage.system.enable`.
fn check_combination(effective: &impl Fn(&str) -> Option<Value>, tiered_storage: bool) -> Result<(), TopicConfigError> {
    let long = |n: &str| effective(n).and_then(|v| v.as_i64());
    if let (Some(min), Some(max)) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"))
        && min > max
    {
        return Err(TopicConfigError::Invalid {
            name: "min.compaction.lag.ms".into(),
            message: format!("conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"),
        });
    }
    if effective("remote.storage.enable") != Some(Value::Bool(true)) {
        return Ok(());
    }
    let invalid = |name: &str, message: String| Err(TopicConfigError::Invalid { name: name.into(), message });
    if !tiered_storage {
        return invalid(
            "remote.storage.enable",
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.".into(),
        );
    }
    if let Some(Value::List(policy)) = effective("cleanup.policy")
        && policy.iter().any(|p| p == "compact")
    {
        return invalid("cleanup.policy", "Remote log storage only supported for topics with cleanup.policy=delete".into());
    }
    for (total, local) in [("retention.bytes", "local.retention.bytes"), ("retention.ms", "local.retention.ms")] {
        let (Some(t), Some(l)) = (long(total), long(local)) else { continue };
        if t <= -1 || l == -2 {
            continue;
        }
        if l == -1 {
            return invalid(
                local,
                format!("Invalid value -1 for configuration {local}: Value must not be -1 as {total} value is set as {t}."),
            );
        }
        if l > t {
            return invalid(
                local,
                format!("Invalid value {l} for configuration {local}: Value must not be more than {total} property value: {t}"),
            );
        }
    }
    Ok(())
}

/// The value a topic inherits from the broker (`KafkaConfig.extractLogConfigMap`),
/// in the topic config's units; `None` if the config has no broker synonym.
pub(crate) fn inherited(explicit: &BTreeMap<String, String>, d: &TopicDef) -> Option<String> {
    inherited_from(explicit, d).map(|(value, _)| value)
}

/// [`inherited`], with the broker setting it came from.
fn inherited_from(explicit: &BTreeMap<String, String>, d: &TopicDef) -> Option<(String, Synonym)> {
    let set = d.synonyms.iter().find_map(|s| explicit.get(s.name).map(|v| (v.clone(), *s)));
    let (raw, syn) = set.or_else(|| d.synonyms.iter().find_map(|s| broker_def(s.name)?.default.map(|v| (v.to_string(), *s))))?;
    let scale = match syn.unit {
        Unit::Same => return Some((raw, syn)),
        Unit::Minutes => 60_000,
        Unit::Hours => 3_600_000,
    };
    let ms = raw.trim().parse::<i64>().ok()?.saturating_mul(scale);
    // `KafkaConfig.logRetentionTimeMillis`: any negative retention is "forever".
    let ms = if d.def.name == "retention.ms" && ms < 0 { -1 } else { ms };
    Some((ms.to_string(), syn))
}

/// Broker-level checks of the values topics inherit: each must be a valid
/// value of its topic config (`log.roll.ms=0` is not a valid `segment.ms`),
/// and the broker's retention must be -1 or at least 1 ms, as `KafkaConfig` requires.
pub(crate) fn check_inherited(explicit: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for d in TOPIC_DEFS {
        let Some((value, syn)) = inherited_from(explicit, d) else { continue };
        let blame = |reason: String| ConfigError::InvalidValue {
            key: syn.name.to_string(),
            value: explicit.get(syn.name).cloned().unwrap_or_default(),
            reason,
        };
        if let Err(r) = d.def.parse(&value) {
            return Err(blame(format!("{} (as topic config {})", r.reason.short(), d.def.name)));
        }
        if d.def.name == "retention.ms" && value == "0" {
            return Err(blame("retention must be -1 (unlimited) or at least 1 ms".into()));
        }
    }
    let min = inherited(explicit, topic_def("min.compaction.lag.ms").expect("in TOPIC_DEFS"));
    let max = inherited(explicit, topic_def("max.compaction.lag.ms").expect("in TOPIC_DEFS"));
    if let (Some(min), Some(max)) = (min.and_then(|v| v.parse::<i64>().ok()), max.and_then(|v| v.parse::<i64>().ok()))
        && min > max
    {
        return Err(ConfigError::Inconsistent(format!(
            "log.cleaner.min.compaction.lag.ms ({min}) must not exceed log.cleaner.max.compaction.lag.ms ({max})"
        )));
    }
    Ok(())
}

/// Kafka's `TimestampType` of a topic (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's config spelling.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// The effective settings of one topic. Built by [`TopicConfig::resolve`];
/// immutable once built (a config change builds a new one). Field names are
/// the Kafka names with `_` for `.`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub cleanup_policy: Vec<String>,
    pub compression_type: String,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
    pub delete_retention_ms: i64,
    pub file_delete_delay_ms: i64,
    /// `i64::MAX` = never force an fsync.
    pub flush_messages: i64,
    /// `i64::MAX` = never force an fsync.
    pub flush_ms: i64,
    pub follower_replication_throttled_replicas: Vec<String>,
    pub index_interval_bytes: i32,
    pub leader_replication_throttled_replicas: Vec<String>,
    /// -2 = use `retention_bytes`.
    pub local_retention_bytes: i64,
    /// -2 = use `retention_ms`.
    pub local_retention_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub max_message_bytes: i32,
    pub message_timestamp_after_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_type: TimestampType,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub min_insync_replicas: i32,
    pub preallocate: bool,
    pub remote_log_copy_disable: bool,
    pub remote_log_delete_on_disable: bool,
    pub remote_storage_enable: bool,
    /// Negative = no size limit.
    pub retention_bytes: i64,
    /// -1 = keep forever.
    pub retention_ms: i64,
    pub segment_bytes: i32,
    pub segment_index_bytes: i32,
    pub segment_jitter_ms: i64,
    pub segment_ms: i64,
    pub unclean_leader_election_enable: bool,
}

/// Kafka's topic defaults, as a broker without settings of its own gives them.
impl Default for TopicConfig {
    fn default() -> Self {
        Self::build(|d| d.def.default.map(str::to_string))
    }
}

impl TopicConfig {
    /// The effective settings: the topic's override, else the broker's
    /// synonym (set or default), else Kafka's default. Overrides should have
    /// passed [`validate`]; one that does not parse is ignored with a warning.
    pub fn resolve(broker: &BrokerConfig, overrides: &TopicOverrides) -> TopicConfig {
        Self::resolve_explicit(broker.explicit(), overrides)
    }

    pub(crate) fn resolve_explicit(explicit: &BTreeMap<String, String>, overrides: &TopicOverrides) -> TopicConfig {
        Self::build(|d| effective_value(explicit, overrides, d))
    }

    fn build(value_of: impl Fn(&TopicDef) -> Option<String>) -> TopicConfig {
        let mut config = Self::zero();
        for d in TOPIC_DEFS {
            let parsed = value_of(d).and_then(|raw| d.def.parse(&raw).ok()).or_else(|| d.def.default_value());
            if let Some(value) = parsed {
                config.set(d.def.name, value);
            }
        }
        config
    }

    /// Placeholder values, every one overwritten by `build`.
    fn zero() -> TopicConfig {
        TopicConfig {
            cleanup_policy: Vec::new(),
            compression_type: String::new(),
            compression_gzip_level: 0,
            compression_lz4_level: 0,
            compression_zstd_level: 0,
            delete_retention_ms: 0,
            file_delete_delay_ms: 0,
            flush_messages: 0,
            flush_ms: 0,
            follower_replication_throttled_replicas: Vec::new(),
            index_interval_bytes: 0,
            leader_replication_throttled_replicas: Vec::new(),
            local_retention_bytes: 0,
            local_retention_ms: 0,
            max_compaction_lag_ms: 0,
            max_message_bytes: 0,
            message_timestamp_after_max_ms: 0,
            message_timestamp_before_max_ms: 0,
            message_timestamp_type: TimestampType::CreateTime,
            min_cleanable_dirty_ratio: 0.0,
            min_compaction_lag_ms: 0,
            min_insync_replicas: 0,
            preallocate: false,
            remote_log_copy_disable: false,
            remote_log_delete_on_disable: false,
            remote_storage_enable: false,
            retention_bytes: 0,
            retention_ms: 0,
            segment_bytes: 0,
            segment_index_bytes: 0,
            segment_jitter_ms: 0,
            segment_ms: 0,
            unclean_leader_election_enable: false,
        }
    }

    /// Stores one parsed value; the value's type is the def's, checked by the parse.
    fn set(&mut self, name: &str, value: Value) {
        let int = |v: &Value| v.as_i64().unwrap_or_default();
        let int32 = |v: &Value| i32::try_from(int(v)).unwrap_or_default();
        let flag = |v: &Value| matches!(v, Value::Bool(true));
        let list = |v: Value| if let Value::List(l) = v { l } else { Vec::new() };
        let text = |v: Value| v.to_kafka_string();
        match name {
            "cleanup.policy" => self.cleanup_policy = list(value),
            "compression.gzip.level" => self.compression_gzip_level = int32(&value),
            "compression.lz4.level" => self.compression_lz4_level = int32(&value),
            "compression.type" => self.compression_type = text(value),
            "compression.zstd.level" => self.compression_zstd_level = int32(&value),
            "delete.retention.ms" => self.delete_retention_ms = int(&value),
            "file.delete.delay.ms" => self.file_delete_delay_ms = int(&value),
            "flush.messages" => self.flush_messages = int(&value),
            "flush.ms" => self.flush_ms = int(&value),
            "follower.replication.throttled.replicas" => self.follower_replication_throttled_replicas = list(value),
            "index.interval.bytes" => self.index_interval_bytes = int32(&value),
            "leader.replication.throttled.replicas" => self.leader_replication_throttled_replicas = list(value),
            "local.retention.bytes" => self.local_retention_bytes = int(&value),
            "local.retention.ms" => self.local_retention_ms = int(&value),
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = int(&value),
            "max.message.bytes" => self.max_message_bytes = int32(&value),
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms = int(&value),
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms = int(&value),
            "message.timestamp.type" => {
                let log_append = matches!(&value, Value::Str(s) if s == "LogAppendTime");
                self.message_timestamp_type = if log_append { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
            }
            "min.cleanable.dirty.ratio" => self.min_cleanable_dirty_ratio = if let Value::Double(d) = value { d } else { 0.5 },
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = int(&value),
            "min.insync.replicas" => self.min_insync_replicas = int32(&value),
            "preallocate" => self.preallocate = flag(&value),
            "remote.log.copy.disable" => self.remote_log_copy_disable = flag(&value),
            "remote.log.delete.on.disable" => self.remote_log_delete_on_disable = flag(&value),
            "remote.storage.enable" => self.remote_storage_enable = flag(&value),
            "retention.bytes" => self.retention_bytes = int(&value),
            "retention.ms" => self.retention_ms = int(&value),
            "segment.bytes" => self.segment_bytes = int32(&value),
            "segment.index.bytes" => self.segment_index_bytes = int32(&value),
            "segment.jitter.ms" => self.segment_jitter_ms = int(&value),
            "segment.ms" => self.segment_ms = int(&value),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable = flag(&value),
            other => debug_assert!(false, "topic config {other} has no field"),
        }
    }

    /// `cleanup.policy` contains `compact` (compared case-insensitively, as Kafka does).
    pub fn is_compact(&self) -> bool {
        self.cleanup_policy.iter().any(|p| p.eq_ignore_ascii_case("compact"))
    }

    /// `cleanup.policy` contains `delete`: retention applies.
    pub fn is_delete(&self) -> bool {
        self.cleanup_policy.iter().any(|p| p.eq_ignore_ascii_case("delete"))
    }

    /// Kafka's `LogConfig.maxSegmentMs`: a compacted topic also rolls by
    /// `max.compaction.lag.ms`, so no record waits longer than that to become cleanable.
    pub fn max_segment_ms(&self) -> i64 {
        if self.is_compact() && self.max_compaction_lag_ms > 0 { self.max_compaction_lag_ms.min(self.segment_ms) } else { self.segment_ms }
    }

    /// The settings of the partition logs, with Kafka's "never" values
    /// (retention -1, flush `Long.MAX_VALUE`) as `None`. Retention applies
    /// only under the `delete` policy.
    /// What deletes local data: with tiered storage the `local.retention.*`
    /// settings (-2: the total ones), else the total `retention.*`. Local
    /// deletion of a tiered topic also waits for the upload (the caller
    /// bounds retention by what is uploaded).
    pub fn local_retention_ms(&self) -> i64 {
        if self.remote_storage_enable && self.local_retention_ms != -2 { self.local_retention_ms } else { self.retention_ms }
    }

    /// See [`TopicConfig::local_retention_ms`].
    pub fn local_retention_bytes(&self) -> i64 {
        if self.remote_storage_enable && self.local_retention_bytes != -2 { self.local_retention_bytes } else { self.retention_bytes }
    }

    pub fn log_config(&self) -> fjord_storage::LogConfig {
        let never = |v: i64| v == i64::MAX;
        let delete = self.is_delete();
        let config = fjord_storage::LogConfig {
            segment_bytes: u64::try_from(self.segment_bytes).unwrap_or(1 << 20),
            segment_ms: self.max_segment_ms(),
            // Kafka's 0 means an index entry for every batch; the log needs at least 1.
            index_interval_bytes: u64::try_from(self.index_interval_bytes).unwrap_or(0).max(1),
            retention_ms: (delete && self.local_retention_ms() >= 0).then_some(self.local_retention_ms()),
            retention_bytes: u64::try_from(self.local_retention_bytes()).ok().filter(|_| delete),
            flush_messages: (!never(self.flush_messages)).then(|| u64::try_from(self.flush_messages).unwrap_or(1).max(1)),
            flush_ms: (!never(self.flush_ms)).then_some(self.flush_ms.max(0)),
            // Kafka's durability unless every message is to be synced
            // (flush.messages=1): acknowledged from the page cache, synced
            // by flush.messages/flush.ms and on roll. Replication, not fsync,
            // is what keeps acknowledged data, as in Kafka.
            write_cache: self.flush_messages != 1,
            ..fjord_storage::LogConfig::default()
        };
        debug_assert!(config.validate().is_ok(), "{config:?} from {self:?}");
        config
    }
}

/// A topic config's value: override if valid, else inherited, else default.
fn effective_value(explicit: &BTreeMap<String, String>, overrides: &TopicOverrides, d: &TopicDef) -> Option<String> {
    override_value(overrides, d).or_else(|| inherited(explicit, d)).or_else(|| d.def.default.map(str::to_string))
}

/// The topic's own setting, normalized as Kafka prints it; an invalid one is ignored.
fn override_value(overrides: &TopicOverrides, d: &TopicDef) -> Option<String> {
    let raw = overrides.get(d.def.name)?;
    match d.def.parse(raw) {
        Ok(v) => Some(v.to_kafka_string()),
        Err(r) => {
            tracing::warn!(config = d.def.name, value = %raw, "ignoring invalid topic config: {}", r.reason.short());
            None
        }
    }
}

/// DescribeConfigs(TOPIC): every topic config, as `ConfigHelper.createTopicConfigEntry` builds it.
pub fn describe_topic(broker: &BrokerConfig, overrides: &TopicOverrides, include_synonyms: bool) -> Vec<ConfigEntry> {
    let explicit = broker.explicit();
    TOPIC_DEFS
        .iter()
        .map(|d| {
            let own = override_value(overrides, d);
            let value = effective_value(explicit, overrides, d);
            let mut chain = match d.synonyms.first() {
                Some(first) => {
                    let group: Vec<&str> = d.synonyms.iter().map(|s| s.name).collect();
                    let set = |g: &str| explicit.get(g).cloned();
                    let default = |g: &str| broker_def(g).and_then(|b| b.default).map(str::to_string);
                    synonym_chain(first.name, &group, set, default, false)
                }
                None => Vec::new(),
            };
            if let Some(own) = own {
                chain.insert(0, ConfigSynonym { name: d.def.name.to_string(), value: Some(own), source: ConfigSource::TopicConfig });
            }
            let source = source_of(&chain);
            ConfigEntry {
                name: d.def.name.to_string(),
                value,
                source,
                read_only: false,
                is_default: source == ConfigSource::DefaultConfig,
                sensitive: false,
                config_type: d.def.ty,
                documentation: Some(d.def.doc.to_string()),
                synonyms: if include_synonyms { chain } else { Vec::new() },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn overrides(pairs: &[(&str, &str)]) -> TopicOverrides {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn broker(pairs: &[(&str, &str)]) -> BrokerConfig {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        BrokerConfig::from_pairs(&pairs).unwrap().0
    }

    #[test]
    fn table_is_kafkas() {
        assert!(TOPIC_DEFS.windows(2).all(|w| w[0].def.name < w[1].def.name), "TOPIC_DEFS must stay sorted");
        assert_eq!(TOPIC_DEFS.len(), 33, "Kafka 4.x defines 33 topic configs");
        assert!(topic_def("message.downconversion.enable").is_none(), "removed in 4.0");
        assert_eq!(topic_config_type("cleanup.policy"), Some(ConfigType::List));
        assert_eq!(topic_config_default("leader.replication.throttled.replicas"), Some(""));
        assert_eq!((topic_config_type("nope"), topic_config_default("nope")), (None, None));
        for d in TOPIC_DEFS {
            assert!(d.def.default_value().is_some(), "{}", d.def.name);
            assert!(d.def.parse(d.def.default.unwrap()).is_ok(), "{}", d.def.name);
            for s in d.synonyms {
                assert!(broker_def(s.name).is_some(), "{} synonym {} is not a broker config", d.def.name, s.name);
            }
        }
    }

    #[test]
    fn validate_is_kafkas() {
        let cases: &[(Pairs, Option<&str>)] = &[
            (&[("retention.ms", "-1"), ("segment.bytes", "1048576"), ("cleanup.policy", "compact,delete")], None),
            (&[("cleanup.policy", "delete, compact")], None),
            (&[("cleanup.policy", "")], None),
            (&[("min.cleanable.dirty.ratio", "0.1"), ("max.message.bytes", "0")], None),
            (&[("leader.replication.throttled.replicas", "0:1,1:2"), ("follower.replication.throttled.replicas", "*")], None),
            (&[("retention.ms", "1"), ("no.such.config", "1")], Some("Unknown topic config name: no.such.config")),
            (&[("retention.ms", "abc")], Some("Invalid value abc for configuration retention.ms: Not a number of type LONG")),
            (&[("retention.ms", "-2")], Some("Invalid value -2 for configuration retention.ms: Value must be at least -1")),
            (
                &[("segment.bytes", "1048575")],
                Some("Invalid value 1048575 for configuration segment.bytes: Value must be at least 1048576"),
            ),
            (
                &[("segment.bytes", "2147483648")],
                Some("Invalid value 2147483648 for configuration segment.bytes: Not a number of type INT"),
            ),
            (
                &[("cleanup.policy", "delete,purge")],
                Some("Invalid value purge for configuration cleanup.policy: String must be one of: compact, delete"),
            ),
            (
                &[("cleanup.policy", "Delete")],
                Some("Invalid value Delete for configuration cleanup.policy: String must be one of: compact, delete"),
            ),
            (
                &[("compression.type", "brotli")],
                Some(
                    "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
                ),
            ),
            (
                &[("message.timestamp.type", "createtime")],
                Some("Invalid value createtime for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"),
            ),
            (&[("preallocate", "yes")], Some("Invalid value yes for configuration preallocate: Expected value to be either true or false")),
            (&[("min.insync.replicas", "0")], Some("Invalid value 0 for configuration min.insync.replicas: Value must be at least 1")),
            (
                &[("min.cleanable.dirty.ratio", "1.5")],
                Some("Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
            ),
            (
                &[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")],
                Some("conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"),
            ),
            (
                &[("remote.storage.enable", "true")],
                Some("Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."),
            ),
            (&[("remote.storage.enable", "false"), ("local.retention.ms", "-1")], None),
        ];
        for (pairs, want) in cases {
            let got = validate(&overrides(pairs)).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), *want, "{pairs:?}");
        }
        let err = validate(&overrides(&[("flush.ms", "x")])).unwrap_err();
        assert_eq!(err.name(), "flush.ms");
    }

    #[test]
    fn tiered_topics_are_checked_as_kafka_checks_them() {
        let on = broker(&[("remote.log.storage.system.enable", "true")]);
        let check = |pairs: &[(&str, &str)]| validate_for(&on, &overrides(pairs)).err().map(|e| e.to_string());
        assert_eq!(check(&[("remote.storage.enable", "true"), ("local.retention.ms", "1000")]), None);
        assert_eq!(check(&[("remote.storage.enable", "true"), ("retention.bytes", "100"), ("local.retention.bytes", "-2")]), None);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("remote.storage.enable", "true"), ("cleanup.policy", "compact")], "only supported for topics with cleanup.policy=delete"),
            (
                &[("remote.storage.enable", "true"), ("retention.ms", "1000"), ("local.retention.ms", "2000")],
                "Invalid value 2000 for configuration local.retention.ms: Value must not be more than retention.ms property value: 1000",
            ),
            (
                &[("remote.storage.enable", "true"), ("retention.bytes", "10"), ("local.retention.bytes", "-1")],
                "Value must not be -1 as retention.bytes value is set as 10.",
            ),
        ];
        for (pairs, want) in cases {
            let got = check(pairs).unwrap_or_default();
            assert!(got.contains(want), "{pairs:?}: {got}");
        }
        let off = broker(&[]);
        assert!(validate_for(&off, &overrides(&[("remote.storage.enable", "true")])).is_err());
    }

    #[test]
    fn validate_for_uses_the_brokers_settings_in_cross_checks() {
        let b = broker(&[("log.cleaner.max.compaction.lag.ms", "100")]);
        let o = overrides(&[("min.compaction.lag.ms", "500")]);
        assert!(validate(&o).is_ok());
        assert!(validate_for(&b, &o).is_err());
    }

    #[test]
    fn resolve_takes_override_then_broker_then_default() {
        let b = broker(&[("log.retention.hours", "24"), ("log.segment.bytes", "2097152"), ("message.max.bytes", "2000000")]);
        let c = TopicConfig::resolve(&b, &overrides(&[("segment.bytes", "4194304"), ("cleanup.policy", "compact")]));
        assert_eq!(c.segment_bytes, 4 << 20, "override");
        assert_eq!(c.retention_ms, 24 * 3_600_000, "broker synonym, converted");
        assert_eq!(c.max_message_bytes, 2_000_000, "message.max.bytes is max.message.bytes' synonym");
        assert_eq!(c.cleanup_policy, ["compact"]);
        assert!(c.is_compact() && !c.is_delete());
        assert_eq!(c.min_cleanable_dirty_ratio, 0.5, "default");
        assert_eq!(c.message_timestamp_after_max_ms, 3_600_000);
        assert_eq!((c.flush_messages, c.flush_ms), (i64::MAX, i64::MAX));
        assert_eq!(c.local_retention_ms, -2);
        assert_eq!(TopicConfig::default(), TopicConfig::resolve(&broker(&[]), &TopicOverrides::new()));
        // An invalid override (validate would have refused it) falls back.
        let c = TopicConfig::resolve(&b, &overrides(&[("retention.ms", "soon")]));
        assert_eq!(c.retention_ms, 24 * 3_600_000);
    }

    #[test]
    fn retention_synonyms_ms_over_minutes_over_hours() {
        let cases: &[(Pairs, i64)] = &[
            (&[], 7 * 24 * 3_600_000),
            (&[("log.retention.hours", "1")], 3_600_000),
            (&[("log.retention.hours", "1"), ("log.retention.minutes", "2")], 120_000),
            (&[("log.retention.hours", "1"), ("log.retention.minutes", "2"), ("log.retention.ms", "3")], 3),
            (&[("log.retention.ms", "-1"), ("log.retention.hours", "1")], -1),
            (&[("log.retention.hours", "-1")], -1),
            (&[("log.retention.minutes", "-5")], -1),
        ];
        for (pairs, want) in cases {
            let c = TopicConfig::resolve(&broker(pairs), &TopicOverrides::new());
            assert_eq!(c.retention_ms, *want, "{pairs:?}");
        }
        let c = TopicConfig::resolve(&broker(&[("log.roll.hours", "2"), ("log.flush.scheduler.interval.ms", "7")]), &TopicOverrides::new());
        assert_eq!((c.segment_ms, c.flush_ms), (7_200_000, 7));
        let c = TopicConfig::resolve(&broker(&[("log.roll.ms", "5"), ("log.roll.hours", "2")]), &TopicOverrides::new());
        assert_eq!(c.segment_ms, 5);
    }

    #[test]
    fn log_config_maps_kafkas_never_to_none() {
        let l = TopicConfig::default().log_config();
        assert_eq!(l, fjord_storage::LogConfig { write_cache: true, ..Default::default() }, "Kafka's defaults are the log's");
        let c = TopicConfig::resolve(
            &broker(&[]),
            &overrides(&[
                ("retention.ms", "-1"),
                ("retention.bytes", "1000"),
                ("flush.messages", "1"),
                ("flush.ms", "0"),
                ("index.interval.bytes", "0"),
            ]),
        );
        let l = c.log_config();
        assert_eq!((l.retention_ms, l.retention_bytes, l.flush_messages, l.flush_ms), (None, Some(1000), Some(1), Some(0)));
        assert_eq!(l.index_interval_bytes, 1);
        assert!(!l.write_cache, "flush.messages=1 syncs every append");
        let every_1000 = TopicConfig::resolve(&broker(&[]), &overrides(&[("flush.messages", "1000")])).log_config();
        assert!(every_1000.write_cache && every_1000.flush_messages == Some(1000));
        let compacted =
            TopicConfig::resolve(&broker(&[]), &overrides(&[("cleanup.policy", "compact"), ("max.compaction.lag.ms", "60000")]));
        let l = compacted.log_config();
        assert_eq!((l.retention_ms, l.segment_ms), (None, 60_000), "no retention without delete; rolls by the compaction lag");
    }

    fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} missing"))
    }

    fn chain(e: &ConfigEntry) -> Vec<(String, Option<String>, ConfigSource)> {
        e.synonyms.iter().map(|s| (s.name.clone(), s.value.clone(), s.source)).collect()
    }

    #[test]
    fn describe_reports_sources_like_kafka() {
        let b = broker(&[("log.segment.bytes", "2097152"), ("log.retention.hours", "24"), ("log.retention.ms", "5000")]);
        let all = describe_topic(&b, &overrides(&[("cleanup.policy", "compact, delete"), ("retention.ms", "1000")]), true);
        assert_eq!(all.len(), TOPIC_DEFS.len());
        assert!(all.iter().all(|e| !e.read_only && !e.sensitive && e.documentation.is_some()));

        let e = entry(&all, "cleanup.policy");
        assert_eq!((e.value.as_deref(), e.source, e.is_default), (Some("compact,delete"), ConfigSource::TopicConfig, false));
        let s = |n: &str, v: &str, src| (n.to_string(), Some(v.to_string()), src);
        assert_eq!(
            chain(e),
            [
                s("cleanup.policy", "compact,delete", ConfigSource::TopicConfig),
                s("log.cleanup.policy", "delete", ConfigSource::DefaultConfig)
            ]
        );

        let e = entry(&all, "retention.ms");
        assert_eq!(
            chain(e),
            [
                s("retention.ms", "1000", ConfigSource::TopicConfig),
                s("log.retention.ms", "5000", ConfigSource::StaticBrokerConfig),
                s("log.retention.hours", "24", ConfigSource::StaticBrokerConfig),
                s("log.retention.hours", "168", ConfigSource::DefaultConfig),
            ]
        );

        let e = entry(&all, "segment.bytes");
        assert_eq!((e.value.as_deref(), e.source), (Some("2097152"), ConfigSource::StaticBrokerConfig));
        assert_eq!(e.config_type, ConfigType::Int);

        let e = entry(&all, "min.cleanable.dirty.ratio");
        assert_eq!((e.value.as_deref(), e.source, e.is_default), (Some("0.5"), ConfigSource::DefaultConfig, true));
        assert_eq!(chain(e), [s("log.cleaner.min.cleanable.ratio", "0.5", ConfigSource::DefaultConfig)]);

        let e = entry(&all, "remote.storage.enable");
        assert_eq!((e.value.as_deref(), e.source, e.synonyms.len()), (Some("false"), ConfigSource::DefaultConfig, 0));

        // Without synonyms the sources stay.
        let bare = describe_topic(&b, &TopicOverrides::new(), false);
        assert!(bare.iter().all(|e| e.synonyms.is_empty()));
        assert_eq!(entry(&bare, "segment.bytes").source, ConfigSource::StaticBrokerConfig);
    }

    #[test]
    fn describe_keeps_kafkas_view_of_hour_synonyms() {
        // The stock server.properties sets log.retention.hours=168: Kafka reports
        // retention.ms as DEFAULT_CONFIG with no synonyms (see synonym_chain).
        let b = broker(&[("log.retention.hours", "24")]);
        let all = describe_topic(&b, &TopicOverrides::new(), true);
        let e = entry(&all, "retention.ms");
        assert_eq!((e.value.as_deref(), e.source, e.synonyms.len()), (Some("86400000"), ConfigSource::DefaultConfig, 0));
        let e = entry(&all, "flush.ms");
        assert_eq!((e.value.as_deref(), e.source), (Some("9223372036854775807"), ConfigSource::DefaultConfig));
    }
}
