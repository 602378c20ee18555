//! Tiered storage settings, read into [`fjord_tiered::TieredConfig`].
//!
//! - KIP-405's switch `remote.log.storage.system.enable` (default false;
//!   off, nothing below is read, as Kafka does not load its plugin).
//! - The object store, under `remote.log.storage.manager.impl.prefix`
//!   (Kafka's default `rsm.config.`), named as Aiven's open-source
//!   tiered-storage plugin for Kafka names them (`S3StorageConfig`,
//!   `FileSystemStorageConfig`, `RemoteStorageManagerConfig`,
//!   `ChunkCacheConfig` in Aiven-Open/tiered-storage-for-apache-kafka), so a
//!   broker config written for that plugin works here:
//!   `storage.backend.class` (its `S3Storage` or `FileSystemStorage`; if
//!   unset, S3 when a bucket is named), `storage.s3.bucket.name`,
//!   `storage.s3.region`, `storage.s3.endpoint.url`,
//!   `storage.s3.path.style.access.enabled`,
//!   `storage.s3.api.call.attempt.timeout`, `storage.aws.access.key.id`,
//!   `storage.aws.secret.access.key`, `storage.aws.session.token`,
//!   `storage.root`, `key.prefix` and `fetch.chunk.cache.size`. The
//!   plugin's other settings are accepted and not used; unknown ones under
//!   the prefix are warned about.
//! - Retries: Kafka's `remote.log.manager.task.retry.backoff.ms` and
//!   `.backoff.max.ms`, and Fjord's `remote.log.storage.request.max.attempts`.
//!
//! With no bucket and no `storage.root`, segments go to
//! `<first log dir>/remote-log-storage`, so enabling tiered storage is all a
//! single node needs. Inside the log directory rather than beside it: the
//! broker is known to be allowed to write there (the parent often belongs
//! to root, as `/var/lib`), it is on the disk the operator gave Kafka data,
//! and moving or deleting the data directory takes it along. The name cannot
//! be a partition directory (`<topic>-<partition>` ends in a number).

use std::collections::BTreeMap;
use std::path::PathBuf;

use fjord_tiered::{Backend, DEFAULT_CACHE_BYTES, RetryBounds, S3Config, StaticCredentials, TieredConfig};

use super::broker::{ConfigError, invalid};
use super::broker_defs::{broker_def, is_rsm_config};
use super::def::Value;

pub(crate) const ENABLE: &str = "remote.log.storage.system.enable";
pub(crate) const PREFIX: &str = "remote.log.storage.manager.impl.prefix";
const BACKOFF: &str = "remote.log.manager.task.retry.backoff.ms";
const BACKOFF_MAX: &str = "remote.log.manager.task.retry.backoff.max.ms";
const MAX_ATTEMPTS: &str = "remote.log.storage.request.max.attempts";
/// The local backend's directory inside the first log dir, by default.
pub(crate) const DEFAULT_DIR: &str = "remote-log-storage";

/// Aiven's names, relative to the prefix.
const BACKEND_CLASS: &str = "storage.backend.class";
const S3_BUCKET: &str = "storage.s3.bucket.name";
const S3_REGION: &str = "storage.s3.region";
const S3_ENDPOINT: &str = "storage.s3.endpoint.url";
const S3_PATH_STYLE: &str = "storage.s3.path.style.access.enabled";
const S3_ATTEMPT_TIMEOUT: &str = "storage.s3.api.call.attempt.timeout";
const ACCESS_KEY_ID: &str = "storage.aws.access.key.id";
const SECRET_ACCESS_KEY: &str = "storage.aws.secret.access.key";
const SESSION_TOKEN: &str = "storage.aws.session.token";
const CREDENTIALS_PROVIDER: &str = "storage.aws.credentials.provider.class";
const CREDENTIALS_FILE: &str = "storage.aws.credentials.file";
const FS_ROOT: &str = "storage.root";
const KEY_PREFIX: &str = "key.prefix";
const CACHE_CLASS: &str = "fetch.chunk.cache.class";
const CACHE_SIZE: &str = "fetch.chunk.cache.size";

const S3_STORAGE: &str = "io.aiven.kafka.tieredstorage.storage.s3.S3Storage";
const FS_STORAGE: &str = "io.aiven.kafka.tieredstorage.storage.filesystem.FileSystemStorage";
const MEMORY_CACHE: &str = "io.aiven.kafka.tieredstorage.fetch.cache.MemoryChunkCache";
const DISK_CACHE: &str = "io.aiven.kafka.tieredstorage.fetch.cache.DiskChunkCache";
/// AWS SDK providers whose sources object_store's chain also reads.
const CHAIN_PROVIDERS: &[&str] = &[
    "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.ContainerCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.InstanceProfileCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider",
];

