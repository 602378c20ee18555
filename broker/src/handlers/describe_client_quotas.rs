//! DescribeClientQuotas (key 48): Fjord has no client quotas yet, so every
//! filter matches nothing. Served because `kafka-configs --describe
//! --entity-type users` asks for quotas before it lists the users' SCRAM
//! credentials, and fails outright if the broker does not know the API.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=1;

pub async fn handle(ctx: &RequestContext, _req: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    // Kafka's rule: quotas are cluster configs (DESCRIBE_CONFIGS). A
    // refusal carries no entries, and no message (`ApiError.fromThrowable`
    // drops one that only repeats the error's own).
    if !cluster_allowed(ctx, &ctx.broker.metadata.image(), AclOperation::DescribeConfigs) {
        return DescribeClientQuotasResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(None)
            .with_entries(None);
    }
    DescribeClientQuotasResponse::default().with_entries(Some(Vec::new()))
}
