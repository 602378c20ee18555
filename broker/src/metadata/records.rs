//! Metadata records. Each proposal is one uncompressed Kafka batch in the
//! metadata group's log, one record per [`MetadataRecord`], its value the
//! record as JSON. Kafka's own metadata record schemas are a KRaft-internal
//! format no client reads, so we keep ours simple and self-describing; the
//! log is still a Kafka log that `kafka-dump-log` can walk.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::security::acl::AclBinding;
use crate::security::sasl::ScramMechanism;

/// A topic id: Kafka's 16-byte UUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// A random version-4 UUID, never the zero id or the metadata topic's id,
    /// as Kafka's `Uuid.randomUuid` guarantees.
    pub fn random() -> Self {
        loop {
            let mut b: [u8; 16] = rand::random();
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            if b != [0; 16] && b != fjord_raft::registry::METADATA_TOPIC_ID {
                return Self(b);
            }
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Kafka prints topic ids in URL-safe base64 without padding.
    pub fn to_base64(&self) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(22);
        let mut bits = 0u32;
        let mut nbits = 0;
        for &byte in &self.0 {
            bits = (bits << 8) | u32::from(byte);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
            }
        }
        if nbits > 0 {
            out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        out
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_base64())
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_base64())
    }
}

impl Serialize for TopicId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for TopicId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("bad topic id {hex:?}"));
        if hex.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

/// One listener of a registered broker, as clients are told to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Kafka's `SecurityProtocol` id.
    pub security_protocol: i16,
}

/// One change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// The cluster's id, written once by the first controller.
    ClusterId {
        id: String,
    },
    /// A new topic with its partitions, replicas and explicit configs.
    Topic {
        name: String,
        id: TopicId,
        replicas: Vec<Vec<i32>>,
        configs: BTreeMap<String, String>,
    },
    /// More partitions for a topic (counts only grow); one replica list each.
    Partitions {
        id: TopicId,
        replicas: Vec<Vec<i32>>,
    },
    /// The topic's explicit configs after an alter: the whole set replaces the old one.
    TopicConfigs {
        id: TopicId,
        configs: BTreeMap<String, String>,
    },
    RemoveTopic {
        id: TopicId,
    },
    /// Producer ids below `next` are handed out; the block [`first`, `next`) went to `broker`.
    ProducerIds {
        broker: i32,
        first: i64,
        next: i64,
    },
    /// A broker (re)registered: a new process (`incarnation`) or new
    /// endpoints, rack or raft address. Registration unfences it.
    RegisterBroker {
        id: i32,
        incarnation: String,
        rack: Option<String>,
        endpoints: Vec<BrokerEndpoint>,
        raft_addr: String,
        controller: bool,
    },
    /// The controller stopped hearing from a broker (fenced) or heard again.
    BrokerFenced {
        id: i32,
        fenced: bool,
    },
    /// A partition's raft leader, its term (the leader epoch) and its
    /// in-sync replicas, as the leader reported them.
    PartitionLeader {
        id: TopicId,
        partition: i32,
        leader: i32,
        epoch: i32,
        isr: Vec<i32>,
    },
    /// A reassignment of a partition's replicas to `target` begins, or (a
    /// target equal to the replicas before the reassignment) is cancelled.
    Reassign {
        id: TopicId,
        partition: i32,
        target: Vec<i32>,
    },
    /// The partition's raft voters are the reassignment's target now: the
    /// replicas being removed are dropped.
    ReassignDone {
        id: TopicId,
        partition: i32,
    },
    /// A user's SCRAM credential for one mechanism, added or replaced
    /// (AlterUserScramCredentials). Never the password or the salted password.
    ScramCredential {
        user: String,
        mechanism: ScramMechanism,
        salt: ScramBytes,
        stored_key: ScramBytes,
        server_key: ScramBytes,
        iterations: i32,
    },
    RemoveScramCredential {
        user: String,
        mechanism: ScramMechanism,
    },
    /// ACL bindings added (CreateAcls).
    AclsCreated {
        acls: Vec<AclBinding>,
    },
    /// ACL bindings removed (DeleteAcls).
    AclsDeleted {
        acls: Vec<AclBinding>,
    },
}

/// Key material of a SCRAM credential: base64 in the record's JSON, hidden
/// from `Debug` (StoredKey and ServerKey let a thief impersonate the server).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramBytes(pub Vec<u8>);

impl fmt::Debug for ScramBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

impl Serialize for ScramBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for ScramBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(&text).map(Self).map_err(serde::de::Error::custom)
    }
}

impl MetadataRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata records serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_base64() {
        let id = TopicId::random();
        let r = MetadataRecord::Topic { name: "t".into(), id, replicas: vec![vec![1]], configs: BTreeMap::new() };
        assert_eq!(MetadataRecord::decode(&r.encode()).unwrap(), r);
        assert_eq!(TopicId([0; 16]).to_base64(), "AAAAAAAAAAAAAAAAAAAAAA");
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(TopicId(one).to_base64(), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert!(MetadataRecord::decode(b"{\"type\":\"nope\"}").is_err());
    }

    #[test]
    fn scram_credentials_are_base64_and_hidden_from_debug() {
        let r = MetadataRecord::ScramCredential {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            salt: ScramBytes(vec![1, 2, 3]),
            stored_key: ScramBytes(vec![4; 64]),
            server_key: ScramBytes(vec![5; 64]),
            iterations: 4096,
        };
        let json = String::from_utf8(r.encode()).unwrap();
        assert!(json.contains(r#""type":"scram_credential""#) && json.contains(r#""mechanism":"SCRAM-SHA-512""#), "{json}");
        assert!(json.contains(r#""salt":"AQID""#), "{json}");
        assert_eq!(MetadataRecord::decode(json.as_bytes()).unwrap(), r);
        assert!(!format!("{r:?}").contains("[4, 4"), "{r:?}");
        let d = MetadataRecord::RemoveScramCredential { user: "alice".into(), mechanism: ScramMechanism::Sha256 };
        assert_eq!(MetadataRecord::decode(&d.encode()).unwrap(), d);
    }
}
