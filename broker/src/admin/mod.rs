//! Topic administration as the controller does it: every check Kafka's
//! `ReplicationControlManager` makes, then one metadata proposal. Handlers
//! (CreateTopics, Metadata's auto-create, DeleteTopics, CreatePartitions,
//! the config APIs) call these and map [`AdminError`] to their responses.

pub mod configs;
pub mod create;
pub mod delete;
pub mod partitions;
pub mod reassign;

use kafka_protocol::ResponseError;

/// A refused admin operation: the Kafka error and its message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AdminError {
    pub code: ResponseError,
    pub message: String,
}

impl AdminError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<crate::metadata::MetadataError> for AdminError {
    fn from(e: crate::metadata::MetadataError) -> Self {
        let code = match e {
            crate::metadata::MetadataError::NotController | crate::metadata::MetadataError::NoController(_) => ResponseError::NotController,
            crate::metadata::MetadataError::Timeout(_) => ResponseError::RequestTimedOut,
            _ => ResponseError::UnknownServerError,
        };
        Self::new(code, e.to_string())
    }
}
