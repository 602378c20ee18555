//! TLS settings of the SSL and SASL_SSL listeners, under Kafka's names
//! (`SslConfigs`, `BrokerSecurityConfigs`). Each key may be given for one
//! listener as `listener.name.<name lower case>.ssl.X`, which wins over
//! `ssl.X` (Kafka's `valuesWithPrefixOverride`).
//!
//! Read once by [`crate::config::BrokerConfig::from_pairs`]: the keystore
//! and truststore files are read and checked here (a bad PEM, a key that does
//! not match its certificate, `required` client auth without a truststore),
//! so that a broken TLS setup is a one-line config error at startup, not a
//! failure of the first handshake. `server::tls` builds rustls from the result.
//!
//! PEM and PKCS12 stores (`ssl.keystore.password`, `ssl.truststore.password`;
//! one password for the store and its key, as keytool and openssl write
//! them). JKS, Java's own older format, is refused with the command that
//! converts it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use regex::Regex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::broker::ConfigError;
use super::listener::{Listener, SecurityProtocol};

/// `ssl.client.auth` (`SslClientAuth`): whether the broker asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Kafka's default: no certificate asked for.
    None,
    /// Asked for; a client without one connects as `User:ANONYMOUS`.
    Requested,
    /// A client without a certificate signed by the truststore is refused.
    Required,
}

/// One entry of `ssl.enabled.protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// The TLS side of one listener; built from the config, then immutable.
#[derive(Clone, PartialEq)]
pub struct TlsSettings {
    /// The listener's name, upper case.
    pub listener: String,
    /// The broker's certificate chain, leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The private key of `cert_chain[0]`.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// `ssl.truststore.*`: the CAs client certificates must chain to.
    pub trust_roots: Vec<CertificateDer<'static>>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`.
    pub protocols: Vec<TlsVersion>,
    /// `ssl.principal.mapping.rules`.
    pub principal_mapper: PrincipalMapper,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default) checks
    /// that a peer's certificate names the host dialled; empty does not.
    /// Used where this node is the client: the connections between nodes.
    pub verify_hostname: bool,
}

impl fmt::Debug for TlsSettings {
    // Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("listener", &self.listener)
            .field("certificates", &self.cert_chain.len())
            .field("trust_roots", &self.trust_roots.len())
            .field("client_auth", &self.client_auth)
            .field("protocols", &self.protocols)
            .field("principal_mapper", &self.principal_mapper)
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

/// The TLS settings of every SSL and SASL_SSL listener in `listeners`, by name.
pub(crate) fn read(explicit: &BTreeMap<String, String>, listeners: &[Listener]) -> Result<BTreeMap<String, TlsSettings>, ConfigError> {
    let mut out = BTreeMap::new();
    for l in listeners.iter().filter(|l| matches!(l.security_protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)) {
        let keys = ListenerKeys {
            explicit,
            prefix: format!("listener.name.{}.", l.name.to_ascii_lowercase()),
            listener: &l.name,
            sasl: l.security_protocol == SecurityProtocol::SaslSsl,
        };
        out.insert(l.name.clone(), keys.settings()?);
    }
    Ok(out)
}

/// The TLS of the connections between nodes (the raft transport, which
/// carries both the controller's and the inter-broker traffic), if either
/// the first controller listener or the inter-broker listener
/// (`inter.broker.listener.name`, else the one named by
/// `security.inter.broker.protocol`) is SSL or SASL_SSL: that listener's
/// settings, the controller's first. Every node, broker-only ones too, needs
/// them, with a truststore, since every node dials others and checks their
/// certificates. SASL does not apply between nodes: TLS authenticates them.
pub(crate) fn read_between_nodes(
    explicit: &BTreeMap<String, String>,
    protocols: &BTreeMap<String, SecurityProtocol>,
    controller_names: &[String],
) -> Result<Option<TlsSettings>, ConfigError> {
    let inter_broker = match explicit.get("inter.broker.listener.name") {
        Some(name) => name.trim().to_ascii_uppercase(),
        None => explicit.get("security.inter.broker.protocol").map_or("PLAINTEXT".to_string(), |p| p.trim().to_ascii_uppercase()),
    };
    let secure = |name: &String| matches!(protocols.get(name), Some(SecurityProtocol::Ssl | SecurityProtocol::SaslSsl));
    let Some(name) = controller_names.first().into_iter().chain([&inter_broker]).find(|n| secure(n)) else { return Ok(None) };
    let keys = ListenerKeys {
        explicit,
        prefix: format!("listener.name.{}.", name.to_ascii_lowercase()),
        listener: name,
        sasl: protocols.get(name) == Some(&SecurityProtocol::SaslSsl),
    };
    let settings = keys.settings()?;
    if settings.trust_roots.is_empty() {
        return Err(keys.fail(
            "nodes connect to each other over TLS on this listener and check each other's certificates: set ssl.truststore.location (PEM CA certificates) or ssl.truststore.certificates",
        ));
    }
    Ok(Some(settings))
}

/// Looks keys up for one listener: the listener-prefixed key, else the plain one.
struct ListenerKeys<'a> {
    explicit: &'a BTreeMap<String, String>,
    prefix: String,
    listener: &'a str,
    /// A SASL_SSL listener: SASL authenticates, so `ssl.client.auth` counts
    /// only when given for this listener (KIP-684).
    sasl: bool,
}

