//! Changing configs: AlterConfigs (legacy: the given set replaces the
//! topic's explicit configs) and IncrementalAlterConfigs (SET, DELETE,
//! APPEND, SUBTRACT per key).
//!
//! Kafka splits this between the broker (`ConfigAdminManager.preprocess`:
//! duplicates, nulls, broker and logger resources) and the controller
//! (`ConfigurationControlManager`: the ops, `LogConfig.validate`, the topic's
//! existence); both steps are here, in Kafka's order. Every topic that passes
//! gets one `TopicConfigs` record, all in one proposal.
//!
//! Fjord has no dynamic broker configs yet, so a BROKER resource that would
//! set anything is refused with Kafka's own message for a config that cannot
//! be updated dynamically; one that only deletes keys is a no-op success, as
//! in Kafka when those keys were never set dynamically.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::AdminError;
use crate::Broker;
use crate::config::ConfigType;
use crate::config::topic::{TOPIC_DEFS, TopicOverrides};
use crate::handlers::util::validate_topic_name;
use crate::metadata::{MetadataImage, MetadataRecord};

/// `ConfigResource.Type` ids.
pub mod resource {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;

    /// Kafka's name of a resource type, as its messages print it.
    pub fn name(id: i8) -> &'static str {
        match id {
            TOPIC => "TOPIC",
            BROKER => "BROKER",
            BROKER_LOGGER => "BROKER_LOGGER",
            CLIENT_METRICS => "CLIENT_METRICS",
            GROUP => "GROUP",
            _ => "UNKNOWN",
        }
    }
}

/// `AlterConfigOp.OpType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Set,
    Delete,
    Append,
    Subtract,
}

impl OpType {
    pub fn from_id(id: i8) -> Option<Self> {
        match id {
            0 => Some(Self::Set),
            1 => Some(Self::Delete),
            2 => Some(Self::Append),
            3 => Some(Self::Subtract),
            _ => None,
        }
    }

    fn kafka_name(self) -> &'static str {
        match self {
            Self::Set => "SET",
            Self::Delete => "DELETE",
            Self::Append => "APPEND",
            Self::Subtract => "SUBTRACT",
        }
    }
}

/// Which API a change came from: legacy replaces the whole explicit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Legacy,
    Incremental,
}

/// One config of a change, as the request carries it. Legacy requests use
/// op 0 (SET) for every entry.
#[derive(Debug, Clone)]
pub struct AlterOp {
    pub name: String,
    pub op: i8,
    pub value: Option<String>,
}

/// One resource of an (Incremental)AlterConfigs request.
#[derive(Debug, Clone)]
pub struct AlterResource {
    pub resource_type: i8,
    pub name: String,
    pub ops: Vec<AlterOp>,
}

fn invalid_request(message: impl Into<String>) -> AdminError {
    AdminError::new(ResponseError::InvalidRequest, message)
}

fn invalid_config(message: impl Into<String>) -> AdminError {
    AdminError::new(ResponseError::InvalidConfig, message)
}

/// Applies the changes (or only checks them, `validate_only`); one result
/// per resource, in request order.
/// `refused` answers resources at once (an ACL check failed), in request order.
pub async fn alter_configs(
    broker: &Arc<Broker>,
    resources: &[AlterResource],
    refused: Vec<Option<AdminError>>,
    mode: Mode,
    validate_only: bool,
) -> Vec<Result<(), AdminError>> {
    let mut results: Vec<Option<Result<(), AdminError>>> = preprocess(broker.config.node_id, resources, mode);
    for (result, refusal) in results.iter_mut().zip(refused) {
        if let Some(e) = refusal {
            *result = Some(Err(e));
        }
    }
    let topics: Vec<usize> = (0..resources.len()).filter(|&i| results[i].is_none()).collect();
    if !topics.is_empty() {
        let written = broker
            .metadata
            .write(|image| {
                let mut records = Vec::new();
                let planned: Vec<Result<(), AdminError>> =
                    topics.iter().map(|&i| plan_topic(broker, image, &resources[i], mode).map(|r| records.extend(r))).collect();
                Ok::<_, crate::metadata::MetadataError>((if validate_only { vec![] } else { records }, planned))
            })
            .await;
        match written {
            Ok((_, planned)) => {
                for (&i, r) in topics.iter().zip(planned) {
                    if r.is_ok() && !validate_only {
                        tracing::info!(topic = %resources[i].name, "topic configs altered");
                    }
                    results[i] = Some(r);
                }
            }
            Err(e) => {
                let e = AdminError::from(e);
                for &i in &topics {
                    results[i] = Some(Err(e.clone()));
                }
            }
        }
    }
    results.into_iter().map(|r| r.expect("every resource answered")).collect()
}

