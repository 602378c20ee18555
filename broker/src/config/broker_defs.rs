//! The broker configs Fjord reads, with Kafka's names, types, defaults and
//! validators (`ServerLogConfigs`, `ServerConfigs`, `SocketServerConfigs`,
//! `CleanerConfig`, `KRaftConfigs`, `ReplicationConfigs`), and the names Kafka
//! knows that Fjord accepts without using. Static data.
//!
//! Fjord's own defaults differ from Kafka's in three places, so that a bare
//! `fjord` starts a usable single node: `node.id` 1 (Kafka: required),
//! `listeners` `PLAINTEXT://127.0.0.1:9092` (Kafka: `PLAINTEXT://:9092`) and
//! `log.dir` `./data` (Kafka: `/tmp/kafka-logs`).

use super::def::{Check, Def};
use super::describe::ConfigType::{self, Boolean, Double, Int, List, Long, String as Str};

const fn def(name: &'static str, ty: ConfigType, default: Option<&'static str>, check: Check, doc: &'static str) -> Def {
    Def { name, ty, default, check, doc }
}

const LONG_MAX: &str = "9223372036854775807";
pub(crate) const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
pub(crate) const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
pub(crate) const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
pub(crate) const DEFAULT_LISTENERS: &str = "PLAINTEXT://127.0.0.1:9092";
pub(crate) const DEFAULT_SECURITY_PROTOCOL_MAP: &str =
    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// Every broker config Fjord reads, sorted by name.
