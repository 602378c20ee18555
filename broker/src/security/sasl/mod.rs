//! SASL authentication (KIP-43, KIP-152, KIP-368): the mechanisms Fjord
//! serves and what the connection gate needs.
//!
//! - [`plain`]: SASL/PLAIN, users from the listener's JAAS config.
//! - [`scram`]: SCRAM-SHA-256/512, credentials from the cluster metadata.
//!
//! The flow is Kafka's framed one: SaslHandshake (v1) names the mechanism,
//! then SaslAuthenticate requests carry the tokens
//! (`handlers/sasl_handshake.rs`, `handlers/sasl_authenticate.rs`); the
//! per-connection state is in [`crate::server::session::Session`].

pub mod plain;
pub mod scram;

use std::fmt;

pub use scram::{ScramCredential, ScramMechanism};

/// A mechanism Fjord can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha256), Mechanism::Scram(ScramMechanism::Sha512)];

    /// Kafka's mechanism name (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
        }
    }

    /// By name, case-sensitive as Kafka compares them.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an authentication failed. Kafka answers a `SaslAuthenticationException`
/// with its own message (`Refused`) and any other `SaslException` with a
/// generic one naming the mechanism (`Invalid`, whose detail is for the
/// broker's debug log only). Neither ever holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    Refused(String),
    Invalid(String),
}

impl SaslError {
    /// The `error_message` of the SaslAuthenticate response.
    pub fn client_message(&self, mechanism: Mechanism) -> String {
        match self {
            Self::Refused(m) => m.clone(),
            Self::Invalid(_) => {
                format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
            }
        }
    }
}

/// A secret from the config. `Debug` and `Display` print `[hidden]`, as
/// Kafka's `Password` does, so no log line or debug dump can show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; only for comparing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

/// API keys a SASL listener serves before the connection has authenticated
/// (Kafka's `SaslServerAuthenticator`): ApiVersions (18), SaslHandshake
/// (17) and SaslAuthenticate (36). Anything else closes the connection.
pub fn allowed_before_auth(api_key: i16) -> bool {
    matches!(api_key, 17 | 18 | 36)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_passwords_hide() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(Mechanism::from_name("plain"), None, "Kafka compares mechanism names exactly");
        assert_eq!(format!("{:?} {}", Password::new("s3cret"), Password::new("s3cret")), "[hidden] [hidden]");
        assert!(allowed_before_auth(18) && allowed_before_auth(17) && allowed_before_auth(36));
        assert!(!allowed_before_auth(0) && !allowed_before_auth(3));
    }
}
