//! A Kafka wire client on `kafka-protocol` and `fjord bench`, the load
//! generator. It depends on the protocol crate only, never on the broker, so
//! it measures any Kafka-compatible broker the same way.

pub mod bench;
pub mod cluster;
pub mod conn;
pub mod consumer;
pub mod error;
pub mod plot;
pub mod producer;
pub mod report;
pub mod stats;