pub(crate) const BROKER_DEFS: &[Def] = &[
    def(
        "advertised.listeners",
        Str,
        None,
        Check::None,
        "Listener addresses given to clients, NAME://host:port,...; defaults to listeners. 0.0.0.0 is not allowed; an empty host advertises this machine's hostname.",
    ),
    def(
        "auto.create.topics.enable",
        Boolean,
        Some("true"),
        Check::None,
        "Create a topic when a Metadata request names one that does not exist.",
    ),
    def(
        "auto.leader.rebalance.enable",
        Boolean,
        Some("true"),
        Check::None,
        "Move leadership back to each partition's preferred replica (the first) when leadership is imbalanced.",
    ),
    def(
        "broker.heartbeat.interval.ms",
        Int,
        Some("2000"),
        Check::AtLeast(1),
        "How often a broker sends the controller its heartbeat (with the partitions it leads).",
    ),
    def("broker.id", Int, Some("1"), Check::None, "Alias of node.id; if both are set they must be equal."),
    def("broker.rack", Str, None, Check::None, "Rack of this broker, reported in Metadata."),
    def(
        "broker.session.timeout.ms",
        Int,
        Some("9000"),
        Check::AtLeast(1),
        "A broker without a heartbeat this long is fenced: out of Metadata and of placement.",
    ),
    def(
        "cluster.id",
        Str,
        None,
        Check::None,
        "Fjord: the cluster id to record when the metadata log has none yet (Kafka keeps it in meta.properties).",
    ),
    def("compression.gzip.level", Int, Some("-1"), Check::GzipLevel, "Default for the topic config compression.gzip.level."),
    def("compression.lz4.level", Int, Some("9"), Check::Between(1, 17), "Default for the topic config compression.lz4.level."),
    def(
        "compression.type",
        Str,
        Some("producer"),
        Check::OneOf(COMPRESSION_TYPES),
        "Default for the topic config compression.type: a codec, uncompressed, or producer to keep the producer's.",
    ),
    def("compression.zstd.level", Int, Some("3"), Check::Between(-131072, 22), "Default for the topic config compression.zstd.level."),
    def(
        "controlled.shutdown.enable",
        Boolean,
        Some("true"),
        Check::None,
        "On SIGTERM, hand the partitions this broker leads to other replicas and have the controller fence it before stopping (for at most broker.session.timeout.ms).",
    ),
    def(
        "controller.listener.names",
        Str,
        None,
        Check::None,
        "Listener names used by the KRaft controller. Fjord serves its raft transport (metadata and partition replication) on the first of them.",
    ),
    def(
        "controller.quorum.bootstrap.servers",
        List,
        Some(""),
        Check::None,
        "KRaft controller bootstrap host:port list. Parsed, not used yet.",
    ),
    def(
        "controller.quorum.voters",
        List,
        Some(""),
        Check::None,
        "The controller quorum as id@host:port,...: the voters of __cluster_metadata and their raft (controller listener) addresses.",
    ),
    def(
        "default.replication.factor",
        Int,
        Some("1"),
        Check::Between(1, i16::MAX as i64),
        "Replication factor of topics created without one (auto-created topics, CreateTopics with -1).",
    ),
    def("delete.topic.enable", Boolean, Some("true"), Check::None, "Whether DeleteTopics may delete topics."),
    def("fetch.max.bytes", Int, Some("57671680"), Check::AtLeast(1024), "The most bytes one Fetch response may carry."),
    def(
        "group.initial.rebalance.delay.ms",
        Int,
        Some("3000"),
        Check::AtLeast(0),
        "How long a group leaving Empty waits for more members before its first rebalance.",
    ),
    def("group.max.session.timeout.ms", Int, Some("1800000"), Check::AtLeast(1), "Largest session.timeout.ms a consumer may ask for."),
    def("group.max.size", Int, Some("2147483647"), Check::AtLeast(1), "Most members one group may have."),
    def("group.min.session.timeout.ms", Int, Some("6000"), Check::AtLeast(0), "Smallest session.timeout.ms a consumer may ask for."),
    def(
        "leader.imbalance.check.interval.seconds",
        Long,
        Some("300"),
        Check::AtLeast(1),
        "How often leadership balance is checked (auto.leader.rebalance.enable).",
    ),
    def(
        "leader.imbalance.per.broker.percentage",
        Int,
        Some("10"),
        Check::Between(0, 100),
        "Share of a broker's preferred partitions it may not lead before leadership is moved back.",
    ),
    def(
        "listener.security.protocol.map",
        Str,
        Some(DEFAULT_SECURITY_PROTOCOL_MAP),
        Check::None,
        "Listener name to security protocol, NAME:PROTOCOL,...",
    ),
    def(
        "listeners",
        Str,
        Some(DEFAULT_LISTENERS),
        Check::None,
        "Addresses to listen on, NAME://host:port,...; an empty host binds every interface.",
    ),
    def("log.cleaner.backoff.ms", Long, Some("15000"), Check::AtLeast(0), "How long the log cleaner sleeps when no log needs cleaning."),
    def(
        "log.cleaner.dedupe.buffer.size",
        Long,
        Some("134217728"),
        Check::None,
        "Bytes of keys one cleaning pass may map; a log with more distinct keys in its dirty part is cleaned over several passes.",
    ),
    def("log.cleaner.delete.retention.ms", Long, Some("86400000"), Check::AtLeast(0), "Default for the topic config delete.retention.ms."),
    def(
        "log.cleaner.enable",
        Boolean,
        Some("true"),
        Check::None,
        "Run the log cleaner, which compacts topics with cleanup.policy=compact (__consumer_offsets and __transaction_state among them).",
    ),
    def(
        "log.cleaner.max.compaction.lag.ms",
        Long,
        Some(LONG_MAX),
        Check::AtLeast(1),
        "Default for the topic config max.compaction.lag.ms.",
    ),
    def(
        "log.cleaner.min.cleanable.ratio",
        Double,
        Some("0.5"),
        Check::Between(0, 1),
        "Default for the topic config min.cleanable.dirty.ratio.",
    ),
    def("log.cleaner.min.compaction.lag.ms", Long, Some("0"), Check::AtLeast(0), "Default for the topic config min.compaction.lag.ms."),
    def("log.cleanup.policy", List, Some("delete"), Check::ListOf(CLEANUP_POLICIES), "Default for the topic config cleanup.policy."),
    def("log.dir", Str, Some("./data"), Check::None, "The data directory, used when log.dirs is not set."),
    def("log.dirs", Str, None, Check::None, "Comma-separated data directories; if not set, log.dir is used."),
    def("log.flush.interval.messages", Long, Some(LONG_MAX), Check::AtLeast(1), "Default for the topic config flush.messages."),
    def(
        "log.flush.interval.ms",
        Long,
        None,
        Check::None,
        "Default for the topic config flush.ms; if not set, log.flush.scheduler.interval.ms is used.",
    ),
    def(
        "log.flush.scheduler.interval.ms",
        Long,
        Some(LONG_MAX),
        Check::None,
        "Default for the topic config flush.ms when log.flush.interval.ms is not set.",
    ),
    def("log.index.interval.bytes", Int, Some("4096"), Check::AtLeast(0), "Default for the topic config index.interval.bytes."),
    def("log.index.size.max.bytes", Int, Some("10485760"), Check::AtLeast(4), "Default for the topic config segment.index.bytes."),
    def("log.local.retention.bytes", Long, Some("-2"), Check::AtLeast(-2), "Default for the topic config local.retention.bytes."),
    def("log.local.retention.ms", Long, Some("-2"), Check::AtLeast(-2), "Default for the topic config local.retention.ms."),
    def(
        "log.message.timestamp.after.max.ms",
        Long,
        Some("3600000"),
        Check::AtLeast(0),
        "Default for the topic config message.timestamp.after.max.ms.",
    ),
    def(
        "log.message.timestamp.before.max.ms",
        Long,
        Some(LONG_MAX),
        Check::AtLeast(0),
        "Default for the topic config message.timestamp.before.max.ms.",
    ),
    def(
        "log.message.timestamp.type",
        Str,
        Some("CreateTime"),
        Check::OneOf(TIMESTAMP_TYPES),
        "Default for the topic config message.timestamp.type.",
    ),
    def("log.preallocate", Boolean, Some("false"), Check::None, "Default for the topic config preallocate."),
    def("log.retention.bytes", Long, Some("-1"), Check::None, "Default for the topic config retention.bytes; -1 is no limit."),
    def("log.retention.check.interval.ms", Long, Some("300000"), Check::AtLeast(1), "How often retention is checked."),
    def(
        "log.retention.hours",
        Int,
        Some("168"),
        Check::None,
        "Default retention in hours, used when log.retention.ms and log.retention.minutes are not set.",
    ),
    def("log.retention.minutes", Int, None, Check::None, "Default retention in minutes, used when log.retention.ms is not set."),
    def(
        "log.retention.ms",
        Long,
        None,
        Check::None,
        "Default for the topic config retention.ms; -1 keeps data forever. If not set, log.retention.minutes is used.",
    ),
    def("log.roll.hours", Int, Some("168"), Check::AtLeast(1), "Default segment age in hours, used when log.roll.ms is not set."),
    def(
        "log.roll.jitter.hours",
        Int,
        Some("0"),
        Check::AtLeast(0),
        "Default segment roll jitter in hours, used when log.roll.jitter.ms is not set.",
    ),
    def(
        "log.roll.jitter.ms",
        Long,
        None,
        Check::None,
        "Default for the topic config segment.jitter.ms; if not set, log.roll.jitter.hours is used.",
    ),
    def("log.roll.ms", Long, None, Check::None, "Default for the topic config segment.ms; if not set, log.roll.hours is used."),
    def("log.segment.bytes", Int, Some("1073741824"), Check::AtLeast(1 << 20), "Default for the topic config segment.bytes."),
    def("log.segment.delete.delay.ms", Long, Some("60000"), Check::AtLeast(0), "Default for the topic config file.delete.delay.ms."),
    def(
        "message.max.bytes",
        Int,
        Some("1048588"),
        Check::AtLeast(0),
        "Default for the topic config max.message.bytes: the largest record batch accepted.",
    ),
    def(
        "metrics.listener",
        Str,
        None,
        Check::None,
        "Fjord: host:port of the HTTP endpoint with Prometheus metrics (GET /metrics) and readiness (GET /ready); unset: none. \
         Amazon MSK's open monitoring uses port 11001.",
    ),
    def("min.insync.replicas", Int, Some("1"), Check::AtLeast(1), "Default for the topic config min.insync.replicas."),
    def("node.id", Int, Some("1"), Check::None, "This node's id (alias broker.id)."),
    def("num.partitions", Int, Some("1"), Check::AtLeast(1), "Partition count of topics created without one."),
    def("offset.metadata.max.bytes", Int, Some("4096"), Check::None, "Largest metadata string an offset commit may carry."),
    def(
        "offsets.commit.timeout.ms",
        Int,
        Some("5000"),
        Check::AtLeast(1),
        "How long an offset commit waits for __consumer_offsets to commit it.",
    ),
    def("offsets.retention.check.interval.ms", Long, Some("600000"), Check::AtLeast(1), "How often expired committed offsets are removed."),
    def("offsets.retention.minutes", Int, Some("10080"), Check::AtLeast(1), "How long the offsets of an empty group are kept."),
    def("offsets.topic.num.partitions", Int, Some("50"), Check::AtLeast(1), "Partition count of __consumer_offsets when it is created."),
    def(
        "offsets.topic.replication.factor",
        Int,
        Some("3"),
        Check::Between(1, 32767),
        "Replication factor of __consumer_offsets; a smaller cluster uses all its brokers.",
    ),
    def("offsets.topic.segment.bytes", Int, Some("104857600"), Check::AtLeast(1), "segment.bytes of __consumer_offsets."),
    def(
        "process.roles",
        List,
        Some(""),
        Check::ListOf(&["broker", "controller"]),
        "KRaft roles of this node: broker, controller (a voter of the metadata quorum) or both.",
    ),
    def("queued.max.requests", Int, Some("500"), Check::AtLeast(1), "Requests read from connections and not yet handled, at most."),
    def(
        "raft.advertised.listener",
        Str,
        None,
        Check::None,
        "Fjord: host:port peers use to reach this node's raft transport; defaults to the bound address.",
    ),
    def(
        "raft.listener",
        Str,
        None,
        Check::None,
        "Fjord: host:port the raft transport binds; if not set, an ephemeral port on the first listener's host.",
    ),
    def(
        "remote.log.manager.task.interval.ms",
        Long,
        Some("30000"),
        Check::AtLeast(1),
        "Tiered storage: how often each partition leader uploads rolled segments and applies total retention to the remote ones.",
    ),
    def(
        "remote.log.manager.task.retry.backoff.max.ms",
        Long,
        Some("30000"),
        Check::AtLeast(1),
        "Tiered storage: the longest wait between two tries of an object store request; waits double up to it.",
    ),
    def(
        "remote.log.manager.task.retry.backoff.ms",
        Long,
        Some("500"),
        Check::AtLeast(1),
        "Tiered storage: the wait before an object store request is tried again the first time.",
    ),
    def(
        "remote.log.storage.manager.impl.prefix",
        Str,
        Some("rsm.config."),
        Check::None,
        "Tiered storage: the prefix of the object store settings (named as Aiven's tiered-storage plugin names them).",
    ),
    def(
        "remote.log.storage.request.max.attempts",
        Int,
        Some("5"),
        Check::AtLeast(1),
        "Fjord: how many times one object store request (a PUT, a part, a ranged GET, a DELETE) is tried before an upload or read fails.",
    ),
    def(
        "remote.log.storage.system.enable",
        Boolean,
        Some("false"),
        Check::None,
        "Tiered storage: upload rolled segments to an object store (S3 when rsm.config.storage.s3.bucket.name is set, else a directory).",
    ),
    def(
        "replica.lag.time.max.ms",
        Long,
        Some("30000"),
        Check::AtLeast(1),
        "A follower that has not caught up with the leader's log end for this long leaves the ISR.",
    ),
    def("socket.request.max.bytes", Int, Some("104857600"), Check::AtLeast(1), "The largest request frame accepted."),
    def(
        "tracing.format",
        Str,
        Some("text"),
        Check::OneOf(&["text", "json"]),
        "Fjord: log lines on stderr as text, or as one JSON object per line.",
    ),
    def(
        "tracing.level",
        Str,
        None,
        Check::None,
        "Fjord: which log lines to write, as RUST_LOG takes it (info, debug, fjord_raft=debug,info …); RUST_LOG wins.",
    ),
    def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Int,
        Some("10000"),
        Check::AtLeast(1),
        "How often transactions open for longer than their transaction.timeout.ms are aborted.",
    ),
    def("transaction.max.timeout.ms", Int, Some("900000"), Check::AtLeast(1), "The largest transaction.timeout.ms a producer may ask for."),
    def(
        "transaction.partition.verification.enable",
        Boolean,
        Some("true"),
        Check::None,
        "Check with the transaction coordinator that a partition is in the transaction before its first transactional batch is written (KIP-890).",
    ),
    def(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Int,
        Some("3600000"),
        Check::AtLeast(1),
        "How often transactional ids idle for transactional.id.expiration.ms are removed.",
    ),
    def(
        "transaction.state.log.min.isr",
        Int,
        Some("2"),
        Check::AtLeast(1),
        "min.insync.replicas of __transaction_state, at most its replication factor.",
    ),
    def(
        "transaction.state.log.num.partitions",
        Int,
        Some("50"),
        Check::AtLeast(1),
        "Partition count of __transaction_state when it is created.",
    ),
    def(
        "transaction.state.log.replication.factor",
        Int,
        Some("3"),
        Check::Between(1, 32767),
        "Replication factor of __transaction_state; a smaller cluster uses all its brokers.",
    ),
    def("transaction.state.log.segment.bytes", Int, Some("104857600"), Check::AtLeast(1), "segment.bytes of __transaction_state."),
    def(
        "transactional.id.expiration.ms",
        Int,
        Some("604800000"),
        Check::AtLeast(1),
        "How long a transactional id with no transaction open is kept after its last use.",
    ),
    def(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Check::None,
        "Default for the topic config unclean.leader.election.enable.",
    ),
];

