//! DeleteAcls (key 31): `kafka-acls --remove`. Needs an authorizer and
//! ALTER on the cluster; each filter answers the bindings it removed.
//! The bindings all filters match are removed in one metadata record.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

use super::RequestContext;
use super::authz::acl_api_refusal;
use super::util::str_bytes;
use crate::metadata::{MetadataError, MetadataRecord};
use crate::security::acl::{AclBinding, AclFilter, AclOperation};

/// Kafka 4.x serves 1-3 (v0 was removed, KIP-896).
pub const VERSIONS: RangeInclusive<i16> = 1..=3;

pub async fn handle(ctx: &RequestContext, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let image = ctx.broker.metadata.image();
    if let Some((code, message)) = acl_api_refusal(ctx, &image, AclOperation::Alter) {
        return DeleteAclsResponse::default().with_filter_results(req.filters.iter().map(|_| failed(code, message)).collect());
    }
    let filters: Vec<Result<AclFilter, &'static str>> = req.filters.iter().map(filter).collect();
    let written = ctx
        .broker
        .metadata
        .write(|image| {
            let matched: Vec<Vec<AclBinding>> = filters
                .iter()
                .map(|f| f.as_ref().map_or_else(|_| vec![], |f| image.acls.iter().filter(|a| f.matches(a)).cloned().collect()))
                .collect();
            let gone: BTreeSet<AclBinding> = matched.iter().flatten().cloned().collect();
            let records = if gone.is_empty() { vec![] } else { vec![MetadataRecord::AclsDeleted { acls: gone.into_iter().collect() }] };
            Ok::<_, MetadataError>((records, matched))
        })
        .await;
    let results = match written {
        Ok((_, matched)) => filters
            .iter()
            .zip(matched)
            .map(|(f, acls)| match f {
                Err(message) => failed(ResponseError::InvalidRequest, message),
                Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(acls.iter().map(matching).collect()),
            })
            .collect(),
        Err(e) => filters.iter().map(|_| failed(ResponseError::UnknownServerError, &e.to_string())).collect(),
    };
    DeleteAclsResponse::default().with_filter_results(results)
}

fn failed(code: ResponseError, message: &str) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default().with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
}

fn matching(acl: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(str_bytes(&acl.resource_name))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(str_bytes(&acl.principal))
        .with_host(str_bytes(&acl.host))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}

fn filter(f: &DeleteAclsFilter) -> Result<AclFilter, &'static str> {
    AclFilter::from_codes(
        f.resource_type_filter,
        f.resource_name_filter.as_deref(),
        f.pattern_type_filter,
        f.principal_filter.as_deref(),
        f.host_filter.as_deref(),
        f.operation,
        f.permission_type,
    )
}