impl ListenerKeys<'_> {
    /// `(key as given, value)` of `name`, if set and not blank.
    fn get(&self, name: &str) -> Option<(String, String)> {
        let prefixed = format!("{}{name}", self.prefix);
        [prefixed, name.to_string()]
            .into_iter()
            .find_map(|k| self.explicit.get(&k).map(|v| (k, v.trim().to_string())))
            .filter(|(_, v)| !v.is_empty())
    }

    fn fail(&self, reason: impl fmt::Display) -> ConfigError {
        ConfigError::Inconsistent(format!("listener {}: {reason}", self.listener))
    }

    fn invalid(&self, (key, value): &(String, String), reason: impl fmt::Display) -> ConfigError {
        ConfigError::InvalidValue { key: key.clone(), value: value.clone(), reason: format!("{reason} (listener {})", self.listener) }
    }

    fn settings(&self) -> Result<TlsSettings, ConfigError> {
        let (cert_chain, key) = self.keystore()?;
        let trust_roots = self.truststore()?;
        let client_auth = self.client_auth()?;
        if client_auth != ClientAuth::None && trust_roots.is_empty() {
            return Err(self.fail(
                "ssl.client.auth asks for client certificates but no truststore is set: set ssl.truststore.location (PEM CA certificates) or ssl.truststore.certificates",
            ));
        }
        let protocols = self.protocols()?;
        let principal_mapper = match self.get("ssl.principal.mapping.rules") {
            None => PrincipalMapper::default(),
            Some(kv) => PrincipalMapper::parse(&kv.1).map_err(|e| self.invalid(&kv, e))?,
        };
        // Not `get`: an empty value is meaningful here (no hostname check).
        let prefixed = format!("{}ssl.endpoint.identification.algorithm", self.prefix);
        let algorithm = self.explicit.get(&prefixed).or_else(|| self.explicit.get("ssl.endpoint.identification.algorithm"));
        let verify_hostname = match algorithm.map(|v| v.trim().to_ascii_lowercase()) {
            None => true,
            Some(v) if v == "https" => true,
            Some(v) if v.is_empty() => false,
            Some(v) => {
                let key = if self.explicit.contains_key(&prefixed) { prefixed } else { "ssl.endpoint.identification.algorithm".into() };
                return Err(self.invalid(&(key, v), "expected https, or empty for no hostname check"));
            }
        };
        Ok(TlsSettings {
            listener: self.listener.to_string(),
            cert_chain,
            key: Arc::new(key),
            trust_roots,
            client_auth,
            protocols,
            principal_mapper,
            verify_hostname,
        })
    }

    /// `ssl.client.auth`; on SASL_SSL only the listener-prefixed key (KIP-684).
    fn client_auth(&self) -> Result<ClientAuth, ConfigError> {
        let given = self.get("ssl.client.auth").filter(|(k, _)| !self.sasl || k.starts_with(&self.prefix));
        let Some(kv) = given else { return Ok(ClientAuth::None) };
        match kv.1.to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            _ => Err(self.invalid(&kv, "expected none, requested or required")),
        }
    }

    /// `ssl.keystore.*`: the certificate chain and its key, checked to match.
    fn keystore(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
        if self.store_type("ssl.keystore.type")? == StoreType::Pkcs12 {
            return self.pkcs12_keystore();
        }
        let inline_key = self.get("ssl.keystore.key");
        let inline_chain = self.get("ssl.keystore.certificate.chain");
        let (chain_pem, key_pem, source) = match (self.get("ssl.keystore.location"), inline_key, inline_chain) {
            (Some(loc), None, None) => {
                let text = self.read_file(&loc)?;
                (text.clone(), text, loc)
            }
            (None, Some(key), Some(chain)) => (chain.1.clone(), key.1, chain),
            (None, None, None) => {
                return Err(self.fail(
                    "an SSL listener needs a keystore: set ssl.keystore.location (a PEM file with the private key and certificate chain) or ssl.keystore.key and ssl.keystore.certificate.chain",
                ));
            }
            _ => {
                return Err(
                    self.fail("give either ssl.keystore.location or both ssl.keystore.key and ssl.keystore.certificate.chain, not a mix")
                );
            }
        };
        let chain = self.certificates(&source, &chain_pem)?;
        if chain.is_empty() {
            return Err(self.invalid(&shown(&source), "no CERTIFICATE in the PEM text"));
        }
        let key = self.private_key(&source, &key_pem)?;
        check_key_matches(&chain, &key).map_err(|e| self.invalid(&shown(&source), e))?;
        Ok((chain, key))
    }

    /// `ssl.truststore.*`: the CA certificates, or none if not set.
    fn truststore(&self) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let pkcs12 = self.store_type("ssl.truststore.type")? == StoreType::Pkcs12;
        if pkcs12 && let Some(loc) = self.get("ssl.truststore.location") {
            let certs = self.pkcs12_truststore(&loc)?;
            return self.usable_roots(&loc, certs);
        }
        let (source, pem) = match (self.get("ssl.truststore.location"), self.get("ssl.truststore.certificates")) {
            (None, None) => return Ok(Vec::new()),
            (Some(loc), None) => {
                let text = self.read_file(&loc)?;
                (loc, text)
            }
            (None, Some(inline)) => (inline.clone(), inline.1),
            (Some(_), Some(_)) => return Err(self.fail("give either ssl.truststore.location or ssl.truststore.certificates, not both")),
        };
        let certs = self.certificates(&source, &pem)?;
        if certs.is_empty() {
            return Err(self.invalid(&shown(&source), "no CERTIFICATE in the PEM text"));
        }
        self.usable_roots(&source, certs)
    }

    fn usable_roots(
        &self,
        source: &(String, String),
        certs: Vec<CertificateDer<'static>>,
    ) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in &certs {
            roots.add(c.clone()).map_err(|e| self.invalid(&shown(source), format!("not a usable CA certificate: {e}")))?;
        }
        Ok(certs)
    }

    /// PEM (Fjord's default) or PKCS12; JKS gets the conversion to PKCS12.
    fn store_type(&self, name: &str) -> Result<StoreType, ConfigError> {
        let Some(kv) = self.get(name) else { return Ok(StoreType::Pem) };
        match kv.1.to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "JKS" => Err(self.invalid(
                &kv,
                format!("Fjord reads PEM and PKCS12 stores, not JKS; convert it (keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 -deststoretype PKCS12) and set {name}=PKCS12"),
            )),
            _ => Err(self.invalid(&kv, "expected PEM or PKCS12")),
        }
    }

    /// A PKCS12 file: its location setting, bytes and password (`<store>.password`, empty if unset).
    fn pkcs12_file(&self, store: &str) -> Result<Pkcs12File, ConfigError> {
        let loc = self.get(&format!("{store}.location")).ok_or_else(|| self.fail(format!("{store}.type=PKCS12 needs {store}.location")))?;
        let bytes = std::fs::read(&loc.1).map_err(|e| self.fail(format!("cannot read {} {}: {e}", loc.0, loc.1)))?;
        let password = self.get(&format!("{store}.password")).map(|(_, v)| v).unwrap_or_default();
        Ok((loc, bytes, password))
    }

    /// The one private key of a PKCS12 keystore and its certificate chain.
    fn pkcs12_keystore(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
        let (loc, bytes, password) = self.pkcs12_file("ssl.keystore")?;
        if password.is_empty() {
            return Err(self.fail("ssl.keystore.type=PKCS12 needs ssl.keystore.password"));
        }
        let store = p12_keystore::KeyStore::from_pkcs12(&bytes, &password, p12_keystore::Pkcs12ImportPolicy::Strict)
            .map_err(|e| self.invalid(&loc, format!("not a PKCS12 keystore this password opens: {e}")))?;
        let (_, chain) =
            store.private_key_chain().ok_or_else(|| self.invalid(&loc, "no private key with its certificate in the PKCS12 keystore"))?;
        let certs: Vec<CertificateDer<'static>> = chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
        if certs.is_empty() {
            return Err(self.invalid(&loc, "the private key in the PKCS12 keystore has no certificate"));
        }
        let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
        check_key_matches(&certs, &key).map_err(|e| self.invalid(&loc, e))?;
        Ok((certs, key))
    }

    /// Every certificate of a PKCS12 truststore.
    fn pkcs12_truststore(&self, loc: &(String, String)) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let (_, bytes, password) = self.pkcs12_file("ssl.truststore")?;
        let store = p12_keystore::KeyStore::from_pkcs12(&bytes, &password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
            .map_err(|e| self.invalid(loc, format!("not a PKCS12 truststore this password opens: {e}")))?;
        let certs: Vec<CertificateDer<'static>> = store
            .entries()
            .filter_map(|(_, e)| match e {
                p12_keystore::KeyStoreEntry::Certificate(c) => Some(CertificateDer::from(c.as_der().to_vec())),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(self.invalid(loc, "no trusted certificate in the PKCS12 truststore"));
        }
        Ok(certs)
    }

    fn read_file(&self, (key, path): &(String, String)) -> Result<String, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| self.fail(format!("cannot read {key} {path}: {e}")))?;
        String::from_utf8(bytes)
            .map_err(|_| self.fail(format!("{key} {path} is not PEM text (PKCS12 and JKS files are not read; use PEM)")))
    }

    fn certificates(&self, source: &(String, String), pem: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.invalid(&shown(source), format!("bad PEM: {e}")))
    }

    fn private_key(&self, source: &(String, String), pem: &str) -> Result<PrivateKeyDer<'static>, ConfigError> {
        if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(self.invalid(
                &shown(source),
                "encrypted private keys are not read yet; decrypt it (openssl pkey -in key.pem -out plain.pem) and leave ssl.key.password unset",
            ));
        }
        PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| self.invalid(&shown(source), format!("no usable PRIVATE KEY in the PEM text: {e}")))
    }

    fn protocols(&self) -> Result<Vec<TlsVersion>, ConfigError> {
        let Some(kv) = self.get("ssl.enabled.protocols") else { return Ok(vec![TlsVersion::Tls12, TlsVersion::Tls13]) };
        let mut out = Vec::new();
        for p in kv.1.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let v = match p {
                "TLSv1.2" => TlsVersion::Tls12,
                "TLSv1.3" => TlsVersion::Tls13,
                _ => return Err(self.invalid(&kv, format!("{p} is not supported; use TLSv1.2 and/or TLSv1.3"))),
            };
            if !out.contains(&v) {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Err(self.invalid(&kv, "no protocol enabled"));
        }
        Ok(out)
    }
}