/// Looks up a broker config by name.
pub(crate) fn broker_def(name: &str) -> Option<&'static Def> {
    BROKER_DEFS.binary_search_by(|d| d.name.cmp(name)).ok().map(|i| &BROKER_DEFS[i])
}

/// `DynamicBrokerConfig.brokerConfigSynonyms` for the configs that have
/// synonyms: the settings consulted, highest priority first. Every other
/// config is its own only synonym.
pub(crate) fn broker_synonyms(name: &str) -> Option<&'static [&'static str]> {
    const ROLL: &[&str] = &["log.roll.ms", "log.roll.hours"];
    const JITTER: &[&str] = &["log.roll.jitter.ms", "log.roll.jitter.hours"];
    const FLUSH: &[&str] = &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"];
    const RETENTION: &[&str] = &["log.retention.ms", "log.retention.minutes", "log.retention.hours"];
    match name {
        "log.roll.ms" | "log.roll.hours" => Some(ROLL),
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => Some(JITTER),
        // Only this way round: log.flush.scheduler.interval.ms has no synonym.
        "log.flush.interval.ms" => Some(FLUSH),
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => Some(RETENTION),
        _ => None,
    }
}

/// Kafka's `DynamicBrokerConfig.AllDynamicConfigs`, restricted to the
/// configs above: DescribeConfigs reports these with `read_only=false`.
/// Fjord cannot change them at runtime yet; the flag says what Kafka allows.
pub(crate) fn is_dynamic(name: &str) -> bool {
    const DYNAMIC: &[&str] = &[
        "advertised.listeners",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.type",
        "compression.zstd.level",
        "listener.security.protocol.map",
        "listeners",
        "log.cleaner.backoff.ms",
        "log.cleaner.dedupe.buffer.size",
        "log.cleaner.delete.retention.ms",
        "log.cleaner.max.compaction.lag.ms",
        "log.cleaner.min.cleanable.ratio",
        "log.cleaner.min.compaction.lag.ms",
        "log.cleanup.policy",
        "log.flush.interval.messages",
        "log.flush.interval.ms",
        "log.index.interval.bytes",
        "log.index.size.max.bytes",
        "log.local.retention.bytes",
        "log.local.retention.ms",
        "log.message.timestamp.after.max.ms",
        "log.message.timestamp.before.max.ms",
        "log.message.timestamp.type",
        "log.preallocate",
        "log.retention.bytes",
        "log.retention.ms",
        "log.roll.jitter.ms",
        "log.roll.ms",
        "log.segment.bytes",
        "log.segment.delete.delay.ms",
        "message.max.bytes",
        "min.insync.replicas",
        "unclean.leader.election.enable",
    ];
    DYNAMIC.contains(&name)
}

