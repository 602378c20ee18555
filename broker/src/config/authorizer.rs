//! `authorizer.class.name`, `super.users` and
//! `allow.everyone.if.no.acl.found`: whether ACLs are enforced, and who is
//! above them. Fjord has one authorizer, built in, with the semantics of
//! Kafka's `StandardAuthorizer`; any class name turns it on.

use std::collections::BTreeMap;

use super::broker::ConfigError;
use crate::security::KafkaPrincipal;
use crate::security::authorizer::AuthorizerConfig;

/// The class names Kafka users put there; others get a warning.
const KNOWN_CLASSES: &[&str] = &["org.apache.kafka.metadata.authorizer.StandardAuthorizer", "kafka.security.authorizer.AclAuthorizer"];

/// `None`: no authorizer (Kafka's default), every request is allowed.
pub fn read(explicit: &BTreeMap<String, String>, warnings: &mut Vec<String>) -> Result<Option<AuthorizerConfig>, ConfigError> {
    let class = explicit.get("authorizer.class.name").map(|c| c.trim()).unwrap_or_default();
    if class.is_empty() {
        return Ok(None);
    }
    if !KNOWN_CLASSES.contains(&class) {
        warnings.push(format!("authorizer.class.name={class}: fjord uses its built-in ACL authorizer (Kafka's StandardAuthorizer rules)"));
    }
    let mut super_users = Vec::new();
    for entry in explicit.get("super.users").map(String::as_str).unwrap_or_default().split(';') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let principal = KafkaPrincipal::parse(entry).ok_or_else(|| ConfigError::InvalidValue {
            key: "super.users".into(),
            value: entry.into(),
            reason: "expected principals as Type:name, separated by ;".into(),
        })?;
        super_users.push(principal.to_string());
    }
    let allow_if_no_acl = match explicit.get("allow.everyone.if.no.acl.found").map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            return Err(ConfigError::InvalidValue {
                key: "allow.everyone.if.no.acl.found".into(),
                value: v,
                reason: "expected true or false".into(),
            });
        }
    };
    Ok(Some(AuthorizerConfig { super_users, allow_if_no_acl }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_pairs(p: &[(&str, &str)]) -> Result<Option<AuthorizerConfig>, ConfigError> {
        let m: BTreeMap<String, String> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        read(&m, &mut Vec::new())
    }

    #[test]
    fn off_unless_a_class_is_named() {
        assert_eq!(read_pairs(&[("super.users", "User:a")]).unwrap(), None);
        let on = read_pairs(&[
            ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
            ("super.users", "User:admin; User:CN=ops,O=x"),
            ("allow.everyone.if.no.acl.found", "true"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(on.super_users, ["User:admin", "User:CN=ops,O=x"]);
        assert!(on.allow_if_no_acl);
        assert!(read_pairs(&[("authorizer.class.name", "x"), ("super.users", "admin")]).is_err());
        assert!(read_pairs(&[("authorizer.class.name", "x"), ("allow.everyone.if.no.acl.found", "yes")]).is_err());
    }
}
