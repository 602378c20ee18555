//! fjord-broker: the Kafka front end of Fjord.
//!
//! A request travels: [`server`] (listener, one task per connection, 4-byte
//! framing) → [`protocol::frame`] (header, size caps) → [`handlers`] (one
//! module per API key, the registry ApiVersions is built from) → either the
//! cluster metadata ([`metadata`], a raft group of its own) or a partition
//! ([`partition`], one raft group each, over fjord-storage's log).
//! See `docs/architecture.md`.

pub mod admin;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod dev_cluster;
pub mod group;
pub mod handlers;
pub mod maintenance;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod protocol;
pub mod security;
pub mod server;
pub mod txn;

pub use broker::Broker;