/// Names (and, ending in `.`, prefixes) of configs Kafka 4.x knows and Fjord
/// accepts without acting on them: a stock `server.properties` loads without
/// a warning. Anything else unknown is warned about.
const KNOWN_UNUSED: &[&str] = &[
    // Prefix families.
    "alter.log.dirs.",
    "broker.heartbeat.",
    "broker.session.",
    "client.quota.",
    "confluent.",
    "connection.",
    "connections.",
    "controller.",
    "delegation.token.",
    "group.",
    "kafka.metrics.",
    "leader.imbalance.",
    "listener.name.",
    "log.cleaner.",
    "log.flush.",
    "log.initial.",
    "metadata.",
    "metric.",
    "metrics.",
    "num.",
    "offset.",
    "offsets.",
    "principal.",
    "producer.",
    "quota.",
    "remote.",
    "replica.",
    "replication.",
    // The object store settings under Kafka's default
    // remote.log.storage.manager.impl.prefix: read by `remote.rs`, which
    // also warns about the ones that are not the plugin's.
    "rsm.config.",
    "sasl.",
    "security.",
    "share.",
    "socket.",
    "ssl.",
    "transaction.",
    "transactional.",
    "zookeeper.",
    // Single names.
    "allow.everyone.if.no.acl.found",
    "alter.config.policy.class.name",
    "authorizer.class.name",
    "background.threads",
    "config.providers",
    "create.topic.policy.class.name",
    "delete.records.purgatory.purge.interval.requests",
    "early.start.listeners",
    "fetch.purgatory.purge.interval.requests",
    "initial.broker.registration.timeout.ms",
    "inter.broker.listener.name",
    "inter.broker.protocol.version",
    "log.dir.failure.timeout.ms",
    "max.connection.creation.rate",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "max.incremental.fetch.session.cache.slots",
    "max.request.partition.size.limit",
    "queued.max.request.bytes",
    "request.timeout.ms",
    "server.max.startup.time.ms",
    "super.users",
    "telemetry.max.bytes",
    "unclean.leader.election.interval.ms",
    "unstable.api.versions.enable",
    "unstable.feature.versions.enable",
];

