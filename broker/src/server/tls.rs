//! TLS for the SSL and SASL_SSL listeners: one rustls `ServerConfig` and
//! [`TlsAcceptor`] per listener, built at bind from the checked
//! [`TlsSettings`], and the principal a client certificate stands for.
//!
//! The principal is Kafka's: the certificate's subject distinguished name
//! as Java's `X500Principal.getName()` prints it (RFC 2253, last RDN first,
//! `CN=client,OU=eng,O=fjord`), mapped by `ssl.principal.mapping.rules`. A
//! client without a certificate (`ssl.client.auth` none or requested) is
//! `User:ANONYMOUS`, as in Kafka's `DefaultKafkaPrincipalBuilder`.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{ClientAuth, TlsSettings, TlsVersion};
use crate::security::KafkaPrincipal;

/// The acceptor of one TLS listener, with what its handshakes need afterwards.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub settings: Arc<TlsSettings>,
}

/// Builds the listener's rustls server; the settings were checked when the
/// config was read, so an error here is unexpected and reported as such.
pub fn acceptor(settings: &TlsSettings) -> Result<Tls, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions = versions(settings);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider)).with_protocol_versions(&versions)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let mut roots = rustls::RootCertStore::empty();
            for c in &settings.trust_roots {
                roots.add(c.clone())?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| rustls::Error::General(e.to_string()))?)
        }
    };
    let config = builder.with_single_cert(settings.cert_chain.clone(), settings.key.clone_key())?;
    Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)), settings: Arc::new(settings.clone()) })
}

fn versions(settings: &TlsSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .protocols
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

/// TLS for the raft transport between nodes: inbound as the listener's
/// acceptor, outbound presenting this node's certificate as a client
/// certificate and checking the peer's against the truststore (and its
/// name, unless `ssl.endpoint.identification.algorithm` is empty).
pub fn between_nodes(settings: &TlsSettings) -> Result<fjord_raft::transport::TransportTls, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in &settings.trust_roots {
        roots.add(c.clone())?;
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if settings.verify_hostname { webpki } else { Arc::new(AnyHostname(webpki)) };
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(settings))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(settings.cert_chain.clone(), settings.key.clone_key())?;
    Ok(fjord_raft::transport::TransportTls { acceptor: acceptor(settings)?.acceptor, connector: TlsConnector::from(Arc::new(client)) })
}

