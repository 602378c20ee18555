//! What can go wrong talking to a broker.

use kafka_protocol::ResponseError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("connection to {addr} failed: {source}")]
    Io { addr: String, source: std::io::Error },
    #[error("connection to {addr} closed")]
    Closed { addr: String },
    #[error("malformed response from {addr}: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("{api} is not supported by {addr} in a version this client speaks")]
    Unsupported { addr: String, api: &'static str },
    #[error("{context}: {error:?}")]
    Broker { context: String, error: ResponseError },
    #[error("broker error code {code} ({context})")]
    UnknownCode { context: String, code: i16 },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The error for a non-zero Kafka error code.
    pub fn from_code(code: i16, context: impl Into<String>) -> ClientError {
        match ResponseError::try_from_code(code) {
            Some(error) => ClientError::Broker { context: context.into(), error },
            None => ClientError::UnknownCode { context: context.into(), code },
        }
    }

    /// Worth a metadata refresh and a retry: the leader moved or is not known yet,
    /// or the connection went away.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { error, .. } => error.is_retriable(),
            ClientError::Connect { .. } | ClientError::Io { .. } | ClientError::Closed { .. } | ClientError::Timeout(_) => true,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;
