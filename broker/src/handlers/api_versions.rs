//! ApiVersions (key 18): the served versions, from the registry in
//! `handlers/mod.rs`. A version above ours gets KIP-511's answer: error
//! UNSUPPORTED_VERSION, encoded as v0, listing only ApiVersions' own range,
//! so the client retries with a version we serve.

use std::ops::RangeInclusive;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{APIS, Reply, RequestContext, respond};
use crate::protocol::frame::{decode_body, encode_response};

pub const VERSIONS: RangeInclusive<i16> = 0..=4;

/// Produce is advertised from v0 though v0-2 are refused, as Kafka 4 does
/// (KAFKA-18659): librdkafka turns compression off otherwise.
const PRODUCE_ADVERTISED_MIN: i16 = 0;

pub fn dispatch(ctx: &RequestContext, version: i16, body: Bytes) -> Reply {
    if version > *VERSIONS.end() || version < 0 {
        let resp = ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(vec![api_version(ApiKey::ApiVersions, &VERSIONS)]);
        return match encode_response(ctx.correlation_id, 0, &resp) {
            Ok(f) => Reply::Frame(vec![f]),
            Err(e) => Reply::Close(e.to_string()),
        };
    }
    let req: ApiVersionsRequest = match decode_body(ApiKey::ApiVersions, version, body) {
        Ok(r) => r,
        Err(e) => return Reply::Close(e.to_string()),
    };
    respond(ctx, &handle(version, &req))
}

fn api_version(key: ApiKey, versions: &RangeInclusive<i16>) -> ApiVersion {
    let min = if key == ApiKey::Produce { PRODUCE_ADVERTISED_MIN } else { *versions.start() };
    ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(*versions.end())
}

pub fn handle(version: i16, req: &ApiVersionsRequest) -> ApiVersionsResponse {
    let resp = ApiVersionsResponse::default();
    // KIP-511: v3+ names the client software; Kafka rejects names outside its pattern.
    if version >= 3 && !(valid_software(&req.client_software_name) && valid_software(&req.client_software_version)) {
        return resp.with_error_code(ResponseError::InvalidRequest.code());
    }
    resp.with_api_keys(APIS.iter().map(|a| api_version(a.key, &a.versions)).collect())
}

/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`
fn valid_software(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Message, StrBytes};

    #[test]
    fn advertised_versions_are_decodable_by_the_crate() {
        let resp = handle(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("a"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        );
        assert_eq!(resp.error_code, 0);
        for k in &resp.api_keys {
            let key = ApiKey::try_from(k.api_key).unwrap();
            // Never advertise more than the message types decode (pitfall 13).
            let max = match key {
                ApiKey::Produce => kafka_protocol::messages::ProduceRequest::VERSIONS.max,
                ApiKey::Fetch => kafka_protocol::messages::FetchRequest::VERSIONS.max,
                ApiKey::InitProducerId => kafka_protocol::messages::InitProducerIdRequest::VERSIONS.max,
                ApiKey::Metadata => kafka_protocol::messages::MetadataRequest::VERSIONS.max,
                _ => i16::MAX,
            };
            assert!(k.max_version <= max, "{key:?}");
        }
        assert!(resp.api_keys.iter().any(|k| k.api_key == 0 && k.min_version == 0 && k.max_version >= 12));
    }

    #[test]
    fn bad_software_names_are_invalid_requests() {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("-bad"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        assert_eq!(handle(3, &req).error_code, ResponseError::InvalidRequest.code());
        assert_eq!(handle(2, &req).error_code, 0);
    }
}
