//! SASL/PLAIN (RFC 4616) as Kafka's `PlainSaslServer` checks it: one
//! message `authzid NUL authcid NUL password`, the authzid empty or equal
//! to the user name, the password compared with the one the listener's JAAS
//! config gives for `user_<name>` (in constant time).

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::{Password, SaslError};

/// Checks one PLAIN message against `users`; the authenticated user name.
pub fn authenticate(message: &[u8], users: &BTreeMap<String, Password>) -> Result<String, SaslError> {
    let text = std::str::from_utf8(message).map_err(|_| SaslError::Invalid("SASL/PLAIN response is not UTF-8".into()))?;
    let tokens: Vec<&str> = text.split('\0').collect();
    let [authzid, user, password] = tokens[..] else {
        return Err(SaslError::Invalid(format!("Invalid SASL/PLAIN response: expected 3 tokens, got {}", tokens.len())));
    };
    if user.is_empty() {
        return Err(SaslError::Refused("Authentication failed: username not specified".into()));
    }
    if password.is_empty() {
        return Err(SaslError::Refused("Authentication failed: password not specified".into()));
    }
    // An unknown user costs the same compare as a known one.
    let expected = users.get(user).map(|p| p.expose().as_bytes()).unwrap_or(b"\0unknown user\0");
    let matches = bool::from(expected.ct_eq(password.as_bytes())) && users.contains_key(user);
    if !matches {
        return Err(SaslError::Refused("Authentication failed: Invalid username or password".into()));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::Refused(
            "Authentication failed: Client requested an authorization id that is different from username".into(),
        ));
    }
    Ok(user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let users: BTreeMap<String, Password> =
            [("alice".to_string(), Password::new("alice-secret")), ("admin".into(), Password::new("admin-secret"))].into();
        let cases: &[(&[u8], Result<&str, &str>)] = &[
            (b"\0alice\0alice-secret", Ok("alice")),
            (b"alice\0alice\0alice-secret", Ok("alice")),
            (
                b"admin\0alice\0alice-secret",
                Err("Authentication failed: Client requested an authorization id that is different from username"),
            ),
            (b"\0alice\0wrong", Err("Authentication failed: Invalid username or password")),
            (b"\0bob\0alice-secret", Err("Authentication failed: Invalid username or password")),
            (b"\0\0x", Err("Authentication failed: username not specified")),
            (b"\0alice\0", Err("Authentication failed: password not specified")),
            (b"alice\0alice-secret", Err("Invalid SASL/PLAIN response: expected 3 tokens, got 2")),
            (b"\0alice\0alice-secret\0", Err("Invalid SASL/PLAIN response: expected 3 tokens, got 4")),
        ];
        for (msg, want) in cases {
            let got = authenticate(msg, &users);
            match (got, want) {
                (Ok(u), Ok(w)) => assert_eq!(&u, w),
                (Err(SaslError::Refused(m) | SaslError::Invalid(m)), Err(w)) => assert_eq!(&m, w),
                (got, want) => panic!("{msg:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
