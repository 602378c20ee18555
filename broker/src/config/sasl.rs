//! SASL settings under Kafka's names. Part of [`crate::config::BrokerConfig`].
//!
//! - `sasl.enabled.mechanisms` (Kafka's default GSSAPI), per listener
//!   `listener.name.<listener>.sasl.enabled.mechanisms`. Fjord serves PLAIN,
//!   SCRAM-SHA-256 and SCRAM-SHA-512; other names are warned about and left out.
//! - PLAIN's users come from the JAAS config as Kafka reads it:
//!   `listener.name.<listener>.plain.sasl.jaas.config`, else
//!   `plain.sasl.jaas.config`, else (Fjord's shorthand; Kafka's broker reads
//!   a JAAS file then) `sasl.jaas.config`, each
//!   `org.apache.kafka.common.security.plain.PlainLoginModule required ... user_<name>="<password>" ...;`.
//! - `connections.max.reauth.ms` (KIP-368, 0 = no re-authentication).
//!
//! Passwords are held as [`Password`], whose `Debug` hides them.

use std::collections::BTreeMap;

use super::broker::ConfigError;
use super::listener::{Listener, SecurityProtocol};
use crate::security::sasl::{Mechanism, Password};

const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// What one SASL listener serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerSasl {
    /// Enabled and served, in the configured order (SaslHandshake lists them).
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users and passwords (`user_<name>` options).
    pub plain_users: BTreeMap<String, Password>,
}

/// SASL settings of every SASL listener, by listener name (upper case).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslConfig {
    pub listeners: BTreeMap<String, ListenerSasl>,
    /// `connections.max.reauth.ms`; 0 means sessions never expire.
    pub connections_max_reauth_ms: i64,
}

impl SaslConfig {
    /// The settings of `listener`, if it is a SASL listener.
    pub fn listener(&self, listener: &str) -> Option<&ListenerSasl> {
        self.listeners.get(listener)
    }

    /// Reads the settings for every SASL listener in `listeners` from the
    /// explicit settings; unsupported mechanisms become warnings.
    pub fn read(explicit: &BTreeMap<String, String>, listeners: &[Listener], warnings: &mut Vec<String>) -> Result<Self, ConfigError> {
        let reauth_key = "connections.max.reauth.ms";
        let connections_max_reauth_ms = match explicit.get(reauth_key) {
            None => 0,
            Some(v) => v.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ConfigError::InvalidValue {
                key: reauth_key.into(),
                value: v.clone(),
                reason: "not a non-negative integer".into(),
            })?,
        };
        let mut out = BTreeMap::new();
        for l in listeners.iter().filter(|l| matches!(l.security_protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)) {
            out.insert(l.name.clone(), read_listener(explicit, &l.name, warnings)?);
        }
        Ok(Self { listeners: out, connections_max_reauth_ms })
    }
}

fn read_listener(explicit: &BTreeMap<String, String>, name: &str, warnings: &mut Vec<String>) -> Result<ListenerSasl, ConfigError> {
    let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
    let (key, value) = [format!("{prefix}sasl.enabled.mechanisms"), "sasl.enabled.mechanisms".to_string()]
        .into_iter()
        .find_map(|k| explicit.get(&k).map(|v| (k, v.clone())))
        .unwrap_or_else(|| ("sasl.enabled.mechanisms".into(), "GSSAPI".into()));
    let mut mechanisms = Vec::new();
    for m in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        match Mechanism::from_name(m) {
            Some(m) if !mechanisms.contains(&m) => mechanisms.push(m),
            Some(_) => {}
            None => warnings
                .push(format!("{key}: SASL mechanism {m} is not supported by Fjord (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), left out")),
        }
    }
    if mechanisms.is_empty() {
        return Err(ConfigError::InvalidValue {
            key,
            value,
            reason: format!(
                "listener {name} uses SASL but no mechanism Fjord serves is enabled; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            ),
        });
    }
    let mut plain_users = BTreeMap::new();
    for m in &mechanisms {
        let lower = m.name().to_ascii_lowercase();
        let keys = [format!("{prefix}{lower}.sasl.jaas.config"), format!("{lower}.sasl.jaas.config"), "sasl.jaas.config".to_string()];
        let Some((key, text)) = keys.into_iter().find_map(|k| explicit.get(&k).map(|v| (k, v))) else {
            if *m == Mechanism::Plain {
                return Err(ConfigError::Inconsistent(format!(
                    "listener {name} enables PLAIN but no JAAS config names its users: set {prefix}plain.sasl.jaas.config"
                )));
            }
            continue;
        };
        // The value is never put in an error: it holds passwords.
        let jaas =
            JaasEntry::parse(text).map_err(|reason| ConfigError::InvalidValue { key: key.clone(), value: "[hidden]".into(), reason })?;
        match m {
            Mechanism::Plain if jaas.module == PLAIN_LOGIN_MODULE => {
                plain_users = jaas.options.into_iter().filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v))).collect();
            }
            Mechanism::Scram(_) if jaas.module == SCRAM_LOGIN_MODULE => {}
            // The un-prefixed fallbacks may be meant for another mechanism.
            _ if key == "sasl.jaas.config" => {}
            _ => {
                return Err(ConfigError::InvalidValue {
                    key,
                    value: "[hidden]".into(),
                    reason: format!("login module {} cannot serve {m}", jaas.module),
                });
            }
        }
    }
    Ok(ListenerSasl { mechanisms, plain_users })
}

