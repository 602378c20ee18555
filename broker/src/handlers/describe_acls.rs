//! DescribeAcls (key 29): `kafka-acls --list`. Needs an authorizer and
//! DESCRIBE on the cluster; answers the bindings the filter matches,
//! grouped by resource pattern, as Kafka does.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use super::util::str_bytes;
use crate::security::acl::{AclFilter, AclOperation, AclPermissionType, PatternType, ResourceType};

/// Kafka 4.x serves 1-3 (v0 was removed, KIP-896).
pub const VERSIONS: RangeInclusive<i16> = 1..=3;

pub async fn handle(ctx: &RequestContext, req: DescribeAclsRequest) -> DescribeAclsResponse {
    let image = ctx.broker.metadata.image();
    let fail = |code: ResponseError, message: &str| {
        DescribeAclsResponse::default().with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
    };
    if ctx.broker.config.authorizer.is_none() {
        return fail(ResponseError::SecurityDisabled, "No Authorizer is configured.");
    }
    if !cluster_allowed(ctx, &image, AclOperation::Describe) {
        return fail(ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.");
    }
    let filter = match filter(&req) {
        Ok(f) => f,
        Err(message) => return fail(ResponseError::InvalidRequest, message),
    };
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.iter().filter(|a| filter.matches(a)) {
        by_resource.entry((acl.resource_type.code(), acl.resource_name.clone(), acl.pattern_type.code())).or_default().push(
            AclDescription::default()
                .with_principal(str_bytes(&acl.principal))
                .with_host(str_bytes(&acl.host))
                .with_operation(acl.operation.code())
                .with_permission_type(acl.permission.code()),
        );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(str_bytes(&name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

fn filter(req: &DescribeAclsRequest) -> Result<AclFilter, &'static str> {
    Ok(AclFilter {
        resource_type: ResourceType::from_code(req.resource_type_filter).ok_or("Invalid resource type filter")?,
        resource_name: req.resource_name_filter.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(req.pattern_type_filter).ok_or("Invalid pattern type filter")?,
        principal: req.principal_filter.as_ref().map(|s| s.to_string()),
        host: req.host_filter.as_ref().map(|s| s.to_string()),
        operation: AclOperation::from_code(req.operation).ok_or("Invalid operation filter")?,
        permission: AclPermissionType::from_code(req.permission_type).ok_or("Invalid permission type filter")?,
    })
}