/// The broker's step (`ConfigAdminManager.preprocess`): answers every
/// resource that does not go on to the controller; `None` for the topics that do.
fn preprocess(node_id: i32, resources: &[AlterResource], mode: Mode) -> Vec<Option<Result<(), AdminError>>> {
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for r in resources {
        *counts.entry((r.resource_type, r.name.as_str())).or_default() += 1;
    }
    resources
        .iter()
        .map(|r| {
            if counts[&(r.resource_type, r.name.as_str())] > 1 {
                return Some(Err(invalid_request("Each resource must appear at most once.")));
            }
            match preprocess_one(node_id, r, mode) {
                Ok(true) => None,
                Ok(false) => Some(Ok(())),
                Err(e) => Some(Err(e)),
            }
        })
        .collect()
}

/// `Ok(true)`: a topic change for the controller; `Ok(false)`: done here.
fn preprocess_one(node_id: i32, r: &AlterResource, mode: Mode) -> Result<bool, AdminError> {
    let mut names = HashSet::new();
    if !r.ops.iter().all(|o| names.insert(o.name.as_str())) {
        return Err(invalid_request("Error due to duplicate config keys"));
    }
    let nulls: Vec<&str> = r
        .ops
        .iter()
        .filter(|o| o.value.is_none() && (mode == Mode::Legacy || OpType::from_id(o.op) != Some(OpType::Delete)))
        .map(|o| o.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(invalid_request(format!("Null value not supported for : {}", nulls.join(", "))));
    }
    match r.resource_type {
        resource::TOPIC => Ok(true),
        resource::BROKER => {
            if !r.name.is_empty() {
                check_node_id(node_id, &r.name, "broker")?;
            }
            refuse_broker_change(r)?;
            Ok(false)
        }
        resource::BROKER_LOGGER if mode == Mode::Incremental => {
            check_node_id(node_id, &r.name, "node")?;
            Err(invalid_request("Fjord cannot change log levels at runtime; set RUST_LOG and restart the broker."))
        }
        resource::CLIENT_METRICS | resource::GROUP => {
            Err(invalid_request(format!("Fjord does not support {} configs yet.", resource::name(r.resource_type))))
        }
        // Legacy AlterConfigs never supported BROKER_LOGGER; Kafka lands here too.
        other => Err(invalid_request(format!("Unknown resource type {other}"))),
    }
}

