//! What DescribeConfigs answers, in Kafka's own terms: one [`ConfigEntry`] per
//! config with its value, where that value came from and, on request, the
//! chain of synonyms that was consulted.
//!
//! Built by [`crate::config::BrokerConfig::describe`] and
//! [`crate::config::describe_topic`]; the DescribeConfigs and CreateTopics
//! handlers copy these into their responses. Plain data, no lifecycle.

/// One config of a resource as DescribeConfigs reports it
/// (`DescribeConfigsResponse.json`, `DescribeConfigsResourceResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for a config without a value and for a sensitive one.
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    /// Only DescribeConfigs v0 carries this; it equals `source == DefaultConfig`.
    pub is_default: bool,
    pub sensitive: bool,
    pub config_type: ConfigType,
    pub documentation: Option<String>,
    /// Highest priority first; empty unless the request asked for synonyms.
    pub synonyms: Vec<ConfigSynonym>,
}

/// One of the settings consulted for a config, e.g. `log.retention.hours`
/// for the topic config `retention.ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// `DescribeConfigsResponse.ConfigSource`: the wire ids are Kafka's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum ConfigSource {
    Unknown = 0,
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    DynamicBrokerLoggerConfig = 6,
    ClientMetricsConfig = 7,
    GroupConfig = 8,
}

impl ConfigSource {
    /// The id on the wire (`config_source`, `source` of a synonym).
    pub fn id(self) -> i8 {
        self as i8
    }
}

/// `DescribeConfigsResponse.ConfigType` (v3+ `config_type`): the wire ids are Kafka's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum ConfigType {
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    /// The id on the wire.
    pub fn id(self) -> i8 {
        self as i8
    }

    /// Kafka's `ConfigDef.Type` name, as its "Not a number of type LONG" messages print it.
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigType::Unknown => "UNKNOWN",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }

    /// Kafka hides the value of a password, and of any config whose type it
    /// does not know (`KafkaConfig.maybeSensitive`).
    pub fn is_sensitive(self) -> bool {
        matches!(self, ConfigType::Password | ConfigType::Unknown)
    }
}

/// Builds the synonym list of one config the way Kafka's
/// `ConfigHelper.configSynonyms` does: for each source in priority order
/// (here only static broker settings, then defaults), each name of the group
/// in order; then everything before `name` itself is dropped.
///
/// The last step is Kafka's, kept on purpose: describing `retention.ms`
/// looks at `log.retention.ms`, `.minutes`, `.hours`, and when
/// `log.retention.ms` is set nowhere the list comes out empty and the source
/// is DEFAULT_CONFIG even if `log.retention.hours` is set. That is why
/// `kafka-topics --describe` does not list `retention.ms` for a broker run
/// with the stock `server.properties` (`log.retention.hours=168`) but does
/// list `segment.bytes` (`log.segment.bytes=1073741824`).
pub(crate) fn synonym_chain(
    name: &str,
    group: &[&str],
    static_value: impl Fn(&str) -> Option<String>,
    default_value: impl Fn(&str) -> Option<String>,
    sensitive: bool,
) -> Vec<ConfigSynonym> {
    let hide = |v: String| if sensitive { None } else { Some(v) };
    let statics = group.iter().filter_map(|g| {
        static_value(g).map(|v| ConfigSynonym { name: (*g).to_string(), value: hide(v), source: ConfigSource::StaticBrokerConfig })
    });
    let defaults = group.iter().filter_map(|g| {
        default_value(g).map(|v| ConfigSynonym { name: (*g).to_string(), value: hide(v), source: ConfigSource::DefaultConfig })
    });
    statics.chain(defaults).skip_while(|s| s.name != name).collect()
}

/// The source Kafka reports for a config: that of its first synonym, else DEFAULT_CONFIG.
pub(crate) fn source_of(synonyms: &[ConfigSynonym]) -> ConfigSource {
    synonyms.first().map_or(ConfigSource::DefaultConfig, |s| s.source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_are_kafkas() {
        let sources = [
            (ConfigSource::Unknown, 0),
            (ConfigSource::TopicConfig, 1),
            (ConfigSource::DynamicBrokerConfig, 2),
            (ConfigSource::DynamicDefaultBrokerConfig, 3),
            (ConfigSource::StaticBrokerConfig, 4),
            (ConfigSource::DefaultConfig, 5),
            (ConfigSource::DynamicBrokerLoggerConfig, 6),
            (ConfigSource::ClientMetricsConfig, 7),
            (ConfigSource::GroupConfig, 8),
        ];
        for (s, id) in sources {
            assert_eq!(s.id(), id, "{s:?}");
        }
        let types = [
            (ConfigType::Unknown, 0),
            (ConfigType::Boolean, 1),
            (ConfigType::String, 2),
            (ConfigType::Int, 3),
            (ConfigType::Short, 4),
            (ConfigType::Long, 5),
            (ConfigType::Double, 6),
            (ConfigType::List, 7),
            (ConfigType::Class, 8),
            (ConfigType::Password, 9),
        ];
        for (t, id) in types {
            assert_eq!(t.id(), id, "{t:?}");
        }
    }

    #[test]
    fn chain_orders_static_before_default_and_starts_at_the_name() {
        let group = ["log.retention.ms", "log.retention.minutes", "log.retention.hours"];
        let default = |n: &str| (n == "log.retention.hours").then(|| "168".to_string());
        let none = |_: &str| None;
        // Nothing set but the hours default: Kafka drops it (see synonym_chain).
        assert!(synonym_chain("log.retention.ms", &group, none, default, false).is_empty());
        let set_ms = |n: &str| (n == "log.retention.ms").then(|| "1000".to_string());
        let chain = synonym_chain("log.retention.ms", &group, set_ms, default, false);
        let got: Vec<_> = chain.iter().map(|s| (s.name.as_str(), s.value.as_deref(), s.source)).collect();
        assert_eq!(
            got,
            [
                ("log.retention.ms", Some("1000"), ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", Some("168"), ConfigSource::DefaultConfig),
            ]
        );
        assert_eq!(source_of(&chain), ConfigSource::StaticBrokerConfig);
        assert_eq!(source_of(&[]), ConfigSource::DefaultConfig);
        let hidden = synonym_chain("log.retention.ms", &group, set_ms, default, true);
        assert!(hidden.iter().all(|s| s.value.is_none()));
    }
}