/// `None` when tiered storage is off. `log_dirs` is never empty (checked
/// before).
pub fn read(
    explicit: &BTreeMap<String, String>,
    log_dirs: &[PathBuf],
    warnings: &mut Vec<String>,
) -> Result<Option<TieredConfig>, ConfigError> {
    if !matches!(kafka_value(explicit, ENABLE), Some(Value::Bool(true))) {
        return Ok(None);
    }
    let prefix = kafka_value(explicit, PREFIX).map(|v| v.to_kafka_string()).unwrap_or_default();
    if prefix.is_empty() {
        return Err(invalid(PREFIX, "", "must not be empty"));
    }
    let rsm = Rsm { explicit, prefix: &prefix };
    rsm.check_keys(warnings);
    let backend = match rsm.backend_is_s3()? {
        true => Backend::S3(rsm.s3(warnings)?),
        false => Backend::Local { root: rsm.local_root(log_dirs)? },
    };
    let key_prefix = rsm.text(KEY_PREFIX).unwrap_or_default();
    fjord_tiered::check_key_prefix(&key_prefix).map_err(|reason| invalid(&rsm.key(KEY_PREFIX), &key_prefix, reason))?;
    let retry = retry_bounds(explicit)?;
    Ok(Some(TieredConfig { backend, key_prefix, retry, cache_bytes: rsm.cache_bytes(warnings)? }))
}

/// A Kafka key from `BROKER_DEFS`: checked by `read_pairs` if given, else its default.
fn kafka_value(explicit: &BTreeMap<String, String>, name: &str) -> Option<Value> {
    let def = broker_def(name)?;
    match explicit.get(name) {
        Some(v) => def.parse(v).ok(),
        None => def.default_value(),
    }
}

fn retry_bounds(explicit: &BTreeMap<String, String>) -> Result<RetryBounds, ConfigError> {
    let long = |name| kafka_value(explicit, name).and_then(|v| v.as_i64()).unwrap_or(1).max(1);
    let bounds = RetryBounds {
        max_attempts: u32::try_from(long(MAX_ATTEMPTS)).unwrap_or(u32::MAX),
        initial_backoff_ms: long(BACKOFF) as u64,
        max_backoff_ms: long(BACKOFF_MAX) as u64,
    };
    if bounds.max_backoff_ms < bounds.initial_backoff_ms {
        return Err(ConfigError::Inconsistent(format!(
            "{BACKOFF} ({}) must not exceed {BACKOFF_MAX} ({})",
            bounds.initial_backoff_ms, bounds.max_backoff_ms
        )));
    }
    Ok(bounds)
}

/// The settings under the prefix.
struct Rsm<'a> {
    explicit: &'a BTreeMap<String, String>,
    prefix: &'a str,
}

