//! `listeners`, `advertised.listeners` and `listener.security.protocol.map`,
//! parsed as Kafka's `SocketServerConfigs.listenerListToEndPoints` and
//! `CoreUtils.listenerListToEndPoints` do. Part of [`crate::config::BrokerConfig`].

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::broker::ConfigError;

/// Kafka's `SecurityProtocol`; the ids are Kafka's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [Self::Plaintext, Self::Ssl, Self::SaslPlaintext, Self::SaslSsl];

    /// Kafka's name: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Kafka's id (`SecurityProtocol.id`), as broker registrations carry it.
    pub fn id(self) -> i16 {
        match self {
            Self::Plaintext => 0,
            Self::Ssl => 1,
            Self::SaslPlaintext => 2,
            Self::SaslSsl => 3,
        }
    }

    /// `SecurityProtocol.forName`: case-insensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One endpoint of `listeners` or `advertised.listeners`. `name` is upper
/// case (Kafka's `ListenerName.normalised`); `host` is empty for "every
/// interface" in `listeners` (never in the advertised list, where it has
/// been replaced by this machine's hostname); port 0 asks for an ephemeral port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// From `listener.security.protocol.map`.
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// `host:port`, with an IPv6 host in brackets; for binding or dialing.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.name, self.host_port())
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue { key: key.to_string(), value: value.to_string(), reason: reason.into() }
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL,...`, names upper-cased.
pub(crate) fn parse_protocol_map(key: &str, value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, protocol)) = entry.split_once(':') else {
            return Err(invalid(key, value, format!("entry {entry:?} is not NAME:PROTOCOL")));
        };
        let (name, protocol) = (name.trim(), protocol.trim());
        let protocol = SecurityProtocol::from_name(protocol).ok_or_else(|| ConfigError::UnknownSecurityProtocol {
            key: key.to_string(),
            value: value.to_string(),
            protocol: protocol.to_string(),
        })?;
        map.insert(name.to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// `NAME://host:port,...` as `listeners` (`distinct_ports`) or
/// `advertised.listeners` spell it; every name must be in `protocols`.
pub(crate) fn parse_listeners(
    key: &str,
    value: &str,
    protocols: &BTreeMap<String, SecurityProtocol>,
    distinct_ports: bool,
) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, host, port) = split_endpoint(entry).map_err(|reason| invalid(key, value, reason))?;
        let name = name.to_ascii_uppercase();
        let Some(&security_protocol) = protocols.get(&name) else {
            return Err(invalid(key, value, format!("no security protocol defined for listener {name} in listener.security.protocol.map")));
        };
        if out.iter().any(|l| l.name == name) {
            return Err(invalid(key, value, format!("each listener must have a different name, {name} is given twice")));
        }
        out.push(Listener { name, host: host.to_string(), port, security_protocol });
    }
    if distinct_ports {
        check_ports(&out).map_err(|reason| invalid(key, value, reason))?;
    }
    Ok(out)
}

/// Kafka's `^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$`.
fn split_endpoint(entry: &str) -> Result<(&str, &str, u16), String> {
    let malformed = || format!("{entry:?} is not NAME://host:port");
    let (name, rest) = entry.split_once("://").ok_or_else(malformed)?;
    let (host, port) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or_else(malformed)?;
            (host, after.strip_prefix(':').ok_or_else(malformed)?)
        }
        None => rest.rsplit_once(':').ok_or_else(malformed)?,
    };
    let host_ok = host.chars().all(|c| c.is_ascii_alphanumeric() || "-%._:".contains(c));
    let digits = port.strip_prefix('-').unwrap_or(port);
    if !host_ok || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let port = port.parse::<u16>().map_err(|_| format!("port {port} of {entry:?} is not in 0..=65535"))?;
    Ok((name, host, port))
}

