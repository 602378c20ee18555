//! SaslAuthenticate (key 36): one SASL token each way (KIP-152). PLAIN
//! finishes in one request, SCRAM in two. A success makes the connection's
//! principal `User:<name>` and, with `connections.max.reauth.ms` set, tells
//! the client (v1+) how long the session lasts (KIP-368); the client
//! re-authenticates with a new SaslHandshake before then, as the same user.
//!
//! A failure answers SASL_AUTHENTICATION_FAILED with Kafka's message (its
//! own for PLAIN's refusals, a generic one naming the mechanism for
//! SCRAM, so an unknown user and a wrong password look the same) and marks
//! the session failed: Kafka closes the connection after that response, and
//! the session's gate closes it on the next request.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::util::str_bytes;
use super::{Pending, Reply, RequestContext, ready, respond};
use crate::security::KafkaPrincipal;
use crate::security::sasl::scram::Step;
use crate::security::sasl::{Mechanism, SaslError, plain};
use crate::server::session::SaslState;

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

/// Where one token leaves the login.
enum Outcome {
    Continue(Vec<u8>),
    Done { user: String, token: Vec<u8> },
}

pub fn handle(ctx: Arc<RequestContext>, req: SaslAuthenticateRequest) -> Pending {
    let illegal = |message: &str| {
        SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(str_bytes(message)))
    };
    let listener = ctx.broker.config.sasl.listener(&ctx.listener).filter(|_| ctx.session.is_sasl());
    let Some(listener) = listener else {
        // KafkaApis.handleSaslAuthenticateRequest: the listener authenticated the connection already.
        return ready(respond(&ctx, &illegal("SaslAuthenticate request received after successful authentication")));
    };
    let mut state = ctx.session.sasl();
    if state.failed {
        return ready(Reply::Close("SaslAuthenticate after a failed SASL authentication".into()));
    }
    let Some(mechanism) = state.mechanism else {
        state.failed = true;
        return ready(respond(&ctx, &illegal("Unexpected SaslAuthenticate request without a SaslHandshake before it")));
    };
    let outcome = match mechanism {
        Mechanism::Plain => {
            plain::authenticate(&req.auth_bytes, &listener.plain_users).map(|user| Outcome::Done { user, token: Vec::new() })
        }
        Mechanism::Scram(m) => match state.scram.as_mut() {
            Some(server) => {
                let image = ctx.broker.metadata.image();
                server.step(&req.auth_bytes, |user| image.scram_credential(user, m).cloned()).map(|step| match step {
                    Step::Continue(token) => Outcome::Continue(token),
                    Step::Done { user, server_final } => Outcome::Done { user, token: server_final },
                })
            }
            None => Err(SaslError::Invalid("SCRAM exchange already finished".into())),
        },
    };
    let outcome = outcome.and_then(|o| match o {
        Outcome::Done { user, token } => succeed(&ctx, &mut state, mechanism, user).map(|lifetime_ms| (token, lifetime_ms)),
        Outcome::Continue(token) => Ok((token, 0)),
    });
    let response = match outcome {
        Ok((token, lifetime_ms)) => {
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token)).with_session_lifetime_ms(lifetime_ms)
        }
        Err(e) => {
            let message = e.client_message(mechanism);
            let detail = match &e {
                SaslError::Invalid(d) | SaslError::Refused(d) => d.as_str(),
            };
            // Kafka logs failed logins at INFO, with the peer; never a password.
            tracing::info!(peer = %ctx.peer, listener = %ctx.listener, %mechanism, "Failed authentication: {detail}");
            crate::metrics::metrics().failed_authentication(&ctx.listener);
            *state = SaslState { failed: true, ..SaslState::default() };
            SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(str_bytes(&message)))
        }
    };
    ready(respond(&ctx, &response))
}

/// Records the login; the session lifetime to report (0: none).
fn succeed(ctx: &RequestContext, state: &mut SaslState, mechanism: Mechanism, user: String) -> Result<i64, SaslError> {
    if let Some(previous) = state.user.as_deref()
        && previous != user
    {
        return Err(SaslError::Refused(format!("Cannot change principals during re-authentication from User:{previous}: User:{user}")));
    }
    let reauth_ms = ctx.broker.config.sasl.connections_max_reauth_ms;
    state.expires_at = (reauth_ms > 0).then(|| Instant::now() + Duration::from_millis(reauth_ms as u64));
    state.mechanism = None;
    state.scram = None;
    tracing::debug!(peer = %ctx.peer, listener = %ctx.listener, %mechanism, user = %user, "SASL authentication succeeded");
    ctx.session.set_principal(KafkaPrincipal::user(user.clone()));
    state.user = Some(user);
    Ok(reauth_ms)
}
