//! SaslHandshake (key 17): the client names the SASL mechanism it will use.
//! Kafka's `SaslServerAuthenticator.handleHandshakeRequest`: a mechanism the
//! listener does not enable gets UNSUPPORTED_SASL_MECHANISM with the enabled
//! list, and the connection is done; on a listener without SASL the request
//! reaches `KafkaApis`, which answers ILLEGAL_SASL_STATE.
//!
//! v1 announces Kafka-framed tokens (SaslAuthenticate). v0 announced raw
//! tokens without Kafka framing; Fjord answers it but serves only the
//! framed flow, so raw tokens that follow do not parse and close the connection.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use super::util::str_bytes;
use super::{Pending, Reply, RequestContext, ready, respond};
use crate::security::sasl::Mechanism;
use crate::security::sasl::scram::ScramServer;

pub const VERSIONS: RangeInclusive<i16> = 0..=1;

pub fn handle(ctx: Arc<RequestContext>, req: SaslHandshakeRequest) -> Pending {
    let illegal = || ready(respond(&ctx, &SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())));
    let Some(listener) = ctx.broker.config.sasl.listener(&ctx.listener).filter(|_| ctx.session.is_sasl()) else {
        return illegal();
    };
    // Re-authentication (KIP-368) only where sessions expire; otherwise an
    // authenticated connection's handshake reaches KafkaApis, as on a listener without SASL.
    if ctx.broker.config.sasl.connections_max_reauth_ms == 0 && ctx.session.sasl().user.is_some() {
        return illegal();
    }
    let enabled = listener.mechanisms.iter().map(|m| str_bytes(m.name())).collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
    let mut state = ctx.session.sasl();
    if state.failed {
        return ready(Reply::Close("SaslHandshake after a failed SASL authentication".into()));
    }
    let asked = req.mechanism.as_str();
    match Mechanism::from_name(asked).filter(|m| listener.mechanisms.contains(m)) {
        Some(m) => {
            state.mechanism = Some(m);
            state.scram = match m {
                Mechanism::Scram(s) => Some(ScramServer::new(s)),
                Mechanism::Plain => None,
            };
            ready(respond(&ctx, &response))
        }
        None => {
            tracing::info!(peer = %ctx.peer, listener = %ctx.listener, mechanism = %asked, "unsupported SASL mechanism requested");
            state.failed = true;
            state.mechanism = None;
            state.scram = None;
            ready(respond(&ctx, &response.with_error_code(ResponseError::UnsupportedSaslMechanism.code())))
        }
    }
}