/// See [`ListenerKeys::pkcs12_file`].
type Pkcs12File = ((String, String), Vec<u8>, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
}

/// A key's value for messages: a path as given, inline PEM text elided.
fn shown((key, value): &(String, String)) -> (String, String) {
    if value.contains("-----BEGIN") { (key.clone(), "<PEM text>".to_string()) } else { (key.clone(), value.clone()) }
}

fn check_key_matches(chain: &[CertificateDer<'static>], key: &PrivateKeyDer<'static>) -> Result<(), String> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key).map_err(|e| format!("unusable private key: {e}"))?;
    let certified = rustls::sign::CertifiedKey::new(chain.to_vec(), signing);
    certified.keys_match().map_err(|e| format!("the private key does not match the first certificate: {e}"))
}

/// Kafka's `SslPrincipalMapper`: `ssl.principal.mapping.rules`, tried in
/// order on the client certificate's distinguished name; the first that
/// matches gives the principal's name. No rule matching refuses the client.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrincipalMapper {
    rules: Vec<MappingRule>,
}

#[derive(Debug, Clone)]
enum MappingRule {
    /// The distinguished name as it is.
    Default,
    /// `RULE:pattern/replacement/[L|U]`.
    Rule { pattern: Regex, replacement: String, case: Option<char> },
}