impl Rsm<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The value, trimmed; an empty value is no value.
    fn text(&self, name: &str) -> Option<String> {
        self.explicit.get(&self.key(name)).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.text(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(invalid(&self.key(name), &v, "expected true or false")),
        }
    }

    fn long(&self, name: &str, min: i64) -> Result<Option<i64>, ConfigError> {
        let Some(v) = self.text(name) else { return Ok(None) };
        let n: i64 = v.parse().map_err(|_| invalid(&self.key(name), &v, "not a number"))?;
        if n < min {
            return Err(invalid(&self.key(name), &v, format!("must be at least {min}")));
        }
        Ok(Some(n))
    }

    /// Warns about keys under the prefix that the plugin does not have,
    /// and takes back `read_pairs`' warnings for the ones it has when the
    /// prefix is not the default (which `read_pairs` cannot know).
    fn check_keys(&self, warnings: &mut Vec<String>) {
        for key in self.explicit.keys().filter(|k| k.starts_with(self.prefix)) {
            let warning = format!("unknown config key {key}, ignored");
            if is_rsm_config(&key[self.prefix.len()..]) {
                warnings.retain(|w| *w != warning);
            } else if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        for (name, what) in [
            ("encryption.enabled", "segments are uploaded unencrypted; use the bucket's server-side encryption"),
            ("compression.enabled", "segments are uploaded as stored (batches keep the producer's compression)"),
        ] {
            if self.text(name).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                warnings.push(format!("{}=true is not supported by Fjord: {what}", self.key(name)));
            }
        }
    }

    fn backend_is_s3(&self) -> Result<bool, ConfigError> {
        match self.text(BACKEND_CLASS).as_deref() {
            None => Ok(self.text(S3_BUCKET).is_some()),
            Some(S3_STORAGE) => Ok(true),
            Some(FS_STORAGE) => Ok(false),
            Some(other) => Err(invalid(
                &self.key(BACKEND_CLASS),
                other,
                format!("Fjord stores remote segments in S3 ({S3_STORAGE}) or a local directory ({FS_STORAGE})"),
            )),
        }
    }

    fn s3(&self, warnings: &mut Vec<String>) -> Result<S3Config, ConfigError> {
        let bucket = self.text(S3_BUCKET).ok_or_else(|| {
            ConfigError::Inconsistent(format!("{} is needed with {}={S3_STORAGE}", self.key(S3_BUCKET), self.key(BACKEND_CLASS)))
        })?;
        let endpoint = self.text(S3_ENDPOINT);
        if let Some(url) = &endpoint {
            check_url(url).map_err(|reason| invalid(&self.key(S3_ENDPOINT), url, reason))?;
        }
        Ok(S3Config {
            bucket,
            region: self.text(S3_REGION),
            endpoint,
            path_style_access: self.bool(S3_PATH_STYLE)?,
            credentials: self.credentials(warnings)?,
            request_timeout_ms: self.long(S3_ATTEMPT_TIMEOUT, 1)?.map(|ms| ms as u64),
        })
    }

    /// Static keys, else object_store's chain. Values never go into a
    /// message: only key names do.
    fn credentials(&self, warnings: &mut Vec<String>) -> Result<Option<StaticCredentials>, ConfigError> {
        let (id, secret, token) = (self.text(ACCESS_KEY_ID), self.text(SECRET_ACCESS_KEY), self.text(SESSION_TOKEN));
        if let Some(file) = self.text(CREDENTIALS_FILE) {
            return Err(invalid(
                &self.key(CREDENTIALS_FILE),
                &file,
                format!(
                    "not supported by Fjord; set {} and {} or the AWS environment",
                    self.key(ACCESS_KEY_ID),
                    self.key(SECRET_ACCESS_KEY)
                ),
            ));
        }
        if let Some(class) = self.text(CREDENTIALS_PROVIDER) {
            if id.is_some() {
                return Err(ConfigError::Inconsistent(format!(
                    "set either {} and {} or {}, not both",
                    self.key(ACCESS_KEY_ID),
                    self.key(SECRET_ACCESS_KEY),
                    self.key(CREDENTIALS_PROVIDER)
                )));
            }
            if !CHAIN_PROVIDERS.contains(&class.as_str()) {
                warnings.push(format!(
                    "{}={class}: Fjord takes AWS credentials from the environment, the shared credentials file, web identity, ECS/EKS or the EC2 instance profile",
                    self.key(CREDENTIALS_PROVIDER)
                ));
            }
        }
        match (id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => {
                Ok(Some(StaticCredentials { access_key_id, secret_access_key, session_token: token }))
            }
            (None, None) if token.is_none() => Ok(None),
            _ => Err(ConfigError::Inconsistent(format!(
                "{} and {} must be set together (and {} only with them)",
                self.key(ACCESS_KEY_ID),
                self.key(SECRET_ACCESS_KEY),
                self.key(SESSION_TOKEN)
            ))),
        }
    }

    fn local_root(&self, log_dirs: &[PathBuf]) -> Result<PathBuf, ConfigError> {
        if let Some(root) = self.text(FS_ROOT) {
            return Ok(PathBuf::from(root));
        }
        let first = log_dirs.first().ok_or_else(|| ConfigError::Inconsistent("log.dirs is empty".into()))?;
        Ok(first.join(DEFAULT_DIR))
    }

    /// `fetch.chunk.cache.size`: the in-memory cache's bound. Aiven's disk
    /// cache takes the same key for disk bytes (often many GiB), which must
    /// not become a memory bound.
    fn cache_bytes(&self, warnings: &mut Vec<String>) -> Result<u64, ConfigError> {
        let size = self.long(CACHE_SIZE, -1)?;
        if size == Some(-1) {
            return Err(invalid(&self.key(CACHE_SIZE), "-1", "Fjord's chunk cache is in memory and always bounded; give a size in bytes"));
        }
        match self.text(CACHE_CLASS).as_deref() {
            None | Some(MEMORY_CACHE) => {}
            Some(DISK_CACHE) => {
                if size.is_some() {
                    warnings.push(format!(
                        "{}: Fjord caches chunks in memory, so {} of {DISK_CACHE} is ignored ({DEFAULT_CACHE_BYTES} bytes used)",
                        self.key(CACHE_CLASS),
                        self.key(CACHE_SIZE)
                    ));
                }
                return Ok(DEFAULT_CACHE_BYTES);
            }
            Some(other) => warnings.push(format!("{}={other}: Fjord caches chunks in memory", self.key(CACHE_CLASS))),
        }
        Ok(size.map_or(DEFAULT_CACHE_BYTES, |s| s as u64))
    }
}

