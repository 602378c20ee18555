//! DescribeConfigs (key 32): topic and broker configs with their sources,
//! as Kafka's `ConfigHelper.describeConfigs` answers (the broker answers
//! this one itself; nothing goes to the controller).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::RequestContext;
use super::authz::{allowed, cluster_allowed};
use super::util::{str_bytes, validate_topic_name};
use crate::Broker;
use crate::admin::configs::resource;
use crate::config::{ConfigEntry, ConfigSource, describe_topic};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 1..=4;

/// What the request asks to see of each entry.
#[derive(Clone, Copy)]
struct Detail {
    synonyms: bool,
    documentation: bool,
}

pub async fn handle(ctx: &RequestContext, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    // Kafka's authorization step throws for a type it does not know, and
    // the whole request fails with it.
    if let Some(bad) = req.resources.iter().find(|r| resource::name(r.resource_type) == "UNKNOWN") {
        let message = format!("Unexpected resource type UNKNOWN for resource {}", bad.resource_name);
        let results = req.resources.iter().map(|r| error(r, ResponseError::InvalidRequest, Some(&message))).collect();
        return DescribeConfigsResponse::default().with_results(results);
    }
    let detail = Detail { synonyms: req.include_synonyms, documentation: req.include_documentation };
    let image = ctx.broker.metadata.image();
    let refusal = |r: &DescribeConfigsResource| {
        let (ok, code, message) = match r.resource_type {
            resource::TOPIC => (
                allowed(ctx, &image, AclOperation::DescribeConfigs, ResourceType::Topic, &r.resource_name),
                ResponseError::TopicAuthorizationFailed,
                "Topic authorization failed.",
            ),
            resource::GROUP => (
                allowed(ctx, &image, AclOperation::DescribeConfigs, ResourceType::Group, &r.resource_name),
                ResponseError::GroupAuthorizationFailed,
                "Group authorization failed.",
            ),
            _ => (
                cluster_allowed(ctx, &image, AclOperation::DescribeConfigs),
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.",
            ),
        };
        (!ok).then(|| error(r, code, Some(message)))
    };
    // Kafka's `ConfigHelper` answers the refused resources after the others.
    let refused: Vec<Option<DescribeConfigsResult>> = req.resources.iter().map(refusal).collect();
    let mut results: Vec<DescribeConfigsResult> =
        req.resources.iter().zip(&refused).filter(|(_, no)| no.is_none()).map(|(r, _)| describe(&ctx.broker, r, detail)).collect();
    results.extend(refused.into_iter().flatten());
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(broker: &Broker, r: &DescribeConfigsResource, detail: Detail) -> DescribeConfigsResult {
    let name = r.resource_name.as_str();
    let entries = match r.resource_type {
        resource::TOPIC => {
            if let Err(message) = validate_topic_name(name) {
                return error(r, ResponseError::InvalidTopicException, Some(&message));
            }
            let image = broker.metadata.image();
            let Some(topic) = image.topic(name) else {
                // Kafka sets the code only.
                return error(r, ResponseError::UnknownTopicOrPartition, None);
            };
            describe_topic(&broker.config, &topic.configs, detail.synonyms)
        }
        resource::BROKER if name.is_empty() => {
            // The cluster-wide dynamic defaults: Fjord has none.
            Vec::new()
        }
        resource::BROKER => match name.parse::<i32>() {
            Ok(id) if id == broker.config.node_id => broker.config.describe(),
            Ok(_) => {
                let message = format!("Unexpected broker id, expected {} or empty string, but received {name}", broker.config.node_id);
                return error(r, ResponseError::InvalidRequest, Some(&message));
            }
            Err(_) => return error(r, ResponseError::InvalidRequest, Some(&format!("Broker id must be an integer, but it is: {name}"))),
        },
        resource::BROKER_LOGGER => return describe_loggers(broker, r),
        resource::CLIENT_METRICS if name.is_empty() => {
            return error(r, ResponseError::InvalidRequest, Some("Client metrics subscription name must not be empty"));
        }
        // Fjord has no client-metrics subscriptions: every one is empty, as
        // Kafka describes a subscription nobody created.
        resource::CLIENT_METRICS => Vec::new(),
        other => {
            let message = format!("Fjord does not support {} configs yet.", resource::name(other));
            return error(r, ResponseError::InvalidRequest, Some(&message));
        }
    };
    let keys = r.configuration_keys.as_ref().filter(|k| !k.is_empty());
    let configs =
        entries.iter().filter(|e| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == e.name))).map(|e| entry(e, detail)).collect();
    DescribeConfigsResult::default().with_resource_type(r.resource_type).with_resource_name(r.resource_name.clone()).with_configs(configs)
}

fn entry(e: &ConfigEntry, detail: Detail) -> DescribeConfigsResourceResult {
    let synonyms = if detail.synonyms {
        e.synonyms
            .iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(&s.name))
                    .with_value(s.value.as_deref().map(str_bytes))
                    .with_source(s.source.id())
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(&e.name))
        .with_value(if e.sensitive { None } else { e.value.as_deref().map(str_bytes) })
        .with_read_only(e.read_only)
        .with_config_source(e.source.id())
        .with_is_sensitive(e.sensitive)
        .with_synonyms(synonyms)
        .with_config_type(e.config_type.id())
        .with_documentation(e.documentation.as_deref().filter(|_| detail.documentation).map(str_bytes))
}

/// BROKER_LOGGER: Kafka lists its log4j loggers and their levels. Fjord
/// logs through `tracing` with one global filter, reported as the root
/// logger's level.
fn describe_loggers(broker: &Broker, r: &DescribeConfigsResource) -> DescribeConfigsResult {
    let name = r.resource_name.as_str();
    let check = if name.is_empty() {
        Err("Broker id must not be empty".to_string())
    } else {
        match name.parse::<i32>() {
            Ok(id) if id == broker.config.node_id => Ok(()),
            Ok(_) => Err(format!("Unexpected broker id, expected {} but received {name}", broker.config.node_id)),
            Err(_) => Err(format!("Broker id must be an integer, but it is: {name}")),
        }
    };
    if let Err(message) = check {
        return error(r, ResponseError::InvalidRequest, Some(&message));
    }
    let level = match tracing::level_filters::LevelFilter::current().into_level() {
        None => "OFF",
        Some(l) => l.as_str(),
    };
    let root = DescribeConfigsResourceResult::default()
        .with_name(str_bytes("root"))
        .with_value(Some(str_bytes(level)))
        .with_config_source(ConfigSource::DynamicBrokerLoggerConfig.id());
    DescribeConfigsResult::default()
        .with_resource_type(r.resource_type)
        .with_resource_name(r.resource_name.clone())
        .with_configs(vec![root])
}

fn error(r: &DescribeConfigsResource, code: ResponseError, message: Option<&str>) -> DescribeConfigsResult {
    let base = DescribeConfigsResult::default()
        .with_resource_type(r.resource_type)
        .with_resource_name(r.resource_name.clone())
        .with_error_code(code.code());
    match message {
        Some(m) => base.with_error_message(Some(str_bytes(m))),
        None => base,
    }
}
