//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side
//! as Kafka's `ScramSaslServer` runs it: client-first `n,,n=user,r=nonce`
//! (no channel binding; the only extension Kafka knows is `tokenauth`,
//! delegation tokens, which Fjord does not have), server-first with the
//! combined nonce, salt and iterations, client-final with `c=biws` and the
//! proof, server-final `v=ServerSignature`.
//!
//! Credentials ([`ScramCredential`]) hold what RFC 5802 lets a server keep:
//! salt, StoredKey, ServerKey and iterations; never the password or the
//! salted password. Proofs are compared in constant time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::SaslError;

/// A SCRAM mechanism, with Kafka's names and `ScramMechanism` type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [Self::Sha256, Self::Sha512];
    /// Kafka's `ScramMechanism.minIterations` / `maxIterations` (4.x), what
    /// AlterUserScramCredentials accepts.
    pub const MIN_ITERATIONS: i32 = 4096;
    pub const MAX_ITERATIONS: i32 = 16384;

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// `org.apache.kafka.clients.admin.ScramMechanism.type()`: 0 is UNKNOWN.
    pub fn type_id(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn from_type_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.type_id() == id)
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Self::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's `Hi(password, salt, i)`: PBKDF2 with this HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Self::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the broker keeps of one user's password for one mechanism. Kept in
/// the metadata image; `Debug` shows the iterations only.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl ScramCredential {
    /// From what AlterUserScramCredentials carries (the admin client salts):
    /// StoredKey = H(HMAC(salted, "Client Key")), ServerKey = HMAC(salted, "Server Key").
    pub fn from_salted_password(mechanism: ScramMechanism, salt: &[u8], salted_password: &[u8], iterations: i32) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Self {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// From a password (tests, and the client side of the tests).
    pub fn from_password(mechanism: ScramMechanism, password: &str, salt: &[u8], iterations: i32) -> Self {
        let salted = mechanism.salted_password(password.as_bytes(), salt, iterations.max(1) as u32);
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// `ScramFormatter.username`: `=2C` is `,` and `=3D` is `=`; any other `=` is refused.
pub fn username_from_saslname(saslname: &str) -> Option<String> {
    let unescaped = saslname.replace("=2C", ",");
    if unescaped.replace("=3D", "").contains('=') {
        return None;
    }
    Some(unescaped.replace("=3D", "="))
}

/// The reverse, for clients (tests).
pub fn saslname_from_username(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Where one exchange stands. Owned by the connection's session between
/// the two SaslAuthenticate requests of a SCRAM login.
pub struct ScramServer {
    mechanism: ScramMechanism,
    server_nonce: String,
    state: State,
}

enum State {
    ClientFirst,
    ClientFinal(Box<Pending>),
    Done,
}

/// What the server remembers between its first message and the client's final one.
struct Pending {
    user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

/// The result of one step.
pub enum Step {
    /// Send this and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send the server-final message.
    Done { user: String, server_final: Vec<u8> },
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::ClientFirst => "client-first",
            State::ClientFinal(_) => "client-final",
            State::Done => "done",
        };
        f.debug_struct("ScramServer").field("mechanism", &self.mechanism).field("state", &state).finish()
    }
}

fn invalid(detail: impl Into<String>) -> SaslError {
    SaslError::Invalid(detail.into())
}

/// Kafka's `secureRandomString`: an alphanumeric nonce.
fn random_nonce() -> String {
    use rand::Rng;
    const ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..26).map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char).collect()
}