/// Whether `name` is a Kafka broker config Fjord ignores on purpose.
pub(crate) fn is_known_unused(name: &str) -> bool {
    is_listed(KNOWN_UNUSED, name)
}

/// Names (and, ending in `.`, prefixes) of the settings Aiven's tiered
/// storage plugin reads under `remote.log.storage.manager.impl.prefix`
/// (its `RemoteStorageManagerConfig`, the chunk, index and manifest cache
/// configs, `S3StorageConfig`, `FileSystemStorageConfig`, docs/configs.rst).
/// `remote.rs` reads some; the rest are accepted so a config written for
/// the plugin loads without warnings.
const RSM_CONFIGS: &[&str] = &[
    "chunk.size",
    "compression.enabled",
    "compression.heuristic.enabled",
    "custom.metadata.fields.include",
    "encryption.enabled",
    "encryption.key.pair.id",
    "encryption.key.pairs",
    "encryption.key.pairs.",
    "fetch.chunk.cache.",
    "fetch.indexes.cache.",
    "fetch.manifest.cache.",
    "iceberg.",
    "key.prefix",
    "key.prefix.mask",
    "metrics.num.samples",
    "metrics.recording.level",
    "metrics.sample.window.ms",
    "segment.format",
    "storage.aws.access.key.id",
    "storage.aws.certificate.check.enabled",
    "storage.aws.checksum.check.enabled",
    "storage.aws.credentials.file",
    "storage.aws.credentials.provider.class",
    "storage.aws.secret.access.key",
    "storage.aws.session.token",
    "storage.azure.",
    "storage.backend.class",
    "storage.gcs.",
    "storage.overwrite.enabled",
    "storage.root",
    "storage.s3.api.call.attempt.timeout",
    "storage.s3.api.call.timeout",
    "storage.s3.bucket.name",
    "storage.s3.endpoint.url",
    "storage.s3.legacy.md5.plugin.enabled",
    "storage.s3.multipart.upload.part.size",
    "storage.s3.path.style.access.enabled",
    "storage.s3.region",
    "storage.s3.storage.class",
    "structure.provider.",
    "upload.rate.limit.bytes.per.second",
];

