//! CreateAcls (key 30): `kafka-acls --add`. Needs an authorizer
//! (`authorizer.class.name`) and ALTER on the cluster, as in Kafka; each
//! binding is checked on its own, the valid ones are written to the
//! metadata log in one record (a binding already there is not repeated).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

use super::RequestContext;
use super::authz::acl_api_refusal;
use super::util::str_bytes;
use crate::metadata::{MetadataError, MetadataRecord};
use crate::security::acl::{AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType};

/// Kafka 4.x serves 1-3 (v0 was removed, KIP-896).
pub const VERSIONS: RangeInclusive<i16> = 1..=3;

pub async fn handle(ctx: &RequestContext, req: CreateAclsRequest) -> CreateAclsResponse {
    let image = ctx.broker.metadata.image();
    if let Some((code, message)) = acl_api_refusal(ctx, &image, AclOperation::Alter) {
        let results = req.creations.iter().map(|_| failed(code, message)).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let parsed: Vec<Result<AclBinding, String>> = req.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let written = ctx
        .broker
        .metadata
        .write(|image| {
            let new: Vec<AclBinding> = valid.iter().filter(|a| !image.acls.contains(*a)).cloned().collect();
            let records = if new.is_empty() { vec![] } else { vec![MetadataRecord::AclsCreated { acls: new }] };
            Ok::<_, MetadataError>((records, ()))
        })
        .await;
    let results = parsed
        .into_iter()
        .map(|p| match (p, &written) {
            (Err(message), _) => failed(ResponseError::InvalidRequest, &message),
            (Ok(_), Ok(_)) => AclCreationResult::default(),
            (Ok(_), Err(e)) => failed(ResponseError::UnknownServerError, &e.to_string()),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

fn failed(code: ResponseError, message: &str) -> AclCreationResult {
    AclCreationResult::default().with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
}

/// The binding a creation asks for, or Kafka's reason it cannot be made.
fn binding(c: &AclCreation) -> Result<AclBinding, String> {
    let acl = AclBinding {
        resource_type: ResourceType::from_code(c.resource_type).ok_or("Invalid resource type")?,
        resource_name: c.resource_name.to_string(),
        pattern_type: PatternType::from_code(c.resource_pattern_type).ok_or("Invalid pattern type")?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: AclOperation::from_code(c.operation).ok_or("Invalid operation")?,
        permission: AclPermissionType::from_code(c.permission_type).ok_or("Invalid permission type")?,
    };
    acl.validate().map_err(|e| e.to_string())?;
    Ok(acl)
}