impl PartialEq for MappingRule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Default, Self::Default) => true,
            (Self::Rule { pattern: a, replacement: ra, case: ca }, Self::Rule { pattern: b, replacement: rb, case: cb }) => {
                a.as_str() == b.as_str() && ra == rb && ca == cb
            }
            _ => false,
        }
    }
}

impl PrincipalMapper {
    /// Parses the rules as Kafka's `RULE_SPLITTER`/`RULE_PARSER` do: rules
    /// separated by commas (a comma inside a pattern belongs to the
    /// pattern), `\` escaping the next character, text after the closing `/`
    /// up to the next comma ignored. An empty list means `DEFAULT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(MappingRule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or_else(|| format!("rule {rest:?} has no closing / after its pattern"))?;
                let (replacement, after) =
                    until_slash(after).ok_or_else(|| format!("rule {rest:?} has no closing / after its replacement"))?;
                let case = after.chars().next().filter(|c| *c == 'L' || *c == 'U');
                // Java's matches(): the whole name must match.
                let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
                rules.push(MappingRule::Rule { pattern: regex, replacement: replacement.to_string(), case });
                rest = after;
            } else if !rest.starts_with(',') {
                return Err(format!("invalid rule {rest:?}: expected DEFAULT or RULE:pattern/replacement/[LU]"));
            }
            // What follows a rule up to the next separator is ignored, as Kafka's `.*?` does.
            rest = rest.split_once(',').map_or("", |(_, r)| r).trim_start();
        }
        if rules.is_empty() {
            rules.push(MappingRule::Default);
        }
        Ok(Self { rules })
    }

    /// The principal's name for `dn`, or `None` when no rule applies.
    pub fn apply(&self, dn: &str) -> Option<String> {
        if self.rules.is_empty() {
            return Some(dn.to_string());
        }
        self.rules.iter().find_map(|rule| match rule {
            MappingRule::Default => Some(dn.to_string()),
            MappingRule::Rule { pattern, replacement, case } => {
                let caps = pattern.captures(dn)?;
                let name = expand_java_replacement(&caps, replacement);
                Some(match case {
                    Some('L') => name.to_lowercase(),
                    Some('U') => name.to_uppercase(),
                    _ => name,
                })
            }
        })
    }
}