/// The WebPKI check of a server certificate without its name check:
/// `ssl.endpoint.identification.algorithm=` (empty), as Kafka allows.
#[derive(Debug)]
struct AnyHostname(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The principal of a finished handshake: from the client's certificate,
/// mapped by the listener's rules, or `User:ANONYMOUS` without one. `Err`
/// names why the client is refused (no rule matches, an unreadable subject).
pub fn principal(settings: &TlsSettings, peer_certificates: Option<&[CertificateDer<'_>]>) -> Result<KafkaPrincipal, String> {
    let Some(leaf) = peer_certificates.and_then(|c| c.first()) else {
        return Ok(KafkaPrincipal::anonymous());
    };
    let dn = subject_rfc2253(leaf).ok_or("the client certificate's subject cannot be read")?;
    match settings.principal_mapper.apply(&dn) {
        Some(name) => Ok(KafkaPrincipal::user(name)),
        None => Err(format!("no ssl.principal.mapping.rules apply to {dn}")),
    }
}

/// The subject of a DER certificate as Java's `X500Principal.getName()`.
pub fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    let (_, certificate, _) = der(cert, 0x30)?;
    let (_, mut tbs, _) = der(certificate, 0x30)?;
    // version [0] (optional), serialNumber, signature, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        tbs = der(tbs, 0xa0)?.2;
    }
    for tag in [0x02, 0x30, 0x30, 0x30] {
        tbs = der(tbs, tag)?.2;
    }
    let (_, mut name, _) = der(tbs, 0x30)?;
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (_, mut set, rest) = der(name, 0x31)?;
        name = rest;
        let mut avas = Vec::new();
        while !set.is_empty() {
            let (_, ava, rest) = der(set, 0x30)?;
            set = rest;
            avas.push(attribute(ava)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// One `type=value` pair (`AVA.toRFC2253String`): the keywords RFC 2253
/// knows, with string values escaped; anything else as OID=#hex of the DER value.
fn attribute(ava: &[u8]) -> Option<String> {
    let (_, oid, value_der) = der(ava, 0x06)?;
    let (tag, content, _) = any_der(value_der)?;
    let oid = oid_text(oid)?;
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.9" => Some("STREET"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        _ => None,
    };
    let text = match tag {
        // UTF8String, PrintableString, T61String, IA5String.
        0x0c | 0x13 | 0x14 | 0x16 => Some(String::from_utf8_lossy(content).into_owned()),
        // BMPString: UTF-16 big-endian.
        0x1e => Some(
            char::decode_utf16(content.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
                .map(|c| c.unwrap_or('\u{fffd}'))
                .collect(),
        ),
        _ => None,
    };
    Some(match (keyword, text) {
        (Some(k), Some(t)) => format!("{k}={}", escape_rfc2253(&t)),
        (keyword, _) => {
            let whole = &value_der[..value_der.len() - any_der(value_der)?.2.len()];
            let hex: String = whole.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", keyword.map_or(oid.clone(), str::to_string))
        }
    })
}

/// RFC 2253 section 2.4, as Java's `AVA` applies it.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = ",=+<>#;\"\\".contains(c) || (c == ' ' && (i == 0 || i == last));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Dotted text of an OID's content octets.
fn oid_text(content: &[u8]) -> Option<String> {
    let (&first, rest) = content.split_first()?;
    let mut parts = vec![u64::from(first / 40).min(2), u64::from(first) - 40 * u64::from(first / 40).min(2)];
    let mut value = 0u64;
    for &b in rest {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(value);
            value = 0;
        }
    }
    Some(parts.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// A DER element with tag `tag`: (tag, content, what follows).
fn der(input: &[u8], tag: u8) -> Option<(u8, &[u8], &[u8])> {
    any_der(input).filter(|(t, _, _)| *t == tag)
}

/// Any DER element with a one-byte tag and a definite length.
fn any_der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SEQUENCE/SET/... of `parts`.
    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut out = vec![tag];
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        out.extend(body);
        out
    }

    fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        tlv(0x30, &[&tlv(0x06, &[oid]), &tlv(tag, &[value])])
    }

    fn cert_with_subject(rdns: &[Vec<u8>]) -> Vec<u8> {
        let refs: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
        let name = tlv(0x30, &refs);
        let tbs =
            tlv(0x30, &[&tlv(0xa0, &[&tlv(0x02, &[&[2]])]), &tlv(0x02, &[&[1]]), &tlv(0x30, &[]), &tlv(0x30, &[]), &tlv(0x30, &[]), &name]);
        tlv(0x30, &[&tbs, &tlv(0x30, &[]), &tlv(0x03, &[&[0]])])
    }

    /// `openssl req -x509 -multivalue-rdn -subj "/serialNumber=7/C=US/L=l/ST=st/street=s/DC=com/DC=example/UID=u/O=q;r<s>/OU= lead/OU=trail /OU=#x/CN=a=b#c, d+emailAddress=a@b"`.
    const TRICKY: &str = "-----BEGIN CERTIFICATE-----
MIIDHjCCAsOgAwIBAgIURDlxcKA+MthyFOaoUcakgxPxmNMwCgYIKoZIzj0EAwIw
geMxCjAIBgNVBAUTATcxCzAJBgNVBAYTAlVTMQowCAYDVQQHDAFsMQswCQYDVQQI
DAJzdDEKMAgGA1UECQwBczETMBEGCgmSJomT8ixkARkWA2NvbTEXMBUGCgmSJomT
8ixkARkWB2V4YW1wbGUxETAPBgoJkiaJk/IsZAEBDAF1MQ8wDQYDVQQKDAZxO3I8
cz4xDjAMBgNVBAsMBSBsZWFkMQ8wDQYDVQQLDAZ0cmFpbCAxCzAJBgNVBAsMAiN4
MSMwDwYDVQQDDAhhPWIjYywgZDAQBgkqhkiG9w0BCQEWA2FAYjAeFw0yNjExMjYw
MzM1MTVaFw0yNjExMjcwMzM1MTVaMIHjMQowCAYDVQQFEwE3MQswCQYDVQQGEwJV
UzEKMAgGA1UEBwwBbDELMAkGA1UECAwCc3QxCjAIBgNVBAkMAXMxEzARBgoJkiaJ
k/IsZAEZFgNjb20xFzAVBgoJkiaJk/IsZAEZFgdleGFtcGxlMREwDwYKCZImiZPy
LGQBAQwBdTEPMA0GA1UECgwGcTtyPHM+MQ4wDAYDVQQLDAUgbGVhZDEPMA0GA1UE
CwwGdHJhaWwgMQswCQYDVQQLDAIjeDEjMA8GA1UEAwwIYT1iI2MsIGQwEAYJKoZI
hvcNAQkBFgNhQGIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATweBMr4/9kNFDT
o2asmP/O84HjcPXyUYGozbXktlDmCFiyS8QMFGO21l6kTZU9in2e5fIyqYa38NO1
OMEpsZGho1MwUTAdBgNVHQ4EFgQUcLPE93aoNeUNvBqjppWGxtzwJxowHwYDVR0j
BBgwFoAUcLPE93aoNeUNvBqjppWGxtzwJxowDwYDVR0TAQH/BAUwAwEB/zAKBggq
hkjOPQQDAgNJADBGAiEA/PE8dVKheiFG0PFrliNVUHrrfcij1FisK1xXRimnRbUC
IQClghNFAj0N3ygJT9lamo0n+HdZzoBNePep5rF9tRh2dw==
-----END CERTIFICATE-----";

    #[test]
    fn subject_of_a_real_certificate_as_java_17_prints_it() {
        use rustls::pki_types::pem::PemObject;
        let cert = CertificateDer::from_pem_slice(TRICKY.as_bytes()).unwrap();
        // X509Certificate.getSubjectX500Principal().getName(), Java 17.
        let java = "CN=a\\=b\\#c\\, d+1.2.840.113549.1.9.1=#1603614062,OU=\\#x,OU=trail\\ ,OU=\\ lead,O=q\\;r\\<s\\>,UID=u,DC=example,DC=com,STREET=s,ST=st,L=l,C=US,2.5.4.5=#130137";
        assert_eq!(subject_rfc2253(&cert).unwrap(), java);
    }

    #[test]
    fn subject_as_java_prints_it() {
        const CN: &[u8] = &[0x55, 4, 3];
        const OU: &[u8] = &[0x55, 4, 11];
        const O: &[u8] = &[0x55, 4, 10];
        const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 9, 1];
        let rdns =
            [tlv(0x31, &[&ava(O, 0x0c, b"fjord")]), tlv(0x31, &[&ava(OU, 0x13, b"eng")]), tlv(0x31, &[&ava(CN, 0x0c, b"client, \"one\"")])];
        assert_eq!(subject_rfc2253(&cert_with_subject(&rdns)).unwrap(), "CN=client\\, \\\"one\\\",OU=eng,O=fjord");
        let multi = [tlv(0x31, &[&ava(CN, 0x0c, b"a"), &ava(EMAIL, 0x16, b"a@b")])];
        assert_eq!(subject_rfc2253(&cert_with_subject(&multi)).unwrap(), "CN=a+1.2.840.113549.1.9.1=#1603614062");
        assert_eq!(subject_rfc2253(&cert_with_subject(&[])).unwrap(), "");
        assert_eq!(escape_rfc2253(" a#b "), "\\ a\\#b\\ ");
        // Truncated input is refused, never a panic.
        let good = cert_with_subject(&rdns);
        for n in 0..good.len() {
            let _ = subject_rfc2253(&good[..n]);
        }
        assert_eq!(subject_rfc2253(&good[..good.len() - 1]), None);
    }
}
