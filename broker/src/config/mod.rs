//! The broker's configuration, under Kafka's own names.
//!
//! - [`properties`]: Java `.properties` text (Kafka's `server.properties`).
//! - [`BrokerConfig`]: broker settings, loaded once at startup; unknown keys
//!   are warnings, Kafka keys Fjord does not use are accepted silently.
//! - [`TopicConfig`]: a topic's effective settings (override, else broker
//!   synonym, else default), [`validate`] for CreateTopics and AlterConfigs,
//!   [`describe_topic`] for DescribeConfigs.
//! - [`ConfigEntry`]: what DescribeConfigs reports, with Kafka's source and type ids.
//! - `remote`: tiered storage (KIP-405's switch, the object store under
//!   Aiven's plugin names) into [`fjord_tiered::TieredConfig`].
//!
//! Names, defaults, validators and synonym priorities follow Kafka 4.x
//! (`ServerLogConfigs`, `ServerTopicConfigSynonyms`, `LogConfig`, `ConfigHelper`).

mod authorizer;
pub mod broker;
mod broker_defs;
mod def;
pub mod describe;
mod kraft;
mod listener;
pub mod observability;
pub mod properties;
mod remote;
mod sasl;
mod ssl;
pub mod topic;
mod transactions;

pub use broker::{BrokerConfig, ClusterConfig, ConfigError, GroupConfig, LogDefaults};
pub use describe::{ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};
pub use kraft::{ProcessRole, QuorumVoter};
pub use listener::{Listener, SecurityProtocol};
pub use properties::PropertiesError;
pub use sasl::{ListenerSasl, SaslConfig};
pub use ssl::{ClientAuth, PrincipalMapper, TlsSettings, TlsVersion};
pub use topic::{
    TimestampType, TopicConfig, TopicConfigError, TopicOverrides, describe_topic, topic_config_default, topic_config_names,
    topic_config_type, validate, validate_for,
};
pub use transactions::TransactionConfig;