/// `ConfigAdminManager.validateResourceNameIsCurrentNodeId` (BROKER) and
/// `RuntimeLoggerManager`'s check (BROKER_LOGGER).
fn check_node_id(node_id: i32, name: &str, what: &str) -> Result<(), AdminError> {
    let id: i32 = name.parse().map_err(|_| invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    if id != node_id {
        return Err(invalid_request(format!("Unexpected {what} id, expected {node_id}, but received {name}")));
    }
    Ok(())
}

/// What `DynamicBrokerConfig.validate` says of keys it cannot change at
/// runtime; for Fjord that is every key. Keys only deleted pass (nothing
/// dynamic is set, so there is nothing to delete).
fn refuse_broker_change(r: &AlterResource) -> Result<(), AdminError> {
    let mut set = Vec::new();
    for o in &r.ops {
        match OpType::from_id(o.op) {
            None => return Err(invalid_request(format!("Unknown operations type {}", o.op))),
            Some(OpType::Delete) => {}
            Some(_) => set.push(o.name.as_str()),
        }
    }
    if set.is_empty() {
        return Ok(());
    }
    Err(invalid_request(format!("Cannot update these configs dynamically: Set({})", set.join(", "))))
}

/// The controller's step for one topic: the new explicit set, Kafka's
/// checks in Kafka's order, and the record if anything changed.
fn plan_topic(broker: &Broker, image: &MetadataImage, r: &AlterResource, mode: Mode) -> Result<Option<MetadataRecord>, AdminError> {
    let topic = image.topic(&r.name);
    let empty = TopicOverrides::new();
    let current = topic.map_or(&empty, |t| &t.configs);
    let next = match mode {
        Mode::Legacy => r.ops.iter().map(|o| (o.name.clone(), o.value.clone().unwrap_or_default())).collect(),
        Mode::Incremental => apply_incremental(current, &r.ops)?,
    };
    // ControllerConfigurationValidator, then the existence check.
    if r.name.is_empty() {
        return Err(invalid_request("Default topic resources are not allowed."));
    }
    validate_topic_name(&r.name).map_err(|m| AdminError::new(ResponseError::InvalidTopicException, m))?;
    crate::config::validate_for(&broker.config, &next).map_err(|e| invalid_config(e.to_string()))?;
    let Some(topic) = topic else {
        return Err(AdminError::new(ResponseError::UnknownTopicOrPartition, format!("The topic '{}' does not exist.", r.name)));
    };
    Ok((next != topic.configs).then(|| MetadataRecord::TopicConfigs { id: topic.id, configs: next }))
}

/// `ConfigurationControlManager.incrementalAlterConfigResource` on a topic's
/// explicit configs. APPEND and SUBTRACT work on LIST configs only, starting
/// from the schema default when the topic does not set the key.
pub fn apply_incremental(current: &TopicOverrides, ops: &[AlterOp]) -> Result<TopicOverrides, AdminError> {
    let mut next = current.clone();
    for o in ops {
        let op = OpType::from_id(o.op).ok_or_else(|| invalid_request(format!("Unknown operations type {}", o.op)))?;
        let value = o.value.clone().unwrap_or_default();
        match op {
            OpType::Set => {
                next.insert(o.name.clone(), value);
            }
            OpType::Delete => {
                next.remove(&o.name);
            }
            OpType::Append | OpType::Subtract => {
                let Some(default) = list_default(&o.name) else {
                    return Err(invalid_config(format!("Can't {} to key {} because its type is not LIST.", op.kafka_name(), o.name)));
                };
                let old = current.get(&o.name).map_or(default, String::as_str);
                let mut parts: Vec<&str> = old.split(',').filter(|p| !p.is_empty()).collect();
                for v in java_split(&value) {
                    if op == OpType::Subtract {
                        if let Some(at) = parts.iter().position(|p| *p == v) {
                            parts.remove(at);
                        }
                    } else if !parts.contains(&v) {
                        parts.push(v);
                    }
                }
                next.insert(o.name.clone(), parts.join(","));
            }
        }
    }
    Ok(next)
}

/// The schema default of a LIST topic config (`KafkaConfigSchema.getDefault`),
/// `None` if `name` is not a LIST topic config.
fn list_default(name: &str) -> Option<&'static str> {
    TOPIC_DEFS.iter().find(|d| d.def.name == name && d.def.ty == ConfigType::List).map(|d| d.def.default.unwrap_or(""))
}

