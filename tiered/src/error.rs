//! [`Error`]: why a remote storage operation failed. The caller (the
//! partition's uploader or the Fetch path) decides from the variant whether
//! to try again later ([`Error::Unavailable`]), give up on a segment
//! ([`Error::NotFound`], [`Error::Manifest`]) or report a bug in its request
//! ([`Error::InvalidInput`]).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist (a segment deleted by retention, or never
    /// completed). Never retried.
    #[error("remote object {key} not found")]
    NotFound { key: String },
    /// The store kept failing with errors that may pass (connection refused,
    /// timeouts, 5xx, throttling) until the retry bound ran out.
    #[error("object store unavailable: {op} {key} failed {attempts} times, last: {source}")]
    Unavailable { op: &'static str, key: String, attempts: u32, source: object_store::Error },
    /// The store refused in a way retrying cannot mend (access denied, bad
    /// credentials, a path it does not accept).
    #[error("object store refused {op} {key}: {source}")]
    Refused { op: &'static str, key: String, source: object_store::Error },
    /// A local segment file could not be read for upload.
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A manifest that does not parse or does not match its key.
    #[error("bad manifest {key}: {reason}")]
    Manifest { key: String, reason: String },
    /// A request that cannot be served: a negative offset, a kind uploaded
    /// twice, a range outside the file.
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// The object store could not be set up from the config.
    #[error("cannot set up the object store: {0}")]
    Setup(String),
}

impl Error {
    /// Maps an object store error of one attempt; `Unavailable` is decided
    /// later by the retry loop, once it has run out of attempts.
    pub(crate) fn store(op: &'static str, key: &str, source: object_store::Error) -> Error {
        match source {
            object_store::Error::NotFound { .. } => Error::NotFound { key: key.to_string() },
            source => Error::Refused { op, key: key.to_string(), source },
        }
    }

    /// Whether another attempt may succeed. object_store folds every HTTP
    /// status it has no variant for (5xx, 429, but also 400) and every
    /// transport error into `Generic`, so a 400 is retried too, within the
    /// bound; the variants it names (not found, permission, precondition,
    /// bad path or config) are final.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Error::Refused { source: object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }, .. })
    }

    /// After the last attempt: a transient failure becomes `Unavailable`.
    pub(crate) fn exhausted(self, attempts: u32) -> Error {
        match self {
            Error::Refused { op, key, source }
                if matches!(source, object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }) =>
            {
                Error::Unavailable { op, key, attempts, source }
            }
            other => other,
        }
    }
}