/// `k=v` attributes after a fixed prefix, in order.
fn attributes(text: &str) -> Vec<(&str, &str)> {
    text.split(',').map(|a| a.split_once('=').unwrap_or((a, ""))).collect()
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self::with_nonce(mechanism, random_nonce())
    }

    /// With a fixed server nonce, for RFC test vectors.
    pub fn with_nonce(mechanism: ScramMechanism, server_nonce: String) -> Self {
        Self { mechanism, server_nonce, state: State::ClientFirst }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Takes the client's next message. `credential` is asked once, for the
    /// user the client-first message names.
    pub fn step(&mut self, input: &[u8], credential: impl FnOnce(&str) -> Option<ScramCredential>) -> Result<Step, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => {
                let (pending, server_first) = self.client_first(input, credential)?;
                self.state = State::ClientFinal(Box::new(pending));
                Ok(Step::Continue(server_first.into_bytes()))
            }
            State::ClientFinal(pending) => self.client_final(input, &pending),
            State::Done => Err(invalid("SCRAM exchange already finished")),
        }
    }

    fn client_first(&self, input: &[u8], credential: impl FnOnce(&str) -> Option<ScramCredential>) -> Result<(Pending, String), SaslError> {
        let text = std::str::from_utf8(input).map_err(|_| invalid("client-first message is not UTF-8"))?;
        // gs2-header: "n," (Kafka's clients never bind a channel), then an optional authzid.
        let rest = text.strip_prefix("n,").ok_or_else(|| invalid("client-first message must start with n, (no channel binding)"))?;
        let (authzid, bare) = rest.split_once(',').ok_or_else(|| invalid("client-first message has no gs2 header"))?;
        let authzid = match authzid {
            "" => None,
            a => Some(a.strip_prefix("a=").ok_or_else(|| invalid("bad authzid in client-first message"))?),
        };
        let gs2_header = format!("n,{},", authzid.map(|a| format!("a={a}")).unwrap_or_default());
        let attrs = attributes(bare);
        let mut attrs = attrs.into_iter().skip_while(|(k, _)| *k == "m");
        let (Some(("n", saslname)), Some(("r", nonce))) = (attrs.next(), attrs.next()) else {
            return Err(invalid("client-first message must be n=user,r=nonce"));
        };
        let user = username_from_saslname(saslname).filter(|u| !u.is_empty()).ok_or_else(|| invalid("invalid user name"))?;
        if nonce.is_empty() || nonce.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(invalid("invalid client nonce"));
        }
        for (key, value) in attrs {
            // ScramSaslServer: only `tokenauth` is known; delegation tokens are not supported here.
            match key {
                "tokenauth" if value.eq_ignore_ascii_case("true") => {
                    return Err(invalid("delegation token authentication is not supported"));
                }
                "tokenauth" => {}
                other => return Err(invalid(format!("Unsupported extensions will not be processed: {other}"))),
            }
        }
        if let Some(a) = authzid
            && username_from_saslname(a).as_deref() != Some(user.as_str())
        {
            return Err(SaslError::Refused(
                "Authentication failed: Client requested an authorization id that is different from username".into(),
            ));
        }
        let credential = credential(&user).ok_or_else(|| invalid("Authentication failed: Invalid user credentials"))?;
        if credential.iterations < ScramMechanism::MIN_ITERATIONS {
            return Err(invalid("credential iterations below the minimum"));
        }
        let nonce = format!("{nonce}{}", self.server_nonce);
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        let pending =
            Pending { user, gs2_header, client_first_bare: bare.to_string(), server_first: server_first.clone(), nonce, credential };
        Ok((pending, server_first))
    }

    fn client_final(&mut self, input: &[u8], p: &Pending) -> Result<Step, SaslError> {
        let text = std::str::from_utf8(input).map_err(|_| invalid("client-final message is not UTF-8"))?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| invalid("client-final message has no proof"))?;
        let attrs = attributes(without_proof);
        let (Some(("c", channel)), Some(("r", nonce))) = (attrs.first().copied(), attrs.get(1).copied()) else {
            return Err(invalid("client-final message must be c=...,r=...,p=..."));
        };
        let channel = B64.decode(channel).map_err(|_| invalid("channel binding is not base64"))?;
        if channel != p.gs2_header.as_bytes() {
            return Err(invalid("channel binding does not match the gs2 header"));
        }
        if nonce != p.nonce {
            return Err(invalid("Invalid client nonce in the final client message."));
        }
        let proof = B64.decode(proof).map_err(|_| invalid("client proof is not base64"))?;
        let auth_message = format!("{},{},{}", p.client_first_bare, p.server_first, without_proof);
        let m = self.mechanism;
        let client_signature = m.hmac(&p.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(invalid("Invalid client credentials"));
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        if !bool::from(m.hash(&client_key).ct_eq(&p.credential.stored_key)) {
            return Err(invalid("Invalid client credentials"));
        }
        let server_signature = m.hmac(&p.credential.server_key, auth_message.as_bytes());
        Ok(Step::Done { user: p.user.clone(), server_final: format!("v={}", B64.encode(server_signature)).into_bytes() })
    }
}