/// Two listeners may share a port only if one binds an IPv4 address and the
/// other an IPv6 address; port 0 (ephemeral) never clashes.
fn check_ports(listeners: &[Listener]) -> Result<(), String> {
    for (i, a) in listeners.iter().enumerate() {
        let same: Vec<&Listener> = listeners[i..].iter().filter(|b| b.port == a.port && a.port != 0).collect();
        if same.len() < 2 || listeners[..i].iter().any(|b| b.port == a.port) {
            continue;
        }
        let v4 = |l: &&Listener| l.host.parse::<Ipv4Addr>().is_ok();
        let v6 = |l: &&Listener| l.host.parse::<Ipv6Addr>().is_ok();
        let ok = same.len() == 2 && ((v4(&same[0]) && v6(&same[1])) || (v6(&same[0]) && v4(&same[1])));
        if !ok {
            return Err(format!(
                "each listener must have a different port unless one is an IPv4 address and the other an IPv6 address, port {} is used twice",
                a.port
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_map() -> BTreeMap<String, SecurityProtocol> {
        parse_protocol_map("listener.security.protocol.map", super::super::broker_defs::DEFAULT_SECURITY_PROTOCOL_MAP).unwrap()
    }

    fn brief(ls: &[Listener]) -> Vec<String> {
        ls.iter().map(|l| format!("{}|{}|{}|{}", l.name, l.host, l.port, l.security_protocol)).collect()
    }

    #[test]
    fn good_listener_lists() {
        let cases: &[(&str, &[&str])] = &[
            ("PLAINTEXT://127.0.0.1:9092,SSL://:9093", &["PLAINTEXT|127.0.0.1|9092|PLAINTEXT", "SSL||9093|SSL"]),
            ("plaintext://localhost:9092", &["PLAINTEXT|localhost|9092|PLAINTEXT"]),
            (
                " PLAINTEXT://[::1]:9092 , SASL_SSL://host-1.example.com:0 ",
                &["PLAINTEXT|::1|9092|PLAINTEXT", "SASL_SSL|host-1.example.com|0|SASL_SSL"],
            ),
            ("PLAINTEXT://127.0.0.1:9092,SSL://[::1]:9092", &["PLAINTEXT|127.0.0.1|9092|PLAINTEXT", "SSL|::1|9092|SSL"]),
            ("PLAINTEXT://:0,SSL://:0", &["PLAINTEXT||0|PLAINTEXT", "SSL||0|SSL"]),
            ("CONTROLLER://:9093", &["CONTROLLER||9093|PLAINTEXT"]),
            ("", &[]),
        ];
        for (text, want) in cases {
            let got = parse_listeners("listeners", text, &default_map(), true).unwrap();
            assert_eq!(brief(&got), *want, "{text:?}");
        }
    }

    #[test]
    fn bad_listener_lists() {
        let cases = [
            ("127.0.0.1:9092", "is not NAME://host:port"),
            ("PLAINTEXT://127.0.0.1", "is not NAME://host:port"),
            ("PLAINTEXT://127.0.0.1:port", "is not NAME://host:port"),
            ("PLAINTEXT://bad host:9092", "is not NAME://host:port"),
            ("PLAINTEXT://[::1:9092", "is not NAME://host:port"),
            ("PLAINTEXT://h:70000", "not in 0..=65535"),
            ("PLAINTEXT://h:-1", "not in 0..=65535"),
            ("CLIENT://h:9092", "no security protocol defined for listener CLIENT"),
            ("PLAINTEXT://a:1,plaintext://b:2", "different name"),
            ("PLAINTEXT://a:9092,SSL://b:9092", "different port"),
            ("PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.2:9092", "different port"),
        ];
        for (text, want) in cases {
            let err = parse_listeners("listeners", text, &default_map(), true).unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid value {text:?} for listeners: ")), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
        }
        // Advertised listeners may share a port (a load balancer in front of both).
        assert!(parse_listeners("advertised.listeners", "PLAINTEXT://a:9092,SSL://b:9092", &default_map(), false).is_ok());
    }

    #[test]
    fn protocol_map() {
        let map = parse_protocol_map("m", "internal:ssl, EXTERNAL : SASL_SSL").unwrap();
        assert_eq!(map.get("INTERNAL"), Some(&SecurityProtocol::Ssl));
        assert_eq!(map.get("EXTERNAL"), Some(&SecurityProtocol::SaslSsl));
        assert_eq!(default_map().len(), 5);
        let err = parse_protocol_map("listener.security.protocol.map", "A:PLAINTEXT,B:BOGUS").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"A:PLAINTEXT,B:BOGUS\" for listener.security.protocol.map: unknown security protocol BOGUS"
        );
        assert!(parse_protocol_map("m", "A").is_err());
    }

    #[test]
    fn host_port_brackets_ipv6() {
        let l = Listener { name: "PLAINTEXT".into(), host: "::1".into(), port: 9092, security_protocol: SecurityProtocol::Plaintext };
        assert_eq!(l.to_string(), "PLAINTEXT://[::1]:9092");
    }
}
