//! FindCoordinator (key 10): the broker leading the key's
//! `__consumer_offsets` partition (key type 0, a group) or
//! `__transaction_state` partition (key type 1, a transactional id), at the
//! address advertised on the listener the request came in on. v4+ batches
//! keys, each with its own error. The topic is created on the first lookup;
//! until it is online the answer is COORDINATOR_NOT_AVAILABLE.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::RequestContext;
use super::authz::{allowed, group_allowed};
use super::util::str_bytes;
use crate::group::topic::ensure_offsets_topic;
use crate::security::acl::{AclOperation, ResourceType};
use crate::txn::topic::ensure_txn_topic;

pub const VERSIONS: RangeInclusive<i16> = 0..=6;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub async fn handle(ctx: &RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let keys: Vec<String> =
        if ctx.api_version >= 4 { req.coordinator_keys.iter().map(|k| k.to_string()).collect() } else { vec![req.key.to_string()] };
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        found.push(find(ctx, req.key_type, &key).await);
    }
    if ctx.api_version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(found);
    }
    let c = found.pop().unwrap_or_default();
    let resp = FindCoordinatorResponse::default().with_error_code(c.error_code).with_error_message(c.error_message);
    if c.error_code != 0 {
        return resp.with_node_id(BrokerId(-1)).with_host(str_bytes("")).with_port(-1);
    }
    resp.with_node_id(c.node_id).with_host(c.host).with_port(c.port)
}

async fn find(ctx: &RequestContext, key_type: i8, key: &str) -> Coordinator {
    let failed = |code: E, message: &str| {
        Coordinator::default()
            .with_key(str_bytes(key))
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1)
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    let (topic_name, partition) = match key_type {
        GROUP if !group_allowed(ctx, AclOperation::Describe, key) => {
            return failed(E::GroupAuthorizationFailed, "Not authorized to access group.");
        }
        GROUP => {
            if !ensure_offsets_topic(&ctx.broker).await {
                return failed(E::CoordinatorNotAvailable, "The coordinator is not available.");
            }
            (crate::group::OFFSETS_TOPIC, ctx.broker.groups.partition_of(key))
        }
        TRANSACTION if !allowed(ctx, &ctx.broker.metadata.image(), AclOperation::Describe, ResourceType::TransactionalId, key) => {
            return failed(E::TransactionalIdAuthorizationFailed, "Transactional Id authorization failed.");
        }
        TRANSACTION => {
            if !ensure_txn_topic(&ctx.broker).await {
                return failed(E::CoordinatorNotAvailable, "The coordinator is not available.");
            }
            (crate::txn::TXN_TOPIC, ctx.broker.txn.partition_of(key))
        }
        _ => return failed(E::InvalidRequest, &format!("Unsupported key type {key_type}.")),
    };
    // The coordinator is the leader of the key's partition.
    let image = ctx.broker.metadata.image();
    let leader = partition.and_then(|p| {
        let topic = image.topic(topic_name)?;
        let view = ctx.broker.leader_view(&image, topic, p);
        (view.leader >= 0).then_some(view.leader)
    });
    let endpoint = leader.and_then(|node| {
        if image.brokers.is_empty() && node == ctx.broker.config.node_id {
            return ctx.broker.advertised(&ctx.listener).map(|l| (l.host.clone(), l.port));
        }
        image.brokers.get(&node).and_then(|b| b.endpoint(&ctx.listener)).map(|e| (e.host.clone(), e.port))
    });
    match (leader, endpoint) {
        (Some(node), Some((host, port))) => Coordinator::default()
            .with_key(str_bytes(key))
            .with_node_id(BrokerId(node))
            .with_host(str_bytes(&host))
            .with_port(i32::from(port))
            .with_error_message(None),
        _ => failed(E::CoordinatorNotAvailable, "The coordinator is not available."),
    }
}
