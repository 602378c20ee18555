//! Who is asking: the principal a connection authenticated as, and (as the
//! parts land) how: TLS client certificates, SASL, and the ACLs checked
//! against the principal.
//!
//! - [`principal`]: Kafka's `KafkaPrincipal` (`User:alice`, `User:ANONYMOUS`).
//! - [`sasl`]: SASL PLAIN and SCRAM-SHA-256/512.
//! - [`acl`]: Kafka's ACL bindings and filters; [`authorizer`]: the decision.

pub mod acl;
pub mod authorizer;
pub mod principal;
pub mod sasl;

pub use principal::KafkaPrincipal;