/// `http(s)://host[:port][/path]`, as the AWS SDK takes an endpoint.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or("must start with http:// or https://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("not a URL: no host, or blanks in it".into());
    }
    let port = authority.rsplit_once(':').filter(|_| !authority.ends_with(']')).map(|(_, p)| p);
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err("bad port".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    fn read_map(p: &[(&str, &str)]) -> (Result<Option<TieredConfig>, ConfigError>, Vec<String>) {
        let m: BTreeMap<String, String> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut warnings = Vec::new();
        let r = read(&m, &[PathBuf::from("/data/a"), PathBuf::from("/data/b")], &mut warnings);
        (r, warnings)
    }

    fn on(p: &[(&str, &str)]) -> TieredConfig {
        let mut all = vec![(ENABLE, "true")];
        all.extend_from_slice(p);
        let (r, warnings) = read_map(&all);
        assert!(warnings.is_empty(), "{warnings:?}");
        r.unwrap_or_else(|e| panic!("{p:?}: {e}")).expect("enabled")
    }

    fn err(p: &[(&str, &str)]) -> String {
        let mut all = vec![(ENABLE, "true")];
        all.extend_from_slice(p);
        read_map(&all).0.map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn off_by_default_and_nothing_is_read_then() {
        assert_eq!(read_map(&[]).0.unwrap(), None);
        let (r, w) = read_map(&[(ENABLE, "false"), ("rsm.config.storage.s3.path.style.access.enabled", "maybe")]);
        assert_eq!((r.unwrap(), w.len()), (None, 0));
    }

    #[test]
    fn enabled_alone_tiers_to_a_directory_in_the_first_log_dir() {
        let c = on(&[]);
        assert_eq!(c.backend, Backend::Local { root: PathBuf::from("/data/a/remote-log-storage") });
        assert_eq!((c.key_prefix.as_str(), c.cache_bytes), ("", DEFAULT_CACHE_BYTES));
        assert_eq!(c.retry, RetryBounds { max_attempts: 5, initial_backoff_ms: 500, max_backoff_ms: 30_000 });
        let c = on(&[("rsm.config.storage.backend.class", FS_STORAGE), ("rsm.config.storage.root", "/mnt/tier")]);
        assert_eq!(c.backend, Backend::Local { root: PathBuf::from("/mnt/tier") });
    }

    #[test]
    fn aiven_s3_settings() {
        // The S3 part of Aiven's demo/compose-s3-minio.yml, as properties.
        let c = on(&[
            ("rsm.config.storage.backend.class", S3_STORAGE),
            ("rsm.config.storage.s3.endpoint.url", "http://minio:9000"),
            ("rsm.config.storage.s3.bucket.name", "test-bucket"),
            ("rsm.config.storage.s3.region", "us-east-1"),
            ("rsm.config.storage.s3.path.style.access.enabled", "true"),
            ("rsm.config.storage.aws.access.key.id", "minioadmin"),
            ("rsm.config.storage.aws.secret.access.key", "minioadmin"),
            ("rsm.config.key.prefix", "tiered-storage-demo/"),
            ("rsm.config.chunk.size", "4194304"),
            ("rsm.config.fetch.chunk.cache.class", MEMORY_CACHE),
            ("rsm.config.fetch.chunk.cache.size", "1073741824"),
            ("rsm.config.storage.s3.api.call.attempt.timeout", "5000"),
            ("remote.log.manager.task.retry.backoff.ms", "100"),
            ("remote.log.manager.task.retry.backoff.max.ms", "2000"),
            ("remote.log.storage.request.max.attempts", "8"),
        ]);
        let Backend::S3(s3) = &c.backend else { panic!("{c:?}") };
        assert_eq!(
            (s3.bucket.as_str(), s3.region.as_deref(), s3.endpoint.as_deref(), s3.path_style_access, s3.request_timeout_ms),
            ("test-bucket", Some("us-east-1"), Some("http://minio:9000"), Some(true), Some(5000))
        );
        let creds = s3.credentials.as_ref().unwrap();
        assert_eq!(
            (creds.access_key_id.as_str(), creds.secret_access_key.as_str(), creds.session_token.as_deref()),
            ("minioadmin", "minioadmin", None)
        );
        assert_eq!((c.key_prefix.as_str(), c.cache_bytes), ("tiered-storage-demo/", 1 << 30));
        assert_eq!(c.retry, RetryBounds { max_attempts: 8, initial_backoff_ms: 100, max_backoff_ms: 2000 });

        // A bucket alone means S3, with the environment's credentials.
        let c = on(&[("rsm.config.storage.s3.bucket.name", "b")]);
        assert!(matches!(&c.backend, Backend::S3(s) if s.credentials.is_none() && s.endpoint.is_none() && s.path_style_access.is_none()));
    }

    #[test]
    fn bad_values_are_one_line_errors_naming_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("rsm.config.storage.s3.bucket.name", "b"), ("rsm.config.storage.s3.path.style.access.enabled", "yes")],
                r#"invalid value "yes" for rsm.config.storage.s3.path.style.access.enabled: expected true or false"#,
            ),
            (
                &[("rsm.config.storage.s3.bucket.name", "b"), ("rsm.config.storage.s3.endpoint.url", "minio:9000")],
                r#"invalid value "minio:9000" for rsm.config.storage.s3.endpoint.url: must start with http:// or https://"#,
            ),
            (
                &[("rsm.config.storage.s3.bucket.name", "b"), ("rsm.config.storage.s3.endpoint.url", "http://h:99999")],
                "for rsm.config.storage.s3.endpoint.url: bad port",
            ),
            (
                &[("rsm.config.storage.s3.bucket.name", "b"), ("rsm.config.storage.s3.api.call.attempt.timeout", "0")],
                r#"invalid value "0" for rsm.config.storage.s3.api.call.attempt.timeout: must be at least 1"#,
            ),
            (
                &[("rsm.config.storage.backend.class", S3_STORAGE)],
                "rsm.config.storage.s3.bucket.name is needed with rsm.config.storage.backend.class=io.aiven.kafka.tieredstorage.storage.s3.S3Storage",
            ),
            (
                &[("rsm.config.storage.backend.class", "io.aiven.kafka.tieredstorage.storage.gcs.GcsStorage")],
                "for rsm.config.storage.backend.class: Fjord stores remote segments in S3",
            ),
            (&[("rsm.config.key.prefix", "a/../b")], r#"invalid value "a/../b" for rsm.config.key.prefix: path segment .. is not allowed"#),
            (
                &[("rsm.config.fetch.chunk.cache.size", "-1")],
                r#"invalid value "-1" for rsm.config.fetch.chunk.cache.size: Fjord's chunk cache is in memory"#,
            ),
            (
                &[("rsm.config.fetch.chunk.cache.size", "lots")],
                r#"invalid value "lots" for rsm.config.fetch.chunk.cache.size: not a number"#,
            ),
            (
                &[("remote.log.manager.task.retry.backoff.ms", "5000"), ("remote.log.manager.task.retry.backoff.max.ms", "100")],
                "remote.log.manager.task.retry.backoff.ms (5000) must not exceed remote.log.manager.task.retry.backoff.max.ms (100)",
            ),
            (
                &[("remote.log.storage.manager.impl.prefix", " ")],
                r#"invalid value "" for remote.log.storage.manager.impl.prefix: must not be empty"#,
            ),
        ];
        for (p, want) in cases {
            let e = err(p);
            assert!(e.contains(want), "{p:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn credentials_go_together_and_never_into_messages() {
        let bucket = ("rsm.config.storage.s3.bucket.name", "b");
        for p in [
            &[bucket, ("rsm.config.storage.aws.access.key.id", "AKIDSECRETPART")][..],
            &[bucket, ("rsm.config.storage.aws.secret.access.key", "topsecret")],
            &[bucket, ("rsm.config.storage.aws.session.token", "topsecret")],
            &[
                bucket,
                ("rsm.config.storage.aws.access.key.id", "AKIDSECRETPART"),
                ("rsm.config.storage.aws.secret.access.key", "topsecret"),
                ("rsm.config.storage.aws.credentials.provider.class", CHAIN_PROVIDERS[0]),
            ],
        ] {
            let e = err(p);
            assert!(e.contains("rsm.config.storage.aws.") && !e.contains("topsecret") && !e.contains("AKIDSECRETPART"), "{e}");
        }
        let (r, w) = read_map(&[
            (ENABLE, "true"),
            bucket,
            ("rsm.config.storage.aws.credentials.provider.class", "software.amazon.awssdk.auth.credentials.ProcessCredentialsProvider"),
        ]);
        assert!(r.is_ok() && w.len() == 1 && w[0].contains("ProcessCredentialsProvider"), "{w:?}");
        assert!(err(&[bucket, ("rsm.config.storage.aws.credentials.file", "/etc/creds")]).contains("not supported"));
    }

    #[test]
    fn warnings_for_unknown_and_unsupported_settings() {
        let (r, w) = read_map(&[
            (ENABLE, "true"),
            ("rsm.config.storage.s3.bucket.nmae", "typo"),
            ("rsm.config.encryption.enabled", "true"),
            ("rsm.config.fetch.chunk.cache.class", DISK_CACHE),
            ("rsm.config.fetch.chunk.cache.size", "17179869184"),
            ("rsm.config.fetch.chunk.cache.path", "/cache"),
        ]);
        assert_eq!(r.unwrap().unwrap().cache_bytes, DEFAULT_CACHE_BYTES, "a disk cache's size is no memory bound");
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(w[0], "unknown config key rsm.config.storage.s3.bucket.nmae, ignored");
        assert!(w[1].contains("unencrypted") && w[2].contains("in memory"), "{w:?}");
    }

    fn broker(p: &[(&str, &str)]) -> (BrokerConfig, Vec<String>) {
        let pairs: Vec<(String, String)> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (c, w) = BrokerConfig::from_pairs(&pairs).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        (c, w)
    }

    #[test]
    fn in_the_broker_config() {
        let (c, w) = broker(&[]);
        assert_eq!((c.remote_log_storage, w.len()), (None, 0));

        let (c, w) = broker(&[(ENABLE, "TRUE"), ("log.dirs", "/srv/kafka"), ("rsm.config.chunk.size", "4194304")]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.remote_log_storage.unwrap().backend, Backend::Local { root: PathBuf::from("/srv/kafka/remote-log-storage") });

        // A prefix of one's own: its keys are read, not warned about; others are.
        let (c, w) =
            broker(&[(ENABLE, "true"), (PREFIX, "tier."), ("tier.storage.s3.bucket.name", "b"), ("tier.storage.s3.bucket.nmae", "typo")]);
        assert!(matches!(c.remote_log_storage.unwrap().backend, Backend::S3(s) if s.bucket == "b"));
        assert_eq!(w, ["unknown config key tier.storage.s3.bucket.nmae, ignored"]);

        let err = BrokerConfig::from_pairs(&[(ENABLE.to_string(), "on".to_string())]).map(|_| ()).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid value "on" for remote.log.storage.system.enable: expected true or false"#);
        let err = BrokerConfig::from_pairs(&[(BACKOFF.to_string(), "0".to_string())]).map(|_| ()).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid value "0" for remote.log.manager.task.retry.backoff.ms: must be at least 1"#);
    }

    #[test]
    fn secrets_are_hidden_from_debug_and_describe() {
        let (c, _) = broker(&[
            (ENABLE, "true"),
            ("rsm.config.storage.s3.bucket.name", "b"),
            ("rsm.config.storage.aws.access.key.id", "AKIDSECRETPART"),
            ("rsm.config.storage.aws.secret.access.key", "topsecret"),
            ("rsm.config.storage.aws.session.token", "tokensecret"),
        ]);
        let debug = format!("{c:?}");
        for secret in ["topsecret", "tokensecret", "AKIDSECRETPART"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        let described = c.describe();
        for e in described.iter().filter(|e| e.name.starts_with("rsm.config.storage.aws.")) {
            assert!(e.sensitive && e.value.is_none(), "{e:?}");
        }
        let e = described.iter().find(|e| e.name == ENABLE).unwrap();
        assert_eq!(e.value.as_deref(), Some("true"));
    }
}