/// One login module entry of a `sasl.jaas.config` value (Kafka's
/// `JaasConfig`: `<module> <flag> [key=value ...];`, exactly one entry).
#[derive(Debug, PartialEq, Eq)]
struct JaasEntry {
    module: String,
    options: Vec<(String, Password)>,
}

impl JaasEntry {
    /// The reason for a refusal never quotes the text (it holds passwords).
    fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = jaas_tokens(text)?.into_iter();
        let module = match tokens.next() {
            Some(Token::Word(w)) => w,
            _ => return Err("JAAS config entry is missing a login module name".into()),
        };
        match tokens.next() {
            Some(Token::Word(f)) if ["required", "requisite", "sufficient", "optional"].contains(&f.to_ascii_lowercase().as_str()) => {}
            _ => return Err(format!("JAAS config entry for {module}: login module control flag not specified")),
        }
        let mut options = Vec::new();
        loop {
            match tokens.next() {
                Some(Token::Semicolon) => break,
                Some(Token::Word(key)) => {
                    let (Some(Token::Equals), Some(Token::Word(value) | Token::Quoted(value))) = (tokens.next(), tokens.next()) else {
                        return Err(format!("JAAS config entry for {module}: option {key} has no value (key=\"value\")"));
                    };
                    options.push((key, Password::new(value)));
                }
                _ => return Err(format!("JAAS config entry for {module}: expected key=\"value\" options ending with ';'")),
            }
        }
        if tokens.next().is_some() {
            return Err("JAAS config must have exactly one login module entry".into());
        }
        Ok(Self { module, options })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

/// Java's `StreamTokenizer` as `JaasConfig` sets it up, far enough: words,
/// double-quoted strings with backslash escapes, `=` and `;`.
fn jaas_tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '=' => out.push(Token::Equals),
            ';' => out.push(Token::Semicolon),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("JAAS config has an unterminated quoted value".into()),
                        Some('"') => break,
                        Some('\\') => s.push(chars.next().ok_or("JAAS config has an unterminated quoted value")?),
                        Some(c) => s.push(c),
                    }
                }
                out.push(Token::Quoted(s));
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '=' | ';' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    fn sasl_listener(name: &str) -> Listener {
        Listener { name: name.into(), host: "127.0.0.1".into(), port: 0, security_protocol: SecurityProtocol::SaslPlaintext }
    }

    fn read(pairs: &[(&str, &str)]) -> Result<(SaslConfig, Vec<String>), ConfigError> {
        let explicit = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut warnings = Vec::new();
        let listeners =
            [sasl_listener("SASL_PLAINTEXT"), Listener { security_protocol: SecurityProtocol::Plaintext, ..sasl_listener("PLAINTEXT") }];
        SaslConfig::read(&explicit, &listeners, &mut warnings).map(|c| (c, warnings))
    }

    #[test]
    fn plain_users_from_the_listener_jaas() {
        let (c, warnings) = read(&[
            ("sasl.enabled.mechanisms", "GSSAPI,PLAIN,SCRAM-SHA-512"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
            ("connections.max.reauth.ms", "60000"),
        ])
        .unwrap();
        let l = c.listener("SASL_PLAINTEXT").unwrap();
        assert_eq!(l.mechanisms, [Mechanism::Plain, Mechanism::Scram(crate::security::sasl::ScramMechanism::Sha512)]);
        assert_eq!(l.plain_users.keys().collect::<Vec<_>>(), ["admin", "alice"]);
        assert_eq!(l.plain_users["alice"].expose(), "alice-secret");
        assert_eq!(c.connections_max_reauth_ms, 60000);
        assert!(c.listener("PLAINTEXT").is_none());
        assert_eq!(warnings.len(), 1, "GSSAPI is warned about: {warnings:?}");
        assert!(!format!("{c:?}").contains("secret"), "Debug shows no password: {c:?}");
    }

    #[test]
    fn listener_override_and_unprefixed_fallback() {
        let (c, _) = read(&[
            ("sasl.enabled.mechanisms", "SCRAM-SHA-256"),
            ("listener.name.sasl_plaintext.sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.jaas.config", JAAS),
        ])
        .unwrap();
        assert_eq!(c.listener("SASL_PLAINTEXT").unwrap().mechanisms, [Mechanism::Plain]);
        assert_eq!(c.listener("SASL_PLAINTEXT").unwrap().plain_users.len(), 2);
    }

    #[test]
    fn refusals_never_quote_the_secret() {
        let bad = [
            r#"org.apache.kafka.common.security.plain.PlainLoginModule user_alice="alice-secret";"#,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret""#,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret;"#,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice;"#,
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required user_alice="alice-secret";"#,
        ];
        for jaas in bad {
            let e = read(&[("sasl.enabled.mechanisms", "PLAIN"), ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas)])
                .expect_err(jaas)
                .to_string();
            assert!(!e.contains("alice-secret") && !e.contains('\n'), "{e}");
        }
        let e = read(&[]).unwrap_err().to_string();
        assert!(e.contains("GSSAPI"), "Kafka's default GSSAPI is not served: {e}");
        let e = read(&[("sasl.enabled.mechanisms", "PLAIN")]).unwrap_err().to_string();
        assert!(e.contains("listener.name.sasl_plaintext.plain.sasl.jaas.config"), "{e}");
    }

    #[test]
    fn quoted_values_unescape() {
        let e = JaasEntry::parse(r#"m required a="x\"y" b=plain;"#).unwrap();
        assert_eq!(e.options[0].1.expose(), "x\"y");
        assert_eq!(e.options[1].1.expose(), "plain");
    }
}
