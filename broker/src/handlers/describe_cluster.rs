//! DescribeCluster (key 60): the brokers on the request's listener, the
//! cluster id and a controller id, as Kafka's `KafkaApis.handleDescribeCluster`
//! and `AuthHelper.computeDescribeClusterResponse` answer them. Admin uses it
//! for `describeCluster()` (kafka-topics, kafka-configs, kafka-features).

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::RequestContext;
use super::authz::{CLUSTER_NAME, OPERATIONS_NOT_REQUESTED, authorized_operations, cluster_allowed};
use super::metadata::{advertised_brokers, controller_id};
use super::util::str_bytes;
use crate::security::acl::{AclOperation, ResourceType};

/// Kafka 4.0 serves 0-2 (v1: endpoint_type, KIP-919; v2: include_fenced_brokers, KIP-1073).
pub const VERSIONS: RangeInclusive<i16> = 0..=2;

/// `EndpointType`: this is a broker endpoint; 2 would be a controller's.
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

pub async fn handle(ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    if let Some(refusal) = check_endpoint_type(ctx.api_version, req.endpoint_type) {
        return refusal;
    }
    let broker = &ctx.broker;
    let image = broker.metadata.image();
    let brokers = advertised_brokers(ctx, &image, req.include_fenced_brokers)
        .into_iter()
        .map(|b| {
            let fenced = image.brokers.get(&b.node_id.0).is_some_and(|r| r.fenced);
            DescribeClusterBroker::default()
                .with_broker_id(b.node_id)
                .with_host(b.host)
                .with_port(b.port)
                .with_rack(b.rack)
                .with_is_fenced(fenced)
        })
        .collect();
    // Kafka answers anyone (no CLUSTER_AUTHORIZATION_FAILED); without
    // DESCRIBE on the cluster the operations asked for are none.
    let operations = if !req.include_cluster_authorized_operations {
        OPERATIONS_NOT_REQUESTED
    } else if cluster_allowed(ctx, &image, AclOperation::Describe) {
        authorized_operations(ctx, &image, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        0
    };
    DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKER)
        .with_cluster_id(str_bytes(&broker.cluster_id()))
        .with_controller_id(BrokerId(controller_id(broker, &image)))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(operations)
}

/// Kafka refuses a request meant for another kind of endpoint: INVALID_REQUEST
/// at v0, UNSUPPORTED_ENDPOINT_TYPE / MISMATCHED_ENDPOINT_TYPE from v1.
fn check_endpoint_type(version: i16, endpoint_type: i8) -> Option<DescribeClusterResponse> {
    let (code, message) = match endpoint_type {
        ENDPOINT_BROKER => return None,
        ENDPOINT_CONTROLLER => (
            ResponseError::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
        ),
        other => (ResponseError::UnsupportedEndpointType, format!("Unsupported endpoint type {other}")),
    };
    let code = if version == 0 { ResponseError::InvalidRequest } else { code };
    Some(DescribeClusterResponse::default().with_error_code(code.code()).with_error_message(Some(str_bytes(&message))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_types_follow_kafka() {
        assert!(check_endpoint_type(1, 1).is_none());
        assert!(check_endpoint_type(0, 1).is_none());
        let cases = [
            (0, 2, ResponseError::InvalidRequest),
            (1, 2, ResponseError::MismatchedEndpointType),
            (1, 0, ResponseError::UnsupportedEndpointType),
            (2, 7, ResponseError::UnsupportedEndpointType),
            (0, 7, ResponseError::InvalidRequest),
        ];
        for (version, endpoint, code) in cases {
            let r = check_endpoint_type(version, endpoint).expect("refused");
            assert_eq!(r.error_code, code.code(), "v{version} type {endpoint}");
            assert!(r.error_message.is_some());
        }
    }
}
