//! Kafka's `KafkaPrincipal`: a type (always `User` for the principals a
//! broker builds) and a name. A connection that has not authenticated
//! (PLAINTEXT, or SSL without a client certificate) is `User:ANONYMOUS`, as
//! in Kafka; ACLs and `super.users` name principals in this `Type:name` form.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

impl KafkaPrincipal {
    pub const USER_TYPE: &'static str = "User";

    pub fn user(name: impl Into<String>) -> Self {
        Self { principal_type: Self::USER_TYPE.to_string(), name: name.into() }
    }

    /// `User:ANONYMOUS`, Kafka's principal for unauthenticated connections.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// Parses `Type:name` (`SecurityUtils.parseKafkaPrincipal`): the name may
    /// itself contain colons (a certificate's distinguished name does not,
    /// but `User:CN=a:b` is still one principal).
    pub fn parse(text: &str) -> Option<Self> {
        let (principal_type, name) = text.split_once(':')?;
        (!principal_type.is_empty() && !name.is_empty())
            .then(|| Self { principal_type: principal_type.to_string(), name: name.to_string() })
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        let p = KafkaPrincipal::parse("User:CN=client,O=fjord").unwrap();
        assert_eq!((p.principal_type.as_str(), p.name.as_str()), ("User", "CN=client,O=fjord"));
        assert_eq!(p.to_string(), "User:CN=client,O=fjord");
        assert_eq!(KafkaPrincipal::parse("User:a:b").unwrap().name, "a:b");
        assert_eq!(KafkaPrincipal::anonymous().to_string(), "User:ANONYMOUS");
        for bad in ["", "User", "User:", ":alice"] {
            assert_eq!(KafkaPrincipal::parse(bad), None, "{bad:?}");
        }
    }
}
