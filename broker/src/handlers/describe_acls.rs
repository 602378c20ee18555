//! DescribeAcls (key 29): `kafka-acls --list`. Needs an authorizer and
//! DESCRIBE on the cluster; answers the bindings the filter matches,
//! grouped by resource pattern, as Kafka does.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::RequestContext;
use super::authz::acl_api_refusal;
use super::util::str_bytes;
use crate::security::acl::{AclFilter, AclOperation};

/// Kafka 4.x serves 1-3 (v0 was removed, KIP-896).
pub const VERSIONS: RangeInclusive<i16> = 1..=3;

pub async fn handle(ctx: &RequestContext, req: DescribeAclsRequest) -> DescribeAclsResponse {
    let image = ctx.broker.metadata.image();
    let fail = |code: ResponseError, message: &str| {
        DescribeAclsResponse::default().with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
    };
    if let Some((code, message)) = acl_api_refusal(ctx, &image, AclOperation::Describe) {
        return fail(code, message);
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
    AclFilter::from_codes(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    )
}
