//! Node-level raft settings: timings of every group and the limits of the
//! transport. Owned by the [`crate::registry::RaftNode`]; read-only once the
//! node starts, shared by every group and peer as `Arc<RaftConfig>`.
//!
//! Names are Kafka-style at the edge ([`RaftConfig::set`]); the fields carry
//! their units last. The defaults suit a broker hosting about 1,000 partition
//! groups: openraft's own defaults (heartbeat 50 ms, election 150-300 ms)
//! would mean 20 heartbeats per second per group and follower, tens of
//! thousands of RPCs per second for idle partitions.

use std::time::Duration;

/// The least derived stall timeout (see [`RaftConfig::stall_timeout`]), for
/// short election timeouts (tests use 600 ms). What TCP recovers on its own
/// must not count: a segment lost three times on a LAN is back after
/// 0.2 + 0.4 + 0.8 s of retransmission timeouts. Nor a busy machine: on a
/// loaded 2-core CI runner a task can wait hundreds of milliseconds for a
/// thread, and a follower's answer for an fsync as long.
pub const MIN_DERIVED_STALL_MS: u64 = 2_000;

/// Why a setting was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown raft setting {0}")]
    Unknown(String),
    #[error("{name}: {value:?} is not a non-negative integer")]
    NotANumber { name: String, value: String },
    #[error("invalid raft settings: {0}")]
    Invalid(String),
}

/// See the module doc. Each field names its Kafka-style key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// `raft.heartbeat.interval.ms`: a leader's heartbeat period per follower.
    pub heartbeat_interval_ms: u64,
    /// `raft.election.timeout.ms`: the least time a follower waits without a
    /// heartbeat before it stands for election (Kafka's
    /// `controller.quorum.election.timeout.ms`).
    pub election_timeout_ms: u64,
    /// `raft.election.timeout.max.ms`: the timeout is drawn from
    /// `[election_timeout_ms, election_timeout_max_ms)` per round.
    pub election_timeout_max_ms: u64,
    /// `raft.transport.linger.ms`: how long a heartbeat, vote or their answer
    /// may wait for others bound to the same peer, so that one envelope
    /// carries them all (Kafka's producer `linger.ms`). Data appends never wait.
    pub linger_ms: u64,
    /// `raft.transport.max.inflight.bytes`: bytes of requests sent to one peer
    /// and not yet answered, and of requests from it not yet served. A caller
    /// over the limit waits (back-pressure); the reader stops reading.
    pub max_inflight_bytes: usize,
    /// `raft.transport.max.frame.bytes`: the largest frame accepted; a larger
    /// length prefix closes the connection (Kafka's `socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// `raft.transport.max.envelope.bytes`: an envelope is closed once it
    /// holds this much (at least one message), so heartbeats queued behind
    /// large appends go out in the next write, not after all of them.
    pub max_envelope_bytes: usize,
    /// `raft.reconnect.backoff.ms` / `raft.reconnect.backoff.max.ms`: redial
    /// delays, doubling from the first to the second (Kafka's
    /// `reconnect.backoff.ms` and `reconnect.backoff.max.ms`).
    pub reconnect_backoff_ms: u64,
    pub reconnect_backoff_max_ms: u64,
    /// `raft.connection.setup.timeout.ms`: connect plus handshake (Kafka's
    /// `socket.connection.setup.timeout.ms`).
    pub connection_setup_timeout_ms: u64,
    /// `raft.transport.stall.timeout.ms`: a connection on which the peer owes
    /// an answer and has not been heard from for this long is dropped and
    /// redialled, and a dial unanswered this long is made afresh (see
    /// `transport::liveness`). 0, the default: derived from the election
    /// timeout, see [`RaftConfig::stall_timeout`].
    pub stall_timeout_ms: u64,
    /// `raft.snapshot.timeout.ms`: sending and installing one snapshot.
    pub snapshot_timeout_ms: u64,
    /// `raft.max.payload.entries`: entries in one AppendEntries at most.
    pub max_payload_entries: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 500,
            election_timeout_ms: 2500,
            election_timeout_max_ms: 5000,
            linger_ms: 25,
            max_inflight_bytes: 64 << 20,
            max_frame_bytes: 100 << 20,
            max_envelope_bytes: 1 << 20,
            reconnect_backoff_ms: 50,
            reconnect_backoff_max_ms: 1000,
            connection_setup_timeout_ms: 10_000,
            stall_timeout_ms: 0,
            snapshot_timeout_ms: 30_000,
            max_payload_entries: 300,
        }
    }
}

