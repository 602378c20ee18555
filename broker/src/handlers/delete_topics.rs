//! DeleteTopics (key 20): by name, or at v6 by topic id. The checks and the
//! write are [`crate::admin::delete`]'s; this maps them to the response.
//! Internal topics are not protected: Kafka's KRaft controller deletes them
//! too, given DELETE on the topic.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use super::RequestContext;
use super::authz::{allowed, cluster_allowed};
use super::util::{str_bytes, topic_id, topic_name, uuid};
use crate::admin::delete::{Outcome, Requested, delete_topics};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 1..=6;

pub async fn handle(ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let requested = requested(&req);
    if !ctx.broker.config.delete_topic_enable {
        // ControllerApis throws, so every topic gets the bare error code.
        let code = if ctx.api_version < 3 { ResponseError::InvalidRequest } else { ResponseError::TopicDeletionDisabled };
        return every_topic(&requested, code);
    }
    // Kafka's `ControllerApis.deleteTopics`: DELETE on the cluster covers
    // every topic; a topic named needs DESCRIBE and DELETE on it, one given
    // by id DELETE, and its refusal names it only to who may describe it.
    // The refused ones are answered apart, in place.
    let image = ctx.broker.metadata.image();
    let any_topic = cluster_allowed(ctx, &image, AclOperation::Delete);
    let may = |operation, name: &str| any_topic || allowed(ctx, &image, operation, ResourceType::Topic, name);
    let verdict = |r: &Requested| -> Result<(), Option<String>> {
        match (&r.name, image.topic_by_id(&r.id)) {
            // Both a name and an id: refused as malformed before any ACL is looked at.
            (Some(_), _) if !r.id.is_zero() => Ok(()),
            (Some(name), _) if may(AclOperation::Describe, name) && may(AclOperation::Delete, name) => Ok(()),
            (Some(name), _) => Err(Some(name.clone())),
            (None, Some(t)) if !may(AclOperation::Delete, &t.name) => Err(may(AclOperation::Describe, &t.name).then(|| t.name.clone())),
            _ => Ok(()),
        }
    };
    let verdicts: Vec<Result<(), Option<String>>> = requested.iter().map(verdict).collect();
    let to_delete: Vec<Requested> = requested.iter().zip(&verdicts).filter(|(_, v)| v.is_ok()).map(|(r, _)| r.clone()).collect();
    match delete_topics(&ctx.broker, &to_delete).await {
        Ok(outcomes) => {
            let mut done = outcomes.iter().map(result);
            let responses = requested
                .iter()
                .zip(&verdicts)
                .filter_map(|(r, verdict)| match verdict {
                    Ok(()) => done.next(),
                    Err(name) => Some(
                        DeletableTopicResult::default()
                            .with_name(name.as_deref().map(topic_name))
                            .with_topic_id(uuid(r.id))
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                    ),
                })
                .collect();
            DeleteTopicsResponse::default().with_responses(responses)
        }
        Err(e) => {
            tracing::warn!("DeleteTopics failed: {e}");
            every_topic(&requested, e.code)
        }
    }
}

/// The topics as Kafka's `DeleteTopicsRequest.topics()` lists them: v1-5
/// carry names only, v6 carries (name, id) pairs.
fn requested(req: &DeleteTopicsRequest) -> Vec<Requested> {
    let names = req.topic_names.iter().map(|n| Requested { name: Some(n.0.to_string()), id: Default::default() });
    let states = req.topics.iter().map(|t| Requested { name: t.name.as_ref().map(|n| n.0.to_string()), id: topic_id(&t.topic_id) });
    names.chain(states).collect()
}

fn result(o: &Outcome) -> DeletableTopicResult {
    let base = DeletableTopicResult::default().with_name(o.name.as_deref().map(topic_name)).with_topic_id(uuid(o.id));
    match &o.result {
        Ok(()) => base,
        Err(e) => base.with_error_code(e.code.code()).with_error_message(Some(str_bytes(&e.message))),
    }
}

/// Kafka's `getErrorResponse`: each requested topic with `code`, no message.
fn every_topic(requested: &[Requested], code: ResponseError) -> DeleteTopicsResponse {
    let responses = requested
        .iter()
        .map(|r| {
            DeletableTopicResult::default()
                .with_name(r.name.as_deref().map(topic_name))
                .with_topic_id(uuid(r.id))
                .with_error_code(code.code())
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
