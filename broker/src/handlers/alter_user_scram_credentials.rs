//! AlterUserScramCredentials (key 51): `kafka-configs --alter --add-config
//! 'SCRAM-SHA-512=[password=...]' --entity-type users` (and
//! `--delete-config`). The admin client salts the password; the broker
//! derives StoredKey and ServerKey and writes those
//! ([`MetadataRecord::ScramCredential`]), never the salted password.
//!
//! Kafka's checks (`ScramControlManager.alterCredentials`): a user altered
//! twice in one request gets DUPLICATE_RESOURCE, an unknown mechanism
//! UNSUPPORTED_SASL_MECHANISM, an empty name or iterations outside
//! 4096..=16384 UNACCEPTABLE_CREDENTIAL, deleting a credential that does
//! not exist RESOURCE_NOT_FOUND. One result per user; the valid ones are
//! written together, in one compare-and-set proposal.

use std::ops::RangeInclusive;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use super::util::str_bytes;
use crate::admin::AdminError;
use crate::metadata::records::ScramBytes;
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord};
use crate::security::acl::AclOperation;
use crate::security::sasl::{ScramCredential, ScramMechanism};

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

type Outcome = Result<(), (ResponseError, &'static str)>;

pub async fn handle(ctx: &RequestContext, req: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    if !cluster_allowed(ctx, &ctx.broker.metadata.image(), AclOperation::Alter) {
        let refused = users_in_order(&req).into_iter().map(|u| {
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(&u))
                .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code())
        });
        return AlterUserScramCredentialsResponse::default().with_results(refused.collect());
    }
    let written = ctx.broker.metadata.write(|image| Ok::<_, MetadataError>(plan(image, &req))).await;
    let results = match written {
        Ok((_, outcomes)) => outcomes,
        Err(e) => {
            let e = AdminError::from(e);
            users_in_order(&req).into_iter().map(|u| (u, Err((e.code, "")))).collect()
        }
    };
    let results = results
        .into_iter()
        .map(|(user, outcome)| {
            let r = AlterUserScramCredentialsResult::default().with_user(str_bytes(&user));
            match outcome {
                Ok(()) => {
                    tracing::info!(user = %user, "SCRAM credentials altered");
                    r
                }
                Err((code, message)) => {
                    r.with_error_code(code.code()).with_error_message((!message.is_empty()).then(|| str_bytes(message)))
                }
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn users_in_order(req: &AlterUserScramCredentialsRequest) -> Vec<String> {
    let mut users: Vec<String> = Vec::new();
    for name in req.deletions.iter().map(|d| &d.name).chain(req.upsertions.iter().map(|u| &u.name)) {
        if !users.iter().any(|u| u == name.as_str()) {
            users.push(name.to_string());
        }
    }
    users
}

fn check_name_and_mechanism(name: &str, mechanism: i8) -> Result<ScramMechanism, (ResponseError, &'static str)> {
    let m = ScramMechanism::from_type_id(mechanism).ok_or((ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))?;
    if name.is_empty() {
        return Err((ResponseError::UnacceptableCredential, "Username must not be empty"));
    }
    Ok(m)
}

/// The records to write and each user's outcome, in request order.
fn plan(image: &MetadataImage, req: &AlterUserScramCredentialsRequest) -> (Vec<MetadataRecord>, Vec<(String, Outcome)>) {
    const TWICE: (ResponseError, &str) =
        (ResponseError::DuplicateResource, "A user credential cannot be altered twice in the same request");
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let mut records: Vec<(String, MetadataRecord)> = Vec::new();
    let seen = |user: &str, outcomes: &mut Vec<(String, Outcome)>| -> bool {
        match outcomes.iter_mut().find(|(u, _)| u == user) {
            Some((_, o)) => {
                if o.is_ok() {
                    *o = Err(TWICE);
                }
                true
            }
            None => false,
        }
    };
    for d in &req.deletions {
        let user = d.name.as_str();
        if seen(user, &mut outcomes) {
            continue;
        }
        let outcome = check_name_and_mechanism(user, d.mechanism).and_then(|m| {
            image
                .scram_credential(user, m)
                .map(|_| records.push((user.to_string(), MetadataRecord::RemoveScramCredential { user: user.to_string(), mechanism: m })))
                .ok_or((ResponseError::ResourceNotFound, "Attempt to delete a user credential that does not exist"))
        });
        outcomes.push((user.to_string(), outcome));
    }
    for u in &req.upsertions {
        let user = u.name.as_str();
        if seen(user, &mut outcomes) {
            continue;
        }
        let outcome = check_name_and_mechanism(user, u.mechanism).and_then(|m| {
            if u.iterations < ScramMechanism::MIN_ITERATIONS {
                return Err((ResponseError::UnacceptableCredential, "Too few iterations"));
            }
            if u.iterations > ScramMechanism::MAX_ITERATIONS {
                return Err((ResponseError::UnacceptableCredential, "Too many iterations"));
            }
            let c = ScramCredential::from_salted_password(m, &u.salt, &u.salted_password, u.iterations);
            let record = MetadataRecord::ScramCredential {
                user: user.to_string(),
                mechanism: m,
                salt: ScramBytes(c.salt),
                stored_key: ScramBytes(c.stored_key),
                server_key: ScramBytes(c.server_key),
                iterations: c.iterations,
            };
            records.push((user.to_string(), record));
            Ok(())
        });
        outcomes.push((user.to_string(), outcome));
    }
    // A user refused as altered twice writes nothing.
    let ok = |user: &str| outcomes.iter().any(|(u, o)| u == user && o.is_ok());
    let records = records.into_iter().filter(|(u, _)| ok(u)).map(|(_, r)| r).collect();
    (records, outcomes)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};

    use super::*;

    fn up(name: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion::default()
            .with_name(str_bytes(name))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(Bytes::from_static(b"salt"))
            .with_salted_password(Bytes::from_static(&[7; 64]))
    }

    fn del(name: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default().with_name(str_bytes(name)).with_mechanism(mechanism)
    }

    #[test]
    fn kafkas_checks() {
        let mut image = MetadataImage::default();
        let req = AlterUserScramCredentialsRequest::default().with_deletions(vec![del("gone", 2)]).with_upsertions(vec![
            up("twice", 1, 4096),
            up("alice", 2, 4096),
            up("twice", 2, 8192),
            up("gone", 1, 4096),
            up("", 1, 4096),
            up("few", 1, 4095),
            up("many", 2, 16385),
            up("what", 3, 4096),
        ]);
        let (records, outcomes) = plan(&image, &req);
        let codes: Vec<(&str, i16)> = outcomes.iter().map(|(u, o)| (u.as_str(), o.err().map_or(0, |(c, _)| c.code()))).collect();
        assert_eq!(
            codes,
            [
                // The first outcome of a user stands (ScramControlManager's userToError).
                ("gone", ResponseError::ResourceNotFound.code()),
                ("twice", ResponseError::DuplicateResource.code()),
                ("alice", 0),
                ("", ResponseError::UnacceptableCredential.code()),
                ("few", ResponseError::UnacceptableCredential.code()),
                ("many", ResponseError::UnacceptableCredential.code()),
                ("what", ResponseError::UnsupportedSaslMechanism.code()),
            ]
        );
        assert_eq!(records.len(), 1);
        for r in &records {
            image.apply(r);
        }
        let stored = image.scram_credential("alice", ScramMechanism::Sha512).unwrap();
        assert_eq!(stored, &ScramCredential::from_salted_password(ScramMechanism::Sha512, b"salt", &[7; 64], 4096));
        assert_ne!(stored.stored_key, vec![7; 64], "the salted password itself is not stored");
        let (records, outcomes) = plan(&image, &AlterUserScramCredentialsRequest::default().with_deletions(vec![del("alice", 2)]));
        assert!(outcomes[0].1.is_ok() && matches!(records[..], [MetadataRecord::RemoveScramCredential { .. }]));
    }
}
