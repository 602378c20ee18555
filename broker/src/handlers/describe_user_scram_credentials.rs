//! DescribeUserScramCredentials (key 50): which SCRAM mechanisms each user
//! has a credential for, and their iterations (`kafka-configs --describe
//! --entity-type users`). Kafka's rules (`ScramPublisher`/`MetadataCache`):
//! no names means every user with a credential; a name asked twice gets
//! DUPLICATE_RESOURCE, one without credentials RESOURCE_NOT_FOUND.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{CredentialInfo, DescribeUserScramCredentialsResult};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use super::util::str_bytes;
use crate::metadata::MetadataImage;
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

pub async fn handle(ctx: &RequestContext, req: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
    let image = ctx.broker.metadata.image();
    if !cluster_allowed(ctx, &image, AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Cluster authorization failed.")));
    }
    let names: Vec<String> = req.users.unwrap_or_default().iter().map(|u| u.name.to_string()).collect();
    DescribeUserScramCredentialsResponse::default().with_results(describe(&image, &names))
}

fn describe(image: &MetadataImage, names: &[String]) -> Vec<DescribeUserScramCredentialsResult> {
    let found = |user: &str| {
        let infos = image.scram_credentials.get(user)?;
        let infos: Vec<CredentialInfo> =
            infos.iter().map(|(m, c)| CredentialInfo::default().with_mechanism(m.type_id()).with_iterations(c.iterations)).collect();
        Some(DescribeUserScramCredentialsResult::default().with_user(str_bytes(user)).with_credential_infos(infos))
    };
    if names.is_empty() {
        return image.scram_credentials.keys().filter_map(|u| found(u)).collect();
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    let failed = |user: &str, code: ResponseError, message: String| {
        DescribeUserScramCredentialsResult::default()
            .with_user(str_bytes(user))
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(&message)))
    };
    let mut out = Vec::new();
    for (i, user) in names.iter().enumerate() {
        if names[..i].contains(user) {
            continue;
        }
        out.push(if counts[user.as_str()] > 1 {
            failed(
                user,
                ResponseError::DuplicateResource,
                format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}"),
            )
        } else {
            found(user).unwrap_or_else(|| {
                failed(user, ResponseError::ResourceNotFound, format!("Attempt to describe a user credential that does not exist: {user}"))
            })
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataRecord;
    use crate::metadata::records::ScramBytes;
    use crate::security::sasl::ScramMechanism;

    #[test]
    fn all_named_duplicate_and_missing() {
        let mut image = MetadataImage::default();
        for (user, mechanism, iterations) in
            [("alice", ScramMechanism::Sha512, 4096), ("alice", ScramMechanism::Sha256, 8192), ("bob", ScramMechanism::Sha256, 4096)]
        {
            image.apply(&MetadataRecord::ScramCredential {
                user: user.into(),
                mechanism,
                salt: ScramBytes(vec![1]),
                stored_key: ScramBytes(vec![2]),
                server_key: ScramBytes(vec![3]),
                iterations,
            });
        }
        let all = describe(&image, &[]);
        assert_eq!(all.iter().map(|r| r.user.to_string()).collect::<Vec<_>>(), ["alice", "bob"]);
        let alice: Vec<(i8, i32)> = all[0].credential_infos.iter().map(|c| (c.mechanism, c.iterations)).collect();
        assert_eq!(alice, [(1, 8192), (2, 4096)]);
        let named = describe(&image, &["bob".into(), "carol".into(), "alice".into(), "alice".into()]);
        let codes: Vec<(String, i16)> = named.iter().map(|r| (r.user.to_string(), r.error_code)).collect();
        assert_eq!(
            codes,
            [
                ("bob".into(), 0),
                ("carol".into(), ResponseError::ResourceNotFound.code()),
                ("alice".into(), ResponseError::DuplicateResource.code())
            ]
        );
    }
}
