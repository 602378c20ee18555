//! DescribeClientQuotas (key 48): Fjord has no client quotas yet, so every
//! filter matches nothing. Served because `kafka-configs --describe
//! --entity-type users` asks for quotas before it lists the users' SCRAM
//! credentials, and fails outright if the broker does not know the API.

use std::ops::RangeInclusive;

use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=1;

pub async fn handle(_ctx: &RequestContext, _req: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default().with_entries(Some(Vec::new()))
}
