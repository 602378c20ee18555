//! Kafka's KRaft settings: `process.roles`, `controller.quorum.voters` and
//! the rules between them and `node.id`, and where this node's raft
//! transport binds and is reached (a controller's CONTROLLER listener).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use super::broker::{BrokerConfig, ConfigError, Settings, invalid, split_host_port};

/// A KRaft role from `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessRole {
    Broker,
    Controller,
}

/// One entry of `controller.quorum.voters` (`id@host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuorumVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl QuorumVoter {
    /// `host:port`, an IPv6 host in brackets: the voter's raft address.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }
}

impl BrokerConfig {
    /// Whether this node votes in the metadata quorum: it is one of
    /// `controller.quorum.voters`, or, with no voters configured, a single
    /// node that is its own quorum.
    pub fn is_controller(&self) -> bool {
        self.controller_quorum_voters.is_empty() || self.controller_quorum_voters.iter().any(|v| v.id == self.node_id)
    }

    /// Whether this node serves clients: `process.roles` has broker, or is
    /// not set (a single node). A controller-only node runs the metadata
    /// quorum and nothing else.
    pub fn is_broker(&self) -> bool {
        self.process_roles.is_empty() || self.process_roles.contains(&ProcessRole::Broker)
    }

    /// Kafka's KRaft rules on `process.roles`, `node.id` and the voters.
    pub(super) fn check_quorum(&self) -> Result<(), ConfigError> {
        let voters = &self.controller_quorum_voters;
        if voters.is_empty() && !self.is_broker() {
            return Err(ConfigError::Inconsistent(
                "process.roles=controller needs controller.quorum.voters (this node's id among them)".into(),
            ));
        }
        if voters.is_empty() {
            if self.process_roles.contains(&ProcessRole::Broker) && !self.process_roles.contains(&ProcessRole::Controller) {
                return Err(ConfigError::Inconsistent(
                    "process.roles=broker needs controller.quorum.voters (the controllers to register with)".into(),
                ));
            }
            return Ok(());
        }
        let mut ids: Vec<i32> = voters.iter().map(|v| v.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Inconsistent("controller.quorum.voters names a node id twice".into()));
        }
        if ids.iter().any(|&id| id < 0) {
            return Err(ConfigError::Inconsistent("controller.quorum.voters: node ids must be non-negative".into()));
        }
        let listed = ids.contains(&self.node_id);
        let controller = self.process_roles.contains(&ProcessRole::Controller);
        if self.process_roles.is_empty() {
            return Err(ConfigError::Inconsistent(
                "controller.quorum.voters is set, so process.roles must be too (broker, controller or broker,controller)".into(),
            ));
        }
        if controller && !listed {
            return Err(ConfigError::Inconsistent(format!(
                "process.roles has controller, so node.id {} must be one of controller.quorum.voters",
                self.node_id
            )));
        }
        if !controller && listed {
            return Err(ConfigError::Inconsistent(format!(
                "node.id {} is in controller.quorum.voters, so process.roles must include controller",
                self.node_id
            )));
        }
        if controller && self.raft_listener.is_none() && self.controller_listeners.is_empty() {
            return Err(ConfigError::Inconsistent(
                "a controller needs a listener named in controller.listener.names (its voter address in controller.quorum.voters)".into(),
            ));
        }
        Ok(())
    }

    /// This node's entry in `controller.quorum.voters`.
    pub fn own_voter(&self) -> Option<&QuorumVoter> {
        self.controller_quorum_voters.iter().find(|v| v.id == self.node_id)
    }

    /// Where peers reach this node's raft transport: `raft.advertised.listener`,
    /// else a controller's voter address; `None`: the bound address.
    pub fn raft_advertised(&self) -> Option<String> {
        self.raft_advertised_listener.clone().or_else(|| self.own_voter().map(QuorumVoter::host_port))
    }

    /// Where the raft transport binds: `raft.listener`, else a controller's
    /// controller listener (the address its voter entry names), else port 0
    /// on the first listener's host (every interface for an empty host; a
    /// name is resolved, falling back to loopback).
    pub fn raft_listen_addr(&self) -> SocketAddr {
        if let Some(addr) = self.raft_listener {
            return addr;
        }
        let controller_listener = self.controller_listeners.first().filter(|_| self.own_voter().is_some());
        let (host, port) = match controller_listener {
            Some(l) => (l.host.as_str(), l.port),
            None => (self.listeners.first().map_or("127.0.0.1", |l| l.host.as_str()), 0),
        };
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) if host.is_empty() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Err(_) => (host, 0).to_socket_addrs().ok().and_then(|mut a| a.next()).map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip()),
        };
        SocketAddr::new(ip, port)
    }
}

/// `controller.quorum.voters`: `id@host:port,...`.
pub(super) fn quorum_voters(s: &Settings<'_>) -> Result<Vec<QuorumVoter>, ConfigError> {
    let key = "controller.quorum.voters";
    s.list(key)
        .iter()
        .map(|entry| {
            let bad = || invalid(key, entry, "expected id@host:port");
            let (id, addr) = entry.split_once('@').ok_or_else(bad)?;
            let id = id.trim().parse::<i32>().map_err(|_| bad())?;
            let (host, port) = split_host_port(addr).ok_or_else(bad)?;
            Ok(QuorumVoter { id, host: host.to_string(), port })
        })
        .collect()
}