/// Splits at the first `/` not escaped by `\`; the escapes stay in the text.
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Java's `Matcher.appendReplacement`: `$n` is group n (digits taken while
/// the number stays a group, as Java does), `\x` is `x`; a `$n` beyond the
/// groups is literal (Kafka's `escapeLiteralBackReferences`).
fn expand_java_replacement(caps: &regex::Captures<'_>, replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut group = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    let longer = format!("{group}{d}");
                    if longer.parse::<usize>().is_ok_and(|n| n < caps.len()) || group.is_empty() {
                        group = longer;
                        chars.next();
                    } else {
                        break;
                    }
                }
                match group.parse::<usize>().ok().filter(|n| *n < caps.len()) {
                    Some(n) => out.push_str(caps.get(n).map_or("", |m| m.as_str())),
                    None => {
                        out.push('$');
                        out.push_str(&group);
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// An inline keystore (`ssl.keystore.key`, `ssl.keystore.certificate.chain`:
/// a self-signed P-256 certificate for localhost, valid to 2126) for unit
/// tests that need an SSL listener to load.
#[cfg(test)]
pub(crate) const TEST_KEYSTORE: [(&str, &str); 2] = [
    (
        "ssl.keystore.key",
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+07dhH5okt50XS/a\nNE5f6M/+pNb+0g/cIMGfn6S3Q4GhRANCAAREWqGgSLBsv5ztcg6FYNionONx4BY1\nMU4X9J4umsr3CSwNveyU+7/pbo2Vgy8d4fAK67FoBsiXOA/z3BdkoNTa\n-----END PRIVATE KEY-----",
    ),
    (
        "ssl.keystore.certificate.chain",
        "-----BEGIN CERTIFICATE-----\nMIIBnDCCAUGgAwIBAgIUI1XIzXW8b4I2XxRpSIxCbh0ANfAwCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNjAzNTUyNloYDzIxMjYxMTAy\nMDM1NTI2WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAAREWqGgSLBsv5ztcg6FYNionONx4BY1MU4X9J4umsr3CSwNveyU+7/p\nbo2Vgy8d4fAK67FoBsiXOA/z3BdkoNTao28wbTAdBgNVHQ4EFgQUrwupBgZW5Int\neC3zCTzuN1Pcr98wHwYDVR0jBBgwFoAUrwupBgZW5InteC3zCTzuN1Pcr98wDwYD\nVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI\nzj0EAwIDSQAwRgIhANr7XUMmObuASWWwPsQak+UfXAbdjeXjWcuZuY0Aho9GAiEA\noxiQLF0rE6Y21dm87m025XQB9UZC7FRZFCHruCBv1iQ=\n-----END CERTIFICATE-----",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_mapping_rules_as_kafka_documents_them() {
        // Cases from Kafka's SslPrincipalMapperTest and the security docs.
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("DEFAULT", "CN=duke,OU=ServiceUsers,O=Org,C=US", Some("CN=duke,OU=ServiceUsers,O=Org,C=US")),
            ("", "CN=a", Some("CN=a")),
            ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/", "CN=duke,OU=ServiceUsers,O=Org,C=US", Some("duke")),
            ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L", "CN=Duke,OU=ServiceUsers,O=Org,C=US", Some("duke")),
            ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U", "CN=Duke,OU=ServiceUsers,O=Org,C=US", Some("DUKE")),
            ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/", "CN=duke,OU=Other,O=Org", None),
            ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=duke,OU=Other,O=Org", Some("CN=duke,OU=Other,O=Org")),
            (
                "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT",
                "CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US",
                Some("duke@javasoft"),
            ),
            ("RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U", "cn=a,ou=b,dc=c,dc=d", Some("A@B")),
            ("RULE:^CN=([^,]*).*$/$1\\/x/", "CN=a,O=b", Some("a/x")),
            ("RULE:^CN=(.*)$/$1$9/", "CN=a", Some("a$9")),
        ];
        for (rules, dn, want) in cases {
            let m = PrincipalMapper::parse(rules).unwrap_or_else(|e| panic!("{rules:?}: {e}"));
            assert_eq!(m.apply(dn).as_deref(), *want, "rules {rules:?} on {dn:?}");
        }
        for bad in ["RULE:^CN=(.*)$/$1", "RULE:(/x/", "BOGUS"] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn pairs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ssl_listener() -> Vec<Listener> {
        vec![Listener { name: "EXTERNAL".into(), host: "127.0.0.1".into(), port: 0, security_protocol: SecurityProtocol::Ssl }]
    }

    #[test]
    fn client_auth_per_listener_and_kip_684() {
        let auth = |kv: &[(&str, &str)], sasl: bool| {
            let explicit = pairs(kv);
            let keys = ListenerKeys { explicit: &explicit, prefix: "listener.name.external.".into(), listener: "EXTERNAL", sasl };
            keys.client_auth().map_err(|e| e.to_string())
        };
        let both = [("ssl.client.auth", "requested"), ("listener.name.external.ssl.client.auth", "required")];
        assert_eq!(auth(&[], false), Ok(ClientAuth::None));
        assert_eq!(auth(&both, false), Ok(ClientAuth::Required));
        assert_eq!(auth(&both[..1], false), Ok(ClientAuth::Requested));
        // SASL_SSL: the broker-wide key does not count, the listener's does.
        assert_eq!(auth(&both[..1], true), Ok(ClientAuth::None));
        assert_eq!(auth(&both, true), Ok(ClientAuth::Required));
        assert!(auth(&[("ssl.client.auth", "maybe")], false).unwrap_err().contains("expected none, requested or required"));
    }

    #[test]
    fn inline_keystore_loads() {
        let mut kv: Vec<(&str, &str)> = TEST_KEYSTORE.to_vec();
        kv.push(("ssl.enabled.protocols", "TLSv1.3"));
        let tls = read(&pairs(&kv), &ssl_listener()).unwrap();
        let s = &tls["EXTERNAL"];
        assert_eq!((s.cert_chain.len(), s.client_auth, s.protocols.as_slice()), (1, ClientAuth::None, &[TlsVersion::Tls13][..]));
        assert!(!format!("{s:?}").contains("PRIVATE"), "Debug never shows the key");
        kv.push(("ssl.enabled.protocols", "TLSv1.1"));
        assert!(read(&pairs(&kv), &ssl_listener()).unwrap_err().to_string().contains("TLSv1.1 is not supported"));
    }

    #[test]
    fn tls_between_nodes_follows_the_controller_then_the_inter_broker_listener() {
        let protocols = |map: &[(&str, SecurityProtocol)]| map.iter().map(|(n, p)| (n.to_string(), *p)).collect::<BTreeMap<_, _>>();
        let controller = vec!["CONTROLLER".to_string()];
        let plain = protocols(&[("PLAINTEXT", SecurityProtocol::Plaintext), ("CONTROLLER", SecurityProtocol::Plaintext)]);
        let mut kv: Vec<(&str, &str)> = TEST_KEYSTORE.to_vec();
        assert_eq!(read_between_nodes(&pairs(&kv), &plain, &controller).unwrap(), None, "no SSL listener between nodes");

        let ssl_controller = protocols(&[("PLAINTEXT", SecurityProtocol::Plaintext), ("CONTROLLER", SecurityProtocol::Ssl)]);
        let err = read_between_nodes(&pairs(&kv), &ssl_controller, &controller).unwrap_err().to_string();
        assert!(err.contains("listener CONTROLLER") && err.contains("ssl.truststore.location"), "{err}");
        let chain = TEST_KEYSTORE[1].1;
        kv.push(("ssl.truststore.certificates", chain));
        let s = read_between_nodes(&pairs(&kv), &ssl_controller, &controller).unwrap().expect("TLS between nodes");
        assert_eq!((s.listener.as_str(), s.verify_hostname), ("CONTROLLER", true));

        // A plaintext controller listener and an SSL inter-broker one.
        let ssl_internal = protocols(&[("INTERNAL", SecurityProtocol::Ssl), ("CONTROLLER", SecurityProtocol::Plaintext)]);
        kv.push(("inter.broker.listener.name", "internal"));
        kv.push(("listener.name.internal.ssl.endpoint.identification.algorithm", ""));
        let s = read_between_nodes(&pairs(&kv), &ssl_internal, &controller).unwrap().expect("TLS between nodes");
        assert_eq!((s.listener.as_str(), s.verify_hostname), ("INTERNAL", false));
        kv.push(("ssl.endpoint.identification.algorithm", "http"));
        kv.retain(|(k, _)| !k.starts_with("listener.name.internal."));
        let err = read_between_nodes(&pairs(&kv), &ssl_internal, &controller).unwrap_err().to_string();
        assert!(err.contains("ssl.endpoint.identification.algorithm") && err.contains("expected https"), "{err}");
    }

    #[test]
    fn settings_errors_are_one_line_and_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem").display().to_string();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap();
        let garbage = garbage.display().to_string();
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "listener EXTERNAL: an SSL listener needs a keystore"),
            (&[("ssl.keystore.location", &missing)], "cannot read ssl.keystore.location"),
            (&[("listener.name.external.ssl.keystore.location", &missing)], "cannot read listener.name.external.ssl.keystore.location"),
            (&[("ssl.keystore.type", "JKS"), ("ssl.keystore.location", &missing)], "-deststoretype PKCS12"),
            (&[("ssl.keystore.type", "PKCS12")], "ssl.keystore.type=PKCS12 needs ssl.keystore.location"),
            (&[("ssl.keystore.type", "PKCS12"), ("ssl.keystore.location", &garbage)], "needs ssl.keystore.password"),
            (
                &[("ssl.keystore.type", "PKCS12"), ("ssl.keystore.location", &garbage), ("ssl.keystore.password", "x")],
                "not a PKCS12 keystore this password opens",
            ),
            (
                &[TEST_KEYSTORE[0], TEST_KEYSTORE[1], ("ssl.truststore.type", "PKCS12"), ("ssl.truststore.location", &garbage)],
                "not a PKCS12 truststore",
            ),
            (&[("ssl.keystore.location", &garbage)], "bad PEM"),
            (&[("ssl.keystore.key", "k"), ("ssl.keystore.location", &missing)], "not a mix"),
        ];
        for (kv, want) in cases {
            let err = read(&pairs(kv), &ssl_listener()).unwrap_err().to_string();
            assert!(err.contains(want), "{kv:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        // A PLAINTEXT listener needs nothing.
        let plain = Listener { security_protocol: SecurityProtocol::Plaintext, ..ssl_listener()[0].clone() };
        assert!(read(&pairs(&[]), &[plain]).unwrap().is_empty());
    }
}