/// Java's `String.split(",")`: trailing empty pieces are dropped, but an
/// empty string is one empty piece.
fn java_split(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(',').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> TopicOverrides {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn op(name: &str, op: i8, value: Option<&str>) -> AlterOp {
        AlterOp { name: name.into(), op, value: value.map(str::to_string) }
    }

    fn resource(resource_type: i8, name: &str, ops: Vec<AlterOp>) -> AlterResource {
        AlterResource { resource_type, name: name.into(), ops }
    }

    #[test]
    fn incremental_ops_on_a_config_map() {
        let current = overrides(&[("retention.ms", "1000"), ("cleanup.policy", "compact")]);
        // (ops, expected explicit set) — table-driven, Kafka's semantics.
        type Case = (Vec<AlterOp>, Vec<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            (vec![op("retention.ms", 0, Some("5"))], vec![("retention.ms", "5"), ("cleanup.policy", "compact")]),
            (vec![op("retention.ms", 1, None)], vec![("cleanup.policy", "compact")]),
            (vec![op("segment.ms", 1, None)], vec![("retention.ms", "1000"), ("cleanup.policy", "compact")]),
            (vec![op("cleanup.policy", 2, Some("delete"))], vec![("retention.ms", "1000"), ("cleanup.policy", "compact,delete")]),
            (vec![op("cleanup.policy", 2, Some("compact"))], vec![("retention.ms", "1000"), ("cleanup.policy", "compact")]),
            (vec![op("cleanup.policy", 3, Some("compact"))], vec![("retention.ms", "1000"), ("cleanup.policy", "")]),
            // Unset LIST keys start from the schema default.
            (
                vec![op("leader.replication.throttled.replicas", 2, Some("0:1,1:1"))],
                vec![("retention.ms", "1000"), ("cleanup.policy", "compact"), ("leader.replication.throttled.replicas", "0:1,1:1")],
            ),
        ];
        for (ops, want) in cases {
            assert_eq!(apply_incremental(&current, &ops).unwrap(), overrides(&want), "{ops:?}");
        }
        // cleanup.policy defaults to delete: appending compact gives both.
        let got = apply_incremental(&TopicOverrides::new(), &[op("cleanup.policy", 2, Some("compact"))]).unwrap();
        assert_eq!(got, overrides(&[("cleanup.policy", "delete,compact")]));
    }

    #[test]
    fn append_and_subtract_need_a_list() {
        for (name, code) in [("retention.ms", 2), ("no.such.config", 3)] {
            let e = apply_incremental(&TopicOverrides::new(), &[op(name, code, Some("1"))]).unwrap_err();
            assert_eq!(e.code, ResponseError::InvalidConfig);
            let verb = if code == 2 { "APPEND" } else { "SUBTRACT" };
            assert_eq!(e.message, format!("Can't {verb} to key {name} because its type is not LIST."));
        }
        let e = apply_incremental(&TopicOverrides::new(), &[op("retention.ms", 9, Some("1"))]).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRequest);
    }

    #[test]
    fn java_split_semantics() {
        assert_eq!(java_split(""), [""]);
        assert_eq!(java_split("a,,b,,"), ["a", "", "b"]);
        assert!(java_split(",").is_empty());
    }

    #[test]
    fn preprocessing_follows_kafka() {
        let resources = vec![
            resource(resource::TOPIC, "a", vec![op("retention.ms", 0, Some("1"))]),
            resource(resource::TOPIC, "b", vec![]),
            resource(resource::TOPIC, "b", vec![]),
            resource(resource::TOPIC, "c", vec![op("x", 0, Some("1")), op("x", 1, None)]),
            resource(resource::TOPIC, "d", vec![op("x", 0, None)]),
            resource(resource::TOPIC, "e", vec![op("x", 1, None)]),
            resource(resource::BROKER, "1", vec![op("log.retention.ms", 0, Some("1")), op("num.partitions", 2, Some("1"))]),
            resource(resource::BROKER, "2", vec![]),
            resource(resource::BROKER, "x", vec![]),
            resource(resource::BROKER, "", vec![op("log.retention.ms", 1, None)]),
            resource(resource::BROKER_LOGGER, "1", vec![op("root", 0, Some("DEBUG"))]),
            resource(99, "z", vec![]),
        ];
        let got = preprocess(1, &resources, Mode::Incremental);
        let message = |i: usize| got[i].as_ref().and_then(|r| r.as_ref().err()).map(|e| (e.code, e.message.clone()));
        assert!(got[0].is_none() && got[5].is_none(), "topics go on to the controller");
        let invalid = ResponseError::InvalidRequest;
        assert_eq!(message(1), Some((invalid, "Each resource must appear at most once.".into())));
        assert_eq!(message(2), message(1));
        assert_eq!(message(3), Some((invalid, "Error due to duplicate config keys".into())));
        assert_eq!(message(4), Some((invalid, "Null value not supported for : x".into())));
        assert_eq!(message(6), Some((invalid, "Cannot update these configs dynamically: Set(log.retention.ms, num.partitions)".into())));
        assert_eq!(message(7), Some((invalid, "Unexpected broker id, expected 1, but received 2".into())));
        assert_eq!(message(8), Some((invalid, "Node id must be an integer, but it is: x".into())));
        assert!(matches!(got[9], Some(Ok(()))), "deleting broker keys is a no-op");
        assert_eq!(message(10).map(|m| m.0), Some(invalid));
        assert_eq!(message(11), Some((invalid, "Unknown resource type 99".into())));
        // Legacy: a null is refused whatever the op, and loggers are an unknown type.
        let legacy = preprocess(1, &[resources[5].clone(), resources[10].clone()], Mode::Legacy);
        assert!(legacy.iter().all(|r| matches!(r, Some(Err(e)) if e.code == invalid)));
    }
}
