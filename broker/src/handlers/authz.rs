//! The ACL check at the handler edge: whether the request's principal may
//! take an action, by [`crate::security::authorizer`] over the ACLs in the
//! metadata image. Without an authorizer (`authorizer.class.name` unset,
//! Kafka's default) everything is allowed.

use super::RequestContext;
use crate::metadata::MetadataImage;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::authorizer::{self, Action, authorize, authorize_any};

/// The one name Kafka gives the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The schemas' default for an `authorized_operations` field: not asked for
/// (or, for a resource answered with an error, not computed).
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub fn allowed(ctx: &RequestContext, image: &MetadataImage, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
    let Some(config) = &ctx.broker.config.authorizer else { return true };
    let action = Action { operation, resource_type, resource_name: name };
    authorize(config, &image.acls, &ctx.session.principal(), &ctx.session.peer_host, action)
}

/// The `authorized_operations` bit field of a resource for the request's
/// principal (Kafka's `AuthHelper.authorizedOperations`).
pub fn authorized_operations(ctx: &RequestContext, image: &MetadataImage, resource_type: ResourceType, name: &str) -> i32 {
    authorizer::authorized_operations(
        ctx.broker.config.authorizer.as_ref(),
        &image.acls,
        &ctx.session.principal(),
        &ctx.session.peer_host,
        resource_type,
        name,
    )
}

/// Why an ACL API (CreateAcls, DescribeAcls, DeleteAcls) is refused as a
/// whole: no authorizer (Kafka's SECURITY_DISABLED), or no `operation` on
/// the cluster.
pub fn acl_api_refusal(
    ctx: &RequestContext,
    image: &MetadataImage,
    operation: AclOperation,
) -> Option<(kafka_protocol::ResponseError, &'static str)> {
    if ctx.broker.config.authorizer.is_none() {
        Some((kafka_protocol::ResponseError::SecurityDisabled, "No Authorizer is configured."))
    } else if !cluster_allowed(ctx, image, operation) {
        Some((kafka_protocol::ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed."))
    } else {
        None
    }
}

/// [`allowed`] on the cluster resource.
pub fn cluster_allowed(ctx: &RequestContext, image: &MetadataImage, operation: AclOperation) -> bool {
    allowed(ctx, image, operation, ResourceType::Cluster, CLUSTER_NAME)
}

/// [`allowed`] on a consumer group, against the current image.
pub fn group_allowed(ctx: &RequestContext, operation: AclOperation, group: &str) -> bool {
    ctx.broker.config.authorizer.is_none() || allowed(ctx, &ctx.broker.metadata.image(), operation, ResourceType::Group, group)
}

/// Whether an idempotent producer may get a producer id: IDEMPOTENT_WRITE
/// on the cluster, or WRITE on some topic (Kafka's rule since 3.0).
pub fn idempotent_write_allowed(ctx: &RequestContext, image: &MetadataImage) -> bool {
    let Some(config) = &ctx.broker.config.authorizer else { return true };
    cluster_allowed(ctx, image, AclOperation::IdempotentWrite)
        || authorize_any(config, &image.acls, &ctx.session.principal(), &ctx.session.peer_host, AclOperation::Write, ResourceType::Topic)
}

/// ALTER_CONFIGS on each resource of an AlterConfigs request: TOPIC
/// resources on the topic, GROUP ones on the group, the rest on the cluster
/// (Kafka's `ControllerApis.authorizeAlterResource`).
pub fn alter_configs_refusals(
    ctx: &RequestContext,
    resources: &[crate::admin::configs::AlterResource],
) -> Vec<Option<crate::admin::AdminError>> {
    let image = ctx.broker.metadata.image();
    resources
        .iter()
        .map(|r| {
            let (ok, code) = match r.resource_type {
                crate::admin::configs::resource::TOPIC => (
                    allowed(ctx, &image, AclOperation::AlterConfigs, ResourceType::Topic, &r.name),
                    kafka_protocol::ResponseError::TopicAuthorizationFailed,
                ),
                crate::admin::configs::resource::GROUP => (
                    allowed(ctx, &image, AclOperation::AlterConfigs, ResourceType::Group, &r.name),
                    kafka_protocol::ResponseError::GroupAuthorizationFailed,
                ),
                _ => (cluster_allowed(ctx, &image, AclOperation::AlterConfigs), kafka_protocol::ResponseError::ClusterAuthorizationFailed),
            };
            (!ok).then(|| crate::admin::AdminError::new(code, "Authorization failed."))
        })
        .collect()
}