/// Whether `name` (without the prefix) is one of the plugin's settings.
pub(crate) fn is_rsm_config(name: &str) -> bool {
    is_listed(RSM_CONFIGS, name)
}

fn is_listed(list: &[&str], name: &str) -> bool {
    list.iter().any(|k| if k.ends_with('.') { name.starts_with(k) } else { name == *k })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_defaults_parse() {
        assert!(BROKER_DEFS.windows(2).all(|w| w[0].name < w[1].name), "BROKER_DEFS must stay sorted");
        for d in BROKER_DEFS {
            if let Some(v) = d.default {
                assert!(d.parse(v).is_ok(), "default of {} is refused by its own check", d.name);
            }
            assert_eq!(broker_def(d.name).map(|x| x.name), Some(d.name));
        }
    }

    #[test]
    fn stock_server_properties_keys_are_known() {
        // Kafka 4.0's config/server.properties.
        let stock = [
            "num.network.threads",
            "num.io.threads",
            "socket.send.buffer.bytes",
            "socket.receive.buffer.bytes",
            "num.recovery.threads.per.data.dir",
            "offsets.topic.replication.factor",
            "share.coordinator.state.topic.replication.factor",
            "transaction.state.log.min.isr",
            "inter.broker.listener.name",
            "controller.quorum.bootstrap.servers",
            "zookeeper.connect",
            "group.initial.rebalance.delay.ms",
            "ssl.keystore.password",
        ];
        for k in stock {
            assert!(broker_def(k).is_some() || is_known_unused(k), "{k}");
        }
        assert!(!is_known_unused("foo.bar"));
        assert!(is_known_unused("rsm.config.storage.s3.bucket.name"));
        assert!(is_rsm_config("storage.s3.bucket.name") && is_rsm_config("fetch.chunk.cache.size"));
        assert!(!is_rsm_config("storage.s3.bucket.nmae") && !is_rsm_config("rsm.config.key.prefix"));
        assert!(!is_known_unused("log.segment.byte"));
    }
}
