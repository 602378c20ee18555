//! One connection's security state, shared by the connection's read loop
//! and every request's [`RequestContext`](crate::handlers::RequestContext):
//! the listener and its security protocol, the peer, and the principal the
//! connection has authenticated as (`User:ANONYMOUS` until then; a TLS
//! client certificate sets it at the handshake, SASL at SaslAuthenticate).
//!
//! On a SASL listener the session also holds where the SASL login stands
//! ([`SaslState`]); [`Session::admits`] is the gate the read loop asks
//! before dispatching a request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use crate::config::SecurityProtocol;
use crate::security::KafkaPrincipal;
use crate::security::sasl::scram::ScramServer;
use crate::security::sasl::{Mechanism, allowed_before_auth};

pub struct Session {
    pub listener: Arc<str>,
    pub security_protocol: SecurityProtocol,
    pub peer: SocketAddr,
    /// The peer's IP as ACLs name hosts, formatted once per connection
    /// rather than at every authorization check.
    pub peer_host: Arc<str>,
    principal: RwLock<Arc<KafkaPrincipal>>,
    sasl: Mutex<SaslState>,
}

/// Where a SASL login stands (Kafka's `SaslServerAuthenticator` states).
/// Touched by the SaslHandshake and SaslAuthenticate handlers, which run
/// one at a time per connection, in request order; never held across an await.
#[derive(Debug, Default)]
pub struct SaslState {
    /// The mechanism named by the last SaslHandshake, until its login ends.
    pub mechanism: Option<Mechanism>,
    /// A SCRAM exchange between its two SaslAuthenticate requests.
    pub scram: Option<ScramServer>,
    /// The user a login succeeded for (kept through re-authentication).
    pub user: Option<String>,
    /// KIP-368: when the login stops counting (`connections.max.reauth.ms`).
    pub expires_at: Option<Instant>,
    /// A login failed: Kafka closes the connection after the response, so
    /// nothing more is served on it.
    pub failed: bool,
}

impl Session {
    pub fn new(listener: Arc<str>, security_protocol: SecurityProtocol, peer: SocketAddr, principal: KafkaPrincipal) -> Self {
        Self {
            listener,
            security_protocol,
            peer,
            peer_host: peer.ip().to_string().into(),
            principal: RwLock::new(Arc::new(principal)),
            sasl: Mutex::new(SaslState::default()),
        }
    }

    /// Who the connection is now.
    pub fn principal(&self) -> Arc<KafkaPrincipal> {
        Arc::clone(&self.principal.read().expect("session principal lock"))
    }

    /// After a successful authentication.
    pub fn set_principal(&self, principal: KafkaPrincipal) {
        *self.principal.write().expect("session principal lock") = Arc::new(principal);
    }

    /// Whether the listener is SASL_PLAINTEXT or SASL_SSL.
    pub fn is_sasl(&self) -> bool {
        matches!(self.security_protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    /// The SASL login state, locked for the caller.
    pub fn sasl(&self) -> MutexGuard<'_, SaslState> {
        self.sasl.lock().expect("session SASL lock")
    }

    /// Whether requests other than ApiVersions and SASL's own may be served:
    /// always on a listener without SASL; on a SASL listener once a login
    /// succeeded and while its session has not expired (KIP-368).
    pub fn is_authenticated(&self) -> bool {
        !self.is_sasl() || self.sasl().is_authenticated(Instant::now())
    }

    /// The gate for one request: `Err` (why) means close the connection, as
    /// Kafka does for a request before authentication, after a failed one,
    /// or after the session expired without re-authentication.
    pub fn admits(&self, api_key: i16) -> Result<(), &'static str> {
        if !self.is_sasl() {
            return Ok(());
        }
        let state = self.sasl();
        if state.failed {
            return Err("SASL authentication failed on this connection");
        }
        if state.is_authenticated(Instant::now()) || allowed_before_auth(api_key) {
            return Ok(());
        }
        if state.user.is_some() {
            Err("SASL session expired (connections.max.reauth.ms)")
        } else {
            Err("request before SASL authentication")
        }
    }
}

impl SaslState {
    pub fn is_authenticated(&self, now: Instant) -> bool {
        !self.failed && self.user.is_some() && self.expires_at.is_none_or(|t| now < t)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn session(protocol: SecurityProtocol) -> Session {
        Session::new(Arc::from("L"), protocol, "127.0.0.1:1".parse().unwrap(), KafkaPrincipal::anonymous())
    }

    #[test]
    fn gate() {
        let plain = session(SecurityProtocol::Plaintext);
        assert!(plain.is_authenticated() && plain.admits(0).is_ok());
        let s = session(SecurityProtocol::SaslPlaintext);
        assert!(!s.is_authenticated());
        assert!(s.admits(18).is_ok() && s.admits(17).is_ok() && s.admits(36).is_ok());
        assert!(s.admits(0).is_err() && s.admits(3).is_err());
        s.sasl().user = Some("alice".into());
        assert!(s.is_authenticated() && s.admits(0).is_ok());
        s.sasl().expires_at = Some(Instant::now() - Duration::from_millis(1));
        assert_eq!(s.admits(0), Err("SASL session expired (connections.max.reauth.ms)"));
        assert!(s.admits(17).is_ok(), "re-authentication is still served");
        s.sasl().failed = true;
        assert!(s.admits(18).is_err());
    }
}