impl RaftConfig {
    /// Sets one setting by its Kafka-style name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let n = value.trim().parse::<u64>().map_err(|_| ConfigError::NotANumber { name: name.into(), value: value.into() })?;
        let bytes = usize::try_from(n).map_err(|_| ConfigError::Invalid(format!("{name} too large")))?;
        match name {
            "raft.heartbeat.interval.ms" => self.heartbeat_interval_ms = n,
            "raft.election.timeout.ms" => self.election_timeout_ms = n,
            "raft.election.timeout.max.ms" => self.election_timeout_max_ms = n,
            "raft.transport.linger.ms" => self.linger_ms = n,
            "raft.transport.max.inflight.bytes" => self.max_inflight_bytes = bytes,
            "raft.transport.max.frame.bytes" => self.max_frame_bytes = bytes,
            "raft.transport.max.envelope.bytes" => self.max_envelope_bytes = bytes,
            "raft.reconnect.backoff.ms" => self.reconnect_backoff_ms = n,
            "raft.reconnect.backoff.max.ms" => self.reconnect_backoff_max_ms = n,
            "raft.connection.setup.timeout.ms" => self.connection_setup_timeout_ms = n,
            "raft.transport.stall.timeout.ms" => self.stall_timeout_ms = n,
            "raft.snapshot.timeout.ms" => self.snapshot_timeout_ms = n,
            "raft.max.payload.entries" => self.max_payload_entries = n,
            _ => return Err(ConfigError::Unknown(name.into())),
        }
        Ok(())
    }

    /// Checks the relations between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.into()));
        if self.heartbeat_interval_ms == 0 {
            return bad("raft.heartbeat.interval.ms must be positive");
        }
        // A follower must see several heartbeats per election timeout, or a
        // single late envelope starts an election.
        if self.election_timeout_ms < 3 * self.heartbeat_interval_ms {
            return bad("raft.election.timeout.ms must be at least 3 x raft.heartbeat.interval.ms");
        }
        if self.election_timeout_max_ms <= self.election_timeout_ms {
            return bad("raft.election.timeout.max.ms must exceed raft.election.timeout.ms");
        }
        // A heartbeat times out after one interval; two lingers (there and back) must fit well inside.
        if self.linger_ms * 10 > self.heartbeat_interval_ms {
            return bad("raft.transport.linger.ms must be at most 10% of raft.heartbeat.interval.ms");
        }
        if self.max_envelope_bytes == 0 || self.max_envelope_bytes > self.max_frame_bytes {
            return bad("raft.transport.max.envelope.bytes must be in 1..=raft.transport.max.frame.bytes");
        }
        if self.max_inflight_bytes < self.max_envelope_bytes {
            return bad("raft.transport.max.inflight.bytes must be at least raft.transport.max.envelope.bytes");
        }
        if self.reconnect_backoff_ms == 0 || self.reconnect_backoff_max_ms < self.reconnect_backoff_ms {
            return bad("raft.reconnect.backoff.ms must be positive and at most raft.reconnect.backoff.max.ms");
        }
        // A healthy peer answers a heartbeat within an interval (plus two
        // lingers): a shorter deadline would drop connections that are fine.
        if self.stall_timeout_ms != 0 && self.stall_timeout_ms < 2 * self.heartbeat_interval_ms {
            return bad("raft.transport.stall.timeout.ms must be 0 (derived) or at least 2 x raft.heartbeat.interval.ms");
        }
        Ok(())
    }

    /// The openraft config of every group on this node.
    pub fn openraft(&self) -> Result<openraft::Config, ConfigError> {
        self.validate()?;
        let config = openraft::Config {
            cluster_name: "fjord".into(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_ms,
            election_timeout_max: self.election_timeout_max_ms,
            install_snapshot_timeout: self.snapshot_timeout_ms,
            max_payload_entries: self.max_payload_entries,
            // openraft purges the log after every snapshot down to its last
            // 1,000 entries by default. Here a purge deletes Kafka data, and
            // only retention (and tiering) may decide that: policy purges
            // are off, snapshots still happen every 5,000 entries, and
            // `Group::apply_retention` purges explicitly.
            max_in_snapshot_log_to_keep: u64::MAX,
            ..Default::default()
        };
        config.validate().map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    pub fn connection_setup_timeout(&self) -> Duration {
        Duration::from_millis(self.connection_setup_timeout_ms)
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// How long a peer that owes an answer may stay silent before its
    /// connection counts as stalled: `raft.transport.stall.timeout.ms`, or
    /// by default the election timeout, at least [`MIN_DERIVED_STALL_MS`].
    ///
    /// The election timeout because a peer silent that long has lost every
    /// group it shares with us to an election anyway, so holding on to the
    /// connection buys nothing, while replacing one costs little (a dial, and
    /// the calls in flight fail as unreachable and are retried). It is at
    /// least 3 heartbeat intervals (`validate`), and on a healthy link
    /// answers to heartbeats arrive every interval.
    pub fn stall_timeout(&self) -> Duration {
        match self.stall_timeout_ms {
            0 => Duration::from_millis(self.election_timeout_ms.max(MIN_DERIVED_STALL_MS)),
            ms => Duration::from_millis(ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_set_fields_and_relations_are_checked() {
        let mut c = RaftConfig::default();
        c.validate().unwrap();
        c.set("raft.heartbeat.interval.ms", "100").unwrap();
        c.set("raft.transport.linger.ms", "5").unwrap();
        assert_eq!((c.heartbeat_interval_ms, c.linger_ms), (100, 5));
        assert!(matches!(c.set("raft.nope", "1"), Err(ConfigError::Unknown(_))));
        assert!(matches!(c.set("raft.transport.linger.ms", "-1"), Err(ConfigError::NotANumber { .. })));
        c.set("raft.transport.linger.ms", "50").unwrap();
        assert!(c.validate().is_err(), "linger above 10% of the heartbeat");
        let c = RaftConfig { election_timeout_ms: 1000, ..RaftConfig::default() };
        assert!(c.validate().is_err(), "election timeout below 3 heartbeats");
        assert_eq!(RaftConfig::default().stall_timeout(), Duration::from_millis(2500), "the election timeout");
        let fast = RaftConfig { heartbeat_interval_ms: 100, election_timeout_ms: 600, election_timeout_max_ms: 1200, linger_ms: 5, ..c };
        assert_eq!(fast.stall_timeout(), Duration::from_millis(MIN_DERIVED_STALL_MS), "at least the floor");
        let mut set = fast.clone();
        set.set("raft.transport.stall.timeout.ms", "150").unwrap();
        assert!(set.validate().is_err(), "below 2 heartbeat intervals");
        set.set("raft.transport.stall.timeout.ms", "700").unwrap();
        set.validate().unwrap();
        assert_eq!(set.stall_timeout(), Duration::from_millis(700));
        let o = RaftConfig::default().openraft().unwrap();
        assert_eq!((o.heartbeat_interval, o.election_timeout_min, o.election_timeout_max), (500, 2500, 5000));
    }
}
