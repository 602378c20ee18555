//! [`TieredConfig`]: where remote segments go and how hard to try. Pure
//! data: the broker reads its settings (`broker/src/config/remote.rs`, under
//! Kafka's and the Aiven plugin's names) into it; tests build it directly.
//! Built once at startup, immutable, cloned freely.

use std::fmt;
use std::path::PathBuf;

/// The chunk cache's default bound. Sized for the broker's Fetch path, not
/// for bulk replays: 64 fetches of 1 MiB chunks.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Everything [`crate::RemoteStore::open`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieredConfig {
    pub backend: Backend,
    /// Prepended to every object key, as path segments (`"team/kafka"`), so
    /// one bucket can hold several clusters. Empty for none. Aiven's
    /// `key.prefix`.
    pub key_prefix: String,
    pub retry: RetryBounds,
    /// The most bytes of fetched chunks kept in memory; 0 disables the cache.
    pub cache_bytes: u64,
}

impl TieredConfig {
    /// A local directory with every other setting at its default.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        TieredConfig {
            backend: Backend::Local { root: root.into() },
            key_prefix: String::new(),
            retry: RetryBounds::default(),
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// Which object store holds the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A directory, created if missing: the embedded default, so a single
    /// node tiers with no cloud at all. Files are fsynced before an upload
    /// counts, as S3 makes a PUT durable before it answers.
    Local { root: PathBuf },
    /// Amazon S3 or any S3-compatible server.
    S3(S3Config),
}

/// An S3 bucket. What is left `None` comes from the environment as
/// `object_store` reads it (`AWS_REGION`, `AWS_ENDPOINT`, ...), else its
/// defaults (region `us-east-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub region: Option<String>,
    /// `http(s)://host[:port]` of an S3-compatible server; `http://` is
    /// allowed only when given here explicitly.
    pub endpoint: Option<String>,
    /// `Some(true)`: `endpoint/bucket/key`; `Some(false)`: `bucket.endpoint/key`.
    /// `None` decides as the AWS SDK does in practice: path style when an
    /// endpoint is given (MinIO, Ceph, moto want it), virtual hosts on AWS.
    pub path_style_access: Option<bool>,
    /// `None`: object_store's chain: environment (`AWS_ACCESS_KEY_ID`, ...),
    /// web identity (EKS IRSA), ECS and EKS pod identity, then EC2 instance
    /// metadata. `~/.aws` profiles are not read.
    pub credentials: Option<StaticCredentials>,
    /// One HTTP request's time limit; `None` keeps object_store's 30 s.
    /// Parts are at most 8 MiB, so this is no limit on a segment's size.
    pub request_timeout_ms: Option<u64>,
}

/// An access key pair. `Debug` never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &"[hidden]")
            .field("secret_access_key", &"[hidden]")
            .field("session_token", &self.session_token.as_ref().map(|_| "[hidden]"))
            .finish()
    }
}

/// How often one request (a PUT, a part, a ranged GET, a DELETE, a list
/// page) is tried before the store gives up, and the exponential backoff
/// between tries. Failures that retrying cannot mend (not found, access
/// denied) are never retried. An upload that gives up leaves no segment
/// visible; its caller tries it again later as a new upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBounds {
    /// Tries per request, at least 1.
    pub max_attempts: u32,
    /// The first wait; each following wait doubles, up to `max_backoff_ms`.
    /// Each wait is drawn between half and all of that (jitter), so brokers
    /// that lost the store together do not return in step.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryBounds {
    /// Kafka's `remote.log.manager.task.retry.backoff.ms` (500) and
    /// `.backoff.max.ms` (30 s); 5 tries give up after about 7.5 s.
    fn default() -> Self {
        RetryBounds { max_attempts: 5, initial_backoff_ms: 500, max_backoff_ms: 30_000 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_credentials() {
        let c = S3Config {
            bucket: "b".into(),
            region: None,
            endpoint: None,
            path_style_access: None,
            credentials: Some(StaticCredentials {
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: "s3cr3t".into(),
                session_token: Some("t0ken".into()),
            }),
            request_timeout_ms: None,
        };
        let debug = format!("{c:?}");
        for secret in ["AKIAEXAMPLE", "s3cr3t", "t0ken"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("[hidden]"));
    }
}