/// The client side, for tests: `(client_first, finish)` where `finish`
/// takes the server-first message and returns the client-final message and
/// the ServerSignature the server must send back.
#[cfg(test)]
pub(crate) fn client_exchange(
    m: ScramMechanism,
    user: &str,
    password: &str,
    client_nonce: &str,
    server_first: &str,
) -> (String, String, Vec<u8>) {
    let client_first_bare = format!("n={},r={client_nonce}", saslname_from_username(user));
    let attrs = attributes(server_first);
    let nonce = attrs[0].1;
    let salt = B64.decode(attrs[1].1).unwrap();
    let iterations: u32 = attrs[2].1.parse().unwrap();
    let salted = m.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = m.hmac(&salted, b"Client Key");
    let stored_key = m.hash(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = m.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    let server_signature = m.hmac(&m.hmac(&salted, b"Server Key"), auth_message.as_bytes());
    (client_first_bare, format!("{without_proof},p={}", B64.encode(proof)), server_signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3.
    #[test]
    fn rfc7677_sha256_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "pencil", &salt, 4096);
        let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into());
        let Step::Continue(first) = server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", |u| (u == "user").then(|| cred.clone())).unwrap()
        else {
            panic!("expected server-first")
        };
        assert_eq!(
            String::from_utf8(first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let final_msg = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let Step::Done { user, server_final } = server.step(final_msg, |_| None).unwrap() else { panic!("expected done") };
        assert_eq!(user, "user");
        assert_eq!(String::from_utf8(server_final).unwrap(), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    fn round_trip(m: ScramMechanism, user: &str, stored_password: &str, client_password: &str) -> Result<Vec<u8>, SaslError> {
        let cred = ScramCredential::from_password(m, stored_password, b"some salt", 4096);
        let mut server = ScramServer::new(m);
        let client_first_bare = format!("n={},r=clientnonce123", saslname_from_username(user));
        let Step::Continue(first) = server.step(format!("n,,{client_first_bare}").as_bytes(), |u| (u == user).then(|| cred.clone()))?
        else {
            panic!("expected server-first")
        };
        let first = String::from_utf8(first).unwrap();
        let (_, client_final, expected) = client_exchange(m, user, client_password, "clientnonce123", &first);
        match server.step(client_final.as_bytes(), |_| None)? {
            Step::Done { user: u, server_final } => {
                assert_eq!(u, user);
                assert_eq!(server_final, format!("v={}", B64.encode(&expected)).into_bytes());
                Ok(server_final)
            }
            Step::Continue(_) => panic!("expected done"),
        }
    }

    #[test]
    fn sha512_round_trip_and_wrong_password() {
        round_trip(ScramMechanism::Sha512, "alice", "alice-secret", "alice-secret").unwrap();
        round_trip(ScramMechanism::Sha256, "a=b,c", "pw", "pw").unwrap();
        assert!(matches!(round_trip(ScramMechanism::Sha512, "alice", "alice-secret", "wrong"), Err(SaslError::Invalid(_))));
    }

    #[test]
    fn client_first_is_checked() {
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "pw", b"salt", 4096);
        let cases: &[(&str, bool)] = &[
            ("n,,n=user,r=abc", true),
            ("n,a=user,n=user,r=abc", true),
            ("n,,n=user,r=abc,tokenauth=false", true),
            ("y,,n=user,r=abc", false),
            ("p=tls-unique,,n=user,r=abc", false),
            ("n,,n=user,r=abc,tokenauth=true", false),
            ("n,,n=user,r=abc,foo=bar", false),
            ("n,,n=nobody,r=abc", false),
            ("n,,n=us=er,r=abc", false),
            ("n,,r=abc", false),
            ("n,a=other,n=user,r=abc", false),
        ];
        for (msg, ok) in cases {
            let mut s = ScramServer::new(ScramMechanism::Sha256);
            let r = s.step(msg.as_bytes(), |u| (u == "user").then(|| cred.clone()));
            assert_eq!(r.is_ok(), *ok, "{msg}");
        }
    }

    #[test]
    fn usernames_unescape() {
        assert_eq!(username_from_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(username_from_saslname("a=b"), None);
        assert_eq!(saslname_from_username("a,b=c"), "a=2Cb=3Dc");
    }

    #[test]
    fn debug_hides_keys() {
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "pw", b"salt", 4096);
        assert_eq!(format!("{cred:?}"), "ScramCredential { iterations: 4096, .. }");
    }
}
